"""The documentation tree: every page reachable from the README, and the
variables reference generated from the roles' argument specifications."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_links_every_page():
    linked = set(re.findall(r'\]\((docs/[^)#]+\.md)', (ROOT / 'README.md').read_text(encoding='utf-8')))
    pages = {str(p.relative_to(ROOT)) for p in (ROOT / 'docs').rglob('*.md')}
    assert pages - linked == set(), 'pages the README does not link'
    assert linked - pages == set(), 'README links to pages that do not exist'


def test_relative_links_between_pages_resolve():
    broken = []
    for page in [ROOT / 'README.md', *(ROOT / 'docs').rglob('*.md')]:
        for target in re.findall(r'\]\(([^)#:]+\.md)(?:#[^)]*)?\)', page.read_text(encoding='utf-8')):
            if not (page.parent / target).resolve().exists():
                broken.append('%s -> %s' % (page.relative_to(ROOT), target))
    assert broken == []


def test_variables_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'docs-variables.py'), '--check'],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
