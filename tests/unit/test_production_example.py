"""The production inventory is a complete, commented example (issue 18): every
variable it sets, shows commented out or names in a comment is a real variable
of a role; a commented-out setting shows the role's default exactly; values
have the types the roles' argument specs declare; the accounts use every field
the model accepts and pass its rules, in the one-domain layout and in the
merger's; the vault example holds every secret the example refers to.

tests/check/test_check_production_example.py runs `make check` on it."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from congvu_mail import accounts as model_fields
from congvu_mail.accounts import mail_accounts_errors, mail_accounts_render

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ROOT / 'inventories' / 'production'
ALL = PRODUCTION / 'group_vars' / 'all'
ROLES = sorted(p for p in (ROOT / 'roles').iterdir() if p.is_dir())
# What Ansible itself reads from an inventory (connection settings).
ANSIBLE_CONNECTION = {'ansible_host', 'ansible_user'}

# "# name: value" (at any indentation): a setting commented out, its value on
# this line and on the following lines indented under it ("#   ...").
COMMENTED = re.compile(r'^(?P<indent> *)# (?P<name>[a-z][a-z0-9_]*):(?: .*)?$')
# A name with a role's prefix, anywhere in a file (comments included).
PREFIXED = re.compile(r'\b(?:%s)_[a-z0-9_]*[a-z0-9]\b' % '|'.join(
    [r.name for r in ROLES] + ['vault']))


def _load(path):
    return yaml.safe_load(path.read_text(encoding='utf-8')) or {}


def _roles_variables():
    defaults, specs, derived = {}, {}, set()
    for role in ROLES:
        for name, value in _load(role / 'defaults' / 'main.yml').items():
            defaults.setdefault(name, []).append(value)
        for entry in _load(role / 'meta' / 'argument_specs.yml')['argument_specs'].values():
            for name, spec in (entry.get('options') or {}).items():
                specs.setdefault(name, []).append(spec)
        if (role / 'vars' / 'main.yml').exists():
            derived |= {n for n in _load(role / 'vars' / 'main.yml') if not n.startswith('_')}
    return defaults, specs, derived


DEFAULTS, SPECS, DERIVED = _roles_variables()
KNOWN = set(DEFAULTS) | set(SPECS)


def commented_settings(text):
    """Every commented-out setting of a file: (line number, name, value)."""
    lines = text.splitlines()
    found = []
    index = 0
    while index < len(lines):
        match = COMMENTED.match(lines[index])
        if not match:
            index += 1
            continue
        indent = match.group('indent')
        block = [lines[index][len(indent) + 2:]]
        index += 1
        while index < len(lines) and lines[index].startswith(indent + '#   '):
            block.append(lines[index][len(indent) + 2:])
            index += 1
        value = yaml.safe_load('\n'.join(block))
        found.append((index, match.group('name'), value[match.group('name')]))
    return found


def example_blocks(text):
    """The examples in comments ("#   name: value" after a prose line), parsed."""
    blocks, current = [], None
    for line in text.splitlines():
        if COMMENTED.match(line):
            current = 'setting'  # its own indented lines are its value, not an example
        elif line.startswith('#   ') and current != 'setting':
            current = current if isinstance(current, list) else []
            if not current:
                blocks.append(current)
            current.append(line[4:])
        elif not line.startswith('#   '):
            current = None
    return [yaml.safe_load('\n'.join(block)) for block in blocks]


def hosts_layouts():
    """hosts.yml's active layout and its commented alternative, parsed."""
    text = (PRODUCTION / 'hosts.yml').read_text(encoding='utf-8')
    active, marker, rest = text.partition('\n# all:\n')
    assert marker, 'hosts.yml has no commented alternative starting with "# all:"'
    alternative = [re.sub(r'^# ?', '', line) for line in ('# all:\n' + rest).splitlines()]
    assert all(line.startswith('#') for line in ('# all:\n' + rest).splitlines()), 'the alternative runs to the end'
    return yaml.safe_load(active), '\n'.join(alternative)


SETTINGS_FILES = {name: ALL / name for name in ('main.yml', 'accounts.yml')}


def settings():
    return {name: _load(path) for name, path in SETTINGS_FILES.items()}


def vault_example():
    return _load(ALL / 'vault.yml.example')


def vault_names():
    text = (ALL / 'vault.yml.example').read_text(encoding='utf-8')
    return set(vault_example()) | {name for _n, name, _v in commented_settings(text)}


def test_every_set_variable_is_a_roles_variable():
    unknown = {(file, name) for file, values in settings().items() for name in values if name not in KNOWN}
    assert unknown == set()
    for layout in hosts_layouts():
        layout = yaml.safe_load(layout) if isinstance(layout, str) else layout
        host_vars = {n for host in layout['all']['hosts'].values() for n in (host or {})}
        assert host_vars - KNOWN - ANSIBLE_CONNECTION == set()
        assert set(layout['all'].get('vars') or {}) - KNOWN - ANSIBLE_CONNECTION == set()
    assert {n for n in vault_names() if not n.startswith('vault_')} == set()


