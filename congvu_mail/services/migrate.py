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
     usual names, "Sent Items" -> Sent) have their messages moved into the
     target folder (`doveadm move`);
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
import email.parser
import imaplib
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time

from ..migrate import (KEY_HEADERS, SYSTEM_FLAGS, compare, folder_map, mailbox_status, message_key,
                       mutf7_decode, summary, target_folder, text_report)

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


def connect(source, login, password):
    """An IMAP session on the source, logged in as `login` (through the master
    login when the job has one). The password never leaves this function."""
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
        if source.get('master_user'):
            secret = '%s\0%s\0%s' % (login, source['master_user'], password)
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


FETCH_ITEM = re.compile(rb'RFC822\.SIZE (\d+)|FLAGS \(([^)]*)\)')


def read_folder(client, imap_name):
    """Every message of one source folder: key, size, system flags."""
    quoted = '"%s"' % imap_name.replace('\\', '\\\\').replace('"', '\\"')
    status, data = client.select(quoted, readonly=True)
    if status != 'OK':
        raise MigrationError('the source does not open folder %s' % mutf7_decode(imap_name))
    if int(data[0] or 0) == 0:
        return []
    status, data = client.fetch(
        '1:*', '(RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM TO SUBJECT)])')
    if status != 'OK':
        raise MigrationError('the source does not read folder %s' % mutf7_decode(imap_name))
    parser = email.parser.BytesHeaderParser()
    messages = []
    for item in data:
        # (b'1 (RFC822.SIZE n FLAGS (...) BODY[...] {n}', headers), then b')' or
        # b' FLAGS (...))' when the server sends an item after the literal.
        if isinstance(item, tuple):
            headers = parser.parsebytes(item[1])
            messages.append({'key': message_key({name: headers.get(name, '')
                                                 for name in ('message-id',) + KEY_HEADERS}),
                             'size': 0, 'flags': []})
            _fetch_items(item[0], messages[-1])
        elif messages and item:
            _fetch_items(item, messages[-1])
    return messages


def _fetch_items(data, message):
    for match in FETCH_ITEM.finditer(data):
        if match.group(1):
            message['size'] = int(match.group(1))
        else:
            message['flags'] = sorted(flag for flag in match.group(2).decode('ascii').split()
                                      if flag in SYSTEM_FLAGS)


def read_source(source, login, password, renames, target_separator='/'):
    """The source mailbox: {target folder: [messages]}, and the source folders that are renamed."""
    client = connect(source, login, password)
    try:
        folders, renamed = {}, []
        for name, imap_name, separator in source_folders(client):
            target = target_folder(name, separator, renames, target_separator)
            folders.setdefault(target, []).extend(read_folder(client, imap_name))
            local_name = name.replace(separator, target_separator) if separator else name
            if target != local_name and name.upper() != 'INBOX':
                renamed.append((local_name, target))
        return folders, renamed
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


# --- The target, through doveadm ---------------------------------------------

def doveadm(job, *args, config=None, check=True):
    """doveadm with these arguments; its output. Errors name the command, not the settings."""
    command = [job.get('doveadm', 'doveadm')]
    if config:
        command += ['-c', config]
    command += list(args)
    result = subprocess.run(command, capture_output=True, text=True, timeout=job.get('timeout', 3600))
    if check and result.returncode != 0:
        raise MigrationError('doveadm %s failed (%d): %s' % (
            args[0] if args[0] != '-f' else args[2], result.returncode, _last_line(result.stderr)))
    return result


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


def imapc_config(job, login, password):
    """A temporary 0600 configuration: the server's, plus the imapc settings of
    one source mailbox (the password is only ever in this file)."""
    source = job['source']
    lines = ['!include %s' % job.get('dovecot_config', '/etc/dovecot/dovecot.conf'),
             'imapc_host = %s' % source['host'],
             'imapc_port = %s' % source.get('port', 993),
             'imapc_ssl = %s' % {'imaps': 'imaps', 'starttls': 'starttls'}.get(source.get('tls', 'imaps'), 'no'),
             'imapc_features = rfc822.size fetch-headers',
             'imapc_user = %s' % login,
             'imapc_password = %s' % password,
             'mail_prefetch_count = 20']
    if source.get('master_user'):
        lines.append('imapc_master_user = %s' % source['master_user'])
    if source.get('ca_file'):
        lines.append('ssl_client_ca_file = %s' % source['ca_file'])
    handle, path = tempfile.mkstemp(prefix='imapc-', suffix='.conf', dir=job.get('work_dir'))
    with os.fdopen(handle, 'w', encoding='utf-8') as out:  # mkstemp: mode 0600
        out.write('\n'.join(lines) + '\n')
    return path


def migrate_mailbox(job, entry, renames):
    """One mailbox: read, check the quota, copy, rename, verify. Never raises."""
    login, target = entry['source'], entry['target']
    password = entry.get('password') or job['source'].get('master_password', '')
    result = {'source': login, 'target': target, 'copied_messages': 0, 'folders': []}
    started = time.monotonic()
    try:
        source, renamed = read_source(job['source'], login, password, renames, job.get('separator', '/'))
        before = read_target(job, target)
        have = collections.Counter(message['key'] for messages in before.values() for message in messages)
        needed = 0
        for messages in source.values():
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
        config = imapc_config(job, login, password)
        try:
            doveadm(job, 'sync', '-1', '-R', '-u', target, 'imapc:', config=config)
        finally:
            os.unlink(config)
        for local_name, folder in renamed:
            doveadm(job, 'mailbox', 'create', '-u', target, folder, check=False)
            doveadm(job, 'move', '-u', target, folder, 'mailbox', local_name, 'all')
        after = read_target(job, target)
        result['copied_messages'] = (sum(len(messages) for messages in after.values())
                                     - sum(len(messages) for messages in before.values()))
        result['folders'] = compare(source, after)
    except MigrationError as error:
        result.update(status=result.get('status', 'failed'), error=str(error))
    except (OSError, ValueError, imaplib.IMAP4.error, subprocess.SubprocessError) as error:
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
