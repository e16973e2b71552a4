"""Abnormal mailboxes (Điều 4.8): brute force is banned, mass sending stops the
account, automatic forwarding only reaches allowed domains.

Brute force is attacked from example.net's server (the scenario's foreign
host, an office on the Internet). Nothing is exempt from the bans, the test
runner included: it reaches the services through the Docker network's
gateway, like a province office behind one NAT address, and its ordinary use
must never get it banned. The ban time in the scenario is short, and every
ban made here is lifted at the end.

Mass sending uses the real default limit (250 outside recipients in 10
minutes): counting happens at RCPT time, so 251 RCPT commands in one session,
without DATA, cross it in a second and send nothing to anybody."""

import concurrent.futures
import email
import email.policy
import json
import os
import shlex
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from mailtest import LAB_SUFFIX, new_message, psql, run_playbook, scenario_vars

DOMAIN = 'bacgiang.gov.vn'
LONG = 'longnv@' + DOMAIN        # BG0001, the lab's administrator (mail_admins)
LONG2 = 'longnv2@' + DOMAIN      # BG0002, the mass sender
DUC = 'ductm@' + DOMAIN          # BG0004, with Sieve scripts
HOA = 'hoalt@' + DOMAIN          # BG0005, an allowed redirect target
ALICE = 'alice@example.net'
JAIL = 'congvu-mail-auth'
SCENARIO = os.environ.get('MOLECULE_SCENARIO_NAME', 'lab')
PREFIX = os.environ.get('CONGVU_PREFIX') or 'congvu'
NET = os.environ.get('CONGVU_NET') or '172.30.200'
MAIL_IP = NET + '.10'
FOREIGN = '%s-%s-foreign' % (PREFIX, SCENARIO)
PROJECT = Path(__file__).resolve().parents[3]
REGULATION = yaml.safe_load((PROJECT / 'roles' / 'regulation' / 'defaults' / 'main.yml').read_text(encoding='utf-8'))
GROUP_VARS = scenario_vars()


def password(lab, person_id):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


def foreign(command, stdin=None, timeout=120):
    return subprocess.run(['docker', 'exec', '-i', FOREIGN, 'sh', '-c', command], input=stdin,
                          capture_output=True, check=False, timeout=timeout)


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(1)


