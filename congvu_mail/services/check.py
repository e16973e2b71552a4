"""congvu-check: the health and compliance probe (playbooks/tools/health-check.yml, role check).

Run by Ansible on each host of the mail system, as root, with one argument:
the base64 of a JSON object of settings (the host's groups, the regulation's
numbers, the units and paths to look at). It changes nothing: it reads
files, asks systemd, and speaks the services' own protocols to them on this
host, then prints one JSON object: {"host": ..., "checks": [...]}, each check
{"id", "ref", "title", "status": PASS|WARN|FAIL, "evidence"}.

Evidence says what was tried and what came back. It never holds a secret:
no password, hash or key is read into it.
"""

from __future__ import annotations

import base64
import datetime
import imaplib
import json
import os
import poplib
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time

from .. import password as rules

TIMEOUT = 10
SECURE = 'Điều 3, Điều 11 (secure)'
FORWARD = 'No forwarding outside gov (other provinces)'
LOGS = 'Mail logs ≥ 6 months (other provinces)'
NOW = datetime.datetime.now(datetime.timezone.utc)
CHECKS = []


def add(check_id, ref, title, status, evidence):
    CHECKS.append({'id': check_id, 'ref': ref, 'title': title, 'status': status,
                   'evidence': ' '.join(str(evidence).split())[:1500]})


def run(command, **kwargs):
    """A command's (exit status, stdout + stderr), never raising."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, str(error)
    return result.returncode, (result.stdout + result.stderr).strip()


def guarded(check_id, ref, title):
    """A check that raises is reported as failed under its id, with the error,
    and the others go on."""
    def decorate(function):
        def wrapper(settings):
            try:
                function(settings)
            except Exception as error:  # noqa: BLE001 - the report must carry every error
                add(check_id, ref, title, 'FAIL', '%s: %s' % (type(error).__name__, error))
        return wrapper
    return decorate


def own_address():
    """The host's main address (that of its default route; a UDP socket sends
    nothing to find it), else 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(('192.0.2.1', 9))
            return probe.getsockname()[0]
    except OSError:
        return '127.0.0.1'


# Sessions go to the host's main address from 127.0.0.1: Dovecot counts a
# connection from an address to itself as secure (and would offer a login
# before STARTTLS), so this is how the host looks to a client elsewhere.
ADDRESS = own_address()
SOURCE = ('127.0.0.1', 0) if ADDRESS != '127.0.0.1' else None
WHERE = 'from 127.0.0.1 to %s' % ADDRESS


def connect(port):
    return socket.create_connection((ADDRESS, port), timeout=TIMEOUT, source_address=SOURCE)


