"""Recovery after a restart (docs/hygiene.md: "Recovery after a restart"): a stream of
inbound mail on port 25 from outside while each of PostgreSQL, Dovecot,
rspamd, Redis, ClamAV and the local resolver (unbound) is stopped and started again. The test is the
sending MTA: a 4xx reply (or no answer) is tried again every few seconds, a
5xx is a bounce. Every message is accepted within 2 minutes of the service
being back, none bounces, and all of them reach the mailboxes. Meanwhile the
protection holds: while the scanner (ClamAV), rspamd or the resolver is down,
nothing is accepted (mail is deferred, never passed unscanned or unchecked)."""

from __future__ import annotations

import smtplib
import socket
import time
import uuid

import pytest

from mailtest import new_message

DOMAIN = 'bacgiang.gov.vn'
# The simulated Internet's DNS knows example.net (molecule/internet.yml).
OUTSIDER = 'vanthu@example.net'
RECIPIENTS = {'tuyetdta@' + DOMAIN: 'BG0003', 'longnv@' + DOMAIN: 'BG0001'}

# (name, stop, start, nothing accepted while it is down, seconds after it is
# back by which every message is accepted). The regulation of issue 15 is 2
# minutes; after PostgreSQL the design promises less: congvu-postfix-recover
# reloads Postfix within its interval (10 s), and the sender's next retry gets
# in. Without it, a stale lookup failure lasted 60-100 s here, minutes under
# a heavier stream.
SERVICES = [
    ('postgresql', 'systemctl stop postgresql', 'systemctl start postgresql', False, 45),
    ('dovecot', 'systemctl stop dovecot', 'systemctl start dovecot', False, 120),
    ('rspamd', 'systemctl stop rspamd', 'systemctl start rspamd', True, 120),
    ('redis-server', 'systemctl stop redis-server', 'systemctl start redis-server', False, 120),
    # Both, or socket activation starts clamd again at the first scan.
    ('clamav-daemon', 'systemctl stop clamav-daemon.socket clamav-daemon.service',
     'systemctl start clamav-daemon.socket clamav-daemon.service', True, 120),
    # The local resolver (role resolver): SPF and DMARC cannot be checked, so
    # rspamd defers (CONGVU_DNS_FAILED), never passes the message unchecked.
    ('unbound', 'systemctl stop unbound', 'systemctl start unbound', True, 120),
]
MESSAGES = 12          # per service, one every INTERVAL seconds
INTERVAL = 3
STOP_AT = 4            # seconds into the stream
OUTAGE = 20            # seconds the service stays down
RETRY = 5              # the sending MTA's retry interval
WINDOW = 120           # every message accepted within this of the service being back
ATTACHMENT = (b'%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n'
              b'trailer<</Root 1 0 R>>\n%%EOF\n')
BODY = ('Kinh gui phong van thu, so Thong tin va Truyen thong gui kem ke hoach cong tac thang nay '
        'cua cac phong ban, de nghi cac don vi xem xet, gop y va phan hoi truoc ngay hop giao ban. '
        'Tran trong cam on su phoi hop cua quy co quan. Thu so %s, dich vu %s.\n')


def try_once(server, msg):
    """One SMTP session from outside, as a sending MTA: (code, text); a
    connection the server drops or refuses counts as temporary (451)."""
    try:
        client = smtplib.SMTP('127.0.0.1', server.port(25), timeout=60)
        try:
            client.ehlo('mx.example.net')
            client.send_message(msg)
            return 250, ''
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except smtplib.SMTPRecipientsRefused as refused:
        code, text = next(iter(refused.recipients.values()))
        return code, text.decode('utf-8', 'replace')
    except smtplib.SMTPResponseException as error:
        return error.smtp_code, error.smtp_error.decode('utf-8', 'replace')
    except (smtplib.SMTPServerDisconnected, socket.timeout, OSError) as error:
        return 451, 'no answer: %s' % error


