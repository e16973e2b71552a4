"""The second factor (congvu_mail.twofactor): RFC 6238's own test vectors, the
window and the replay rule, recovery codes and app passwords, the sealed
secrets; then the password service's enrolment, code and app-password actions
against the mailbox database made by the roles' own SQL, and the functions
Dovecot's login queries call (as Dovecot's database role)."""

from __future__ import annotations

import base64

import pytest

from congvu_mail import twofactor as otp
from congvu_mail.services import mailpassword
from conftest import DB_USERS, as_user
from test_services_db import CHEAP, DOMAIN, add_mailbox, ask, serve  # noqa: F401  (serve: a fixture)

# RFC 6238, Appendix B: the SHA-1 key and its 8-digit codes.
RFC_KEY = b'12345678901234567890'
RFC_VECTORS = [(59, '94287082'), (1111111109, '07081804'), (1111111111, '14050471'),
               (1234567890, '89005924'), (2000000000, '69279037'), (20000000000, '65353130')]


@pytest.mark.parametrize('now, code', RFC_VECTORS)
def test_totp_matches_rfc_6238_test_vectors(now, code):
    assert otp.totp(RFC_KEY, now=now, digits=8) == code
    assert otp.totp(RFC_KEY, now=now) == code[-6:]  # 6 digits: the same number, mod 10^6


def test_rfc_4226_hotp_vectors():
    # RFC 4226, Appendix D: counters 0..9.
    expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']
    assert [otp.hotp(RFC_KEY, c) for c in range(10)] == expected


def test_verify_allows_one_step_either_side_and_never_a_code_twice():
    now = 1234567890
    step = otp.time_step(now)
    for offset in (-1, 0, 1):
        assert otp.verify(RFC_KEY, otp.hotp(RFC_KEY, step + offset), now=now) == step + offset
    for offset in (-2, 2):
        assert otp.verify(RFC_KEY, otp.hotp(RFC_KEY, step + offset), now=now) is None
    code = otp.totp(RFC_KEY, now=now)
    used = otp.verify(RFC_KEY, code, now=now)
    assert otp.verify(RFC_KEY, code, last_step=used, now=now) is None          # the same code again
    assert otp.verify(RFC_KEY, otp.hotp(RFC_KEY, step - 1), last_step=used, now=now) is None  # an older one
    assert otp.verify(RFC_KEY, otp.hotp(RFC_KEY, step + 1), last_step=used, now=now) == step + 1
    assert otp.verify(RFC_KEY, ' %s %s ' % (code[:3], code[3:]), now=now) == step  # as typed, with spaces
    for junk in ('', '12345', '1234567', 'abcdef', None):
        assert otp.verify(RFC_KEY, junk, now=now) is None


def test_secret_text_and_otpauth_uri():
    key = otp.new_secret()
    assert len(key) == 20
    text = otp.secret_text(key)
    assert '=' not in text and otp.secret_from_text(text.lower()) == key
    assert otp.secret_from_text(' '.join(text[i:i + 4] for i in range(0, len(text), 4))) == key
    uri = otp.otpauth_uri(key, 'longnv@' + DOMAIN, 'mail.bacgiang.gov.vn')
    assert uri.startswith('otpauth://totp/mail.bacgiang.gov.vn%3Alongnv%40bacgiang.gov.vn?')
    assert 'secret=%s' % text in uri and 'period=30' in uri and 'digits=6' in uri


def test_recovery_codes_and_app_passwords_are_random_and_hashed():
    codes = otp.recovery_codes()
    assert len(codes) == otp.RECOVERY_CODES == len(set(codes))
    assert all(len(c) == 14 and c.count('-') == 2 for c in codes)
    assert otp.recovery_hash(codes[0].upper().replace('-', ' ')) == otp.recovery_hash(codes[0])
    password = otp.app_password()
    assert len(password) == 29 and len(set(otp.app_password() for _ in range(50))) == 50
    assert otp.app_password_hash(password) != otp.app_password_hash(otp.app_password())


def test_sealed_secret_opens_only_with_its_key_and_account():
    key = base64.b64decode(otp.new_key())
    sealed = otp.encrypt(key, b'secret bytes', 'longnv@' + DOMAIN)
    assert sealed.startswith('v1:') and 'secret' not in sealed
    assert otp.decrypt(key, sealed, 'longnv@' + DOMAIN) == b'secret bytes'
    with pytest.raises(ValueError):
        otp.decrypt(key, sealed, 'tuyetdta@' + DOMAIN)
    with pytest.raises(ValueError):
        otp.decrypt(base64.b64decode(otp.new_key()), sealed, 'longnv@' + DOMAIN)


def test_key_file(tmp_path):
    path = tmp_path / 'twofactor.key'
    path.write_text(otp.new_key())
    assert len(otp.read_key(str(path))) == otp.KEY_BYTES
    path.write_text(base64.b64encode(b'short').decode())
    with pytest.raises(ValueError):
        otp.read_key(str(path))


def test_qr_code_is_an_svg_drawn_here():
    pytest.importorskip('qrcode')
    svg = otp.qr_svg('otpauth://totp/x?secret=ABC')
    assert '<svg' in svg and 'http' not in svg.split('<svg', 1)[1].split('>', 1)[0].replace('http://www.w3.org', '')


# --- The password service and the database -------------------------------------------

