"""The inventory check (issue 16): no input of any YAML type crashes it, every
problem names its record, and what used to slip through is refused.

Each regression test below is one input from the issue, with what happened
before in its docstring."""

import copy
import datetime
import re
import unicodedata

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from congvu_mail import address as mail_address
from congvu_mail import password as mail_password
from congvu_mail.accounts import mail_accounts_errors, mail_accounts_render
from congvu_mail.inventory import mail_ipv6_errors, mail_placeholder_errors

from conftest import ROOT

DOMAIN = 'bacgiang.gov.vn'
SEP = ' · '


@pytest.fixture
def model(regulation_defaults):
    """The lab's province, as the accounts role hands it to the filters."""
    lab = yaml.safe_load((ROOT / 'inventories' / 'lab' / 'group_vars' / 'all' / 'accounts.yml').read_text())
    return {
        'domain': DOMAIN,
        'domains': [{'name': DOMAIN}],
        'organizations': lab['accounts_organizations'],
        'people': lab['accounts_people'],
        'lists': lab['accounts_lists'],
        'duplicates': 'number',
        'must_change': True,
        'quota_mb': regulation_defaults['regulation_quota_mb'],
        'role_addresses': ['postmaster', 'abuse'],
        'postmaster': [],
    }


def check(model, policy, **kwargs):
    problems = mail_accounts_errors(model, policy=policy, **kwargs)
    for problem in problems:
        parts = problem.split(SEP)
        assert len(parts) == 5 and all(p.strip() for p in parts), problem
    return problems


def one(problems, *fragments):
    """The problems that hold every fragment; at least one."""
    found = [p for p in problems if all(f in p for f in fragments)]
    assert found, (fragments, problems)
    return found


def person(model, person_id):
    return next(p for p in model['people'] if p['id'] == person_id)


def test_the_lab_passes(model, policy):
    assert check(model, policy, mailed={'mail_admins': ['longnv@' + DOMAIN]}) == []


# --- Crashes -------------------------------------------------------------------------

@pytest.mark.parametrize('name', ['Nguyễn \u0301 Long', 'Nguyễn \u0301\u0323 Long', '\u0301'])
def test_lone_combining_accent_in_a_name(model, policy, name):
    """Was: IndexError: string index out of range."""
    model['people'].append({'id': 'BG0009', 'name': name, 'password': 'Lab-Nam-2026!'})
    one(check(model, policy), 'accounts_people', 'BG0009', 'name', 'accent mark with no letter')
    mail_address.mail_person_localpart('Nguyễn \u0301 Long')  # the builder itself no longer crashes


def test_lone_combining_accent_in_an_organisation(model, policy):
    """Was: IndexError: string index out of range."""
    model['organizations'].append({'name': 'Sở \u0301 Y tế'})
    one(check(model, policy), 'accounts_organizations', '#4', 'name', 'accent mark with no letter', 'abbreviation')
    assert mail_address.mail_org_localpart('Sở \u0301 Y tế') == 'syt'


def test_person_written_as_one_string(model, policy):
    """Was: 'str' object has no attribute 'get'."""
    model['people'].append('BG0009 Nguyễn Văn Nam')
    problems = check(model, policy)
    assert problems == one(problems, 'accounts_people', '#6', 'is text, not a record')


def test_organisation_written_as_one_string(model, policy):
    """Was: 'str' object has no attribute 'get', and no other problem was shown."""
    model['organizations'].append('Sở Y tế')
    model['people'].append({'id': 'BG0009', 'name': 'Nguyễn Văn Nam', 'password': 'short'})
    problems = check(model, policy)
    one(problems, 'accounts_organizations', '#4', 'is text, not a record')
    one(problems, 'accounts_people', 'BG0009', 'password')


def test_address_as_a_number(model, policy):
    """Was: 'int' object has no attribute 'split'."""
    person(model, 'BG0004')['address'] = 12345
    one(check(model, policy), 'accounts_people', 'BG0004', 'address', 'is a number, not text')


