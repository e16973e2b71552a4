"""The administrators' report's log reading (congvu_mail.services.report),
with lines as Postfix 3.7, Dovecot 2.3 and Roundcube 1.6 write them on Debian 12
(copied from a converged test host). Its database sections are tried in
test_services_db.py, and the mail in Molecule (molecule/default/tests/test_report.py)."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pytest

from congvu_mail.services import report

NOW = dt.datetime(2026, 11, 29, 15, 0, tzinfo=dt.timezone.utc)
EXE = ('Tep thuc thi bi cam gui va nhan (Dieu 4.6 Quy che thu dien tu cong vu) / '
       'Executable files may not be sent or received (e-mail regulation, article 4.6)')
VIRUS = 'Thu co virus (Dieu 4.5 Quy che thu dien tu cong vu) / Message contains a virus (e-mail regulation, article 4.5)'
T = '2026-11-29T22:06:22.666419+07:00 mail '

LINES = [
    T + 'postfix/submission/smtpd[36724]: A17452E0140: client=runner.example.net[172.30.203.1], '
        'sasl_method=LOGIN, sasl_username=tuyetdta@bacgiang.gov.vn',
    T + 'postfix/qmgr[8587]: A17452E0140: from=<tuyetdta@bacgiang.gov.vn>, size=770, nrcpt=3 (queue active)',
    T + 'postfix/submission/smtpd[36724]: 2DF842E0140: client=runner.example.net[172.30.203.1], '
        'sasl_method=PLAIN, sasl_username=TuyetDTA@bacgiang.gov.vn',
    T + 'postfix/cleanup[36732]: 2DF842E0140: milter-reject: END-OF-MESSAGE from runner.example.net[172.30.203.1]: '
        '5.7.1 ' + EXE + '; from=<tuyetdta@bacgiang.gov.vn> to=<longnv@bacgiang.gov.vn> proto=ESMTP helo=<client.test>',
    T + 'postfix/cleanup[36732]: 3DF842E0140: milter-reject: END-OF-MESSAGE from unknown[192.0.2.7]: '
        '5.7.1 ' + VIRUS + '; from=<a@example.net> to=<longnv@bacgiang.gov.vn> proto=ESMTP helo=<x>',
    T + 'postfix/cleanup[36732]: 4DF842E0140: milter-reject: END-OF-MESSAGE from unknown[192.0.2.7]: '
        '5.7.1 Gtube pattern; from=<a@example.net> to=<longnv@bacgiang.gov.vn> proto=ESMTP helo=<x>',
    T + 'dovecot: imap-login: Disconnected: Connection closed (auth failed, 2 attempts in 4 secs): '
        'user=<probe@bacgiang.gov.vn>, method=PLAIN, rip=172.30.203.1, lip=172.30.203.10, TLS: Connection closed, '
        'session=<RByhoGthbJCsHssB>',
    T + 'dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 6 secs): user=<probe@bacgiang.gov.vn>, '
        'method=PLAIN, rip=2001:db8::7, lip=172.30.203.10, TLS, session=<Cc+4oGthgrmsHssB>',
    # The webmail's own IMAP login: counted from Roundcube's line, not twice.
    T + 'dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<hoalt@bacgiang.gov.vn>, '
        'method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, secured, session=<x>',
    T + 'roundcube: <4a0e5b7c> IMAP Error: Login failed for hoalt@bacgiang.gov.vn against 127.0.0.1 from '
        '198.51.100.4(X-Forwarded-For: 198.51.100.4). AUTHENTICATE PLAIN: Authentication failed. '
        'in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /?_task=login&_action=login)',
    T + 'postfix/submission/smtpd[36724]: warning: runner.example.net[172.30.203.1]: SASL PLAIN authentication '
        'failed: (reason unavailable), sasl_username=nobody@bacgiang.gov.vn',
    T + 'postfix/submission/smtpd[36719]: warning: runner.example.net[172.30.203.1]: SASL PLAIN authentication '
        'failed: Connection lost to authentication server, sasl_username=(unavailable)',
]


def config(paths):
    return {'mail_logs': [str(p) for p in paths], 'top': 10,
            'messages': {'attachment': EXE, 'encrypted_archive': 'x', 'virus': VIRUS}}


def test_every_kind_of_line_is_counted(tmp_path):
    log = tmp_path / 'mail.log'
    log.write_text('\n'.join(LINES) + '\n', encoding='utf-8')
    result = report.from_logs(config([log]), NOW - dt.timedelta(days=7), NOW)
    assert result['senders'] == [{'login': 'tuyetdta@bacgiang.gov.vn', 'messages': 2, 'recipients': 3}]
    assert result['rejected']['counts'] == {'attachment': 1, 'encrypted_archive': 0, 'virus': 1}
    assert [(r['reason'], r['from']) for r in result['rejected']['last']] == [
        ('attachment', 'tuyetdta@bacgiang.gov.vn'), ('virus', 'a@example.net')]
    assert result['failed']['by_address'] == [
        {'address': '172.30.203.1', 'count': 4}, {'address': '198.51.100.4', 'count': 1},
        {'address': '2001:db8::7', 'count': 1}]
    # The "(unavailable)" name is no account; the webmail's loopback login is not counted twice.
    assert result['failed']['by_account'] == [
        {'login': 'probe@bacgiang.gov.vn', 'count': 3}, {'login': 'hoalt@bacgiang.gov.vn', 'count': 1},
        {'login': 'nobody@bacgiang.gov.vn', 'count': 1}]
    assert result['failed']['total'] == 6


def test_old_lines_and_rotations(tmp_path):
    old = '2026-11-01T10:00:00.000001+07:00 mail ' + LINES[0].split(' mail ', 1)[1]
    (tmp_path / 'mail.log').write_text(LINES[0] + '\n', encoding='utf-8')
    (tmp_path / 'mail.log.1').write_text(LINES[2] + '\n' + old + '\n', encoding='utf-8')
    with gzip.open(tmp_path / 'mail.log.2.gz', 'wt', encoding='utf-8') as handle:
        handle.write(old + '\n')
    files = report.log_files([str(tmp_path / 'mail.log')])
    assert [Path(f).name for f in files] == ['mail.log.2.gz', 'mail.log.1', 'mail.log']
    result = report.from_logs(config([tmp_path / 'mail.log']), NOW - dt.timedelta(days=7), NOW)
    assert result['senders'][0]['messages'] == 2


@pytest.mark.parametrize('line, expected', [
    ('2026-11-29T22:06:22.666419+07:00 mail x', dt.datetime(2026, 11, 29, 15, 6, 22, tzinfo=dt.timezone.utc)),
    ('2026-11-29T15:06:22Z mail x', dt.datetime(2026, 11, 29, 15, 6, 22, tzinfo=dt.timezone.utc)),
    ('[29-Nov-2026 22:06:22 +0700]: <x> IMAP Error', dt.datetime(2026, 11, 29, 15, 6, 22, tzinfo=dt.timezone.utc)),
    ('no time here', None),
])
def test_timestamps(line, expected):
    assert report.timestamp(line, NOW) == expected


def test_traditional_timestamps_take_the_latest_year_not_in_the_future():
    december = report.timestamp('Dec 30 10:00:00 mail x', NOW)
    november = report.timestamp('Nov 28 10:00:00 mail x', NOW)
    assert december.year == 2025 and november.year == 2026


# Dual stack (docs/ipv6.md): Postfix writes an IPv6 client as unknown[2001:db8::1],
# Dovecot as rip=2001:db8::1, Roundcube as it came.
LINES6 = [
    T + 'postfix/submission/smtpd[36724]: 5DF842E0140: client=unknown[2001:db8::1], '
        'sasl_method=PLAIN, sasl_username=tuyetdta@bacgiang.gov.vn',
    T + 'postfix/qmgr[8587]: 5DF842E0140: from=<tuyetdta@bacgiang.gov.vn>, size=770, nrcpt=2 (queue active)',
    T + 'postfix/cleanup[36732]: 6DF842E0140: milter-reject: END-OF-MESSAGE from unknown[2001:db8::1]: '
        '5.7.1 ' + VIRUS + '; from=<a@example.net> to=<longnv@bacgiang.gov.vn> proto=ESMTP helo=<x>',
    T + 'postfix/smtps/smtpd[36719]: warning: unknown[2001:db8::1]: SASL LOGIN authentication '
        'failed: authentication failure, sasl_username=ductm@bacgiang.gov.vn',
    T + 'dovecot: imap-login: Disconnected: Connection closed (auth failed, 3 attempts in 4 secs): '
        'user=<ductm@bacgiang.gov.vn>, method=PLAIN, rip=fd42:0:236::25, lip=fd42:0:236::10, TLS, '
        'session=<RByhoGthbJCsHssB>',
    T + 'roundcube: <4a0e5b7c> IMAP Error: Login failed for ductm@bacgiang.gov.vn against 127.0.0.1 from '
        '2001:db8:0:1::5. AUTHENTICATE PLAIN: Authentication failed. '
        'in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 211 (POST /?_task=login&_action=login)',
]


def test_ipv6_clients_are_read_like_ipv4_ones(tmp_path):
    log = tmp_path / 'mail.log'
    log.write_text('\n'.join(LINES6) + '\n', encoding='utf-8')
    result = report.from_logs(config([log]), NOW - dt.timedelta(days=7), NOW)
    assert result['senders'] == [{'login': 'tuyetdta@bacgiang.gov.vn', 'messages': 1, 'recipients': 2}]
    assert result['rejected']['counts'] == {'attachment': 0, 'encrypted_archive': 0, 'virus': 1}
    assert [(r['reason'], r['from']) for r in result['rejected']['last']] == [('virus', 'a@example.net')]
    assert result['failed']['by_address'] == [
        {'address': 'fd42:0:236::25', 'count': 3}, {'address': '2001:db8:0:1::5', 'count': 1},
        {'address': '2001:db8::1', 'count': 1}]
    assert result['failed']['by_account'] == [{'login': 'ductm@bacgiang.gov.vn', 'count': 5}]
    assert result['failed']['total'] == 5
