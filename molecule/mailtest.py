"""Helpers of every Molecule scenario's tests: clients for the test hosts.

The tests talk to the test hosts from outside, as a mail client would: each
host publishes its ports on 127.0.0.1 (Docker picks the host ports) and the
tests speak SMTP, IMAP and POP3 to them with Python's standard library.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import email.utils
import http.client
import imaplib
import json
import os
import poplib
import shlex
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parent.parent
ARTIFACTS = PROJECT / 'artifacts'
# The lab's names (inventories/lab): the server and the names mail clients ask.
MAIL_HOST = 'mail.bacgiang.gov.vn'
LAB_SUFFIX = 'dc=bacgiang,dc=gov,dc=vn'


class Server:
    """One test host as seen from the test runner."""

    def __init__(self, container, ca_file):
        self.container = container
        self.ca_file = ca_file
        self._ports = {}

    def port(self, number):
        if number not in self._ports:
            out = subprocess.run(['docker', 'port', self.container, '%d/tcp' % number],
                                 check=True, capture_output=True, text=True).stdout
            self._ports[number] = int(out.splitlines()[0].rsplit(':', 1)[1])
        return self._ports[number]

    def tls(self, minimum=ssl.TLSVersion.TLSv1_2, maximum=None):
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = False  # we connect to 127.0.0.1; the chain is still checked
        context.minimum_version = minimum
        if maximum:
            context.maximum_version = maximum
        return context

    def tls_handshake(self, port, context, starttls=None):
        """One TLS handshake with a published port, after the protocol's own
        STARTTLS when `starttls` names it (smtp, imap, pop3, sieve, ldap);
        returns (version, cipher name). ssl.SSLError when the server refuses."""
        raw = socket.create_connection(('127.0.0.1', self.port(port)), timeout=30)
        try:
            if starttls:
                _STARTTLS[starttls](raw)
            with context.wrap_socket(raw, server_hostname=MAIL_HOST) as tls:
                return tls.version(), tls.cipher()[0]
        finally:
            raw.close()

    # --- SMTP --------------------------------------------------------------
    def smtp(self, port=25):
        client = smtplib.SMTP('127.0.0.1', self.port(port), timeout=30)
        client.ehlo('runner.example.net')
        return client

    def submission(self, user, password, port=587, once=False):
        """A logged-in submission session. once: a single AUTH PLAIN, as a mail
        client makes it (smtplib's login() tries LOGIN after a refused PLAIN:
        two failed logins for one wrong password)."""
        if port == 465:
            client = smtplib.SMTP_SSL('127.0.0.1', self.port(465), timeout=30, context=self.tls())
            client.ehlo('client.test')
        else:
            client = smtplib.SMTP('127.0.0.1', self.port(port), timeout=30)
            client.ehlo('client.test')
            client.starttls(context=self.tls())
            client.ehlo('client.test')
        if once:
            client.user, client.password = user, password
            client.auth('PLAIN', client.auth_plain)
        else:
            client.login(user, password)
        return client

    # --- IMAP and POP3 ----------------------------------------------------
    def imap(self, user, password):
        client = imaplib.IMAP4_SSL('127.0.0.1', self.port(993), ssl_context=self.tls(), timeout=30)
        client.login(user, password)
        return client

    def pop3(self, user, password):
        client = poplib.POP3_SSL('127.0.0.1', self.port(995), context=self.tls(), timeout=30)
        client.user(user)
        client.pass_(password)
        return client

    def login_check(self, protocol, port, security, user, password):
        """Log in as a mail client told (protocol, port, security) would: security
        SSL is TLS from the first byte; STARTTLS must be offered, and no login
        before it. Raises when the server does not offer exactly that."""
        published = self.port(int(port))
        context = self.tls()
        if protocol == 'imap':
            if security == 'SSL':
                client = imaplib.IMAP4_SSL('127.0.0.1', published, ssl_context=context, timeout=30)
            else:
                client = imaplib.IMAP4('127.0.0.1', published, timeout=30)
                assert 'STARTTLS' in client.capabilities and 'LOGINDISABLED' in client.capabilities, client.capabilities
                client.starttls(ssl_context=context)
            client.login(user, password)
            client.logout()
        elif protocol == 'pop3':
            if security == 'SSL':
                client = poplib.POP3_SSL('127.0.0.1', published, context=context, timeout=30)
            else:
                client = poplib.POP3('127.0.0.1', published, timeout=30)
                assert 'STLS' in client.capa(), client.capa()
                client.stls(context=context)
            client.user(user)
            client.pass_(password)
            client.quit()
        elif protocol == 'smtp':
            if security == 'SSL':
                client = smtplib.SMTP_SSL('127.0.0.1', published, timeout=30, context=context)
                client.ehlo('client.test')
            else:
                client = smtplib.SMTP('127.0.0.1', published, timeout=30)
                client.ehlo('client.test')
                assert client.has_extn('starttls') and not client.has_extn('auth'), client.esmtp_features
                client.starttls(context=context)
                client.ehlo('client.test')
            client.login(user, password)
            client.quit()
        else:
            raise AssertionError('unknown protocol %r' % protocol)

    # --- HTTP(S) -----------------------------------------------------------
    def http(self, path, name=MAIL_HOST, method='GET', body=None, headers=None, secure=True):
        """One request to the host's web server for `name` (Host header and SNI);
        over HTTPS the certificate is checked against the lab CA and `name`.
        Returns (status, headers as a dict with lower-case keys, body bytes)."""
        port = self.port(443 if secure else 80)
        if secure:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            connection = _PinnedHTTPS(name, port, context)
        else:
            connection = http.client.HTTPConnection('127.0.0.1', port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=dict({'Host': name}, **(headers or {})))
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    # --- ManageSieve ---------------------------------------------------------
    @contextlib.contextmanager
    def managesieve(self, user, password):
        """A logged-in ManageSieve session (STARTTLS first, as the server requires)."""
        session = ManageSieve(socket.create_connection(('127.0.0.1', self.port(4190)), timeout=30))
        try:
            capabilities = b''.join(session.response())
            assert b'"STARTTLS"' in capabilities and b'"SASL" ""' in capabilities, capabilities
            session.command(b'STARTTLS')
            session.sock = self.tls().wrap_socket(session.sock, server_hostname=MAIL_HOST)
            session.file = session.sock.makefile('rb')
            session.response()  # the capabilities again, now over TLS
            token = base64.b64encode(b'\0' + user.encode() + b'\0' + password.encode())
            session.command(b'AUTHENTICATE "PLAIN" "' + token + b'"')
            yield session
            session.command(b'LOGOUT')
        finally:
            session.sock.close()

    # --- LDAP ----------------------------------------------------------------
    def ldapsearch(self, bind_dn=None, password=None, search_filter='(objectClass=*)', attributes=(),
                   base=None, starttls=False):
        """Debian's ldapsearch against the directory: ldaps on the published 636,
        or StartTLS on 389 (-ZZ: refused without it), the certificate checked
        against the lab CA. Without bind_dn, an anonymous search. Returns (exit
        code, {dn: {attribute: [values]}}, stderr)."""
        if starttls:
            command = ['ldapsearch', '-ZZ', '-H', 'ldap://127.0.0.1:%d' % self.port(389)]
        else:
            command = ['ldapsearch', '-H', 'ldaps://127.0.0.1:%d' % self.port(636)]
        command += ['-x', '-LLL', '-o', 'ldif-wrap=no', '-o', 'nettimeout=30', '-b', base or LAB_SUFFIX]
        if bind_dn:
            command += ['-D', bind_dn, '-y', '/dev/stdin']
        command += [search_filter, *attributes]
        env = dict(os.environ, LDAPTLS_CACERT=str(self.ca_file), LDAPTLS_REQCERT='demand', HOME='/nonexistent')
        result = subprocess.run(command, input=password or '', capture_output=True, text=True, env=env,
                                timeout=60)
        return result.returncode, parse_ldif(result.stdout), result.stderr

    def message_ids(self, user, password, folders=('INBOX', 'Junk')):
        """The Message-ID of every message in these folders, over IMAPS."""
        found = []
        client = self.imap(user, password)
        try:
            for folder in folders:
                _typ, count = client.select(folder, readonly=True)
                if int(count[0]) == 0:
                    continue
                _typ, data = client.fetch('1:*', '(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])')
                for part in data:
                    if isinstance(part, tuple):
                        header = email.message_from_bytes(part[1], policy=email.policy.default)
                        found.append(str(header['Message-ID'] or '').strip())
        finally:
            client.logout()
        return found

    def wait_for_message(self, user, password, message_id, folder='INBOX', timeout=60):
        """The message with this Message-ID, fetched over IMAPS once it has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            client = self.imap(user, password)
            try:
                client.select(folder, readonly=True)
                _typ, data = client.search(None, 'HEADER', 'Message-ID', message_id)
                ids = data[0].split()
                if ids:
                    _typ, parts = client.fetch(ids[-1], '(RFC822)')
                    return email.message_from_bytes(parts[0][1], policy=email.policy.default)
            finally:
                client.logout()
            if time.monotonic() > deadline:
                raise AssertionError('message %s did not arrive in %s of %s' % (message_id, folder, user))
            time.sleep(1)