def test_quota_with_a_unit(model, policy):
    """Was: passed the check, then ValueError: invalid literal for int() on the host."""
    person(model, 'BG0004')['quota_mb'] = '2GB'
    model['organizations'][1]['quota_mb'] = True
    problems = check(model, policy)
    one(problems, 'accounts_people', 'BG0004', 'quota_mb', '"2GB"', 'MiB', 'quota_mb: 2048')
    one(problems, 'accounts_organizations', '#2', 'quota_mb', 'true/false')


# --- Passed, and did harm ------------------------------------------------------------

def test_aliases_as_one_string(model, policy):
    """Was: the aliases v@ a@ n@ t@ h@ u@, each with send-as rights."""
    person(model, 'BG0004')['aliases'] = 'vanthu'
    one(check(model, policy), 'accounts_people', 'BG0004', 'aliases', 'is one text, not a list', '[vanthu]')


def test_bodies_as_one_string(model, policy):
    """Was: d.kinhbac@ and u.kinhbac@."""
    model['organizations'][2]['bodies'] = 'du'
    one(check(model, policy), 'accounts_organizations', '#3 (Kinh Bắc)', 'bodies', 'is one text, not a list')


def test_new_alias_takes_an_existing_persons_address(model, policy):
    """Was: BG0002 became longnv3, and the newcomer received and sent as longnv2@."""
    model['people'].append({'id': 'BG0009', 'name': 'Phạm Thu Hà', 'password': 'Lab-Ha-2026!',
                            'aliases': ['longnv2']})
    one(check(model, policy), 'accounts_people · BG0009 (Phạm Thu Hà) · aliases',
        'longnv2@%s is already the address of accounts_people BG0002 (Nguyễn Văn Long)' % DOMAIN)


def test_new_alias_takes_an_issued_address(model, policy):
    """The same on a database where BG0002 holds longnv2 and has left the inventory."""
    existing = [{'account_id': 'BG0002', 'address': 'longnv2@' + DOMAIN, 'password_reset': 'initial'}]
    model['people'] = [p for p in model['people'] if p['id'] != 'BG0002']
    model['people'].append({'id': 'BG0009', 'name': 'Phạm Thu Hà', 'password': 'Lab-Ha-2026!',
                            'aliases': ['longnv2']})
    one(check(model, policy, existing=existing), 'BG0009', 'aliases', 'person BG0002, issued in the database')
    assert check(model, policy) == []  # without the database nobody holds it


def test_new_explicit_address_renumbers_nobody(model, policy):
    """Was: the administrator BG0001 renumbered to longnv2."""
    model['people'].append({'id': 'BG0009', 'name': 'Nguyễn Văn Long', 'password': 'Lab-Long9-2026!',
                            'address': 'longnv'})
    one(check(model, policy), 'accounts_people · BG0009 (Nguyễn Văn Long) · address',
        'already the address of accounts_people BG0001')


def test_explicit_address_issued_to_someone_else(model, policy):
    existing = [{'account_id': 'BG0004', 'address': 'ductm@' + DOMAIN, 'password_reset': 'initial'}]
    model['people'].append({'id': 'BG0009', 'name': 'Trần Minh Đức', 'password': 'Lab-Duc9-2026!',
                            'address': 'ductm'})
    one(check(model, policy, existing=existing), 'BG0009', 'address', 'accounts_people BG0004')


def test_same_alias_twice_and_alias_as_a_list(model, policy):
    """Was: accepted."""
    person(model, 'BG0004')['aliases'] = ['giamdoc.stttt']
    person(model, 'BG0005')['aliases'] = ['toanthe.stttt']
    problems = check(model, policy)
    one(problems, 'BG0004', 'aliases', 'giamdoc.stttt@%s is already the address of accounts_people BG0001' % DOMAIN)
    one(problems, 'BG0005', 'aliases', 'is already the address of accounts_lists toanthe.stttt')


def test_a_terminated_persons_alias_stays_reserved(model, policy):
    """The render reserves it: it would renumber a namesake without a word."""
    person(model, 'BG0004')['state'] = 'terminated'
    person(model, 'BG0004')['aliases'] = ['longnv3']
    model['people'].append({'id': 'BG0009', 'name': 'Nguyễn Văn Long', 'password': 'Lab-Long9-2026!'})
    one(check(model, policy), 'BG0004', 'aliases', 'longnv3@%s is already the address of accounts_people BG0009'
        % DOMAIN)


