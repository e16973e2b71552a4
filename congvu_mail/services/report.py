"""congvu-report: what the administrators should know about the mail system.

    congvu-report [--config /etc/congvu-mail/report.json] [--json] [--mail]

Reads the mailbox database (as its own read-only role, over the local socket)
and the mail logs of the last `days` days, and prints a report (text, or with
--json a JSON object: "report", the data, and "text"); --mail sends the text to the administrators instead (the weekly
timer, congvu-report.timer, does that). Sections:

  expiring     passwords that expire within `expiring_days` (Điều 4.2)
  suspended    suspended accounts, since when (and why, when the system did it)
  locked       accounts stopped from sending (abnormal mailboxes, Điều 4.8)
  senders      top senders by messages submitted after logging in
  rejected     messages refused for an attachment (Điều 4.6) or a virus (Điều 4.5)
  failed       failed logins (IMAP, POP3, SMTP AUTH, webmail) by address and by account

Everything it reads from logs is in the mail log (Postfix, Dovecot, and
Roundcube, which logs to syslog's mail facility), with its rotations.

No password, hash or message content is read or printed.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import glob
import gzip
import json
import re
import sys

from .. import config as configuration, db, mail

# Traditional syslog ("Nov 29 14:00:01") or RFC 3339 (Debian 12's rsyslog default).
RFC3339 = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?\s')
TRADITIONAL = re.compile(r'^([A-Z][a-z]{2}\s+\d+ \d\d:\d\d:\d\d)\s')
ROUNDCUBE = re.compile(r'^\[(\d\d-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d) ([+-]\d{4})\]')

SUBMITTED = re.compile(r'postfix/\S+\[\d+\]: ([0-9A-Za-z]+): client=.*\bsasl_username=([^,\s]+)')
QUEUED = re.compile(r'postfix/qmgr\[\d+\]: ([0-9A-Za-z]+): from=<[^>]*>, size=\d+, nrcpt=(\d+)')
MILTER_REJECT = re.compile(r'postfix/\S+\[\d+\]: \S+: milter-reject: \S+ from \S*?\[[^\]]*\]: \S+ (.*?); from=<([^>]*)> to=<([^>]*)>')
IMAP_FAILED = re.compile(r'dovecot: (imap|pop3|managesieve|submission)-login: .*\(auth failed, (\d+) attempts?'
                         r'[^)]*\): user=<([^>]*)>.*?\brip=([0-9A-Fa-f.:]+)')
SMTP_FAILED = re.compile(r'postfix/\S+\[\d+\]: warning: [^\[]*\[([0-9A-Fa-f.:]+)\]: SASL \S+ authentication failed'
                         r'(?:.*\bsasl_username=([^,\s]+))?')
# Roundcube (log_driver syslog, facility mail): the browser's address.
# The address ends in a digit: a full stop after it ends Roundcube's sentence.
WEBMAIL_FAILED = re.compile(r'IMAP Error: Login failed for (\S+?)(?: against \S+)? from ([0-9A-Fa-f.:]*[0-9A-Fa-f])')
LOOPBACK = ('127.', '::1')


def log_files(patterns):
    """Every file of each log, oldest rotation first (mail.log.3.gz ... mail.log)."""
    files = []
    for pattern in patterns:
        found = glob.glob(pattern + '.*') + glob.glob(pattern)

        def rotation(name, base=pattern):
            suffix = name[len(base):].lstrip('.').split('.')[0]
            return -int(suffix) if suffix.isdigit() else 0
        files.extend(sorted(set(found), key=rotation))
    return files


def read_lines(path):
    opener = gzip.open if path.endswith('.gz') else open
    try:
        with opener(path, 'rt', encoding='utf-8', errors='replace') as handle:
            yield from handle
    except OSError:
        return


def timestamp(line, now):
    """The line's time (aware, UTC), or None when it has none we know."""
    match = RFC3339.match(line)
    if match:
        stamp = dt.datetime.fromisoformat(match.group(1) + (match.group(2) or '+00:00').replace('Z', '+00:00'))
        return stamp.astimezone(dt.timezone.utc)
    match = TRADITIONAL.match(line)
    if match:
        # No year, local time: the latest such moment not after now.
        local = now.astimezone()
        stamp = dt.datetime.strptime('%d %s' % (local.year, match.group(1)), '%Y %b %d %H:%M:%S')
        stamp = stamp.replace(tzinfo=local.tzinfo)
        if stamp > local + dt.timedelta(days=1):
            stamp = stamp.replace(year=local.year - 1)
        return stamp.astimezone(dt.timezone.utc)
    match = ROUNDCUBE.match(line)
    if match:
        stamp = dt.datetime.strptime(' '.join(match.groups()), '%d-%b-%Y %H:%M:%S %z')
        return stamp.astimezone(dt.timezone.utc)
    return None


def recent(paths, since, now):
    """(time, line) of every line since `since`."""
    for path in log_files(paths):
        for line in read_lines(path):
            stamp = timestamp(line, now)
            if stamp is not None and stamp >= since:
                yield stamp, line


