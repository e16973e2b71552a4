"""The system on four hosts (molecule.yml): mail flows end to end across them,
and every crossing of credentials or mail uses TLS, checked where it lands.

Tried from outside, through each host's published loopback ports, and from
the hosts themselves (docker exec) for what only the private network sees.
"""

from __future__ import annotations

import imaplib
import json
import os
import re
import smtplib
import ssl
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from mailtest import Server, _PinnedHTTPS, new_message

DOMAIN = 'bacgiang.gov.vn'
LONG = 'longnv@' + DOMAIN        # Nguyễn Văn Long
TUYET = 'tuyetdta@' + DOMAIN     # Đặng Thị Ánh Tuyết
NET = os.environ.get('CONGVU_NET') or '172.30.200'
ADDRESS = {'mx': NET + '.11', 'mailstore': NET + '.12', 'db': NET + '.13', 'webmail': NET + '.14'}


def container(role):
    prefix = os.environ.get('CONGVU_PREFIX') or 'congvu'
    return '%s-%s-%s' % (prefix, os.environ.get('MOLECULE_SCENARIO_NAME', 'cluster'), role)


def on(role, command, stdin=None):
    """A command on one of the hosts, as root."""
    return subprocess.run(['docker', 'exec', '-i', container(role), 'sh', '-c', command],
                          input=stdin, capture_output=True, text=True, timeout=120)


def password(lab, person_id):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


@pytest.fixture(scope='session')
def ca_file():
    return Path(os.environ['MOLECULE_EPHEMERAL_DIRECTORY']) / 'tls' / 'ca.crt'


@pytest.fixture(scope='session')
def mx(ca_file):
    return Server(container('mx'), ca_file)


@pytest.fixture(scope='session')
def mailstore(ca_file):
    return Server(container('mailstore'), ca_file)


@pytest.fixture(scope='session')
def webmail(ca_file):
    return Server(container('webmail'), ca_file)


def log_since(role, since, pattern):
    """Mail log lines of a host since a time (journal), matching a pattern."""
    out = on(role, "journalctl -q --no-pager --since '@%d'" % since).stdout
    return [line for line in out.splitlines() if re.search(pattern, line)]


# --- Mail flows end to end ------------------------------------------------------

def test_mail_from_outside_to_mx_arrives_on_the_mailstore(mx, mailstore, lab):
    started = int(time.time()) - 1
    msg = new_message('someone@example.net', TUYET, body='Across hosts.\n')
    with mx.smtp(25) as client:
        client.starttls(context=mx.tls())
        client.ehlo('runner.example.net')
        assert client.send_message(msg) == {}
    got = mailstore.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])
    assert got['Message-ID'] == msg['Message-ID']
    # Postfix on mx handed it to the mailstore over LMTP with a verified certificate.
    assert log_since('mx', started, r'Verified TLS connection established to mailstore\.%s\[%s\]:24'
                     % (re.escape(DOMAIN), re.escape(ADDRESS['mailstore'])))
    assert log_since('mx', started, r'relay=mailstore\.%s\[%s\]:24.*status=sent' % (re.escape(DOMAIN),
                                                                                    re.escape(ADDRESS['mailstore'])))


def test_submission_with_login_on_mx_reaches_the_recipient(mx, mailstore, lab):
    msg = new_message(LONG, TUYET, subject='Gửi qua mx', body='Submitted on mx, read on the mailstore.\n')
    with mx.submission(LONG, password(lab, 'BG0001'), port=587) as client:
        client.send_message(msg)
    got = mailstore.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])
    assert got['Subject'] == 'Gửi qua mx'


def test_wrong_password_is_refused_on_mx(mx, lab):
    with pytest.raises(smtplib.SMTPAuthenticationError):
        with mx.submission(LONG, 'Not-The-Password-1!', port=587):
            pass


