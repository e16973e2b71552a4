"""The inventory check on a converged database (issue 16): a new record that
would take an address already issued, or an alias, is refused before any
change, and the database is left exactly as it was.

Two stages refuse it: playbooks/preflight.yml, from the inventory alone (an
alias equal to another person's address), and the accounts role, once it has
read the addresses the database has issued (the holder may no longer be in the
inventory at all)."""

import copy

import pytest

from mailtest import psql, run_playbook
from test_accounts import DOMAIN

DUMP = {
    'mailboxes': "SELECT coalesce(string_agg(account_id || ' ' || address || ' ' || state || ' ' "
                 "|| coalesce(password, '') || ' ' || updated_at::text, E'\\n' ORDER BY account_id), '') "
                 "FROM mailboxes",
    'aliases': "SELECT coalesce(string_agg(address || ' ' || goto, E'\\n' ORDER BY address, goto), '') FROM aliases",
    'senders': "SELECT coalesce(string_agg(address || ' ' || login, E'\\n' ORDER BY address, login), '') "
               "FROM sender_logins",
}


def dump(host):
    return {table: psql(host, query) for table, query in DUMP.items()}


def flat(result):
    return ' '.join((result.stdout + result.stderr).split())  # undo the YAML output's line wrapping


@pytest.fixture
def before(host):
    state = dump(host)
    assert 'BG0002 longnv2@%s' % DOMAIN in state['mailboxes']  # the lab's namesake holds longnv2
    return state


def test_an_alias_taking_a_listed_persons_address_is_refused_before_any_host(host, lab, before):
    people = copy.deepcopy(lab['accounts_people'])
    people.append({'id': 'BG0020', 'name': 'Phạm Thu Hà', 'organization': 'stnmt', 'password': 'Lab-Ha-2026!',
                   'aliases': ['longnv2']})
    result = run_playbook('tools/accounts.yml', {'accounts_people': people})
    output = flat(result)
    assert result.returncode != 0
    assert ('accounts_people · BG0020 (Phạm Thu Hà) · aliases · alias longnv2@%s is already the address of '
            'accounts_people BG0002 (Nguyễn Văn Long)' % DOMAIN) in output, output[-3000:]
    assert 'Lab-Ha-2026!' not in output
    assert 'TASK [accounts : Read the mailboxes' not in output  # refused by the preflight, on the controller
    assert dump(host) == before


def test_a_record_taking_an_issued_address_is_refused_before_any_change(host, lab, before):
    """BG0002 and BG0005 leave the inventory; their addresses stay issued in the
    database. A newcomer's alias and another's explicit address asking for them
    pass the preflight (the inventory alone cannot tell), and are refused once
    the database's addresses are read, before the sync."""
    people = [p for p in copy.deepcopy(lab['accounts_people']) if p['id'] not in ('BG0002', 'BG0005')]
    people.append({'id': 'BG0020', 'name': 'Phạm Thu Hà', 'organization': 'stnmt', 'password': 'Lab-Ha-2026!',
                   'aliases': ['longnv2']})
    people.append({'id': 'BG0021', 'name': 'Lê Thị Hoa', 'organization': 'stnmt',
                   'password': 'Lab-Hoa21-2026!', 'address': 'hoalt'})
    result = run_playbook('tools/accounts.yml', {'accounts_people': people})
    output = flat(result)
    assert result.returncode != 0
    assert 'TASK [accounts : Refuse a record that takes an address the database has issued]' in output, output[-3000:]
    assert ('accounts_people · BG0020 (Phạm Thu Hà) · aliases · alias longnv2@%s is already the address of '
            'person BG0002, issued in the database (no longer in the inventory)' % DOMAIN) in output, output[-3000:]
    assert ('accounts_people · BG0021 (Lê Thị Hoa) · address · address hoalt@%s is already the address of '
            'person BG0005, issued in the database (no longer in the inventory)' % DOMAIN) in output, output[-3000:]
    for secret in ('Lab-Ha-2026!', 'Lab-Hoa21-2026!'):
        assert secret not in output
    assert 'TASK [accounts : Apply' not in output
    assert dump(host) == before


def test_the_lab_inventory_still_passes_and_syncs(host):
    """After the refusals, the lab's own inventory passes both checks and syncs."""
    result = run_playbook('tools/accounts.yml', check=True)
    assert 'TASK [accounts : Apply the accounts to the database in one transaction]' in result.stdout
    assert 'BG0002 longnv2@%s' % DOMAIN in dump(host)['mailboxes']
