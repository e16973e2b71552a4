"""Accounts rendered from the inventory, tried from outside the host. Tests
that change the inventory (as an operator does: extra vars over the lab's
group_vars, then playbooks/tools/accounts.yml) live in test_accounts_*.py."""

import copy

import pytest

from mailtest import new_message, psql, run_playbook

DOMAIN = 'bacgiang.gov.vn'
ADDRESSES = {  # Điều 5, derived by the filter plugins from the lab's names
    'BG0001': 'longnv', 'BG0002': 'longnv2', 'BG0003': 'tuyetdta', 'BG0004': 'ductm', 'BG0005': 'hoalt',
}
ORGANISATIONS = ['stttt', 'vp.stttt', 'stnmt', 'kinhbac', 'du.kinhbac', 'hdnd.kinhbac']


def person(lab, person_id):
    return next(p for p in lab['accounts_people'] if p['id'] == person_id)


def people_with_states(lab, states):
    """A copy of the lab's people, with the states of some changed (id -> state)."""
    people = copy.deepcopy(lab['accounts_people'])
    for p in people:
        if p['id'] in states:
            p['state'] = states[p['id']]
    return people


def address(person_id, domain=DOMAIN):
    return '%s@%s' % (ADDRESSES[person_id], domain)


def mailbox_fingerprint(host):
    return psql(host, "SELECT md5(string_agg(account_id || address || state || coalesce(password, '') "
                      "|| updated_at::text, ',' ORDER BY account_id)) FROM mailboxes")


@pytest.mark.parametrize('person_id', sorted(ADDRESSES))
def test_every_person_logs_in_with_the_initial_password(server, lab, person_id):
    client = server.imap(address(person_id), person(lab, person_id)['password'])
    client.logout()


def test_organisation_mailboxes_exist_and_one_logs_in(server, lab, host):
    stored = psql(host, "SELECT localpart FROM mailboxes WHERE kind = 'organization'").split()
    assert sorted(stored) == sorted(ORGANISATIONS)
    org = lab['accounts_organizations'][0]
    server.imap('stttt@' + DOMAIN, org['password']).logout()


def test_distribution_list_reaches_every_member(server, lab):
    msg = new_message('someone@example.net', 'toanthe.stttt@' + DOMAIN, body='To the whole department.\n')
    with server.smtp(25) as client:
        assert client.send_message(msg) == {}
    for member in ('BG0001', 'BG0003'):
        server.wait_for_message(address(member), person(lab, member)['password'], msg['Message-ID'])


def test_bad_inventory_fails_with_every_problem_and_changes_nothing(host, lab):
    people = copy.deepcopy(lab['accounts_people'])
    people[1]['password'] = 'alllowercase'        # no upper case, digit or special character
    people[2]['organization'] = 'sxd'              # no such organisation
    people.append({'id': 'BG0001', 'name': 'Trần Văn An', 'password': 'Good-Pass-2026!'})  # id reused
    people.append({'id': 'BG0009', 'name': 'Phạm Thu Hà', 'role': 'admin', 'password': 'Short-1!a'})
    before = mailbox_fingerprint(host)
    result = run_playbook('tools/accounts.yml', {'accounts_people': people})
    output = ' '.join((result.stdout + result.stderr).split())  # undo the YAML output's line wrapping
    assert result.returncode != 0
    assert 'problem(s):' in output
    assert 'accounts_people · BG0002 (Nguyễn Văn Long) · password · the initial password has no upper-case letter' \
        in output
    assert 'accounts_people · BG0002 (Nguyễn Văn Long) · password · the initial password has no digit' in output
    assert 'accounts_people · BG0003 (Đặng Thị Ánh Tuyết) · organization · organization sxd is not an organisation ' \
        'mailbox' in output
    assert 'accounts_people · BG0001 (Trần Văn An) · id · id BG0001 is used twice' in output
    assert 'accounts_people · BG0009 (Phạm Thu Hà) · password · the initial password shorter than 10 characters ' \
        '(Điều 4.1, admin)' in output
    for secret in ('alllowercase', 'Short-1!a', 'Good-Pass-2026!'):
        assert secret not in output
    assert 'TASK [database' not in output and 'TASK [accounts : Apply' not in output
    assert mailbox_fingerprint(host) == before
