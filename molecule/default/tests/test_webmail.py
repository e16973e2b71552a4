"""The webmail in a real browser: Debian's Chromium, headless, driven by
Playwright, at https://mail.bacgiang.gov.vn (the host's published port),
trusting the lab CA. Screenshots are kept in artifacts/webmail/. Also
ManageSieve and the password service's database rights."""

import imaplib
import time
import uuid

import pytest

from mailtest import MAIL_HOST, chromium, goto, navigate, new_message, psql

DOMAIN = 'bacgiang.gov.vn'
URL = 'https://%s/' % MAIL_HOST
READER = 'tuyetdta@' + DOMAIN        # reads, sends, marks spam
SENDER = 'longnv@' + DOMAIN
CHANGER = 'longnv2@' + DOMAIN        # must change, then changes the password (a user: 8 characters)
IDS = {'longnv': 'BG0001', 'longnv2': 'BG0002', 'tuyetdta': 'BG0003'}


def password(lab, address):
    person_id = IDS[address.split('@')[0]]
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


def shot(page, name):
    page.screenshot(path=str(page.shots / ('%s.png' % name)), full_page=True)


def login(page, user, secret):
    goto(page, URL)
    page.fill('#rcmloginuser', user)
    page.fill('#rcmloginpwd', secret)
    navigate(lambda: page.click('#rcmloginsubmit'))
    page.wait_for_load_state('networkidle')


def learned_spam(host):
    """rspamd's learned spam count, where rspamd keeps it (Redis)."""
    return int(host.run('redis-cli HGET RS learns_spam').stdout.strip() or 0)


def imap_search(server, user, secret, folder, criteria):
    client = server.imap(user, secret)
    try:
        client.select(folder, readonly=True)
        _typ, data = client.search(None, *criteria)
        return data[0].split()
    finally:
        client.logout()


