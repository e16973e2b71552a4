"""congvu-lifecycle: the mail system's daily job (congvu-lifecycle.timer).

1. Password expiry warnings (Điều 4.2): an active account whose password
   expires within one of the configured numbers of days (14, 7, 1) gets an
   e-mail, in Vietnamese with the English below. Each warning is recorded in
   password_warnings (per password and number of days) in the same
   transaction that sends it, so a re-run, or a run after missed days, never
   repeats one; a new password starts the warnings again.
2. Inactivity (Điều 7, 2025 text): an active account with no login for the
   configured number of days (counted from its last login, else its creation,
   its restoration by the inventory, or when logins began to be recorded,
   whichever is latest) is suspended: it still receives mail and cannot log in.
   The administrators get one e-mail listing the accounts suspended by the run.
   The accounts sync keeps the suspension until the inventory's restore token
   for the person changes.

When a password expires is the mailbox database's congvu_password_expires(),
which Dovecot's login and the webmail's password service ask too. It logs in to the mailbox database over the local socket as its own role
(peer authentication): no password anywhere. Nothing secret is logged.
"""

from __future__ import annotations

import datetime
import smtplib
import sys
import syslog

from .. import config, db, mail

DAY = datetime.timedelta(days=1)


def log(message):
    syslog.syslog(syslog.LOG_NOTICE, message)


