"""Mail logs kept for the regulation's time (REGULATION.md: at least 6 months;
regulation_mail_log_days). Debian's rsyslog keeps 4 weeks of /var/log/mail.log;
the common role rotates it daily and keeps regulation_mail_log_days files."""

from __future__ import annotations

import re
import uuid

import yaml

from mailtest import PROJECT

REGULATION = yaml.safe_load((PROJECT / 'roles' / 'regulation' / 'defaults' / 'main.yml').read_text(encoding='utf-8'))


def test_logrotate_keeps_the_mail_log_for_six_months(host):
    result = host.run('logrotate --debug /etc/logrotate.conf')
    assert result.rc == 0, result.stderr
    output = result.stdout + result.stderr
    # logrotate's own reading of the configuration: one rule for the mail log, daily.
    rules = re.findall(r'rotating pattern: (.*?)\n\s*(.*?)\n', output)
    mail = [rule for pattern, rule in rules if '/var/log/mail.log' in pattern.split()]
    assert mail == ['after 1 days (%d rotations)' % REGULATION['regulation_mail_log_days']], rules
    assert REGULATION['regulation_mail_log_days'] >= 183
    assert 'duplicate log entry' not in output and '\nerror:' not in output, output[-2000:]


def test_rotation_keeps_logging_to_the_new_file(host):
    """A forced rotation (its own state file): the old lines move to mail.log.1, and
    rsyslog writes the next line to the new mail.log."""
    before = 'congvu-log-before-%s' % uuid.uuid4()
    after = 'congvu-log-after-%s' % uuid.uuid4()
    assert host.run('logger -p mail.info %s' % before).rc == 0
    host.run('for i in $(seq 20); do grep -q %s /var/log/mail.log && break; sleep 0.5; done' % before)
    rotated = host.run('logrotate --force --state /tmp/congvu-logrotate.state /etc/logrotate.d/congvu-mail-logs')
    assert rotated.rc == 0, rotated.stderr
    assert host.run('logger -p mail.info %s' % after).rc == 0
    host.run('for i in $(seq 20); do grep -q %s /var/log/mail.log && break; sleep 0.5; done' % after)
    assert host.run('grep -c %s /var/log/mail.log.1' % before).stdout.strip() == '1'
    assert host.run('grep -c %s /var/log/mail.log' % after).stdout.strip() == '1'
    assert host.run('grep -c %s /var/log/mail.log' % before).stdout.strip() == '0'