# --- Brute force ------------------------------------------------------------------
# Runs in example.net's server (an office on the Internet, one address):
# logins to the province's server over IMAP, POP3, SMTP AUTH (submission),
# ManageSieve, the webmail and the directory, with the right password
# ("good") or a wrong one ("bad"), or a probe of its ports.
ATTACK = textwrap.dedent(r"""
    import base64, http.cookiejar, imaplib, poplib, re, smtplib, socket, ssl, sys, time
    import urllib.error, urllib.parse, urllib.request
    ip, kind, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    user, secret = sys.stdin.read().split('\n')[:2]
    good = mode == 'good'
    guesses = ('Not-The-Password-%d!' % n for n in range(1000000))  # a guesser tries a new one each time
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    def expect(ok, what):
        if ok != good:
            raise SystemExit('%s: %s login %s' % (kind, what, 'refused' if good else 'accepted'))
    def imap():
        c = imaplib.IMAP4(ip, 143, timeout=20); c.starttls(ssl_context=ctx)
        try: c.login(user, pw); expect(True, 'IMAP'); c.logout()
        except imaplib.IMAP4.error: expect(False, 'IMAP')
    def pop3():
        c = poplib.POP3(ip, 110, timeout=20); c.stls(context=ctx); c.user(user)
        try: c.pass_(pw); expect(True, 'POP3'); c.quit()
        except poplib.error_proto: expect(False, 'POP3')
    def smtp():
        c = smtplib.SMTP(ip, 587, timeout=20); c.starttls(context=ctx); c.ehlo()
        c.user, c.password = user, pw
        try: c.auth('PLAIN', c.auth_plain); expect(True, 'SMTP AUTH'); c.quit()  # one attempt, not PLAIN then LOGIN
        except smtplib.SMTPAuthenticationError: expect(False, 'SMTP AUTH')
    def managesieve():
        s = socket.create_connection((ip, 4190), timeout=20); f = s.makefile('rb')
        def answer():
            while True:
                line = f.readline()
                if not line or line.startswith((b'OK', b'NO', b'BYE')): return line
        answer(); s.sendall(b'STARTTLS\r\n'); answer()
        s = ctx.wrap_socket(s, server_hostname='mail.bacgiang.gov.vn'); f = s.makefile('rb'); answer()
        token = base64.b64encode(b'\0' + user.encode() + b'\0' + pw.encode())
        s.sendall(b'AUTHENTICATE "PLAIN" "' + token + b'"\r\n')
        expect(answer().startswith(b'OK'), 'ManageSieve'); s.close()
    def webmail():
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                             urllib.request.HTTPCookieProcessor(jar))
        head = {'Host': 'mail.bacgiang.gov.vn'}
        page = opener.open(urllib.request.Request('https://%s/' % ip, headers=head), timeout=20).read().decode()
        token = re.search(r'name="_token" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({'_token': token, '_task': 'login', '_action': 'login', '_timezone': 'UTC',
                                       '_url': '', '_user': user, '_pass': pw}).encode()
        try:
            opener.open(urllib.request.Request('https://%s/?_task=login' % ip, data=form, headers=head), timeout=20)
            expect(True, 'webmail')
        except urllib.error.HTTPError as error:
            assert error.code == 401, error  # Roundcube's answer to a failed login
            expect(False, 'webmail')
    def ldap():
        # An LDAP simple bind (RFC 4511) over ldaps, as a mail client's address book makes it.
        def tlv(tag, data):
            size = len(data)
            head = bytes([size]) if size < 128 else bytes([0x80 | 2]) + size.to_bytes(2, 'big')
            return bytes([tag]) + head + data
        dn = 'uid=%s,ou=people,dc=bacgiang,dc=gov,dc=vn' % user.split('@')[0]
        bind = tlv(0x30, tlv(0x02, b'\x01') + tlv(0x60, tlv(0x02, b'\x03') + tlv(0x04, dn.encode())
                                                   + tlv(0x80, pw.encode())))
        s = ctx.wrap_socket(socket.create_connection((ip, 636), timeout=30), server_hostname='mail.bacgiang.gov.vn')
        s.sendall(bind)
        reply = s.recv(4096)
        code = reply[reply.index(b'\x61') + 2:][:3]  # BindResponse: ENUMERATED resultCode
        expect(code == b'\x0a\x01\x00', 'directory'); s.close()
    def probe():
        shut = []
        for port in (143, 993, 110, 995, 587, 465, 4190, 443, 389, 636, 25):
            try: socket.create_connection((ip, port), timeout=3).close()
            except OSError: shut.append(port)
        print(','.join(map(str, shut)))
    for _ in range(count):
        pw = secret if good else next(guesses)
        try:
            {'imap': imap, 'pop3': pop3, 'smtp': smtp, 'managesieve': managesieve, 'webmail': webmail,
             'ldap': ldap, 'probe': probe}[kind]()
        except (ConnectionRefusedError, socket.timeout, ConnectionResetError):
            print('refused')  # banned meanwhile
""")
PROTOCOLS = ['imap', 'pop3', 'smtp', 'managesieve', 'webmail', 'ldap']
LOGIN_PORTS = '143,993,110,995,587,465,4190,443,389,636'


def attack(lab, kind, count=1, mode='bad'):
    """`count` logins (or one probe) from example.net's server, as ductm@."""
    credentials = '%s\n%s\n' % (DUC, password(lab, 'BG0004'))
    result = foreign('python3 -c %s %s %s %d %s' % (shlex.quote(ATTACK), MAIL_IP, kind, count, mode),
                     stdin=credentials.encode(), timeout=600)
    assert result.returncode == 0, (result.stdout.decode()[-1000:], result.stderr.decode()[-2000:])
    return result.stdout.decode().strip()


def jail_status(host):
    out = host.check_output('fail2ban-client status %s', JAIL)
    fields = {}
    for line in out.splitlines():
        key, _, value = line.strip(' |`-').partition(':')
        fields[key.strip()] = value.strip()
    return int(fields['Total failed']), fields['Banned IP list'].split()


@pytest.fixture(scope='module')
def attacker(host):
    """example.net's server's address on the test network; unbanned afterwards."""
    address = foreign("hostname -I").stdout.decode().split()[0]
    yield address
    host.run('fail2ban-client set %s unbanip %s', JAIL, address)