class IMAP(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return connect(self.port)


class POP3(poplib.POP3):
    def _create_socket(self, timeout):
        return connect(self.port)


def smtp_session(port):
    return smtplib.SMTP(ADDRESS, port, timeout=TIMEOUT, source_address=SOURCE)


def in_groups(settings, *groups):
    return bool(set(settings['groups']) & set(groups))


# --- TLS -------------------------------------------------------------------

def contexts(settings):
    verify = ssl.create_default_context()
    if os.path.exists(settings['ca_file']):
        verify.load_verify_locations(settings['ca_file'])
    plain = ssl.create_default_context()
    plain.check_hostname = False
    plain.verify_mode = ssl.CERT_NONE
    return verify, plain


def handshake(kind, port, context, name):
    """Open a TLS session as a client of that protocol and return the server's
    certificate (DER). STARTTLS kinds upgrade the plain session first."""
    if kind in ('tls', 'https'):
        with connect(port) as raw:
            with context.wrap_socket(raw, server_hostname=name) as sock:
                return sock.getpeercert(binary_form=True)
    if kind == 'smtp':
        with smtp_session(port) as smtp:
            smtp.ehlo('check.invalid')
            smtp._host = name  # SNI and the name checked: the server's name, not 127.0.0.1
            smtp.starttls(context=context)
            return smtp.sock.getpeercert(binary_form=True)
    if kind in ('imap', 'pop3'):
        client = (IMAP if kind == 'imap' else POP3)(ADDRESS, port, timeout=TIMEOUT)
        client.host = name
        try:
            if kind == 'imap':
                client.starttls(ssl_context=context)
            else:
                client.stls(context=context)
            return client.sock.getpeercert(binary_form=True)
        finally:
            client.logout() if kind == 'imap' else client.quit()
    if kind == 'ldaps':
        return handshake('tls', port, context, name)
    raise ValueError('unknown kind %s' % kind)


@guarded('certificates', 'Điều 11 (secure)', 'Certificates')
def check_certificates(settings):
    """Every TLS port this host serves: chain valid for the mail host's name, days left."""
    if not settings['tls_ports']:
        return
    from cryptography import x509  # python3-cryptography: role common installs it

    verify, plain = contexts(settings)
    name = settings['mail_hostname']
    for port_name, kind, port in settings['tls_ports']:
        port = int(port)
        if not port:
            continue
        check_id = 'cert-%s' % port_name
        title = 'Certificate of %s (port %d)' % (port_name, port)
        try:
            der = handshake(kind, port, verify, name)
            chain = 'chain valid for %s' % name
            chain_ok = True
        except ssl.SSLCertVerificationError as error:
            chain, chain_ok = 'chain NOT valid for %s: %s' % (name, error.verify_message), False
            der = handshake(kind, port, plain, name)
        except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, poplib.error_proto) as error:
            add(check_id, 'Điều 11 (secure)', title, 'FAIL', 'TLS handshake %s:%d failed: %s' % (WHERE, port, error))
            continue
        cert = x509.load_der_x509_certificate(der)
        # cryptography 42 has not_valid_after_utc; Debian 12's (38) the naive UTC one.
        expires = getattr(cert, 'not_valid_after_utc', None) or cert.not_valid_after.replace(
            tzinfo=datetime.timezone.utc)
        days = (expires - NOW).days
        evidence = '%s; subject %s; issuer %s; expires %s (%d days left)' % (
            chain, cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), expires.date().isoformat(), days)
        if not chain_ok or days < 0:
            status = 'FAIL'
        elif days < settings['cert_warn_days']:
            status = 'WARN'
            evidence += ' (under %d days)' % settings['cert_warn_days']
        else:
            status = 'PASS'
        add(check_id, 'Điều 11 (secure)', title, status, evidence)


def around_starttls(kind, settings):
    """(port, capabilities before STARTTLS, after) of the host's IMAP or POP3
    server; nothing when the host serves none."""
    port = settings['ports'].get(kind, 0)
    if not port:
        return
    client = (IMAP if kind == 'imap' else POP3)(ADDRESS, port, timeout=TIMEOUT)
    client.host = settings['mail_hostname']
    _, context = contexts(settings)
    try:
        if kind == 'imap':
            before = sorted(client.capabilities)
            client.starttls(ssl_context=context)
            after = sorted(client.capabilities)
        else:
            before = client.capa()
            client.stls(context=context)
            after = client.capa()
    finally:
        client.logout() if kind == 'imap' else client.quit()
    yield port, before, after


@guarded('tls-imap', SECURE, 'IMAP: no login before STARTTLS')
def check_imap_starttls(settings):
    for port, before, after in around_starttls('imap', settings):
        ok = 'LOGINDISABLED' in before and 'STARTTLS' in before and 'LOGINDISABLED' not in after
        add('tls-imap', SECURE, 'IMAP: no login before STARTTLS (port %d)' % port, 'PASS' if ok else 'FAIL',
            '%s:%d: CAPABILITY before STARTTLS: %s; after: %s' % (WHERE, port, ' '.join(before), ' '.join(after)))


