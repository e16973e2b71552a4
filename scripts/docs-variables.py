#!/usr/bin/env python3
"""Write docs/reference/variables.md: every role's public variables, as the
roles declare them in meta/argument_specs.yml, read through `ansible-doc -t role`,
with each one's default from the role's defaults/main.yml.

    scripts/docs-variables.py           rewrite the page (make docs)
    scripts/docs-variables.py --check   exit 1 when the page is not current
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
PAGE = PROJECT / 'docs' / 'reference' / 'variables.md'
HEADER = """# Variables

Every role's public variables, generated from the roles'
`meta/argument_specs.yml` by `ansible-doc -t role` (`make docs` writes this
page; `make unit` fails when it is not current). Set them in the inventory's
`group_vars`. A role checks its variables against this specification before
it runs, so a wrong type or a missing required value stops the play with the
variable's name. The regulation's numbers are role `regulation`'s; what the
roles share (the topology, paths, sockets) is role `mail`'s. Under each role,
"Reads" lists the shared settings it declares it reads: no role reads
another role's variables otherwise (a unit test checks it).
"""


def cell(text):
    return ' '.join(str(text).split()).replace('|', '\\|')


def default_of(value):
    if value is None:
        return ''
    shown = value if isinstance(value, str) and value else json.dumps(value, ensure_ascii=False)
    shown = cell(shown)
    return '`%s`' % (shown if len(shown) <= 60 else shown[:57] + '...')


def rows(options, defaults, prefix=''):
    for name in sorted(options):
        spec = options[name]
        kind = spec.get('type', 'str')
        if spec.get('elements'):
            kind += ' of ' + spec['elements']
        if spec.get('choices'):
            kind += ': ' + ', '.join(str(c) for c in spec['choices'])
        description = spec.get('description', '')
        if isinstance(description, list):
            description = ' '.join(description)
        required = ' (required)' if spec.get('required') else ''
        default = default_of(defaults.get(name)) if not prefix else ''
        yield '| `%s%s` | %s%s | %s | %s |' % (prefix, name, cell(kind), required, default, cell(description))
        if spec.get('options'):
            yield from rows(spec['options'], {}, prefix + name + '.')


def render():
    roles = sorted(p.parent.parent.name for p in (PROJECT / 'roles').glob('*/meta/argument_specs.yml'))
    # The ansible-doc of the venv this script runs in.
    ansible_doc = Path(sys.executable).parent / 'ansible-doc'
    command = [str(ansible_doc) if ansible_doc.exists() else 'ansible-doc', '-t', 'role', '-r', str(PROJECT / 'roles'), '--json', *roles]
    docs = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    lines = [HEADER]
    missing = sorted(p.name for p in (PROJECT / 'roles').iterdir() if p.name not in roles)
    if missing:
        lines.append('Roles without a specification: %s.\n' % ', '.join(missing))
    for role in roles:
        path = PROJECT / 'roles' / role / 'defaults' / 'main.yml'
        defaults = (yaml.safe_load(path.read_text(encoding='utf-8')) if path.exists() else None) or {}
        for entry, spec in sorted(docs[role]['entry_points'].items()):
            title = role if entry == 'main' else '%s (tasks_from: %s)' % (role, entry)
            lines.append('## %s\n' % title)
            summary = spec.get('short_description') or ''
            if summary:
                lines.append(cell(summary) + '\n')
            details = spec.get('description') or []
            for paragraph in [details] if isinstance(details, str) else details:
                lines.append(cell(paragraph) + '\n')
            options = spec.get('options') or {}
            # The role's own variables carry its name; the others are the
            # shared settings it declares it reads (role mail's, role
            # regulation's, or what its play hands over).
            own = {k: v for k, v in options.items() if k.startswith(role + '_')}
            inputs = sorted(set(options) - set(own))
            if own:
                lines.append('| variable | type | default | what |\n|---|---|---|---|')
                lines.extend(rows(own, defaults))
                lines.append('')
            else:
                lines.append('No variables of its own.\n')
            if inputs:
                lines.append('Reads: %s.\n' % ', '.join('`%s`' % name for name in inputs))
    return '\n'.join(lines).rstrip('\n') + '\n'


def main():
    text = render()
    if '--check' in sys.argv[1:]:
        if not PAGE.exists() or PAGE.read_text(encoding='utf-8') != text:
            sys.exit('%s is not current: run make docs' % PAGE.relative_to(PROJECT))
        return
    PAGE.write_text(text, encoding='utf-8')


if __name__ == '__main__':
    main()
