"""Roles talk through declared interfaces (docs/development.md, "Roles and
their interfaces"): every variable a role reads is its own (its defaults, its
vars, a fact or result it sets itself) or is declared in its
meta/argument_specs.yml, where the play or role `mail` hands it over. No role
reads another role's defaults behind its back.

The variables a role reads are found by parsing, with Jinja itself, every
template and every templated value of its YAML files (conditions included).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.meta
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / 'roles').iterdir() if p.is_dir())

# Task keywords whose value is a bare Jinja expression.
BARE = {'when', 'changed_when', 'failed_when', 'until', 'that'}
# What Ansible itself provides to every task and template.
MAGIC = {
    'ansible_check_mode', 'ansible_connection', 'ansible_facts', 'ansible_host', 'ansible_hostname',
    'ansible_limit', 'ansible_loop', 'ansible_loop_var', 'ansible_play_batch', 'ansible_play_hosts',
    'ansible_play_hosts_all', 'ansible_run_tags', 'ansible_user', 'ansible_version', 'groups',
    'group_names', 'hostvars', 'inventory_dir', 'inventory_hostname', 'inventory_hostname_short',
    'item', 'omit', 'play_hosts', 'playbook_dir', 'role_name', 'role_path', 'ansible_managed',
    'ansible_default_ipv4', 'ansible_default_ipv6', 'ansible_all_ipv4_addresses',
    'ansible_all_ipv6_addresses', 'ansible_distribution', 'ansible_distribution_release',
    'ansible_fqdn', 'ansible_memtotal_mb', 'ansible_processor_vcpus', 'ansible_service_mgr',
    'ansible_date_time', 'ansible_env', 'ansible_python', 'ansible_interfaces',
    'lookup', 'query', 'q', 'now', 'undef', 'range', 'dict', 'lipsum', 'cycler', 'joiner', 'namespace',
    'true', 'false', 'none', 'True', 'False', 'None', 'loop', 'self', 'varargs', 'kwargs',
}

ENV = jinja2.Environment(extensions=['jinja2.ext.do', 'jinja2.ext.loopcontrols'])


def expressions(node, key=None):
    """Every templated string in a YAML document, as Jinja source."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from expressions(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from expressions(v, key)
    elif isinstance(node, str):
        if key in BARE and '{{' not in node:
            yield '{{ %s }}' % node
        elif '{{' in node or '{%' in node:
            yield node
    elif isinstance(node, bool) or node is None:
        return


def names_set(node):
    """Variables a task file defines for itself: registered results, facts,
    loop variables, task and block vars."""
    found = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'register' and isinstance(v, str):
                found.add(v)
            elif k in ('ansible.builtin.set_fact', 'set_fact') and isinstance(v, dict):
                found.update(k2 for k2 in v if k2 != 'cacheable')
            elif k == 'loop_control' and isinstance(v, dict) and 'loop_var' in v:
                found.add(v['loop_var'])
            elif k == 'vars' and isinstance(v, dict):
                found.update(v)
            found |= names_set(v)
    elif isinstance(node, list):
        for v in node:
            found |= names_set(v)
    return found


def undeclared(source):
    try:
        return jinja2.meta.find_undeclared_variables(ENV.parse(source))
    except jinja2.TemplateSyntaxError:
        return set()


def role_interface(role):
    own, spec, reads = set(), set(), {}
    for name in ('defaults/main.yml', 'vars/main.yml'):
        path = role / name
        if path.exists():
            own.update(yaml.safe_load(path.read_text(encoding='utf-8')) or {})
    path = role / 'meta' / 'argument_specs.yml'
    if path.exists():
        for entry in (yaml.safe_load(path.read_text(encoding='utf-8'))['argument_specs'] or {}).values():
            spec.update((entry or {}).get('options') or {})
    for path in sorted(role.rglob('*')):
        if not path.is_file() or 'files' in path.relative_to(role).parts[:1]:
            continue
        text = path.read_text(encoding='utf-8', errors='replace')
        relative = str(path.relative_to(ROOT))
        if path.suffix in ('.yml', '.yaml') and 'templates' not in path.parts:
            try:
                document = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            own |= names_set(document)
            sources = list(expressions(document))
        elif 'templates' in path.parts:
            sources = [text]
        else:
            continue
        for source in sources:
            for name in undeclared(source):
                reads.setdefault(name, relative)
    return own, spec, reads


@pytest.mark.parametrize('role', ROLES, ids=[r.name for r in ROLES])
def test_role_reads_only_what_it_declares(role):
    own, spec, reads = role_interface(role)
    outside = {name: where for name, where in reads.items()
               if name not in own and name not in spec and name not in MAGIC and not name.startswith('ansible_')}
    assert outside == {}, (
        'role %s reads variables it neither defines nor declares in meta/argument_specs.yml '
        '(name: first file): %s' % (role.name, outside))


@pytest.mark.parametrize('role', ROLES, ids=[r.name for r in ROLES])
def test_role_has_an_argument_spec(role):
    assert (role / 'meta' / 'argument_specs.yml').exists()