def _read_until(sock, done):
    """Bytes from sock until done(data) holds (the server's plain-text reply)."""
    data = b''
    while not done(data):
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError('connection closed before STARTTLS: %r' % data)
        data += chunk
    return data


def _last_line_starts(prefixes):
    def done(data):
        lines = data.split(b'\r\n')
        return len(lines) > 1 and lines[-2].startswith(prefixes)
    return done


def _smtp_starttls(sock):
    _read_until(sock, _last_line_starts((b'220 ',)))
    sock.sendall(b'EHLO client.test\r\n')
    _read_until(sock, _last_line_starts((b'250 ',)))
    sock.sendall(b'STARTTLS\r\n')
    assert _read_until(sock, _last_line_starts((b'220 ', b'4', b'5'))).startswith(b'220 ')


def _imap_starttls(sock):
    _read_until(sock, _last_line_starts((b'* OK',)))
    sock.sendall(b'a STARTTLS\r\n')
    assert b'a OK' in _read_until(sock, _last_line_starts((b'a ',)))


def _pop3_starttls(sock):
    _read_until(sock, _last_line_starts((b'+OK',)))
    sock.sendall(b'STLS\r\n')
    assert _read_until(sock, _last_line_starts((b'+OK', b'-ERR'))).startswith(b'+OK')