def test_a_commented_out_setting_shows_the_roles_default():
    """"# name: value" is the default, exactly as defaults/main.yml has it."""
    _active, alternative = hosts_layouts()
    texts = {name: path.read_text(encoding='utf-8') for name, path in SETTINGS_FILES.items()}
    texts['hosts.yml'] = (PRODUCTION / 'hosts.yml').read_text(encoding='utf-8').partition('\n# all:\n')[0]
    texts['hosts.yml alternative'] = alternative
    wrong, seen = [], 0
    for file, text in texts.items():
        for line, name, value in commented_settings(text):
            seen += 1
            if name not in DEFAULTS:
                wrong.append('%s:%d %s is no role default' % (file, line, name))
            elif value not in DEFAULTS[name]:
                wrong.append('%s:%d %s: %r, the default is %r' % (file, line, name, value, DEFAULTS[name][0]))
    assert wrong == []
    assert seen > 100  # the map: the file shows what can be set


def test_a_set_value_is_not_the_default():
    """A line that is set is the province's choice; a default is commented out."""
    same = [(file, name) for file, values in settings().items() for name, value in values.items()
            if value in DEFAULTS.get(name, [])]
    assert same == []


def test_every_name_in_the_example_is_real():
    """Every name with a role's prefix, in a value or a comment, is a real variable."""
    names = KNOWN | DERIVED | vault_names()
    unknown = []
    for path in [PRODUCTION / 'hosts.yml', *ALL.iterdir()]:
        for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
            unknown += ['%s:%d %s' % (path.name, number, n) for n in PREFIXED.findall(line) if n not in names]
    assert unknown == []


def test_examples_in_comments_are_real_settings():
    blocks = [b for path in SETTINGS_FILES.values() for b in example_blocks(path.read_text(encoding='utf-8'))]
    assert blocks, 'no example found'
    for block in blocks:
        assert isinstance(block, dict) and set(block) <= KNOWN, block


def _validate(name, value):
    if '{{' in repr(value):
        return []  # templated: typed when the play runs
    problems = []
    for spec in SPECS.get(name, []):
        result = ArgumentSpecValidator({name: spec}).validate({name: value})
        problems += ['%s: %s' % (name, m) for m in result.error_messages]
    return problems


def test_values_have_the_types_the_roles_declare():
    checked, problems = 0, []
    texts = [path.read_text(encoding='utf-8') for path in SETTINGS_FILES.values()]
    values = [(n, v) for file in settings().values() for n, v in file.items()]
    values += [(n, v) for text in texts for _l, n, v in commented_settings(text)]
    values += [(n, v) for text in texts for block in example_blocks(text) for n, v in block.items()]
    for name, value in values:
        problems += _validate(name, value)
        checked += 1
    assert problems == []
    assert _validate('backup_keep_daily', 'seven')  # the validator does refuse a wrong type
    assert checked > 100


def test_no_regulation_number_is_set():
    """The regulation's numbers live in roles/regulation, not in an inventory."""
    regulation = set(_load(ROOT / 'roles' / 'regulation' / 'defaults' / 'main.yml'))
    texts = [p.read_text(encoding='utf-8') for p in SETTINGS_FILES.values()]
    set_here = {n for file in settings().values() for n in file}
    set_here |= {n for text in texts for _l, n, _v in commented_settings(text)}
    set_here |= {n for text in texts for block in example_blocks(text) for n in block}
    assert set_here & regulation == set()
    assert 'roles/regulation/defaults/main.yml' in texts[0]


def test_every_variable_the_lab_and_the_scenarios_set_is_in_the_map():
    """What the lab or a Molecule scenario sets, a province may need: the
    example names it (set, commented out, or in a comment)."""
    text = '\n'.join(p.read_text(encoding='utf-8') for p in [PRODUCTION / 'hosts.yml', *ALL.iterdir()])
    named = set(PREFIXED.findall(text)) | set(re.findall(r'\b[a-z][a-z0-9_]*(?=:)', text))
    elsewhere = set()
    for path in [*(ROOT / 'inventories' / 'lab').rglob('*.yml'), *(ROOT / 'molecule').glob('*/group_vars/**/*.yml')]:
        elsewhere |= set(_load(path)) & KNOWN
    assert elsewhere - named == set()


def test_the_vault_example_holds_every_secret_referred_to():
    referred = set()
    for path in [PRODUCTION / 'hosts.yml', *SETTINGS_FILES.values()]:
        referred |= set(re.findall(r'\bvault_[a-z0-9_]+\b', path.read_text(encoding='utf-8')))
    assert referred - vault_names() == set()
    # What the vault example sets is used by a setting that is set (the check
    # refuses its placeholders: none may be there for nothing).
    active = '\n'.join(yaml.safe_dump(values) for values in settings().values())
    assert {n for n in vault_example() if n not in active} == set()


# --- The accounts ----------------------------------------------------------------

def _filled(value, numbers):
    """The vault's references replaced by test passwords that meet Điều 4.1."""
    if isinstance(value, dict):
        return {k: _filled(v, numbers) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, numbers) for v in value]
    if isinstance(value, str) and 'vault_' in value:
        return 'Kq7-Test-%04d-Value!' % next(numbers)
    return value


