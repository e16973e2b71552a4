"""The migration's rules that need no server (congvu-migrate, the service in
congvu_mail.services.migrate, applies them): IMAP's modified UTF-7 folder
names, the folder renames of the servers a province leaves, a message's
identity on both sides, the verification of one mailbox and the report."""

from __future__ import annotations

import base64
import collections
import hashlib

from .plain import plain as _plain

# The usual names of the special folders on the servers a province leaves
# (Exchange, Zimbra, Dovecot/Courier, Vietnamese-localised clients), matched
# without regard to letter case. A job's own `folders` entries come first.
DEFAULT_FOLDERS = {
    'sent items': 'Sent',
    'sent messages': 'Sent',
    'sent mail': 'Sent',
    'thư đã gửi': 'Sent',
    'đã gửi': 'Sent',
    'deleted items': 'Trash',
    'deleted messages': 'Trash',
    'thùng rác': 'Trash',
    'junk e-mail': 'Junk',
    'junk email': 'Junk',
    'spam': 'Junk',
    'thư rác': 'Junk',
    'bulk mail': 'Junk',
    'thư nháp': 'Drafts',
    'bản nháp': 'Drafts',
}

SYSTEM_FLAGS = ('\\Answered', '\\Deleted', '\\Draft', '\\Flagged', '\\Seen')
KEY_HEADERS = ('date', 'from', 'to', 'subject')


# --- Modified UTF-7 (RFC 3501, 5.1.3): IMAP's folder names -------------------

def mutf7_decode(name):
    """An IMAP folder name as Unicode: "Th&AbA-" ... "&-" is "&"."""
    out, i = [], 0
    while i < len(name):
        char = name[i]
        if char != '&':
            out.append(char)
            i += 1
            continue
        end = name.index('-', i + 1)
        chunk = name[i + 1:end]
        if not chunk:
            out.append('&')
        else:
            raw = chunk.replace(',', '/')
            raw += '=' * (-len(raw) % 4)
            out.append(base64.b64decode(raw).decode('utf-16-be'))
        i = end + 1
    return ''.join(out)


def mutf7_encode(name):
    """A Unicode folder name in IMAP's modified UTF-7."""
    out, pending = [], []

    def flush():
        if pending:
            data = ''.join(pending).encode('utf-16-be')
            out.append('&' + base64.b64encode(data).decode('ascii').rstrip('=').replace('/', ',') + '-')
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7e:
            flush()
            out.append('&-' if char == '&' else char)
        else:
            pending.append(char)
    flush()
    return ''.join(out)


# --- Folders and keys (pure) ---------------------------------------------------

def folder_map(job_folders=None):
    """The renames in force: the job's entries, then the built-in ones, keys in lower case."""
    renames = dict(DEFAULT_FOLDERS)
    renames.update({name.lower(): target for name, target in (job_folders or {}).items()})
    return renames


def target_folder(source_name, source_separator, renames, target_separator='/'):
    """The target folder of a source folder (its Unicode name): INBOX stays INBOX,
    a renamed name takes its target, the hierarchy takes the target's separator."""
    if source_name.upper() == 'INBOX':
        return 'INBOX'
    if source_name.lower() in renames:
        return renames[source_name.lower()]
    if source_separator and source_separator != target_separator:
        return source_name.replace(source_separator, target_separator)
    return source_name


def _squash(value):
    return ' '.join(str(value or '').split())


def message_key(headers):
    """A message's identity on both sides: its Message-ID, or, when it has none,
    a hash of its Date, From, To and Subject headers (whitespace folded)."""
    message_id = _squash(headers.get('message-id'))
    if message_id:
        return message_id
    text = '\n'.join(_squash(headers.get(name)) for name in KEY_HEADERS)
    return 'hdr:' + hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:24]