def webmail_session(server, user, pw):
    """Log in to Roundcube over HTTPS; returns (cookie header, request token)."""
    name = 'mail.' + DOMAIN
    context = ssl.create_default_context(cafile=str(server.ca_file))

    def request(method, path, body=None, headers=None):
        conn = _PinnedHTTPS(name, server.port(443), context)
        try:
            conn.request(method, path, body=body, headers=dict({'Host': name}, **(headers or {})))
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read().decode('utf-8', 'replace')
        finally:
            conn.close()

    cookies = {}

    def keep(headers):
        for key, value in headers:
            if key.lower() == 'set-cookie':
                pair = value.split(';', 1)[0]
                cookies[pair.split('=', 1)[0]] = pair.split('=', 1)[1]

    def jar():
        return '; '.join('%s=%s' % item for item in cookies.items())

    status, headers, page = request('GET', '/')
    keep(headers)
    token = re.search(r'name="_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({'_token': token, '_task': 'login', '_action': 'login', '_timezone': 'UTC',
                                   '_url': '', '_user': user, '_pass': pw})
    status, headers, _ = request('POST', '/?_task=login', body=form,
                                 headers={'Content-Type': 'application/x-www-form-urlencoded', 'Cookie': jar()})
    keep(headers)
    assert status == 302, status
    status, headers, page = request('GET', '/?_task=mail&_mbox=INBOX', headers={'Cookie': jar()})
    keep(headers)
    token = re.search(r'"request_token":"([^"]+)"', page).group(1)
    return request, jar, token


def test_webmail_on_its_host_lists_mail_read_from_the_mailstore(mx, mailstore, webmail, lab):
    started = int(time.time()) - 1
    subject = 'Webmail cluster %d' % started
    msg = new_message('someone@example.net', TUYET, subject=subject, body='Listed by the webmail.\n')
    with mx.smtp(25) as client:
        client.starttls(context=mx.tls())
        client.ehlo('runner.example.net')
        client.send_message(msg)
    mailstore.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])
    request, jar, token = webmail_session(webmail, TUYET, password(lab, 'BG0003'))
    status, _headers, body = request('GET', '/?_task=mail&_action=list&_mbox=INBOX&_remote=1',
                                     headers={'Cookie': jar(), 'X-Roundcube-Request': token})
    assert status == 200
    assert subject in json.loads(body)['exec'], body[:2000]
    # The webmail's IMAP session reached Dovecot on the mailstore from the
    # webmail's address, over TLS, on the webmail's own listener.
    logins = log_since('mailstore', started, r'imap-login: Login: user=<%s>.*rip=%s, lip=%s.*TLS'
                       % (re.escape(TUYET), re.escape(ADDRESS['webmail']), re.escape(ADDRESS['mailstore'])))
    assert logins


# --- TLS on every crossing -------------------------------------------------------

def test_remote_database_connections_all_use_tls():
    out = on('db', "runuser -u postgres -- psql -XAtq -c \"SELECT a.usename, host(a.client_addr), s.ssl "
                   "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                   "WHERE a.client_addr IS NOT NULL AND host(a.client_addr) NOT IN ('127.0.0.1', '::1')\"")
    assert out.returncode == 0, out.stderr
    rows = [line.split('|') for line in out.stdout.split()]
    assert rows, 'no remote connection to the database'
    assert all(ssl_used == 't' for _user, _addr, ssl_used in rows), rows
    # The MX's lookups and login checks, and the mailstore's, connect from their hosts.
    assert {ADDRESS['mx'], ADDRESS['mailstore']} <= {addr for _user, addr, _ssl in rows}, rows


@pytest.mark.parametrize('sslmode, refused', [('disable', True), ('verify-full', False)])
def test_database_refuses_a_plain_connection_from_another_host(lab, sslmode, refused):
    script = ("import psycopg2, sys\n"
              "try:\n"
              "    psycopg2.connect(host='db.%s', dbname='mail', user='mail_postfix', password=sys.stdin.read(),\n"
              "                     sslmode='%s', sslrootcert='/etc/ssl/congvu-mail/ca.crt', connect_timeout=10).close()\n"
              "    print('connected')\n"
              "except psycopg2.OperationalError as error:\n"
              "    print('refused', error)\n" % (DOMAIN, sslmode))
    on('mx', 'cat > /tmp/pgtry.py', stdin=script)
    out = on('mx', 'python3 /tmp/pgtry.py', stdin=lab['mail_database_postfix_password'])
    if refused:
        assert out.stdout.startswith('refused') and 'no encryption' in out.stdout, out.stdout + out.stderr
    else:
        assert out.stdout.startswith('connected'), out.stdout + out.stderr


