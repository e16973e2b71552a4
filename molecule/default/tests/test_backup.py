"""Backups (role backup, playbooks/tools/backup-now.yml): a backup made now is an
encrypted archive on the separate backup host, holds the mail delivered
before it, is summarised in the status file, and the nightly timer is set.
Each data host's key reaches only its own repository, and the passphrase is
in no output, log or readable file."""

import json
import os
import re
import shlex
import subprocess

import pytest

from mailtest import new_message, run_playbook
from test_accounts import address, person

PREFIX = os.environ.get('CONGVU_PREFIX') or 'congvu'
BACKUP_HOST = '%s-%s-backup' % (PREFIX, os.environ.get('MOLECULE_SCENARIO_NAME', 'default'))
STATUS = '/var/lib/congvu-mail/backup-status.json'
REPOS = '/srv/borg'


def on_backup_host(command, user=None):
    """A shell command on the backup host (docker exec), as root or `user`."""
    argv = ['docker', 'exec'] + (['-u', user] if user else []) + [BACKUP_HOST, 'bash', '-c', command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope='module')
def name(host):
    """The data host's inventory name: its archives and repository are named after it."""
    return host.ansible.get_variables()['inventory_hostname']


@pytest.fixture(scope='module')
def backup(host, server, lab, name):
    """A message delivered to tuyetdta, then playbooks/tools/backup-now.yml."""
    user, secret = address('BG0003'), person(lab, 'BG0003')['password']
    message = new_message('someone@example.net', user, subject='Trước bản sao lưu',
                          body='Thư phải có trong bản sao lưu.\n')
    with server.smtp(25) as client:
        client.send_message(message)
    server.wait_for_message(user, secret, message['Message-ID'])
    result = run_playbook('tools/backup-now.yml')
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    made = re.findall(r'archive (%s-\S+) in (ssh://[^\s\'"]+)' % re.escape(name), result.stdout)
    assert made, result.stdout[-3000:]
    return {'result': result, 'archive': made[0][0], 'repository': made[0][1],
            'message_id': message['Message-ID']}


def test_backup_playbook_reports_the_archive_as_a_change(backup, name):
    recap = re.search(r'^%s\s*:\s*ok=\d+\s+changed=(\d+)' % re.escape(name), backup['result'].stdout, re.M)
    assert recap and int(recap.group(1)) >= 1, backup['result'].stdout[-1500:]
    assert re.fullmatch(r'ssh://borg@[\d.]+:22%s/%s' % (REPOS, re.escape(name)), backup['repository'])


def test_archive_is_in_the_repository_and_holds_the_mail(host, backup):
    listing = host.run('congvu-borg list --short')
    assert listing.rc == 0, listing.stderr
    assert backup['archive'] in listing.stdout.split()
    found = host.run('grep -rlF %s /var/vmail' % shlex.quote(backup['message_id']))
    assert found.rc == 0, found.stderr
    path = found.stdout.split()[0]
    original = host.run('sha256sum %s' % shlex.quote(path)).stdout.split()[0]
    extracted = host.run('congvu-borg extract --stdout ::%s %s | sha256sum'
                         % (shlex.quote(backup['archive']), shlex.quote(path.lstrip('/'))))
    assert extracted.rc == 0, extracted.stderr
    assert extracted.stdout.split()[0] == original
    # The databases went in too, as dumps.
    dumps = host.run('congvu-borg list --short ::%s var/backups/congvu-mail' % shlex.quote(backup['archive']))
    assert {'var/backups/congvu-mail/mail.pgdump', 'var/backups/congvu-mail/roundcube.pgdump',
            'var/backups/congvu-mail/redis.rdb'} <= set(dumps.stdout.split()), dumps.stdout


def test_archive_holds_the_second_factors_key_apart_from_the_dump(host, backup):
    # The key the TOTP secrets are sealed with (docs/two-factor.md) is a file
    # of its own in the archive, the same bytes as on the host, so a restore
    # opens the enrolments the dump holds sealed.
    key = '/etc/congvu-mail/twofactor.key'
    original = host.run('sha256sum %s' % key)
    assert original.rc == 0, original.stderr
    extracted = host.run('congvu-borg extract --stdout ::%s %s | sha256sum'
                         % (shlex.quote(backup['archive']), key.lstrip('/')))
    assert extracted.rc == 0, extracted.stderr
    assert extracted.stdout.split()[0] == original.stdout.split()[0]
    dump = host.run('congvu-borg extract --stdout ::%s var/backups/congvu-mail/mail.pgdump | grep -acF %s'
                    % (shlex.quote(backup['archive']), shlex.quote(host.run('cat %s' % key).stdout.strip())))
    assert dump.stdout.strip() == '0'


