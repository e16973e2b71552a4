"""Mail hygiene (REGULATION.md Điều 4.4-4.6): rspamd, ClamAV, IMAPSieve.

Every message is built here with Python's email package and sent from
outside the host: inbound on port 25 from another domain, outbound on 587
by a logged-in user. Executables and viruses are refused in both
directions, encrypted archives follow the operator's setting (all three
settings are tried), clean documents arrive untouched, and moving a message
into and out of Junk trains rspamd.
"""

from __future__ import annotations

import email.header
import io
import json
import os
import re
import smtplib
import struct
import subprocess
import time
import uuid
import zipfile
import zlib
from pathlib import Path

import py7zr
import pytest

from mailtest import PROJECT, new_message

DOMAIN = 'bacgiang.gov.vn'
OUTSIDER = 'vanthu@example.net'
RECIPIENT = 'tuyetdta@' + DOMAIN
SENDER = 'longnv@' + DOMAIN
PORTS = [25, 587]

EICAR = rb'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
ENCRYPTED_SUBJECT = '[Tep ma hoa / Encrypted]'
ENCRYPTED_HEADER = 'X-Congvu-Encrypted-Archive'


# --- Payloads -------------------------------------------------------------------
def windows_executable():
    """A minimal PE image: DOS header pointing at a PE header (i386 DLL)."""
    dos = b'MZ' + bytes(58) + struct.pack('<I', 64)
    coff = struct.pack('<HHIIIHH', 0x14C, 0, 0, 0, 0, 0xE0, 0x2102)
    return dos + b'PE\0\0' + coff + bytes(0xE0) + b'congvu-mail test ' + uuid.uuid4().bytes


def pdf():
    return (b'%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n'
            b'2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n'
            b'3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n'
            b'trailer<</Root 1 0 R>>\n%%EOF\n')


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buf.getvalue()