def _sieve_starttls(sock):
    _read_until(sock, _last_line_starts((b'OK',)))
    sock.sendall(b'STARTTLS\r\n')
    assert _read_until(sock, _last_line_starts((b'OK', b'NO', b'BYE'))).startswith(b'OK')


def _ldap_starttls(sock):
    # ExtendedRequest (RFC 4511) for StartTLS, OID 1.3.6.1.4.1.1466.20037, message 1.
    oid = b'1.3.6.1.4.1.1466.20037'
    request = b'\x80' + bytes([len(oid)]) + oid
    message = b'\x02\x01\x01\x77' + bytes([len(request)]) + request
    sock.sendall(b'\x30' + bytes([len(message)]) + message)
    reply = _read_until(sock, lambda data: len(data) >= 2 and len(data) >= 2 + data[1])
    assert b'\x78' in reply and b'\x0a\x01\x00' in reply, reply  # ExtendedResponse, success


_STARTTLS = {'smtp': _smtp_starttls, 'imap': _imap_starttls, 'pop3': _pop3_starttls,
             'sieve': _sieve_starttls, 'ldap': _ldap_starttls}


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 (the published port) for another name: SNI, Host and
    the certificate check all use that name."""

    def __init__(self, name, port, context):
        super().__init__(name, port, context=context, timeout=30)

    def connect(self):
        raw = socket.create_connection(('127.0.0.1', self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


class ManageSieve:
    """The few ManageSieve commands (RFC 5804) the tests need."""

    def __init__(self, sock):
        self.sock = sock
        self.file = sock.makefile('rb')

    def response(self):
        """Lines up to the OK; raises on NO or BYE."""
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise AssertionError('ManageSieve connection closed: %r' % lines)
            if line.startswith(b'OK'):
                return lines
            if line.startswith((b'NO', b'BYE')):
                raise AssertionError('ManageSieve refused: %r' % line)
            lines.append(line)

    def command(self, line, literal=None):
        data = line
        if literal is not None:
            data += b' {%d+}\r\n' % len(literal) + literal
        self.sock.sendall(data + b'\r\n')
        return self.response()

    def put_script(self, name, script):
        self.command(b'PUTSCRIPT "%s"' % name.encode(), literal=script.encode())

    def activate(self, name):
        self.command(b'SETACTIVE "%s"' % name.encode())


def navigate(step, attempts=5, errors=('ERR_NETWORK_CHANGED',)):
    """Run a browser step that loads a page (page.goto, page.reload, a click
    that navigates) and return what it returns, again when Chromium reports
    net::ERR_NETWORK_CHANGED: it does when another test network is created on
    the machine meanwhile (other scenarios side by side; seen in CI). Any other
    error is raised at once."""
    for attempt in range(attempts):
        try:
            return step()
        except Exception as exc:  # noqa: BLE001  (playwright's Error; only these messages are retried)
            if not any(error in str(exc) for error in errors) or attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)
    return None


def goto(page, url):
    """page.goto(url), again on net::ERR_NETWORK_CHANGED (navigate), and on
    net::ERR_ABORTED: a navigation the page started itself (Roundcube goes back
    to the message list after sending) cancels one asked for at that moment;
    a GET is safe to ask again."""
    return navigate(lambda: page.goto(url), errors=('ERR_NETWORK_CHANGED', 'ERR_ABORTED'))


@contextlib.contextmanager
def chromium(server, name):
    """Debian's Chromium, headless, driven by Playwright, reaching https://<MAIL_HOST>/
    at the host's published port and trusting the lab CA (an NSS database in a
    fresh HOME): no certificate error is ignored. Screenshots: artifacts/<name>/."""
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix='congvu-chromium-'))
    shots = ARTIFACTS / name
    shots.mkdir(parents=True, exist_ok=True)
    try:
        nssdb = home / '.pki' / 'nssdb'
        nssdb.mkdir(parents=True)
        subprocess.run(['certutil', '-N', '-d', 'sql:%s' % nssdb, '--empty-password'], check=True)
        subprocess.run(['certutil', '-A', '-d', 'sql:%s' % nssdb, '-n', 'congvu-mail lab CA', '-t', 'C,,',
                        '-i', str(server.ca_file)], check=True)
        rules = 'MAP %s 127.0.0.1:%d' % (MAIL_HOST, server.port(443))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which('chromium') or '/usr/bin/chromium',
                env=dict(os.environ, HOME=str(home)),
                args=['--host-resolver-rules=' + rules, '--no-sandbox', '--disable-gpu', '--disable-quic',
                      '--no-first-run', '--disable-background-networking', '--disable-component-update',
                      '--disable-sync'])
            try:
                context = browser.new_context(viewport={'width': 1400, 'height': 900}, locale='vi-VN')
                page = context.new_page()
                page.set_default_timeout(30000)
                page.shots = shots
                yield page
            finally:
                browser.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def parse_ldif(text):
    """ldapsearch's LDIF (unwrapped) as {dn: {attribute: [values]}}, base64 decoded."""
    entries = {}
    for block in text.strip().split('\n\n'):
        dn, attributes = None, {}
        for line in block.splitlines():
            if not line or line.startswith('#'):
                continue
            name, _sep, value = line.partition(':')
            value = base64.b64decode(value[1:]).decode('utf-8') if value.startswith(':') else value.strip()
            if name == 'dn':
                dn = value
            else:
                attributes.setdefault(name, []).append(value)
        if dn:
            entries[dn] = attributes
    return entries


