"""The inventory's accounts, checked and rendered: filter_plugins/mail_accounts.py.

The address and password rules themselves are tested in test_mail_address.py and
test_mail_password.py; here: that every record is checked, and that the rendered
database state keeps issued addresses, hashes only what must be hashed, and does
not depend on the order of the inventory's lists."""

import copy
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from congvu_mail import password as mail_password
from congvu_mail.accounts import (mail_accounts_errors, mail_accounts_render, mail_accounts_render_json,
                                  mail_accounts_resets, mail_accounts_reused)
from congvu_mail.errors import RuleError
from conftest import FILTER_PLUGINS

DOMAIN = 'bacgiang.gov.vn'
MERGED = 'bacninh.gov.vn'


@pytest.fixture
def model(regulation_defaults):
    """A small province: a department with a unit, a second department, a commune
    with its Party committee, people (two Nguyễn Văn Long), a list."""
    return {
        'domain': DOMAIN,
        'domains': [{'name': DOMAIN}],
        'organizations': [
            {'name': 'Sở Thông tin và Truyền thông', 'password': 'Org-Info-2026!',
             'managers': ['BG0001'], 'units': [{'name': 'Văn phòng'}]},
            {'name': 'Sở Tài nguyên và Môi trường'},
            {'commune': 'Kinh Bắc', 'bodies': ['du']},
        ],
        'people': [
            {'id': 'BG0001', 'name': 'Nguyễn Văn Long', 'organization': 'stttt', 'role': 'admin',
             'password': 'Admin-Long-2026!', 'aliases': ['giamdoc.stttt']},
            {'id': 'BG0002', 'name': 'Nguyễn Văn Long', 'organization': 'stnmt', 'password': 'Long2-2026!'},
            {'id': 'BG0003', 'name': 'Đặng Thị Ánh Tuyết', 'organization': 'stttt', 'unit': 'vp',
             'password': 'Tuyet-2026!'},
            {'id': 'BG0004', 'name': 'Trần Minh Đức', 'organization': 'stnmt', 'password': 'Duc-Pass-2026!'},
        ],
        'lists': [{'address': 'toanthe.stttt', 'members': ['BG0001', 'BG0003', 'stnmt']}],
        'duplicates': 'number',
        'must_change': True,
        'quota_mb': regulation_defaults['regulation_quota_mb'],
    }


@pytest.fixture
def render(hash_settings):
    def _render(model, existing=None):
        return mail_accounts_render(model, existing=existing, hashing=hash_settings)
    return _render


def rows(state):
    return {row['account_id']: row for row in state['mailboxes']}


def existing_of(state):
    """What the database holds after a sync of `state` (the role's existing query)."""
    return [{'account_id': r['account_id'], 'address': r['address'], 'password_reset': r['password_reset']}
            for r in state['mailboxes']]


def person(model, person_id):
    return next(p for p in model['people'] if p['id'] == person_id)


# --- Validation ---------------------------------------------------------------

def test_good_inventory_has_no_problem(model, policy):
    assert mail_accounts_errors(model, policy=policy) == []


