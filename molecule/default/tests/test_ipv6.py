"""Dual stack (docs/ipv6.md): the default scenario's network has IPv6 (a ULA
/64, CONGVU_NET6) and the province's server an IPv6 address (mail_host_ipv6).
Every client protocol is tried over IPv6 from example.net's server (the
simulated Internet's host, which reaches the province's address as a
client on the Internet would, not through Docker's published ports): SMTP
on 25 and 587, IMAPS, POP3S, HTTPS (the webmail and the client
auto-configuration) and LDAPS, each with its certificate checked against the
lab CA and the server's name. Mail from an IPv6 sender is checked by SPF
(example.net's record names the host's ip6:), 12 wrong passwords from an IPv6
address ban that address (and only it), and outbound mail keeps to IPv4
while the IPv6 address has no PTR record (mail_host_ipv6_ptr)."""

import json
import os
import shlex
import subprocess
import textwrap
import time

import dns.resolver
import dns.reversename
import pytest

from mailtest import LAB_SUFFIX, new_message, scenario_vars

DOMAIN = 'bacgiang.gov.vn'
MAIL_HOST = 'mail.' + DOMAIN
TUYET = 'tuyetdta@' + DOMAIN     # BG0003
DUC = 'ductm@' + DOMAIN          # BG0004, the brute force's target (as in test_abuse.py)
ALICE = 'alice@example.net'
JAIL = 'congvu-mail-auth'
SCENARIO = os.environ.get('MOLECULE_SCENARIO_NAME', 'lab')
PREFIX = os.environ.get('CONGVU_PREFIX') or 'congvu'
NETWORK = scenario_vars()
MAIL_IP = NETWORK['dns_mail_ipv4']
DNS_IP = NETWORK['internet_dns_ip']
PROVINCE = '%s-%s' % (PREFIX, SCENARIO)
FOREIGN = '%s-%s-foreign' % (PREFIX, SCENARIO)
CA = '/root/congvu-lab-ca.crt'   # in the foreign host (not /tmp: a tmpfs, see FINDINGS)


def password(lab, person_id):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


def ipv6_of(container):
    """A container's global IPv6 address on the scenario's network, as Docker gave it."""
    out = subprocess.run(['docker', 'inspect', '-f', '{{json .NetworkSettings.Networks}}', container],
                         check=True, capture_output=True, text=True).stdout
    addresses = [n.get('GlobalIPv6Address') for n in json.loads(out).values() if n.get('GlobalIPv6Address')]
    assert addresses, '%s has no IPv6 address: the scenario network must be dual stack' % container
    return addresses[0]


def foreign(command, stdin=None, timeout=300):
    return subprocess.run(['docker', 'exec', '-i', FOREIGN, 'sh', '-c', command], input=stdin,
                          capture_output=True, check=False, timeout=timeout)


def resolver():
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [DNS_IP]
    return res


@pytest.fixture(scope='module')
def mail6():
    return ipv6_of(PROVINCE)


@pytest.fixture(scope='module')
def foreign6():
    return ipv6_of(FOREIGN)


@pytest.fixture(scope='module')
def client(server):
    """Runs a Python script in example.net's server (stdin: JSON arguments),
    with the lab CA there to check the province's certificates."""
    copied = foreign('cat > %s' % CA, stdin=server.ca_file.read_bytes())
    assert copied.returncode == 0, copied.stderr

    def run(script, **arguments):
        result = foreign('python3 -c %s' % shlex.quote(textwrap.dedent(script)),
                         stdin=json.dumps(arguments).encode())
        assert result.returncode == 0, (result.stdout.decode()[-2000:], result.stderr.decode()[-3000:])
        return json.loads(result.stdout.decode().strip().splitlines()[-1])
    return run


# Every client connects by the server's name, which this script resolves to
# the IPv6 address only, so that TLS checks the certificate's name as a
# client on the Internet does; each session asserts its socket is IPv6.
BY_NAME = r"""
import json, socket, ssl, sys
a = json.load(sys.stdin)
_connect = socket.create_connection
def create_connection(address, *args, **kwargs):
    host, port = address[:2]
    if host.endswith(a['domain']):
        host = a['ip']
    sock = _connect((host, port), *args, **kwargs)
    assert sock.family == socket.AF_INET6, sock
    return sock
socket.create_connection = create_connection
ctx = ssl.create_default_context(cafile=a['ca'])
"""

