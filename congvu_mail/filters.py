"""What the filter plugins in filter_plugins/ share: the functions of this
package, handed to Ansible as filters. Used on the controller only (it
imports Ansible)."""

from __future__ import annotations

import functools

from ansible.errors import AnsibleFilterError

from .errors import RuleError


def _as_filter(function):
    """The function, with a RuleError raised as Ansible's filter error (same message)."""
    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RuleError as error:
            raise AnsibleFilterError(str(error)) from None
    return run


def filter_map(functions):
    """A FilterModule's filters(): filter name to the package's function."""
    return {name: _as_filter(function) for name, function in functions.items()}
