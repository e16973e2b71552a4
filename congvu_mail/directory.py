# The directory (danh bạ, Điều 11 of the 2025 text): who is published, under
# which names, in which order; and the published files' formats (LDAP entries,
# CSV, vCard). The entries are the mailbox database's rows, which the accounts
# sync wrote from the one render of the accounts (mail_accounts_render): the
# directory never renders the accounts again, and never disagrees with the database.

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping

from . import accounts as _accounts
from . import address as _address
from . import password as _password
from .errors import RuleError
from .plain import plain as _plain

COMMUNE_BODIES = {'': 'Ủy ban nhân dân', 'du': 'Đảng ủy', 'hdnd': 'Hội đồng nhân dân'}


def _fold(text):
    return _address.vn_ascii(text or '').lower()


def _published(row):
    """Whether a mailbox is listed: an active one, and one the inactivity job
    suspended (Điều 7: it still receives mail, and its address is still the
    person's until restored). A mailbox the inventory suspends or terminates
    is left out."""
    return row['state'] == 'active' or (row['state'] == 'suspended' and bool(row.get('inactive')))


def mail_directory_entries(mailboxes, organizations=None, bodies=None):
    """The published mailboxes (see DOCUMENTATION)."""
    if isinstance(mailboxes, str):  # the database's JSON as read, never walked by Ansible
        mailboxes = json.loads(mailboxes)
    if not isinstance(mailboxes, list) or not all(isinstance(row, Mapping) for row in mailboxes):
        raise RuleError('mail_directory_entries: expected the mailbox rows (account_id, address, name, kind, '
                        'organization, unit, state, inactive) as a list')
    rows = _plain(mailboxes)
    bodies = dict(COMMUNE_BODIES, **_plain(bodies or {}))

    # The organisation mailboxes' display names: communes' bodies are named after the body.
    names, communal = {}, set()
    for _label, local, org, _parent in _accounts._organizations({'organizations': _plain(organizations or [])}):
        if org.get('commune'):
            communal.add(local)  # a commune's Party committee is no unit of its People's Committee
            prefix = '' if local == _address.mail_place_localpart(org['commune']) else local.split('.')[0]
            names[local] = ('%s %s' % (bodies.get(prefix, prefix), org['commune'].strip())).strip()
    for row in rows:
        if row['kind'] == 'organization':
            local = row['address'].split('@')[0]
            names[local] = names.get(local) or row['name']

    entries = []
    for row in rows:
        if not _published(row):
            continue
        local = row['address'].split('@')[0]
        if row['kind'] == 'organization':
            name = names[local]
            is_unit = row['unit'] and local not in communal
            organization = names.get(row['organization']) if is_unit else name
            unit = name if is_unit else None
            sn, given = name, None
        else:
            name = ' '.join(row['name'].split())
            words = name.split()
            organization = names.get(row['organization'])
            unit = names.get(row['unit']) if row['unit'] else None
            # Điều 5 reads the given name as the last word, family and middle names before it.
            sn, given = (' '.join(words[:-1]) or name), words[-1]
        entry = {'kind': row['kind'], 'uid': local, 'mail': row['address'], 'cn': name, 'sn': sn,
                 'givenName': given, 'o': organization, 'ou': unit}
        parts = dict.fromkeys(v for v in (name, organization, unit, row['address']) if v)  # once each, in order
        entry['key'] = _fold(' '.join(parts))
        entries.append(entry)
    return sorted(entries, key=lambda e: (_fold(e['o']), _fold(e['ou']), e['kind'] != 'organization',
                                          _fold(e['givenName']), _fold(e['cn']), e['mail']))


def _dn_value(value):
    """An RDN value with RFC 4514's special characters escaped."""
    out = ''.join('\\' + c if c in ',+"\\<>;=' else c for c in value)
    if out.startswith((' ', '#')):
        out = '\\' + out
    return out[:-1] + '\\ ' if out.endswith(' ') else out


