"""Password lifetime and inactivity (Điều 4.2; Điều 6, 7 of the 2025 text),
with time moved by changing the stored dates, never by waiting:

- an expired user, an expired administrator and a must-change account are
  refused on IMAP, POP3 and SMTP AUTH with the reason, and can change the
  password in the webmail (Dovecot's loopback listener lets them in there);
- the daily job (congvu-lifecycle.service) warns once before expiry, and
  suspends an inactive account (still receives, cannot log in, the
  administrators are told) until the inventory's restore token changes;
- the last 3 passwords cannot come back, through the webmail's password
  service or an inventory reset.

Every test puts back what it changed."""

import contextlib
import email
import email.policy
import imaplib
import json
import poplib
import smtplib
import subprocess
import time
import uuid

import pytest

from mailtest import chromium, new_message, password_service, psql, run_playbook
from test_accounts import address, people_with_states, person
from test_webmail import URL, change_password, login

EXPIRED = 'Password expired'
MUST_CHANGE = 'Password must be changed'
ADMIN = 'BG0001'          # longnv, administrator: 90 days
USER = 'BG0004'           # ductm, user: 180 days
WARNED = 'BG0003'         # tuyetdta
INACTIVE = 'BG0005'       # hoalt
ADMINISTRATOR = 'longnv@bacgiang.gov.vn'   # mail_admins of the lab


def run_job(host):
    result = host.run('systemctl start congvu-lifecycle.service')
    assert result.rc == 0, result.stderr + host.run('journalctl -u congvu-lifecycle -n 20 --no-pager').stdout


@contextlib.contextmanager
def saved_mailbox(host, person_id):
    """Puts the mailbox's password, dates, state and history back afterwards."""
    columns = ('password', 'password_reset', 'password_set_at', 'must_change', 'last_login', 'created_at', 'state',
               'state_changed_at', 'suspended_inactive_at', 'restore', 'restored_at')
    row = json.loads(psql(host, "SELECT row_to_json(m) FROM (SELECT id, %s FROM mailboxes "
                                "WHERE account_id = '%s') m" % (', '.join(columns), person_id)))
    history = psql(host, "SELECT coalesce(string_agg(ctid::text, ';'), '') FROM password_history "
                         "WHERE mailbox_id = %d" % row['id'])
    try:
        yield row
    finally:
        psql(host, "UPDATE mailboxes m SET (%s) = (SELECT %s FROM json_populate_record(NULL::mailboxes, '%s')) "
                   "WHERE id = %d" % (', '.join(columns), ', '.join(columns),
                                      json.dumps(row).replace("'", "''"), row['id']))
        kept = ["'%s'::tid" % ctid for ctid in history.split(';') if ctid]
        psql(host, "DELETE FROM password_history WHERE mailbox_id = %d AND NOT ctid = ANY (ARRAY[%s]::tid[])"
             % (row['id'], ', '.join(kept)))
        psql(host, "DELETE FROM password_warnings WHERE mailbox_id = %d" % row['id'])


def age_password(host, person_id, days):
    psql(host, "UPDATE mailboxes SET password_set_at = now() - make_interval(days => %d) "
               "WHERE account_id = '%s'" % (days, person_id))


def refusals(server, user, secret):
    """What IMAP, POP3 and SMTP AUTH answer this login: protocol -> error text."""
    answers = {}
    try:
        server.imap(user, secret).logout()
        answers['imap'] = None
    except imaplib.IMAP4.error as error:
        answers['imap'] = str(error)
    try:
        server.pop3(user, secret).quit()
        answers['pop3'] = None
    except poplib.error_proto as error:
        answers['pop3'] = str(error)
    try:
        server.submission(user, secret, once=True).quit()
        answers['smtp'] = None
    except smtplib.SMTPAuthenticationError as error:
        answers['smtp'] = '%d %s' % (error.smtp_code, error.smtp_error.decode())
    return answers


def messages(server, user, secret, *criteria):
    client = server.imap(user, secret)
    try:
        client.select('INBOX', readonly=True)
        _typ, data = client.search('UTF-8', *criteria)
        found = []
        for number in data[0].split():
            _typ, parts = client.fetch(number, '(RFC822)')
            found.append(email.message_from_bytes(parts[0][1], policy=email.policy.default))
        return found
    finally:
        client.logout()