def test_address_in_a_domain_not_hosted(model, policy):
    """Was: antv@gmail.com accepted as a mailbox address."""
    model['people'].append({'id': 'BG0009', 'name': 'Trần Văn An', 'password': 'Lab-An-2026!',
                            'address': 'antv@gmail.com'})
    one(check(model, policy), 'BG0009', 'address', 'gmail.com, which the inventory does not host')


@pytest.mark.parametrize('managers, rule', [(['BG9999'], 'manager BG9999 is not a person id'),
                                            ('BG0001', 'is one text, not a list')])
def test_managers_name_people(model, policy, managers, rule):
    """Was: ignored."""
    model['organizations'][0]['managers'] = managers
    one(check(model, policy), 'accounts_organizations', '#1', 'managers', rule)


@pytest.mark.parametrize('name', ['Nguyễn Văn Long 2', '123', 'Nguyễn Văn Long (Phó GĐ)', 'Ông.Long'])
def test_not_a_persons_name(model, policy, name):
    """Was: "2nvl", "123", "gdnvlp"."""
    model['people'].append({'id': 'BG0009', 'name': name, 'password': 'Lab-Nam-2026!'})
    one(check(model, policy), 'accounts_people', 'BG0009', 'name', 'leave titles and notes out',
        'address: <local part>')
    model['people'][-1]['address'] = 'longnv.pgd'  # an explicit address: the name is then only shown
    assert check(model, policy) == []


def test_not_an_organisations_name(model, policy):
    """Was: "Sở TT&TT" gave stt."""
    model['organizations'].append({'name': 'Sở TT&TT'})
    one(check(model, policy), 'accounts_organizations', '#4 (Sở TT&TT)', 'name', "'&'", 'abbreviation:')
    model['organizations'][-1]['abbreviation'] = 'sotttt'
    assert check(model, policy) == []


def test_unquoted_id_is_refused_with_a_hint():
    """Was: read as the octal number 2700345427, its citizen-id suffix 427."""
    people = yaml.safe_load('- id: 024075000123\n  name: Nguyễn Văn Nam\n  password: "Lab-Nam-2026!"\n')
    assert people[0]['id'] == 2700345427
    problems = mail_accounts_errors({'domain': DOMAIN, 'domains': [{'name': DOMAIN}], 'people': people,
                                     'postmaster': ['x@bacninh.gov.vn']})
    one(problems, 'accounts_people', '#1 (Nguyễn Văn Nam)', 'id', 'is a number, not text', 'quote it')


def test_unit_with_no_name_names_it_and_only_it(model, policy):
    """Was: "organizations: 'name'" and 6 follow-on errors for people who were fine."""
    model['organizations'][0]['units'][0] = {'abbreviation': None}
    problems = check(model, policy)
    assert problems == one(problems, 'accounts_organizations', 'unit #1', 'name', 'is missing')


def test_mail_admins_must_be_accounts(model, policy):
    """Was: quantri@ is not an account, and nothing said so."""
    problems = check(model, policy, mailed={'mail_admins': ['quantri@' + DOMAIN], 'report_recipients': 'x'})
    one(problems, 'mail_admins', 'quantri@' + DOMAIN, 'no account, list or alias')
    one(problems, 'report_recipients', 'not a list')
    assert check(model, policy, mailed={'mail_admins': ['postmaster@' + DOMAIN, 'toanthe.stttt@' + DOMAIN]}) == []


def test_list_member_in_a_hosted_domain_must_exist(model, policy):
    model['lists'][0]['members'].append('vanthu@' + DOMAIN)
    one(check(model, policy), 'accounts_lists · toanthe.stttt · members', 'vanthu@' + DOMAIN)


# --- Passwords ---------------------------------------------------------------------------

