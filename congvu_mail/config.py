"""The services' configuration files: one JSON object each, written by the
service's role (/etc/congvu-mail/NAME.json, readable by the service only,
since most hold a database password)."""

from __future__ import annotations

import json

CONFIG_DIR = '/etc/congvu-mail'


def default_path(service):
    """Where the role puts the service's configuration."""
    return '%s/%s.json' % (CONFIG_DIR, service)


def load(path):
    """The configuration at `path`, as a dict."""
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


def from_argv(argv, service):
    """The configuration named by the first argument, else the service's default."""
    return load(argv[1] if len(argv) > 1 else default_path(service))