def new_message(sender, recipient, subject='congvu-mail test', body='Xin chào, đây là thư thử nghiệm.\n'):
    """A message with a unique Message-ID, built the way a mail client does."""
    msg = EmailMessage()
    msg['From'] = sender
    msg['To'] = recipient
    msg['Subject'] = subject
    msg['Date'] = email.utils.formatdate(localtime=True)
    msg['Message-ID'] = '<%s@test.congvu-mail>' % uuid.uuid4()
    msg.set_content(body)
    return msg


def smuggling_payload(sender, recipient, token, forged_sender):
    """SMTP smuggling (CVE-2023-51764): a DATA section for sender -> recipient
    that holds <LF>.<CR><LF> and, after it, a second transaction from
    forged_sender. Returns (DATA bytes ending in <CR><LF>.<CR><LF>, the first
    message's Message-ID, the smuggled one's)."""
    first, second = '<first-%s@test.congvu-mail>' % token, '<smuggled-%s@test.congvu-mail>' % token
    date = email.utils.formatdate(localtime=True)
    data = ('From: <%s>\r\nTo: <%s>\r\nSubject: Smuggling test %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\n'
            'Kinh gui anh chi, day la thu thu nghiem binh thuong cua van phong so.\r\n'
            '\n.\r\n'
            'MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n'
            'From: <%s>\r\nTo: <%s>\r\nSubject: Smuggled %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\n'
            'Thu gia mao gui kem trong phien cua nguoi khac.\r\n'
            '\r\n.\r\n') % (sender, recipient, token, date, first, forged_sender, recipient,
                             forged_sender, recipient, token, date, second)
    return data.encode('ascii'), first, second