def test_every_problem_of_every_record_is_reported_together(model, policy):
    model['people'][0]['password'] = 'lowercase'           # BG0001: upper, digit, special, admin length
    model['people'][1]['organization'] = 'sxd'                # BG0002: no such organisation
    model['people'][1]['state'] = 'retired'                   # BG0002: and a bad state
    model['people'][2]['unit'] = 'kt'                         # BG0003: no such unit
    model['people'].append({'id': 'BG0004', 'name': 'Lê Thị Hoa', 'password': 'Hoa-Pass-2026!'})  # id twice
    model['people'].append({'id': 'BG0005', 'name': 'Phạm Thu Hà'})                               # no password
    model['lists'][0]['members'].append('BG9999')
    model['organizations'].append({'name': 'Sở Tài chính và Thương mại', 'abbreviation': 'stnmt'})
    problems = mail_accounts_errors(model, policy=policy)
    text = '\n'.join(problems)
    expected = [
        ('accounts_people · BG0001 (Nguyễn Văn Long) · password · the initial password', 'upper-case'),
        ('accounts_people · BG0001 (Nguyễn Văn Long) · password · the initial password', 'digit'),
        ('accounts_people · BG0001 (Nguyễn Văn Long) · password · the initial password', 'admin'),
        ('accounts_people · BG0002 (Nguyễn Văn Long) · organization · organization sxd', 'organisation'),
        ('accounts_people · BG0002 (Nguyễn Văn Long) · state · retired is not one of', 'active'),
        ('accounts_people · BG0003 (Đặng Thị Ánh Tuyết) · unit · unit kt', 'unit'),
        ('accounts_people · BG0004 (Lê Thị Hoa) · id · id BG0004 is used twice', 'unique'),
        ('accounts_people · BG0005 (Phạm Thu Hà) · password · no initial password', 'vault'),
        ('accounts_lists · toanthe.stttt · members · member BG9999', 'member list'),
        ('accounts_organizations · #4 (Sở Tài chính và Thương mại) · name · address stnmt@bacgiang.gov.vn is '
         'already the address of accounts_organizations #2', 'abbreviation'),
    ]
    for record, rule in expected:
        assert any(record in p and rule in p for p in problems), (record, rule, text)
    # Every message names its list, record, field, rule and what to do.
    for problem in problems:
        assert len(problem.split(' · ')) == 5 and all(problem.split(' · ')), problem


def test_bad_domains_are_reported(model, policy):
    model['domains'].append({'name': 'bacgiang.vn', 'alias_of': 'example.gov.vn'})
    model['domains'].append({'name': DOMAIN})
    model['domain'] = 'other.gov.vn'
    problems = '\n'.join(mail_accounts_errors(model, policy=policy))
    assert 'alias_of example.gov.vn is not a hosted domain' in problems
    assert 'mail_domain other.gov.vn: not a hosted domain' in problems
    assert 'listed twice' in problems


def test_terminated_person_needs_no_password(model, policy):
    model['people'].append({'id': 'BG0009', 'name': 'Vũ Văn Nam', 'state': 'terminated'})
    assert mail_accounts_errors(model, policy=policy) == []


def test_not_a_dict_is_refused():
    with pytest.raises(RuleError, match='mail_accounts_errors'):
        mail_accounts_errors(['not', 'a', 'model'])


# Passwords drawn at random; the marker makes an accidental match with the
# message's own words impossible, so only a leak could make the test fail.
passwords = st.text(st.characters(blacklist_categories=('Cs',)), min_size=0, max_size=30).map(lambda s: s + '\u00a4')


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(person_password=passwords, org_password=passwords, role=st.sampled_from(['user', 'admin']))
def test_random_passwords_never_appear_in_errors(model, policy, person_password, org_password, role):
    model['people'][1]['password'] = person_password
    model['people'][1]['role'] = role
    model['organizations'][0]['password'] = org_password
    for problem in mail_accounts_errors(model, policy=policy):
        assert person_password not in problem
        assert org_password not in problem


# --- Addresses ----------------------------------------------------------------

def test_organisation_unit_and_commune_addresses(model, render):
    state = rows(render(model))
    for local in ('stttt', 'vp.stttt', 'stnmt', 'kinhbac', 'du.kinhbac'):
        row = state['org:' + local]
        assert row['address'] == '%s@%s' % (local, DOMAIN)
        assert row['kind'] == 'organization'
    assert state['org:vp.stttt']['organization'] == 'stttt' and state['org:vp.stttt']['unit'] == 'vp.stttt'
    assert state['org:du.kinhbac']['organization'] == 'kinhbac'