def from_logs(config, since, now):
    messages = config['messages']
    reasons = {text: reason for reason, text in messages.items()}
    sent = collections.defaultdict(lambda: [0, 0])        # login -> [messages, recipients]
    queue_login = {}
    rejected = collections.Counter()                       # reason -> messages
    last_rejected = collections.deque(maxlen=config['top'])
    failed_ip = collections.Counter()
    failed_user = collections.Counter()
    for stamp, line in recent(config['mail_logs'], since, now):
        match = SUBMITTED.search(line)
        if match:
            queue_login[match.group(1)] = match.group(2).lower()
            sent[match.group(2).lower()][0] += 1
            continue
        match = QUEUED.search(line)
        if match and match.group(1) in queue_login:
            sent[queue_login.pop(match.group(1))][1] += int(match.group(2))
            continue
        match = MILTER_REJECT.search(line)
        if match and match.group(1) in reasons:
            rejected[reasons[match.group(1)]] += 1
            last_rejected.append({'time': stamp.astimezone().isoformat(timespec='seconds'),
                                  'reason': reasons[match.group(1)], 'from': match.group(2), 'to': match.group(3)})
            continue
        match = IMAP_FAILED.search(line)
        if match:
            service, attempts, user, ip = match.groups()
            if ip.startswith(LOOPBACK):
                continue                        # the webmail's own login: counted from its log
            failed_ip[ip] += int(attempts)
            if user:
                failed_user[user.lower()] += int(attempts)
            continue
        match = SMTP_FAILED.search(line)
        if match:
            failed_ip[match.group(1)] += 1
            if match.group(2) and match.group(2) != '(unavailable)':
                failed_user[match.group(2).lower()] += 1
            continue
        match = WEBMAIL_FAILED.search(line)
        if match and ' roundcube: ' in line:
            failed_ip[match.group(2)] += 1
            failed_user[match.group(1).lower()] += 1
    top = config['top']
    senders = sorted(sent.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))[:top]
    return {
        'senders': [{'login': login, 'messages': m, 'recipients': r} for login, (m, r) in senders],
        'rejected': {
            'counts': {reason: rejected[reason] for reason in sorted(messages)},
            'last': list(last_rejected),
        },
        'failed': {
            'total': sum(failed_ip.values()),
            'by_address': [{'address': ip, 'count': n} for ip, n in sorted(failed_ip.items(), key=lambda i: (-i[1], i[0]))[:top]],
            'by_account': [{'login': u, 'count': n} for u, n in sorted(failed_user.items(), key=lambda i: (-i[1], i[0]))[:top]],
        },
    }


def from_database(config, now):
    with db.connect(config['database'], timeout=10) as conn, conn.cursor() as cur:
        # When a password expires: the database's congvu_password_expires(), the
        # one implementation of the regulation's maximum age (Điều 4.2).
        cur.execute(
            "SELECT address, role, expires FROM ("
            "  SELECT address, role, congvu_password_expires(role, password_set_at) AS expires FROM mailboxes"
            "   WHERE state = 'active' AND password_set_at IS NOT NULL) m"
            " WHERE expires < %s::timestamptz + make_interval(days => %s)"
            " ORDER BY 3, 1",
            (now, config['expiring_days']))
        expiring = [{'address': a, 'role': r, 'expires': e.date().isoformat(), 'expired': e <= now}
                    for a, r, e in cur.fetchall()]
        cur.execute("SELECT address, state_changed_at, suspended_inactive_at IS NOT NULL"
                    "  FROM mailboxes WHERE state = 'suspended' ORDER BY 1")
        suspended = [{'address': a, 'since': s.date().isoformat(), 'inactive': inactive}
                     for a, s, inactive in cur.fetchall()]
        # Stopped for mass sending (role sendlimit) and not released.
        cur.execute("SELECT account, blocked_at, recipients, array_to_string(client_addresses, ', ')"
                    "  FROM sendlimit_blocks WHERE released_at IS NULL ORDER BY 1")
        locked = [{'address': a, 'since': s.astimezone().isoformat(timespec='minutes'), 'recipients': n,
                   'from': ips} for a, s, n, ips in cur.fetchall()]
        # The second factor (docs/two-factor.md): who has enrolled, who has not
        # (and whether the policy of the role requires it), live app passwords.
        cur.execute("SELECT m.address, m.role, congvu_twofactor_policy(m.role), t.confirmed_at IS NOT NULL,"
                    "       (SELECT count(*) FROM app_passwords a WHERE a.mailbox_id = m.id AND a.revoked_at IS NULL)"
                    "  FROM mailboxes m LEFT JOIN twofactor t ON t.mailbox_id = m.id"
                    " WHERE m.state = 'active' AND m.kind = 'person' ORDER BY 1")
        twofactor = [{'address': a, 'role': r, 'policy': p, 'enrolled': bool(e) and p != 'off', 'app_passwords': n}
                     for a, r, p, e, n in cur.fetchall()]
    return {'expiring': expiring, 'suspended': suspended, 'locked': locked, 'twofactor': twofactor}