def mail_directory_ldap(entries, suffix, readers=None):
    """The directory's LDAP state (see DOCUMENTATION)."""
    if not isinstance(suffix, str) or not suffix.lower().startswith('dc='):
        raise RuleError('mail_directory_ldap: the suffix must be a DN such as dc=bacgiang,dc=gov,dc=vn')
    first = suffix.split(',')[0].split('=', 1)[1]
    state = [
        {'dn': suffix, 'attributes': {'objectClass': ['top', 'dcObject', 'organization'],
                                      'dc': [first], 'o': [suffix]}},
    ]
    for ou in ('people', 'organizations', 'services'):
        state.append({'dn': 'ou=%s,%s' % (ou, suffix),
                      'attributes': {'objectClass': ['organizationalUnit'], 'ou': [ou]}})
    for entry in entries:
        branch = 'people' if entry['kind'] == 'person' else 'organizations'
        # cn twice, with and without diacritics: LDAP matching keeps them, and mail clients
        # search cn, so "nguyen" typed in Thunderbird, Outlook or Roundcube finds "Nguyễn".
        names = list(dict.fromkeys([entry['cn'], _address.vn_ascii(entry['cn'])]))
        attributes = {'objectClass': ['inetOrgPerson'], 'uid': [entry['uid']], 'mail': [entry['mail']],
                      'cn': names, 'displayName': [entry['cn']], 'sn': [entry['sn']],
                      'userPassword': ['{SASL}' + entry['mail']]}
        for name in ('givenName', 'o', 'ou'):
            if entry.get(name):
                attributes[name] = [entry[name]]
        state.append({'dn': 'uid=%s,ou=%s,%s' % (_dn_value(entry['uid']), branch, suffix),
                      'attributes': attributes})
    for reader in _plain(readers or []):
        if not reader.get('name') or not reader.get('password'):
            raise RuleError('mail_directory_ldap: every reader needs a name and a password')
        # slapd checks {CRYPT} with glibc's crypt(3); the salt comes from the name, so the
        # same password renders the same hash and a re-run changes nothing.
        hashed = _password.mail_password_hash(reader['password'], scheme='SHA512-CRYPT',
                                              salt_from='directory:' + reader['name'])
        state.append({'dn': 'cn=%s,ou=services,%s' % (_dn_value(reader['name']), suffix),
                      'attributes': {'objectClass': ['applicationProcess', 'simpleSecurityObject'],
                                     'cn': [reader['name']],
                                     'userPassword': ['{CRYPT}' + hashed.split('}', 1)[1]]}})
    return {'suffix': suffix, 'entries': state}


CSV_HEADER = ['Họ và tên', 'Địa chỉ thư điện tử', 'Cơ quan, đơn vị', 'Phòng, bộ phận', 'Loại']
KIND = {'person': 'Cá nhân', 'organization': 'Tổ chức'}


def mail_directory_csv(entries):
    """The CSV download: UTF-8 with a byte-order mark, so Excel shows Vietnamese."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\r\n')
    writer.writerow(CSV_HEADER)
    for e in entries:
        writer.writerow([e['cn'], e['mail'], e['o'] or '', e['ou'] or '', KIND[e['kind']]])
    return '\ufeff' + out.getvalue()


def mail_directory_json(entries):
    """The page's rows as JSON to embed in HTML: [name, address, organisation, unit,
    is-organisation, search key folded by vn_ascii]. "<" is escaped, so no name can
    close the script element that holds it."""
    rows = [[e['cn'], e['mail'], e['o'] or '', e['ou'] or '', int(e['kind'] == 'organization'), e['key']]
            for e in entries]
    return json.dumps(rows, ensure_ascii=False, separators=(',', ':')).replace('<', '\\u003c')


def _vcard_text(value):
    return (value or '').replace('\\', '\\\\').replace(',', '\\,').replace(';', '\\;').replace('\n', '\\n')


def _fold_line(text):
    """RFC 6350 line folding at 75 octets, never inside a UTF-8 character."""
    lines, current = [], ''
    for char in text:
        limit = 75 if not lines else 74
        if len((current + char).encode('utf-8')) > limit:
            lines.append(current)
            current = ''
        current += char
    lines.append(current)
    return '\r\n '.join(lines)


def mail_directory_vcard(entries):
    """The vCard download (3.0: what Outlook and older phones read), one card per mailbox."""
    cards = []
    for e in entries:
        org = ';'.join(_vcard_text(v) for v in (e['o'], e['ou']) if v)
        lines = ['BEGIN:VCARD', 'VERSION:3.0',
                 'FN:' + _vcard_text(e['cn']),
                 'N:%s;%s;;;' % (_vcard_text(e['sn']), _vcard_text(e['givenName']))]
        if org:
            lines.append('ORG:' + org)
        lines += ['EMAIL;TYPE=INTERNET,WORK:' + e['mail'], 'UID:mailto:' + e['mail'], 'END:VCARD']
        cards.append('\r\n'.join(_fold_line(line) for line in lines))
    return '\r\n'.join(cards) + '\r\n' if cards else ''