def test_people_addresses_with_namesakes(model, render):
    state = rows(render(model))
    assert state['BG0001']['address'] == 'longnv@' + DOMAIN
    assert state['BG0002']['address'] == 'longnv2@' + DOMAIN
    assert state['BG0003']['address'] == 'tuyetdta@' + DOMAIN
    assert state['BG0003']['unit'] == 'vp.stttt'


@pytest.mark.parametrize('strategy, second', [('organization', 'longnv.stnmt'), ('citizen_id', 'longnv123')])
def test_duplicate_strategies(model, render, strategy, second):
    model['duplicates'] = strategy
    person(model, 'BG0002')['citizen_id'] = '001099000123'
    assert rows(render(model))['BG0002']['address'] == '%s@%s' % (second, DOMAIN)


def test_issued_addresses_are_kept_whoever_is_added(model, render):
    first = render(model)
    # A namesake with a smaller id arrives: the issued addresses do not move.
    model['people'].insert(0, {'id': 'BG0000', 'name': 'Nguyễn Văn Long', 'password': 'Long0-2026!x'})
    state = rows(render(model, existing=existing_of(first)))
    assert state['BG0001']['address'] == 'longnv@' + DOMAIN
    assert state['BG0002']['address'] == 'longnv2@' + DOMAIN
    assert state['BG0000']['address'] == 'longnv3@' + DOMAIN


def test_issued_addresses_move_to_the_merged_domain(model, render):
    """The 2025 merger: the province's domain becomes bacninh.gov.vn; every issued
    local part is kept there, the old domain becomes an alias."""
    first = render(model)
    merged = copy.deepcopy(model)
    merged['domain'] = MERGED
    merged['domains'] = [{'name': MERGED}, {'name': DOMAIN, 'alias_of': MERGED, 'send_until': '2026-12-31'}]
    state = render(merged, existing=existing_of(first))
    addresses = rows(state)
    assert addresses['BG0001']['address'] == 'longnv@' + MERGED
    assert addresses['BG0002']['address'] == 'longnv2@' + MERGED
    assert addresses['org:stttt']['address'] == 'stttt@' + MERGED
    assert {'name': DOMAIN, 'alias_of': MERGED, 'send_until': '2026-12-31'} in state['domains']
    assert all(a['address'].endswith('@' + MERGED) for a in state['aliases'])


def test_reserved_address_of_someone_who_left_is_never_reissued(model, render):
    first = render(model)
    # BG0001 leaves (gone from the inventory); a new Nguyễn Văn Long is hired.
    model['people'] = [p for p in model['people'] if p['id'] != 'BG0001']
    model['organizations'][0]['managers'] = []
    model['lists'][0]['members'].remove('BG0001')
    model['people'].append({'id': 'BG0010', 'name': 'Nguyễn Văn Long', 'password': 'Long3-2026!x'})
    state = rows(render(model, existing=existing_of(first)))
    assert 'BG0001' not in state  # the sync terminates it; the row stays
    assert state['BG0010']['address'] == 'longnv3@' + DOMAIN
    assert state['BG0002']['address'] == 'longnv2@' + DOMAIN


# --- Passwords ----------------------------------------------------------------

def test_new_accounts_get_a_hash_of_their_initial_password(model, render):
    state = rows(render(model))
    assert mail_password.mail_password_verify('Long2-2026!', state['BG0002']['password'])
    assert mail_password.mail_password_verify('Org-Info-2026!', state['org:stttt']['password'])
    assert state['org:stnmt']['password'] is None  # no password: nobody logs in to it
    assert all(r['must_change'] for r in state.values())


def test_existing_accounts_get_no_hash_unless_reset(model, render):
    first = render(model)
    person(model, 'BG0003')['password'] = 'New-Tuyet-2026!'
    person(model, 'BG0003')['password_reset'] = '2026-03-01'
    person(model, 'BG0004')['password'] = 'Changed-But-No-Reset-1!'  # no new token: ignored
    state = rows(render(model, existing=existing_of(first)))
    assert mail_password.mail_password_verify('New-Tuyet-2026!', state['BG0003']['password'])
    assert state['BG0003']['password_reset'] == '2026-03-01'
    for account_id, row in state.items():
        if account_id != 'BG0003':
            assert row['password'] is None, account_id


