#!/usr/bin/python3
# Managed by congvu-mail (Ansible): local changes are overwritten.
"""congvu-mailpassword: password changes from the webmail.

Roundcube's password plugin (driver "congvu") and the must-change plugin
connect to a Unix socket that systemd opens (congvu-mailpassword.socket; only
the web server's group may connect) and send one JSON line:

  {"action": "status", "user": "longnv@bacgiang.gov.vn"}
      -> {"ok": true, "must_change": false, "expired": false}
      (must_change is true when the account is marked, or its password is older
      than the regulation's maximum age for its role: both must change it)
  {"action": "change", "user": ..., "current": ..., "new": ...}
      -> {"ok": true} or {"ok": false, "errors": ["has no digit (Điều 4.1)", ...]}

The rules are not here: they are filter_plugins/mail_password.py, the module
the inventory is checked with, installed beside this file. A change checks
the current password, the policy for the account's role (length, character
classes, login name, the last passwords), then stores the new hash, moves the
old one into password_history and clears must_change, in one transaction.
Neither a password nor a hash is ever logged or returned.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import socketserver
import sys
import syslog
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mail_password  # noqa: E402  (the regulation's rules, shared with the inventory checks)
import psycopg2  # noqa: E402

MAX_REQUEST = 8192
WRONG_CURRENT = 'the current password is wrong'
FAILED = 'the password could not be changed; try again later'


def load_config(path):
    with open(path, encoding='utf-8') as handle:
        return json.load(handle)


class Service:
    def __init__(self, config):
        self.database = config['database']
        self.policy = config['policy']
        self.hashing = config['hash']
        self.max_age_days = config['max_age_days']

    def connect(self):
        return psycopg2.connect(connect_timeout=5, **self.database)

    def status(self, user):
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT must_change, role, password_set_at FROM mailboxes "
                        "WHERE address = %s AND state = 'active'", (user,))
            row = cur.fetchone()
        if row is None:
            return {'ok': False, 'must_change': True, 'expired': False}
        marked, role, set_at = row
        expires = mail_password.mail_password_expires(set_at, role=role, max_age_days=self.max_age_days)
        expired = expires is not None and expires <= datetime.datetime.now(datetime.timezone.utc)
        return {'ok': True, 'must_change': bool(marked) or expired, 'expired': expired}

    def change(self, user, current, new):
        history = int(self.policy.get('history', 0))
        conn = self.connect()
        try:
            with conn, conn.cursor() as cur:  # one transaction: commit on success, else roll back
                cur.execute("SELECT id, role, password, password_set_at FROM mailboxes "
                            "WHERE address = %s AND state = 'active' FOR UPDATE", (user,))
                row = cur.fetchone()
                if row is None or not row[2] or not mail_password.mail_password_verify(current, row[2]):
                    return {'ok': False, 'errors': [WRONG_CURRENT]}
                mailbox_id, role, stored, set_at = row
                # The last `history` passwords, the current one included, oldest first.
                cur.execute('SELECT password FROM password_history WHERE mailbox_id = %s '
                            'ORDER BY set_at DESC LIMIT %s', (mailbox_id, max(history - 1, 0)))
                previous = [r[0] for r in reversed(cur.fetchall())] + [stored]
                errors = mail_password.mail_password_errors(new, role=role, login=user, previous=previous,
                                                            policy=self.policy)
                if errors:
                    return {'ok': False, 'errors': errors}
                hashed = mail_password.mail_password_hash(new, scheme=self.hashing['scheme'],
                                                          rounds=self._rounds())
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


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main(argv):
    syslog.openlog('congvu-mailpassword', syslog.LOG_PID, syslog.LOG_AUTH)
    service = Service(load_config(argv[1] if len(argv) > 1 else '/etc/congvu-mail/mailpassword.json'))
    server = Server(None, Handler, bind_and_activate=False)
    if os.environ.get('LISTEN_FDS') != '1':
        sys.exit('congvu-mailpassword: start me through congvu-mailpassword.socket')
    server.socket.close()
    server.socket = socket.socket(fileno=3)
    server.service = service
    server.serve_forever()


if __name__ == '__main__':
    main(sys.argv)
