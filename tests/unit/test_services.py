"""The services' logic that needs no database (congvu_mail.services and the
shared modules): the directory sync's diff, the check's probes of files and of
the password rules, the lifecycle's choice of warning, the mail they send, and
the wheel the hosts get. Their database code: test_services_db.py."""

from __future__ import annotations

import base64
import datetime as dt
import json
import zipfile

import pytest

from congvu_mail import build, config, mail
from congvu_mail.services import check, directory_sync, lifecycle

DOMAIN = 'bacgiang.gov.vn'


# --- directory sync ----------------------------------------------------------------------

LDIF = '''dn: dc=bacgiang,dc=gov,dc=vn
objectClass: dcObject
dc: bacgiang
entryUUID: 1

dn: ou=people,dc=bacgiang,dc=gov,dc=vn
objectClass: organizationalUnit
ou: people

dn: uid=longnv,ou=people,dc=bacgiang,dc=gov,dc=vn
objectClass: inetOrgPerson
cn:: %s
sn: Nguyen
mail: longnv@bacgiang.gov.vn
modifyTimestamp: 20261201000000Z

dn: uid=old,ou=people,dc=bacgiang,dc=gov,dc=vn
objectClass: inetOrgPerson
cn: Old
sn: Old
''' % base64.b64encode('Nguyễn Văn Long'.encode()).decode()


def entry(dn, **attributes):
    return {'dn': dn, 'attributes': attributes}


def test_directory_sync_reads_ldif_without_operational_attributes():
    have = directory_sync.parse(LDIF)
    person = have['uid=longnv,ou=people,dc=bacgiang,dc=gov,dc=vn'][1]
    assert person['cn'] == ('cn', ['Nguyễn Văn Long'])
    assert 'modifytimestamp' not in person and 'entryuuid' not in have['dc=bacgiang,dc=gov,dc=vn'][1]


def test_directory_sync_sends_only_the_differences_in_a_safe_order():
    suffix = 'dc=bacgiang,dc=gov,dc=vn'
    desired = {'suffix': suffix, 'entries': [
        entry(suffix, objectClass=['dcObject'], dc=['bacgiang']),
        entry('ou=people,' + suffix, objectClass=['organizationalUnit'], ou=['people']),
        entry('uid=longnv, ou=people,' + suffix, objectClass=['inetOrgPerson'], cn=['Nguyễn Văn Long'],
              sn=['Nguyen'], mail=['longnv@bacgiang.gov.vn', 'long@bacgiang.gov.vn']),
        entry('ou=organizations,' + suffix, objectClass=['organizationalUnit'], ou=['organizations']),
        entry('uid=stttt,ou=organizations,' + suffix, objectClass=['inetOrgPerson'], cn=['Sở TT'], sn=['TT']),
    ]}
    records, counts = directory_sync.changes(desired, directory_sync.parse(LDIF))
    assert counts == {'added': 2, 'modified': 1, 'deleted': 1}
    dns = [r.split('\n')[0] for r in records]
    assert dns.index('dn: ou=organizations,' + suffix) < dns.index('dn: uid=stttt,ou=organizations,' + suffix)
    modify = records[dns.index('dn: uid=longnv, ou=people,' + suffix)]
    assert modify.split('\n')[1:] == ['changetype: modify', 'replace: mail', 'mail: longnv@bacgiang.gov.vn',
                                      'mail: long@bacgiang.gov.vn', '-']
    assert 'cn:: ' + base64.b64encode('Sở TT'.encode()).decode() in records[dns.index(
        'dn: uid=stttt,ou=organizations,' + suffix)]
    assert records[-1] == 'dn: uid=old,ou=people,%s\nchangetype: delete' % suffix
    # In step: nothing to send.
    desired['entries'][2]['attributes']['mail'] = ['longnv@bacgiang.gov.vn']
    have = directory_sync.parse(LDIF)
    del have['uid=old,ou=people,' + suffix]
    assert directory_sync.changes(desired['entries'][:3] and dict(desired, entries=desired['entries'][:3]),
                                  have) == ([], {'added': 0, 'modified': 0, 'deleted': 0})


# --- check ---------------------------------------------------------------------------------

@pytest.fixture
def checks():
    check.CHECKS.clear()
    yield check.CHECKS
    check.CHECKS.clear()