def build(config, now=None):
    now = now or dt.datetime.now(dt.timezone.utc)
    since = now - dt.timedelta(days=config['days'])
    # Shown in the server's time zone; compared in UTC.
    report = {'host': config['host'], 'generated': now.astimezone().isoformat(timespec='seconds'),
              'since': since.astimezone().isoformat(timespec='seconds'), 'days': config['days']}
    report.update(from_database(config, now))
    report.update(from_logs(config, since, now))
    return report


def section(title, rows, empty='—'):
    return [title, *(['  ' + row for row in rows] or ['  ' + empty]), '']


def as_text(report):
    r = report
    lines = ['Báo cáo hệ thống thư công vụ / Mail system report',
             'Máy chủ / Host: %s' % r['host'],
             'Từ / From %s đến / to %s (%d ngày / days)' % (r['since'], r['generated'], r['days']), '']
    lines += section('Mật khẩu sắp hết hạn / Passwords expiring soon (Điều 4.2):',
                     ['%s (%s) %s %s' % (e['address'], e['role'], 'đã hết hạn / expired' if e['expired']
                                         else 'hết hạn / expires', e['expires']) for e in r['expiring']])
    lines += section('Tài khoản tạm dừng / Suspended accounts:',
                     ['%s từ / since %s%s' % (s['address'], s['since'],
                                              ' (không đăng nhập / no login)' if s['inactive'] else '')
                      for s in r['suspended']])
    lines += section('Tài khoản bị chặn gửi / Accounts stopped from sending (Điều 4.8):',
                     ['%s từ / since %s: %d người nhận ngoài / outside recipients, từ / from %s'
                      % (s['address'], s['since'], s['recipients'], s['from']) for s in r['locked']])
    lines += section('Người gửi nhiều nhất / Top senders:',
                     ['%s: %d thư / messages, %d người nhận / recipients' % (s['login'], s['messages'], s['recipients'])
                      for s in r['senders']])
    twofactor = r.get('twofactor', [])
    enrolled = [t for t in twofactor if t['enrolled']]
    lines += section('Xác thực hai yếu tố / Two-factor login: %d/%d đã đăng ký / enrolled'
                     % (len(enrolled), len(twofactor)),
                     ['%s (%s, %s): %s, %d mật khẩu ứng dụng / app passwords'
                      % (t['address'], t['role'], t['policy'],
                         'đã đăng ký / enrolled' if t['enrolled'] else
                         'CHƯA đăng ký, bắt buộc / NOT enrolled, required' if t['policy'] == 'required'
                         else 'chưa đăng ký / not enrolled', t['app_passwords'])
                      for t in twofactor if t['enrolled'] or t['policy'] != 'off' or t['app_passwords']])
    counts = r['rejected']['counts']
    lines += section('Thư bị từ chối / Rejected messages (Điều 4.5, 4.6):',
                     ['%s: %d' % (reason, n) for reason, n in counts.items()]
                     + ['%s %s: %s -> %s' % (x['time'], x['reason'], x['from'], x['to']) for x in r['rejected']['last']])
    failed = r['failed']
    lines += section('Đăng nhập sai / Failed logins: %d' % failed['total'],
                     ['từ / from %s: %d' % (f['address'], f['count']) for f in failed['by_address']]
                     + ['tài khoản / account %s: %d' % (f['login'], f['count']) for f in failed['by_account']])
    return '\n'.join(lines)


def send(config, text, now):
    subject = 'Báo cáo tuần thư công vụ / Weekly mail report %s %s' % (config['host'], now.date().isoformat())
    msg = mail.message(config['sender'], config['recipients'], subject, text, domain=config['host'])
    mail.send_sendmail(msg, config['recipients'], config['sender'])


def recipients(config):
    """The inventory's list, or every active administrator account."""
    if config['recipients']:
        return config['recipients']
    with db.connect(config['database'], timeout=10) as conn, conn.cursor() as cur:
        cur.execute("SELECT address FROM mailboxes WHERE role = 'admin' AND state = 'active' ORDER BY 1")
        return [row[0] for row in cur.fetchall()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', default='/etc/congvu-mail/report.json')
    parser.add_argument('--json', action='store_true', help='print the report as JSON')
    parser.add_argument('--mail', action='store_true', help='send it to the administrators')
    args = parser.parse_args(argv)
    config = configuration.load(args.config)
    now = dt.datetime.now(dt.timezone.utc)
    report = build(config, now)
    if args.mail:
        config['recipients'] = recipients(config)
        if not config['recipients']:
            sys.exit('congvu-report: no administrator to send the report to')
        send(config, as_text(report), now)
        print('congvu-report: sent to %s' % ', '.join(config['recipients']))
    elif args.json:
        print(json.dumps({'report': report, 'text': as_text(report)}, ensure_ascii=False, indent=1))
    else:
        print(as_text(report))