def test_lmtp_on_the_mailstore_requires_a_name_the_certificate_carries():
    """Postfix checks the mailstore's certificate: a client checking another
    name fails, one checking the mailstore's name succeeds (same CA)."""
    script = ("import smtplib, ssl, sys\n"
              "ctx = ssl.create_default_context(cafile='/etc/ssl/congvu-mail/ca.crt')\n"
              "c = smtplib.LMTP('mailstore.%s', 24, timeout=20)\n"
              "c._host = sys.argv[1]\n"
              "try:\n"
              "    c.starttls(context=ctx); print('verified')\n"
              "except ssl.SSLCertVerificationError:\n"
              "    print('unverified')\n" % DOMAIN)
    on('mx', 'cat > /tmp/lmtptry.py', stdin=script)
    assert on('mx', 'python3 /tmp/lmtptry.py mailstore.%s' % DOMAIN).stdout.strip() == 'verified'
    assert on('mx', 'python3 /tmp/lmtptry.py other.%s' % DOMAIN).stdout.strip() == 'unverified'


def test_no_plain_imap_login_from_the_private_network(lab):
    """The webmail's own listener on the mailstore speaks TLS only."""
    script = ("import socket\n"
              "s = socket.create_connection(('mailstore.%s', 10993), timeout=10)\n"
              "try:\n"
              "    s.sendall(b'a LOGIN x y\\r\\n')\n"
              "    data = s.recv(200)\n"
              "except (OSError, socket.timeout):\n"
              "    data = b''\n"
              "print('plain' if data.startswith(b'* OK') else 'tls-only')\n" % DOMAIN)
    on('webmail', 'cat > /tmp/imaptry.py', stdin=script)
    out = on('webmail', 'python3 /tmp/imaptry.py')
    assert out.stdout.strip() == 'tls-only', out.stdout + out.stderr


def test_sieve_redirect_goes_from_the_mailstore_through_mx_over_tls(mx, mailstore, lab):
    """A user's redirect (ManageSieve, STARTTLS, on the mailstore) is submitted
    to the MX's sieve service, which requires TLS and the mailstore's address."""
    started = int(time.time()) - 1
    user, secret = TUYET, password(lab, 'BG0003')
    with mailstore.managesieve(user, secret) as session:
        session.put_script('congvu-test', 'redirect "%s";\n' % LONG)
        session.activate('congvu-test')
    try:
        msg = new_message('someone@example.net', user, body='Redirected across hosts.\n')
        with mx.smtp(25) as client:
            client.starttls(context=mx.tls())
            client.ehlo('runner.example.net')
            client.send_message(msg)
        mailstore.wait_for_message(LONG, password(lab, 'BG0001'), msg['Message-ID'])
    finally:
        with mailstore.managesieve(user, secret) as session:
            session.command(b'SETACTIVE ""')
            session.command(b'DELETESCRIPT "congvu-test"')
    assert log_since('mx', started, r'postfix/sieve/smtpd.*TLS connection established from mailstore\.%s\[%s\]'
                     % (re.escape(DOMAIN), re.escape(ADDRESS['mailstore'])))


def test_plain_submission_to_the_sieve_service_is_refused():
    """The MX's sieve service takes mail only over TLS (and only from the mailstore)."""
    script = ("import smtplib\n"
              "c = smtplib.SMTP('mx.%s', 10026, timeout=20)\n"
              "c.ehlo('mailstore.%s')\n"
              "code, _ = c.mail('longnv@%s')\n"
              "print(code)\n" % (DOMAIN, DOMAIN, DOMAIN))
    on('mailstore', 'cat > /tmp/sievetry.py', stdin=script)
    out = on('mailstore', 'python3 /tmp/sievetry.py')
    assert out.stdout.strip() == '530', out.stdout + out.stderr  # 5.7.0 Must issue a STARTTLS command first


def rspamd_log_lines():
    return int(on('mx', 'wc -l < /var/log/rspamd/rspamd.log').stdout.strip() or 0)


def rspamd_log_after(count):
    return on('mx', 'tail -n +%d /var/log/rspamd/rspamd.log' % (count + 1)).stdout.splitlines()


def test_spam_learning_from_the_mailstore_reaches_rspamd_on_mx(mx, mailstore, lab):
    """Moving a message into Junk on the mailstore makes rspamd on the MX learn
    it, from the mailstore's address."""
    before = rspamd_log_lines()
    user, secret = TUYET, password(lab, 'BG0003')
    words = ' '.join('khuyenmai%d giamgia%d' % (i, i) for i in range(40))
    msg = new_message('someone@example.net', user, subject='Learn %d' % time.time(), body=words + '\n')
    with mx.smtp(25) as client:
        client.starttls(context=mx.tls())
        client.ehlo('runner.example.net')
        client.send_message(msg)
    mailstore.wait_for_message(user, secret, msg['Message-ID'])
    client = mailstore.imap(user, secret)
    try:
        client.select('INBOX')
        _typ, data = client.uid('SEARCH', 'HEADER', 'Message-ID', msg['Message-ID'])
        typ, _ = client.uid('MOVE', data[0].split()[-1], 'Junk')
        assert typ == 'OK'
    finally:
        client.logout()
    learned = []
    deadline = time.monotonic() + 30
    while not learned and time.monotonic() < deadline:
        time.sleep(1)
        lines = rspamd_log_after(before)
        learned = [line for line in lines if msg['Message-ID'].strip('<>') in line
                   and re.search(r'learned message as spam|has been already learned as spam', line)]
    assert learned, 'rspamd on mx did not learn the message'
    assert any('controller' in line and ADDRESS['mailstore'] in line for line in lines)


