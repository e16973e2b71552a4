"""Every message of one mailbox, read over IMAP: per folder (Unicode name,
'/' between levels), each message's body hash, flags, internal date and
size. The migration tests read both sides with it: the new server from the
test runner, the old one inside its own host (`python3 - LOGIN MASTER
PASSWORD` on stdin, printing JSON), so nothing of the product's code judges
its own copy."""

import base64
import datetime
import hashlib
import imaplib
import json
import re
import ssl
import sys

LIST = re.compile(rb'\((?P<flags>[^)]*)\) (?P<sep>NIL|"(?:\\.|[^"])") (?P<name>.*)$')
ITEMS = re.compile(rb'FLAGS \(([^)]*)\)|INTERNALDATE "([^"]*)"|RFC822\.SIZE (\d+)')
SYSTEM = {'\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'}


def decode(name):
    """Modified UTF-7 (RFC 3501) to Unicode."""
    def run(match):
        chunk = match.group(1)
        if not chunk:
            return '&'
        raw = chunk.replace(',', '/') + '=' * (-len(chunk) % 4)
        return base64.b64decode(raw).decode('utf-16-be')
    return re.sub(r'&([A-Za-z0-9+,]*)-', run, name)


def listing(client):
    """{folder: sorted [[sha256, flags, epoch, size], ...]}."""
    folders = {}
    for line in client.list()[1]:
        match = LIST.match(line)
        if not match or b'\\noselect' in match.group('flags').lower():
            continue
        name = match.group('name').strip()
        if name.startswith(b'"'):
            name = name[1:-1].replace(b'\\"', b'"').replace(b'\\\\', b'\\')
        sep = match.group('sep').strip(b'"').decode()
        imap_name = name.decode('ascii')
        unicode_name = decode(imap_name)
        if sep not in ('NIL', '/'):
            unicode_name = unicode_name.replace(sep, '/')
        status, count = client.select('"%s"' % imap_name.replace('"', '\\"'), readonly=True)
        messages = []
        if status == 'OK' and int(count[0]):
            record = None
            for item in client.fetch('1:*', '(FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])')[1]:
                data = item[0] if isinstance(item, tuple) else item
                if isinstance(item, tuple):
                    record = [hashlib.sha256(item[1]).hexdigest(), [], 0, 0]
                    messages.append(record)
                for found in ITEMS.finditer(data):
                    if found.group(1) is not None:
                        record[1] = sorted(f for f in found.group(1).decode().split() if f in SYSTEM)
                    elif found.group(2):
                        record[2] = int(datetime.datetime.strptime(found.group(2).decode(),
                                                                   '%d-%b-%Y %H:%M:%S %z').timestamp())
                    elif found.group(3):
                        record[3] = int(found.group(3))
        folders[unicode_name] = sorted(messages)
    return folders


if __name__ == '__main__':
    login, master, password = sys.argv[1:4]
    imap = imaplib.IMAP4_SSL('mx.example.net', 993, ssl_context=ssl.create_default_context())
    secret = '%s\0%s\0%s' % (login, master, password)
    imap.authenticate('PLAIN', lambda _challenge: secret.encode())
    json.dump(listing(imap), sys.stdout)
    imap.logout()