def delete_messages(server, user, secret, *criteria):
    client = server.imap(user, secret)
    try:
        client.select('INBOX')
        _typ, data = client.search('UTF-8', *criteria)
        for number in data[0].split():
            client.store(number, '+FLAGS', '\\Deleted')
        client.expunge()
    finally:
        client.logout()


# --- Refused on every desktop path, with the reason ---------------------------

@pytest.mark.parametrize('person_id, days', [(USER, 181), (ADMIN, 91)], ids=['user-181-days', 'admin-91-days'])
def test_expired_password_is_refused_with_the_reason(server, host, lab, person_id, days):
    secret = person(lab, person_id)['password']
    with saved_mailbox(host, person_id):
        age_password(host, person_id, days)
        answers = refusals(server, address(person_id), secret)
        for protocol, answer in answers.items():
            assert answer and EXPIRED in answer, (protocol, answer)
        assert answers['smtp'].startswith('535 ')
        # A wrong password is told nothing about the expiry.
        wrong = refusals(server, address(person_id), secret + 'x')
        assert all(answer and EXPIRED not in answer for answer in wrong.values()), wrong


def test_age_limits_follow_the_role(server, host, lab):
    # 91 days: an administrator's password has expired, a user's has not.
    with saved_mailbox(host, USER):
        age_password(host, USER, 91)
        server.imap(address(USER), person(lab, USER)['password']).logout()


def test_must_change_account_is_refused_with_the_reason(server, host, lab):
    with saved_mailbox(host, USER):
        psql(host, "UPDATE mailboxes SET must_change = true WHERE account_id = '%s'" % USER)
        answers = refusals(server, address(USER), person(lab, USER)['password'])
        for protocol, answer in answers.items():
            assert answer and MUST_CHANGE in answer, (protocol, answer)