def test_decomposed_password_is_stored_as_typed_normally(hash_settings):
    """Was: checked in NFC, hashed as given: the same password typed normally failed to log in."""
    typed = 'Mậtkhẩu1!'
    decomposed = unicodedata.normalize('NFD', typed)
    assert decomposed != typed
    stored = mail_password.mail_password_hash(decomposed, salt_from='BG0001', **hash_settings)
    assert stored == mail_password.mail_password_hash(typed, salt_from='BG0001', **hash_settings)
    assert mail_password.mail_password_verify(typed, stored)
    many = mail_password.mail_password_hash_many([('BG0001', decomposed)], **hash_settings)
    assert many == [stored]


@pytest.mark.parametrize('password, refused', [('Matkhau2026 ', mail_password.MSG_EDGE_SPACE),
                                               ('Matkhau2026\u200b', mail_password.MSG_UNSEEN),
                                               ('Matkhau2026\u00a0', mail_password.MSG_UNSEEN),
                                               ('Mat\tkhau2026', mail_password.MSG_UNSEEN)])
def test_invisible_characters_are_not_special(policy, password, refused):
    """Was: a trailing space, U+200B or U+00A0 counted as the special character."""
    problems = mail_password.mail_password_errors(password, policy=policy)
    assert problems == [refused, mail_password.MSG_MISSING_CLASS['special']]
    assert mail_password.mail_password_errors(password.replace('2026', '2026!'), policy=policy) == [refused]


def test_a_plain_space_inside_is_allowed_but_not_special(policy):
    assert mail_password.mail_password_errors('Mật khẩu-2026', policy=policy) == []
    assert mail_password.mail_password_errors('Mật khẩu 2026', policy=policy) == [
        mail_password.MSG_MISSING_CLASS['special']]


def test_length_counts_what_a_reader_sees(policy):
    """Was: "Ab1!" and five combining marks passed with 4 visible characters."""
    password = 'Ab1!' + '\u0301\u0300\u0303\u0309\u0323'
    assert mail_password.mail_password_length(password) == 4
    user = policy['min_length']['user']
    assert mail_password.MSG_TOO_SHORT.format(length=user, role='user') in mail_password.mail_password_errors(
        password, policy=policy)
    assert mail_password.mail_password_length(unicodedata.normalize('NFD', 'Mậtkhẩu1!')) == 9


# --- Placeholders ------------------------------------------------------------------------

def test_production_placeholders_are_refused():
    """Was: the administrator's initial password "an initial password that meets Điều 4.1" passed."""
    example = yaml.safe_load((ROOT / 'inventories' / 'production' / 'group_vars' / 'all' /
                              'vault.yml.example').read_text())
    values = dict(copy.deepcopy(example), accounts_people=[
        {'id': '024085000123', 'password': example['vault_initial_passwords']['024085000123']}])
    problems = mail_placeholder_errors(values, example=example, hosts={'mail': '192.0.2.10', 'ok': '10.0.0.5'})
    one(problems, 'accounts_people · 024085000123 · password', 'replace this value')
    one(problems, 'vault_initial_passwords', 'replace this value')
    one(problems, 'hosts.yml · mail · ansible_host', 'replace this value')
    assert not any('ok' == p.split(SEP)[1] for p in problems)
    placeholders = set(re.findall(r'"(replace: [^"]+)"', (ROOT / 'inventories' / 'production' / 'group_vars' / 'all' /
                                                        'vault.yml.example').read_text()))
    assert placeholders and not any(text in p for text in placeholders for p in problems)  # never printed
    assert mail_placeholder_errors({'vault_backup_passphrase': 'Something-Real-2026'}, example=example) == []


# --- IPv6 (docs/ipv6.md) ----------------------------------------------------------------

@pytest.mark.parametrize('address', ['2001:db8::25', 'fd42:0:236::10', '2402:800:20ff::1', '', None])
def test_public_ipv6_addresses_or_none_pass(address):
    assert mail_ipv6_errors({'mail': {'mail_host_ipv6': address, 'mail_host_ipv6_ptr': bool(address)}}) == []


