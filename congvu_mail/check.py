# The health and compliance report (playbooks/tools/health-check.yml, role check): the
# probes' answers of every host, and the checks only the whole inventory can
# make (a separate backup host), assembled into one report.

from __future__ import annotations

import json

from .errors import RuleError


STATUSES = ('FAIL', 'WARN', 'PASS')


def _probe_checks(host, probe):
    """The checks one host's probe reported, or one failed check saying why there are none."""
    def failed(why):
        return [{'id': 'probe', 'ref': 'Điều 11 (24/7)', 'title': 'Host answers the check', 'status': 'FAIL',
                 'evidence': why}]

    if not probe:
        return failed('no probe result (the host was not reached)')
    if probe.get('unreachable'):
        return failed('unreachable: %s' % str(probe.get('msg', ''))[:300])
    if probe.get('rc', 1) != 0:
        return failed('the probe exited %s: %s' % (probe.get('rc'), str(probe.get('stderr', ''))[-300:]))
    try:
        answer = json.loads(probe.get('stdout', ''))
    except ValueError as error:
        return failed('the probe printed no report: %s' % error)
    return answer.get('checks', [])


def _backup_separate(groups, data_groups):
    backup = sorted(groups.get('backup', []))
    data = sorted({host for group in data_groups for host in groups.get(group, [])})
    check = {'id': 'backup-separate-host', 'host': '(inventory)', 'ref': 'Điều 11 (backups to separate storage)',
             'title': 'Backups go to a separate host'}
    shared = sorted(set(backup) & set(data))
    if not backup:
        return dict(check, status='FAIL', evidence='no separate backup host: the inventory has no host in group '
                                                   'backup (data hosts: %s)' % ', '.join(data))
    if shared:
        return dict(check, status='FAIL', evidence='backup host(s) %s also hold data (%s)' % (
            ', '.join(shared), ', '.join(data_groups)))
    return dict(check, status='PASS', evidence='backup host(s) %s; data host(s) %s; none in both' % (
        ', '.join(backup), ', '.join(data)))


def mail_check_report(probes, groups, data_groups, generated):
    """The whole report: every host's checks, then the inventory's own."""
    if not isinstance(probes, dict):
        raise RuleError('mail_check_report: expected a dict of host to probe result, got %s'
                        % type(probes).__name__)
    checks = []
    for host in sorted(probes):
        for check in _probe_checks(host, probes[host] or {}):
            checks.append(dict(check, host=host))
    checks.append(_backup_separate(groups, data_groups))
    for check in checks:
        if check.get('status') not in STATUSES:
            check['status'] = 'FAIL'
    counts = {status: sum(1 for c in checks if c['status'] == status) for status in STATUSES}
    lines = ['%-4s [%s] %s %s: %s' % (c['status'], c['ref'], c['host'], c['id'], c['evidence'][:160])
             for c in checks]
    failed = ['%s: %s (%s)' % (c['host'], c['title'], c['id']) for c in checks if c['status'] == 'FAIL']
    return {
        'generated': generated,
        'hosts': sorted(probes),
        'counts': counts,
        'failed': failed,
        'lines': lines,
        'checks': checks,
    }
