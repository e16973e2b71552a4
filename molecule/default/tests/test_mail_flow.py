"""The core mail path, tried from outside the host as a mail client would."""

import imaplib
import poplib
import smtplib
import socket
import ssl

import pytest

from mailtest import new_message

DOMAIN = 'bacgiang.gov.vn'
LONG = 'longnv@' + DOMAIN        # Nguyễn Văn Long, admin, alias giamdoc.stttt
TUYET = 'tuyetdta@' + DOMAIN     # Đặng Thị Ánh Tuyết


def password(lab, person_id):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


def test_submission_587_starttls_delivers_intact_read_over_imaps(server, lab):
    msg = new_message(LONG, TUYET, subject='Báo cáo tuần', body='Nội dung tiếng Việt: đồng ý.\n' * 20)
    with server.submission(LONG, password(lab, 'BG0001'), port=587) as client:
        client.send_message(msg)
    got = server.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])
    assert got['Subject'] == 'Báo cáo tuần'
    assert got.get_content().replace('\r\n', '\n') == msg.get_content()


def test_submissions_465_delivers_read_over_pop3s(server, lab):
    msg = new_message(TUYET, LONG, body='Sent over implicit TLS.\n')
    with server.submission(TUYET, password(lab, 'BG0003'), port=465) as client:
        client.send_message(msg)
    server.wait_for_message(LONG, password(lab, 'BG0001'), msg['Message-ID'])
    pop = server.pop3(LONG, password(lab, 'BG0001'))
    try:
        count, _size = pop.stat()
        bodies = [b'\n'.join(pop.retr(i)[1]) for i in range(1, count + 1)]
    finally:
        pop.quit()
    assert any(msg['Message-ID'].encode() in body and b'Sent over implicit TLS.' in body for body in bodies)


def test_port_25_accepts_mail_for_a_local_mailbox_without_login(server, lab):
    msg = new_message('someone@example.net', TUYET, body='From the Internet.\n')
    with server.smtp(25) as client:
        client.starttls(context=server.tls())
        client.ehlo('runner.example.net')
        assert client.send_message(msg) == {}
    server.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])


@pytest.mark.parametrize('role_address', ['postmaster', 'abuse'])
def test_postmaster_and_abuse_reach_the_administrator(server, lab, role_address):
    """RFC 5321 and 2142; the system's own alerts and DMARC reports go there too."""
    msg = new_message('someone@example.net', '%s@%s' % (role_address, DOMAIN), body='Bounce report.\n')
    with server.smtp(25) as client:
        client.starttls(context=server.tls())
        client.ehlo('runner.example.net')
        assert client.send_message(msg) == {}
    server.wait_for_message(LONG, password(lab, 'BG0001'), msg['Message-ID'])


def test_port_25_is_not_an_open_relay(server):
    with server.smtp(25) as client:
        client.mail('someone@example.net')
        code, reply = client.rcpt('victim@example.org')
    assert code in (454, 554), reply
    assert b'Relay access denied' in reply


def test_port_25_unknown_local_recipient_is_refused(server):
    with server.smtp(25) as client:
        client.mail('someone@example.net')
        code, _reply = client.rcpt('nobody-here@' + DOMAIN)
    assert code == 550


def test_port_25_offers_starttls_but_no_login(server):
    with server.smtp(25) as client:
        assert client.has_extn('starttls')
        client.starttls(context=server.tls())
        client.ehlo('runner.example.net')
        assert not client.has_extn('auth')


def test_auth_before_starttls_on_587_is_refused(server, lab):
    client = smtplib.SMTP('127.0.0.1', server.port(587), timeout=30)
    try:
        client.ehlo('client.test')
        assert not client.has_extn('auth')
        code, _reply = client.docmd('AUTH', 'PLAIN AGxvbmdudkBiYWNnaWFuZy5nb3Yudm4AeA==')
        assert code == 530
        code, _reply = client.docmd('MAIL', 'FROM:<%s>' % LONG)
        assert code == 530  # must issue STARTTLS first
    finally:
        client.close()