@guarded('tls-pop3', SECURE, 'POP3: no login before STLS')
def check_pop3_starttls(settings):
    def shown(capa):
        return ' '.join(sorted('%s(%s)' % (k, ' '.join(v)) if v else k for k, v in capa.items()))

    for port, before, after in around_starttls('pop3', settings):
        # Dovecot lists SASL with no mechanism before STLS: no login is offered.
        ok = ('STLS' in before and 'USER' not in before and not before.get('SASL')
              and ('USER' in after or bool(after.get('SASL'))))
        add('tls-pop3', SECURE, 'POP3: no login before STLS (port %d)' % port, 'PASS' if ok else 'FAIL',
            '%s:%d: CAPA before STLS: %s; after: %s' % (WHERE, port, shown(before), shown(after)))


@guarded('tls-submission', SECURE, 'Submission: AUTH only after STARTTLS')
def check_submission_starttls(settings):
    port = settings['ports'].get('submission', 0)
    if not port:
        return
    with smtp_session(port) as smtp:
        smtp.ehlo('check.invalid')
        before = sorted(smtp.esmtp_features)
        auth_before = smtp.esmtp_features.get('auth', '').strip()
        _, context = contexts(settings)
        smtp.starttls(context=context)
        smtp.ehlo('check.invalid')
        auth_after = ' '.join(dict.fromkeys(smtp.esmtp_features.get('auth', '').split()))
    ok = 'starttls' in before and 'auth' not in before and auth_after
    add('tls-submission', SECURE, 'Submission: AUTH only after STARTTLS (port %d)' % port,
        'PASS' if ok else 'FAIL',
        '%s:%d: EHLO before STARTTLS: %s; AUTH after STARTTLS: %s' % (
            WHERE, port, ' '.join(before), auth_after or 'none'))


# --- Services, queue, disks ------------------------------------------------

@guarded('services', 'Điều 11 (24/7)', 'Units running')
def check_services(settings):
    for unit in settings['units']:
        code, state = run(['systemctl', 'is-active', unit])
        add('service-%s' % unit, 'Điều 11 (24/7)', 'Unit %s running' % unit,
            'PASS' if state == 'active' else 'FAIL', 'systemctl is-active %s: %s' % (unit, state or code))


@guarded('mail-queue', 'Điều 11 (24/7)', 'Mail queue')
def check_queue(settings):
    code, out = run(['postqueue', '-j'])
    if code != 0:
        add('mail-queue', 'Điều 11 (24/7)', 'Mail queue', 'FAIL', 'postqueue -j: exit %d: %s' % (code, out[:300]))
        return
    messages = [json.loads(line) for line in out.splitlines() if line.strip()]
    deferred = [m for m in messages if m.get('queue_name') == 'deferred']
    held = [m for m in messages if m.get('queue_name') == 'hold']
    oldest = min((m.get('arrival_time', time.time()) for m in messages), default=None)
    age_hours = (time.time() - oldest) / 3600 if oldest else 0
    evidence = 'postqueue -j: %d messages, %d deferred, %d held; oldest %s' % (
        len(messages), len(deferred), len(held), '%.1f hours old' % age_hours if oldest else 'none')
    status = 'PASS'
    if len(deferred) > settings['queue_deferred_warn'] or age_hours > settings['queue_age_warn_hours']:
        status = 'WARN'
        evidence += ' (warn above %d deferred or %d hours)' % (
            settings['queue_deferred_warn'], settings['queue_age_warn_hours'])
    add('mail-queue', 'Điều 11 (24/7)', 'Mail queue', status, evidence)


