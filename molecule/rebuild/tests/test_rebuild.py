"""Backup, restore and rebuild (playbooks/tools/backup-now.yml, rebuild.yml): the
province's server is used (mail delivered, filed by Sieve and by the user,
flagged; a password changed in the webmail's password service), backed up,
destroyed, created again empty from the base image (../recreate.yml) and
rebuilt. Seen from outside, nothing is lost: every message with the same
Message-ID and content, the folders, the flags, the changed password, the
DKIM key and the addresses."""

import email
import email.policy
import hashlib
import imaplib
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import dkim
import dns.resolver
import pytest

from congvu_mail import twofactor
from mailtest import PROJECT, Server, new_message, password_service, psql, run_playbook, scenario_vars

DOMAIN = 'bacgiang.gov.vn'
LONG, TUYET, DUC, HOA = 'BG0001', 'BG0003', 'BG0004', 'BG0005'
ADDRESSES = {LONG: 'longnv@' + DOMAIN, TUYET: 'tuyetdta@' + DOMAIN, DUC: 'ductm@' + DOMAIN,
             HOA: 'hoalt@' + DOMAIN}
DNS_IP = scenario_vars()['internet_dns_ip']
KEYWORD = 'DangXuLy'
DKIM_KEY = '/var/lib/rspamd/dkim/%s.congvu1.key' % DOMAIN
TIMES = {}


def password(lab, person_id):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


def dns_txt(name, timeout=5):
    """dkimpy's DNS look-up, answered by the simulated Internet's DNS server."""
    name = name.decode() if isinstance(name, bytes) else name
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [DNS_IP]
    try:
        answer = res.resolve(name, 'TXT', lifetime=timeout)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    return b''.join(answer[0].strings)


def mailbox_state(server, user, secret):
    """{folder: {Message-ID: (sha256 of the whole message, flags)}} over IMAPS."""
    client = server.imap(user, secret)
    state = {}
    try:
        _typ, folders = client.list()
        for line in folders:
            name = re.match(rb'\((.*?)\) (?:"[^"]*"|NIL) (.+)$', line).group(2).decode()
            _typ, count = client.select(name, readonly=True)
            state[name.strip('"')] = messages = {}
            if int(count[0]) == 0:
                continue
            _typ, data = client.fetch('1:*', '(FLAGS BODY.PEEK[])')
            for item in data:
                if not isinstance(item, tuple):
                    continue
                flags = re.search(rb'FLAGS \(([^)]*)\)', item[0]).group(1).decode().split()
                msg = email.message_from_bytes(item[1], policy=email.policy.default)
                messages[msg['Message-ID']] = (hashlib.sha256(item[1]).hexdigest(),
                                               sorted(f for f in flags if f != '\\Recent'))
    finally:
        client.logout()
    return state


def deliver(server, recipient, subject, sender='someone@example.net'):
    msg = new_message(sender, recipient, subject=subject, body='%s\n%s\n' % (subject, uuid.uuid4()))
    with server.smtp(25) as client:
        client.send_message(msg)
    return msg['Message-ID']


def find(server, user, secret, message_id, folder):
    """The IMAP sequence number of a message in a folder, once it is there."""
    deadline = time.monotonic() + 60
    while True:
        client = server.imap(user, secret)
        try:
            client.select(folder, readonly=True)
            _typ, data = client.search(None, 'HEADER', 'Message-ID', message_id)
            if data[0].split():
                return data[0].split()[-1]
        finally:
            client.logout()
        assert time.monotonic() < deadline, '%s did not arrive in %s of %s' % (message_id, folder, user)
        time.sleep(1)


def dkim_public_key(host):
    result = host.run('openssl pkey -in %s -pubout' % DKIM_KEY)
    assert result.rc == 0, result.stderr
    return result.stdout


def signed_message(server, lab):
    """A message longnv@ sends to tuyetdta@ over submission, as delivered (raw)."""
    msg = new_message(ADDRESSES[LONG], ADDRESSES[TUYET], subject='Công văn có chữ ký',
                      body='Kính gửi chị Tuyết.\n' * 5)
    with server.submission(ADDRESSES[LONG], password(lab, LONG)) as client:
        client.send_message(msg)
    find(server, ADDRESSES[TUYET], password(lab, TUYET), msg['Message-ID'], 'INBOX')
    client = server.imap(ADDRESSES[TUYET], password(lab, TUYET))
    try:
        client.select('INBOX', readonly=True)
        _typ, data = client.search(None, 'HEADER', 'Message-ID', msg['Message-ID'])
        _typ, parts = client.fetch(data[0].split()[-1], '(BODY.PEEK[])')
        return parts[0][1]
    finally:
        client.logout()


