"""The health and compliance report's assembly: filter_plugins/mail_check.py."""

import json

import pytest

from congvu_mail.check import mail_check_report
from congvu_mail.errors import RuleError

GROUPS = {'all': ['mail1', 'store1', 'bk1'], 'db': ['mail1'], 'mailstore': ['store1'], 'backup': ['bk1']}
DATA = ['db', 'mailstore']


def probe(*checks):
    return {'rc': 0, 'stdout': json.dumps({'checks': list(checks)})}


def check(check_id, status, evidence='seen'):
    return {'id': check_id, 'ref': 'Điều 4.1', 'title': check_id, 'status': status, 'evidence': evidence}


def report(probes, groups=GROUPS):
    return mail_check_report(probes, groups=groups, data_groups=DATA, generated='2026-01-01T00:00:00Z')


def test_every_host_check_is_kept_with_its_host_and_counted():
    result = report({'mail1': probe(check('a', 'PASS'), check('b', 'WARN')), 'store1': probe(check('c', 'FAIL'))})
    hosts = [(c['host'], c['id'], c['status']) for c in result['checks']]
    assert ('mail1', 'a', 'PASS') in hosts and ('mail1', 'b', 'WARN') in hosts and ('store1', 'c', 'FAIL') in hosts
    assert result['counts'] == {'PASS': 2, 'WARN': 1, 'FAIL': 1}  # the separate backup host passes
    assert result['failed'] == ['store1: c (c)']
    assert len(result['lines']) == len(result['checks'])
    assert result['lines'][0].startswith('PASS')


@pytest.mark.parametrize('answer, why', [
    ({}, 'not reached'),
    ({'unreachable': True, 'msg': 'ssh: timeout'}, 'unreachable: ssh: timeout'),
    ({'rc': 1, 'stderr': 'Traceback boom'}, 'exited 1'),
    ({'rc': 0, 'stdout': 'not json'}, 'printed no report'),
])
def test_a_host_without_an_answer_fails(answer, why):
    result = report({'mail1': answer})
    failed = [c for c in result['checks'] if c['host'] == 'mail1']
    assert [c['status'] for c in failed] == ['FAIL'] and why in failed[0]['evidence']


def test_no_backup_group_fails_with_the_reason():
    groups = {k: v for k, v in GROUPS.items() if k != 'backup'}
    separate = [c for c in report({}, groups)['checks'] if c['id'] == 'backup-separate-host'][0]
    assert separate['status'] == 'FAIL' and 'no separate backup host' in separate['evidence']


def test_a_backup_host_holding_data_fails():
    groups = dict(GROUPS, backup=['store1'])
    separate = [c for c in report({}, groups)['checks'] if c['id'] == 'backup-separate-host'][0]
    assert separate['status'] == 'FAIL' and 'store1' in separate['evidence']


def test_unknown_status_counts_as_failed():
    result = report({'mail1': probe(check('a', 'MAYBE'))})
    assert result['counts']['FAIL'] == 1


def test_bad_input_names_the_filter():
    with pytest.raises(RuleError, match='mail_check_report'):
        report(['mail1'])