def test_nothing_exempts_the_test_runner(host):
    # The runner's logins arrive from the network's gateway (Docker's published ports).
    ignored = host.check_output('fail2ban-client get %s ignoreip', JAIL)
    assert NET + '.' not in ignored, ignored


def test_successful_logins_are_never_counted(host, lab, attacker):
    """100 correct logins from one address within 5 minutes, over IMAP, POP3,
    SMTP AUTH and ManageSieve: nothing is counted and the address is served."""
    before, _banned = jail_status(host)
    started = time.monotonic()
    for kind in ('imap', 'pop3', 'smtp', 'managesieve'):
        assert attack(lab, kind, 25, 'good') == ''
    assert time.monotonic() - started < 300
    time.sleep(3)  # fail2ban reads the journal a moment later
    failed, banned = jail_status(host)
    assert (failed, attacker in banned) == (before, False)
    assert attack(lab, 'probe') == ''


@pytest.mark.parametrize('kind', PROTOCOLS)
def test_each_service_counts_a_failed_login_once(host, lab, attacker, kind):
    before, banned = jail_status(host)
    assert attacker not in banned
    attack(lab, kind, 2)
    # One per attempt: the webmail's IMAP login and the directory's password
    # check, both made from this host, are not counted again.
    wait_until(lambda: jail_status(host)[0] >= before + 2, 30, '2 failures counted for ' + kind)
    time.sleep(2)
    assert jail_status(host)[0] == before + 2
    if attacker in jail_status(host)[1]:  # 12 reached by the last kinds: lift it for the next
        host.run('fail2ban-client set %s unbanip %s', JAIL, attacker)