def data_then_quit(client, sender, recipient, data):
    """MAIL, RCPT, then DATA with `data` and QUIT sent at once, as an attacker
    would; returns every reply from the end of DATA on, as (code, text), until
    the session ends. Self-contained, so a test can also run it on a host
    (inspect.getsource): test_smuggling's session with the Sieve service."""
    import smtplib
    code, reply = client.mail(sender)
    assert code == 250, (code, reply)
    code, reply = client.rcpt(recipient)
    assert code == 250, (code, reply)
    client.putcmd('data')
    code, reply = client.getreply()
    assert code == 354, (code, reply)
    client.send(data + b'QUIT\r\n')
    replies = []
    while True:
        try:
            code, reply = client.getreply()
        except smtplib.SMTPServerDisconnected:
            break
        replies.append((code, reply.decode('utf-8', 'replace')))
        if code == 221 or code == -1:
            break
    client.close()
    return replies


def smuggle(client, sender, recipient, token, forged_sender):
    """Send smuggling_payload over an open smtplib session (data_then_quit).
    Returns (the replies from the end of DATA on, first Message-ID, smuggled
    Message-ID)."""
    data, first, second = smuggling_payload(sender, recipient, token, forged_sender)
    return data_then_quit(client, sender, recipient, data), first, second


def run_playbook(playbook, extra_vars=None, check=False, timeout=900):
    """Run one of the package's playbooks against this scenario's hosts, as an
    operator would, and return the finished process (output kept for asserts)."""
    inventory = os.environ.get('MOLECULE_INVENTORY_FILE', str(PROJECT / 'inventories' / 'lab'))
    command = ['ansible-playbook', '-i', inventory, str(PROJECT / 'playbooks' / playbook)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0')
    if 'MOLECULE_EPHEMERAL_DIRECTORY' in os.environ:
        # The scenario's lab CA and DKIM keys (see .config/molecule/config.yml).
        ephemeral = Path(os.environ['MOLECULE_EPHEMERAL_DIRECTORY'])
        env.setdefault('CONGVU_TLS_DIR', str(ephemeral / 'tls'))
        env.setdefault('CONGVU_DKIM_DIR', str(ephemeral / 'dkim'))
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump(extra_vars or {}, handle)
    try:
        command += ['-e', '@' + handle.name]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    finally:
        os.unlink(handle.name)
    if check and result.returncode != 0:
        raise AssertionError('%s failed:\n%s\n%s' % (playbook, result.stdout[-4000:], result.stderr[-2000:]))
    return result


def scenario_vars():
    """The Molecule scenario's settings of the province's server on the simulated
    Internet (group_vars/internet_province.yml), with its test network's first
    three octets (CONGVU_NET, as molecule.yml reads it) filled in as Ansible does."""
    path = Path(os.environ.get('MOLECULE_SCENARIO_DIRECTORY', '.')) / 'group_vars' / 'internet_province.yml'
    net = os.environ.get('CONGVU_NET') or '172.30.200'
    return yaml.safe_load(path.read_text(encoding='utf-8').replace('{{ internet_net }}', net))


def password_service(host, request):
    """One request to the webmail's password service, as the web server sends it."""
    script = ('import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect("/run/congvu-mailpassword.sock"); '
              's.sendall(sys.argv[1].encode() + b"\\n"); print(s.makefile().readline())')
    result = host.run('runuser -u www-data -- python3 -c %s %s'
                      % (shlex.quote(script), shlex.quote(json.dumps(request))))
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def psql(host, query):
    """One query on the mailbox database, as the postgres superuser, rows as text."""
    result = host.run("runuser -u postgres -- psql -XAtq -d mail -c %s" % _quote(query))
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def _quote(text):
    return shlex.quote(text)