SESSIONS = BY_NAME + r"""
import imaplib, poplib, smtplib
name = a['name']
out = {}
# SMTP on 25: the MX's greeting and STARTTLS.
s = smtplib.SMTP(name, 25, 'mx.example.net', timeout=60)
peer = s.sock.getpeername()[0]
code, _ = s.ehlo('mx.example.net')
s.starttls(context=ctx)
out['smtp'] = [peer, code, s.sock.version()]
s.quit()
# Submission on 587: STARTTLS, login, send a message.
s = smtplib.SMTP(name, 587, 'client.example.net', timeout=60)
s.starttls(context=ctx)
s.login(a['user'], a['password'])
s.sendmail(a['user'], [a['user']], a['message'].encode())
out['submission'] = 'sent'
s.quit()
# IMAPS on 993 and POP3S on 995: login.
m = imaplib.IMAP4_SSL(name, 993, ssl_context=ctx, timeout=60)
m.login(a['user'], a['password'])
out['imaps'] = m.select('INBOX', readonly=True)[0]
m.logout()
p = poplib.POP3_SSL(name, 995, context=ctx, timeout=60)
p.user(a['user']); p.pass_(a['password'])
out['pop3s'] = p.stat()[0]
p.quit()
print(json.dumps(out))
"""

HTTPS = BY_NAME + r"""
import http.client
out = {}
for host, path in (a['name'], '/'), ('autoconfig.' + a['domain'], '/mail/config-v1.1.xml'):
    conn = http.client.HTTPSConnection(host, 443, context=ctx, timeout=60)
    conn.request('GET', path)
    response = conn.getresponse()
    out[host] = [response.status, response.read().decode('utf-8', 'replace')]
print(json.dumps(out))
"""


def test_the_mail_servers_name_has_an_aaaa_and_a_ptr_record(mail6):
    assert [a.to_text() for a in resolver().resolve(MAIL_HOST, 'AAAA')] == [mail6]
    ptr = resolver().resolve(dns.reversename.from_address(mail6), 'PTR')
    assert [a.to_text() for a in ptr] == [MAIL_HOST + '.']


def test_spf_names_the_ipv6_address(mail6):
    records = [b''.join(a.strings).decode() for a in resolver().resolve(DOMAIN, 'TXT')]
    spf = [r for r in records if r.startswith('v=spf1')]
    assert spf == ['v=spf1 mx ip6:%s -all' % mail6], records


def test_smtp_submission_imaps_and_pop3s_over_ipv6(client, lab, mail6, server):
    msg = new_message(TUYET, TUYET, subject='Qua IPv6')
    result = client(SESSIONS, ip=mail6, name=MAIL_HOST, domain=DOMAIN, ca=CA, user=TUYET,
                    password=password(lab, 'BG0003'), message=msg.as_string())
    peer, code, tls = result['smtp']
    assert (peer, code) == (mail6, 250) and tls in ('TLSv1.2', 'TLSv1.3'), result
    assert result['submission'] == 'sent' and result['imaps'] == 'OK' and result['pop3s'] >= 0, result
    # The message sent over IPv6 arrives, and its Received line names the IPv6 client.
    got = server.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])
    assert any('IPv6:' + ipv6_of(FOREIGN) in r for r in got.get_all('Received', [])), got.get_all('Received')


def test_webmail_and_autoconfig_over_https_on_ipv6(client, mail6):
    result = client(HTTPS, ip=mail6, name=MAIL_HOST, domain=DOMAIN, ca=CA)
    status, page = result[MAIL_HOST]
    assert status == 200 and 'rcmloginuser' in page, (status, page[:500])
    status, xml = result['autoconfig.' + DOMAIN]
    assert status == 200 and '<hostname>%s</hostname>' % MAIL_HOST in xml, (status, xml[:500])


