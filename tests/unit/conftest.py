"""Shared set-up of the unit tests of the congvu_mail package (installed
editable in .venv by scripts/bootstrap.sh) and of the filter plugins."""

import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILTER_PLUGINS = ROOT / 'filter_plugins'
REGULATION_DEFAULTS = ROOT / 'roles' / 'regulation' / 'defaults' / 'main.yml'


@pytest.fixture(scope='session')
def regulation_defaults():
    """The regulation role's defaults: the numbers the tests must not repeat."""
    return yaml.safe_load(REGULATION_DEFAULTS.read_text(encoding='utf-8'))


@pytest.fixture(scope='session')
def policy(regulation_defaults):
    return regulation_defaults['regulation_password_policy']


@pytest.fixture(scope='session')
def hash_settings(regulation_defaults):
    return regulation_defaults['regulation_password_hash']


# --- A throw-away PostgreSQL for the services' database code --------------------
#
# Debian's PostgreSQL 15 (scripts/bootstrap.sh installs postgresql-15), started
# by the tests on a Unix socket in a temporary directory (no TCP port), as the
# postgres user when the tests run as root, and stopped at the end. Every test
# gets a fresh copy of the mailbox database, made by the roles' own SQL.

PG_BIN = Path('/usr/lib/postgresql/15/bin')
# The database roles of the mail services, as role mail names them by default.
DB_USERS = {
    'mail_database_postfix_user': 'mail_postfix', 'mail_database_dovecot_user': 'mail_dovecot',
    'mail_database_passwd_user': 'mail_passwd', 'mail_database_lifecycle_user': 'mail_lifecycle',
    'mail_database_sendlimit_user': 'mail_sendlimit', 'report_user': 'congvu_report',
}
TEMPLATE_DB = 'congvu_template'
SCHEMA_FILES = ['roles/database/templates/schema.sql.j2', 'roles/database/templates/grants-passwd.sql.j2',
                'roles/database/templates/sendlimit.sql.j2', 'roles/report/templates/grants-report.sql.j2']


def _as_postgres(command, **kwargs):
    prefix = ['runuser', '-u', 'postgres', '--'] if os.geteuid() == 0 else []
    return subprocess.run(prefix + [str(c) for c in command], check=True, capture_output=True, text=True,
                          timeout=120, **kwargs)


@pytest.fixture(scope='session')
def postgres(regulation_defaults):
    """libpq keywords of a running server, as its superuser, and the mailbox
    schema in database congvu_template."""
    if not (PG_BIN / 'initdb').exists():
        pytest.skip('PostgreSQL 15 is not installed (scripts/bootstrap.sh installs postgresql-15)')
    import psycopg2
    base = Path(tempfile.mkdtemp(prefix='congvu-pg-'))
    if os.geteuid() == 0:
        shutil.chown(base, 'postgres', 'postgres')
    data = base / 'data'
    _as_postgres([PG_BIN / 'initdb', '-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'])
    _as_postgres([PG_BIN / 'pg_ctl', '-D', data, '-w', '-l', base / 'log', '-o',
                  "-k %s -c listen_addresses='' -F -c TimeZone=UTC" % base, 'start'])
    server = {'host': str(base), 'user': 'postgres'}
    try:
        conn = psycopg2.connect(dbname='postgres', **server)
        conn.autocommit = True
        with conn.cursor() as cur:
            for user in DB_USERS.values():
                cur.execute('CREATE ROLE %s LOGIN' % user)
            cur.execute('CREATE DATABASE %s' % TEMPLATE_DB)
        conn.close()
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        values = {**DB_USERS, **regulation_defaults, 'mail_database_name': TEMPLATE_DB,
                  '__database_schema_comment': 'congvu-mail schema (tests)'}
        conn = psycopg2.connect(dbname=TEMPLATE_DB, **server)
        with conn, conn.cursor() as cur:
            for name in SCHEMA_FILES:
                cur.execute(env.from_string((ROOT / name).read_text(encoding='utf-8')).render(values))
        conn.close()
        yield server
    finally:
        _as_postgres([PG_BIN / 'pg_ctl', '-D', data, '-m', 'immediate', 'stop'])
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def mailbox_db(postgres, request):
    """A fresh mailbox database: (name, superuser connection, autocommit)."""
    import psycopg2
    name = 'test_%s' % uuid.uuid4().hex[:12]
    admin = psycopg2.connect(dbname='postgres', **postgres)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE DATABASE %s TEMPLATE %s' % (name, TEMPLATE_DB))
    conn = psycopg2.connect(dbname=name, **postgres)
    conn.autocommit = True
    try:
        yield name, conn
    finally:
        conn.close()
        with admin.cursor() as cur:
            cur.execute('DROP DATABASE %s WITH (FORCE)' % name)
        admin.close()


def as_user(postgres, database, user):
    """The libpq keywords a service uses to log in as `user` (a role of DB_USERS)."""
    return {'host': postgres['host'], 'dbname': database, 'user': user}


# --- A mail server that keeps what it receives --------------------------------------

class _SMTPHandler(socketserver.StreamRequestHandler):
    def handle(self):
        def reply(text):
            self.wfile.write((text + '\r\n').encode())
        reply('220 sink.test ESMTP')
        envelope = {'from': None, 'to': [], 'data': b''}
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode(errors='replace').strip()
            verb = command.split(' ')[0].upper()
            if verb in ('EHLO', 'HELO'):
                reply('250 sink.test')
            elif verb == 'MAIL':
                envelope['from'] = command.partition(':')[2].strip().strip('<>').split(' ')[0]
                reply('250 OK')
            elif verb == 'RCPT':
                envelope['to'].append(command.partition(':')[2].strip().strip('<>'))
                reply('250 OK')
            elif verb == 'DATA':
                reply('354 go on')
                data = b''
                while (line := self.rfile.readline()) not in (b'.\r\n', b''):
                    data += line[1:] if line.startswith(b'..') else line
                envelope['data'] = data
                self.server.received.append(dict(envelope))
                envelope = {'from': None, 'to': [], 'data': b''}
                reply('250 queued')
            elif verb == 'QUIT':
                reply('221 bye')
                return
            else:
                reply('250 OK')


@pytest.fixture
def smtp_sink():
    """A plain SMTP server on 127.0.0.1: (host, port, list of received envelopes)."""
    server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), _SMTPHandler)
    server.daemon_threads = True
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[0], server.server_address[1], server.received
    finally:
        server.shutdown()
        server.server_close()
