"""Signed mail on a simulated Internet (molecule/internet.yml): DKIM, SPF and
DMARC, TLS towards example.net's server, S/MIME signatures left intact, and
the DNS records of playbooks/tools/dns-records.yml as the test DNS server serves
them. The tests reach example.net's server with `docker exec`."""

import email
import email.policy
import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import dkim
import dns.resolver
import pytest

from mailtest import new_message, run_playbook, scenario_vars

DOMAIN = 'bacgiang.gov.vn'
LONG = 'longnv@' + DOMAIN        # BG0001
TUYET = 'tuyetdta@' + DOMAIN     # BG0003
ALICE = 'alice@example.net'
SCENARIO = os.environ.get('MOLECULE_SCENARIO_NAME', 'lab')
PREFIX = os.environ.get('CONGVU_PREFIX') or 'congvu'
# The province's server on the simulated Internet: the scenario's group_vars.
NETWORK = scenario_vars()
MAIL_IP = NETWORK['dns_mail_ipv4']
DNS_IP = NETWORK['internet_dns_ip']
FOREIGN = '%s-%s-foreign' % (PREFIX, SCENARIO)
EPHEMERAL = Path(os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', '.'))


def password(lab, person_id):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


def resolver():
    """A resolver asking the simulated Internet's DNS server."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [DNS_IP]
    return res


def dns_txt(name, timeout=5):
    """dkimpy's DNS look-up, answered by the test DNS server."""
    name = name.decode() if isinstance(name, bytes) else name
    try:
        answer = resolver().resolve(name, 'TXT', lifetime=timeout)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return b''.join(answer[0].strings)


def foreign(command, stdin=None):
    return subprocess.run(['docker', 'exec', '-i', FOREIGN, 'sh', '-c', command], input=stdin,
                          capture_output=True, check=False)


def foreign_message(message_id, timeout=60):
    """Raw bytes of the message alice@example.net received with this Message-ID."""
    deadline = time.monotonic() + timeout
    while True:
        found = foreign("grep -l -F 'Message-ID: %s' /home/alice/Maildir/new/* /home/alice/Maildir/cur/* "
                        "2>/dev/null | head -1" % message_id).stdout.decode().strip()
        if found:
            return foreign('cat %s' % found).stdout
        if time.monotonic() > deadline:
            raise AssertionError('%s did not reach example.net:\n%s' % (
                message_id, foreign('tail -20 /var/log/postfix.log').stdout.decode()))
        time.sleep(1)


def imap_raw(server, user, pw, message_id, timeout=60):
    """Raw bytes of a delivered message, over IMAPS."""
    server.wait_for_message(user, pw, message_id, timeout=timeout)
    client = server.imap(user, pw)
    try:
        client.select('INBOX', readonly=True)
        _typ, data = client.search(None, 'HEADER', 'Message-ID', message_id)
        _typ, parts = client.fetch(data[0].split()[-1], '(RFC822)')
        return parts[0][1]
    finally:
        client.logout()


@pytest.fixture(scope='module')
def outbound(server, lab):
    """A message from longnv@ (submission, 587) to alice@example.net, as received there."""
    msg = new_message(LONG, ALICE, subject='Công văn gửi đối tác', body='Kính gửi quý cơ quan.\n' * 5)
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        client.send_message(msg)
    return foreign_message(msg['Message-ID'])


# --- DNS ------------------------------------------------------------------------
@pytest.mark.parametrize('name, rtype, expected', [
    (DOMAIN, 'MX', 'mail.%s.' % DOMAIN),
    ('mail.' + DOMAIN, 'A', MAIL_IP),
    (DOMAIN, 'TXT', 'v=spf1 mx '),  # and ip6: on a dual-stack network (test_ipv6.py)
    ('_dmarc.' + DOMAIN, 'TXT', 'p=reject'),
    ('_mta-sts.' + DOMAIN, 'TXT', 'v=STSv1; id='),
    ('_smtp._tls.' + DOMAIN, 'TXT', 'v=TLSRPTv1; rua=mailto:'),
    ('autoconfig.' + DOMAIN, 'CNAME', 'mail.%s.' % DOMAIN),
    ('_submission._tcp.' + DOMAIN, 'SRV', '587 mail.%s.' % DOMAIN),
])
def test_published_records_resolve(name, rtype, expected):
    answers = [a.to_text() for a in resolver().resolve(name, rtype)]
    assert any(expected in a for a in answers), answers


def test_the_mta_sts_policy_is_served_over_https_as_written(server):
    status, headers, body = server.http('/.well-known/mta-sts.txt', name='mta-sts.' + DOMAIN)
    assert status == 200 and headers['content-type'].startswith('text/plain'), (status, headers)
    policy = body.decode()
    assert 'mode: enforce' in policy and 'mx: mail.%s' % DOMAIN in policy, policy
    assert policy == (EPHEMERAL / 'dns' / ('mta-sts.%s.txt' % DOMAIN)).read_text(encoding='utf-8')


def test_dns_records_playbook_prints_every_record():
    result = run_playbook('tools/dns-records.yml', check=True)
    for needle in ('IN MX 10 mail.' + DOMAIN, 'congvu1._domainkey.' + DOMAIN, '_dmarc.' + DOMAIN,
                   '_mta-sts.' + DOMAIN, '_smtp._tls.' + DOMAIN, 'autodiscover.' + DOMAIN,
                   'PTR record', 'mode: enforce', 'mx: mail.' + DOMAIN):
        assert needle in result.stdout, needle


# --- Outbound: TLS, DKIM, SPF ----------------------------------------------------
def test_outbound_mail_arrives_over_tls(outbound):
    msg = email.message_from_bytes(outbound, policy=email.policy.default)
    first = msg.get_all('Received')[0]
    assert 'from mail.%s' % DOMAIN in first and 'using TLSv1.' in first, first


def test_outbound_mail_carries_a_dkim_signature_that_verifies_in_dns(outbound):
    msg = email.message_from_bytes(outbound, policy=email.policy.default)
    signature = msg['DKIM-Signature']
    assert 'd=%s' % DOMAIN in signature.replace(' ', '') and 's=congvu1' in signature.replace(' ', '')
    assert 'a=rsa-sha256' in signature.replace(' ', '')
    assert dkim.verify(outbound, dnsfunc=dns_txt)


def test_outbound_mail_passes_spf_at_the_receiver(outbound):
    msg = email.message_from_bytes(outbound, policy=email.policy.default)
    spf = msg['Received-SPF']
    assert spf.lower().startswith('pass') and 'client-ip=%s' % MAIL_IP in spf, spf


def tls_policy(host, domain):
    """The TLS policy Postfix finds for a domain: the first answer of its maps."""
    maps = host.run('postconf -h smtp_tls_policy_maps').stdout.replace(',', ' ').split()
    answers = (host.run('postmap -q %s %s' % (domain, table)).stdout.strip() for table in maps)
    return next((answer for answer in answers if answer), '')


def test_tls_is_required_towards_example_net_by_the_inventory(host):
    assert tls_policy(host, 'example.net') == 'encrypt'


# --- Outbound: MTA-STS (example.org and example.com publish policies in
# enforce mode; their mail goes to example.net's server, whose certificate
# names mx.example.net only) ---------------------------------------------------
def test_the_mta_sts_policy_of_a_foreign_domain_reaches_postfix(host):
    assert tls_policy(host, 'example.org').split()[:2] == ['secure', 'match=mx.example.net']


def test_mail_to_a_domain_whose_mx_passes_its_mta_sts_policy_arrives(server, lab):
    msg = new_message(LONG, 'alice@example.org', body='MTA-STS: máy chủ đúng tên.\n')
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        client.send_message(msg)
    got = email.message_from_bytes(foreign_message(msg['Message-ID']), policy=email.policy.default)
    assert 'using TLSv1.' in got.get_all('Received')[0]


def queued_for(host, recipient):
    """(queue id, delay reason) of the message queued for recipient, or None."""
    for line in host.run('postqueue -j').stdout.splitlines():
        entry = json.loads(line)
        for rcpt in entry['recipients']:
            if rcpt['address'] == recipient and rcpt.get('delay_reason'):
                return entry['queue_id'], rcpt['delay_reason']
    return None


def test_mail_to_a_domain_whose_mx_fails_its_mta_sts_policy_is_held(server, lab, host):
    msg = new_message(LONG, 'alice@example.com', body='MTA-STS: máy chủ sai tên.\n')
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        client.send_message(msg)
    deadline = time.monotonic() + 90
    while (queued := queued_for(host, 'alice@example.com')) is None and time.monotonic() < deadline:
        time.sleep(2)
    assert queued, 'the message was not held in the queue'
    queue_id, reason = queued
    try:
        assert 'certificate' in reason.lower(), reason
        assert not foreign("grep -rlF 'Message-ID: %s' /home/alice/Maildir" % msg['Message-ID']).stdout
    finally:
        host.run('postsuper -d %s' % queue_id)


# --- Inbound: SPF, DMARC -------------------------------------------------------------
def test_mail_from_example_net_is_delivered_with_spf_pass(server, lab):
    msg = new_message(ALICE, TUYET, body='Thư từ đối tác.\n')
    sent = foreign('/usr/sbin/sendmail -t -f %s' % ALICE, stdin=msg.as_bytes())
    assert sent.returncode == 0, sent.stderr
    got = server.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])
    results = ' '.join(got.get_all('Authentication-Results', []))
    assert 'spf=pass' in results, results