def test_the_directory_over_ldaps_on_ipv6(host, lab, mail6, foreign6, client):
    """Debian's ldapsearch binding as a user, the certificate checked against
    the lab CA and the server's name, which resolves to the IPv6 address only
    (a line of the foreign host's /etc/hosts, removed afterwards)."""
    line = '%s %s' % (mail6, MAIL_HOST)
    assert foreign('echo "%s" >> /etc/hosts' % line).returncode == 0
    try:
        command = ('LDAPTLS_CACERT=%s LDAPTLS_REQCERT=demand ldapsearch -H ldaps://%s:636 -o nettimeout=30 '
                   '-x -LLL -D %s -y /dev/stdin -b %s "(mail=%s)" cn'
                   % (CA, MAIL_HOST, shlex.quote('uid=tuyetdta,ou=people,' + LAB_SUFFIX), LAB_SUFFIX, TUYET))
        result = foreign(command, stdin=password(lab, 'BG0003').encode())
    finally:
        # /etc/hosts is Docker's bind mount: rewritten in place, not replaced.
        foreign("grep -v -F '%s' /etc/hosts > /root/hosts.new; cat /root/hosts.new > /etc/hosts" % line)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert 'dn: uid=tuyetdta,ou=people,' in out and 'cn: ' in out, out
    # slapd saw the connection come from example.net's IPv6 address.
    accepted = host.run("journalctl -q -t slapd --since '-5min' | grep -F 'ACCEPT from IP=[%s]:'", foreign6)
    assert accepted.rc == 0, accepted.stderr


# --- SPF for an IPv6 sender --------------------------------------------------------
SEND = r"""
import json, smtplib, sys
a = json.load(sys.stdin)
s = smtplib.SMTP(a['ip'], 25, 'mx.example.net', timeout=60, source_address=(a['source'], 0))
s.starttls()
s.ehlo('mx.example.net')
try:
    s.sendmail(a['sender'], [a['to']], a['message'].encode())
    print(json.dumps([250, '']))
except smtplib.SMTPDataError as error:
    print(json.dumps([error.smtp_code, error.smtp_error.decode()]))
s.quit()
"""


def rspamd_verdict(host, message_id, timeout=30):
    """rspamd's log line for a message (its symbols), by Message-ID."""
    deadline = time.monotonic() + timeout
    while True:
        found = host.run('grep -F %s /var/log/rspamd/rspamd.log | tail -1', 'id: %s,' % message_id).stdout
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_mail_from_an_ipv6_sender_is_checked_by_spf(client, host, server, lab, mail6, foreign6):
    """From example.net's IPv6 address (its SPF record's ip6:) the check
    passes and the message is delivered; from another IPv6 address of the
    same host, on the same /64, it soft-fails (rspamd may then defer it:
    greylisting).
    rspamd 3.4 would pass that neighbour through an "mx" mechanism, which it
    matches at /64: example.net's record names its addresses instead."""
    stranger = foreign6.rsplit(':', 1)[0] + ':99'
    added = foreign('ip -6 addr add %s/64 dev eth0 nodad' % stranger)
    assert added.returncode == 0, added.stderr
    try:
        sent = {}
        # The neighbour sends as another example.net address each run: rspamd's
        # greylisting remembers sender, recipient and the client's /64, and
        # would defer alice@'s next message from example.net's own address.
        senders = {foreign6: ALICE, stranger: 'neighbour-%d@example.net' % time.time_ns()}
        for source, sender in senders.items():
            msg = new_message(sender, TUYET, subject='SPF %s' % source, body='Thư từ đối tác qua IPv6.\n' * 3)
            code, reply = client(SEND, ip=mail6, source=source, sender=sender, to=TUYET, message=msg.as_string())
            sent[source] = (msg['Message-ID'], code, reply)
    finally:
        foreign('ip -6 addr del %s/64 dev eth0' % stranger)
    verdicts = {source: rspamd_verdict(host, message_id) for source, (message_id, _c, _r) in sent.items()}
    assert 'ip: %s,' % foreign6 in verdicts[foreign6] and 'R_SPF_ALLOW' in verdicts[foreign6], verdicts
    assert 'ip: %s,' % stranger in verdicts[stranger] and 'R_SPF_SOFTFAIL' in verdicts[stranger], verdicts
    assert 'R_SPF_ALLOW' not in verdicts[stranger], verdicts
    # The one that passed is delivered, its Authentication-Results saying so.
    message_id, code, reply = sent[foreign6]
    assert code == 250, sent
    got = server.wait_for_message(TUYET, password(lab, 'BG0003'), message_id)
    assert any('IPv6:' + foreign6 in r for r in got.get_all('Received', [])), got.get_all('Received')
    results = ' '.join(got.get_all('Authentication-Results', []))
    assert 'spf=pass' in results and 'designates %s as permitted sender' % foreign6 in results, results