def wait_until(check, what, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        time.sleep(1)


@pytest.fixture(scope='module')
def page(server):
    with chromium(server, 'webmail') as browser_page:
        yield browser_page


def test_read_send_and_mark_spam_in_the_browser(server, lab, host, page):
    # A message the test sends arrives; the user reads it in the webmail.
    token = uuid.uuid4().hex[:12]
    words = ' '.join(uuid.uuid4().hex[:8] for _ in range(60))
    body = 'Khuyến mãi đặc biệt %s. Special offer, claim your prize now. %s\n' % (token, words)
    msg = new_message(SENDER, READER, 'Thư thử nghiệm webmail ' + token, body)
    with server.submission(SENDER, password(lab, SENDER)) as client:
        client.send_message(msg)
    server.wait_for_message(READER, password(lab, READER), msg['Message-ID'])

    login(page, READER, password(lab, READER))
    shot(page, '01-inbox')
    row = page.locator('#messagelist tr', has_text=token)
    row.click()
    frame = page.frame_locator('#messagecontframe')
    frame.locator('#messagebody').get_by_text(token).wait_for()
    shot(page, '02-message-read')

    # Mark it as spam: it moves to Junk, and rspamd learns (Điều 4.4).
    before = learned_spam(host)
    page.evaluate("rcmail.command('plugin.markasjunk.junk', '', null)")
    wait_until(lambda: imap_search(server, READER, password(lab, READER), 'Junk', ['BODY', token]),
               'the message did not reach Junk')
    shot(page, '03-marked-spam')
    wait_until(lambda: learned_spam(host) > before, 'rspamd did not learn the spam (still %d)' % before)

    # Send a message to another user, checked over IMAP.
    reply_token = uuid.uuid4().hex[:12]
    goto(page, URL + '?_task=mail&_action=compose')
    page.locator('#compose_to input').first.fill(SENDER)
    page.fill('#compose-subject', 'Trả lời từ webmail ' + reply_token)
    page.fill('#composebody', 'Xin chào, thư gửi từ webmail. ' + reply_token)
    shot(page, '04-compose')
    page.evaluate("rcmail.command('send', '', null)")
    wait_until(lambda: imap_search(server, SENDER, password(lab, SENDER), 'INBOX', ['SUBJECT', reply_token]),
               'the message sent from the webmail did not arrive')
    assert imap_search(server, READER, password(lab, READER), 'Sent', ['SUBJECT', reply_token])
    shot(page, '05-sent')
    goto(page, URL + '?_task=logout&_token=' + page.evaluate('rcmail.env.request_token'))


@pytest.fixture
def changer(host, lab):
    """CHANGER marked "must change at next login"; afterwards its stored
    password, history and mark are put back as they were."""
    saved = psql(host, "SELECT password || '|' || must_change FROM mailboxes WHERE address = '%s'" % CHANGER)
    stored, must_change = saved.rsplit('|', 1)
    psql(host, "UPDATE mailboxes SET must_change = true WHERE address = '%s'" % CHANGER)
    yield password(lab, CHANGER), stored
    psql(host, "UPDATE mailboxes SET password = '%s', must_change = %s WHERE address = '%s'"
         % (stored, 'true' if must_change == 't' else 'false', CHANGER))
    psql(host, "DELETE FROM password_history WHERE mailbox_id = (SELECT id FROM mailboxes WHERE address = '%s') "
               "AND password = '%s'" % (CHANGER, stored))


def change_password(page, current, new):
    goto(page, URL + '?_task=settings&_action=plugin.password')
    page.fill('#curpasswd', current)
    page.fill('#newpasswd', new)
    page.fill('#confpasswd', new)
    page.evaluate("rcmail.command('plugin.password-save', '', null)")
    message = page.locator('#messagestack div.error, #messagestack div.confirmation').last
    message.wait_for()
    return message


def test_must_change_then_password_change_by_the_regulation(server, host, page, changer):
    old, old_hash = changer
    login(page, CHANGER, old)
    # Marked: the password page is the only place the webmail lets the user go.
    assert '_action=plugin.password' in page.url
    shot(page, '10-must-change')
    goto(page, URL + '?_task=mail&_mbox=INBOX')
    assert '_action=plugin.password' in page.url
    goto(page, URL + '?_task=addressbook')
    assert '_action=plugin.password' in page.url

    # Weak passwords are refused, naming the broken rule (Điều 4.1, 4.2).
    for weak, rule in [('Abcdefgh!', 'has no digit (Điều 4.1)'),
                       ('Ab1!', 'shorter than 8 characters (Điều 4.1, user)'),
                       ('Longnv2-2026!', 'contains the login name (Điều 4.2)')]:
        message = change_password(page, old, weak)
        assert rule in message.inner_text(), message.inner_text()
        shot(page, '11-refused-' + rule.split(' (')[0].replace(' ', '-'))
        # Nothing changed: the old password still matches (a desktop client is
        # told to change it, which Dovecot says only after the password matched).
        with pytest.raises(imaplib.IMAP4.error, match='must be changed'):
            server.imap(CHANGER, old)
    assert psql(host, "SELECT must_change FROM mailboxes WHERE address = '%s'" % CHANGER) == 't'

    # A compliant one is accepted, works over IMAP; the old one no longer does.
    new = 'Webmail-Doi-2026-%s!' % uuid.uuid4().hex[:6]
    message = change_password(page, old, new)
    shot(page, '12-accepted')
    assert 'error' not in (message.get_attribute('class') or ''), message.inner_text()
    server.imap(CHANGER, new).logout()
    with pytest.raises(Exception, match='AUTHENTICATIONFAILED|Authentication failed'):
        server.imap(CHANGER, old)
    assert psql(host, "SELECT must_change FROM mailboxes WHERE address = '%s'" % CHANGER) == 'f'
    # The old hash went into the history, in the same transaction.
    assert psql(host, "SELECT count(*) FROM password_history h JOIN mailboxes m ON m.id = h.mailbox_id "
                      "WHERE m.address = '%s' AND h.password = '%s'" % (CHANGER, old_hash)) == '1'

    # Back to the previous password: one of the last 3 (Điều 4.2), refused.
    message = change_password(page, new, old)
    assert 'reuses one of the last 3 passwords (Điều 4.2)' in message.inner_text(), message.inner_text()
    shot(page, '13-refused-history')
    server.imap(CHANGER, new).logout()

    # No longer marked: the mail is reachable again.
    goto(page, URL + '?_task=mail&_mbox=INBOX')
    assert '_task=mail' in page.url
    shot(page, '14-mail-again')


def test_password_service_database_rights(host):
    # The service reads and writes only what a change needs.
    rights = psql(host, "SELECT string_agg(privilege_type || ':' || table_name || '.' || column_name, ' ' "
                        "ORDER BY 1) FROM information_schema.column_privileges WHERE grantee = 'mail_passwd'")
    assert 'UPDATE:mailboxes.password' in rights and 'UPDATE:mailboxes.must_change' in rights
    assert 'UPDATE:mailboxes.state' not in rights and 'UPDATE:mailboxes.role' not in rights
    assert 'SELECT:mailboxes.quota_bytes' not in rights
    assert psql(host, "SELECT count(*) FROM information_schema.role_table_grants "
                      "WHERE grantee = 'mail_passwd' AND privilege_type = 'DELETE'") == '0'
    config = host.file('/etc/congvu-mail/mailpassword.json')
    assert config.mode == 0o640 and config.user == 'root'
    socket_file = host.file('/run/congvu-mailpassword.sock')
    assert socket_file.is_socket and socket_file.mode == 0o660 and socket_file.group == 'www-data'
    roundcube = host.file('/etc/roundcube/config.inc.php')
    assert roundcube.mode == 0o640 and roundcube.group == 'www-data'


def test_managesieve_filter_files_delivered_mail(server, lab):
    user, secret = READER, password(lab, READER)
    token = uuid.uuid4().hex[:12]
    script = 'require ["fileinto"];\nif header :contains "subject" "%s" { fileinto "Archive"; }\n' % token
    with server.managesieve(user, secret) as session:
        session.put_script('congvu-test', script)
        session.activate('congvu-test')
    try:
        msg = new_message(SENDER, user, 'Lọc thư ' + token)
        with server.submission(SENDER, password(lab, SENDER)) as client:
            client.send_message(msg)
        server.wait_for_message(user, secret, msg['Message-ID'], folder='Archive')
    finally:
        with server.managesieve(user, secret) as session:
            session.command(b'SETACTIVE ""')
            session.command(b'DELETESCRIPT "congvu-test"')


def test_compose_finds_colleagues_in_the_directory(lab, page):
    # Roundcube's global address book is the directory (role directory):
    # typing part of a name, without diacritics, offers the colleague.
    page.context.clear_cookies()  # a session of its own, whatever ran before
    # A user: SENDER is an administrator, whose role requires the second factor
    # (regulation_twofactor), tried in test_twofactor.py.
    login(page, CHANGER, password(lab, CHANGER))
    goto(page, URL + '?_task=mail&_action=compose')
    page.locator('#compose_to input').first.type('tuyet', delay=100)
    offer = page.locator('#rcmKSearchpane li', has_text=READER)
    offer.first.wait_for(timeout=30000)
    assert 'Đặng Thị Ánh Tuyết' in offer.first.inner_text()
    shot(page, '30-directory-autocomplete')
    goto(page, URL + '?_task=logout&_token=' + page.evaluate('rcmail.env.request_token'))
