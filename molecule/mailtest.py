"""Helpers of every Molecule scenario's tests: clients for the test hosts.

The tests talk to the test hosts from outside, as a mail client would: each
host publishes its ports on 127.0.0.1 (Docker picks the host ports) and the
tests speak SMTP, IMAP and POP3 to them with Python's standard library.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import imaplib
import json
import os
import poplib
import shlex
import smtplib
import ssl
import subprocess
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


class Server:
    """One test host as seen from the test runner."""

    def __init__(self, container, ca_file):
        self.container = container
        self.ca_file = ca_file
        self._ports = {}

    def port(self, number):
        if number not in self._ports:
            out = subprocess.run(['docker', 'port', self.container, '%d/tcp' % number],
                                 check=True, capture_output=True, text=True).stdout
            self._ports[number] = int(out.splitlines()[0].rsplit(':', 1)[1])
        return self._ports[number]

    def tls(self, minimum=ssl.TLSVersion.TLSv1_2, maximum=None):
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = False  # we connect to 127.0.0.1; the chain is still checked
        context.minimum_version = minimum
        if maximum:
            context.maximum_version = maximum
        return context

    # --- SMTP --------------------------------------------------------------
    def smtp(self, port=25):
        client = smtplib.SMTP('127.0.0.1', self.port(port), timeout=30)
        client.ehlo('runner.example.net')
        return client

    def submission(self, user, password, port=587):
        if port == 465:
            client = smtplib.SMTP_SSL('127.0.0.1', self.port(465), timeout=30, context=self.tls())
            client.ehlo('client.test')
        else:
            client = smtplib.SMTP('127.0.0.1', self.port(port), timeout=30)
            client.ehlo('client.test')
            client.starttls(context=self.tls())
            client.ehlo('client.test')
        client.login(user, password)
        return client

    # --- IMAP and POP3 ----------------------------------------------------
    def imap(self, user, password):
        client = imaplib.IMAP4_SSL('127.0.0.1', self.port(993), ssl_context=self.tls(), timeout=30)
        client.login(user, password)
        return client

    def pop3(self, user, password):
        client = poplib.POP3_SSL('127.0.0.1', self.port(995), context=self.tls(), timeout=30)
        client.user(user)
        client.pass_(password)
        return client

    def wait_for_message(self, user, password, message_id, folder='INBOX', timeout=60):
        """The message with this Message-ID, fetched over IMAPS once it has arrived."""
        deadline = time.monotonic() + timeout
        while True:
            client = self.imap(user, password)
            try:
                client.select(folder, readonly=True)
                _typ, data = client.search(None, 'HEADER', 'Message-ID', message_id)
                ids = data[0].split()
                if ids:
                    _typ, parts = client.fetch(ids[-1], '(RFC822)')
                    return email.message_from_bytes(parts[0][1], policy=email.policy.default)
            finally:
                client.logout()
            if time.monotonic() > deadline:
                raise AssertionError('message %s did not arrive in %s of %s' % (message_id, folder, user))
            time.sleep(1)


def new_message(sender, recipient, subject='congvu-mail test', body='Xin chào, đây là thư thử nghiệm.\n'):
    """A message with a unique Message-ID, built the way a mail client does."""
    msg = EmailMessage()
    msg['From'] = sender
    msg['To'] = recipient
    msg['Subject'] = subject
    msg['Date'] = email.utils.formatdate(localtime=True)
    msg['Message-ID'] = '<%s@test.congvu-mail>' % uuid.uuid4()
    msg.set_content(body)
    return msg


def run_playbook(playbook, extra_vars=None, check=False):
    """Run one of the package's playbooks against this scenario's hosts, as an
    operator would, and return the finished process (output kept for asserts)."""
    inventory = os.environ.get('MOLECULE_INVENTORY_FILE', str(PROJECT / 'inventories' / 'lab'))
    command = ['ansible-playbook', '-i', inventory, str(PROJECT / 'playbooks' / playbook)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_FORCE_COLOR='0')
    if 'MOLECULE_EPHEMERAL_DIRECTORY' in os.environ:
        # The scenario's lab CA and DKIM keys (see .config/molecule/config.yml).
        ephemeral = Path(os.environ['MOLECULE_EPHEMERAL_DIRECTORY'])
        env.setdefault('CONGVU_TLS_DIR', str(ephemeral / 'tls'))
        env.setdefault('CONGVU_DKIM_DIR', str(ephemeral / 'dkim'))
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump(extra_vars or {}, handle)
    try:
        command += ['-e', '@' + handle.name]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    finally:
        os.unlink(handle.name)
    if check and result.returncode != 0:
        raise AssertionError('%s failed:\n%s\n%s' % (playbook, result.stdout[-4000:], result.stderr[-2000:]))
    return result


def psql(host, query):
    """One query on the mailbox database, as the postgres superuser, rows as text."""
    result = host.run("runuser -u postgres -- psql -XAtq -d mail -c %s" % _quote(query))
    assert result.rc == 0, result.stderr
    return result.stdout.strip()


def _quote(text):
    return shlex.quote(text)
