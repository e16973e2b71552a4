"""congvu-migrate: copy mailboxes from the province's old IMAP server into its
Dovecot, and report what arrived (role migrate, playbooks/migrate.yml).

    congvu-migrate [--job /etc/congvu-mail/migrate.json] [--report FILE] [--json]

Runs on the mailstore host, as root. The job (JSON, written by the role, mode
0600) names the source server, how to log in there (a master login, or each
mailbox's own password), the mailboxes (source login -> target address), the
folder renames and how many mailboxes are copied at once.

For each mailbox, in order:

  1. the source is read over IMAP (folders, and per message its size, flags and
     Message-ID, or a hash of its headers when it has none); a login refused is
     that mailbox's failure and the others go on;
  2. the target's quota is checked: a mailbox whose missing messages do not fit
     is reported and not copied at all;
  3. Dovecot's dsync copies it one way, incrementally, over imapc:
     `doveadm -c CONF sync -1 -R -u TARGET imapc:`, where CONF is a temporary
     0600 file that includes the server's dovecot.conf and adds the imapc
     settings, the password among them (never in a command line, never logged);
  4. source folders that are renamed (Zimbra's, Exchange's and Dovecot's
     usual names, "Sent Items" -> Sent) are left out of dsync (it cannot
     rename) and their messages that the target folder lacks are appended to
     it with their flags and internal dates, through `doveadm exec imap`;
  5. the target is read again (doveadm fetch) and compared with the source,
     folder by folder: counts, sizes, missing messages, flags.

The report (JSON, and a table on stdout) says per mailbox what was copied and
what is missing; the exit status is 1 while anything is missing, failed or did
not fit, 0 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import imaplib
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import tempfile
import time

from ..migrate import (KEY_HEADERS, SYSTEM_FLAGS, compare, folder_map, mailbox_status, message_key,
                       mutf7_decode, mutf7_encode, summary, target_folder, text_report)

DEFAULT_JOB = '/etc/congvu-mail/migrate.json'


class MigrationError(Exception):
    """One mailbox could not be migrated (the message says why, never a password)."""


# --- The source, over IMAP -----------------------------------------------------

LIST_LINE = re.compile(rb'\((?P<flags>[^)]*)\) (?P<sep>"[^"]*"|NIL) (?P<name>.*)$')


def _unquote(value):
    value = value.strip()
    if value.startswith(b'"') and value.endswith(b'"'):
        return value[1:-1].replace(b'\\"', b'"').replace(b'\\\\', b'\\')
    return value


def connect(source, login, password, master=None):
    """An IMAP session on the source, logged in as `login` (through the master
    login `master` when given). The password never leaves this function."""
    context = ssl.create_default_context(cafile=source.get('ca_file') or None)
    host, port = source['host'], int(source.get('port', 993))
    timeout = source.get('timeout', 60)
    try:
        if source.get('tls', 'imaps') == 'imaps':
            client = imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=timeout)
        else:
            client = imaplib.IMAP4(host, port, timeout=timeout)
            if source.get('tls') == 'starttls':
                client.starttls(ssl_context=context)
    except (OSError, imaplib.IMAP4.error) as error:
        raise MigrationError('cannot reach the source %s:%s: %s' % (host, port, error)) from None
    try:
        if master:
            secret = '%s\0%s\0%s' % (login, master, password)
            client.authenticate('PLAIN', lambda _challenge: secret.encode('utf-8'))
        else:
            client.login(login, password)
    except imaplib.IMAP4.error:
        raise MigrationError('the source refused the login of %s' % login) from None
    return client


def source_folders(client):
    """[(folder's Unicode name, its IMAP name, separator)], without \\Noselect ones."""
    status, lines = client.list()
    if status != 'OK':
        raise MigrationError('the source does not list the folders')
    folders = []
    for line in lines:
        if isinstance(line, tuple):  # a name sent as a literal
            head, name = line[0], line[1]
            match = LIST_LINE.match(head.rsplit(b' ', 1)[0] + b' x')
        else:
            match = LIST_LINE.match(line)
            name = _unquote(match.group('name')) if match else None
        if not match or b'\\noselect' in match.group('flags').lower():
            continue
        sep = match.group('sep')
        separator = '' if sep == b'NIL' else _unquote(sep).decode('ascii')
        imap_name = name.decode('ascii')
        folders.append((mutf7_decode(imap_name), imap_name, separator))
    return folders


FETCH_ITEM = re.compile(rb'RFC822\.SIZE (\d+)|FLAGS \(([^)]*)\)|UID (\d+)|INTERNALDATE ("[^"]*")')


def read_folder(client, imap_name):
    """Every message of one source folder: key, size, system flags."""
    quoted = '"%s"' % imap_name.replace('\\', '\\\\').replace('"', '\\"')
    status, data = client.select(quoted, readonly=True)
    if status != 'OK':
        raise MigrationError('the source does not open folder %s' % mutf7_decode(imap_name))
    if int(data[0] or 0) == 0:
        return []
    status, data = client.uid(
        'FETCH', '1:*', '(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)])')
    if status != 'OK':
        raise MigrationError('the source does not read folder %s' % mutf7_decode(imap_name))
    messages = []
    for item in data:
        # (b'1 (RFC822.SIZE n FLAGS (...) BODY[...] {n}', headers), then b')' or
        # b' FLAGS (...))' when the server sends an item after the literal.
        if isinstance(item, tuple):
            messages.append({'key': message_key(raw_headers(item[1])), 'size': 0, 'flags': []})
            _fetch_items(item[0], messages[-1])
        elif messages and item:
            _fetch_items(item, messages[-1])
    return messages


def raw_headers(data):
    """Header name (lower case) -> its raw value, unfolded, as the bytes came
    (UTF-8, or kept as they are): the same text doveadm shows on the target."""
    headers = {}
    for line in re.split(r'\r?\n(?![ \t])', data.decode('utf-8', 'surrogateescape')):
        name, colon, value = line.partition(':')
        if colon and name.strip():
            headers.setdefault(name.strip().lower(), value.strip())
    return headers


def _fetch_items(data, message):
    for match in FETCH_ITEM.finditer(data):
        if match.group(1):
            message['size'] = int(match.group(1))
        elif match.group(3):
            message['uid'] = match.group(3).decode('ascii')
        elif match.group(4):
            message['date'] = match.group(4).decode('ascii')
        else:
            message['flags'] = sorted(flag for flag in match.group(2).decode('ascii').split()
                                      if flag in SYSTEM_FLAGS)


def read_source(source, login, password, master, renames, target_separator='/'):
    """The source mailbox: {target folder: [messages]} of the folders dsync
    copies under their own name, and [(IMAP name, name here, target folder,
    [messages])] of the renamed ones."""
    client = connect(source, login, password, master)
    try:
        folders, renamed = {}, []
        for name, imap_name, separator in source_folders(client):
            target = target_folder(name, separator, renames, target_separator)
            messages = read_folder(client, imap_name)
            local_name = name.replace(separator, target_separator) if separator else name
            if target != local_name and name.upper() != 'INBOX':
                renamed.append((imap_name, local_name, target, messages))
            else:
                folders.setdefault(target, []).extend(messages)
        return folders, renamed
    finally:
        _logout(client)


def _logout(client):
    try:
        client.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


def _quoted(name):
    return '"%s"' % name.replace('\\', '\\\\').replace('"', '\\"')


def copy_renamed(job, login, password, master, target, renamed, native, after_sync):
    """The renamed folders' messages that the target folder lacks, appended to
    it with their flags and internal dates (dsync cannot rename): the source
    over IMAP, the target through `doveadm exec imap` (preauthenticated, on a
    pipe). A message is there already when the target folder holds one more of
    its key than the folder of the same name on the source accounts for.
    What is appended is added to `after_sync`, which is then the target as it is."""
    plan = []
    for folder in sorted({entry[2] for entry in renamed}):
        available = (collections.Counter(message['key'] for message in after_sync.get(folder, []))
                     - collections.Counter(message['key'] for message in native.get(folder, [])))
        for imap_name, _local, goal, messages in renamed:
            if goal != folder:
                continue
            wanted = {}
            for message in messages:
                if available[message['key']] > 0:
                    available[message['key']] -= 1
                else:
                    wanted[message['uid']] = message
            if wanted:
                plan.append((imap_name, folder, wanted))
    if not plan:
        return
    source = connect(job['source'], login, password, master)
    command = ' '.join(shlex.quote(part) for part in doveadm_command(job) + ['exec', 'imap', '-u', target])
    destination = imaplib.IMAP4_stream(command)
    try:
        for imap_name, folder, wanted in plan:
            destination.create(_quoted(mutf7_encode(folder)))  # NO when it exists: fine
            source.select(_quoted(imap_name), readonly=True)
            uids = list(wanted)
            for start in range(0, len(uids), 50):
                status, data = source.uid('FETCH', ','.join(uids[start:start + 50]), '(UID FLAGS INTERNALDATE BODY.PEEK[])')
                if status != 'OK':
                    raise MigrationError('the source does not read folder %s' % mutf7_decode(imap_name))
                messages = []
                for item in data:
                    if isinstance(item, tuple):
                        messages.append({'body': item[1], 'flags': [], 'date': None, 'uid': None})
                        _fetch_items(item[0], messages[-1])
                    elif messages and item:
                        _fetch_items(item, messages[-1])
                for message in messages:
                    flags = '(%s)' % ' '.join(message['flags']) if message['flags'] else None
                    status, answer = destination.append(_quoted(mutf7_encode(folder)), flags, message['date'],
                                                        message['body'])
                    if status != 'OK':
                        raise MigrationError('the target refused a message in %s: %s' % (folder, answer))
                    known = wanted.get(message['uid'], {})
                    after_sync.setdefault(folder, []).append(
                        {'key': known.get('key'), 'size': known.get('size', len(message['body'])),
                         'flags': message['flags']})
    finally:
        _logout(source)
        _logout(destination)


# --- The target, through doveadm ---------------------------------------------

def doveadm(job, *args, config=None, check=True):
    """doveadm with these arguments (and the job's `dovecot_config`, when it
    names another configuration than the server's); its output. Errors name
    the command, not the settings."""
    command = doveadm_command(job, config)
    command += list(args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=job.get('timeout', 3600))
    if check and result.returncode != 0:
        raise MigrationError('doveadm %s failed (%d): %s' % (
            args[0] if args[0] != '-f' else args[2], result.returncode, _last_line(result.stderr)))
    return result


def doveadm_command(job, config=None):
    command = [job.get('doveadm', 'doveadm')]
    config = config or job.get('dovecot_config')
    if config:
        command += ['-c', config]
    return command


def _last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ''


def read_target(job, target):
    """The target mailbox: {folder: [messages]} (doveadm fetch, JSON)."""
    fields = 'mailbox size.virtual flags ' + ' '.join('hdr.' + name for name in ('message-id',) + KEY_HEADERS)
    result = doveadm(job, '-f', 'json', 'fetch', '-u', target, fields, 'all')
    folders = {}
    for row in json.loads(result.stdout or '[]'):
        headers = {name: row.get('hdr.' + name, '') for name in ('message-id',) + KEY_HEADERS}
        flags = [flag for flag in row.get('flags', '').split() if flag in SYSTEM_FLAGS]
        folders.setdefault(row['mailbox'], []).append(
            {'key': message_key(headers), 'size': int(row.get('size.virtual') or 0), 'flags': sorted(flags)})
    return folders


def quota_room(job, target):
    """Bytes the target may still take (None: no limit)."""
    result = doveadm(job, '-f', 'json', 'quota', 'get', '-u', target)
    for row in json.loads(result.stdout or '[]'):
        if row.get('type') == 'STORAGE' and row.get('limit') not in (None, '', '-'):
            return (int(row['limit']) - int(row.get('value') or 0)) * 1024
    return None


def imapc_config(job, login, password, master=None):
    """A temporary 0600 configuration: the server's, plus the imapc settings of
    one source mailbox (the password is only ever in this file)."""
    source = job['source']
    lines = ['!include %s' % job.get('dovecot_config', '/etc/dovecot/dovecot.conf'),
             'imapc_host = %s' % source['host'],
             'imapc_port = %s' % source.get('port', 993),
             'imapc_ssl = %s' % {'imaps': 'imaps', 'starttls': 'starttls'}.get(source.get('tls', 'imaps'), 'no'),
             'imapc_features = rfc822.size fetch-headers guid-forced',
             'imapc_user = %s' % login,
             'imapc_password = %s' % password,
             'mail_prefetch_count = 20']
    if master:
        lines.append('imapc_master_user = %s' % master)
    if source.get('ca_file'):
        lines.append('ssl_client_ca_file = %s' % source['ca_file'])
    handle, path = tempfile.mkstemp(prefix='imapc-', suffix='.conf', dir=job.get('work_dir'))
    with os.fdopen(handle, 'w', encoding='utf-8') as out:  # mkstemp: mode 0600
        out.write('\n'.join(lines) + '\n')
    return path


def migrate_mailbox(job, entry, renames):
    """One mailbox: read, check the quota, copy, rename, verify. Never raises."""
    login, target = entry['source'], entry['target']
    # A mailbox with its own password logs in as itself, the others through the master login.
    password = entry.get('password') or job['source'].get('master_password', '')
    master = None if entry.get('password') else job['source'].get('master_user')
    result = {'source': login, 'target': target, 'copied_messages': 0, 'folders': []}
    started = time.monotonic()
    try:
        source, renamed = read_source(job['source'], login, password, master, renames, job.get('separator', '/'))
        before = read_target(job, target)
        have = collections.Counter(message['key'] for messages in before.values() for message in messages)
        needed = 0
        for messages in list(source.values()) + [entry[3] for entry in renamed]:
            for message in messages:
                if have[message['key']] > 0:
                    have[message['key']] -= 1
                else:
                    needed += message['size']
        room = quota_room(job, target)
        result['needed_bytes'] = needed
        if room is not None and needed > room:
            result.update(status='over-quota', error='%d bytes to copy, the quota leaves %d: nothing copied '
                                                      '(raise quota_mb of the person, then run again)' % (needed, room))
            return result
        excluded = []
        for _imap, local_name, _goal, _messages in renamed:
            excluded += ['-x', local_name]
        config = imapc_config(job, login, password, master)
        try:
            doveadm(job, 'sync', '-1', '-R', *excluded, '-u', target, 'imapc:', config=config)
        finally:
            os.unlink(config)
        after = read_target(job, target)
        if renamed:
            copy_renamed(job, login, password, master, target, renamed, source, after)
            for _imap, _local, goal, messages in renamed:
                source.setdefault(goal, []).extend(messages)
        result['copied_messages'] = (sum(len(messages) for messages in after.values())
                                     - sum(len(messages) for messages in before.values()))
        result['folders'] = compare(source, after)
    except MigrationError as error:
        result.update(status=result.get('status', 'failed'), error=str(error))
    except Exception as error:  # noqa: BLE001 - one mailbox failing never stops the others
        result.update(status='failed', error='%s: %s' % (type(error).__name__, error))
    result['seconds'] = round(time.monotonic() - started, 2)
    result['status'] = mailbox_status(result)
    return result


def run(job):
    """The whole job: every mailbox (`parallel` at a time), then the report."""
    renames = folder_map(job.get('folders'))
    mailboxes = job.get('mailboxes', [])
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(job.get('parallel', 2)))) as pool:
        results = list(pool.map(lambda entry: migrate_mailbox(job, entry, renames), mailboxes))
    report = {
        'source': '%s:%s' % (job['source']['host'], job['source'].get('port', 993)),
        'finished': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'seconds': round(time.monotonic() - started, 2),
        'mailboxes': results,
        'unmapped': sorted(set(job.get('source_mailboxes', [])) - {entry['source'] for entry in mailboxes}),
    }
    report['summary'] = summary(report)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog='congvu-migrate', description=__doc__.split('\n')[0])
    parser.add_argument('--job', default=DEFAULT_JOB)
    parser.add_argument('--report', help='save the report (JSON) here; default: the job\'s `report`')
    parser.add_argument('--json', action='store_true', help='print {"report": ..., "text": ...}')
    args = parser.parse_args(argv)
    with open(args.job, encoding='utf-8') as handle:
        job = json.load(handle)
    report = run(job)
    path = args.report or job.get('report')
    if path:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        with os.fdopen(handle, 'w', encoding='utf-8') as out:
            json.dump(report, out, indent=2, sort_keys=True, ensure_ascii=False)
            out.write('\n')
    text = text_report(report)
    if args.json:
        json.dump({'report': report, 'text': text}, sys.stdout, ensure_ascii=False)
        sys.stdout.write('\n')
    else:
        print(text)
    return 1 if report['summary']['problems'] else 0


if __name__ == '__main__':
    sys.exit(main())