def docx():
    """A Word document: a zip with [Content_Types].xml, as Word writes it."""
    return zip_of({
        '[Content_Types].xml': (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" ContentType='
            '"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'),
        '_rels/.rels': (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="word/document.xml"/></Relationships>'),
        'word/document.xml': (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            '<w:body><w:p><w:r><w:t>Công văn số 12/STTTT</w:t></w:r></w:p></w:body></w:document>'),
    })


def _zipcrypto_update(keys, byte):
    keys[0] = zlib.crc32(bytes([byte]), keys[0] ^ 0xFFFFFFFF) ^ 0xFFFFFFFF
    keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
    keys[2] = zlib.crc32(bytes([keys[1] >> 24]), keys[2] ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


def encrypted_zip(name, data, password=b'Mat-khau-2026'):
    """A zip with one file under traditional PKWARE encryption (zip -e)."""
    keys = [0x12345678, 0x23456789, 0x34567890]
    for byte in password:
        _zipcrypto_update(keys, byte)
    crc = zlib.crc32(data)
    plain = os.urandom(11) + bytes([crc >> 24]) + data
    cipher = bytearray()
    for byte in plain:
        temp = (keys[2] | 2) & 0xFFFF
        cipher.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        _zipcrypto_update(keys, byte)
    fname = name.encode()
    local = struct.pack('<IHHHHHIIIHH', 0x04034B50, 20, 1, 0, 0, 0, crc, len(cipher), len(data), len(fname), 0)
    central = struct.pack('<IHHHHHHIIIHHHHHII', 0x02014B50, 20, 20, 1, 0, 0, 0, crc, len(cipher), len(data),
                          len(fname), 0, 0, 0, 0, 0, 0)
    body = local + fname + bytes(cipher)
    directory = central + fname
    end = struct.pack('<IHHHHIIH', 0x06054B50, 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def seven_zip(files, password=None):
    """A 7z archive; with a password, names and contents are encrypted."""
    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, 'w', password=password, header_encryption=bool(password)) as archive:
        for name, data in files.items():
            archive.writestr(data, name)
    return buf.getvalue()


def text_files():
    return {'bao-cao.txt': 'Báo cáo tuần\n' * 40, 'ghi-chu.txt': 'Ghi chú cuộc họp\n' * 40}


# --- Messages ---------------------------------------------------------------------
def with_attachment(sender, recipient, filename, data, subject=None, mime=('application', 'octet-stream')):
    msg = new_message(sender, recipient, subject=subject or 'Tệp đính kèm: ' + filename)
    msg.add_attachment(data, maintype=mime[0], subtype=mime[1], filename=filename)
    return msg


def client_for(server, lab, port):
    """(SMTP session, sender) for mail received on 25 or submitted on 587."""
    if port == 25:
        return server.smtp(25), OUTSIDER
    return server.submission(SENDER, lab_password(lab, SENDER)), SENDER


def lab_password(lab, address):
    """LAB ONLY password of longnv@ (BG0001) or tuyetdta@ (BG0003)."""
    person_id = {SENDER: 'BG0001', RECIPIENT: 'BG0003'}[address]
    return next(person['password'] for person in lab['accounts_people'] if person['id'] == person_id)


def send(server, lab, port, build):
    """Send the message build(sender) makes; (code, reply) of the end of DATA."""
    client, sender = client_for(server, lab, port)
    msg = build(sender)
    try:
        client.send_message(msg)
        return 250, '', msg
    except smtplib.SMTPDataError as error:
        return error.smtp_code, error.smtp_error.decode('utf-8', 'replace'), msg
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            pass


def arrived(server, lab, msg, folder='INBOX', timeout=60):
    return server.wait_for_message(RECIPIENT, lab_password(lab, RECIPIENT), msg['Message-ID'],
                                   folder=folder, timeout=timeout)


def subject(received):
    return str(email.header.make_header(email.header.decode_header(received['Subject'])))


def attachments(received):
    return {part.get_filename(): part.get_payload(decode=True) for part in received.walk() if part.get_filename()}


# --- Executables (Điều 2, 4.6) ---------------------------------------------------------
EXECUTABLES = {
    'exe': lambda: ('setup.exe', windows_executable()),
    'EXE upper case': lambda: ('SETUP.EXE', windows_executable()),
    'double extension': lambda: ('report.pdf.exe', windows_executable()),
    'dll in zip': lambda: ('tai-lieu.zip', zip_of({'doc.txt': 'Xem tệp kèm.\n', 'lib/tool.dll': windows_executable()})),
    'dll in multi-file 7z': lambda: ('tai-lieu.7z', seven_zip({'a.txt': b'Mot\n' * 50, 'tool.dll': windows_executable(),
                                                              'b.txt': b'Hai\n' * 50})),
    'executable named pdf': lambda: ('hoa-don.pdf', windows_executable()),
}


@pytest.mark.parametrize('port', PORTS)
@pytest.mark.parametrize('case', sorted(EXECUTABLES))
def test_executables_are_refused_with_the_rule(server, lab, port, case):
    filename, data = EXECUTABLES[case]()
    mime = ('application', 'pdf') if filename.endswith('.pdf') else ('application', 'octet-stream')
    code, reply, _msg = send(server, lab, port,
                             lambda sender: with_attachment(sender, RECIPIENT, filename, data, mime=mime))
    assert code == 554, (case, code, reply)
    assert 'Dieu 4.6' in reply and 'Executable files may not be sent or received' in reply, reply
    assert 'Tep thuc thi bi cam' in reply, reply


# --- Viruses (Điều 4.5) and GTUBE --------------------------------------------------------
VIRUSES = {
    'EICAR': lambda: ('eicar.txt', EICAR),
    'EICAR zipped': lambda: ('eicar.zip', zip_of({'eicar.txt': EICAR})),
}


@pytest.mark.parametrize('port', PORTS)
@pytest.mark.parametrize('case', sorted(VIRUSES))
def test_viruses_are_refused(server, lab, port, case):
    filename, data = VIRUSES[case]()
    code, reply, _msg = send(server, lab, port, lambda sender: with_attachment(sender, RECIPIENT, filename, data))
    assert code == 554, (case, code, reply)
    assert 'virus' in reply, reply


@pytest.mark.parametrize('port', PORTS)
def test_gtube_is_refused(server, lab, port):
    code, reply, _msg = send(server, lab, port,
                             lambda sender: new_message(sender, RECIPIENT, 'Quảng cáo', 'Mua ngay!\n%s\n' % GTUBE))
    assert code == 554, (code, reply)


# --- Clean mail arrives untouched -----------------------------------------------------------
CLEAN = {
    'pdf': lambda: ('cong-van.pdf', pdf(), ('application', 'pdf')),
    'docx': lambda: ('to-trinh.docx', docx(),
                     ('application', 'vnd.openxmlformats-officedocument.wordprocessingml.document')),
    'zip of text files': lambda: ('bao-cao.zip', zip_of(text_files()), ('application', 'zip')),
}


@pytest.mark.parametrize('port', PORTS)
@pytest.mark.parametrize('case', sorted(CLEAN))
def test_clean_documents_arrive_untouched_with_spam_headers(server, lab, port, case):
    filename, data, mime = CLEAN[case]()
    code, reply, msg = send(server, lab, port,
                            lambda sender: with_attachment(sender, RECIPIENT, filename, data, mime=mime))
    assert code == 250, (case, code, reply)
    received = arrived(server, lab, msg)
    assert attachments(received) == {filename: data}
    assert subject(received) == msg['Subject']
    assert received['X-Spamd-Result'], 'no spam score header'
    assert received['X-Spam-Status'].startswith('No, score=')
    assert ENCRYPTED_HEADER not in received


# --- Password-encrypted archives (Điều 4.6), under each setting --------------------------------
ENCRYPTED = {
    'zip': lambda: ('mat.zip', encrypted_zip('so-lieu.txt', b'So lieu mat\n' * 30)),
    '7z': lambda: ('mat.7z', seven_zip({'so-lieu.txt': b'So lieu mat\n' * 30, 'phu-luc.txt': b'Phu luc\n' * 30},
                                       password='Mat-khau-2026')),
}


def wait_for_rspamd(host, timeout=120):
    """Until rspamd's milter (the proxy Postfix talks to) answers again after
    a restart: meanwhile Postfix defers every message (451), by design."""
    ping = ('python3 -c "import urllib.request; '
            'print(urllib.request.urlopen(\'http://127.0.0.1:11332/ping\', timeout=5).read().decode())"')
    deadline = time.monotonic() + timeout
    while 'pong' not in host.run(ping).stdout:
        assert time.monotonic() < deadline, 'rspamd did not come back'
        time.sleep(1)


@pytest.fixture(scope='module')
def encrypted_archives_setting(host):
    """Switch regulation_encrypted_archives with the rspamd role itself; restore the default after."""
    state = {'current': 'quarantine'}

    def switch(value):
        if value == state['current']:
            return
        # Only the rspamd role's tasks: the setting is rspamd's.
        inventory = os.environ.get('MOLECULE_INVENTORY_FILE', str(PROJECT / 'inventories' / 'lab'))
        result = subprocess.run(['ansible-playbook', '-i', inventory, str(PROJECT / 'playbooks' / 'hygiene.yml'),
                                 '--tags', 'rspamd', '-e', 'regulation_encrypted_archives=' + value],
                                capture_output=True, text=True, timeout=600,
                                env=dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / 'ansible.cfg')))
        assert result.returncode == 0, result.stdout[-4000:]
        state['current'] = value
        wait_for_rspamd(host)
        forced = host.check_output('rspamadm configdump force_actions')
        assert {'reject': '"reject"', 'quarantine': '"quarantine"', 'tag': '"rewrite subject"'}[value] in forced

    yield switch
    switch('quarantine')


