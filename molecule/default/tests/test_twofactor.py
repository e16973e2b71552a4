"""The webmail's second factor and the app passwords (docs/two-factor.md), in
Debian's Chromium and by real IMAP, POP3, SMTP AUTH, ManageSieve and LDAP
sessions from outside the host. The codes are computed here with RFC 6238's
algorithm (HMAC-SHA1, 30 s, 6 digits) from the secret the enrolment page shows.

USER (longnv2, a user: optional) enrols, logs in with codes and a recovery
code, makes an app password and revokes it, and is reset by the playbook;
ADMIN (longnv, an administrator: required) is kept on the enrolment page.
At the end both are as before (no enrolment, no app password), so that the
other tests are unaffected. Screenshots: artifacts/twofactor/."""

from __future__ import annotations

import base64
import hmac
import imaplib
import poplib
import smtplib
import struct
import time

import pytest

from mailtest import LAB_SUFFIX, MAIL_HOST, chromium, goto, navigate, psql, run_playbook

DOMAIN = 'bacgiang.gov.vn'
URL = 'https://%s/' % MAIL_HOST
USER = 'longnv2@' + DOMAIN       # BG0002, role user
ADMIN = 'longnv@' + DOMAIN       # BG0001, role admin
IDS = {USER: 'BG0002', ADMIN: 'BG0001'}
JAIL = 'congvu-mail-auth'
REASON = 'app password'           # in Dovecot's refusal (dovecot_refusal_twofactor)


# --- RFC 6238, as an authenticator app computes it ------------------------------

