"""Shared set-up of the unit tests of the congvu_mail package (installed
editable in .venv by scripts/bootstrap.sh) and of the filter plugins."""

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILTER_PLUGINS = ROOT / 'filter_plugins'
REGULATION_DEFAULTS = ROOT / 'roles' / 'regulation' / 'defaults' / 'main.yml'


@pytest.fixture(scope='session')
def regulation_defaults():
    """The regulation role's defaults: the numbers the tests must not repeat."""
    return yaml.safe_load(REGULATION_DEFAULTS.read_text(encoding='utf-8'))


@pytest.fixture(scope='session')
def policy(regulation_defaults):
    return regulation_defaults['regulation_password_policy']


@pytest.fixture(scope='session')
def hash_settings(regulation_defaults):
    return regulation_defaults['regulation_password_hash']
