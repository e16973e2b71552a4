"""The directory (danh bạ) from outside the host: ldapsearch over ldaps and
StartTLS on the published ports, checked against the lab CA, binding with a
lab user's own mail password; the page at https://mail.bacgiang.gov.vn/danh-ba/
over HTTPS and in a real browser. One module fixture changes the inventory as
an operator does (a person suspended, one terminated) and puts it back."""

import csv
import io
import json
import re
import subprocess

import pytest

from mailtest import LAB_SUFFIX, MAIL_HOST, chromium, psql, run_playbook
from test_accounts import ADDRESSES, DOMAIN, ORGANISATIONS, address, people_with_states, person

PEOPLE_DN = 'ou=people,' + LAB_SUFFIX
READER_DN = 'cn=roundcube,ou=services,' + LAB_SUFFIX
PAGE = '/danh-ba/'


def bind_dn(person_id):
    return 'uid=%s,%s' % (ADDRESSES[person_id], PEOPLE_DN)


def reader_password(lab):
    return next(r['password'] for r in lab['directory_readers'] if r['name'] == 'roundcube')


def people_found(server, lab, as_person='BG0001'):
    """Every person entry, searched as a lab user with the mail password."""
    code, entries, error = server.ldapsearch(bind_dn(as_person), person(lab, as_person)['password'],
                                             '(objectClass=inetOrgPerson)', base=PEOPLE_DN)
    assert code == 0, error
    return {values['mail'][0]: values for values in entries.values()}


def page(server, path=PAGE):
    status, headers, body = server.http(path)
    assert status == 200, (path, status)
    return headers, body


# --- LDAP -------------------------------------------------------------------

def test_a_user_finds_the_people_with_their_vietnamese_names(server, lab):
    found = people_found(server, lab)
    assert sorted(found) == sorted(address(pid) for pid in ADDRESSES)
    tuyet = found[address('BG0003')]
    assert tuyet['displayName'] == ['Đặng Thị Ánh Tuyết']
    assert tuyet['cn'] == ['Đặng Thị Ánh Tuyết', 'Dang Thi Anh Tuyet']
    assert tuyet['sn'] == ['Đặng Thị Ánh'] and tuyet['givenName'] == ['Tuyết']
    assert tuyet['o'] == ['Sở Thông tin và Truyền thông'] and tuyet['ou'] == ['Văn phòng']
    assert 'userPassword' not in tuyet  # a password is for binding, never read


def test_search_without_diacritics_finds_nguyen(server, lab):
    code, entries, error = server.ldapsearch(bind_dn('BG0003'), person(lab, 'BG0003')['password'],
                                             '(cn=nguyen*long)', ['mail', 'displayName'])
    assert code == 0, error
    assert sorted(e['mail'][0] for e in entries.values()) == sorted([address('BG0001'), address('BG0002')])
    assert all(e['displayName'] == ['Nguyễn Văn Long'] for e in entries.values())


def test_organisation_mailboxes_are_in_the_directory(server, lab):
    code, entries, error = server.ldapsearch(bind_dn('BG0001'), person(lab, 'BG0001')['password'],
                                             '(objectClass=inetOrgPerson)', ['mail', 'displayName'],
                                             base='ou=organizations,' + LAB_SUFFIX)
    assert code == 0, error
    names = {e['mail'][0]: e['displayName'][0] for e in entries.values()}
    assert sorted(names) == sorted('%s@%s' % (local, DOMAIN) for local in ORGANISATIONS)
    assert names['du.kinhbac@' + DOMAIN] == 'Đảng ủy Kinh Bắc'


def test_starttls_on_389_with_the_webmail_reader(server, lab):
    code, entries, error = server.ldapsearch(READER_DN, reader_password(lab), '(mail=%s)' % address('BG0004'),
                                             ['cn'], starttls=True)
    assert code == 0, error
    assert [e['cn'][0] for e in entries.values()] == ['Trần Minh Đức']


def test_anonymous_reads_nothing(server):
    code, entries, error = server.ldapsearch(search_filter='(objectClass=*)')
    assert code != 0 and entries == {}, error


