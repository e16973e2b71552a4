# The directory (danh bạ, Điều 11 of the 2025 text): who is published, under
# which names, in which order; and the published files' formats (LDAP entries,
# CSV, vCard). Addresses come from mail_accounts_render, the same rendering the
# mailbox database gets, so the directory never disagrees with it.

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
from collections.abc import Mapping
from pathlib import Path

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # imported outside Ansible (unit tests)
    class AnsibleFilterError(ValueError):
        """Stand-in for Ansible's error when Ansible is not installed."""

DOCUMENTATION = r"""
  name: mail_directory
  short_description: The published directory of organisation mailboxes and active people
  description:
    - C(mail_directory_entries(accounts, existing=None, bodies=None)) gives one dict per
      published mailbox (C(kind), C(uid), C(mail), C(cn), C(sn), C(givenName), C(o), C(ou),
      C(key)), sorted by organisation, unit, then given name. Every organisation mailbox and
      every active person; suspended and terminated people are left out. O(accounts) and
      O(existing) are those of C(mail_accounts_render); no password is read or hashed.
      O(bodies) names the bodies of a commune by address prefix (C(du) -> C(Đảng ủy)); the
      empty prefix names the commune's own mailbox.
    - C(mail_directory_ldap(entries, suffix, readers=None)) gives the directory's LDAP state
      (C(suffix), C(entries)) for congvu-directory-sync: inetOrgPerson entries under
      C(ou=people) and C(ou=organizations) whose password is C({SASL}<address>), and
      read-only service entries under C(ou=services) from O(readers) (C(name), C(password)).
    - C(mail_directory_csv(entries)) and C(mail_directory_vcard(entries)) give the CSV (with a
      byte-order mark, for Excel) and vCard 3.0 downloads; C(mail_directory_json(entries)) the
      directory page's rows, as JSON safe to embed in HTML.
  positional: _input
  options:
    _input:
      description: The accounts model (mail_directory_entries) or the entries it gave.
      type: raw
      required: true
"""

EXAMPLES = r"""
- name: Render the directory page's CSV
  ansible.builtin.copy:
    content: "{{ entries | mail_directory_csv }}"
    dest: /var/www/congvu-mail/danh-ba/danh-ba.csv
    mode: "0644"
  vars:
    entries: "{{ accounts | mail_directory_entries(existing=issued) }}"
"""

RETURN = r"""
  _value:
    description: A list of entries, the LDAP state (dict) or the text of a file.
    type: raw
"""

COMMUNE_BODIES = {'': 'Ủy ban nhân dân', 'du': 'Đảng ủy', 'hdnd': 'Hội đồng nhân dân'}


def _sibling(name):
    """Import a sibling filter module (see mail_accounts._sibling)."""
    if name in sys.modules:
        return sys.modules[name]
    try:
        return __import__(name)
    except ImportError:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(name + '.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
        return module


_accounts = _sibling('mail_accounts')
_address = _sibling('mail_address')
_password = _sibling('mail_password')


def _without_passwords(accounts):
    """The model without a password anywhere: the directory hashes nothing."""
    def clean(record):
        record = {k: v for k, v in record.items() if k != 'password'}
        if record.get('units'):
            record['units'] = [clean(unit) for unit in record['units']]
        return record
    return dict(accounts, organizations=[clean(o) for o in accounts.get('organizations') or []],
                people=[clean(p) for p in accounts.get('people') or []])


def _fold(text):
    return _address.vn_ascii(text or '').lower()


def mail_directory_entries(accounts, existing=None, bodies=None):
    """The published mailboxes (see DOCUMENTATION)."""
    if not isinstance(accounts, Mapping):
        raise AnsibleFilterError('mail_directory_entries: expected the accounts model as a dict')
    accounts = _without_passwords(_accounts._plain(accounts))
    bodies = dict(COMMUNE_BODIES, **_accounts._plain(bodies or {}))
    rendered = _accounts.mail_accounts_render(accounts, existing=existing)

    # The organisation mailboxes' display names: communes' bodies are named after the body.
    names, communal = {}, set()
    for _label, local, org, _parent in _accounts._organizations(accounts):
        if org.get('commune'):
            communal.add(local)  # a commune's Party committee is no unit of its People's Committee
            prefix = '' if local == _address.mail_place_localpart(org['commune']) else local.split('.')[0]
            names[local] = ('%s %s' % (bodies.get(prefix, prefix), org['commune'].strip())).strip()
        elif local not in names:
            names[local] = None  # the rendered name, below
    by_local = {}
    for row in rendered['mailboxes']:
        local = row['address'].split('@')[0]
        if row['kind'] == 'organization':
            names[local] = names.get(local) or row['name']
        by_local[local] = row

    entries = []
    for row in rendered['mailboxes']:
        if row['state'] != 'active':
            continue
        local = row['address'].split('@')[0]
        if row['kind'] == 'organization':
            name = names[local]
            words = name.split()
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
        raise AnsibleFilterError('mail_directory_ldap: the suffix must be a DN such as dc=bacgiang,dc=gov,dc=vn')
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
    for reader in _accounts._plain(readers or []):
        if not reader.get('name') or not reader.get('password'):
            raise AnsibleFilterError('mail_directory_ldap: every reader needs a name and a password')
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


class FilterModule:
    """The published directory."""

    def filters(self):
        return {
            'mail_directory_entries': mail_directory_entries,
            'mail_directory_ldap': mail_directory_ldap,
            'mail_directory_csv': mail_directory_csv,
            'mail_directory_json': mail_directory_json,
            'mail_directory_vcard': mail_directory_vcard,
        }