@pytest.mark.parametrize('address, rule', [
    ('2001:db8::25/64', 'is not an IPv6 address'),
    ('2001:db8::zz', 'is not an IPv6 address'),
    ('203.0.113.5', 'is an IPv4 address'),
    ('::ffff:203.0.113.5', 'is an IPv4-mapped address'),
    ('fe80::1', 'link-local'),
    ('::1', 'loopback'),
    ('::', 'unspecified'),
    ('ff02::1', 'multicast'),
])
def test_what_is_not_a_hosts_ipv6_address_is_refused(address, rule):
    problems = mail_ipv6_errors({'mail': {'mail_host_ipv6': address}, 'ok': {'mail_host_ipv6': '2001:db8::1'}})
    one(problems, 'mail · mail_host_ipv6 · %r' % address, rule, 'leave it empty for IPv4 only')
    assert len(problems) == 1


def test_the_former_dns_mail_ipv6_and_a_ptr_without_address_are_refused():
    problems = mail_ipv6_errors({'mx': {'mail_host_ipv6': '', 'mail_host_ipv6_ptr': True,
                                        'dns_mail_ipv6': '2001:db8::25'}})
    one(problems, 'mx · dns_mail_ipv6 · is no longer read', 'rename it mail_host_ipv6')
    one(problems, 'mx · mail_host_ipv6_ptr · is true but mail_host_ipv6 is empty')
    assert len(problems) == 2


# --- Any YAML value, anywhere ------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
           | st.dates() | st.text(st.characters(blacklist_categories=('Cs',)), max_size=12)
           | st.text(st.sampled_from('aăđ \u0301\u0323-.&@0'), max_size=8)
           | st.sampled_from(['', 'BG0001', 'stttt', 'vp', 'longnv2', 'giamdoc.stttt', 'toanthe.stttt', 'du',
                              'admin', 'terminated', '2048', 'postmaster', 'x@gmail.com', 'longnv@' + DOMAIN]))
yaml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.sampled_from(['name', 'id', 'x', 'address']), inner, max_size=3),
                           max_leaves=6)

FIELDS = {
    ('people', 4): ['id', 'name', 'organization', 'unit', 'role', 'state', 'password', 'password_reset',
                    'restore', 'citizen_id', 'address', 'aliases', 'quota_mb', 'nickname'],
    ('organizations', 0): ['name', 'abbreviation', 'commune', 'units', 'managers', 'password', 'quota_mb',
                           'bodies'],
    ('organizations', 2): ['commune', 'bodies', 'managers', 'name'],
    ('lists', 0): ['address', 'members', 'owner'],
}
TARGETS = [(where, index, field) for (where, index), fields in FIELDS.items() for field in fields]
TARGETS += [('unit', 0, field) for field in ['name', 'abbreviation', 'managers', 'password', 'quota_mb']]
TARGETS += [(where, index, None) for where, index in FIELDS] + [('domains', 0, 'name'), ('domains', 0, 'alias_of')]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), value=yaml_values)
def test_any_value_in_any_field_is_reported_never_raised(model, policy, hash_settings, target, value):
    where, index, field = target
    model = copy.deepcopy(model)
    if where == 'unit':
        holder = model['organizations'][0]['units']
    else:
        holder = model[where]
    if field is None:
        holder[index] = value  # the whole record
    else:
        holder[index][field] = value
    problems = check(model, policy, existing=[{'account_id': 'BG0002', 'address': 'longnv2@' + DOMAIN}],
                     mailed={'mail_admins': ['longnv@' + DOMAIN]})
    assert not any('could not be checked' in p for p in problems), problems
    # Each problem names the record the value was put in (its id, position or
    # name; a list by its address or its kind), also when it is the other side of a clash.
    marks = {'people': ('BG0005', '#5', 'Lê Thị Hoa'), 'lists': ('accounts_lists',)}.get(where)
    if where == 'people' and field is None:  # a new record: its position, or the id it gives itself
        given_id = value.get('id') if isinstance(value, dict) else None
        marks = ('#5',) + ((given_id.strip(),) if isinstance(given_id, str) and given_id.strip() else ())
    for problem in problems if marks else []:
        assert any(mark in problem for mark in marks), (problem, value)
    if not problems:
        # What passes the check renders, with nobody's address changed.
        state = mail_accounts_render(model, existing=[{'account_id': 'BG0002', 'address': 'longnv2@' + DOMAIN,
                                                       'password_reset': 'initial'}],
                                     hashing=dict(hash_settings, rounds=1000))
        addresses = {r['account_id']: r['address'] for r in state['mailboxes']}
        if addresses.get('BG0001') and where != 'people':
            assert addresses['BG0001'] == 'longnv@' + DOMAIN
        assert addresses.get('BG0002', 'longnv2@' + DOMAIN) == 'longnv2@' + DOMAIN