def hotp(key, counter):
    mac = hmac.new(key, struct.pack('>Q', counter), 'sha1').digest()
    offset = mac[-1] & 0x0F
    return '%06d' % ((struct.unpack('>I', mac[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000)


def key_of(secret_text):
    text = ''.join(secret_text.split()).upper()
    return base64.b32decode(text + '=' * (-len(text) % 8))


class Phone:
    """The authenticator app: the next code the server has not seen yet (the
    server takes the steps now-1 .. now+1, each later than the last used)."""

    def __init__(self, secret_text):
        self.key = key_of(secret_text)
        self.last = 0

    def code(self):
        while True:
            now = int(time.time() // 30)
            steps = [s for s in (now - 1, now, now + 1) if s > self.last]
            if steps:
                self.last = steps[0]
                return hotp(self.key, steps[0])
            time.sleep(1)


# --- The browser -------------------------------------------------------------------

def password(lab, address):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == IDS[address])


def shot(page, name):
    page.screenshot(path=str(page.shots / ('%s.png' % name)), full_page=True)


def login(page, user, secret, attempts=2):
    for _attempt in range(attempts):
        page.context.clear_cookies()
        goto(page, URL)
        page.fill('#rcmloginuser', user)
        page.fill('#rcmloginpwd', secret)
        navigate(lambda: page.click('#rcmloginsubmit'))
        page.wait_for_load_state('networkidle')
        # Still the login form (seen once right after a logout): the form
        # was answered with a fresh one; log in again.
        if page.locator('#rcmloginuser').count() == 0:
            return
    shot(page, 'login-failed')
    raise AssertionError('the webmail did not log %s in: %s' % (user, page.url))


def logout(page):
    token = page.evaluate('window.rcmail ? rcmail.env.request_token : ""')
    goto(page, URL + '?_task=logout&_token=' + token)


def submit_code(page, code):
    page.fill('#congvu-twofactor-code', code)
    navigate(lambda: page.click('#congvu-twofactor-submit'))
    page.wait_for_load_state('networkidle')


def error_shown(page):
    return page.locator('#messagestack div.error').last.inner_text(timeout=10000)


def in_mailbox(page):
    return '_task=mail' in page.url and page.locator('#messagelist').count() == 1


def jail_failed(host):
    out = host.check_output('fail2ban-client status %s', JAIL)
    return int(next(line.split(':')[1] for line in out.splitlines() if 'Total failed' in line))


def wait_until(check, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(1)


@pytest.fixture(scope='module')
def page(server):
    with chromium(server, 'twofactor') as browser_page:
        yield browser_page


@pytest.fixture(scope='module')
def state(host):
    """What the tests hand on (the phone, the recovery codes); at the end the
    two accounts have no enrolment and no app password, and the runner's
    address (the gateway) is not left banned by the wrong codes tried here."""
    found = {}
    yield found
    for address in (USER, ADMIN):
        mailbox = "(SELECT id FROM mailboxes WHERE address = '%s')" % address
        for table in ('recovery_codes', 'twofactor', 'app_passwords'):
            psql(host, 'DELETE FROM %s WHERE mailbox_id = %s' % (table, mailbox))
    gateway = host.check_output("ip -4 route show default | awk '{print $3}'").strip()
    host.run('fail2ban-client set %s unbanip %s', JAIL, gateway)


# --- The tests -----------------------------------------------------------------------

def test_required_account_without_enrolment_cannot_reach_its_mailbox(page, lab, state):
    login(page, ADMIN, password(lab, ADMIN))
    assert '_action=plugin.twofactor-enrol' in page.url, page.url
    page.locator('#congvu-twofactor-qr').wait_for()
    shot(page, '01-required-enrolment')
    for elsewhere in ('?_task=mail&_mbox=INBOX', '?_task=addressbook', '?_task=settings&_action=plugin.password'):
        goto(page, URL + elsewhere)
        assert '_action=plugin.twofactor-enrol' in page.url, (elsewhere, page.url)
        assert page.locator('#messagelist').count() == 0
    logout(page)


def test_enrol_in_the_browser_then_log_in_with_codes(page, lab, host, state):
    login(page, USER, password(lab, USER))
    assert in_mailbox(page), page.url  # optional: not asked before enrolling
    goto(page, URL + '?_task=settings&_action=plugin.twofactor')
    navigate(lambda: page.click('#congvu-twofactor-enrol'))
    page.locator('#congvu-twofactor-qr').wait_for()
    assert page.locator('#congvu-twofactor-qr').evaluate('img => img.naturalWidth') > 0  # the SVG drawn
    secret = page.locator('#congvu-twofactor-secret').inner_text()
    shot(page, '02-enrolment')
    phone = state['phone'] = Phone(secret)
    first = phone.code()
    submit_code(page, first)
    codes = page.locator('#congvu-twofactor-recovery li').all_inner_texts()
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    state['recovery'] = codes
    shot(page, '03-recovery-codes')
    # The secret is stored sealed: neither it nor a recovery code is in the database.
    stored = psql(host, "SELECT secret FROM twofactor WHERE mailbox_id = "
                        "(SELECT id FROM mailboxes WHERE address = '%s')" % USER)
    assert stored.startswith('v1:') and ''.join(secret.split()) not in stored
    assert psql(host, "SELECT count(*) FROM recovery_codes WHERE code_hash = '%s'" % codes[0]) == '0'
    logout(page)

    # The password, then the code: the mailbox is closed until it is given.
    before = jail_failed(host)
    login(page, USER, password(lab, USER))
    assert '_action=plugin.twofactor-code' in page.url, page.url
    goto(page, URL + '?_task=mail&_mbox=INBOX')
    assert '_action=plugin.twofactor-code' in page.url and not in_mailbox(page)
    shot(page, '04-code-asked')
    wrong = next(c for c in ('000000', '111111') if c not in {hotp(phone.key, s) for s in
                                                             range(phone.last - 2, phone.last + 3)})
    submit_code(page, wrong)
    assert 'không đúng' in error_shown(page)
    submit_code(page, first)  # the code enrolment used: never twice
    assert 'không đúng' in error_shown(page)
    assert not in_mailbox(page)
    # Both refusals count as failed logins, with the browser's address.
    wait_until(lambda: jail_failed(host) >= before + 2, 'the wrong codes were not counted by fail2ban')
    journal = host.check_output('journalctl -q -o cat SYSLOG_IDENTIFIER=congvu-mailpassword --since -5min')
    assert 'two-factor code refused for %s from ' % USER in journal
    submit_code(page, phone.code())
    assert in_mailbox(page), page.url
    shot(page, '05-logged-in-with-code')
    logout(page)


def test_a_recovery_code_works_once(page, lab, state):
    code = state['recovery'][0]
    login(page, USER, password(lab, USER))
    submit_code(page, code)
    assert in_mailbox(page), page.url
    logout(page)
    login(page, USER, password(lab, USER))
    submit_code(page, code)
    assert 'không đúng' in error_shown(page) and not in_mailbox(page)
    submit_code(page, phone_code(state))
    assert in_mailbox(page)
    logout(page)


def phone_code(state):
    return state['phone'].code()


def refused(call):
    """The server's answer to a login it refuses (raises if it succeeds)."""
    try:
        call()
    except (imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPAuthenticationError, AssertionError) as exc:
        return str(exc)
    raise AssertionError('the login was accepted')


def sieve_login(server, user, secret):
    with server.managesieve(user, secret):
        pass


def test_app_password_for_mail_clients_and_the_directory(page, lab, server, host, state):
    main = password(lab, USER)
    login(page, USER, main)
    submit_code(page, phone_code(state))
    goto(page, URL + '?_task=settings&_action=plugin.twofactor')
    assert 'đang bật' in page.locator('#congvu-twofactor-status').inner_text()
    page.fill('#congvu-apppassword-name', 'Thunderbird ở cơ quan')
    navigate(lambda: page.click('#congvu-apppassword-create'))
    app = page.locator('#congvu-apppassword-new').inner_text().strip()
    assert len(app) == 29, app
    shot(page, '06-app-password-created')

    # The app password opens IMAP, POP3, SMTP AUTH, ManageSieve and the directory.
    server.imap(USER, app).logout()
    server.pop3(USER, app).quit()
    server.submission(USER, app, once=True).quit()
    server.submission(USER, app, port=465, once=True).quit()
    sieve_login(server, USER, app)
    bind = 'uid=longnv2,ou=people,' + LAB_SUFFIX
    assert server.ldapsearch(bind, app, '(uid=longnv2)')[0] == 0
    # The main password no longer does, and says why.
    assert REASON in refused(lambda: server.imap(USER, main))
    assert REASON in refused(lambda: server.pop3(USER, main))
    assert REASON in refused(lambda: server.submission(USER, main, once=True))
    assert REASON in refused(lambda: sieve_login(server, USER, main))
    assert server.ldapsearch(bind, main, '(uid=longnv2)')[0] == 49
    # The webmail itself still sends with it (its SMTP AUTH is exempt from the
    # rule only from the webmail's host): a message sent in the browser arrives.
    token = 'twofactor-%d' % time.time()
    goto(page, URL + '?_task=mail&_action=compose')
    page.locator('#compose_to input').first.fill(USER)
    page.fill('#compose-subject', 'Gửi từ webmail ' + token)
    page.fill('#composebody', 'Xin chào ' + token)
    page.evaluate("rcmail.command('send', '', null)")
    wait_until(lambda: _has_subject(server, USER, app, token), 'the webmail could not send', timeout=60)

    # Listed with its last use; then revoked: refused everywhere.
    goto(page, URL + '?_task=settings&_action=plugin.twofactor')
    row = page.locator('#congvu-apppasswords tr', has_text='Thunderbird ở cơ quan')
    assert 'chưa dùng' not in row.inner_text(), row.inner_text()
    shot(page, '07-app-passwords')
    navigate(lambda: row.locator('button').click())
    page.wait_for_load_state('networkidle')
    assert page.locator('#congvu-apppasswords tr', has_text='Thunderbird ở cơ quan').count() == 0
    # (Each refusal is a failed login fail2ban counts against the runner's
    # address, like the wrong codes above: two protocols are enough here.)
    refused(lambda: server.imap(USER, app))
    refused(lambda: server.submission(USER, app, once=True))
    logout(page)


def _has_subject(server, user, secret, token):
    client = server.imap(user, secret)
    try:
        client.select('INBOX', readonly=True)
        return bool(client.search(None, 'SUBJECT', token)[1][0].split())
    finally:
        client.logout()


def test_reset_by_playbook_then_enrol_again(page, lab, server, host, state):
    listed = run_playbook('tools/twofactor.yml', check=True).stdout
    assert '%s | user | optional | enrolled' % USER in listed, listed[-3000:]
    assert '%s | admin | required | NOT enrolled (required)' % ADMIN in listed
    secret_text = base64.b32encode(state['phone'].key).decode().rstrip('=')
    assert secret_text not in listed and 'v1:' not in listed and state['recovery'][1] not in listed
    reset = run_playbook('tools/twofactor.yml', {'reset': USER}, check=True).stdout
    assert 'second factor reset' in reset, reset[-3000:]
    # Off again: the main password opens IMAP, the webmail asks no code, and
    # the enrolment starts from nothing (a new secret).
    server.imap(USER, password(lab, USER)).logout()
    login(page, USER, password(lab, USER))
    assert in_mailbox(page), page.url
    goto(page, URL + '?_task=settings&_action=plugin.twofactor')
    assert 'chưa được thiết lập' in page.locator('#congvu-twofactor-status').inner_text()
    navigate(lambda: page.click('#congvu-twofactor-enrol'))
    assert ''.join(page.locator('#congvu-twofactor-secret').inner_text().split()) != secret_text
    shot(page, '08-after-reset')
    logout(page)
    # A reset of an account that does not exist is refused.
    assert run_playbook('tools/twofactor.yml', {'reset': 'nobody@' + DOMAIN}).returncode != 0