def test_spam_learning_requests_are_encrypted_to_the_controllers_key():
    """The mailstore's rspamc encrypts to the controller's public key: with
    that key the controller answers, with another key it cannot decrypt."""
    key = on('mailstore', 'grep -o -- "--key [a-z0-9]*" /etc/dovecot/sieve/rspamd-learn-spam.sh | cut -d" " -f2'
             ).stdout.strip()
    assert key, 'the learning script does not encrypt'
    other = on('mx', 'rspamadm keypair -j').stdout
    other_key = json.loads(other)['keypair']['pubkey']
    ping = '/usr/bin/rspamc --connect mx.%s:11334 --key %%s stat' % DOMAIN
    assert 'Messages scanned' in on('mailstore', ping % key).stdout
    assert 'Messages scanned' not in on('mailstore', ping % other_key).stdout


def test_directory_bind_checks_the_password_on_the_mailstore_over_tls(ca_file, lab):
    """A directory bind (db host) checks the mail password by an IMAP login on
    the mailstore, carried over TLS from the db host's address."""
    started = int(time.time()) - 1
    directory = Server(container('db'), ca_file)
    dn = 'uid=longnv,ou=people,dc=bacgiang,dc=gov,dc=vn'
    code, entries, err = directory.ldapsearch(dn, password(lab, 'BG0001'), '(uid=longnv)', ['mail'])
    assert code == 0, err
    assert any(LONG in attrs.get('mail', []) for attrs in entries.values()), entries
    code, _entries, _err = directory.ldapsearch(dn, 'Not-The-Password-1!', '(uid=longnv)', ['mail'])
    assert code == 49  # invalid credentials
    assert log_since('mailstore', started, r'imap-login: Login: user=<%s>.*rip=%s.*TLS'
                     % (re.escape(LONG), re.escape(ADDRESS['db'])))


# --- Recovery after the database host restarts (docs/hygiene.md) ----

def test_mx_takes_mail_again_soon_after_the_database_host_is_back(mx, mailstore, lab):
    """PostgreSQL on db stops: mx defers (451); it starts again: mx's
    congvu-postfix-recover reloads Postfix, and the sender's retries are
    accepted within its interval and a retry (45 s), not after minutes."""
    started = int(time.time()) - 1
    msg = new_message('someone@example.net', TUYET, body='Sent while the database host restarted.\n')
    assert on('db', 'systemctl stop postgresql').returncode == 0
    try:
        time.sleep(12)  # the check sees the database down
        with mx.smtp(25) as client:
            assert client.mail('someone@example.net')[0] == 250
            code, reply = client.rcpt(TUYET)
        assert code == 451, (code, reply)
    finally:
        assert on('db', 'systemctl start postgresql').returncode == 0
    back = time.monotonic()
    while True:
        try:
            with mx.smtp(25) as client:
                client.send_message(msg)
            break
        except smtplib.SMTPRecipientsRefused as refused:
            code, reply = refused.recipients[TUYET]
            assert code == 451 and time.monotonic() < back + 45, (code, reply, time.monotonic() - back)
            time.sleep(5)
    assert log_since('mx', started, r'congvu-postfix-recover.*answering again.*reloading Postfix')
    # Dovecot on the mailstore reconnects to the database on its own schedule:
    # logins (and LMTP's user lookups, which Postfix retries after 60 s) fail
    # temporarily meanwhile. The message arrives once both are back.
    deadline = time.monotonic() + 180
    while True:
        try:
            mailstore.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'],
                                       timeout=max(1, deadline - time.monotonic()))
            break
        except imaplib.IMAP4.error as error:
            assert 'UNAVAILABLE' in str(error) and time.monotonic() < deadline, error
            time.sleep(5)