def test_a_burst_of_failed_logins_is_banned_on_every_port_then_lifted(host, lab, attacker):
    limit = REGULATION['regulation_failed_logins_max']
    for kind in PROTOCOLS:
        if attacker in jail_status(host)[1]:
            break
        attack(lab, kind, limit // len(PROTOCOLS) + 1)
    wait_until(lambda: attacker in jail_status(host)[1], 30, 'the ban')
    assert host.run('nft list ruleset').stdout.count(attacker) >= 1
    # Every login port and the directory's are closed; port 25 still takes
    # mail from that address (no login there).
    assert attack(lab, 'probe') == LOGIN_PORTS
    bantime = int(GROUP_VARS['fail2ban_bantime'])
    wait_until(lambda: attacker not in jail_status(host)[1], bantime + 30, 'the ban to be lifted')
    assert attack(lab, 'probe') == ''


def test_failed_binds_never_slow_another_clients_binds(host, lab, server, attacker):
    """One host makes 50 failed directory binds; meanwhile another (the test
    runner) binds correctly 20 times, none of them waiting behind a failed
    bind's 2 s delay; the first is banned."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        attacking = pool.submit(attack, lab, 'ldap', 50)
        times = []
        dn = 'uid=hoalt,ou=people,' + LAB_SUFFIX
        # One a second: the binds overlap the failures (2 s each) until the ban.
        while len(times) < 20:
            started = time.monotonic()
            code, entries, err = server.ldapsearch(dn, password(lab, 'BG0005'), '(uid=longnv)', ['mail'])
            times.append(time.monotonic() - started)
            assert code == 0 and entries, err
            if len(times) == 1:
                overlapped = not attacking.done()
            time.sleep(1)
        attacking.result()
    assert overlapped, 'the failed binds were over before the first correct one'
    # A bind queued behind a failure would take its whole 2 s delay; a
    # correct one takes a few tens of milliseconds on a quiet machine (under
    # 1.2 s at a load average of 20, when a 1 s bound once failed).
    assert max(times) < 2.0, times
    wait_until(lambda: attacker in jail_status(host)[1], 30, 'the ban of the failing host')
    assert '636' in attack(lab, 'probe').split(',')
    host.run('fail2ban-client set %s unbanip %s', JAIL, attacker)


def test_an_office_is_never_banned_for_ordinary_use(host, lab, server):
    """200 ordinary logins and submissions from the test runner's one address
    (a province office behind one NAT address): nothing counted, not banned."""
    people = [('BG0001', LONG), ('BG0002', LONG2), ('BG0004', DUC), ('BG0005', HOA)]
    before, _banned = jail_status(host)
    for n in range(50):
        person, user = people[n % len(people)]
        secret = password(lab, person)
        server.imap(user, secret).logout()
        server.pop3(user, secret).quit()
        with server.submission(user, secret, port=587 if n % 2 else 465) as client:
            client.send_message(new_message(user, user, subject='Việc hằng ngày %d' % n))
        with server.managesieve(user, secret):
            pass
    time.sleep(3)
    failed, banned = jail_status(host)
    assert (failed, NET + '.1' in banned) == (before, False)
    server.imap(LONG, password(lab, 'BG0001')).logout()


# --- Mass sending ------------------------------------------------------------------
@pytest.fixture(scope='module')
def mass_sender(server, lab, host):
    """longnv2@ sends to one more outside recipient than the limit allows, in one session."""
    limit = REGULATION['regulation_send_limit']['messages']
    # What this account sent outside before (other tests) must not count here.
    psql(host, "DELETE FROM sendlimit_events WHERE account = '%s'" % LONG2)
    replies = []
    with server.submission(LONG2, password(lab, 'BG0002')) as client:
        client.mail(LONG2)
        for n in range(limit + 1):
            replies.append(client.rcpt('nobody%d@example.net' % n))
        client.rset()
    yield {'limit': limit, 'replies': replies}
    run_playbook('tools/release-sender.yml', {'account': LONG2})


def test_the_recipient_over_the_limit_is_refused(mass_sender):
    replies = mass_sender['replies']
    assert all(code == 250 for code, _text in replies[:-1]), replies[-3:]
    code, text = replies[-1]
    assert code == 554 and b'5.7.1' in text and b'Article 4.8' in text, (code, text)


def test_a_blocked_account_cannot_send_even_inside(mass_sender, server, lab):
    with server.submission(LONG2, password(lab, 'BG0002')) as client:
        client.mail(LONG2)
        code, text = client.rcpt(DUC)
    assert code == 554 and b'too many messages to outside domains' in text, (code, text)


def test_a_blocked_account_still_receives(mass_sender, server, lab):
    msg = new_message(DUC, LONG2, subject='Vẫn nhận thư')
    with server.submission(DUC, password(lab, 'BG0004')) as client:
        client.send_message(msg)
    server.wait_for_message(LONG2, password(lab, 'BG0002'), msg['Message-ID'])


def test_the_administrators_are_told_who_from_where_how_many(mass_sender, server, lab, host):
    def alert():
        client = server.imap(LONG, password(lab, 'BG0001'))
        try:
            client.select('INBOX', readonly=True)
            _typ, data = client.search(None, 'SUBJECT', '"Sending blocked: %s"' % LONG2)
            ids = data[0].split()
            if not ids:
                return None
            raw = client.fetch(ids[-1], '(BODY.PEEK[])')[1][0][1]
            return email.message_from_bytes(raw, policy=email.policy.default).get_content()
        finally:
            client.logout()
    body = wait_until(alert, 60, 'the alert in longnv@\'s mailbox')
    assert LONG2 in body and '%d messages to outside domains in 10 minutes' % (mass_sender['limit'] + 1) in body
    # The runner submitted through Docker's published port: the gateway.
    assert 'sent from: %s.1' % NET in body, body
    assert 'release-sender.yml -e account=' + LONG2 in body
    blocked = psql(host, "SELECT recipients FROM sendlimit_blocks WHERE account = '%s' AND released_at IS NULL"
                   % LONG2)
    assert blocked == str(mass_sender['limit'] + 1)


def test_the_release_playbook_lets_it_send_again(mass_sender, server, lab, host):
    result = run_playbook('tools/release-sender.yml', {'account': LONG2}, check=True)
    assert 'released; it may send again' in result.stdout
    msg = new_message(LONG2, DUC, subject='Đã mở khóa')
    with server.submission(LONG2, password(lab, 'BG0002')) as client:
        client.send_message(msg)
    server.wait_for_message(DUC, password(lab, 'BG0004'), msg['Message-ID'])
    again = run_playbook('tools/release-sender.yml', {'account': LONG2}, check=True)
    assert 'was not stopped from sending; nothing changed' in again.stdout and 'changed=0' in again.stdout


# --- Automatic forwarding ----------------------------------------------------------
@pytest.fixture
def sieve(server, lab):
    """Installs one active Sieve script for ductm@ over ManageSieve; removes it after."""
    def install(script):
        with server.managesieve(DUC, password(lab, 'BG0004')) as session:
            session.put_script('test-abuse', script)
            session.activate('test-abuse')
    yield install
    with server.managesieve(DUC, password(lab, 'BG0004')) as session:
        session.command(b'SETACTIVE ""')
        if b'"test-abuse"' in b''.join(session.command(b'LISTSCRIPTS')):
            session.command(b'DELETESCRIPT "test-abuse"')


def alice_has(needle):
    return foreign("grep -l -F %s /home/alice/Maildir/new/* /home/alice/Maildir/cur/* 2>/dev/null"
                   % json.dumps(needle)).stdout.decode().strip()


def test_a_redirect_outside_the_allow_list_is_refused_and_kept(sieve, server, lab, host):
    sieve('redirect "%s";\n' % ALICE)
    msg = new_message(LONG, DUC, subject='Không được chuyển ra ngoài')
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        client.send_message(msg)
    # The redirect fails, so Sieve keeps the message in the inbox.
    server.wait_for_message(DUC, password(lab, 'BG0004'), msg['Message-ID'])
    log = wait_until(lambda: host.run("journalctl -q --no-pager -t postfix/sieve/smtpd --since '-2min' "
                                      "| grep -F 'to=<%s>'" % ALICE).stdout, 30, 'the refusal in the log')
    assert 'reject: RCPT' in log and '5.7.1' in log, log
    time.sleep(5)
    assert not alice_has(msg['Message-ID'])


def test_a_redirect_to_an_allowed_domain_works(sieve, server, lab):
    sieve('redirect "%s";\n' % HOA)
    msg = new_message(LONG, DUC, subject='Chuyển trong tỉnh')
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        client.send_message(msg)
    server.wait_for_message(HOA, password(lab, 'BG0005'), msg['Message-ID'])


def test_a_vacation_reply_still_goes_outside(sieve, server):
    msg = new_message(ALICE, DUC, subject='Hỏi việc')
    # A new handle each run: Sieve answers a sender once per handle and period.
    sieve('require ["vacation"];\nvacation :days 1 :handle "%s" :subject "Vang mat" "Toi dang di cong tac.";\n'
          % msg['Message-ID'])
    with server.smtp() as client:  # the runner is example.net's second sending host
        client.send_message(msg)
    found = wait_until(lambda: alice_has(msg['Message-ID']), 60, 'the vacation reply at example.net')
    reply = foreign('cat %s' % found.splitlines()[0]).stdout.decode()
    assert 'Auto-Submitted: auto-replied' in reply and 'Vang mat' in reply, reply[:2000]


def test_a_list_member_outside_the_allow_list_fails_before_any_host_is_touched(lab, host):
    before = psql(host, 'SELECT count(*) FROM aliases')
    lists = lab['accounts_lists'] + [{'address': 'doitac.stttt', 'members': ['BG0001', 'canbo@gmail.com']}]
    result = run_playbook('tools/accounts.yml', {'accounts_lists': lists})
    assert result.returncode != 0
    output = ' '.join(result.stdout.split())  # undo the YAML output's line wrapping
    assert 'accounts_lists · doitac.stttt · members · member canbo@gmail.com is outside the forwarding allow-list' \
        in output
    assert psql(host, 'SELECT count(*) FROM aliases') == before


# --- The services themselves --------------------------------------------------------
@pytest.mark.parametrize('service', ['fail2ban', 'congvu-sendlimit.socket'])
def test_service_running_and_enabled(host, service):
    unit = host.service(service)
    assert unit.is_running and unit.is_enabled


def test_the_sending_limit_service_keeps_its_password_and_has_only_its_rights(host):
    config = host.file('/etc/congvu-mail/sendlimit.json')
    assert (config.user, config.group, config.mode) == ('root', 'congvu-sendlimit', 0o640)
    secret = json.loads(config.content_string)['database']['password']
    base = "PGPASSWORD='%s' psql -XAtq -h localhost -U mail_sendlimit -d mail -c " % secret
    assert host.run(base + "'SELECT count(*) FROM sendlimit_events'").rc == 0
    for query in ("'SELECT address FROM mailboxes LIMIT 1'",
                  "\"UPDATE sendlimit_blocks SET released_at = now() WHERE false\"",
                  "\"DELETE FROM sendlimit_events WHERE false\""):
        refused = host.run(base + query)
        assert refused.rc != 0 and 'permission denied' in refused.stderr, query