def stream(server, host, name, stop, start):
    """MESSAGES messages, the service stopped STOP_AT s in for OUTAGE s.
    Returns (the messages with their tries, when it was stopped, when back)."""
    pending, done = [], []
    begin = time.monotonic()
    stopped = back = None
    while True:
        now = time.monotonic()
        elapsed = now - begin
        if stopped is None and elapsed >= STOP_AT:
            host.run_expect([0], stop)
            stopped = time.monotonic()
        elif back is None and stopped is not None and now - stopped >= OUTAGE:
            host.run_expect([0], start)
            back = time.monotonic()
        made = len(pending) + len(done)
        if made < MESSAGES and elapsed >= made * INTERVAL:
            recipient = sorted(RECIPIENTS)[made % len(RECIPIENTS)]
            msg = new_message(OUTSIDER, recipient, subject='Ke hoach cong tac %s %d' % (name, made),
                              body=BODY % (made, name))
            # An attachment, so the scanner has something to scan (rspamd sends
            # it attachments only); new content, so no cached result answers.
            msg.add_attachment(ATTACHMENT + uuid.uuid4().hex.encode(), maintype='application',
                               subtype='pdf', filename='ke-hoach.pdf')
            pending.append({'msg': msg, 'recipient': recipient, 'next': now, 'tries': []})
        for item in [item for item in pending if item['next'] <= time.monotonic()]:
            code, text = try_once(server, item['msg'])
            item['tries'].append((time.monotonic(), code, text))
            if code == 250 or code >= 500:
                pending.remove(item)
                done.append(item)
            else:
                item['next'] = time.monotonic() + RETRY
        if back is not None and not pending and len(done) == MESSAGES:
            return done, stopped, back
        if back is not None and time.monotonic() > back + WINDOW:
            return done + pending, stopped, back
        time.sleep(0.2)


@pytest.fixture(scope='module')
def outages(server, host):
    """Each service's stream, in turn; every service is started again whatever happens."""
    results = {}
    try:
        for name, stop, start, _guarded, _within in SERVICES:
            results[name] = stream(server, host, name, stop, start)
    finally:
        for _name, _stop, start, _guarded, _within in SERVICES:
            host.run(start)
    return results


@pytest.mark.parametrize(('name', 'stop', 'start', 'guarded', 'within'), SERVICES, ids=[s[0] for s in SERVICES])
def test_mail_is_accepted_within_two_minutes_of_the_service_being_back(outages, name, stop, start, guarded, within):
    messages, stopped, back = outages[name]
    bounced = [(item['msg']['Subject'], item['tries'][-1]) for item in messages if item['tries'][-1][1] >= 500]
    refused = [(item['msg']['Subject'], item['tries'][-1]) for item in messages if item['tries'][-1][1] != 250]
    assert not bounced, bounced
    assert len(messages) == MESSAGES and not refused, refused
    deferred = [item for item in messages if len(item['tries']) > 1]
    late = max([item['tries'][-1][0] - back for item in deferred] or [0])
    print('%s: %d messages, %d deferred, last accepted %.0f s after it was back'
          % (name, len(messages), len(deferred), late))
    assert late <= within
    if guarded:
        # While it was down, every try was deferred: nothing passed unscanned.
        during = [(code, text) for item in messages for at, code, text in item['tries'] if stopped < at < back]
        assert during and all(400 <= code < 500 for code, _text in during), during


def test_every_accepted_message_reaches_its_mailbox(outages, server, lab):
    expected = {}
    for messages, _stopped, _back in outages.values():
        for item in messages:
            if item['tries'][-1][1] == 250:
                expected.setdefault(item['recipient'], set()).add(item['msg']['Message-ID'])
    passwords = {p['id']: p['password'] for p in lab['accounts_people']}
    # Mail accepted while Dovecot was down waits in Postfix's queue for its next try.
    deadline = time.monotonic() + 180
    while True:
        missing = {user: ids - set(server.message_ids(user, passwords[RECIPIENTS[user]]))
                   for user, ids in expected.items()}
        missing = {user: ids for user, ids in missing.items() if ids}
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert sum(len(ids) for ids in expected.values()) == MESSAGES * len(SERVICES)
    assert not missing, missing