def test_check_password_policy_passes_the_regulation_and_fails_a_weaker_one(tmp_path, checks, policy):
    path = tmp_path / 'mailpassword.json'
    path.write_text(json.dumps({'policy': policy, 'database': {'password': 'not read'}}), encoding='utf-8')
    settings = {'mailpassword_config': str(path), 'password_policy': policy}
    check.check_password_policy(settings)
    assert checks[-1]['status'] == 'PASS', checks[-1]
    assert 'not read' not in checks[-1]['evidence']
    weaker = dict(policy, min_length={role: 4 for role in policy['min_length']})
    path.write_text(json.dumps({'policy': weaker}), encoding='utf-8')
    check.check_password_policy(settings)
    assert checks[-1]['status'] == 'FAIL' and 'DIFFERS FROM' in checks[-1]['evidence']


def test_check_backup_age(tmp_path, checks):
    path = tmp_path / 'status.json'
    settings = {'backup_status_file': str(path), 'backup_max_age_days': 7}
    check.check_backup(settings)
    assert checks[-1]['status'] == 'FAIL' and 'missing' in checks[-1]['evidence']
    for days, status in ((2, 'PASS'), (9, 'FAIL')):
        finished = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)
        path.write_text(json.dumps({'finished': finished.isoformat(), 'ok': True, 'archive': 'a',
                                    'repository': 'r'}), encoding='utf-8')
        check.check_backup(settings)
        assert checks[-1]['status'] == status, checks[-1]


def test_a_check_that_raises_is_a_failed_check_and_the_others_go_on(checks):
    check.check_backup({})  # no settings at all
    assert checks[-1]['id'] == 'backup-age' and checks[-1]['status'] == 'FAIL'
    assert checks[-1]['evidence'].startswith('KeyError')


# --- lifecycle -------------------------------------------------------------------------------

@pytest.mark.parametrize('days_left, due', [(20, None), (14, 14), (10, 14), (7, 7), (3, 7), (0.5, 1), (-1, None)])
def test_lifecycle_sends_the_smallest_warning_not_yet_reached(days_left, due):
    now = dt.datetime(2026, 12, 1, 6, tzinfo=dt.timezone.utc)
    job = lifecycle.Job({'warning_days': [14, 7, 1]}, now=now)
    assert job.due_warning(now + dt.timedelta(days=days_left)) == due
    assert job.due_warning(None) is None


# --- config and mail ---------------------------------------------------------------------

def test_config_from_the_argument_or_the_default(tmp_path):
    path = tmp_path / 'x.json'
    path.write_text('{"a": 1}', encoding='utf-8')
    assert config.from_argv(['prog', str(path)], 'report') == {'a': 1}
    assert config.default_path('report') == '/etc/congvu-mail/report.json'


def test_mail_is_marked_automatic_and_names_its_domain():
    msg = mail.message('postmaster@' + DOMAIN, ['a@' + DOMAIN, 'b@' + DOMAIN], 'Tiêu đề', 'Nội dung\n')
    assert msg['To'] == 'a@%s, b@%s' % (DOMAIN, DOMAIN) and msg['Auto-Submitted'] == 'auto-generated'
    assert msg['Message-ID'].endswith('@%s>' % DOMAIN) and msg['Subject'] == 'Tiêu đề'
    assert mail.message('x@' + DOMAIN, ['a@' + DOMAIN], 's', 'b', domain='mail.' + DOMAIN)['Message-ID'] \
        .endswith('@mail.%s>' % DOMAIN)


def test_mail_is_handed_to_an_smtp_server(smtp_sink):
    host, port, received = smtp_sink
    msg = mail.message('postmaster@' + DOMAIN, ['a@' + DOMAIN], 'S', 'Body\n')
    mail.send_smtp(msg, ['a@' + DOMAIN], '<>', host=host, port=port)
    assert received[0]['from'] == '' and received[0]['to'] == ['a@' + DOMAIN]
    assert b'Body' in received[0]['data']


# --- the wheel -----------------------------------------------------------------------------

@pytest.mark.slow
def test_the_wheel_is_reproducible_and_holds_the_services(tmp_path):
    first = build.build(tmp_path / 'one')
    second = build.build(tmp_path / 'two')
    assert first['sha256'] == second['sha256'] and first['name'] == second['name']
    with zipfile.ZipFile(first['path']) as wheel:
        names = wheel.namelist()
        entry_points = wheel.read(next(n for n in names if n.endswith('entry_points.txt'))).decode()
    assert 'congvu_mail/services/sendlimit.py' in names and 'congvu_mail/password.py' in names
    for script in ('congvu-sendlimit', 'congvu-mailpassword', 'congvu-lifecycle', 'congvu-report',
                   'congvu-check', 'congvu-directory-sync', 'congvu-migrate'):
        assert script + '=congvu_mail.services.' in entry_points
    assert not any('__pycache__' in n or n.startswith('tests/') for n in names)
