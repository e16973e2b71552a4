"""The migration's pure rules (congvu_mail.migrate): modified UTF-7 folder
names, folder renames, message identity, the verification and the report.
The copy itself is tested against a real source server
(molecule/default/tests/test_migrate.py)."""

from __future__ import annotations

import imaplib
import json

import pytest
from hypothesis import given, strategies as st

from congvu_mail import migrate
from congvu_mail.services import migrate as service


# --- modified UTF-7 ------------------------------------------------------------

@pytest.mark.parametrize('text, imap', [
    ('INBOX', 'INBOX'),
    ('Thư đã gửi', 'Th&AbA- &AREA4w- g&Hu0-i'),
    ('Tom & Jerry', 'Tom &- Jerry'),
    ('Công văn đến', 'C&APQ-ng v&AQM-n &AREevw-n'),  # two letters side by side: one run
    ('日本語', '&ZeVnLIqe-'),
    ('Dự án/2025', 'D&HvE- &AOE-n/2025'),
])
def test_modified_utf7_both_ways(text, imap):
    assert migrate.mutf7_encode(text) == imap
    assert migrate.mutf7_decode(imap) == text


def test_modified_utf7_matches_rfc3501_example():
    # RFC 3501, 5.1.3: "~peter/mail/台北/日本語".
    assert migrate.mutf7_decode('~peter/mail/&U,BTFw-/&ZeVnLIqe-') == '~peter/mail/台北/日本語'


@given(st.text(st.characters(blacklist_categories=('Cs',)), max_size=30))
def test_modified_utf7_round_trip(text):
    encoded = migrate.mutf7_encode(text)
    assert all(0x20 <= ord(char) <= 0x7e for char in encoded)
    assert migrate.mutf7_decode(encoded) == text


# --- folders -------------------------------------------------------------------

RENAMES = migrate.folder_map({'Hộp thư đi': 'Sent', 'Archive': 'Lưu trữ'})


@pytest.mark.parametrize('source, separator, target', [
    ('INBOX', '/', 'INBOX'),
    ('inbox', '.', 'INBOX'),
    ('Sent Items', '/', 'Sent'),          # Exchange
    ('Sent', '/', 'Sent'),
    ('sent messages', '/', 'Sent'),
    ('Thư đã gửi', '/', 'Sent'),          # a Vietnamese client
    ('Deleted Items', '/', 'Trash'),
    ('Junk E-mail', '/', 'Junk'),         # Exchange
    ('Hộp thư đi', '/', 'Sent'),          # the job's own rename
    ('archive', '/', 'Lưu trữ'),
    ('Dự án.2025', '.', 'Dự án/2025'),    # a dot-separated hierarchy takes the target's separator
    ('Dự án/2025', '/', 'Dự án/2025'),
    ('Sent Items/2024', '/', 'Sent Items/2024'),  # only whole names are renamed
])
def test_target_folder(source, separator, target):
    assert migrate.target_folder(source, separator, RENAMES) == target


def test_the_jobs_renames_win_over_the_defaults():
    assert migrate.folder_map({'Spam': 'Spam cũ'})['spam'] == 'Spam cũ'
    assert migrate.folder_map()['deleted items'] == 'Trash'


# --- message identity ----------------------------------------------------------

def test_message_key_is_the_message_id_when_there_is_one():
    assert migrate.message_key({'message-id': ' <a@b.vn>\r\n', 'subject': 'x'}) == '<a@b.vn>'


def test_message_key_without_message_id_hashes_the_headers_whitespace_folded():
    one = migrate.message_key({'date': 'Mon, 1 Dec 2025 08:00:00 +0700', 'from': 'a@b.vn', 'subject': 'Công\r\n văn'})
    two = migrate.message_key({'message-id': '', 'date': 'Mon, 1 Dec 2025 08:00:00 +0700', 'from': 'a@b.vn',
                               'subject': 'Công văn', 'to': None})
    other = migrate.message_key({'date': 'Mon, 1 Dec 2025 08:00:01 +0700', 'from': 'a@b.vn', 'subject': 'Công văn'})
    assert one == two and one.startswith('hdr:') and one != other


# --- the verification ----------------------------------------------------------

def message(key, size=100, flags=()):
    return {'key': key, 'size': size, 'flags': sorted(flags)}


