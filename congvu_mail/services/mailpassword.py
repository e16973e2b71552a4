"""congvu-mailpassword: password changes from the webmail.

Roundcube's password plugin (driver "congvu") and the must-change plugin
connect to a Unix socket that systemd opens (congvu-mailpassword.socket; only
the web server's group may connect) and send one JSON line:

  {"action": "status", "user": "longnv@bacgiang.gov.vn"}
      -> {"ok": true, "must_change": false, "expired": false}
      (must_change is true when the account is marked, or its password has
      expired: congvu_password_expires() of the mailbox database, the one
      implementation of the regulation's maximum age; both must change it)
  {"action": "change", "user": ..., "current": ..., "new": ...}
      -> {"ok": true} or {"ok": false, "errors": ["has no digit (Điều 4.1)", ...]}

The second factor (congvu_mail.twofactor; docs/two-factor.md), for the
webmail's plugin congvu_twofactor. "client" is the browser's address, which a
refused code is logged with (fail2ban counts it as a failed login):

  {"action": "twofactor-status", "user": ...}
      -> {"ok": true, "policy": "required", "enrolled": false, "pending": false}
  {"action": "twofactor-enrol-start", "user": ...}
      -> {"ok": true, "secret": "BASE32...", "uri": "otpauth://...", "qr_svg": "<svg..."}
      (the pending secret again, until it is confirmed; "renew": true makes a new one)
  {"action": "twofactor-enrol-confirm", "user": ..., "code": "123456", "client": ...}
      -> {"ok": true, "recovery_codes": ["abcd-efgh-ijkm", ...]}  (shown once)
  {"action": "twofactor-verify", "user": ..., "code": ..., "client": ...}
      -> {"ok": true, "recovery": false} (a one-time code, or a recovery code,
      each good once) or {"ok": false, "errors": [...]}
  {"action": "app-password-create", "user": ..., "name": "Thunderbird"}
      -> {"ok": true, "id": 3, "password": "abcd-..."}  (shown once)
  {"action": "app-password-list", "user": ...}
      -> {"ok": true, "app_passwords": [{"id", "name", "created_at", "last_used_at"}]}
  {"action": "app-password-revoke", "user": ..., "id": 3} -> {"ok": true}

The rules are not here: they are congvu_mail.password, the code the
inventory is checked with on the controller. A change checks
the current password, the policy for the account's role (length, character
classes, login name, the last passwords), then stores the new hash, moves the
old one into password_history and clears must_change, in one transaction.
Neither a password nor a hash is ever logged or returned.
"""

from __future__ import annotations

import json
import socketserver
import sys
import syslog

from .. import config, db
from .. import password as rules
from .. import twofactor as otp
from .activation import serve_systemd_socket

MAX_REQUEST = 8192
WRONG_CURRENT = 'the current password is wrong'
FAILED = 'the password could not be changed; try again later'
WRONG_CODE = 'the code is wrong or was already used'
NO_ENROLMENT = 'the second factor is not set up for this account'
TWOFACTOR_OFF = 'the second factor is off for this account'
APP_NAME_MAX = 64