def test_no_hashing_at_all_when_nothing_is_new(model, render, monkeypatch):
    first = render(model)
    calls = []
    real = mail_password.mail_password_hash_many
    monkeypatch.setattr(mail_password, 'mail_password_hash_many',
                        lambda items, **kw: calls.append(list(items)) or real(items, **kw))
    render(model, existing=existing_of(first))
    assert calls in ([], [[]])


def test_must_change_follows_the_setting(model, render):
    model['must_change'] = False
    assert not any(r['must_change'] for r in render(model)['mailboxes'])


# --- Restore token, resets and the password history (Điều 4.2, 7) ---------------

def test_restore_token_is_rendered_per_person(model, render):
    person(model, 'BG0004')['restore'] = '2026-11-29'
    state = rows(render(model))
    assert state['BG0004']['restore'] == '2026-11-29'
    assert state['BG0003']['restore'] is None and state['org:stttt']['restore'] is None


def test_resets_are_the_existing_mailboxes_with_a_new_token(model, render):
    first = render(model)
    assert mail_accounts_resets(model, existing=existing_of(first)) == []
    person(model, 'BG0003')['password_reset'] = '2026-03-01'
    model['organizations'][0]['password_reset'] = 'again'
    model['people'].append({'id': 'BG0009', 'name': 'Lê Văn Mới', 'password': 'Moi-Pass-2026!'})  # new: no reset
    assert mail_accounts_resets(model, existing=json.dumps(existing_of(first))) == ['BG0003', 'org:stttt']


def test_reused_reset_passwords_are_reported_without_the_password(model, policy, hash_settings):
    def hashed(password):
        return mail_password.mail_password_hash(password, scheme=hash_settings['scheme'],
                                                rounds=hash_settings['rounds'])
    history = {'BG0003': [hashed('Old-Tuyet-2025!'), hashed('Tuyet-2026!')],   # current: the inventory's
               'BG0004': [hashed('Other-Duc-2025!')]}
    problems = mail_accounts_reused(model, history=json.dumps(history), policy=policy)
    assert len(problems) == 1 and problems[0].startswith('person BG0003 (Đặng Thị Ánh Tuyết): ')
    assert 'reuses one of the last %d passwords (Điều 4.2)' % policy['history'] in problems[0]
    assert 'Tuyet-2026!' not in problems[0]
    assert mail_accounts_reused(model, history=None, policy=policy) == []


def test_only_the_last_passwords_count_on_reset(model, policy, hash_settings):
    def hashed(password):
        return mail_password.mail_password_hash(password, scheme=hash_settings['scheme'],
                                                rounds=hash_settings['rounds'])
    older = [hashed('Tuyet-2026!')] + [hashed('Filler-%d-2026!' % n) for n in range(policy['history'])]
    assert mail_accounts_reused(model, history={'BG0003': older}, policy=policy) == []


# --- Aliases, lists, senders ----------------------------------------------------

def test_aliases_lists_and_senders(model, render):
    state = render(model)
    at = '@' + DOMAIN
    assert {'address': 'giamdoc.stttt' + at, 'goto': 'longnv' + at} in state['aliases']
    list_rows = [a for a in state['aliases'] if a['address'] == 'toanthe.stttt' + at]
    assert sorted(a['goto'] for a in list_rows) == ['longnv' + at, 'stnmt' + at, 'tuyetdta' + at]
    assert {'address': 'giamdoc.stttt' + at, 'login': 'longnv' + at} in state['senders']
    assert {'address': 'stttt' + at, 'login': 'longnv' + at} in state['senders']  # manager