def test_compare_counts_sizes_missing_and_flags():
    source = {'INBOX': [message('<1>'), message('<2>', 50, ['\\Seen']), message('<3>')],
              'Sent': [message('<4>', 10)]}
    target = {'INBOX': [message('<1>'), message('<2>', 50), message('<x>', 7)],
              'Sent': [message('<4>', 10)], 'Drafts': []}
    rows = {row['folder']: row for row in migrate.compare(source, target)}
    assert rows['INBOX'] == {'folder': 'INBOX', 'source_messages': 3, 'source_bytes': 250,
                             'target_messages': 3, 'target_bytes': 157, 'missing': ['<3>'],
                             'flag_mismatches': 1}
    assert rows['Sent']['missing'] == [] and rows['Sent']['flag_mismatches'] == 0
    assert 'Drafts' not in rows  # a folder only the target has is no finding


def test_compare_counts_duplicates():
    # The same Message-ID twice on the source needs two copies on the target.
    rows = migrate.compare({'INBOX': [message('<1>'), message('<1>')]}, {'INBOX': [message('<1>')]})
    assert rows[0]['missing'] == ['<1>']


def test_a_folder_missing_on_the_target_is_all_missing():
    rows = migrate.compare({'Dự án': [message('<1>'), message('<2>')]}, {})
    assert rows[0]['missing'] == ['<1>', '<2>'] and rows[0]['target_messages'] == 0


def report_of(*entries, unmapped=()):
    report = {'source': 'mail.old.vn:993', 'mailboxes': list(entries), 'unmapped': list(unmapped)}
    for entry in entries:
        entry['status'] = migrate.mailbox_status(entry)
    report['summary'] = migrate.summary(report)
    return report


def test_report_status_and_summary():
    good = {'source': 'long', 'target': 'longnv@bacninh.gov.vn', 'copied_messages': 3,
            'folders': migrate.compare({'INBOX': [message('<1>')]}, {'INBOX': [message('<1>')]})}
    short = {'source': 'hoa', 'target': 'hoalt@bacninh.gov.vn', 'copied_messages': 0,
             'folders': migrate.compare({'INBOX': [message('<1>')]}, {})}
    failed = {'source': 'duc', 'target': 'ductm@bacninh.gov.vn', 'status': 'failed',
              'error': 'the source refused the login of duc'}
    report = report_of(good, short, failed, unmapped=['old.account'])
    assert [entry['status'] for entry in report['mailboxes']] == ['ok', 'missing', 'failed']
    assert report['summary'] == {'mailboxes': 3, 'ok': 1, 'copied_messages': 3, 'missing_messages': 1,
                                 'unmapped': 1, 'problems': 3}
    text = migrate.text_report(report)
    assert 'the source refused the login of duc' in text and 'missing <1>' in text
    assert 'old.account' in text and 'unmapped' in text


# --- the service's pieces that need no server ----------------------------------

def test_the_imapc_configuration_is_private_and_includes_the_server(tmp_path):
    job = {'work_dir': str(tmp_path), 'source': {'host': 'mail.old.vn', 'port': 993, 'tls': 'imaps',
                                                   'ca_file': '/etc/ssl/old.crt', 'master_user': 'migrator'}}
    path = service.imapc_config(job, 'long', 'S3cret!pass', 'migrator')
    text = open(path, encoding='utf-8').read()
    assert (tmp_path / path).stat().st_mode & 0o777 == 0o600
    assert text.startswith('!include /etc/dovecot/dovecot.conf\n')
    for line in ('imapc_host = mail.old.vn', 'imapc_ssl = imaps', 'imapc_user = long',
                 'imapc_master_user = migrator', 'imapc_password = S3cret!pass',
                 'ssl_client_ca_file = /etc/ssl/old.crt'):
        assert line in text.splitlines()


def test_a_mailbox_that_fails_is_reported_and_the_others_go_on(monkeypatch):
    def refuse(source, login, password, master):
        if login == 'wrong':
            raise service.MigrationError('the source refused the login of wrong')
        raise imaplib.IMAP4.error('unreachable')  # the second one: an unexpected IMAP error
    monkeypatch.setattr(service, 'connect', refuse)
    job = {'source': {'host': 'old', 'master_password': 'x'},
           'mailboxes': [{'source': 'wrong', 'target': 'a@b.vn'}, {'source': 'other', 'target': 'c@b.vn'}],
           'source_mailboxes': ['wrong', 'other', 'gone']}
    report = service.run(job)
    assert [entry['status'] for entry in report['mailboxes']] == ['failed', 'failed']
    assert report['mailboxes'][0]['error'] == 'the source refused the login of wrong'
    assert report['unmapped'] == ['gone'] and report['summary']['problems'] == 3
    assert json.dumps(report)  # the report is plain data