@guarded('disks', 'Điều 11 (24/7)', 'Disk use')
def check_disks(settings):
    seen = {}
    for path in settings['disk_paths']:
        if not os.path.exists(path):
            continue
        device = os.stat(path).st_dev
        seen.setdefault(device, []).append(path)
    for paths in seen.values():
        stat = os.statvfs(paths[0])
        total = stat.f_blocks * stat.f_frsize
        free = stat.f_bavail * stat.f_frsize
        used = 100.0 * (total - free) / total if total else 0.0
        status = 'PASS'
        if used >= settings['disk_fail_percent']:
            status = 'FAIL'
        elif used >= settings['disk_warn_percent']:
            status = 'WARN'
        add('disk-%s' % (paths[0].strip('/').replace('/', '-') or 'root'), 'Điều 11 (24/7)',
            'Disk holding %s' % ', '.join(paths), status,
            '%.0f%% used, %.1f GiB free of %.1f GiB (warn at %d%%, fail at %d%%)' % (
                used, free / 2**30, total / 2**30, settings['disk_warn_percent'], settings['disk_fail_percent']))


# --- The regulation's rules -------------------------------------------------

def psql(query, database):
    return run(['runuser', '-u', 'postgres', '--', 'psql', '-XAtq', '-F', '\t', '-d', database, '-c', query])


@guarded('password-hashes', 'Điều 4.1', 'Stored passwords use a strong hash')
def check_password_hashes(settings):
    """Điều 4.1: stored passwords are hashed with a strong scheme. Counts per
    scheme only: no hash leaves the database."""
    code, out = psql(r"SELECT coalesce(substring(password from '^\{([^}]+)\}'), '(no scheme)'), count(*) "
                     "FROM mailboxes WHERE password IS NOT NULL GROUP BY 1 ORDER BY 1", settings['database'])
    if code != 0:
        add('password-hashes', 'Điều 4.1', 'Stored passwords use a strong hash', 'FAIL', 'psql: %s' % out[:300])
        return
    counts = dict(line.split('\t') for line in out.splitlines() if line)
    weak = {scheme: n for scheme, n in counts.items() if scheme not in settings['strong_schemes']}
    evidence = 'SELECT scheme, count(*) FROM mailboxes: %s; configured scheme %s; strong: %s' % (
        ', '.join('%s %s' % item for item in counts.items()) or 'no passwords',
        settings['password_scheme'], ', '.join(settings['strong_schemes']))
    if weak:
        evidence += '; WEAK: %s' % ', '.join(weak)
    add('password-hashes', 'Điều 4.1', 'Stored passwords use a strong hash',
        'FAIL' if weak or not counts else 'PASS', evidence)


@guarded('jobs', 'Điều 4.2, Điều 7', 'Scheduled jobs')
def check_lifecycle_job(settings):
    """Điều 4.2, Điều 7: the daily job (expiry warnings, inactivity suspension)."""
    for timer in settings['job_timers']:
        service = timer.removesuffix('.timer') + '.service'
        _, timer_state = run(['systemctl', 'is-active', timer])
        _, shown = run(['systemctl', 'show', service, '-p', 'Result', '-p', 'ExecMainStatus',
                        '-p', 'ExecMainExitTimestamp', '-p', 'ActiveState'])
        props = dict(line.split('=', 1) for line in shown.splitlines() if '=' in line)
        _, next_run = run(['systemctl', 'show', timer, '-p', 'NextElapseUSecRealtime', '--value'])
        ran = bool(props.get('ExecMainExitTimestamp'))
        last = ('last run ended %s, result %s, exit %s' % (
            props.get('ExecMainExitTimestamp'), props.get('Result'), props.get('ExecMainStatus'))
            if ran else 'not run yet since boot')
        evidence = '%s %s (next %s); %s: %s' % (timer, timer_state, next_run or '?', service, last)
        if timer_state != 'active' or (ran and props.get('Result') != 'success'):
            status = 'FAIL'
        elif not ran:
            status = 'WARN'
        else:
            status = 'PASS'
        add('job-%s' % timer.removesuffix('.timer'), settings['job_refs'].get(timer, 'Điều 4.2, Điều 7'),
            'Scheduled job %s' % timer, status, evidence)


