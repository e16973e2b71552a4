"""The services' database code (congvu_mail.services), against a real PostgreSQL
made by the roles' own SQL (conftest.py: postgres, mailbox_db): each service logs
in as its own database role, with the grants the roles give it, and the mail
they send goes to a real SMTP server (smtp_sink). The sockets they serve are
real Unix sockets, spoken to as Postfix and the webmail do."""

from __future__ import annotations

import datetime as dt
import email
import json
import socket
import threading
import time

import pytest

from congvu_mail import password as rules
from congvu_mail.services import activation, lifecycle, mailpassword, report, sendlimit
from conftest import DB_USERS, as_user

DOMAIN = 'bacgiang.gov.vn'
ADMIN = 'quantri@' + DOMAIN
CHEAP = {'scheme': 'SHA512-CRYPT', 'rounds': 1000}
NOW = dt.datetime.now(dt.timezone.utc)


def add_mailbox(conn, local, role='user', password=None, set_days_ago=None, state='active', must_change=False,
                created_days_ago=1, last_login_days_ago=None):
    with conn.cursor() as cur:
        cur.execute('INSERT INTO domains (name) VALUES (%s) ON CONFLICT DO NOTHING', (DOMAIN,))
        cur.execute(
            "INSERT INTO mailboxes (account_id, address, localpart, domain, name, kind, role, state, quota_bytes,"
            " password, password_set_at, must_change, created_at, last_login)"
            " VALUES (%s, %s, %s, %s, %s, 'person', %s, %s, 1048576, %s,"
            " now() - make_interval(days => %s), %s, now() - make_interval(days => %s),"
            " now() - make_interval(days => %s)) RETURNING id, password_set_at",
            (local, '%s@%s' % (local, DOMAIN), local, DOMAIN, 'Người %s' % local, role, state,
             rules.mail_password_hash(password, **CHEAP) if password else None, set_days_ago, must_change,
             created_days_ago, last_login_days_ago))
        return cur.fetchone()


def wait_for(received, count, seconds=10):
    deadline = time.monotonic() + seconds
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [email.message_from_bytes(e['data']) for e in received]


@pytest.fixture
def serve(tmp_path):
    """Serve a handler on a Unix socket of its own; yield a function returning its path."""
    servers = []

    def start(handler, service):
        path = str(tmp_path / ('service-%d.sock' % len(servers)))
        server = activation.server(handler, service, path=path)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return path
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- The password expiry rule: one implementation, in the database ------------------------

def test_password_expiry_is_the_regulations_age_per_role(mailbox_db, regulation_defaults):
    _name, conn = mailbox_db
    set_at = dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc)
    with conn.cursor() as cur:
        for role, days in regulation_defaults['regulation_password_max_age_days'].items():
            cur.execute('SELECT congvu_password_expires(%s, %s)', (role, set_at))
            assert cur.fetchone()[0] == set_at + dt.timedelta(days=days)
        cur.execute("SELECT congvu_password_expires('user', NULL), congvu_password_expires('guest', now())")
        assert cur.fetchone() == (None, None)


# --- sendlimit (Điều 4.8) ---------------------------------------------------------------

def policy_session(path, requests):
    """Postfix's policy delegation protocol, several requests on one connection."""
    answers = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        reader = sock.makefile('rb')
        for attrs in requests:
            sock.sendall(''.join('%s=%s\n' % item for item in attrs.items()).encode() + b'\n')
            answer = reader.readline().decode().strip()
            assert reader.readline() == b'\n'
            answers.append(answer)
    return answers


def rcpt(recipient, account='longnv@' + DOMAIN, client='192.0.2.7'):
    return {'request': 'smtpd_access_policy', 'protocol_state': 'RCPT', 'sasl_username': account,
            'recipient': recipient, 'client_address': client}


