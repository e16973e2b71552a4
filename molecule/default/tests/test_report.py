"""The administrators' report (issue 6): playbooks/tools/report-now.yml and the weekly mail.

Each test first makes the events the report must show, from outside the host
(failed logins over IMAP, POP3 and SMTP AUTH; messages submitted by a
logged-in user; an executable and a virus refused), moves stored dates to
make a password expire soon and an account suspended, then reads the report:
as printed and saved by the playbook, and as mailed by the weekly timer's
service to the administrators' mailbox.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import imaplib
import json
import poplib
import smtplib
import time
import uuid

import pytest
import yaml

from mailtest import PROJECT, new_message, psql, run_playbook
from test_hygiene import EICAR, windows_executable, with_attachment

DOMAIN = 'bacgiang.gov.vn'
ADMIN = 'longnv@' + DOMAIN              # BG0001, the lab's administrator
SENDER = 'tuyetdta@' + DOMAIN           # BG0003
EXPIRING = 'ductm@' + DOMAIN            # BG0004, a user
SUSPENDED = 'hoalt@' + DOMAIN           # BG0005
LOCKED = 'longnv2@' + DOMAIN            # BG0002
REGULATION = yaml.safe_load((PROJECT / 'roles' / 'regulation' / 'defaults' / 'main.yml').read_text(encoding='utf-8'))
PASSWORDS = {'BG0001': ADMIN, 'BG0003': SENDER}
SUBMITTED = 3


def password(lab, address):
    person_id = next(pid for pid, addr in PASSWORDS.items() if addr == address)
    return next(person['password'] for person in lab['accounts_people'] if person['id'] == person_id)


def smtp_auth_plain(server, user, secret):
    """One refused AUTH PLAIN on 587 (smtplib's login() would also try LOGIN: two
    failures). An smtpd process whose earlier client hung up during Dovecot's
    failure delay answers 454 (Connection lost to authentication server); a
    client tries again."""
    for _attempt in range(3):
        session = smtplib.SMTP('127.0.0.1', server.port(587), timeout=30)
        try:
            session.ehlo('client.test')
            session.starttls(context=server.tls())
            session.ehlo('client.test')
            session.user, session.password = user, secret
            session.auth('PLAIN', session.auth_plain)
        except smtplib.SMTPAuthenticationError as error:
            if error.smtp_code != 454:
                raise
        finally:
            try:
                session.quit()
            except smtplib.SMTPException:
                session.close()
    raise AssertionError('AUTH PLAIN was never answered 535')


@pytest.fixture(scope='module')
def events(server, lab, host):
    """Make what the report must show; undo the stored changes afterwards."""
    client = server.submission(SENDER, password(lab, SENDER))
    try:
        for number in range(SUBMITTED):
            client.send_message(new_message(SENDER, ADMIN, subject='Báo cáo thử %d' % number))
        refused = {}
        for reason, (filename, data) in {'attachment': ('setup.exe', windows_executable()),
                                         'virus': ('eicar.txt', EICAR)}.items():
            with pytest.raises(smtplib.SMTPDataError) as error:
                client.send_message(with_attachment(SENDER, ADMIN, filename, data))
            refused[reason] = error.value.smtp_code
    finally:
        client.quit()
    assert refused == {'attachment': 554, 'virus': 554}

    probe = 'report-probe-%s@%s' % (uuid.uuid4().hex[:8], DOMAIN)
    for attempt in (lambda: smtp_auth_plain(server, probe, 'Sai-Mat-Khau-3!'),
                    lambda: server.imap(probe, 'Sai-Mat-Khau-1!'),
                    lambda: server.pop3(probe, 'Sai-Mat-Khau-2!')):
        with pytest.raises((imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPAuthenticationError)):
            attempt()

    saved = psql(host, "SELECT address || '|' || password_set_at || '|' || state || '|' || state_changed_at "
                       "FROM mailboxes WHERE address IN ('%s', '%s') ORDER BY 1" % (EXPIRING, SUSPENDED))
    # A user's password that expires in 5 days; one account suspended 3 days ago.
    age = REGULATION['regulation_password_max_age_days']['user'] - 5
    psql(host, "UPDATE mailboxes SET password_set_at = now() - interval '%d days' WHERE address = '%s'"
               % (age, EXPIRING))
    psql(host, "UPDATE mailboxes SET state = 'suspended', state_changed_at = now() - interval '3 days' "
               "WHERE address = '%s'" % SUSPENDED)
    # An account stopped for mass sending (role sendlimit's record of it).
    psql(host, "INSERT INTO sendlimit_blocks (account, recipients, client_addresses) "
               "VALUES ('%s', 251, ARRAY['192.0.2.25'])" % LOCKED)
    yield probe
    psql(host, "DELETE FROM sendlimit_blocks WHERE account = '%s' AND client_addresses = ARRAY['192.0.2.25']" % LOCKED)
    for row in saved.splitlines():
        address, set_at, state, changed_at = row.split('|')
        psql(host, "UPDATE mailboxes SET password_set_at = '%s', state = '%s', state_changed_at = '%s' "
                   "WHERE address = '%s'" % (set_at, state, changed_at, address))


def wait_for_report(report_of, probe, timeout=60):
    """Logs reach the file a moment after the session: read until the probe shows."""
    deadline = time.monotonic() + timeout
    while True:
        report = report_of()
        if any(entry['login'] == probe for entry in report['failed']['by_account']) or time.monotonic() > deadline:
            return report
        time.sleep(2)


@pytest.fixture(scope='module')
def printed(events, tmp_path_factory):
    """The report as playbooks/tools/report-now.yml prints and saves it."""
    directory = tmp_path_factory.mktemp('report')
    runs = []

    def report_of():
        result = run_playbook('tools/report-now.yml', {'report_save_dir': str(directory)}, check=True)
        runs.append(result.stdout)
        (saved,) = directory.glob('*.json')
        return json.loads(saved.read_text(encoding='utf-8'))
    report = wait_for_report(report_of, events)
    return report, runs[-1]


def test_report_counts_failed_logins_of_every_protocol(printed, events):
    report, _output = printed
    (probe,) = [entry for entry in report['failed']['by_account'] if entry['login'] == events]
    # IMAP, POP3 and SMTP AUTH: one failure each.
    assert probe['count'] == 3, report['failed']
    assert report['failed']['by_address'], report['failed']


def test_report_names_the_top_senders(printed):
    report, _output = printed
    (sender,) = [entry for entry in report['senders'] if entry['login'] == SENDER]
    # The refused messages were submitted too, but never queued.
    assert sender['messages'] >= SUBMITTED and sender['recipients'] >= SUBMITTED, report['senders']


def test_report_lists_refused_attachments_and_viruses(printed):
    report, _output = printed
    assert report['rejected']['counts']['attachment'] >= 1 and report['rejected']['counts']['virus'] >= 1
    reasons = {(entry['reason'], entry['from'], entry['to']) for entry in report['rejected']['last']}
    assert {('attachment', SENDER, ADMIN), ('virus', SENDER, ADMIN)} <= reasons, report['rejected']


def test_report_lists_expiring_passwords_suspended_and_stopped_accounts(printed):
    report, _output = printed
    (expiring,) = [entry for entry in report['expiring'] if entry['address'] == EXPIRING]
    assert expiring['role'] == 'user' and not expiring['expired'], expiring
    assert SUSPENDED in {entry['address'] for entry in report['suspended']}, report['suspended']
    (locked,) = [entry for entry in report['locked'] if entry['address'] == LOCKED]
    assert locked['recipients'] == 251 and locked['from'] == '192.0.2.25', locked
    assert ADMIN not in {entry['address'] for entry in report['expiring']}


def test_playbook_prints_the_report_and_no_secret(printed, lab):
    _report, output = printed
    assert 'Failed logins' in output and 'Top senders' in output and EXPIRING in output, output[-3000:]
    for person in lab['accounts_people']:
        assert person['password'] not in output
    assert 'CRYPT}' not in output


def test_weekly_mail_reaches_the_administrators(server, lab, host, printed, events):
    started = psql(host, 'SELECT now()')
    result = host.run('systemctl start congvu-report.service')
    assert result.rc == 0, result.stderr + host.run('journalctl -u congvu-report.service -n 20').stdout
    assert host.service('congvu-report.timer').is_enabled
    deadline = time.monotonic() + 60
    while True:
        client = server.imap(ADMIN, password(lab, ADMIN))
        try:
            client.select('INBOX', readonly=True)
            _typ, data = client.search(None, 'SUBJECT', '"Weekly mail report"')
            messages = [email.message_from_bytes(client.fetch(number, '(RFC822)')[1][0][1], policy=email.policy.default)
                        for number in data[0].split()]
        finally:
            client.logout()
        fresh = [m for m in messages if events in m.get_content()]
        if fresh or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert fresh, 'no report since %s in %s' % (started, ADMIN)
    body = fresh[-1].get_content()
    assert 'Báo cáo' in str(email.header.make_header(email.header.decode_header(fresh[-1]['Subject'])))
    assert EXPIRING in body and SUSPENDED in body and SENDER in body, body