def test_a_wrong_password_is_refused(server):
    code, entries, error = server.ldapsearch(bind_dn('BG0001'), 'Not-The-Password-1!', '(objectClass=*)')
    assert code == 49 and entries == {}, error  # invalidCredentials


def test_no_password_in_clear_text(server, lab):
    """Plain LDAP on 389 without StartTLS: the bind is refused before any password check."""
    result = subprocess.run(['ldapsearch', '-H', 'ldap://127.0.0.1:%d' % server.port(389), '-x', '-LLL',
                             '-D', bind_dn('BG0001'), '-y', '/dev/stdin', '-b', LAB_SUFFIX, 'uid=longnv'],
                            input=person(lab, 'BG0001')['password'], capture_output=True, text=True, timeout=60)
    assert result.returncode == 13 and 'dn:' not in result.stdout, result.stderr  # confidentialityRequired


def test_the_mail_password_is_the_directory_password(server, lab, host):
    """One password source: a password changed in the mailbox database (as the
    webmail's password change does) is the one the directory accepts at once."""
    new = 'Doi-Mat-Khau-2026!'
    hashed = host.run("doveadm pw -s SHA512-CRYPT -p '%s'" % new).stdout.strip()
    assert hashed.startswith('{SHA512-CRYPT}')
    before = psql(host, "SELECT password FROM mailboxes WHERE account_id = 'BG0003'")
    psql(host, "UPDATE mailboxes SET password = '%s' WHERE account_id = 'BG0003'" % hashed)
    try:
        assert server.ldapsearch(bind_dn('BG0003'), new, '(uid=tuyetdta)')[0] == 0
        assert server.ldapsearch(bind_dn('BG0003'), person(lab, 'BG0003')['password'], '(uid=tuyetdta)')[0] == 49
    finally:
        psql(host, "UPDATE mailboxes SET password = '%s' WHERE account_id = 'BG0003'" % before)
    assert server.ldapsearch(bind_dn('BG0003'), person(lab, 'BG0003')['password'], '(uid=tuyetdta)')[0] == 0


# --- The page ---------------------------------------------------------------

def page_rows(server):
    """The rows the page carries (its script shows them): {address: [name, address, org, unit, ...]}."""
    headers, body = page(server)
    text = body.decode('utf-8')
    assert headers['content-type'].startswith('text/html')
    data = re.search(r'<script type="application/json" id="du-lieu">(.*?)</script>', text, re.S)
    assert data, 'the page carries no rows'
    return text, {row[1]: row for row in json.loads(data.group(1))}


def test_the_page_lists_every_published_mailbox(server, lab):
    text, rows = page_rows(server)
    assert '<html lang="vi">' in text and 'Danh bạ thư điện tử công vụ' in text
    assert sorted(rows) == sorted([address(pid) for pid in ADDRESSES] + ['%s@%s' % (o, DOMAIN) for o in ORGANISATIONS])
    for pid in ADDRESSES:
        assert rows[address(pid)][0] == person(lab, pid)['name']
    assert rows[address('BG0003')][2:4] == ['Sở Thông tin và Truyền thông', 'Văn phòng']


def test_csv_download_opens_in_excel(server, lab):
    _headers, body = page(server, PAGE + 'danh-ba.csv')
    assert body.startswith(b'\xef\xbb\xbf')  # UTF-8 byte-order mark: Excel then reads UTF-8
    rows = list(csv.reader(io.StringIO(body.decode('utf-8-sig'))))
    assert rows[0][:2] == ['Họ và tên', 'Địa chỉ thư điện tử']
    by_address = {row[1]: row for row in rows[1:]}
    assert by_address[address('BG0003')][:4] == ['Đặng Thị Ánh Tuyết', address('BG0003'),
                                                  'Sở Thông tin và Truyền thông', 'Văn phòng']
    assert len(rows) - 1 == len(ADDRESSES) + len(ORGANISATIONS)