def _hold_queue(host):
    out = host.run('postqueue -j').stdout
    return [json.loads(line) for line in out.splitlines() if line.strip() and json.loads(line)['queue_name'] == 'hold']


@pytest.mark.parametrize('archive', sorted(ENCRYPTED))
def test_encrypted_archives_are_quarantined_by_default(server, lab, host, encrypted_archives_setting, archive):
    encrypted_archives_setting('quarantine')
    for port in PORTS:
        host.run_expect([0], 'postsuper -d ALL hold')
        filename, data = ENCRYPTED[archive]()
        code, reply, msg = send(server, lab, port, lambda sender: with_attachment(sender, RECIPIENT, filename, data))
        assert code == 250, (port, code, reply)
        deadline = time.monotonic() + 30
        while not _hold_queue(host):
            assert time.monotonic() < deadline, 'message not held (port %d)' % port
            time.sleep(1)
        held = _hold_queue(host)
        assert len(held) == 1 and held[0]['recipients'][0]['address'] == RECIPIENT
        # An administrator releases it (postsuper -H): it is delivered as sent.
        host.run_expect([0], 'postsuper -H %s && postqueue -i %s' % (held[0]['queue_id'], held[0]['queue_id']))
        received = arrived(server, lab, msg)
        assert attachments(received) == {filename: data}


