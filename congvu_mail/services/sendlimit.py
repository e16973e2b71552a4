"""congvu-sendlimit: stops an account that mails too much outside (Điều 4.8).

A Postfix policy service (check_policy_service on the submission ports only,
so the webmail, which sends through submission, counts too). systemd opens its
socket in Postfix's spool (congvu-sendlimit.socket). For every recipient of
an authenticated session it answers:

- REJECT when the account is blocked: it sent more than `messages` messages to
  outside domains within `minutes`. A blocked account still receives mail.
- otherwise DUNNO; a recipient outside the hosted domains is recorded first
  (sendlimit_events). The recipient that goes over the limit blocks the account
  (sendlimit_blocks) and is refused, and the administrators get one e-mail
  naming the account, the addresses it sent from and the counts.

Messages are counted per outside recipient: one message to 300 outside
addresses leaves the system as 300 messages, as a spammer's would. A release
(playbooks/tools/release-sender.yml) marks the block released; only what was sent
after it counts again. The service never sees a password or a message body.
"""

from __future__ import annotations

import smtplib
import socketserver
import sys
import syslog
import threading
import time

from .. import config, db, mail
from .activation import serve_systemd_socket

MAX_LINE = 4096
DOMAIN_CACHE_SECONDS = 60


class Service:
    def __init__(self, settings):
        self.database = settings['database']
        self.limit = int(settings['messages'])
        self.minutes = int(settings['minutes'])
        self.admins = list(settings['admins'])
        self.alert_from = settings['alert_from']
        self.reject = settings['reject_message']
        # Where the alert is handed over: Postfix on this host.
        self.smtp = settings.get('smtp') or {'host': '127.0.0.1', 'port': 25}
        self._domains, self._domains_at = set(), 0.0
        self._lock = threading.Lock()

    def hosted(self, cur, domain):
        with self._lock:
            if time.monotonic() - self._domains_at > DOMAIN_CACHE_SECONDS:
                cur.execute('SELECT name FROM domains WHERE active')
                self._domains = {row[0].lower() for row in cur.fetchall()}
                self._domains_at = time.monotonic()
            return domain in self._domains

    def check(self, attrs):
        """The policy answer for one request (Postfix's attributes)."""
        account = attrs.get('sasl_username', '').strip().lower()
        if not account or attrs.get('protocol_state', 'RCPT') != 'RCPT':
            return 'DUNNO'
        recipient = attrs.get('recipient', '').strip().lower()
        domain = recipient.rpartition('@')[2]
        client = attrs.get('client_address', '') or 'unknown'
        conn = db.connect(self.database)
        try:
            with conn, conn.cursor() as cur:
                cur.execute('SELECT 1 FROM sendlimit_blocks WHERE account = %s AND released_at IS NULL',
                            (account,))
                if cur.fetchone():
                    return self.refusal()
                if not domain or self.hosted(cur, domain):
                    return 'DUNNO'
                cur.execute('INSERT INTO sendlimit_events (account, client_address, recipient_domain) '
                            'VALUES (%s, %s, %s)', (account, client, domain))
                cur.execute(
                    'SELECT count(*), array_agg(DISTINCT client_address ORDER BY client_address), '
                    'count(DISTINCT recipient_domain), min(at) FROM sendlimit_events '
                    "WHERE account = %s AND at > now() - make_interval(mins => %s) "
                    'AND at > coalesce((SELECT max(released_at) FROM sendlimit_blocks WHERE account = %s), '
                    "'-infinity')", (account, self.minutes, account))
                count, clients, domains, since = cur.fetchone()
                if count <= self.limit:
                    return 'DUNNO'
                cur.execute('INSERT INTO sendlimit_blocks (account, recipients, client_addresses) '
                            'VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING id',
                            (account, count, clients))
                blocked = cur.fetchone() is not None
        finally:
            conn.close()
        if blocked:
            syslog.syslog(syslog.LOG_WARNING, 'blocked %s: %d outside recipients in %d minutes from %s'
                          % (account, count, self.minutes, ', '.join(clients)))
            threading.Thread(target=self.alert, args=(account, count, clients, domains, since),
                             daemon=True).start()
        return self.refusal()

    def refusal(self):
        return 'REJECT %s' % self.reject

    def alert_text(self, account, count, clients, domains, since):
        subject = 'Khoa gui thu / Sending blocked: %s' % account
        body = (
            'Tai khoan {a} da bi khoa gui thu (Dieu 4.8): {n} thu gui ra ngoai trong {m} phut '
            '(gioi han {l}).\n'
            'Dia chi dang nhap / gui tu: {c}\n'
            'So ten mien nhan: {d}; tu {s}\n'
            'Tai khoan van nhan thu binh thuong. Mo khoa: ansible-playbook playbooks/tools/release-sender.yml '
            '-e account={a}\n\n'
            'Account {a} is blocked from sending (Article 4.8): {n} messages to outside domains in {m} '
            'minutes (limit {l}).\n'
            'Logged in / sent from: {c}\n'
            'Recipient domains: {d}; since {s}\n'
            'It still receives mail. Release it with: ansible-playbook playbooks/tools/release-sender.yml '
            '-e account={a}\n'.format(a=account, n=count, m=self.minutes, l=self.limit,
                                       c=', '.join(clients), d=domains, s=since.isoformat()))
        return subject, body

    def alert(self, account, count, clients, domains, since):
        """One e-mail to the administrators; the envelope sender is empty, so it never bounces."""
        msg = mail.message(self.alert_from, self.admins, *self.alert_text(account, count, clients, domains, since))
        try:
            mail.send_smtp(msg, self.admins, '<>', host=self.smtp['host'], port=self.smtp['port'])
        except (OSError, smtplib.SMTPException) as exc:
            syslog.syslog(syslog.LOG_ERR, 'alert about %s not sent: %s' % (account, exc))
        else:
            syslog.syslog(syslog.LOG_NOTICE, 'alert about %s sent to %s' % (account, ', '.join(self.admins)))


class Handler(socketserver.StreamRequestHandler):
    """Postfix's policy delegation protocol: name=value lines, an empty line ends
    a request; the answer is "action=..." and an empty line."""
    timeout = 300

    def handle(self):
        # Postfix keeps the connection and sends one request after another.
        while True:
            attrs = {}
            while True:
                line = self.rfile.readline(MAX_LINE)
                if not line:
                    return
                line = line.decode('utf-8', 'replace').rstrip('\r\n')
                if not line:
                    break
                key, _, value = line.partition('=')
                attrs[key] = value
            try:
                action = self.server.service.check(attrs)
            except Exception as exc:  # noqa: BLE001  (defer the mail, log the kind)
                syslog.syslog(syslog.LOG_ERR, 'request failed: %s' % type(exc).__name__)
                action = 'DEFER_IF_PERMIT 4.3.0 sending limit service unavailable, try again later'
            self.wfile.write(('action=%s\n\n' % action).encode('utf-8'))
            self.wfile.flush()


def main(argv=None):
    argv = sys.argv if argv is None else argv
    syslog.openlog('congvu-sendlimit', syslog.LOG_PID, syslog.LOG_MAIL)
    serve_systemd_socket('congvu-sendlimit', Handler, Service(config.from_argv(argv, 'sendlimit')))