def test_sendlimit_blocks_an_account_over_the_limit_and_alerts_once(mailbox_db, postgres, smtp_sink, serve):
    name, conn = mailbox_db
    add_mailbox(conn, 'longnv')
    host, port, received = smtp_sink
    service = sendlimit.Service({
        'database': as_user(postgres, name, DB_USERS['mail_database_sendlimit_user']),
        'messages': 3, 'minutes': 10, 'admins': [ADMIN], 'alert_from': 'postmaster@' + DOMAIN,
        'reject_message': '5.7.1 blocked (test)', 'smtp': {'host': host, 'port': port}})
    path = serve(sendlimit.Handler, service)
    answers = policy_session(path, [
        rcpt('ductm@' + DOMAIN),                                   # hosted: never counted
        *[rcpt('user%d@example.net' % n) for n in range(2)],       # outside: up to the limit,
        rcpt('user2@example.net', client='2001:db8::7'),           # from IPv4 and IPv6
        rcpt('user3@example.org'),                                 # one more: blocked
        rcpt('ductm@' + DOMAIN),                                   # blocked for every recipient
        {'request': 'smtpd_access_policy', 'protocol_state': 'RCPT', 'recipient': 'x@example.net'},  # no login
    ])
    assert answers == ['action=DUNNO'] * 4 + ['action=REJECT 5.7.1 blocked (test)'] * 2 + ['action=DUNNO']
    with conn.cursor() as cur:
        cur.execute('SELECT account, recipients, client_addresses FROM sendlimit_blocks WHERE released_at IS NULL')
        assert cur.fetchall() == [('longnv@' + DOMAIN, 4, ['192.0.2.7', '2001:db8::7'])]
    alerts = wait_for(received, 1)
    assert len(alerts) == 1 and received[0]['from'] == '' and received[0]['to'] == [ADMIN]
    assert 'longnv@' + DOMAIN in alerts[0]['Subject'] and alerts[0]['Auto-Submitted'] == 'auto-generated'
    assert 'limit 3' in alerts[0].get_payload() and '2001:db8::7' in alerts[0].get_payload()
    # Released, it counts again from the release.
    with conn.cursor() as cur:
        cur.execute("UPDATE sendlimit_blocks SET released_at = now(), released_by = 'test'")
    assert policy_session(path, [rcpt('again@example.net')]) == ['action=DUNNO']


def test_sendlimit_defers_when_the_database_is_unreachable(postgres, serve):
    service = sendlimit.Service({
        'database': as_user(postgres, 'no_such_database', DB_USERS['mail_database_sendlimit_user']),
        'messages': 3, 'minutes': 10, 'admins': [ADMIN], 'alert_from': 'postmaster@' + DOMAIN,
        'reject_message': '5.7.1 blocked'})
    answer, = policy_session(serve(sendlimit.Handler, service), [rcpt('a@example.net')])
    assert answer.startswith('action=DEFER_IF_PERMIT 4.3.0')


# --- mailpassword (Điều 4.1, 4.2) -----------------------------------------------------

