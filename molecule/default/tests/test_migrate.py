"""Mailboxes migrated from the old province's server (playbooks/migrate.yml,
docs/migration.md): a Dovecot on example.net's host with five generated
mailboxes (molecule/legacy), copied into new people's accounts, then read on
both sides over IMAP by the tests' own client (molecule/legacy/imap_listing.py).

The module adds six people to the lab's accounts (nobody else's mail is
touched) and puts the lab's accounts back when it is done."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from mailtest import PROJECT, run_playbook

LEGACY_DIR = PROJECT / 'molecule' / 'legacy'
LEGACY = yaml.safe_load((LEGACY_DIR / 'vars' / 'users.yml').read_text(encoding='utf-8'))
PREFIX = os.environ.get('CONGVU_PREFIX') or 'congvu'
SCENARIO = os.environ.get('MOLECULE_SCENARIO_NAME', 'default')
FOREIGN = '%s-%s-foreign' % (PREFIX, SCENARIO)
HOST = '%s-%s' % (PREFIX, SCENARIO)
DOMAIN = 'bacgiang.gov.vn'

# person id, name, the address the rules give, the source login
TARGETS = [
    ('MG0001', 'Nguyễn Văn An', 'annv', 'nguyenvanan'),
    ('MG0002', 'Trần Thị Bình', 'binhtt', 'tranthibinh'),
    ('MG0003', 'Lê Hoàng Cường', 'cuonglh', 'lehoangcuong'),
    ('MG0004', 'Phạm Thị Dung', 'dungpt', 'phamthidung'),
    ('MG0005', 'Vũ Văn Em', 'emvv', 'vuvanem'),       # its password in the map is wrong
]
QUOTA_TARGET = ('MG0006', 'Đỗ Văn Giang', 'giangdv')  # 1 MiB of quota
GOOD = TARGETS[:4]
WRONG = TARGETS[4]
RETIRED = 'nghihuu@' + LEGACY['legacy_domain']         # on the old server, in no map
# The old server's folders and where the regulation's server keeps them.
FOLDERS = {'INBOX': 'INBOX', 'Sent Items': 'Sent', 'Thư đã gửi': 'Sent', 'Deleted Items': 'Trash',
           'Junk E-mail': 'Junk', 'Dự án': 'Dự án', 'Dự án/2025': 'Dự án/2025', 'Công văn đến': 'Công văn đến'}
SECRETS = [LEGACY['legacy_master_password']] + [user['password'] for user in LEGACY['legacy_users']]


def login_of(local):
    return '%s@%s' % (local, LEGACY['legacy_domain'])


def password_of(person_id):
    return 'Lab-Migrate-%s-2026!' % person_id


def people(lab):
    added = [{'id': pid, 'name': name, 'organization': 'stnmt', 'password': password_of(pid)}
             for pid, name, _address, _login in TARGETS]
    added.append({'id': QUOTA_TARGET[0], 'name': QUOTA_TARGET[1], 'organization': 'stnmt',
                  'password': password_of(QUOTA_TARGET[0]), 'quota_mb': 1})
    return copy.deepcopy(lab['accounts_people']) + added


def migration_vars(lab, report_dir, mailboxes=None):
    mailboxes = mailboxes if mailboxes is not None else (
        [{'source': login_of(login), 'person': pid} for pid, _name, _address, login in GOOD]
        + [{'source': login_of(WRONG[3]), 'person': WRONG[0], 'password': 'Not-The-Password-1!'}])
    return {
        'accounts_people': people(lab),
        'migrate_source': {'host': 'mx.example.net', 'port': 993, 'tls': 'imaps',
                           'ca_file': '/usr/local/share/ca-certificates/congvu-simulated-internet.crt',
                           'master_user': LEGACY['legacy_master_user'],
                           'master_password': LEGACY['legacy_master_password']},
        'migrate_mailboxes': mailboxes,
        'migrate_source_mailboxes': [user['login'] for user in LEGACY['legacy_users']] + [RETIRED],
        'migrate_report_dir': str(report_dir),
    }


def migrate(lab, report_dir, mailboxes=None):
    """One run of playbooks/migrate.yml: the process, its report, its recap's changed count."""
    started = time.monotonic()
    result = run_playbook('migrate.yml', migration_vars(lab, report_dir, mailboxes))
    seconds = time.monotonic() - started
    path = Path(report_dir) / (HOST + '.json')
    report = json.loads(path.read_text(encoding='utf-8')) if path.exists() else None
    recap = re.search(r'^%s\s*:.*\bchanged=(\d+)' % re.escape(HOST), result.stdout, re.M)
    assert recap, result.stdout[-3000:]
    for secret in SECRETS + ['Not-The-Password-1!']:
        assert secret not in result.stdout + result.stderr, 'a password in the output'
    return {'result': result, 'report': report, 'changed': int(recap.group(1)), 'seconds': seconds}