def compare(source_folders, target_folders):
    """The verification of one mailbox: per target folder, what the source has
    (all the source folders mapped to it together) and what the target has.

    Each side maps folder -> list of {key, size, flags}. Returns the folders'
    rows, sorted by name: counts and bytes of both sides, the keys missing on
    the target, and the number of messages whose flags differ."""
    rows = []
    for folder in sorted(source_folders):
        source = source_folders[folder]
        target = target_folders.get(folder, [])
        have = collections.Counter(message['key'] for message in target)
        flags = {}
        for message in target:
            flags.setdefault(message['key'], set()).add(frozenset(message['flags']))
        missing, flag_mismatches = [], 0
        for message in source:
            if have[message['key']] > 0:
                have[message['key']] -= 1
                if frozenset(message['flags']) not in flags[message['key']]:
                    flag_mismatches += 1
            else:
                missing.append(message['key'])
        rows.append({
            'folder': folder,
            'source_messages': len(source),
            'source_bytes': sum(message['size'] for message in source),
            'target_messages': len(target),
            'target_bytes': sum(message['size'] for message in target),
            'missing': sorted(missing),
            'flag_mismatches': flag_mismatches,
        })
    return rows


def mailbox_status(entry):
    """ok, or what is wrong with a mailbox's result."""
    if entry.get('error'):
        return entry.get('status', 'failed')
    if any(row['missing'] for row in entry.get('folders', [])):
        return 'missing'
    if any(row['flag_mismatches'] for row in entry.get('folders', [])):
        return 'flags-differ'
    return 'ok'


def summary(report):
    """The report's totals; `problems` (mailboxes not complete, and source
    mailboxes left out of the map) is what keeps the exit status non-zero."""
    mailboxes = report['mailboxes']
    return {
        'mailboxes': len(mailboxes),
        'ok': sum(1 for entry in mailboxes if entry['status'] == 'ok'),
        'copied_messages': sum(entry.get('copied_messages', 0) for entry in mailboxes),
        'missing_messages': sum(len(row['missing']) for entry in mailboxes for row in entry.get('folders', [])),
        'unmapped': len(report.get('unmapped', [])),
        'problems': sum(1 for entry in mailboxes if entry['status'] != 'ok') + len(report.get('unmapped', [])),
    }


def text_report(report):
    """The report as a table."""
    lines = ['Migration from %s: %d mailbox(es), %d message(s) copied, %d missing, %d problem(s)' % (
        report['source'], report['summary']['mailboxes'], report['summary']['copied_messages'],
        report['summary']['missing_messages'], report['summary']['problems'])]
    header = ('%-34s %-28s %-12s %8s %8s %12s %12s %7s' % (
        'source login / folder', 'target', 'status', 'src msgs', 'dst msgs', 'src bytes', 'dst bytes', 'missing'))
    lines += ['', header, '-' * len(header)]
    for entry in report['mailboxes']:
        rows = entry.get('folders', [])
        lines.append('%-34s %-28s %-12s %8s %8s %12s %12s %7s' % (
            entry['source'], entry['target'], entry['status'],
            sum(row['source_messages'] for row in rows), sum(row['target_messages'] for row in rows),
            sum(row['source_bytes'] for row in rows), sum(row['target_bytes'] for row in rows),
            sum(len(row['missing']) for row in rows)))
        if entry.get('error'):
            lines.append('    ! %s' % entry['error'])
        for row in rows:
            lines.append('  %-32s %-28s %-12s %8d %8d %12d %12d %7d' % (
                row['folder'], '', 'flags≠%d' % row['flag_mismatches'] if row['flag_mismatches'] else '',
                row['source_messages'], row['target_messages'], row['source_bytes'], row['target_bytes'],
                len(row['missing'])))
            for key in row['missing'][:5]:
                lines.append('      missing %s' % key)
    for login in report.get('unmapped', []):
        lines.append('%-34s %-28s %-12s' % (login, '-', 'unmapped'))
    return '\n'.join(lines)




# --- The inventory's migration map (controller) --------------------------------

