"""Fixtures shared by every Molecule scenario's tests (helpers: mailtest.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mailtest import PROJECT, Server  # noqa: E402

LAB_VARS = PROJECT / 'inventories' / 'lab' / 'group_vars' / 'all'


@pytest.fixture(scope='session')
def lab():
    """The lab inventory's settings and accounts (LAB ONLY passwords)."""
    data = {}
    for path in sorted(LAB_VARS.glob('*.yml')):
        data.update(yaml.safe_load(path.read_text(encoding='utf-8')) or {})
    return data


@pytest.fixture(scope='session')
def server():
    """The scenario's mail host (or the lab's, outside Molecule)."""
    scenario = os.environ.get('MOLECULE_SCENARIO_NAME', 'lab')
    ephemeral = Path(os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', PROJECT / '.lab'))
    prefix = os.environ.get('CONGVU_PREFIX') or 'congvu'
    return Server(prefix + '-' + scenario, ephemeral / 'tls' / 'ca.crt')
