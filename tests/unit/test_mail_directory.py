"""Unit tests of mail_directory: who is published, under which names, and the
formats of the downloads."""

import csv
import io
import json

import pytest

from congvu_mail import accounts, directory
from congvu_mail.errors import RuleError

DOMAIN = 'bacgiang.gov.vn'


def model(people):
    return {
        'domain': DOMAIN, 'domains': [{'name': DOMAIN}],
        'organizations': [
            {'name': 'Sở Thông tin và Truyền thông', 'password': 'Org-Pass-2026!', 'units': [{'name': 'Văn phòng'}]},
            {'commune': 'Kinh Bắc', 'bodies': ['du']},
        ],
        'people': people, 'lists': [], 'duplicates': 'number',
    }


PEOPLE = [
    {'id': 'P1', 'name': 'Nguyễn Văn Long', 'organization': 'stttt', 'password': 'Pass-Word-2026!'},
    {'id': 'P2', 'name': 'Đặng Thị Ánh Tuyết', 'organization': 'stttt', 'unit': 'vp', 'password': 'x'},
    {'id': 'P3', 'name': 'Lê Thị Hoa', 'organization': 'kinhbac', 'state': 'suspended'},
    {'id': 'P4', 'name': 'Trần Minh Đức', 'organization': 'stttt', 'state': 'terminated'},
]


def rows(people=PEOPLE, existing=None):
    """The mailbox rows the accounts sync writes to the database (without hashing)."""
    accounts_model = model([{k: v for k, v in p.items() if k != 'password'} for p in people])
    accounts_model['organizations'] = [{k: v for k, v in o.items() if k != 'password'}
                                       for o in accounts_model['organizations']]
    return accounts.mail_accounts_render(accounts_model, existing=existing)['mailboxes']


def entries(people=PEOPLE, existing=None):
    return directory.mail_directory_entries(rows(people, existing), organizations=model(people)['organizations'])


def test_active_people_and_every_organisation_mailbox_only():
    mails = [e['mail'] for e in entries()]
    assert sorted(mails) == sorted('%s@%s' % (local, DOMAIN) for local in
                                   ['stttt', 'vp.stttt', 'kinhbac', 'du.kinhbac', 'longnv', 'tuyetdta'])


def test_names_split_as_the_address_rule_reads_them():
    tuyet = next(e for e in entries() if e['uid'] == 'tuyetdta')
    assert (tuyet['cn'], tuyet['sn'], tuyet['givenName']) == ('Đặng Thị Ánh Tuyết', 'Đặng Thị Ánh', 'Tuyết')
    assert (tuyet['o'], tuyet['ou']) == ('Sở Thông tin và Truyền thông', 'Văn phòng')
    assert 'dang thi anh tuyet' in tuyet['key']


def test_commune_bodies_are_named_and_are_no_units():
    party = next(e for e in entries() if e['uid'] == 'du.kinhbac')
    assert (party['cn'], party['o'], party['ou']) == ('Đảng ủy Kinh Bắc', 'Đảng ủy Kinh Bắc', None)


def test_the_database_rows_decide_addresses_and_states():
    """The entries follow the database, not a render of their own: an issued
    address is the one published; a mailbox the inventory suspended is left
    out, and one the inactivity job suspended (it still receives mail) stays."""
    table = rows(existing=[{'account_id': 'P1', 'address': 'longnv7@' + DOMAIN, 'password_reset': 'initial'}])
    for row in table:
        if row['account_id'] == 'P2':
            row['state'] = 'suspended'
    mails = [e['mail'] for e in directory.mail_directory_entries(table, organizations=model(PEOPLE)['organizations'])]
    assert 'longnv7@' + DOMAIN in mails and 'tuyetdta@' + DOMAIN not in mails
    for row in table:
        if row['account_id'] == 'P2':
            row['inactive'] = True
    mails = [e['mail'] for e in directory.mail_directory_entries(table, organizations=model(PEOPLE)['organizations'])]
    assert 'tuyetdta@' + DOMAIN in mails


def test_rows_as_the_database_json_text_give_the_same_entries():
    organizations = model(PEOPLE)['organizations']
    assert directory.mail_directory_entries(json.dumps(rows()), organizations=organizations) == entries()


def test_anything_but_mailbox_rows_is_refused():
    with pytest.raises(RuleError, match='mailbox rows'):
        directory.mail_directory_entries(model(PEOPLE))


def test_ldap_state_binds_through_saslauthd_and_folds_names():
    state = directory.mail_directory_ldap(entries(), 'dc=bacgiang,dc=gov,dc=vn',
                                          readers=[{'name': 'roundcube', 'password': 'Reader-2026!'}])
    by_dn = {e['dn']: e['attributes'] for e in state['entries']}
    long = by_dn['uid=longnv,ou=people,dc=bacgiang,dc=gov,dc=vn']
    assert long['userPassword'] == ['{SASL}longnv@' + DOMAIN]
    assert long['cn'] == ['Nguyễn Văn Long', 'Nguyen Van Long']
    reader = by_dn['cn=roundcube,ou=services,dc=bacgiang,dc=gov,dc=vn']['userPassword'][0]
    assert reader.startswith('{CRYPT}$6$') and 'Reader-2026!' not in reader
    again = directory.mail_directory_ldap(entries(), 'dc=bacgiang,dc=gov,dc=vn',
                                          readers=[{'name': 'roundcube', 'password': 'Reader-2026!'}])
    assert again == state  # a re-run renders the same hash


def test_ldap_suffix_must_be_a_dn():
    with pytest.raises(RuleError):
        directory.mail_directory_ldap([], 'bacgiang.gov.vn')


def test_csv_has_a_bom_and_quotes_commas():
    text = directory.mail_directory_csv(entries())
    assert text.startswith('\ufeff')
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == directory.CSV_HEADER
    assert ['Đặng Thị Ánh Tuyết', 'tuyetdta@' + DOMAIN, 'Sở Thông tin và Truyền thông', 'Văn phòng', 'Cá nhân'] in rows


def test_vcard_lines_fold_at_75_octets_without_breaking_a_character():
    long_name = {'kind': 'person', 'uid': 'x', 'mail': 'x@' + DOMAIN, 'cn': 'Nguyễn ' * 20 + 'Long',
                 'sn': 'Nguyễn', 'givenName': 'Long', 'o': 'Sở, Thông; tin', 'ou': None, 'key': ''}
    text = directory.mail_directory_vcard([long_name])
    for line in text.split('\r\n'):
        assert len(line.encode('utf-8')) <= 75
    unfolded = text.replace('\r\n ', '')
    assert 'FN:' + 'Nguyễn ' * 20 + 'Long' in unfolded
    assert 'ORG:Sở\\, Thông\\; tin' in unfolded


def test_page_rows_cannot_close_their_script_element():
    rows = directory.mail_directory_json([{'kind': 'organization', 'uid': 'x', 'mail': 'x@' + DOMAIN,
                                           'cn': 'A </script><b>', 'sn': 'A', 'givenName': None,
                                           'o': None, 'ou': None, 'key': 'a'}])
    assert '<' not in rows
    assert json.loads(rows) == [['A </script><b>', 'x@' + DOMAIN, '', '', 1, 'a']]