def test_vcard_download(server, lab):
    _headers, body = page(server, PAGE + 'danh-ba.vcf')
    text = body.decode('utf-8').replace('\r\n ', '')  # unfold
    cards = [c for c in text.split('BEGIN:VCARD') if c.strip()]
    assert len(cards) == len(ADDRESSES) + len(ORGANISATIONS)
    duc = next(c for c in cards if 'EMAIL;TYPE=INTERNET,WORK:%s' % address('BG0004') in c)
    assert 'VERSION:3.0' in duc and 'FN:Trần Minh Đức' in duc and 'N:Trần Minh;Đức;;;' in duc
    assert 'ORG:Sở Tài nguyên và Môi trường' in duc


def test_browser_search_nguyen_finds_nguyen_with_diacritics(server):
    with chromium(server, 'directory') as browser:
        browser.goto('https://%s%s' % (MAIL_HOST, PAGE))
        rows = browser.locator('#danh-ba tbody tr:visible')
        total = rows.count()
        assert total == len(ADDRESSES) + len(ORGANISATIONS)
        browser.fill('#tim', 'nguyen')
        browser.wait_for_function("document.querySelectorAll('#danh-ba tbody tr:not([hidden])').length < %d" % total)
        shown = rows.all_inner_texts()
        browser.screenshot(path=str(browser.shots / 'search-nguyen.png'), full_page=True)
        # Both Nguyễn Văn Long, and the rows of "Sở Tài nguyên và Môi trường" (its name holds "nguyên").
        assert sorted(row.split('\t')[1] for row in shown if row.startswith('Nguyễn Văn Long')) == \
            sorted([address('BG0001'), address('BG0002')]), shown
        assert all('Nguyễn' in row or 'nguyên' in row for row in shown), shown
        assert not any(address('BG0003') in row or address('BG0005') in row for row in shown), shown
        browser.fill('#tim', 'nguyen van')
        browser.wait_for_function("document.querySelectorAll('#danh-ba tbody tr:not([hidden])').length == 2")
        assert all(row.startswith('Nguyễn Văn Long') for row in rows.all_inner_texts())
        browser.fill('#tim', 'dang thi anh tuyet')  # đ typed as d
        browser.wait_for_function("document.querySelectorAll('#danh-ba tbody tr:not([hidden])').length == 1")
        assert 'Đặng Thị Ánh Tuyết' in rows.all_inner_texts()[0]
        browser.fill('#tim', 'Sở Tài nguyên')  # typed with diacritics, too
        browser.wait_for_function("document.querySelectorAll('#danh-ba tbody tr:not([hidden])').length == 3")


# --- Suspended and terminated people leave the directory --------------------

@pytest.fixture(scope='module')
def changed_inventory(lab):
    """hoalt suspended, ductm terminated, with playbooks/tools/accounts.yml (which
    re-renders the directory), twice; the lab's inventory again afterwards."""
    people = people_with_states(lab, {'BG0005': 'suspended', 'BG0004': 'terminated'})
    first = run_playbook('tools/accounts.yml', {'accounts_people': people}, check=True)
    again = run_playbook('tools/accounts.yml', {'accounts_people': people}, check=True)
    yield {'first': first.stdout, 'again': again.stdout}
    run_playbook('tools/accounts.yml', check=True)


def test_suspended_and_terminated_leave_ldap(changed_inventory, server, lab):
    found = people_found(server, lab)
    assert address('BG0005') not in found and address('BG0004') not in found
    assert address('BG0001') in found and address('BG0003') in found


def test_suspended_and_terminated_leave_the_page_and_downloads(changed_inventory, server):
    _text, rows = page_rows(server)
    assert address('BG0005') not in rows and address('BG0004') not in rows
    assert address('BG0001') in rows and address('BG0003') in rows
    for path in (PAGE, PAGE + 'danh-ba.csv', PAGE + 'danh-ba.vcf'):
        _headers, body = page(server, path)
        text = body.decode('utf-8')
        assert address('BG0005') not in text and address('BG0004') not in text, path
        assert 'Lê Thị Hoa' not in text and 'Trần Minh Đức' not in text, path
        assert address('BG0001') in text, path


def test_re_rendering_with_no_change_changes_nothing(changed_inventory):
    assert 'TASK [directory : Apply the entries' in changed_inventory['first']
    first = changed_inventory['first'].split('PLAY RECAP')[-1]
    assert 'changed=0' not in first
    assert 'changed=0' in changed_inventory['again'].split('PLAY RECAP')[-1]