def _model(values, regulation, domain, domains):
    accounts = _filled(values['accounts.yml'], itertools.count(1))
    return {
        'domain': domain, 'domains': domains,
        'organizations': accounts['accounts_organizations'], 'people': accounts['accounts_people'],
        'lists': accounts['accounts_lists'], 'duplicates': accounts.get('accounts_duplicates', 'number'),
        'must_change': True, 'quota_mb': regulation['regulation_quota_mb'],
        'role_addresses': accounts.get('accounts_role_addresses', ['postmaster', 'abuse']),
        'postmaster': accounts.get('accounts_postmaster', []),
    }


def _merger():
    blocks = example_blocks(SETTINGS_FILES['main.yml'].read_text(encoding='utf-8'))
    merger = [b for b in blocks if 'mail_domains' in b]
    assert len(merger) == 1
    return merger[0]


@pytest.mark.parametrize('layout', ['one domain', 'after the merger'])
def test_the_accounts_pass_the_rules(regulation_defaults, hash_settings, layout):
    values = settings()
    main = values['main.yml'] if layout == 'one domain' else _merger()
    if layout == 'after the merger':
        aliases = [d for d in main['mail_domains'] if d.get('alias_of')]
        assert aliases and all(d.get('send_until') for d in aliases)
    model = _model(values, regulation_defaults, main['mail_domain'], main['mail_domains'])
    problems = mail_accounts_errors(model, policy=regulation_defaults['regulation_password_policy'],
                                    forward_allowed=regulation_defaults['regulation_forward_allowed_domains'],
                                    mailed={'mail_admins': values['main.yml']['mail_admins']})
    assert problems == []
    state = mail_accounts_render(model, hashing=dict(hash_settings, rounds=1000))
    addresses = {r['account_id']: r['address'] for r in state['mailboxes']}
    assert addresses['024085000123'] == 'longnv@' + main['mail_domain']
    assert addresses['CB-SNNMT-0042'] == 'longnv2@' + main['mail_domain']  # the namesake


def test_the_accounts_use_every_field_and_kind_of_record():
    accounts = settings()['accounts.yml']
    orgs = [o for o in accounts['accounts_organizations'] if 'name' in o]
    communes = [o for o in accounts['accounts_organizations'] if 'commune' in o]
    units = [u for o in orgs for u in o.get('units') or []]
    people = accounts['accounts_people']
    lists = accounts['accounts_lists']
    used = {field for record in orgs + communes for field in record}
    assert set(model_fields.ORG_FIELDS) - used == set()
    assert set(model_fields.UNIT_FIELDS) - {f for u in units for f in u} == set()
    assert set(model_fields.PERSON_FIELDS) - {f for p in people for f in p} == set()
    assert set(model_fields.LIST_FIELDS) - {f for m in lists for f in m} == set()
    assert set(model_fields.DOMAIN_FIELDS) - {f for d in _merger()['mail_domains'] for f in d} == set()
    assert {p.get('role', 'user') for p in people} == set(model_fields.ROLES)
    assert {p.get('state', 'active') for p in people} == set(model_fields.STATES)
    ids = {p['id'] for p in people}
    locals_ = {'stttt', 'vp.stttt', 'cntt.stttt'}
    members = [m for mlist in lists for m in mlist['members']]
    assert any(m in ids for m in members) and any(m in locals_ for m in members) and any('@' in m for m in members)
    assert accounts.get('accounts_postmaster')
    # Every password is a reference to the vault, whose example has its key.
    initial = vault_example()['vault_initial_passwords']
    for record in people + orgs + units:
        if 'password' in record:
            key = re.search(r"vault_initial_passwords(?:\['([^']+)'\]|\.([a-z0-9]+))", record['password'])
            assert key and (key.group(1) or key.group(2)) in initial, record['password']
    assert set(initial) == {p['id'] for p in people if 'password' in p} | {'stttt', 'cntt.stttt'}


# --- The hosts -------------------------------------------------------------------

GROUPS = ['db', 'mailstore', 'mx', 'directory', 'webmail']


def _members(layout, group):
    return set(layout['all']['children'][group]['hosts'])


def test_the_one_host_layout():
    active, _alternative = hosts_layouts()
    assert len({h for g in GROUPS for h in _members(active, g)}) == 1
    assert _members(active, 'backup') and not _members(active, 'backup') & {h for g in GROUPS
                                                                             for h in _members(active, g)}


def test_the_several_hosts_alternative():
    _active, alternative = hosts_layouts()
    layout = yaml.safe_load(alternative)
    hosts = [next(iter(_members(layout, g))) for g in GROUPS + ['backup']]
    assert len(set(hosts)) == len(hosts)  # every part on its own host
    for host in hosts[:-1]:
        variables = layout['all']['hosts'][host]
        assert variables['mail_host_name'] == host
        assert re.fullmatch(r'(\d{1,3}\.){3}\d{1,3}', variables['mail_host_address'])