def test_webmail_listener_is_loopback_only(host, server):
    listening = host.run('ss -Hltn').stdout
    assert '127.0.0.1:10993 ' in listening
    assert '0.0.0.0:10993 ' not in listening and '*:10993 ' not in listening and '[::]:10993 ' not in listening
    # From the simulated Internet, the host's address on that port answers nothing.
    ip = host.interface('eth0').addresses[0]
    dns = server.container + '-dns'
    probe = subprocess.run(['docker', 'exec', dns, 'bash', '-c', 'exec 3<>/dev/tcp/%s/10993' % ip],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0, 'port 10993 reachable from outside'
    probe = subprocess.run(['docker', 'exec', dns, 'bash', '-c', 'exec 3<>/dev/tcp/%s/993' % ip],
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode == 0, 'the probe itself does not work'


# --- The webmail: only the password page, then everything again ---------------

@pytest.mark.parametrize('person_id, days', [(USER, 181), (ADMIN, 91)], ids=['user', 'admin'])
def test_expired_account_changes_its_password_in_the_webmail(server, host, lab, person_id, days):
    user, old = address(person_id), person(lab, person_id)['password']
    with saved_mailbox(host, person_id), chromium(server, 'password-lifetime') as page:
        age_password(host, person_id, days)
        login(page, user, old)
        assert '_action=plugin.password' in page.url, page.url
        page.screenshot(path=str(page.shots / ('expired-%s.png' % person_id)), full_page=True)
        page.goto(URL + '?_task=mail&_mbox=INBOX')
        assert '_action=plugin.password' in page.url
        new = 'Het-Han-Doi-2026-%s!' % uuid.uuid4().hex[:6]
        message = change_password(page, old, new)
        assert 'error' not in (message.get_attribute('class') or ''), message.inner_text()
        server.imap(user, new).logout()
        server.pop3(user, new).quit()
        server.submission(user, new).quit()
        page.goto(URL + '?_task=mail&_mbox=INBOX')
        if person(lab, person_id).get('role') == 'admin':
            # The next gate: an administrator's role requires the second factor
            # (regulation_twofactor), so the enrolment page (test_twofactor.py).
            assert '_action=plugin.twofactor-enrol' in page.url, page.url
        else:
            assert '_task=mail' in page.url


# --- Password history ------------------------------------------------------------

def test_history_refuses_the_last_three_through_the_webmail_service(host, lab):
    user, start = address(USER), person(lab, USER)['password']
    first, second, third = ('Lich-Su-%d-2026-%s!' % (n, uuid.uuid4().hex[:4]) for n in (1, 2, 3))
    with saved_mailbox(host, USER):
        assert password_service(host, {'action': 'change', 'user': user, 'current': start, 'new': first})['ok']
        assert password_service(host, {'action': 'change', 'user': user, 'current': first, 'new': second})['ok']
        # The last 3: second (current), first, start.
        for reused in (start, first, second):
            reply = password_service(host, {'action': 'change', 'user': user, 'current': second, 'new': reused})
            assert not reply['ok'] and any('last 3 passwords' in e for e in reply['errors']), reply
        assert password_service(host, {'action': 'change', 'user': user, 'current': second, 'new': third})['ok']
        # Now start is the 4th: allowed again.
        assert password_service(host, {'action': 'change', 'user': user, 'current': third, 'new': start})['ok']


def test_history_refuses_an_inventory_reset_to_a_recent_password(host, lab):
    people = people_with_states(lab, {})
    target = next(p for p in people if p['id'] == USER)
    target['password_reset'] = 'reset-test-%s' % uuid.uuid4().hex[:6]   # same password, new token
    with saved_mailbox(host, USER) as saved:
        result = run_playbook('tools/accounts.yml', {'accounts_people': people})
        assert result.returncode != 0
        assert 'reuses one of the last 3 passwords (Điều 4.2)' in result.stdout, result.stdout[-3000:]
        assert target['password'] not in result.stdout + result.stderr
        # Refused before the sync: nothing stored.
        assert psql(host, "SELECT password FROM mailboxes WHERE account_id = '%s'" % USER) == saved['password']
        assert psql(host, "SELECT password_reset FROM mailboxes WHERE account_id = '%s'" % USER) == \
            (saved['password_reset'] or '')


# --- The daily job ---------------------------------------------------------------

def test_expiry_warning_is_sent_once(server, host, lab):
    user, secret = address(WARNED), person(lab, WARNED)['password']
    criteria = ('SUBJECT', '"expires in 7 days"')
    delete_messages(server, user, secret, *criteria)
    with saved_mailbox(host, WARNED):
        # 180 days for a user: 6 days and a half left -> the 7-day warning.
        psql(host, "UPDATE mailboxes SET password_set_at = now() - interval '173 days 12 hours' "
                   "WHERE account_id = '%s'" % WARNED)
        run_job(host)
        run_job(host)
        deadline = time.monotonic() + 60
        while not messages(server, user, secret, *criteria) and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(3)  # a second one, had the re-run sent it, would be there by now
        found = messages(server, user, secret, *criteria)
        assert len(found) == 1, [m['Subject'] for m in found]
        body = found[0].get_body(('plain',)).get_content()
        assert 'Mật khẩu của hộp thư %s sẽ hết hạn' % user in body
        assert body.index('Mật khẩu') < body.index('The password of the mailbox %s expires' % user)
        assert psql(host, "SELECT string_agg(days::text, ',') FROM password_warnings w JOIN mailboxes m "
                          "ON m.id = w.mailbox_id WHERE m.account_id = '%s'" % WARNED) == '7'
    delete_messages(server, user, secret, *criteria)


def test_last_login_is_recorded(server, host, lab):
    psql(host, "UPDATE mailboxes SET last_login = NULL WHERE account_id = '%s'" % WARNED)
    server.imap(address(WARNED), person(lab, WARNED)['password']).logout()
    for _attempt in range(20):
        if psql(host, "SELECT last_login > now() - interval '1 minute' FROM mailboxes "
                      "WHERE account_id = '%s'" % WARNED) == 't':
            break
        time.sleep(0.5)
    else:
        raise AssertionError('the login was not recorded in mailboxes.last_login')


@pytest.fixture
def inactive(host, server, lab):
    """INACTIVE with no login for 100 days, and logins recorded since then."""
    since = psql(host, "SELECT since FROM recorded_since WHERE what = 'last_login'")
    admin_secret = person(lab, ADMIN)['password']
    criteria = ('SUBJECT', '"inactive mailboxes suspended"')
    delete_messages(server, ADMINISTRATOR, admin_secret, *criteria)
    with saved_mailbox(host, INACTIVE):
        psql(host, "UPDATE recorded_since SET since = now() - interval '200 days' WHERE what = 'last_login'")
        psql(host, "UPDATE mailboxes SET last_login = now() - interval '100 days', "
                   "created_at = now() - interval '150 days' WHERE account_id = '%s'" % INACTIVE)
        try:
            yield criteria
        finally:
            psql(host, "UPDATE recorded_since SET since = '%s' WHERE what = 'last_login'" % since)
            run_playbook('tools/accounts.yml', check=True)  # the lab's own inventory (no restore token)
    delete_messages(server, ADMINISTRATOR, admin_secret, *criteria)


def test_inactive_account_is_suspended_receives_and_is_restored(server, host, lab, inactive):
    user, secret = address(INACTIVE), person(lab, INACTIVE)['password']
    run_job(host)
    assert psql(host, "SELECT state || ',' || (suspended_inactive_at IS NOT NULL) FROM mailboxes "
                      "WHERE account_id = '%s'" % INACTIVE) == 'suspended,true'
    # Only that one: every other account logged in or was created recently.
    assert psql(host, "SELECT count(*) FROM mailboxes WHERE suspended_inactive_at IS NOT NULL") == '1'

    # Cannot log in, still receives.
    with pytest.raises(imaplib.IMAP4.error):
        server.imap(user, secret)
    msg = new_message('someone@example.net', user, body='For an inactive mailbox.\n')
    with server.smtp(25) as client:
        assert client.send_message(msg) == {}
    mailbox_id = psql(host, "SELECT id FROM mailboxes WHERE account_id = '%s'" % INACTIVE)
    for _attempt in range(30):
        if host.run("grep -rl -F '%s' /var/vmail/%s/Maildir" % (msg['Message-ID'], mailbox_id)).rc == 0:
            break
        time.sleep(1)
    else:
        raise AssertionError('the suspended mailbox did not receive the message')

    # The administrators are told, once.
    admin_secret = person(lab, ADMIN)['password']
    deadline = time.monotonic() + 60
    while not messages(server, ADMINISTRATOR, admin_secret, *inactive) and time.monotonic() < deadline:
        time.sleep(1)
    run_job(host)
    time.sleep(3)
    told = messages(server, ADMINISTRATOR, admin_secret, *inactive)
    assert len(told) == 1, [m['Subject'] for m in told]
    assert user in told[0].get_body(('plain',)).get_content()

    # The accounts sync keeps the suspension: nothing to change.
    again = run_playbook('tools/accounts.yml', check=True)
    assert 'changed=0' in again.stdout.split('PLAY RECAP')[-1], again.stdout[-3000:]
    assert psql(host, "SELECT state FROM mailboxes WHERE account_id = '%s'" % INACTIVE) == 'suspended'

    # One inventory change (a restore token) and a run restore it.
    people = people_with_states(lab, {})
    next(p for p in people if p['id'] == INACTIVE)['restore'] = '2026-11-29'
    restored = run_playbook('tools/accounts.yml', {'accounts_people': people}, check=True)
    assert 'restored: 1' in restored.stdout, restored.stdout[-3000:]
    server.imap(user, secret).logout()
    # The job does not suspend it again: inactivity counts from the restoration.
    run_job(host)
    assert psql(host, "SELECT state FROM mailboxes WHERE account_id = '%s'" % INACTIVE) == 'active'


def test_lifecycle_job_database_rights(host):
    rights = set(psql(host, "SELECT string_agg(privilege_type || ':' || table_name || '.' || column_name, ' ' "
                            "ORDER BY 1) FROM information_schema.column_privileges "
                            "WHERE grantee = 'mail_lifecycle'").split())
    assert 'UPDATE:mailboxes.state' in rights and 'SELECT:mailboxes.last_login' in rights
    assert 'SELECT:mailboxes.password' not in rights and 'UPDATE:mailboxes.password' not in rights
    assert 'UPDATE:mailboxes.role' not in rights
    timer = host.service('congvu-lifecycle.timer')
    assert timer.is_enabled and timer.is_running