def send_encrypted(server, lab, archive):
    """Send the encrypted archive on every submission port; yields (port, file
    name, data, code, reply, message) of each."""
    for port in PORTS:
        filename, data = ENCRYPTED[archive]()
        code, reply, msg = send(server, lab, port, lambda sender: with_attachment(sender, RECIPIENT, filename, data))
        yield port, filename, data, code, reply, msg


@pytest.mark.parametrize('archive', sorted(ENCRYPTED))
def test_encrypted_archives_can_be_rejected(server, lab, encrypted_archives_setting, archive):
    encrypted_archives_setting('reject')
    for port, _filename, _data, code, reply, _msg in send_encrypted(server, lab, archive):
        assert code == 554, (port, code, reply)
        assert 'Password-encrypted archives are restricted' in reply and 'Dieu 4.6' in reply, reply


@pytest.mark.parametrize('archive', sorted(ENCRYPTED))
def test_encrypted_archives_can_be_tagged(server, lab, encrypted_archives_setting, archive):
    encrypted_archives_setting('tag')
    for port, filename, data, code, reply, msg in send_encrypted(server, lab, archive):
        assert code == 250, (port, code, reply)
        received = arrived(server, lab, msg)
        assert subject(received).startswith(ENCRYPTED_SUBJECT), subject(received)
        assert received[ENCRYPTED_HEADER], 'no %s header' % ENCRYPTED_HEADER
        assert attachments(received) == {filename: data}


# --- The scanner down: deferred, never accepted unscanned, never bounced ----------------------------
def test_scanner_down_defers_mail_until_it_is_back(server, lab, host):
    filename, data = 'bien-ban.pdf', pdf() + uuid.uuid4().hex.encode()  # new content: no cached scan result
    build = lambda sender: with_attachment(sender, RECIPIENT, filename, data)  # noqa: E731
    host.run_expect([0], 'systemctl stop clamav-daemon.socket clamav-daemon.service')
    try:
        for port in PORTS:
            code, reply, _msg = send(server, lab, port, build)
            assert 400 <= code < 500, (port, code, reply)
    finally:
        host.run_expect([0], 'systemctl start clamav-daemon.socket clamav-daemon.service')
    # The sending server tries again later (Postfix: postqueue -f), and the message arrives.
    deadline = time.monotonic() + 60
    while True:
        code, reply, msg = send(server, lab, 25, build)
        if code == 250 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert code == 250, (code, reply)
    assert attachments(arrived(server, lab, msg)) == {filename: data}


