"""An account's life, as the operator changes the inventory: suspended,
terminated, gone from the inventory, a namesake hired, a password the user
chose. The module puts the lab's accounts back when it is done."""

import imaplib

import pytest

from mailtest import new_message, psql, run_playbook
from test_accounts import DOMAIN, address, people_with_states, person


@pytest.fixture(scope='module')
def lifecycle(host, lab, server):
    """Before: mail for ductm. Then: hoalt suspended, ductm terminated, longnv2
    gone from the inventory, and a third Nguyễn Văn Long hired."""
    kept = new_message('someone@example.net', address('BG0004'), body='Kept after termination.\n')
    with server.smtp(25) as client:
        client.send_message(kept)
    server.wait_for_message(address('BG0004'), person(lab, 'BG0004')['password'], kept['Message-ID'])

    people = people_with_states(lab, {'BG0005': 'suspended', 'BG0004': 'terminated'})
    people = [p for p in people if p['id'] != 'BG0002']
    people.append({'id': 'BG0010', 'name': 'Nguyễn Văn Long', 'organization': 'stnmt',
                   'password': 'Lab-Long3-2026!'})
    changed = run_playbook('tools/accounts.yml', {'accounts_people': people}, check=True)
    again = run_playbook('tools/accounts.yml', {'accounts_people': people}, check=True)
    yield {'kept': kept, 'people': people, 'first': changed.stdout, 'again': again.stdout}
    run_playbook('tools/accounts.yml', check=True)  # the lab's own inventory again


def test_lifecycle_second_run_changes_nothing(lifecycle):
    assert 'changed=0' not in lifecycle['first'].split('PLAY RECAP')[-1]
    assert 'changed=0' in lifecycle['again'].split('PLAY RECAP')[-1]


def test_suspended_cannot_log_in_but_still_receives(lifecycle, server, lab, host):
    with pytest.raises(imaplib.IMAP4.error):
        server.imap(address('BG0005'), person(lab, 'BG0005')['password'])
    msg = new_message('someone@example.net', address('BG0005'), body='For a suspended mailbox.\n')
    with server.smtp(25) as client:
        assert client.send_message(msg) == {}
    mailbox_id = psql(host, "SELECT id FROM mailboxes WHERE account_id = 'BG0005'")
    found = host.run("grep -rl -F '%s' /var/vmail/%s/Maildir" % (msg['Message-ID'], mailbox_id))
    for _attempt in range(30):
        if found.rc == 0:
            break
        found = host.run("sleep 1; grep -rl -F '%s' /var/vmail/%s/Maildir" % (msg['Message-ID'], mailbox_id))
    assert found.rc == 0, 'the suspended mailbox did not receive the message'


def test_terminated_cannot_log_in_refuses_mail_and_keeps_it(lifecycle, server, lab, host):
    with pytest.raises(imaplib.IMAP4.error):
        server.imap(address('BG0004'), person(lab, 'BG0004')['password'])
    with server.smtp(25) as client:
        client.mail('someone@example.net')
        code, reply = client.rcpt(address('BG0004'))
    assert code == 550 and b'terminated' in reply
    mailbox_id = psql(host, "SELECT id FROM mailboxes WHERE account_id = 'BG0004'")
    kept = host.run("grep -rl -F '%s' /var/vmail/%s/Maildir" % (lifecycle['kept']['Message-ID'], mailbox_id))
    assert kept.rc == 0, 'the terminated mailbox lost its stored mail'


def test_person_missing_from_inventory_is_terminated_not_deleted(lifecycle, server, lab, host):
    assert psql(host, "SELECT state FROM mailboxes WHERE account_id = 'BG0002'") == 'terminated'
    with pytest.raises(imaplib.IMAP4.error):
        server.imap(address('BG0002'), person(lab, 'BG0002')['password'])


def test_new_namesake_gets_a_fresh_address_and_logs_in(lifecycle, server):
    # longnv and longnv2 stay with their owners, even the one who left.
    server.imap('longnv3@' + DOMAIN, 'Lab-Long3-2026!').logout()


def test_sync_never_overwrites_a_password_the_user_chose(lifecycle, server, lab, host):
    from congvu_mail import password as mail_password  # the rules, installed in the venv
    chosen = 'Chosen-By-Tuyet-2026!'
    initial = psql(host, "SELECT password FROM mailboxes WHERE account_id = 'BG0003'")
    update = "UPDATE mailboxes SET password = '%s' WHERE account_id = 'BG0003'"
    psql(host, update % mail_password.mail_password_hash(chosen))  # as a password change would
    try:
        result = run_playbook('tools/accounts.yml', {'accounts_people': lifecycle['people']}, check=True)
        assert 'changed=0' in result.stdout.split('PLAY RECAP')[-1]
        server.imap(address('BG0003'), chosen).logout()
        with pytest.raises(imaplib.IMAP4.error):
            server.imap(address('BG0003'), person(lab, 'BG0003')['password'])
    finally:
        psql(host, update % initial)