# --- the inventory's map ---------------------------------------------------------

PEOPLE = [{'id': 'BN0001', 'name': 'Nguyễn Văn Long'}, {'id': 'BN0002', 'name': 'Lê Thị Hoa'},
          {'id': 'BN0003', 'name': 'Trần Minh Đức', 'state': 'terminated'}]
MASTER = {'host': 'mail.bacninh.gov.vn', 'master_user': 'migrator', 'master_password': 'Vault-Secret-1!'}


def test_a_good_map_has_no_problem():
    assert migrate.migration_errors(MASTER, [{'source': 'nguyenvanlong', 'person': 'BN0001'}], PEOPLE) == []
    per_user = {'host': 'mail.bacninh.gov.vn'}
    assert migrate.migration_errors(per_user, [{'source': 'hoa', 'person': 'BN0002', 'password': 'P@ss-word-1'}],
                                    PEOPLE) == []
    assert migrate.migration_errors({}, [], PEOPLE) == []


def test_a_bad_map_names_every_record_and_rule_never_the_password():
    secret = 'Very-Secret-Pass-9'
    problems = migrate.migration_errors({'host': '', 'tls': 'none'}, [
        {'source': 'nguyenvanlong', 'person': 'BN0009', 'password': secret},
        {'person': 'BN0001', 'password': secret},
        {'source': 'hoa', 'person': 'BN0002'},
        {'source': 'nguyenvanlong', 'person': 'BN0003', 'password': secret},
        {'source': 'x', 'person': 'BN0001', 'password': secret, 'pasword': secret},
        'duc',
    ], PEOPLE)
    assert problems == [
        'migrate_source · - · host · the source server has no host name · set migrate_source.host',
        'migrate_source · - · tls · must be imaps or starttls (no password crosses the network before TLS) · '
        'set migrate_source.tls',
        'migrate_mailboxes · nguyenvanlong · person · person BN0009 is not in accounts_people · '
        'add the person to the accounts first, or correct the id',
        "migrate_mailboxes · #2 · source · no source login · give the mailbox's login on the old server",
        'migrate_mailboxes · hoa · password · no password and no master login · '
        "set migrate_source.master_user, or this mailbox's password in the vault",
        'migrate_mailboxes · nguyenvanlong · source · mapped twice (also record 1) · map each source mailbox once',
        'migrate_mailboxes · nguyenvanlong · person · person BN0003 is terminated · map the mail to an active account',
        'migrate_mailboxes · x · pasword · unknown field · use source, person and password only',
        'migrate_mailboxes · #6 · - · is not a record · write it as {source: LOGIN, person: ID}',
    ]
    assert secret not in '\n'.join(problems)


def test_the_job_takes_the_issued_addresses():
    job = migrate.migration_job(dict(MASTER, port=993, ca_file=''), [
        {'source': 'nguyenvanlong', 'person': 'BN0001'},
        {'source': 'hoa', 'person': 'BN0002', 'password': 'P@ss-word-1'}],
        {'BN0001': 'longnv@bacninh.gov.vn', 'BN0002': 'hoalt@bacninh.gov.vn'},
        folders={'Hộp thư đi': 'Sent'}, parallel=3, source_mailboxes=['old', 'hoa'])
    assert job == {
        'source': {'host': 'mail.bacninh.gov.vn', 'port': 993, 'master_user': 'migrator',
                   'master_password': 'Vault-Secret-1!'},
        'mailboxes': [{'source': 'nguyenvanlong', 'target': 'longnv@bacninh.gov.vn'},
                      {'source': 'hoa', 'target': 'hoalt@bacninh.gov.vn', 'password': 'P@ss-word-1'}],
        'folders': {'Hộp thư đi': 'Sent'}, 'parallel': 3, 'source_mailboxes': ['hoa', 'old'],
        'work_dir': '/var/lib/congvu-migrate', 'report': '/var/lib/congvu-migrate/report.json'}