# --- Junk and learning (Điều 4.4) --------------------------------------------------------------
def _learned(host):
    """rspamd's learned counts, as `rspamc stat` shows them once its cache
    catches up (about 30 s later): read where rspamd keeps them, in Redis."""
    # One line per field; a field not learned yet is an empty line (nil).
    out = host.run('redis-cli HMGET RS learns_spam learns_ham').stdout.split('\n')
    spam, ham = (out + ['', ''])[:2]
    return {'BAYES_SPAM': int(spam or 0), 'BAYES_HAM': int(ham or 0)}


def _wait_learned(host, name, above, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        counts = _learned(host)
        if counts[name] > above:
            return counts
        assert time.monotonic() < deadline, 'rspamd did not learn %s: %s' % (name, counts)
        time.sleep(1)


def test_every_mailbox_has_a_subscribed_junk_folder(server, lab):
    client = server.imap(RECIPIENT, lab_password(lab, RECIPIENT))
    try:
        _typ, listed = client.list('""', 'Junk')
        _typ, subscribed = client.lsub('""', 'Junk')
    finally:
        client.logout()
    assert b'\\Junk' in listed[0]
    assert subscribed[0] and b'Junk' in subscribed[0]


def test_moving_into_and_out_of_junk_trains_rspamd(server, lab, host):
    words = ' '.join(uuid.uuid4().hex[:8] for _ in range(60))
    body = 'Khuyến mãi đặc biệt, nhận quà ngay hôm nay. Special offer, claim your prize now. ' + words + '\n'
    code, reply, msg = send(server, lab, 25, lambda sender: new_message(sender, RECIPIENT, 'Nhận quà ngay', body))
    assert code == 250, (code, reply)
    arrived(server, lab, msg)
    before = _learned(host)

    client = server.imap(RECIPIENT, lab_password(lab, RECIPIENT))
    try:
        client.select('INBOX')
        _typ, data = client.uid('SEARCH', None, 'HEADER', 'Message-ID', msg['Message-ID'])
        typ, _data = client.uid('MOVE', data[0].split()[-1], 'Junk')
        assert typ == 'OK'
        after_spam = _wait_learned(host, 'BAYES_SPAM', before.get('BAYES_SPAM', 0))

        client.select('Junk')
        _typ, data = client.uid('SEARCH', None, 'HEADER', 'Message-ID', msg['Message-ID'])
        typ, _data = client.uid('MOVE', data[0].split()[-1], 'INBOX')
        assert typ == 'OK'
        _wait_learned(host, 'BAYES_HAM', after_spam.get('BAYES_HAM', 0))
    finally:
        client.logout()


# --- One size limit, nothing asked outside -------------------------------------------------------
def test_one_message_size_limit_everywhere(host):
    postfix = int(host.check_output('postconf -h message_size_limit'))
    rspamd = host.check_output('rspamadm configdump options')
    clamd = host.file('/etc/clamav/clamd.conf').content_string
    assert re.search(r'max_message = %d;' % postfix, rspamd), 'rspamd max_message differs from Postfix'
    assert 'StreamMaxLength %d\n' % postfix in clamd
    antivirus = host.check_output('rspamadm configdump antivirus')
    assert re.search(r'max_size = %d;' % postfix, antivirus)


def test_rspamd_asks_only_the_hosts_resolver(host):
    # rspamd asks the local resolver (role resolver), which alone decides
    # where a question goes (test_resolver.py).
    options = host.check_output('rspamadm configdump options')
    servers = re.findall(r'"([\d.:]+)"', options.split('nameserver', 1)[1].split(']')[0])
    assert servers == ['127.0.0.1:53']


def test_freshclam_is_masked_without_a_mirror(host):
    assert host.run('systemctl is-enabled clamav-freshclam').stdout.strip() == 'masked'
    assert host.service('clamav-daemon').is_running


def test_controller_password_is_not_the_debian_default(host):
    passwords = re.findall(r'password = "([^"]*)"', host.check_output('rspamadm configdump worker'))
    assert passwords and 'q1' not in passwords