# --- Outbound keeps to IPv4 without a PTR --------------------------------------------
def test_outbound_mail_keeps_to_ipv4_while_the_ipv6_address_has_no_ptr(host, server, lab, foreign6):
    """example.net's MX has an AAAA record and listens on IPv6, yet the
    province's server delivers to it over IPv4 (mail_host_ipv6_ptr is false)."""
    assert host.run("python3 -c \"import socket; socket.create_connection(('%s', 25), timeout=10).close()\""
                    % foreign6).rc == 0  # example.net's server does take mail over IPv6
    msg = new_message('longnv@' + DOMAIN, ALICE, subject='Ra ngoài qua IPv4')
    with server.submission('longnv@' + DOMAIN, password(lab, 'BG0001')) as smtp:
        smtp.send_message(msg)
    deadline = time.monotonic() + 60
    while True:
        found = foreign("grep -l -F 'Message-ID: %s' /home/alice/Maildir/new/* 2>/dev/null | head -1"
                        % msg['Message-ID']).stdout.decode().strip()
        if found or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert found, foreign('tail -20 /var/log/postfix.log').stdout.decode()
    received = foreign('cat %s' % found).stdout.decode()
    assert 'client-ip=%s' % MAIL_IP in received, received[:3000]


# --- Brute force from an IPv6 address -------------------------------------------------
ATTACK = r"""
import imaplib, json, socket, ssl, sys
a = json.load(sys.stdin)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = []
for n in range(a['count']):
    try:
        c = imaplib.IMAP4(a['ip'], 143, timeout=20)
        assert c.sock.family == socket.AF_INET6
        c.starttls(ssl_context=ctx)
        try:
            c.login(a['user'], 'Not-The-Password-%d!' % n); out.append('accepted')
        except imaplib.IMAP4.error:
            out.append('refused')
    except (OSError, socket.timeout):
        out.append('unreachable')
print(json.dumps(out))
"""

PROBE = r"""
import json, socket, sys
a = json.load(sys.stdin)
shut = []
for ip in (a['ip'], a['ip4']):
    for port in (143, 993, 587, 443, 636):
        try: socket.create_connection((ip, port), timeout=3).close()
        except OSError: shut.append('%s:%d' % (ip, port))
print(json.dumps(shut))
"""


def banned(host):
    out = host.check_output('fail2ban-client status %s', JAIL)
    line = next(l for l in out.splitlines() if 'Banned IP list' in l)
    return line.partition(':')[2].split()


def test_twelve_wrong_passwords_from_an_ipv6_address_ban_it(client, host, mail6, foreign6):
    assert foreign6 not in banned(host)
    try:
        tries = client(ATTACK, ip=mail6, user=DUC, count=12)
        assert tries.count('refused') == 12, tries
        deadline = time.monotonic() + 30
        while foreign6 not in banned(host):
            assert time.monotonic() < deadline, banned(host)
            time.sleep(1)
        # Its IPv6 address is shut out of every login port; the same host's
        # IPv4 address, which made no failure, is still served.
        shut = client(PROBE, ip=mail6, ip4=MAIL_IP)
        assert sorted(shut) == sorted('%s:%d' % (mail6, p) for p in (143, 993, 587, 443, 636)), shut
    finally:
        host.run('fail2ban-client set %s unbanip %s', JAIL, foreign6)
    assert foreign6 not in banned(host)
    assert client(PROBE, ip=mail6, ip4=MAIL_IP) == []