class Service:
    def __init__(self, settings):
        self.database = settings['database']
        self.policy = settings['policy']
        self.hashing = settings['hash']
        twofactor = settings.get('twofactor', {})
        self.key_file = twofactor.get('key_file', '/etc/congvu-mail/twofactor.key')
        self.issuer = twofactor.get('issuer', 'congvu-mail')

    def status(self, user):
        with db.connect(self.database) as conn, conn.cursor() as cur:
            cur.execute("SELECT must_change, congvu_password_expires(role, password_set_at) <= now() "
                        "FROM mailboxes WHERE address = %s AND state = 'active'", (user,))
            row = cur.fetchone()
        if row is None:
            return {'ok': False, 'must_change': True, 'expired': False}
        marked, expired = bool(row[0]), bool(row[1])
        return {'ok': True, 'must_change': marked or expired, 'expired': expired}

    def change(self, user, current, new):
        history = int(self.policy.get('history', 0))
        conn = db.connect(self.database)
        try:
            with conn, conn.cursor() as cur:  # one transaction: commit on success, else roll back
                cur.execute("SELECT id, role, password, password_set_at FROM mailboxes "
                            "WHERE address = %s AND state = 'active' FOR UPDATE", (user,))
                row = cur.fetchone()
                if row is None or not row[2] or not rules.mail_password_verify(current, row[2]):
                    return {'ok': False, 'errors': [WRONG_CURRENT]}
                mailbox_id, role, stored, set_at = row
                # The last `history` passwords, the current one included, oldest first.
                cur.execute('SELECT password FROM password_history WHERE mailbox_id = %s '
                            'ORDER BY set_at DESC LIMIT %s', (mailbox_id, max(history - 1, 0)))
                previous = [r[0] for r in reversed(cur.fetchall())] + [stored]
                errors = rules.mail_password_errors(new, role=role, login=user, previous=previous,
                                                    policy=self.policy)
                if errors:
                    return {'ok': False, 'errors': errors}
                hashed = rules.mail_password_hash(new, scheme=self.hashing['scheme'], rounds=self._rounds())
                cur.execute('INSERT INTO password_history (mailbox_id, password, set_at) '
                            'VALUES (%s, %s, coalesce(%s, now()))', (mailbox_id, stored, set_at))
                cur.execute('UPDATE mailboxes SET password = %s, password_set_at = now(), must_change = false, '
                            'updated_at = now() WHERE id = %s', (hashed, mailbox_id))
            return {'ok': True}
        finally:
            conn.close()

    def _rounds(self):
        rounds = self.hashing.get('rounds')
        if isinstance(rounds, dict):
            return rounds.get(self.hashing['scheme'])
        return rounds

    # --- The second factor -----------------------------------------------------------

    def _key(self):
        return otp.read_key(self.key_file)

    def _mailbox(self, cur, user, lock=False):
        """(id, role, policy) of the active mailbox `user`, or None."""
        cur.execute("SELECT id, role, congvu_twofactor_policy(role) FROM mailboxes "
                    "WHERE address = %s AND state = 'active'" + (' FOR UPDATE' if lock else ''), (user,))
        return cur.fetchone()

    def twofactor_status(self, user):
        with db.connect(self.database) as conn, conn.cursor() as cur:
            row = self._mailbox(cur, user)
            if row is None:
                return {'ok': False, 'errors': ['no such account']}
            cur.execute('SELECT confirmed_at IS NOT NULL FROM twofactor WHERE mailbox_id = %s', (row[0],))
            enrolment = cur.fetchone()
        policy = row[2]
        return {'ok': True, 'policy': policy, 'enrolled': bool(enrolment and enrolment[0]) and policy != 'off',
                'pending': bool(enrolment and not enrolment[0])}

    def enrol_start(self, user, renew=False):
        conn = db.connect(self.database)
        try:
            with conn, conn.cursor() as cur:
                row = self._mailbox(cur, user, lock=True)
                if row is None:
                    return {'ok': False, 'errors': ['no such account']}
                if row[2] == 'off':
                    return {'ok': False, 'errors': [TWOFACTOR_OFF]}
                cur.execute('SELECT confirmed_at, secret FROM twofactor WHERE mailbox_id = %s', (row[0],))
                current = cur.fetchone()
                if current and current[0] is not None:
                    return {'ok': False, 'errors': ['the second factor is already set up']}
                if current and not renew:  # the page shown again: the same secret, already scanned
                    key = otp.decrypt(self._key(), current[1], user)
                else:
                    key = otp.new_secret()
                    sealed = otp.encrypt(self._key(), key, user)
                    cur.execute('INSERT INTO twofactor (mailbox_id, secret) VALUES (%s, %s) '
                                'ON CONFLICT (mailbox_id) DO UPDATE SET secret = EXCLUDED.secret, '
                                'last_step = 0, created_at = now()', (row[0], sealed))
            uri = otp.otpauth_uri(key, user, self.issuer)
            return {'ok': True, 'secret': otp.secret_text(key), 'uri': uri, 'qr_svg': otp.qr_svg(uri)}
        finally:
            conn.close()

    def _check_code(self, cur, mailbox_id, user, code, confirmed):
        """The time step `code` matches for the enrolment (confirmed or
        pending) of `mailbox_id`, recorded as the last one used; or None."""
        cur.execute('SELECT secret, last_step FROM twofactor WHERE mailbox_id = %s AND '
                    '(confirmed_at IS NOT NULL) = %s FOR UPDATE', (mailbox_id, confirmed))
        row = cur.fetchone()
        if row is None:
            return None
        step = otp.verify(otp.decrypt(self._key(), row[0], user), code, last_step=row[1])
        if step is not None:
            cur.execute('UPDATE twofactor SET last_step = %s WHERE mailbox_id = %s', (step, mailbox_id))
        return step

    def enrol_confirm(self, user, code):
        conn = db.connect(self.database)
        try:
            with conn, conn.cursor() as cur:
                row = self._mailbox(cur, user, lock=True)
                if row is None or row[2] == 'off':
                    return {'ok': False, 'errors': [NO_ENROLMENT]}
                if self._check_code(cur, row[0], user, code, confirmed=False) is None:
                    return {'ok': False, 'errors': [WRONG_CODE]}
                codes = otp.recovery_codes()
                cur.execute('UPDATE twofactor SET confirmed_at = now() WHERE mailbox_id = %s', (row[0],))
                cur.executemany('INSERT INTO recovery_codes (mailbox_id, code_hash) VALUES (%s, %s)',
                                [(row[0], otp.recovery_hash(c)) for c in codes])
            return {'ok': True, 'recovery_codes': codes}
        finally:
            conn.close()

    def verify_code(self, user, code):
        conn = db.connect(self.database)
        try:
            with conn, conn.cursor() as cur:
                row = self._mailbox(cur, user, lock=True)
                if row is None or row[2] == 'off':
                    return {'ok': False, 'errors': [NO_ENROLMENT]}
                if self._check_code(cur, row[0], user, code, confirmed=True) is not None:
                    return {'ok': True, 'recovery': False}
                cur.execute('UPDATE recovery_codes SET used_at = now() WHERE mailbox_id = %s AND code_hash = %s '
                            'AND used_at IS NULL AND EXISTS (SELECT 1 FROM twofactor WHERE mailbox_id = %s '
                            'AND confirmed_at IS NOT NULL)', (row[0], otp.recovery_hash(code), row[0]))
                if cur.rowcount == 1:
                    return {'ok': True, 'recovery': True}
            return {'ok': False, 'errors': [WRONG_CODE]}
        finally:
            conn.close()

    def app_password_create(self, user, name):
        password = otp.app_password()
        with db.connect(self.database) as conn, conn.cursor() as cur:
            row = self._mailbox(cur, user)
            if row is None:
                return {'ok': False, 'errors': ['no such account']}
            cur.execute('INSERT INTO app_passwords (mailbox_id, name, hash) VALUES (%s, %s, %s) RETURNING id',
                        (row[0], name, otp.app_password_hash(password)))
            new_id = cur.fetchone()[0]
        return {'ok': True, 'id': new_id, 'password': password}

    def app_password_list(self, user):
        with db.connect(self.database) as conn, conn.cursor() as cur:
            cur.execute("SELECT a.id, a.name, a.created_at, a.last_used_at FROM app_passwords a "
                        "JOIN mailboxes m ON m.id = a.mailbox_id "
                        "WHERE m.address = %s AND a.revoked_at IS NULL ORDER BY a.created_at, a.id", (user,))
            rows = cur.fetchall()
        stamp = lambda t: t.isoformat(timespec='seconds') if t else None  # noqa: E731
        return {'ok': True, 'app_passwords': [{'id': r[0], 'name': r[1], 'created_at': stamp(r[2]),
                                               'last_used_at': stamp(r[3])} for r in rows]}

    def app_password_revoke(self, user, app_id):
        with db.connect(self.database) as conn, conn.cursor() as cur:
            cur.execute("UPDATE app_passwords a SET revoked_at = now() FROM mailboxes m "
                        "WHERE m.id = a.mailbox_id AND m.address = %s AND a.id = %s AND a.revoked_at IS NULL",
                        (user, app_id))
            done = cur.rowcount == 1
        return {'ok': True} if done else {'ok': False, 'errors': ['no such app password']}

    def answer_twofactor(self, action, user, request):
        client = request.get('client')
        client = client if isinstance(client, str) and 0 < len(client) <= 64 and ' ' not in client else 'unknown'
        if action == 'twofactor-status':
            return self.twofactor_status(user)
        if action == 'twofactor-enrol-start':
            reply = self.enrol_start(user, renew=request.get('renew') is True)
            if reply['ok']:
                syslog.syslog(syslog.LOG_NOTICE, 'two-factor enrolment started for %s' % user)
            return reply
        if action in ('twofactor-enrol-confirm', 'twofactor-verify'):
            code = request.get('code')
            if not isinstance(code, str) or len(code) > 64:
                return {'ok': False, 'errors': [WRONG_CODE]}
            confirm = action == 'twofactor-enrol-confirm'
            reply = self.enrol_confirm(user, code) if confirm else self.verify_code(user, code)
            if reply['ok']:
                syslog.syslog(syslog.LOG_NOTICE, 'two-factor %s for %s from %s' % (
                    'enrolment confirmed' if confirm else 'recovery code used' if reply['recovery']
                    else 'code accepted', user, client))
            else:
                # The line fail2ban counts as a failed login (role fail2ban).
                syslog.syslog(syslog.LOG_WARNING, 'two-factor code refused for %s from %s' % (user, client))
            return reply
        if action == 'app-password-create':
            name = request.get('name')
            name = name.strip() if isinstance(name, str) else ''
            if not name or len(name) > APP_NAME_MAX or any(ord(ch) < 32 for ch in name):
                return {'ok': False, 'errors': ['give the device a name of at most %d characters' % APP_NAME_MAX]}
            reply = self.app_password_create(user, name)
            if reply['ok']:
                syslog.syslog(syslog.LOG_NOTICE, 'app password %d created for %s' % (reply['id'], user))
            return reply
        if action == 'app-password-list':
            return self.app_password_list(user)
        if action == 'app-password-revoke':
            app_id = request.get('id')
            if isinstance(app_id, str) and app_id.isdigit():
                app_id = int(app_id)
            if not isinstance(app_id, int) or isinstance(app_id, bool):
                return {'ok': False, 'errors': ['no such app password']}
            reply = self.app_password_revoke(user, app_id)
            if reply['ok']:
                syslog.syslog(syslog.LOG_NOTICE, 'app password %d revoked for %s' % (app_id, user))
            return reply
        return None

    def answer(self, request):
        action = request.get('action')
        user = request.get('user')
        if not isinstance(user, str) or not user or len(user) > 320:
            return {'ok': False, 'errors': ['no user given']}
        user = user.strip().lower()
        if action == 'status':
            return self.status(user)
        if action == 'change':
            current, new = request.get('current'), request.get('new')
            if not isinstance(current, str) or not isinstance(new, str):
                return {'ok': False, 'errors': ['no password given']}
            reply = self.change(user, current, new)
            if reply['ok']:
                syslog.syslog(syslog.LOG_NOTICE, 'password changed for %s' % user)
            else:
                syslog.syslog(syslog.LOG_NOTICE, 'password change refused for %s: %s'
                              % (user, '; '.join(reply['errors'])))
            return reply
        reply = self.answer_twofactor(action, user, request)
        if reply is not None:
            return reply
        return {'ok': False, 'errors': ['unknown action']}


class Handler(socketserver.StreamRequestHandler):
    """One JSON line in, one JSON line out."""
    timeout = 15

    def handle(self):
        try:
            line = self.rfile.readline(MAX_REQUEST)
            request = json.loads(line.decode('utf-8'))
            if not isinstance(request, dict):
                raise ValueError('not an object')
        except (ValueError, UnicodeDecodeError):
            reply = {'ok': False, 'errors': ['malformed request']}
        else:
            try:
                reply = self.server.service.answer(request)
            except Exception as exc:  # noqa: BLE001  (the webmail gets a message, the log the kind)
                syslog.syslog(syslog.LOG_ERR, 'request failed: %s' % type(exc).__name__)
                reply = {'ok': False, 'errors': [FAILED]}
        self.wfile.write(json.dumps(reply, ensure_ascii=False).encode('utf-8') + b'\n')


def main(argv=None):
    argv = sys.argv if argv is None else argv
    syslog.openlog('congvu-mailpassword', syslog.LOG_PID, syslog.LOG_AUTH)
    serve_systemd_socket('congvu-mailpassword', Handler, Service(config.from_argv(argv, 'mailpassword')))