@pytest.fixture(scope='module')
def story(host, server, lab):
    """Use the server, back it up, destroy it, create it anew and rebuild it."""
    tuyet, tuyet_pw = ADDRESSES[TUYET], password(lab, TUYET)
    start = time.monotonic()

    # Tuyết files "[Du an]" mail into a folder of her own, by Sieve.
    client = server.imap(tuyet, tuyet_pw)
    client.create('Du-an')
    client.subscribe('Du-an')
    client.create('LuuTru')
    client.subscribe('LuuTru')
    client.logout()
    with server.managesieve(tuyet, tuyet_pw) as sieve:
        sieve.put_script('du-an', 'require "fileinto";\n'
                         'if header :contains "subject" "[Du an]" { fileinto "Du-an"; }\n')
        sieve.activate('du-an')

    # Mail from outside, into the inbox and, by the filter, into Du-an.
    first = deliver(server, tuyet, 'Thư thứ nhất')
    project = deliver(server, tuyet, '[Du an] Kế hoạch năm 2027')
    find(server, tuyet, tuyet_pw, project, 'Du-an')
    # The mail log is rotated here: these two are in its rotation, the rest
    # in the current file.
    rotate = host.run('logrotate --force /etc/logrotate.d/congvu-mail-logs')
    assert rotate.rc == 0, rotate.stderr
    third = deliver(server, tuyet, 'Thư thứ ba')
    for_duc = deliver(server, ADDRESSES[DUC], 'Gửi anh Đức')
    via_alias = deliver(server, 'giamdoc.stttt@' + DOMAIN, 'Gửi giám đốc')
    find(server, ADDRESSES[LONG], password(lab, LONG), via_alias, 'INBOX')
    find(server, ADDRESSES[DUC], password(lab, DUC), for_duc, 'INBOX')

    # Flags, a keyword, a copy into another folder and an APPENDed draft.
    client = server.imap(tuyet, tuyet_pw)
    client.select('INBOX')
    one = find(server, tuyet, tuyet_pw, first, 'INBOX')
    three = find(server, tuyet, tuyet_pw, third, 'INBOX')
    client.store(one, '+FLAGS', '(\\Seen \\Flagged %s)' % KEYWORD)
    client.store(three, '+FLAGS', '(\\Answered)')
    client.copy(one, 'LuuTru')
    note = new_message(tuyet, tuyet, subject='Ghi chú lưu trữ', body='Ghi chú của chị Tuyết.\n')
    client.append('LuuTru', '(\\Seen %s)' % KEYWORD, imaplib.Time2Internaldate(time.time()),
                  note.as_bytes(policy=email.policy.SMTP))
    client.logout()

    # A DKIM-signed message, and the key it was signed with.
    signed_before = signed_message(server, lab)
    key_before = dkim_public_key(host)

    # Đức changes his password, the way the webmail does it.
    duc_old = password(lab, DUC)
    duc_new = 'Doi-Mat-Khau-2026-%s!' % uuid.uuid4().hex[:6]
    reply = password_service(host, {'action': 'change', 'user': ADDRESSES[DUC], 'current': duc_old,
                                    'new': duc_new})
    assert reply['ok'], reply
    # Hoa enrols a second factor (docs/two-factor.md), the way the webmail
    # does it, and makes an app password for her mail client.
    hoa = ADDRESSES[HOA]
    started = password_service(host, {'action': 'twofactor-enrol-start', 'user': hoa})
    assert started['ok'], {k: v for k, v in started.items() if k not in ('secret', 'uri', 'qr_svg')}
    hoa_key = twofactor.secret_from_text(started['secret'])
    confirmed = password_service(host, {'action': 'twofactor-enrol-confirm', 'user': hoa,
                                        'code': twofactor.totp(hoa_key), 'client': '127.0.0.1'})
    assert confirmed['ok'] and len(confirmed['recovery_codes']) == 10, confirmed.get('errors')
    app = password_service(host, {'action': 'app-password-create', 'user': hoa, 'name': 'Thunderbird'})
    assert app['ok'], app.get('errors')
    twofactor_before = {'key': hoa_key, 'recovery': confirmed['recovery_codes'][0],
                        'app_password': app['password'], 'main_password': password(lab, HOA)}
    secrets = {LONG: password(lab, LONG), TUYET: tuyet_pw, DUC: duc_new}
    before = {pid: mailbox_state(server, ADDRESSES[pid], secrets[pid]) for pid in secrets}
    addresses_before = psql(host, 'SELECT id, address, account_id FROM mailboxes ORDER BY id')
    aliases_before = psql(host, 'SELECT address, goto FROM aliases ORDER BY 1, 2')
    log_mode = host.run('stat -c %U:%G:%a /var/log/mail.log').stdout.strip()
    TIMES['use'] = time.monotonic() - start

    # The backup.
    mark = time.monotonic()
    backup = run_playbook('tools/backup-now.yml')
    assert backup.returncode == 0, backup.stdout[-4000:] + backup.stderr[-2000:]
    TIMES['backup.yml'] = time.monotonic() - mark

    # The host is lost; a new, empty one takes its name and address.
    mark = time.monotonic()
    recreate = subprocess.run(
        ['ansible-playbook', str(Path(__file__).resolve().parent.parent / 'recreate.yml'),
         '-e', 'container=%s' % server.container],
        capture_output=True, text=True, timeout=600,
        env=dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1'))
    assert recreate.returncode == 0, recreate.stdout[-3000:] + recreate.stderr[-2000:]
    empty = host.run('test -e /var/vmail || test -e /etc/postfix/main.cf')
    assert empty.rc != 0, 'the new host is not empty'
    TIMES['recreate'] = time.monotonic() - mark

    mark = time.monotonic()
    rebuild = run_playbook('tools/rebuild.yml', timeout=3600)
    TIMES['rebuild.yml'] = time.monotonic() - mark
    assert rebuild.returncode == 0, rebuild.stdout[-6000:] + rebuild.stderr[-2000:]
    fresh = Server(server.container, server.ca_file)  # new host, new published ports
    print('\nrebuild scenario timings (s): %s' % {k: round(v, 1) for k, v in TIMES.items()})
    return {'server': fresh, 'before': before, 'secrets': secrets, 'duc_old': duc_old,
            'signed_before': signed_before, 'key_before': key_before, 'rebuild': rebuild,
            'addresses_before': addresses_before, 'aliases_before': aliases_before,
            'project': project, 'via_alias': via_alias, 'log_mode': log_mode,
            'twofactor': twofactor_before}


def test_rebuild_prints_how_long_each_step_took(story):
    out = ' '.join(story['rebuild'].stdout.split())
    assert 'Rebuild step timings:' in out, out[-3000:]
    for step in ('converge (site.yml)', 'restore (restore.yml)', 'accounts (accounts.yml)', 'checks', 'total'):
        assert re.search(r'%s\s+\d+\.\d s' % re.escape(step), out), (step, out[-2000:])


def test_every_message_is_back_with_the_same_content(story):
    server, secrets = story['server'], story['secrets']
    for pid, before in story['before'].items():
        after = mailbox_state(server, ADDRESSES[pid], secrets[pid])
        for folder, messages in before.items():
            assert folder in after, (pid, folder, sorted(after))
            got = after[folder]
            assert {mid: h for mid, (h, _f) in messages.items()} == {mid: h for mid, (h, _f) in got.items()}, \
                (pid, folder)


def test_folders_and_flags_are_kept(story):
    server, secrets = story['server'], story['secrets']
    after = mailbox_state(server, ADDRESSES[TUYET], secrets[TUYET])
    before = story['before'][TUYET]
    assert sorted(after) == sorted(before)
    assert {'Du-an', 'LuuTru', 'INBOX'} <= set(after)
    for folder, messages in before.items():
        assert {mid: f for mid, (_h, f) in messages.items()} == {mid: f for mid, (_h, f) in after[folder].items()}
    flags = [f for _h, f in after['INBOX'].values()]
    assert any({'\\Seen', '\\Flagged', KEYWORD} <= set(f) for f in flags), flags
    assert any('\\Answered' in f for f in flags), flags
    assert story['project'] in after['Du-an']


def test_the_sieve_filter_still_files_new_mail(story):
    server = story['server']
    message_id = deliver(server, ADDRESSES[TUYET], '[Du an] Sau khi dựng lại')
    find(server, ADDRESSES[TUYET], story['secrets'][TUYET], message_id, 'Du-an')


def test_the_changed_password_works_and_the_old_one_does_not(story):
    server = story['server']
    server.imap(ADDRESSES[DUC], story['secrets'][DUC]).logout()
    server.submission(ADDRESSES[DUC], story['secrets'][DUC]).quit()
    with pytest.raises(imaplib.IMAP4.error):
        server.imap(ADDRESSES[DUC], story['duc_old'])


def test_an_enrolled_account_still_logs_in_with_its_codes(story, host):
    """Hoa's second factor survives the rebuild: a code of her authenticator
    app and one of her recovery codes are accepted (the sealed secret opens
    with the restored key), her app password works over IMAP, and her main
    password is still refused there."""
    before, hoa = story['twofactor'], ADDRESSES[HOA]
    # A code of a later time step than the one enrolment used (never twice).
    code = password_service(host, {'action': 'twofactor-verify', 'user': hoa,
                                   'code': twofactor.totp(before['key']), 'client': '127.0.0.1'})
    assert code['ok'] and not code['recovery'], code.get('errors')
    recovery = password_service(host, {'action': 'twofactor-verify', 'user': hoa,
                                       'code': before['recovery'], 'client': '127.0.0.1'})
    assert recovery['ok'] and recovery['recovery'], recovery.get('errors')
    story['server'].imap(hoa, before['app_password']).logout()
    with pytest.raises(imaplib.IMAP4.error, match='app password'):
        story['server'].imap(hoa, before['main_password'])


def test_the_dkim_key_is_unchanged_and_new_mail_verifies(story, host, lab):
    assert dkim_public_key(host) == story['key_before']
    assert dkim.verify(story['signed_before'], dnsfunc=dns_txt)
    after = signed_message(story['server'], lab)
    signature = email.message_from_bytes(after, policy=email.policy.default)['DKIM-Signature']
    assert 's=congvu1' in signature.replace(' ', '') and 'd=%s' % DOMAIN in signature.replace(' ', '')
    assert dkim.verify(after, dnsfunc=dns_txt)


def test_the_addresses_are_unchanged_and_deliver(story, host, lab):
    assert psql(host, 'SELECT id, address, account_id FROM mailboxes ORDER BY id') == story['addresses_before']
    assert psql(host, 'SELECT address, goto FROM aliases ORDER BY 1, 2') == story['aliases_before']
    server = story['server']
    for recipient in ('giamdoc.stttt@' + DOMAIN, 'postmaster@' + DOMAIN):
        message_id = deliver(server, recipient, 'Sau khi dựng lại: %s' % recipient)
        find(server, ADDRESSES[LONG], password(lab, LONG), message_id, 'INBOX')


def test_the_mail_log_history_is_back(story, host):
    """The rotated log and the last one come back, ahead of what the new host
    has logged since; the system logger goes on writing to the same file.
    The daily rotation may have run on the new host since the restore (its
    timer fires at midnight, local time), so the history is read as every
    file of the rotation, oldest first."""
    history_command = ('for f in $(ls -v /var/log/mail.log.* | tac) /var/log/mail.log; '
                       'do zcat -f "$f"; done')
    rotated = host.run('zcat -f $(ls -v /var/log/mail.log.* | tac)')
    assert rotated.rc == 0, rotated.stderr
    assert story['project'] in rotated.stdout
    message_id = deliver(story['server'], ADDRESSES[LONG], 'Nhật ký sau khi dựng lại')
    deadline = time.monotonic() + 30
    while True:
        history = host.run(history_command).stdout
        if message_id in history or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert story['project'] in history and story['via_alias'] in history and message_id in history
    assert history.index(story['project']) < history.index(story['via_alias']) < history.index(message_id)
    assert message_id in host.run('cat /var/log/mail.log').stdout
    assert host.run('stat -c %U:%G:%a /var/log/mail.log').stdout.strip() == story['log_mode']


def test_the_new_host_backs_up_again(story):
    mark = time.monotonic()
    result = run_playbook('tools/backup-now.yml')
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r'archive \S+-\d{4}-\d\d-\d\dT\d{6}Z in ssh://', result.stdout), result.stdout[-2000:]
    TIMES['second backup.yml'] = time.monotonic() - mark


# In `make test` the first server is the default scenario's converged host,
# whose idempotence step has already run site.yml twice; one more converge of
# the rebuilt host is left to `make scenario S=rebuild` there, to keep the
# suite within its time.
@pytest.mark.skipif(bool(os.environ.get('CONGVU_REBUILD_IMAGE')),
                    reason='make test: site.yml idempotence is the default scenario\'s step')
def test_site_converges_again_with_no_change(story):
    mark = time.monotonic()
    result = run_playbook('site.yml', timeout=3600)
    TIMES['site.yml again'] = time.monotonic() - mark
    print('\nrebuild scenario timings (s): %s' % {k: round(v, 1) for k, v in TIMES.items()})
    assert result.returncode == 0, result.stdout[-4000:]
    recaps = re.findall(r'^(\S+)\s*:\s*ok=\d+\s+changed=(\d+)', result.stdout, re.M)
    assert recaps and all(changed == '0' for _name, changed in recaps), (recaps, result.stdout[-4000:])
