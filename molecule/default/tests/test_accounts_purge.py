"""The purge (playbooks/tools/purge-mail.yml): the stored mail of terminated mailboxes is
deleted only when an operator confirms the list shown; the row stays, records
the purge, and its address is never issued again. The module puts the lab's
accounts back when it is done."""

import copy
import json
import os
import re
import subprocess
import tempfile

import pytest

from mailtest import PROJECT, new_message, psql, run_playbook
from test_accounts import DOMAIN, address, person


def run_purge(extra_vars):
    """playbooks/tools/purge-mail.yml as an operator runs it from a script: no terminal to
    answer a prompt (stdin closed), output kept for the asserts."""
    inventory = os.environ.get('MOLECULE_INVENTORY_FILE', str(PROJECT / 'inventories' / 'lab'))
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0')
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump(extra_vars, handle)
    try:
        result = subprocess.run(['ansible-playbook', '-i', inventory, str(PROJECT / 'playbooks' / 'tools' / 'purge-mail.yml'),
                                 '-e', '@' + handle.name], stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, env=env, timeout=600)
    finally:
        os.unlink(handle.name)
    result.output = ' '.join((result.stdout + result.stderr).split())  # undo the YAML output's wrapping
    return result


def maildir(host, mailbox_id):
    return host.file('/var/vmail/%s' % mailbox_id)


@pytest.fixture(scope='module')
def purge(host, lab, server):
    """ductm and tuyetdta have mail, ductm is terminated; the purge runs first without, then with
    the confirmation it printed; then a namesake is hired."""
    doomed = new_message('someone@example.net', address('BG0004'), body='Mail that the purge removes.\n')
    other = new_message('someone@example.net', address('BG0003'), body='Mail that stays.\n')
    with server.smtp(25) as client:
        client.send_message(doomed)
        client.send_message(other)
    server.wait_for_message(address('BG0004'), person(lab, 'BG0004')['password'], doomed['Message-ID'])
    server.wait_for_message(address('BG0003'), person(lab, 'BG0003')['password'], other['Message-ID'])
    mailbox_id = psql(host, "SELECT id FROM mailboxes WHERE account_id = 'BG0004'")

    people = copy.deepcopy(lab['accounts_people'])
    for p in people:
        if p['id'] == 'BG0004':
            p['state'] = 'terminated'
    run_playbook('tools/accounts.yml', {'accounts_people': people}, check=True)
    try:
        before = maildir(host, mailbox_id).is_directory
        too_recent = run_purge({'accounts_purge_after_days': 90})
        refused = run_purge({'accounts_purge_after_days': 0})
        kept_after_refusal = maildir(host, mailbox_id).is_directory
        token = re.search(r'accounts_purge_confirm=(\d+-[0-9a-f]{8})', refused.output)
        wrong = run_purge({'accounts_purge_after_days': 0, 'accounts_purge_confirm': '1-00000000'})
        purged = run_purge({'accounts_purge_after_days': 0,
                            'accounts_purge_confirm': token.group(1) if token else 'none'})
        # The rows that purge marked (one UPDATE: one timestamp), before anything else changes.
        marked = psql(host, "SELECT string_agg(account_id || ':' || state, ',' ORDER BY account_id) FROM mailboxes "
                            "WHERE purged_at = (SELECT max(purged_at) FROM mailboxes)")
        again = run_purge({'accounts_purge_after_days': 0})
        namesake = people + [{'id': 'BG0011', 'name': 'Trần Minh Đức', 'organization': 'stnmt',
                              'password': 'Lab-Duc2-2026!'}]
        run_playbook('tools/accounts.yml', {'accounts_people': namesake}, check=True)
        yield {'id': mailbox_id, 'before': before, 'too_recent': too_recent, 'refused': refused,
               'kept_after_refusal': kept_after_refusal, 'token': token, 'wrong': wrong, 'purged': purged,
               'again': again, 'marked': marked.split(',')}
    finally:
        run_playbook('tools/accounts.yml', check=True)  # the lab's own inventory again


def test_nothing_due_when_terminated_too_recently(purge, host):
    assert purge['before']
    assert purge['too_recent'].returncode == 0, purge['too_recent'].output[-3000:]
    assert '0 mailbox(es)' in purge['too_recent'].output


def test_purge_refuses_without_confirmation(purge):
    result = purge['refused']
    assert result.returncode != 0
    assert 'Nothing purged' in result.output
    assert 'ductm@' + DOMAIN in result.output  # the list was shown
    assert purge['token'], 'no confirmation token shown'
    assert purge['kept_after_refusal'], 'the mail went without confirmation'


def test_purge_refuses_a_wrong_confirmation(purge):
    assert purge['wrong'].returncode != 0
    assert 'Nothing purged' in purge['wrong'].output


def test_purge_with_confirmation_removes_the_mail_and_keeps_the_row(purge, host):
    result = purge['purged']
    assert result.returncode == 0, result.output[-3000:]
    assert 'ductm@' + DOMAIN in result.output.split('Purged the stored mail of')[-1]
    assert not maildir(host, purge['id']).exists
    row = psql(host, "SELECT address, state, purged_at IS NOT NULL FROM mailboxes WHERE account_id = 'BG0004'")
    assert row == 'ductm@%s|terminated|t' % DOMAIN


def test_purge_never_touches_other_mailboxes(purge, host):
    mailbox_id = psql(host, "SELECT id FROM mailboxes WHERE account_id = 'BG0003'")
    assert maildir(host, mailbox_id).is_directory
    assert 'BG0004:terminated' in purge['marked']
    assert all(row.endswith(':terminated') for row in purge['marked']), purge['marked']


def test_second_purge_has_nothing_to_do(purge):
    assert purge['again'].returncode == 0, purge['again'].output[-3000:]
    assert '0 mailbox(es)' in purge['again'].output


def test_purged_address_is_not_issued_again(purge, host):
    assert psql(host, "SELECT address FROM mailboxes WHERE account_id = 'BG0011'") == 'ductm2@' + DOMAIN