def test_terminated_person_loses_aliases_lists_and_sender_rights(model, render):
    person(model, 'BG0001')['state'] = 'terminated'
    state = render(model)
    at = '@' + DOMAIN
    assert rows(state)['BG0001']['state'] == 'terminated'
    assert rows(state)['BG0001']['address'] == 'longnv' + at  # kept, reserved
    assert not [a for a in state['aliases'] if a['goto'] == 'longnv' + at]
    assert not [s for s in state['senders'] if s['login'] == 'longnv' + at]


def test_suspended_person_keeps_aliases_and_lists(model, render):
    person(model, 'BG0001')['state'] = 'suspended'
    state = render(model)
    assert [a for a in state['aliases'] if a['goto'] == 'longnv@' + DOMAIN]


# --- Stable output --------------------------------------------------------------

def test_render_twice_gives_the_same_json(model, render):
    assert json.dumps(render(model), sort_keys=True) == json.dumps(render(model), sort_keys=True)
    first = render(model)
    existing = existing_of(first)
    assert json.dumps(render(model, existing)) == json.dumps(render(model, existing))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_shuffled_inventory_renders_the_same(model, render, seed):
    model['domains'].append({'name': 'bacninh.gov.vn'})
    expected = json.dumps(render(model))
    shuffled = copy.deepcopy(model)
    rng = random.Random(seed)
    for key in ('people', 'organizations', 'lists', 'domains'):
        rng.shuffle(shuffled[key])
    for mlist in shuffled['lists']:
        rng.shuffle(mlist['members'])
    assert json.dumps(render(shuffled)) == expected


# --- Inside Ansible -------------------------------------------------------------

def test_render_json_is_the_rendered_state_as_text(model, hash_settings):
    state = mail_accounts_render(model, hashing=hash_settings)
    existing = json.dumps(existing_of(state))
    assert json.loads(mail_accounts_render_json(model, hashing=hash_settings)) == state
    assert json.loads(mail_accounts_render_json(model, existing=existing, hashing=hash_settings)) == \
        mail_accounts_render(model, existing=existing_of(state), hashing=hash_settings)


PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  vars:
    vault_passwords: {BG0001: Admin-Long-2026!, BG0002: Long2-2026!}
    people:
      - {id: BG0001, name: Nguyễn Văn Long, organization: stttt, role: admin,
         password: "{{ vault_passwords.BG0001 }}", aliases: ["giamdoc.{{ org }}"]}
      - {id: BG0002, name: "{{ 'Nguyễn Văn Long' }}", organization: stnmt, password: "{{ vault_passwords['BG0002'] }}"}
      - {id: BG0003, name: Đặng Thị Ánh Tuyết, organization: stttt, unit: vp, password: Tuyet-2026!}
    org: stttt
    model:
      domain: bacgiang.gov.vn
      domains: [{name: bacgiang.gov.vn}]
      organizations:
        - {name: Sở Thông tin và Truyền thông, managers: [BG0001], units: [{name: Văn phòng}]}
        - {name: Sở Tài nguyên và Môi trường}
      people: "{{ people }}"
      lists: [{address: "toanthe.{{ org }}", members: [BG0001, BG0003]}]
      duplicates: number
      quota_mb: {person: 1024, organization: 2048}
  tasks:
    - name: Render through the filter's own reading of Ansible's data, and through to_json
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: >-
          {{ [model | mail_accounts_render_json(hashing=hashing) | from_json,
              model | to_json | from_json | mail_accounts_render_json(hashing=hashing) | from_json,
              model | mail_accounts_errors] | to_json }}
