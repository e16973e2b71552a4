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
from .activation import serve_systemd_socket

MAX_REQUEST = 8192
WRONG_CURRENT = 'the current password is wrong'
FAILED = 'the password could not be changed; try again later'


class Service:
    def __init__(self, settings):
        self.database = settings['database']
        self.policy = settings['policy']
        self.hashing = settings['hash']

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
