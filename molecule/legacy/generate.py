#!/usr/bin/python3
"""The legacy source server's mailboxes, written straight into Maildir (fast):
    generate.py ROOT COUNT_PER_MAILBOX LOGIN...
Each mailbox gets Vietnamese and nested folders (Maildir++, '.' separated,
names in modified UTF-7 as Dovecot stores them), Exchange's folder names,
every combination of \\Seen \\Answered \\Flagged \\Deleted, messages without
a Message-ID, and internal dates in the past; the first mailbox also gets one
20 MB message. Deterministic: a second run writes nothing new. Part of the
Molecule tests (molecule/internet.yml), not of the product."""

import base64
import os
import random
import sys

# (folder as Dovecot names it on disk, share of the messages)
FOLDERS = [
    ('', 40),                                  # INBOX
    ('.Sent Items', 15),                       # Exchange -> Sent
    ('.Th&AbA- &AREA4w- g&Hu0-i', 10),         # "Thư đã gửi" -> Sent
    ('.Deleted Items', 5),                     # -> Trash
    ('.Junk E-mail', 5),                       # -> Junk
    ('.D&HvE- &AOE-n', 10),                    # "Dự án"
    ('.D&HvE- &AOE-n.2025', 10),               # "Dự án/2025", nested
    ('.C&APQ-ng v&AQM-n &AREevw-n', 5),        # "Công văn đến"
]
FLAGS = ['', 'S', 'RS', 'FS', 'ST', 'F', 'FRS', 'FRST', 'T', 'R']
HOST = 'mx.example.net'


def message(login, number, with_id, body):
    headers = ['From: "Người gửi %d" <sender%d@example.org>' % (number % 7, number % 7),
               'To: %s' % login,
               'Subject: =?UTF-8?B?%s?=' % base64.b64encode(('Công văn số %d/UBND' % number).encode()).decode(),
               'Date: Mon, %d Dec 2025 %02d:%02d:00 +0700' % (1 + number % 28, number % 24, number % 60),
               'MIME-Version: 1.0']
    if with_id:
        headers.append('Message-ID: <legacy.%s.%d@legacy.example.net>' % (login.split('@')[0], number))
    return ('\n'.join(headers) + '\n' + body).encode('utf-8')


def main():
    root, count, logins = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    written = 0
    for index, login in enumerate(logins):
        maildir = os.path.join(root, login.split('@')[0], 'Maildir')
        rng = random.Random(login)
        total = sum(share for _, share in FOLDERS)
        number = 0
        for folder, share in FOLDERS:
            path = os.path.join(maildir, folder)
            for sub in ('cur', 'new', 'tmp'):
                os.makedirs(os.path.join(path, sub), exist_ok=True)
            for _ in range(count * share // total):
                number += 1
                flags = FLAGS[number % len(FLAGS)]
                name = os.path.join(path, 'cur', '%d.M%dP1.%s:2,%s' % (1700000000 + number, number, HOST, flags))
                if os.path.exists(name):
                    continue
                body = 'Content-Type: text/plain; charset=utf-8\n\nKính gửi,\n%s\n' % (
                    ' '.join('dòng%d' % rng.randrange(10**6) for _ in range(rng.randrange(20, 200))))
                data = message(login, number, number % 25 != 0, body)
                with open(name, 'wb') as out:
                    out.write(data)
                os.utime(name, (1700000000 + number * 3600, 1700000000 + number * 3600))
                written += 1
        if index == 0:
            name = os.path.join(maildir, 'cur', '1699999999.M0P1.%s:2,S' % HOST)
            if not os.path.exists(name):
                payload = base64.encodebytes(random.Random(0).randbytes(15 * 1024 * 1024)).decode()
                body = ('Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
                        'Bản đồ quy hoạch.\n--b\nContent-Type: application/octet-stream\n'
                        'Content-Transfer-Encoding: base64\n'
                        'Content-Disposition: attachment; filename="quyhoach.bin"\n\n%s--b--\n' % payload)
                with open(name, 'wb') as out:
                    out.write(message(login, 0, True, body))
                os.utime(name, (1699990000, 1699990000))
                written += 1
    print('%d message(s) written' % written)


if __name__ == '__main__':
    main()