def entry(report, address):
    return next(item for item in report['mailboxes'] if item['target'] == '%s@%s' % (address, DOMAIN))


def source_listing(login):
    """The old server's mailbox, read over IMAPS inside its own host (master login)."""
    result = subprocess.run(['docker', 'exec', '-i', FOREIGN, 'python3', '-', login_of(login),
                             LEGACY['legacy_master_user'], LEGACY['legacy_master_password']],
                            input=(LEGACY_DIR / 'imap_listing.py').read_bytes(), capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()
    folders = {}
    for folder, messages in json.loads(result.stdout).items():
        folders.setdefault(FOLDERS[folder], []).extend(messages)
    return {folder: sorted(messages) for folder, messages in folders.items()}


def target_listing(server, address, person_id):
    from legacy.imap_listing import listing
    client = server.imap('%s@%s' % (address, DOMAIN), password_of(person_id))
    try:
        return listing(client)
    finally:
        client.logout()


def add_to_source(login, message_id):
    """A message arriving at the old server after the first pass (its MX has not moved yet)."""
    text = ('From: late@example.org\nTo: %s\nSubject: Sau lần chép đầu\nMessage-ID: %s\n'
            'Date: Tue, 8 Dec 2026 08:00:00 +0700\n\nThư đến muộn.\n' % (login_of(login), message_id))
    path = '/srv/legacy/%s/Maildir/new/%d.late.mx.example.net' % (login, time.time_ns())
    result = subprocess.run(['docker', 'exec', '-i', FOREIGN, 'sh', '-c',
                             'cat > %s.tmp && chown legacy:legacy %s.tmp && mv %s.tmp %s' % ((path,) * 4)],
                            input=text.encode(), capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()


def stored_messages(host, address):
    """How many messages the new server holds for this address (all folders)."""
    result = host.run("doveadm -f flow mailbox status -u %s@%s messages '*'" % (address, DOMAIN))
    assert result.rc == 0, result.stderr
    return sum(int(field.split('=')[1]) for field in result.stdout.split() if field.startswith('messages='))


@pytest.fixture(scope='module')
def migration(host, lab, tmp_path_factory):
    run_playbook('tools/accounts.yml', {'accounts_people': people(lab)}, check=True)
    # A re-run of the module on the same host finds the mail of the last one.
    before = {address: stored_messages(host, address) for _pid, _name, address, _login in TARGETS}
    first_dir, second_dir = tmp_path_factory.mktemp('first'), tmp_path_factory.mktemp('second')
    first = migrate(lab, first_dir)
    second = migrate(lab, second_dir)
    yield {'first': first, 'second': second, 'dir': tmp_path_factory, 'before': before}
    run_playbook('tools/accounts.yml', check=True)


def test_a_bad_map_is_refused_before_any_host_is_touched(lab, tmp_path):
    result = run_playbook('migrate.yml', migration_vars(lab, tmp_path, [
        {'source': login_of('nguyenvanan'), 'person': 'MG9999'},
        {'person': 'MG0001'},
        {'source': login_of('tranthibinh'), 'person': 'MG0002', 'password': ''},
    ]) | {'migrate_source': {'host': 'mx.example.net', 'tls': 'imaps'}})
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'migrate_mailboxes · nguyenvanan@legacy.example.net · person · person MG9999 is not in accounts_people' \
        in output
    assert 'migrate_mailboxes · #2 · source · no source login' in output
    assert 'migrate_mailboxes · tranthibinh@legacy.example.net · password · no password and no master login' \
        in output
    assert 'Copy the mailboxes and verify them' not in output  # the host was never reached
    assert not any(secret in output for secret in SECRETS)


@pytest.mark.parametrize('person_id, address, login', [(t[0], t[2], t[3]) for t in GOOD])
def test_every_mapped_mailbox_arrives_whole(migration, server, person_id, address, login):
    """Folders (renamed, nested, Vietnamese), counts, sizes, flags, internal dates
    and body hashes: the new server shows exactly what the old one has."""
    item = entry(migration['first']['report'], address)
    assert item['status'] == 'ok', item
    source = source_listing(login)
    target = target_listing(server, address, person_id)
    for folder, messages in source.items():
        assert target.get(folder) == messages, 'folder %s of %s differs' % (folder, address)
    assert sum(len(messages) for messages in source.values()) >= 399


def test_the_verification_report_counts_both_sides(migration, host):
    report = migration['first']['report']
    item = entry(report, 'annv')
    rows = {row['folder']: row for row in item['folders']}
    assert set(rows) == set(FOLDERS.values())
    assert rows['Sent']['source_messages'] == rows['Sent']['target_messages'] > 0
    assert rows['INBOX']['source_bytes'] == rows['INBOX']['target_bytes'] > 20 * 1000 * 1000  # the 20 MB one
    assert all(row['missing'] == [] and row['flag_mismatches'] == 0 for row in rows.values())
    assert item['copied_messages'] == sum(row['source_messages'] for row in rows.values()) - migration['before']['annv']
    assert stored_messages(host, 'annv') == sum(row['target_messages'] for row in rows.values())


def test_the_wrong_password_is_reported_and_the_others_go_on(migration):
    first = migration['first']
    assert first['result'].returncode != 0  # the run fails while a mailbox is not complete
    item = entry(first['report'], WRONG[2])
    assert item['status'] == 'failed' and 'refused the login' in item['error']
    assert [entry(first['report'], t[2])['status'] for t in GOOD] == ['ok'] * 4
    assert first['report']['unmapped'] == [RETIRED]
    assert 'refused the login of %s' % login_of(WRONG[3]) in first['result'].stdout  # in the printed table


def test_a_second_run_copies_nothing(migration):
    second = migration['second']
    assert second['changed'] == 0
    assert second['report']['summary']['copied_messages'] == 0
    assert all(entry(second['report'], t[2])['status'] == 'ok' for t in GOOD)


def test_the_cut_over_pass_brings_the_last_message(migration, lab, server):
    message_id = '<cutover.%d@example.org>' % time.time_ns()
    add_to_source('tranthibinh', message_id)
    cutover = migrate(lab, migration['dir'].mktemp('cutover'))
    assert cutover['changed'] == 1
    assert cutover['report']['summary']['copied_messages'] == 1
    assert entry(cutover['report'], 'binhtt')['status'] == 'ok'
    server.wait_for_message('binhtt@' + DOMAIN, password_of('MG0002'), message_id, timeout=5)


def test_a_migrated_user_sees_the_old_mail_in_the_mapped_folders(migration, server):
    client = server.imap('cuonglh@' + DOMAIN, password_of('MG0003'))
    try:
        names = [line.decode() for line in client.list()[1]]
        assert any(line.endswith('"D&HvE- &AOE-n/2025"') for line in names), names  # Dự án/2025
        assert not any('Sent Items' in line or 'Th&AbA-' in line for line in names), names
        status, count = client.select('Sent', readonly=True)
        assert status == 'OK' and int(count[0]) > 0
        status, data = client.search(None, 'HEADER', 'Message-ID', 'legacy.lehoangcuong.')
        assert status == 'OK' and data[0].split()
    finally:
        client.logout()


def test_a_mailbox_larger_than_its_quota_is_not_copied(migration, lab, server):
    run = migrate(lab, migration['dir'].mktemp('quota'),
                  [{'source': login_of('nguyenvanan'), 'person': QUOTA_TARGET[0]}])  # 20 MB and more
    item = entry(run['report'], QUOTA_TARGET[2])
    assert item['status'] == 'over-quota' and 'nothing copied' in item['error'], item
    assert run['report']['summary']['copied_messages'] == 0 and run['result'].returncode != 0
    client = server.imap('%s@%s' % (QUOTA_TARGET[2], DOMAIN), password_of(QUOTA_TARGET[0]))
    try:
        assert sum(int(client.select(f, readonly=True)[1][0]) for f in ('INBOX', 'Sent')) == 0
    finally:
        client.logout()
