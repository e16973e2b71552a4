"""The services run, start at boot, and keep their secrets to themselves."""

import pytest

from mailtest import psql


@pytest.mark.parametrize('service', ['postfix', 'dovecot', 'postgresql@15-main', 'nginx', 'php8.2-fpm',
                                     'congvu-mailpassword.socket'])
def test_service_running_and_enabled(host, service):
    unit = host.service(service)
    assert unit.is_running
    assert unit.is_enabled


@pytest.mark.parametrize('path, owner, group, mode', [
    ('/etc/ssl/congvu-mail/mail.key', 'root', 'root', 0o600),
    ('/etc/postgresql/15/main/server.key', 'postgres', 'postgres', 0o600),
    ('/etc/dovecot/dovecot-sql.conf.ext', 'root', 'dovecot', 0o640),
    ('/etc/postfix/pgsql/mailboxes.cf', 'root', 'postfix', 0o640),
    ('/etc/postfix/pgsql/sender_logins.cf', 'root', 'postfix', 0o640),
    ('/var/vmail', 'vmail', 'vmail', 0o750),
])
def test_secret_files_are_not_world_readable(host, path, owner, group, mode):
    f = host.file(path)
    assert f.exists
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def test_postfix_database_role_cannot_read_password_hashes(host):
    """Postfix's database role is read-only and never sees a hash."""
    secret = host.file('/etc/postfix/pgsql/mailboxes.cf').content_string
    password = [line.split('=', 1)[1].strip() for line in secret.splitlines() if line.startswith('password')][0]
    base = "PGPASSWORD='%s' psql -XAtq -h localhost -U mail_postfix -d mail -c " % password
    assert host.run(base + "'SELECT count(address) FROM mailboxes'").rc == 0
    refused = host.run(base + "'SELECT password FROM mailboxes LIMIT 1'")
    assert refused.rc != 0 and 'permission denied' in refused.stderr
    write = host.run(base + "\"UPDATE mailboxes SET state = 'active' WHERE false\"")
    assert write.rc != 0 and 'permission denied' in write.stderr


def test_no_plaintext_password_is_stored(host, lab):
    stored = psql(host, 'SELECT password FROM mailboxes WHERE password IS NOT NULL')
    assert stored
    for line in stored.splitlines():
        assert line.startswith('{SHA512-CRYPT}$6$') or line.startswith('{BLF-CRYPT}') or line.startswith('{ARGON2ID}')
    for person in lab['accounts_people']:
        assert person['password'] not in stored
