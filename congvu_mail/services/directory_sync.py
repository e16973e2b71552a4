"""congvu-directory-sync: bring the directory's entries in step with the
rendered state, in one run (role directory).

Reads the desired entries on stdin, as JSON: {"suffix": DN, "entries": [{"dn":
DN, "attributes": {name: [values]}}]} (the filter mail_directory_ldap). Reads
what slapd holds below the suffix (as root, over ldapi:/// with SASL
EXTERNAL), then sends ldapmodify only the differences: new entries, changed
attributes, entries no longer wanted. Prints {"added": n, "modified": n,
"deleted": n}; all zero when nothing differed.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys

LDAPI = ['-H', 'ldapi:///', '-Y', 'EXTERNAL', '-Q']
# Operational attributes slapd keeps itself: never compared.
IGNORED = {'structuralobjectclass', 'entryuuid', 'creatorsname', 'createtimestamp',
           'modifiersname', 'modifytimestamp', 'entrycsn', 'subschemasubentry', 'hassubordinates'}


def norm_dn(dn):
    return ','.join(part.strip() for part in dn.split(',')).lower()


def parse(ldif):
    """{normalised dn: (dn, {attribute lower: (attribute, [values])})} of
    ldapsearch's unwrapped LDIF (-o ldif-wrap=no)."""
    entries = {}
    for block in ldif.strip().split('\n\n'):
        if not block.strip():
            continue
        dn, attributes = None, {}
        for text in block.splitlines():
            name, _sep, value = text.partition(':')
            if value.startswith(':'):
                value = base64.b64decode(value[1:].strip()).decode('utf-8')
            else:
                value = value.strip()
            if name == 'dn':
                dn = value
            elif name.lower() not in IGNORED:
                attributes.setdefault(name.lower(), (name, []))[1].append(value)
        entries[norm_dn(dn)] = (dn, attributes)
    return entries


def current(suffix):
    """What slapd holds below suffix (see parse)."""
    result = subprocess.run(['ldapsearch', *LDAPI, '-LLL', '-o', 'ldif-wrap=no', '-b', suffix,
                             '(objectClass=*)', '*'], capture_output=True, text=True)
    if result.returncode == 32:  # no such object: an empty database
        return {}
    if result.returncode != 0:
        sys.exit('ldapsearch: %s' % result.stderr.strip())
    return parse(result.stdout)


def line(name, value):
    """One LDIF line; base64 where LDIF needs it (UTF-8, leading space or colon)."""
    if value.isascii() and value.isprintable() and not value.startswith((' ', ':', '<')) \
            and not value.endswith(' '):
        return '%s: %s' % (name, value)
    return '%s:: %s' % (name, base64.b64encode(value.encode('utf-8')).decode('ascii'))


def depth(dn):
    return dn.count(',')


def changes(desired, have):
    """(LDIF change records, counts) that turn `have` (see parse) into `desired`."""
    want = {}
    for entry in desired['entries']:
        attributes = {name.lower(): (name, [str(v) for v in values])
                      for name, values in entry['attributes'].items() if values}
        want[norm_dn(entry['dn'])] = (entry['dn'], attributes)

    records, counts = [], {'added': 0, 'modified': 0, 'deleted': 0}
    # Parents before children when adding; children before parents when deleting.
    for key in sorted(want, key=lambda k: (depth(k), k)):
        dn, attributes = want[key]
        if key not in have:
            records.append('\n'.join([line('dn', dn), 'changetype: add']
                                     + [line(name, v) for name, values in sorted(attributes.values())
                                        for v in values]))
            counts['added'] += 1
            continue
        old = have[key][1]
        mods = []
        for lower in sorted(set(attributes) | set(old)):
            new_values = attributes.get(lower, (None, []))[1]
            old_values = old.get(lower, (None, []))[1]
            if sorted(new_values) == sorted(old_values):
                continue
            name = (attributes.get(lower) or old.get(lower))[0]
            if new_values:
                mods.append('\n'.join(['replace: ' + name] + [line(name, v) for v in new_values] + ['-']))
            else:
                mods.append('delete: %s\n-' % name)
        if mods:
            records.append('\n'.join([line('dn', dn), 'changetype: modify'] + mods))
            counts['modified'] += 1
    for key in sorted(set(have) - set(want), key=lambda k: (-depth(k), k)):
        records.append('\n'.join([line('dn', have[key][0]), 'changetype: delete']))
        counts['deleted'] += 1
    return records, counts


def main():
    desired = json.load(sys.stdin)
    records, counts = changes(desired, current(desired['suffix']))
    if records:
        result = subprocess.run(['ldapmodify', *LDAPI], input='\n\n'.join(records) + '\n',
                                capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit('ldapmodify: %s' % result.stderr.strip())
    json.dump(counts, sys.stdout)
