"""Ansible's data as plain dicts, lists and strings.

Ansible hands filters lazy containers that template every item on each
access; read thousands of people through them and most of the time goes
there. plain() copies them once. Without Ansible (the services, the tests)
it only copies.
"""

from __future__ import annotations

from collections.abc import Mapping

try:  # ansible-core 2.19's lazy containers, only to read them faster
    from ansible._internal._templating._lazy_containers import _AnsibleLazyTemplateMixin, _LazyValue
except ImportError:  # another ansible-core, or none: every item is read the ordinary way
    _AnsibleLazyTemplateMixin = _LazyValue = None


_TEMPLATE = object()  # _raw_plain's answer for data that holds a possible template


def _raw_plain(value):
    """A plain copy of data not templated yet, or _TEMPLATE if any string in it
    may be a template (only Ansible can render that)."""
    if isinstance(value, str):
        return _TEMPLATE if ('{{' in value or '{%' in value or '{#' in value) else str(value)
    if _LazyValue is not None and isinstance(value, _AnsibleLazyTemplateMixin):
        return _TEMPLATE
    if isinstance(value, Mapping):
        copy = {}
        for key, item in value.items():
            item = _raw_plain(item)
            if item is _TEMPLATE:
                return _TEMPLATE
            copy[str(key)] = item
        return copy
    if isinstance(value, (list, tuple)):
        copy = []
        for item in value:
            item = _raw_plain(item)
            if item is _TEMPLATE:
                return _TEMPLATE
            copy.append(item)
        return copy
    return value


def _plain_lazy(container, pairs):
    """The items of one of Ansible's lazy containers, as (key, plain value): an item
    holding no template is copied as stored, without Ansible's templating of every
    string (most of a 20,000-people run went there); any other item is read through
    the container, so Ansible renders it exactly as it would have."""
    for key, stored in pairs:
        if type(stored) is _LazyValue:  # pylint: disable=unidiomatic-typecheck
            copy = _raw_plain(stored.value)
            yield key, (plain(container[key]) if copy is _TEMPLATE else copy)
        else:  # already rendered by an earlier access
            yield key, plain(stored)


def plain(value):
    """The same data as plain dicts, lists and strings, in one pass."""
    if _LazyValue is not None and isinstance(value, _AnsibleLazyTemplateMixin):
        if isinstance(value, dict):
            return {str(key): item for key, item in _plain_lazy(value, dict.items(value))}
        if isinstance(value, list):
            return [item for _index, item in _plain_lazy(value, enumerate(list.__iter__(value)))]
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value