def test_imap_login_before_starttls_on_143_is_refused(server, lab):
    client = imaplib.IMAP4('127.0.0.1', server.port(143), timeout=30)
    try:
        assert 'LOGINDISABLED' in client.capabilities
        with pytest.raises(imaplib.IMAP4.error, match='(?i)plaintext|privacy|disabled'):
            client.login(LONG, password(lab, 'BG0001'))
    finally:
        client.shutdown()


def test_imap_starttls_on_143_then_login_works(server, lab):
    client = imaplib.IMAP4('127.0.0.1', server.port(143), timeout=30)
    client.starttls(ssl_context=server.tls())
    client.login(LONG, password(lab, 'BG0001'))
    client.logout()


def test_pop3_login_before_stls_on_110_is_refused(server, lab):
    client = poplib.POP3('127.0.0.1', server.port(110), timeout=30)
    try:
        with pytest.raises(poplib.error_proto):
            client.user(LONG)
            client.pass_(password(lab, 'BG0001'))
    finally:
        client.close()


def test_pop3_stls_on_110_then_login_works(server, lab):
    client = poplib.POP3('127.0.0.1', server.port(110), timeout=30)
    client.stls(context=server.tls())
    client.user(LONG)
    client.pass_(password(lab, 'BG0001'))
    client.quit()


def test_wrong_password_is_refused_everywhere(server):
    with pytest.raises(smtplib.SMTPAuthenticationError):
        server.submission(LONG, 'Wrong-Password-1!', port=587, once=True)
    with pytest.raises(imaplib.IMAP4.error):
        server.imap(LONG, 'Wrong-Password-1!')
    with pytest.raises(poplib.error_proto):
        server.pop3(LONG, 'Wrong-Password-1!')


def test_sending_as_another_users_address_is_refused(server, lab):
    msg = new_message(TUYET, LONG, body='Forged sender.\n')
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(msg)
    code, reply = refused.value.recipients[LONG]
    assert code == 553 and b'not owned by user' in reply


@pytest.mark.parametrize('sender', ['giamdoc.stttt@' + DOMAIN, 'stttt@' + DOMAIN])
def test_sending_as_own_alias_or_managed_organisation_is_allowed(server, lab, sender):
    msg = new_message(sender, TUYET, body='Allowed sender %s.\n' % sender)
    with server.submission(LONG, password(lab, 'BG0001')) as client:
        assert client.send_message(msg) == {}
    server.wait_for_message(TUYET, password(lab, 'BG0003'), msg['Message-ID'])


@pytest.mark.parametrize('port', [25, 587])
def test_certificate_chains_to_the_lab_ca(server, port):
    with server.smtp(port) as client:
        client.starttls(context=server.tls())  # verifies the chain against the lab CA
        assert client.sock.version() in ('TLSv1.2', 'TLSv1.3')
        assert 'mail.bacgiang.gov.vn' in str(client.sock.getpeercert()['subject'])


@pytest.mark.parametrize('port', [465, 993, 995])
def test_nothing_below_tls_1_2_is_offered(server, port):
    # A client willing to speak TLS 1.0/1.1 (security level 0 lifts OpenSSL's own
    # ban) is refused by the server; the same client capped at 1.2 gets in.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers('DEFAULT:@SECLEVEL=0')
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(('127.0.0.1', server.port(port)), timeout=10) as raw:
        with pytest.raises(ssl.SSLError) as refused:
            old.wrap_socket(raw)
    # The server refused (an alert or a closed connection), not our own client.
    assert 'NO_PROTOCOLS_AVAILABLE' not in str(refused.value).upper()
    good = server.tls(maximum=ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(('127.0.0.1', server.port(port)), timeout=10) as raw:
        with good.wrap_socket(raw) as tls:
            assert tls.version() == 'TLSv1.2'