class Job:
    def __init__(self, settings, now=None):
        self.config = settings
        self.now = now or datetime.datetime.now(datetime.timezone.utc)

    def connect(self):
        return db.connect(self.config['database'], timeout=10)

    def send(self, recipients, subject, body):
        smtp = self.config['smtp']
        msg = mail.message(self.config['sender'], recipients, subject, body, domain=self.config['hostname'])
        # The MX on another host: STARTTLS, its certificate checked (cafile).
        mail.send_smtp(msg, recipients, self.config['sender'], host=smtp['host'], port=smtp['port'],
                       cafile=smtp.get('cafile'))

    # --- 1. Warnings ------------------------------------------------------------

    def due_warning(self, expires):
        """The warning due now for a password expiring at `expires`: the smallest
        number of days not yet reached; None when none is due (far from expiry,
        or already expired)."""
        if expires is None or expires <= self.now:
            return None
        left = expires - self.now
        due = [d for d in self.config['warning_days'] if left <= d * DAY]
        return min(due) if due else None

    def warnings(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT id, address, name, password_set_at, congvu_password_expires(role, password_set_at) "
                        "FROM mailboxes WHERE state = 'active' AND password_set_at IS NOT NULL ORDER BY id")
            rows = cur.fetchall()
        sent = 0
        for mailbox_id, address, name, set_at, expires in rows:
            days = self.due_warning(expires)
            if days is None:
                continue
            try:
                with conn, conn.cursor() as cur:  # one transaction per warning: recorded only if sent
                    cur.execute('INSERT INTO password_warnings (mailbox_id, password_set_at, days) '
                                'VALUES (%s, %s, %s) ON CONFLICT DO NOTHING RETURNING mailbox_id',
                                (mailbox_id, set_at, days))
                    if cur.fetchone() is None:
                        continue  # sent by an earlier run
                    self.send([address], *self.warning_text(name, address, days, expires))
            except (smtplib.SMTPException, OSError) as exc:  # tried again by the next run
                log('password expiry warning to %s not sent: %s' % (address, type(exc).__name__))
                continue
            sent += 1
            log('password expiry warning (%d days) sent to %s' % (days, address))
        return sent

    def warning_text(self, name, address, days, expires):
        when = expires.astimezone().strftime('%d/%m/%Y %H:%M')
        url = self.config['webmail_url']
        subject = ('Mật khẩu thư công vụ sẽ hết hạn sau %d ngày / Your mail password expires in %d days'
                   % (days, days))
        body = (
            'Kính gửi %(name)s,\n\n'
            'Mật khẩu của hộp thư %(address)s sẽ hết hạn vào %(when)s (sau %(days)d ngày).\n'
            'Theo quy chế sử dụng hệ thống thư điện tử công vụ (Điều 4), mật khẩu phải được thay đổi định kỳ.\n'
            'Vui lòng đăng nhập vào %(url)s và đổi mật khẩu trong mục Cài đặt > Mật khẩu.\n'
            'Sau khi hết hạn, hộp thư vẫn nhận thư nhưng chỉ có thể đăng nhập webmail để đổi mật khẩu.\n\n'
            '---\n\n'
            'Dear %(name)s,\n\n'
            'The password of the mailbox %(address)s expires on %(when)s (in %(days)d days).\n'
            'The regulation on the official e-mail system (Article 4) requires passwords to be changed regularly.\n'
            'Please log in at %(url)s and change it under Settings > Password.\n'
            'After it expires, the mailbox still receives mail, but you can only log in to the webmail to\n'
            'change the password.\n'
        ) % {'name': name, 'address': address, 'when': when, 'days': days, 'url': url}
        return subject, body

    # --- 2. Inactivity ------------------------------------------------------------

    def inactivity(self, conn):
        days = int(self.config['inactivity_days'])
        if days <= 0:
            return 0
        with conn, conn.cursor() as cur:  # suspended and reported together, or not at all
            cur.execute(
                "UPDATE mailboxes m SET state = 'suspended', suspended_inactive_at = now(), "
                "       state_changed_at = now(), updated_at = now() "
                " WHERE m.state = 'active' AND m.password_set_at IS NOT NULL "
                "   AND greatest(m.last_login, m.created_at, m.restored_at, "
                "                (SELECT since FROM recorded_since WHERE what = 'last_login')) "
                "       < now() - make_interval(days => %s) "
                "RETURNING m.address, m.name, m.last_login, m.created_at", (days,))
            rows = sorted(cur.fetchall())
            if rows and self.config['administrators']:
                self.send(self.config['administrators'], *self.suspension_text(rows, days))
        for address, _name, _last, _created in rows:
            log('suspended %s: no login for %d days' % (address, days))
        return len(rows)

    def suspension_text(self, rows, days):
        def when(value):
            return value.astimezone().strftime('%d/%m/%Y') if value else None

        lines_vi = ['  - %s (%s): %s' % (a, n, ('đăng nhập lần cuối %s' % when(last)) if last
                                         else ('chưa đăng nhập lần nào, tạo ngày %s' % when(created)))
                    for a, n, last, created in rows]
        lines_en = ['  - %s (%s): %s' % (a, n, ('last login %s' % when(last)) if last
                                         else ('never logged in, created %s' % when(created)))
                    for a, n, last, created in rows]
        subject = ('Tạm dừng %d hộp thư không sử dụng / %d inactive mailboxes suspended'
                   % (len(rows), len(rows)))
        body = (
            'Các hộp thư sau không đăng nhập trong %(days)d ngày và đã được tạm dừng (Điều 7).\n'
            'Hộp thư tạm dừng vẫn nhận thư nhưng không đăng nhập được.\n'
            'Để khôi phục: đổi giá trị "restore" của người đó trong inventory và chạy playbooks/tools/accounts.yml.\n\n'
            '%(vi)s\n\n---\n\n'
            'These mailboxes had no login for %(days)d days and were suspended (Article 7).\n'
            'A suspended mailbox still receives mail but cannot log in.\n'
            'To restore one: change the person\'s "restore" token in the inventory and run playbooks/tools/accounts.yml.\n\n'
            '%(en)s\n'
        ) % {'days': days, 'vi': '\n'.join(lines_vi), 'en': '\n'.join(lines_en)}
        return subject, body

    def run(self):
        conn = self.connect()
        try:
            warned = self.warnings(conn)
            suspended = self.inactivity(conn)
        finally:
            conn.close()
        log('done: %d warnings sent, %d accounts suspended' % (warned, suspended))


def main(argv=None):
    argv = sys.argv if argv is None else argv
    syslog.openlog('congvu-lifecycle', syslog.LOG_PID, syslog.LOG_MAIL)
    Job(config.from_argv(argv, 'lifecycle')).run()