def test_repository_is_encrypted_on_the_backup_host(host, backup, name):
    repo = '%s/%s' % (REPOS, name)
    info = host.run('congvu-borg info')
    assert 'Encrypted: Yes (repokey BLAKE2b)' in info.stdout, info.stdout + info.stderr
    # On the backup host, without the passphrase, the archives cannot be read.
    refused = on_backup_host('BORG_PASSPHRASE=wrong-passphrase borg list %s' % repo, user='borg')
    assert refused.returncode != 0 and 'passphrase' in refused.stderr.lower(), refused.stderr
    # And nothing of the mail is in clear in its files.
    clear = on_backup_host('grep -rlF %s %s' % (shlex.quote(backup['message_id']), repo))
    assert clear.returncode == 1 and not clear.stdout, clear.stdout


def test_status_file_summarises_the_last_run(host, backup, name):
    status = host.file(STATUS)
    assert status.mode == 0o644 and status.user == 'root'
    data = json.loads(status.content_string)
    assert data['host'] == name
    assert data['archive'] == backup['archive']
    assert data['repository'] == backup['repository']
    assert data['ok'] is True
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ', data['started'])
    assert data['started'] <= data['finished']


def test_nightly_timer_is_active(host):
    timer = host.service('congvu-backup.timer')
    assert timer.is_running and timer.is_enabled
    nxt = host.run('systemctl show --property=NextElapseUSecRealtime --value congvu-backup.timer')
    assert nxt.stdout.strip(), 'no next run'


@pytest.fixture
def decoy():
    """Another repository on the backup host, as another data host's would be."""
    path = '%s/decoy-host' % REPOS
    made = on_backup_host('BORG_PASSPHRASE= borg init --encryption=none %s' % path, user='borg')
    assert made.returncode == 0, made.stderr
    yield path
    on_backup_host('rm -rf %s' % path)


def test_a_data_host_reaches_only_its_own_repository(host, backup, decoy):
    own = host.run('congvu-borg list --short')
    assert own.rc == 0, own.stderr
    repo = host.run('. /etc/congvu-mail/backup/borg.env && echo "$BORG_REPO"').stdout.strip()
    other = repo.rsplit('/', 1)[0] + '/decoy-host'
    refused = host.run('congvu-borg list %s' % shlex.quote(other))
    assert refused.rc != 0, refused.stdout
    assert 'restrict' in (refused.stderr + refused.stdout).lower() or 'not allowed' in refused.stderr.lower() \
        or 'permission' in refused.stderr.lower(), refused.stderr
    # The key opens no shell either.
    address_ = repo.split('@', 1)[1].split(':', 1)[0]
    shell = host.run('ssh -i /root/.ssh/congvu-backup -o BatchMode=yes -o UserKnownHostsFile='
                     '/etc/congvu-mail/backup/known_hosts borg@%s id' % address_)
    assert 'uid=' not in shell.stdout


def test_passphrase_is_in_no_output_log_or_readable_file(host, backup, lab):
    secret = lab['backup_passphrase']
    result = backup['result']
    assert secret not in result.stdout + result.stderr
    journal = host.run('journalctl --no-pager -u congvu-backup.service')
    assert journal.stdout.strip() and secret not in journal.stdout
    hits = host.run('grep -rlF %s /etc /var /root /usr/local /srv /tmp 2>/dev/null' % shlex.quote(secret))
    for path in hits.stdout.split():
        f = host.file(path)
        assert f.user == 'root' and f.mode & 0o077 == 0, '%s holds the passphrase, mode %o' % (path, f.mode)
    assert hits.stdout.split() == ['/etc/congvu-mail/backup/passphrase'], hits.stdout
    elsewhere = on_backup_host('grep -rlF %s /etc /var /root /srv /tmp 2>/dev/null' % shlex.quote(secret))
    assert elsewhere.stdout == '', elsewhere.stdout
