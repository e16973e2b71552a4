"""SMTP smuggling (CVE-2023-51764; docs/hygiene.md: "SMTP smuggling"): a DATA section
holding <LF>.<CR><LF> and then a second transaction ("MAIL FROM:...") is
one message, never two, on every smtpd service: port 25 from outside, the
submission ports 587 (STARTTLS) and 465 after a login, and the loopback
service Dovecot's Sieve sends through. No reply to an injected command comes
back, and the recipient finds exactly one message."""

from __future__ import annotations

import base64
import inspect
import json
import shlex
import time
import uuid

import pytest

from mailtest import data_then_quit, smuggle, smuggling_payload

DOMAIN = 'bacgiang.gov.vn'
LONG = 'longnv@' + DOMAIN        # BG0001
TUYET = 'tuyetdta@' + DOMAIN     # BG0003
OUTSIDER = 'vanthu@example.net'


def password(lab, person_id):
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == person_id)


def assert_one_message(server, lab, first, second):
    """The recipient has the first message, and no second one."""
    pw = password(lab, 'BG0003')
    server.wait_for_message(TUYET, pw, first)
    time.sleep(3)  # a smuggled message, had there been one, is delivered alongside
    ids = server.message_ids(TUYET, pw)
    assert ids.count(first) == 1 and second not in ids, (first, second)


def assert_no_injected_reply(replies):
    # One reply for the message, one for QUIT; an injected MAIL FROM, RCPT TO
    # or DATA would have had its own (250 2.1.0, 250 2.1.5, 354, or a refusal).
    assert [code for code, _text in replies] == [250, 221], replies


def test_port_25_reads_one_message(server, lab):
    token = uuid.uuid4().hex
    replies, first, second = smuggle(server.smtp(25), OUTSIDER, TUYET, token, forged_sender='alice@example.net')
    assert_no_injected_reply(replies)
    assert_one_message(server, lab, first, second)


@pytest.mark.parametrize('port', [587, 465])
def test_submission_reads_one_message(server, lab, port):
    token = uuid.uuid4().hex
    client = server.submission(LONG, password(lab, 'BG0001'), port=port)
    replies, first, second = smuggle(client, LONG, TUYET, token, forged_sender=LONG)
    assert_no_injected_reply(replies)
    assert_one_message(server, lab, first, second)


# Dovecot's Sieve submits to a loopback-only service (postfix/sieve), out of
# the tests' reach: the same session from the host itself.
SIEVE_SESSION = inspect.getsource(data_then_quit) + '''
import json, smtplib, sys
client = smtplib.SMTP("127.0.0.1", 10026, timeout=30)
client.ehlo("localhost")
print(json.dumps(data_then_quit(client, sys.argv[1], sys.argv[2], sys.stdin.buffer.read())))
'''


def test_the_sieve_service_reads_one_message(server, lab, host):
    token = uuid.uuid4().hex
    data, first, second = smuggling_payload(LONG, TUYET, token, forged_sender=LONG)
    script = '/root/congvu-smuggling-test.py'  # not /tmp: a tmpfs beneath which docker cp writes
    host.run('cat > %s <<"EOF"\n%s\nEOF' % (script, SIEVE_SESSION))
    result = host.run('printf %%s %s | base64 -d | python3 %s %s %s' % (
        shlex.quote(base64.b64encode(data).decode()), script, LONG, TUYET))
    host.run('rm -f %s' % script)
    assert result.rc == 0, result.stderr
    assert_no_injected_reply([tuple(reply) for reply in json.loads(result.stdout)])
    assert_one_message(server, lab, first, second)


def test_every_smtpd_service_has_the_defence(host):
    """No service in master.cf takes the defence away (postconf -P lists every
    -o override): normalize on all, pipelining checked after DATA."""
    overrides = host.check_output('postconf -P')
    for name in ('smtpd_forbid_bare_newline', 'smtpd_data_restrictions'):
        assert '/%s=' % name not in overrides, overrides
    main = host.check_output('postconf -h smtpd_forbid_bare_newline smtpd_data_restrictions').split('\n')
    assert main == ['normalize', 'reject_unauth_pipelining'], main
