"""The regulation's numbers when a caller passes none: the defaults of role
regulation (roles/regulation/defaults/main.yml) in the checkout this package
runs from, i.e. on the controller, where it is installed editable. The
services on the hosts always pass theirs (their configuration files)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import RuleError

try:
    import yaml
except ImportError:
    yaml = None

DEFAULTS_FILE = Path(__file__).resolve().parent.parent / 'roles' / 'regulation' / 'defaults' / 'main.yml'


@lru_cache(maxsize=None)
def _read_defaults(path):
    with open(path, encoding='utf-8') as handle:
        return yaml.safe_load(handle) or {}


def default(function_name, key):
    """A value of the regulation role's defaults, for callers that pass none."""
    if not DEFAULTS_FILE.is_file():
        raise RuleError('%s: no %s given, and %s is not there to read it from; pass it explicitly'
                        % (function_name, key, DEFAULTS_FILE))
    if yaml is None:
        raise RuleError('%s: reading %s needs the Python library PyYAML (or pass %s explicitly)'
                        % (function_name, DEFAULTS_FILE, key))
    defaults = _read_defaults(str(DEFAULTS_FILE))
    if key not in defaults:
        raise RuleError('%s: %s has no %s' % (function_name, DEFAULTS_FILE, key))
    return defaults[key]