def _label(index, record):
    if isinstance(record, dict) and record.get('source'):
        return str(record['source'])
    return '#%d' % (index + 1)


def migration_errors(source, mailboxes, people):
    """Every problem of the migration map, one line each, as the inventory check
    words them (`list · record · field · rule · what to do`); never a password.

    `source` is migrate_source, `mailboxes` migrate_mailboxes, `people`
    accounts_people (only their `id` and `state` are read)."""
    source, mailboxes, people = _plain(source), _plain(mailboxes), _plain(people)
    problems = []

    def add(record, field, rule, todo, where='migrate_mailboxes'):
        problems.append('%s · %s · %s · %s · %s' % (where, record, field, rule, todo))

    source = source if isinstance(source, dict) else {}
    mailboxes = mailboxes or []
    if not isinstance(mailboxes, list):
        add('-', '-', 'is not a list', 'give a list of {source, person} records')
        return problems
    if mailboxes and not str(source.get('host') or '').strip():
        add('-', 'host', 'the source server has no host name', 'set migrate_source.host', where='migrate_source')
    if str(source.get('tls', 'imaps')) not in ('imaps', 'starttls'):
        add('-', 'tls', 'must be imaps or starttls (no password crosses the network before TLS)',
            'set migrate_source.tls', where='migrate_source')
    if source.get('master_user') and not source.get('master_password'):
        add('-', 'master_password', 'the master login has no password',
            'set migrate_source.master_password in the vault', where='migrate_source')
    known = {str(person.get('id')): person for person in people or [] if isinstance(person, dict)}
    seen = {}
    for index, record in enumerate(mailboxes):
        label = _label(index, record)
        if not isinstance(record, dict):
            add(label, '-', 'is not a record', 'write it as {source: LOGIN, person: ID}')
            continue
        unknown = sorted(set(record) - {'source', 'person', 'password'})
        if unknown:
            add(label, ', '.join(unknown), 'unknown field', 'use source, person and password only')
        login = str(record.get('source') or '').strip()
        if not login:
            add(label, 'source', 'no source login', 'give the mailbox\'s login on the old server')
        elif login in seen:
            add(label, 'source', 'mapped twice (also record %s)' % seen[login], 'map each source mailbox once')
        else:
            seen[login] = index + 1
        person = record.get('person')
        if person is None or str(person).strip() == '':
            add(label, 'person', 'no target person', 'give the id of a person of accounts_people')
        elif str(person) not in known:
            add(label, 'person', 'person %s is not in accounts_people' % person,
                'add the person to the accounts first, or correct the id')
        elif (known[str(person)].get('state') or 'active') == 'terminated':
            add(label, 'person', 'person %s is terminated' % person, 'map the mail to an active account')
        if not source.get('master_user') and not record.get('password'):
            add(label, 'password', 'no password and no master login',
                'set migrate_source.master_user, or this mailbox\'s password in the vault')
    return problems


def migration_job(source, mailboxes, addresses, folders=None, parallel=2, source_mailboxes=None,
                  work_dir='/var/lib/congvu-migrate'):
    """The job congvu-migrate reads: the checked map, each person id replaced by
    the address the database issued (`addresses`: account id -> address)."""
    source, mailboxes, addresses = dict(_plain(source) or {}), _plain(mailboxes), _plain(addresses)
    folders, source_mailboxes = _plain(folders), _plain(source_mailboxes)
    return {
        'source': {key: source.get(key) for key in ('host', 'port', 'tls', 'ca_file', 'master_user',
                                                    'master_password') if source.get(key) not in (None, '')},
        'mailboxes': [dict({'source': str(record['source']), 'target': addresses[str(record['person'])]},
                           **({'password': record['password']} if record.get('password') else {}))
                      for record in mailboxes or []],
        'folders': dict(folders or {}),
        'parallel': int(parallel),
        'source_mailboxes': sorted(str(login) for login in source_mailboxes or []),
        'work_dir': work_dir,
        'report': work_dir + '/report.json',
    }