FORGE = r'''
import smtplib, sys
client = smtplib.SMTP('%s', 25, 'mx.example.net', timeout=30)
client.starttls()
client.ehlo('mx.example.net')
try:
    client.sendmail('bounce@example.net', ['%s'], sys.stdin.buffer.read())
    print(250)
except smtplib.SMTPDataError as error:
    print(error.smtp_code, error.smtp_error.decode())
'''


def test_mail_forged_as_the_province_is_refused(server, lab):
    msg = new_message(LONG, TUYET, subject='Khẩn: chuyển tiền', body='Giả mạo giám đốc.\n')
    result = foreign("python3 -c \"$FORGE\"".replace('$FORGE', (FORGE % (MAIL_IP, TUYET)).replace('"', '\\"')),
                     stdin=msg.as_bytes())
    code, _sep, reply = result.stdout.decode().strip().partition(' ')
    assert code == '554', result.stdout + result.stderr
    assert 'forged' in reply, reply


# --- S/MIME signatures survive the trip ------------------------------------------------
@pytest.fixture(scope='module')
def smime(tmp_path_factory):
    """A signing certificate for longnv@ and a function signing a message with it."""
    tmp = tmp_path_factory.mktemp('smime')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                    '-keyout', str(tmp / 'key.pem'), '-out', str(tmp / 'cert.pem'),
                    '-subj', '/CN=Nguyen Van Long/emailAddress=' + LONG,
                    '-addext', 'subjectAltName=email:' + LONG], check=True, capture_output=True)

    def sign(recipient):
        template = new_message(LONG, recipient, subject='Văn bản ký số')
        (tmp / 'body.txt').write_text('Quyet dinh so 27/2018: van ban da ky so.\n' * 10)
        signed = subprocess.run(['openssl', 'smime', '-sign', '-text', '-in', str(tmp / 'body.txt'),
                                 '-signer', str(tmp / 'cert.pem'), '-inkey', str(tmp / 'key.pem'),
                                 '-from', LONG, '-to', recipient, '-subject', 'S/MIME test'],
                                check=True, capture_output=True).stdout
        head = 'Message-ID: %s\nDate: %s\n' % (template['Message-ID'], template['Date'])
        return template['Message-ID'], (head.encode() + signed).replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')

    def verify(raw):
        (tmp / 'got.eml').write_bytes(raw)
        return subprocess.run(['openssl', 'smime', '-verify', '-in', str(tmp / 'got.eml'),
                               '-CAfile', str(tmp / 'cert.pem'), '-purpose', 'any'],
                              capture_output=True, check=False)

    return sign, verify