@pytest.fixture
def twofactor_service(mailbox_db, postgres, policy, serve, tmp_path, monkeypatch):
    name, conn = mailbox_db
    key_file = tmp_path / 'twofactor.key'
    key_file.write_text(otp.new_key())
    try:
        import qrcode  # noqa: F401  (Debian's python3-qrcode on the hosts)
    except ImportError:
        monkeypatch.setattr(otp, 'qr_svg', lambda text: '<svg><!-- qrcode is not installed here --></svg>')
    service = mailpassword.Service({'database': as_user(postgres, name, DB_USERS['mail_database_passwd_user']),
                                    'policy': policy, 'hash': CHEAP,
                                    'twofactor': {'key_file': str(key_file), 'issuer': 'mail.' + DOMAIN}})
    return serve(mailpassword.Handler, service), conn, name


def dovecot_checks(postgres, name, user, app_password):
    """What Dovecot's login queries ask, as Dovecot's database role."""
    import psycopg2
    with psycopg2.connect(**as_user(postgres, name, DB_USERS['mail_database_dovecot_user'])) as conn:
        with conn.cursor() as cur:
            cur.execute('SELECT congvu_twofactor_on(id, role), congvu_app_password_use(address, %s) '
                        'FROM mailboxes WHERE address = %s', (app_password, user))
            return cur.fetchone()


def test_enrol_verify_recover_and_app_passwords(twofactor_service, postgres, regulation_defaults):
    path, conn, name = twofactor_service
    add_mailbox(conn, 'longnv2', password='Initial-Pass-2026!', set_days_ago=1)
    user = 'longnv2@' + DOMAIN
    policy = regulation_defaults['regulation_twofactor']['user']
    assert ask(path, {'action': 'twofactor-status', 'user': user}) == {
        'ok': True, 'policy': policy, 'enrolled': False, 'pending': False}
    start = ask(path, {'action': 'twofactor-enrol-start', 'user': user})
    assert start['ok'] and start['uri'].startswith('otpauth://totp/') and '<svg' in start['qr_svg']
    key = otp.secret_from_text(start['secret'])
    with conn.cursor() as cur:
        cur.execute('SELECT secret FROM twofactor')
        assert start['secret'] not in cur.fetchone()[0]  # sealed
    assert ask(path, {'action': 'twofactor-status', 'user': user})['pending']
    assert ask(path, {'action': 'twofactor-enrol-start', 'user': user})['secret'] == start['secret']  # shown again
    renewed = ask(path, {'action': 'twofactor-enrol-start', 'user': user, 'renew': True})['secret']
    assert renewed != start['secret']
    start, key = dict(start, secret=renewed), otp.secret_from_text(renewed)
    wrong = ask(path, {'action': 'twofactor-enrol-confirm', 'user': user, 'code': '000000', 'client': '192.0.2.9'})
    assert wrong == {'ok': False, 'errors': [mailpassword.WRONG_CODE]} or otp.totp(key) == '000000'
    assert dovecot_checks(postgres, name, user, 'x')[0] is False  # not on before it is confirmed
    confirm = ask(path, {'action': 'twofactor-enrol-confirm', 'user': user, 'code': otp.totp(key)})
    assert confirm['ok'] and len(confirm['recovery_codes']) == 10
    assert ask(path, {'action': 'twofactor-status', 'user': user})['enrolled']
    # The code just used at confirmation is not good again; the next step's is.
    assert not ask(path, {'action': 'twofactor-verify', 'user': user, 'code': otp.totp(key)})['ok']
    import time
    following = otp.hotp(key, otp.time_step(time.time()) + 1)
    assert ask(path, {'action': 'twofactor-verify', 'user': user, 'code': following}) == {'ok': True, 'recovery': False}
    assert not ask(path, {'action': 'twofactor-verify', 'user': user, 'code': following})['ok']
    # A recovery code works once.
    code = confirm['recovery_codes'][3]
    assert ask(path, {'action': 'twofactor-verify', 'user': user, 'code': code}) == {'ok': True, 'recovery': True}
    assert not ask(path, {'action': 'twofactor-verify', 'user': user, 'code': code})['ok']
    # A second enrolment is refused while one stands.
    assert not ask(path, {'action': 'twofactor-enrol-start', 'user': user})['ok']

    # App passwords: made, listed, used (as Dovecot checks them), revoked.
    made = ask(path, {'action': 'app-password-create', 'user': user, 'name': 'Thunderbird ở nhà'})
    assert made['ok'] and len(made['password']) == 29
    assert not ask(path, {'action': 'app-password-create', 'user': user, 'name': ' '})['ok']
    listed = ask(path, {'action': 'app-password-list', 'user': user})['app_passwords']
    assert [(a['id'], a['name'], a['last_used_at']) for a in listed] == [(made['id'], 'Thunderbird ở nhà', None)]
    assert dovecot_checks(postgres, name, user, made['password']) == (True, True)
    assert dovecot_checks(postgres, name, user, 'Initial-Pass-2026!') == (True, False)
    assert ask(path, {'action': 'app-password-list', 'user': user})['app_passwords'][0]['last_used_at']
    assert ask(path, {'action': 'app-password-revoke', 'user': 'other@' + DOMAIN, 'id': made['id']})['ok'] is False
    assert ask(path, {'action': 'app-password-revoke', 'user': user, 'id': made['id']}) == {'ok': True}
    assert dovecot_checks(postgres, name, user, made['password']) == (True, False)
    assert ask(path, {'action': 'app-password-list', 'user': user})['app_passwords'] == []


def test_twofactor_policy_comes_from_the_regulation(mailbox_db, regulation_defaults):
    _name, conn = mailbox_db
    with conn.cursor() as cur:
        for role, value in regulation_defaults['regulation_twofactor'].items():
            cur.execute('SELECT congvu_twofactor_policy(%s)', (role,))
            assert cur.fetchone()[0] == value
        cur.execute("SELECT congvu_twofactor_policy('guest')")
        assert cur.fetchone()[0] == 'off'