@guarded('password-policy', 'Điều 4.1, Điều 4.2', 'Password service refuses weak passwords')
def check_password_policy(settings):
    """Điều 4.1, 4.2: the webmail's password service has the regulation's policy,
    and the rule code it runs (congvu_mail.password, from the same package as
    this probe) refuses weak passwords. Only the policy is read from its
    configuration (it also holds a password); the samples are tried against the
    code, not the service, so nothing changes."""
    with open(settings['mailpassword_config'], encoding='utf-8') as handle:
        config = json.load(handle)
    policy = config.get('policy')
    same = policy == settings['password_policy']

    longest = max(policy['min_length'].values())
    strong = ('Qz7#mkRp2!vL' * (longest // 12 + 1))[:longest + 2]
    samples = {}
    for role, length in sorted(policy['min_length'].items()):
        samples['%d characters (%s)' % (length - 1, role)] = (strong[:length - 1], role)
    changes = {'digit': lambda t: re.sub(r'\d', 'x', t), 'upper': str.lower, 'lower': str.upper,
               'special': lambda t: re.sub(r'[^A-Za-z0-9]', 'y', t)}
    for character_class in policy['required_classes']:
        if character_class in changes:
            samples['no %s' % character_class] = (changes[character_class](strong), 'user')
    if policy.get('reject_login_name'):
        samples['contains the login name'] = ('Checklogin7#', 'user')
    accepted = [what for what, (text, role) in samples.items()
                if not rules.mail_password_errors(text, role=role, login='checklogin', policy=policy)]
    strong_errors = rules.mail_password_errors(strong, role='admin' if 'admin' in policy['min_length'] else
                                               'user', login='checklogin', policy=policy)
    ok = same and not accepted and not strong_errors
    add('password-policy', 'Điều 4.1, Điều 4.2', 'Password service refuses weak passwords',
        'PASS' if ok else 'FAIL',
        '%s: policy %s the regulation (min length %s, classes %s, history %s); its rule code '
        'refuses %s%s; accepts a %d-character mixed one: %s' % (
            settings['mailpassword_config'], '=' if same else 'DIFFERS FROM',
            ', '.join('%s %s' % item for item in sorted(policy['min_length'].items())),
            '+'.join(policy['required_classes']), policy.get('history'),
            ', '.join(samples), '; but ACCEPTS %s' % ', '.join(accepted) if accepted else '',
            len(strong), 'yes' if not strong_errors else 'NO: %s' % '; '.join(strong_errors)))


@guarded('password-expiry', 'Điều 4.2', 'Passwords expire at the regulation\'s age')
def check_password_expiry(settings):
    """Điều 4.2: the mailbox database's congvu_password_expires(), which Dovecot's
    login, the webmail, the daily job and the report all ask, gives each role the
    regulation's maximum age."""
    want = {role: int(days) for role, days in settings['password_max_age_days'].items()}
    query = ' UNION ALL '.join(
        "SELECT '%s', (congvu_password_expires('%s', '2026-01-01T12:00:00Z') AT TIME ZONE 'UTC')::date "
        "- DATE '2026-01-01'" % (role, role) for role in sorted(want))
    code, out = psql(query, settings['database'])
    if code != 0:
        add('password-expiry', 'Điều 4.2', 'Passwords expire at the regulation\'s age', 'FAIL',
            'psql: %s' % out[:300])
        return
    got = {role: int(days) if days else None for role, days in (line.split('\t') for line in out.splitlines())}
    add('password-expiry', 'Điều 4.2', 'Passwords expire at the regulation\'s age',
        'PASS' if got == want else 'FAIL',
        'congvu_password_expires(role, t) - t in the mailbox database: %s days (regulation_password_max_age_days '
        '%s)' % (', '.join('%s %s' % item for item in sorted(got.items())),
                 ', '.join('%s %s' % item for item in sorted(want.items()))))


@guarded('spam-filter', 'Điều 4.4, Điều 11 (spam)', 'Spam filter answers and rejects GTUBE')
def check_spam_filter(settings):
    """Điều 4.4, Điều 11 (block spam): rspamd scores a GTUBE message."""
    gtube = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
    body = ('From: check@%s\r\nTo: check@%s\r\nSubject: congvu-mail check\r\n\r\n%s\r\n' % (
        settings['mail_domain'], settings['mail_domain'], gtube)).encode()
    with socket.create_connection(('127.0.0.1', settings['rspamd_port']), timeout=TIMEOUT) as sock:
        sock.sendall(b'POST /checkv2 HTTP/1.0\r\nContent-Length: %d\r\nIP: 192.0.2.1\r\n\r\n' % len(body) + body)
        reply = b''
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, payload = reply.partition(b'\r\n\r\n')
    result = json.loads(payload or b'{}')
    symbols = sorted(result.get('symbols', {}))
    action = result.get('action', '?')
    add('spam-filter', 'Điều 4.4, Điều 11 (spam)', 'Spam filter answers and rejects GTUBE',
        'PASS' if action == 'reject' else 'FAIL',
        'POST a GTUBE message to rspamd 127.0.0.1:%d/checkv2: %s, action %s, symbols %s' % (
            settings['rspamd_port'], head.split(b'\r\n')[0].decode(errors='replace'), action,
            ', '.join(symbols[:8])))


@guarded('virus-scanner', 'Điều 4.5', 'Virus scanner answers and finds EICAR')
def check_virus_scanner(settings):
    """Điều 4.5: clamd finds the EICAR test string (sent as a stream; nothing is written)."""
    eicar = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$' + 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(settings['clamd_socket'])
        data = eicar.encode()
        sock.sendall(b'zINSTREAM\0' + len(data).to_bytes(4, 'big') + data + (0).to_bytes(4, 'big'))
        reply = b''
        while chunk := sock.recv(4096):
            reply += chunk
    answer = reply.rstrip(b'\0').decode(errors='replace')
    add('virus-scanner', 'Điều 4.5', 'Virus scanner answers and finds EICAR',
        'PASS' if answer.endswith('FOUND') else 'FAIL',
        'INSTREAM of the EICAR test string to clamd %s: %s' % (settings['clamd_socket'], answer))


@guarded('brute-force', 'Điều 4.8', 'Brute-force ban (fail2ban)')
def check_brute_force(settings):
    """Điều 4.8: fail2ban's jail bans after the regulation's count of failed logins."""
    jail = settings['fail2ban_jail']
    code, status = run(['fail2ban-client', 'status', jail])
    _, maxretry = run(['fail2ban-client', 'get', jail, 'maxretry'])
    want = settings['failed_logins_max']
    ok = code == 0 and maxretry.strip() == str(want)
    banned = re.search(r'Currently banned:\s*(\d+)', status)
    add('brute-force', 'Điều 4.8', 'Brute-force ban (fail2ban jail %s)' % jail, 'PASS' if ok else 'FAIL',
        'fail2ban-client status %s: %s; maxretry %s (regulation_failed_logins_max %d); currently banned %s' % (
            jail, 'up' if code == 0 else 'DOWN: ' + status[:200], maxretry.strip(), want,
            banned.group(1) if banned else '?'))


@guarded('send-limit', 'Điều 4.8', 'Mass-sending limit (policy service)')
def check_send_limit(settings):
    """Điều 4.8: the policy service is up with the regulation's limit. Only the
    two numbers are read from its configuration (it also holds a password)."""
    _, state = run(['systemctl', 'is-active', settings['sendlimit_socket_unit']])
    with open(settings['sendlimit_config'], encoding='utf-8') as handle:
        config = json.load(handle)
    limit = (config.get('messages'), config.get('minutes'))
    want = (settings['send_limit']['messages'], settings['send_limit']['minutes'])
    code, restriction = run(['postconf', '-h', 'smtpd_end_of_data_restrictions', 'smtpd_recipient_restrictions'])
    code_m, master = run(['postconf', '-M'])
    wired = settings['sendlimit_socket_name'] in restriction + master
    ok = state == 'active' and limit == want and wired
    add('send-limit', 'Điều 4.8', 'Mass-sending limit (policy service)', 'PASS' if ok else 'FAIL',
        '%s %s; limit %s messages in %s minutes (regulation_send_limit %s in %s); Postfix asks it: %s' % (
            settings['sendlimit_socket_unit'], state, limit[0], limit[1], want[0], want[1], 'yes' if wired else 'NO'))


@guarded('forwarding', FORWARD, 'No automatic forwarding to non-government mailboxes')
def check_forwarding(settings):
    """No automatic forwarding outside government domains: Postfix's own table answers."""
    table = 'regexp:' + settings['forward_table']
    answers = {}
    for address in settings['forward_allowed_samples'] + settings['forward_refused_samples']:
        _, answer = run(['postmap', '-q', address, table])
        answers[address] = answer.split(' ')[0] or '(none)'
    ok = (all(answers[a] == 'OK' for a in settings['forward_allowed_samples'])
          and all(answers[a] == 'REJECT' for a in settings['forward_refused_samples']))
    _, master = run(['postconf', '-M'])
    wired = settings['forward_table'] in master
    add('forwarding', FORWARD,
        'No automatic forwarding to non-government mailboxes', 'PASS' if ok and wired else 'FAIL',
        'postmap -q on %s: %s; the Sieve submission service uses it: %s' % (
            table, ', '.join('%s → %s' % item for item in answers.items()), 'yes' if wired else 'NO'))


@guarded('mail-log-retention', LOGS, 'Mail log kept for the regulation\'s time')
def check_log_retention(settings):
    """Mail logs kept at least 6 months: logrotate's own reading of its rules, and
    the oldest rotated mail log on disk."""
    code, out = run(['logrotate', '--debug', '/etc/logrotate.conf'])
    rules = re.findall(r'rotating pattern: (.*?)\n\s*(.*?)\n', out)
    mail = [rule for pattern, rule in rules if settings['mail_log'] in pattern.split()]
    days = None
    if len(mail) == 1:
        match = re.match(r'after (\d+) days \((\d+) rotations\)', mail[0])
        if match:
            days = int(match.group(1)) * int(match.group(2))
    directory, base = os.path.split(settings['mail_log'])
    rotated = [os.path.join(directory, f) for f in os.listdir(directory) if f.startswith(base + '.')]
    oldest = min((os.stat(f).st_mtime for f in rotated), default=None)
    oldest_text = '%d rotated files, oldest %.0f days old' % (
        len(rotated), (time.time() - oldest) / 86400) if oldest else 'no rotated file yet'
    want = settings['mail_log_days']
    add('mail-log-retention', LOGS, 'Mail log kept %d days' % want,
        'PASS' if days is not None and days >= want else 'FAIL',
        'logrotate --debug: %s: %s (%s days kept, regulation_mail_log_days %d); %s' % (
            settings['mail_log'], ' / '.join(mail) or 'NO RULE', days, want, oldest_text))


@guarded('directory-ldap', 'Điều 11 (directory)', 'Directory (LDAP) answers')
def check_directory(settings):
    """Điều 11: the directory answers (LDAP, root's local socket) and lists addresses."""
    code, out = run(['ldapsearch', '-Q', '-LLL', '-Y', 'EXTERNAL', '-H', 'ldapi:///', '-s', 'base', '-b', '',
                     'namingContexts'])
    suffix = re.search(r'^namingContexts: (.+)$', out, re.M)
    if code != 0 or not suffix:
        add('directory-ldap', 'Điều 11 (directory)', 'Directory (LDAP) answers', 'FAIL',
            'ldapsearch namingContexts: exit %d: %s' % (code, out[:300]))
        return
    code, out = run(['ldapsearch', '-Q', '-LLL', '-Y', 'EXTERNAL', '-H', 'ldapi:///', '-b', suffix.group(1),
                     '(mail=*)', '1.1'])
    count = len(re.findall(r'^dn:', out, re.M))
    add('directory-ldap', 'Điều 11 (directory)', 'Directory (LDAP) answers',
        'PASS' if code == 0 and count else 'FAIL',
        'ldapsearch -b %s (mail=*): exit %d, %d entries with an address' % (suffix.group(1), code, count))


@guarded('directory-page', 'Điều 11 (directory)', 'Directory page published over HTTPS')
def check_directory_page(settings):
    """Điều 11: the directory page is published over HTTPS on the webmail's name."""
    verify, _ = contexts(settings)
    name = settings['mail_hostname']
    with connect(settings['https_port']) as raw:
        with verify.wrap_socket(raw, server_hostname=name) as sock:
            sock.sendall(('GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' % (settings['directory_page_path'], name)).encode())
            reply = b''
            while chunk := sock.recv(65536):
                reply += chunk
    head, _, body = reply.partition(b'\r\n\r\n')
    status_line = head.split(b'\r\n')[0].decode(errors='replace')
    addresses = len(set(re.findall(rb'[a-z0-9.]+@' + re.escape(settings['mail_domain'].encode()), body)))
    ok = ' 200 ' in status_line + ' ' and addresses > 0
    add('directory-page', 'Điều 11 (directory)', 'Directory page published over HTTPS', 'PASS' if ok else 'FAIL',
        'GET https://%s%s: %s, %d bytes, %d addresses' % (
            name, settings['directory_page_path'], status_line, len(body), addresses))


@guarded('backup-age', 'Điều 11 (backups weekly)', 'Last backup recent enough')
def check_backup(settings):
    """Điều 11: backups at least weekly. The backup role leaves a status file on
    every data host after each successful backup."""
    path = settings['backup_status_file']
    want = settings['backup_max_age_days']
    if not os.path.exists(path):
        add('backup-age', 'Điều 11 (backups weekly)', 'Last backup within %d days' % want, 'FAIL',
            'no backup recorded (%s is missing)' % path)
        return
    with open(path, encoding='utf-8') as handle:
        status = json.load(handle)
    finished = datetime.datetime.fromisoformat(str(status.get('finished', '')).replace('Z', '+00:00'))
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=datetime.timezone.utc)
    age = (NOW - finished).total_seconds() / 86400
    ok = status.get('ok') is True and age <= want
    add('backup-age', 'Điều 11 (backups weekly)', 'Last backup within %d days' % want, 'PASS' if ok else 'FAIL',
        '%s: archive %s to %s, finished %s (%.1f days ago; at most %d), ok %s' % (
            path, status.get('archive'), status.get('repository'), finished.isoformat(), age, want,
            status.get('ok')))


def main(argv=None):
    argv = sys.argv if argv is None else argv
    settings = json.loads(base64.b64decode(argv[1]))
    check_services(settings)
    check_disks(settings)
    if in_groups(settings, *settings['mail_groups']):
        check_log_retention(settings)
    check_certificates(settings)
    if in_groups(settings, 'mx'):
        check_queue(settings)
        check_submission_starttls(settings)
        check_spam_filter(settings)
        check_virus_scanner(settings)
        check_send_limit(settings)
        check_forwarding(settings)
    if in_groups(settings, 'mailstore'):
        check_imap_starttls(settings)
        check_pop3_starttls(settings)
    if in_groups(settings, 'mx', 'mailstore', 'webmail'):
        check_brute_force(settings)
    if in_groups(settings, 'db'):
        check_password_hashes(settings)
        check_password_expiry(settings)
        check_lifecycle_job(settings)
    if in_groups(settings, 'directory'):
        check_directory(settings)
    if in_groups(settings, 'webmail'):
        check_directory_page(settings)
        check_password_policy(settings)
    if in_groups(settings, *settings['backup_data_groups']):
        check_backup(settings)
    print(json.dumps({'host': settings['host'], 'checks': CHECKS}, ensure_ascii=False))