@pytest.mark.parametrize('recipient', [TUYET, ALICE])
def test_smime_signature_still_verifies_on_arrival(server, lab, smime, recipient):
    sign, verify = smime
    message_id, raw = sign(recipient)
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        client.sendmail(LONG, [recipient], raw)
    if recipient == ALICE:
        got = foreign_message(message_id)
    else:
        got = imap_raw(server, TUYET, password(lab, 'BG0003'), message_id)
    assert b'DKIM-Signature' in got or recipient == TUYET
    result = verify(got)
    assert result.returncode == 0 and b'Verification successful' in result.stderr, result.stderr


# --- The DKIM key: made once, kept, rotated --------------------------------------------
def controller_key(selector='congvu1'):
    return (EPHEMERAL / 'dkim' / ('%s.%s.key' % (DOMAIN, selector))).read_bytes()


def host_key(host, selector='congvu1'):
    return host.file('/var/lib/rspamd/dkim/%s.%s.key' % (DOMAIN, selector))


def test_signing_key_is_rsa_2048_readable_by_rspamd_only(host):
    key = host_key(host)
    assert (key.user, key.group, key.mode) == ('root', '_rspamd', 0o640)
    out = host.run('openssl rsa -in %s -noout -text' % key.path).stdout
    assert 'Private-Key: (2048 bit' in out


def test_rebuilt_host_gets_the_same_key_back(host):
    before = hashlib.sha256(controller_key()).hexdigest()
    assert host.run('sha256sum %s' % host_key(host).path).stdout.split()[0] == before
    host.run('rm -f %s' % host_key(host).path)     # what a rebuild loses
    run_playbook('tools/dkim-switch.yml', check=True)
    assert host.run('sha256sum %s' % host_key(host).path).stdout.split()[0] == before
    assert hashlib.sha256(controller_key()).hexdigest() == before


def test_rotation_makes_a_new_key_and_keeps_the_old_one_published():
    rotate = run_playbook('tools/dkim-new-keys.yml', {'dkim_rotate_to': 'congvu2'}, check=True)
    assert 'congvu2._domainkey.%s. IN TXT "v=DKIM1; k=rsa; p=MII' % DOMAIN in rotate.stdout
    assert controller_key('congvu2') != controller_key('congvu1')
    records = run_playbook('tools/dns-records.yml', {'dkim_selector': 'congvu2',
                                               'dkim_previous_selectors': ['congvu1']}, check=True)
    assert 'congvu1._domainkey.' + DOMAIN in records.stdout
    assert 'congvu2._domainkey.' + DOMAIN in records.stdout
    again = run_playbook('tools/dkim-new-keys.yml', {'dkim_rotate_to': 'congvu3'}, check=True)
    assert 'congvu3._domainkey' in again.stdout