def ask(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(json.dumps(request).encode() + b'\n')
        return json.loads(sock.makefile('rb').readline())


@pytest.fixture
def password_service(mailbox_db, postgres, policy, serve):
    name, conn = mailbox_db
    service = mailpassword.Service({'database': as_user(postgres, name, DB_USERS['mail_database_passwd_user']),
                                    'policy': policy, 'hash': CHEAP})
    return serve(mailpassword.Handler, service), conn


def test_password_change_checks_the_rules_and_keeps_the_history(password_service):
    path, conn = password_service
    add_mailbox(conn, 'tuyetdta', password='Initial-Pass-2026!', set_days_ago=1, must_change=True)
    user = 'TuyetDTA@' + DOMAIN  # as typed: case does not matter
    assert ask(path, {'action': 'status', 'user': user}) == {'ok': True, 'must_change': True, 'expired': False}
    change = {'action': 'change', 'user': user, 'current': 'Wrong-Pass-2026!', 'new': 'Next-Pass-2026!'}
    assert ask(path, change) == {'ok': False, 'errors': [mailpassword.WRONG_CURRENT]}
    weak = ask(path, dict(change, current='Initial-Pass-2026!', new='tuyetdta1'))
    assert not weak['ok'] and 'has no upper-case letter (Điều 4.1)' in weak['errors']
    assert any('login name' in e for e in weak['errors'])
    assert ask(path, dict(change, current='Initial-Pass-2026!', new='Initial-Pass-2026!'))['errors'] == [
        rules.MSG_REUSED.format(history=3)]
    assert ask(path, dict(change, current='Initial-Pass-2026!')) == {'ok': True}
    with conn.cursor() as cur:
        cur.execute('SELECT password, must_change FROM mailboxes')
        stored, must_change = cur.fetchone()
        cur.execute('SELECT password FROM password_history')
        history = [row[0] for row in cur.fetchall()]
    assert rules.mail_password_verify('Next-Pass-2026!', stored) and must_change is False
    assert len(history) == 1 and rules.mail_password_verify('Initial-Pass-2026!', history[0])
    assert ask(path, {'action': 'status', 'user': user}) == {'ok': True, 'must_change': False, 'expired': False}


def test_password_status_says_expired_at_the_regulations_age(password_service, regulation_defaults):
    path, conn = password_service
    ages = regulation_defaults['regulation_password_max_age_days']
    add_mailbox(conn, 'admin1', role='admin', password='Admin-Pass-2026!!', set_days_ago=ages['admin'] + 1)
    add_mailbox(conn, 'user1', role='user', password='User-Pass-2026!', set_days_ago=ages['admin'] + 1)
    assert ask(path, {'action': 'status', 'user': 'admin1@' + DOMAIN}) == {
        'ok': True, 'must_change': True, 'expired': True}
    assert ask(path, {'action': 'status', 'user': 'user1@' + DOMAIN}) == {
        'ok': True, 'must_change': False, 'expired': False}
    assert ask(path, {'action': 'status', 'user': 'nobody@' + DOMAIN})['ok'] is False


def test_password_service_refuses_malformed_requests(password_service):
    path, _conn = password_service
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(b'not json\n')
        assert json.loads(sock.makefile('rb').readline()) == {'ok': False, 'errors': ['malformed request']}
    assert ask(path, {'action': 'change', 'user': 'x@' + DOMAIN}) == {'ok': False, 'errors': ['no password given']}
    assert ask(path, {'action': 'drop', 'user': 'x@' + DOMAIN}) == {'ok': False, 'errors': ['unknown action']}


# --- lifecycle (Điều 4.2, Điều 7) -------------------------------------------------------

def test_lifecycle_warns_before_expiry_and_suspends_the_inactive_once(mailbox_db, postgres, smtp_sink,
                                                                     regulation_defaults):
    name, conn = mailbox_db
    ages = regulation_defaults['regulation_password_max_age_days']
    inactive = regulation_defaults['regulation_inactivity_suspend_days']
    add_mailbox(conn, 'soon', set_days_ago=ages['user'] - 5)                    # expires in 5 days
    add_mailbox(conn, 'fresh', set_days_ago=1)                                  # nothing due
    add_mailbox(conn, 'idle', set_days_ago=1, created_days_ago=inactive + 10)   # never logged in
    add_mailbox(conn, 'busy', set_days_ago=1, created_days_ago=inactive + 10, last_login_days_ago=1)
    with conn.cursor() as cur:
        cur.execute("UPDATE recorded_since SET since = now() - make_interval(days => %s)", (inactive + 20,))
    host, port, received = smtp_sink
    settings = {'database': as_user(postgres, name, DB_USERS['mail_database_lifecycle_user']),
                'warning_days': [14, 7, 1], 'inactivity_days': inactive, 'administrators': [ADMIN],
                'sender': 'postmaster@' + DOMAIN, 'smtp': {'host': host, 'port': port},
                'webmail_url': 'https://mail.%s/' % DOMAIN, 'hostname': 'mail.' + DOMAIN}
    lifecycle.Job(settings).run()
    messages = wait_for(received, 2)
    by_to = {m['To']: m for m in messages}
    assert set(by_to) == {'soon@' + DOMAIN, ADMIN}
    assert 'expires in 7 days' in by_to['soon@' + DOMAIN]['Subject']
    assert 'idle@' + DOMAIN in by_to[ADMIN].get_payload(decode=True).decode()
    with conn.cursor() as cur:
        cur.execute("SELECT localpart, state, suspended_inactive_at IS NOT NULL FROM mailboxes ORDER BY 1")
        assert cur.fetchall() == [('busy', 'active', False), ('fresh', 'active', False),
                                  ('idle', 'suspended', True), ('soon', 'active', False)]
        cur.execute('SELECT days FROM password_warnings')
        assert cur.fetchall() == [(7,)]
    lifecycle.Job(settings).run()  # a re-run repeats nothing
    time.sleep(0.2)
    assert len(received) == 2


# --- report ---------------------------------------------------------------------------

def test_report_lists_expiring_suspended_and_locked_accounts(mailbox_db, postgres, regulation_defaults):
    name, conn = mailbox_db
    ages = regulation_defaults['regulation_password_max_age_days']
    _id, soon_set = add_mailbox(conn, 'soon', set_days_ago=ages['user'] - 5)
    add_mailbox(conn, 'late', role='admin', set_days_ago=ages['admin'] + 2)
    add_mailbox(conn, 'fresh', set_days_ago=1)
    add_mailbox(conn, 'gone', state='suspended', set_days_ago=1)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO sendlimit_blocks (account, recipients, client_addresses) "
                    "VALUES ('fresh@%s', 300, '{192.0.2.7,2001:db8::7}')" % DOMAIN)
    found = report.from_database({'database': as_user(postgres, name, DB_USERS['report_user']),
                                  'expiring_days': 14}, NOW)
    assert [(e['address'], e['expired']) for e in found['expiring']] == [
        ('late@' + DOMAIN, True), ('soon@' + DOMAIN, False)]
    assert found['expiring'][1]['expires'] == (soon_set + dt.timedelta(days=ages['user'])).date().isoformat()
    assert [s['address'] for s in found['suspended']] == ['gone@' + DOMAIN]
    assert found['locked'][0]['address'] == 'fresh@' + DOMAIN and found['locked'][0]['recipients'] == 300
    assert found['locked'][0]['from'] == '192.0.2.7, 2001:db8::7'