"""


def test_ansible_data_is_read_as_ansible_renders_it(tmp_path, hash_settings):
    """Templates anywhere in the model (a whole list, one field, a list item) come out
    rendered, exactly as Ansible's own to_json renders them."""
    import subprocess
    import sys
    playbook = tmp_path / 'play.yml'
    playbook.write_text(PLAYBOOK, encoding='utf-8')
    out = tmp_path / 'out.json'
    command = [str(Path(sys.executable).with_name('ansible-playbook')), '-i', 'localhost,', '-c', 'local',
               str(playbook), '-e', json.dumps({'out': str(out), 'hashing': hash_settings})]
    env = {'PATH': '/usr/bin:/bin', 'ANSIBLE_FILTER_PLUGINS': str(FILTER_PLUGINS), 'HOME': str(tmp_path),
           'ANSIBLE_LOCAL_TEMP': str(tmp_path / 'tmp')}
    env['PATH'] = str(Path(command[0]).parent) + ':' + env['PATH']
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    direct, through_json, problems = json.loads(out.read_text(encoding='utf-8'))
    assert direct == through_json
    assert problems == []
    by_id = {row['account_id']: row for row in direct['mailboxes']}
    assert by_id['BG0002']['name'] == 'Nguyễn Văn Long' and by_id['BG0002']['address'] == 'longnv2@bacgiang.gov.vn'
    assert mail_password.mail_password_verify('Long2-2026!', by_id['BG0002']['password'])
    assert {'address': 'giamdoc.stttt@bacgiang.gov.vn', 'goto': 'longnv@bacgiang.gov.vn'} in direct['aliases']
    assert any(a['address'] == 'toanthe.stttt@bacgiang.gov.vn' for a in direct['aliases'])


# --- postmaster@ and abuse@ (RFC 5321, RFC 2142) ----------------------------------------------
def test_postmaster_and_abuse_reach_the_active_administrators(model, render):
    model['role_addresses'] = ['postmaster', 'abuse']
    person(model, 'BG0004')['role'] = 'admin'
    person(model, 'BG0004')['state'] = 'suspended'
    aliases = {(a['address'], a['goto']) for a in render(model)['aliases']}
    assert {('postmaster@' + DOMAIN, 'longnv@' + DOMAIN), ('abuse@' + DOMAIN, 'longnv@' + DOMAIN)} <= aliases
    assert not any(goto == 'ductm@' + DOMAIN for address, goto in aliases if address.startswith('postmaster@'))


def test_postmaster_can_name_people_organisations_and_addresses(model, render, policy):
    model['role_addresses'] = ['postmaster']
    model['postmaster'] = ['BG0003', 'stttt', 'quantri@bacninh.gov.vn']
    assert mail_accounts_errors(model, policy=policy) == []
    goto = {a['goto'] for a in render(model)['aliases'] if a['address'] == 'postmaster@' + DOMAIN}
    assert goto == {'tuyetdta@' + DOMAIN, 'stttt@' + DOMAIN, 'quantri@bacninh.gov.vn'}


def test_postmaster_is_never_issued_nor_taken(model, render, policy):
    model['role_addresses'] = ['postmaster', 'abuse']
    model['people'].append({'id': 'BG0009', 'name': 'Nguyễn Văn Abuse', 'password': 'Abuse-2026-Pass!',
                            'address': 'abuse@' + DOMAIN})
    person(model, 'BG0003')['aliases'] = ['postmaster']
    problems = mail_accounts_errors(model, policy=policy)
    assert any(p.startswith('accounts_people · BG0003 (Đặng Thị Ánh Tuyết) · aliases · alias postmaster@%s is '
                            'already the address of accounts_role_addresses postmaster' % DOMAIN)
               for p in problems), problems
    assert any(p.startswith('accounts_people · BG0009 (Nguyễn Văn Abuse) · address · address abuse@%s is '
                            'already the address of accounts_role_addresses abuse' % DOMAIN)
               for p in problems), problems


def test_postmaster_needs_somebody(model, policy):
    model['role_addresses'] = ['postmaster']
    person(model, 'BG0001')['role'] = 'user'
    problems = mail_accounts_errors(model, policy=policy)
    assert any(p.startswith('accounts_postmaster · - · - · nobody receives postmaster@ mail') for p in problems), problems
    model['postmaster'] = ['BG0404']
    problems = mail_accounts_errors(model, policy=policy)
    assert any('BG0404 is neither a person id' in p for p in problems), problems