@settings(max_examples=60, deadline=None)
@given(value=yaml_values)
def test_any_value_as_a_whole_list_is_reported_never_raised(value):
    for key in ('people', 'organizations', 'lists', 'domains', 'role_addresses', 'postmaster'):
        model = {'domain': DOMAIN, 'domains': [{'name': DOMAIN}], key: value}
        for problem in mail_accounts_errors(model):
            assert len(problem.split(SEP)) == 5, problem
            assert 'could not be checked' not in problem, problem


def test_a_wrongly_typed_field_names_its_record_and_field(model, policy):
    for field in ('name', 'organization', 'unit', 'address', 'citizen_id', 'password'):
        broken = copy.deepcopy(model)
        person(broken, 'BG0004')[field] = ['a', 'list']
        one(check(broken, policy), 'accounts_people · BG0004', '· %s ·' % field, 'is a list, not text')


def test_dates_are_tokens(model, policy):
    person(model, 'BG0004')['password_reset'] = datetime.date(2026, 11, 29)
    assert check(model, policy) == []


# --- A new record never takes nor renumbers an address ----------------------------------

CANDIDATES = ['longnv', 'longnv2', 'longnv3', 'tuyetdta', 'ductm', 'hoalt', 'giamdoc.stttt', 'toanthe.stttt',
              'stttt', 'vp.stttt', 'du.kinhbac', 'postmaster', 'vanthu', 'hanpt']
new_records = st.one_of(
    st.builds(lambda name, address, aliases: ('people', dict(
        {'id': 'BG0100', 'name': name, 'password': 'Lab-New-2026!', 'aliases': aliases},
        **({'address': address} if address else {}))),
        st.sampled_from(['Nguyễn Văn Long', 'Phạm Thu Hà', 'Trần Minh Đức', 'Lê Thị Hoa']),
        st.none() | st.sampled_from(CANDIDATES), st.lists(st.sampled_from(CANDIDATES), max_size=2)),
    st.builds(lambda address: ('lists', {'address': address, 'members': ['BG0001']}), st.sampled_from(CANDIDATES)),
    st.builds(lambda abbreviation: ('organizations', {'name': 'Sở Y tế', 'abbreviation': abbreviation}),
              st.sampled_from([c for c in CANDIDATES if '.' not in c])),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=new_records, with_database=st.booleans())
def test_a_record_that_passes_changes_no_address(model, policy, hash_settings, record, with_database):
    hashing = dict(hash_settings, rounds=1000)
    before = mail_accounts_render(model, hashing=hashing)
    held = {r['account_id']: r['address'] for r in before['mailboxes']}
    existing = [{'account_id': r['account_id'], 'address': r['address'], 'password_reset': r['password_reset']}
                for r in before['mailboxes']] if with_database else None
    where, item = record
    changed = copy.deepcopy(model)
    changed[where].append(item)
    if check(changed, policy, existing=existing):
        return  # refused: nothing changes
    after = mail_accounts_render(changed, existing=existing, hashing=hashing)
    addresses = {r['account_id']: r['address'] for r in after['mailboxes']}
    assert all(addresses[account] == address for account, address in held.items())
    old_aliases = {a['address'] for a in before['aliases']}
    for address in set(held.values()):
        # A mailbox's address is no alias or list of anybody else afterwards.
        assert address not in {a['address'] for a in after['aliases']} - old_aliases, address
