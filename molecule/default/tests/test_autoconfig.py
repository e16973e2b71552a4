"""HTTPS and the client auto-configuration, from outside the host: every
answer (Thunderbird, Outlook, Apple) is checked against what the server
really offers, by logging in as a client told those settings would, and
against the ports the mail services really listen on."""

import plistlib
import re
import xml.etree.ElementTree as ET

import pytest

from mailtest import MAIL_HOST

DOMAIN = 'bacgiang.gov.vn'
USER = 'longnv@' + DOMAIN
AUTOCONFIG = 'autoconfig.' + DOMAIN
AUTODISCOVER = 'autodiscover.' + DOMAIN
# Ports the host offers that are not mail-client settings: MX (no login), the web,
# ManageSieve, the directory (LDAP, LDAPS).
NOT_CLIENT_PORTS = {25, 80, 443, 4190, 389, 636}
AUTODISCOVER_REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
    '<Request><EMailAddress>%s</EMailAddress>'
    '<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'
    '</AcceptableResponseSchema></Request></Autodiscover>' % USER).encode()


def password(lab, address):
    local = address.split('@')[0]
    people = {'longnv': 'BG0001'}
    return next(p['password'] for p in lab['accounts_people'] if p['id'] == people[local])


def mail_ports_listening(host):
    """Ports the host offers to other machines (not only on loopback), as its
    socket table shows them."""
    ports = set()
    for line in host.check_output('ss -Hltn').splitlines():
        address, port = line.split()[3].rsplit(':', 1)
        if not address.startswith(('127.', '[::1]')):
            ports.add(int(port))
    return ports


# --- HTTPS ------------------------------------------------------------------------------------
@pytest.mark.parametrize('name', [MAIL_HOST, AUTOCONFIG, AUTODISCOVER])
def test_http_redirects_to_https(server, name):
    status, headers, _body = server.http('/some/page?x=1', name=name, secure=False)
    assert status == 301
    assert headers['location'] == 'https://%s/some/page?x=1' % name


@pytest.mark.parametrize('name', [MAIL_HOST, AUTOCONFIG, AUTODISCOVER])
def test_https_certificate_names_and_hsts(server, name):
    # The certificate is checked against the lab CA and this very name.
    status, headers, _body = server.http('/mail/config-v1.1.xml', name=name)
    assert status == 200
    max_age = int(re.search(r'max-age=(\d+)', headers['strict-transport-security']).group(1))
    assert max_age >= 180 * 86400


def test_webmail_login_page_over_https(server):
    status, headers, body = server.http('/')
    assert status == 200
    assert 'strict-transport-security' in headers
    assert b'rcmloginuser' in body and b'rcmloginpwd' in body


def test_roundcube_internals_are_not_served(server):
    for path in ['/config/config.inc.php', '/plugins/password/config.inc.php.dist',
                 '/plugins/password/drivers/congvu.php', '/.htaccess', '/SQL/postgres.initial.sql']:
        status, _headers, body = server.http(path)
        assert status in (403, 404), (path, status)
        assert b'db_dsnw' not in body


def test_directory_path_is_served_when_published(server, host):
    marker = 'danh-ba-test'
    host.run('mkdir -p /var/www/congvu-mail/danh-ba && echo %s > /var/www/congvu-mail/danh-ba/test.txt' % marker)
    try:
        status, _headers, body = server.http('/danh-ba/test.txt')
        assert status == 200 and body.decode().strip() == marker
    finally:
        host.run('rm -f /var/www/congvu-mail/danh-ba/test.txt')


# --- Thunderbird ------------------------------------------------------------------------------
@pytest.mark.parametrize('name,path', [
    (AUTOCONFIG, '/mail/config-v1.1.xml'),
    (MAIL_HOST, '/.well-known/autoconfig/mail/config-v1.1.xml'),
    (AUTOCONFIG, '/.well-known/autoconfig/mail/config-v1.1.xml'),
])
def test_thunderbird_autoconfig_matches_the_server(server, lab, host, name, path):
    status, headers, body = server.http(path + '?emailaddress=' + USER, name=name)
    assert status == 200 and 'xml' in headers['content-type']
    provider = ET.fromstring(body).find('emailProvider')
    assert DOMAIN in [d.text for d in provider.findall('domain')]
    advertised = set()
    for element in provider.findall('incomingServer') + provider.findall('outgoingServer'):
        assert element.findtext('hostname') == MAIL_HOST
        assert element.findtext('username') == '%EMAILADDRESS%'
        port, security = int(element.findtext('port')), element.findtext('socketType')
        assert security in ('SSL', 'STARTTLS')
        server.login_check(element.get('type'), port, security, USER, password(lab, USER))
        advertised.add(port)
    # Every client port the server offers is advertised, and nothing else.
    assert advertised == mail_ports_listening(host) - NOT_CLIENT_PORTS


# --- Outlook ----------------------------------------------------------------------------------
@pytest.mark.parametrize('name,path', [
    (AUTODISCOVER, '/autodiscover/autodiscover.xml'),
    (AUTODISCOVER, '/Autodiscover/Autodiscover.xml'),
    (MAIL_HOST, '/autodiscover/autodiscover.xml'),
])
def test_outlook_autodiscover_matches_the_server(server, lab, host, name, path):
    status, headers, body = server.http(path, name=name, method='POST', body=AUTODISCOVER_REQUEST,
                                        headers={'Content-Type': 'text/xml'})
    assert status == 200 and 'xml' in headers['content-type']
    ns = {'r': 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'}
    protocols = ET.fromstring(body).findall('.//r:Account/r:Protocol', ns)
    types = [p.findtext('r:Type', namespaces=ns) for p in protocols]
    assert sorted(types) == ['IMAP', 'POP3', 'SMTP']
    listening = mail_ports_listening(host)
    for protocol in protocols:
        assert protocol.findtext('r:Server', namespaces=ns) == MAIL_HOST
        port = int(protocol.findtext('r:Port', namespaces=ns))
        encryption = protocol.findtext('r:Encryption', namespaces=ns)
        assert port in listening
        server.login_check(protocol.findtext('r:Type', namespaces=ns).lower(), port,
                           {'SSL': 'SSL', 'TLS': 'STARTTLS'}[encryption], USER, password(lab, USER))


# --- Apple ------------------------------------------------------------------------------------
@pytest.mark.parametrize('query', ['email=' + USER, 'email=' + USER.replace('@', '%40')])
def test_apple_profile_per_user_matches_the_server(server, lab, host, query):
    status, headers, body = server.http('/mobileconfig?' + query)
    assert status == 200
    assert headers['content-type'].startswith('application/x-apple-aspen-config')
    assert 'strict-transport-security' in headers
    profile = plistlib.loads(body)
    account = profile['PayloadContent'][0]
    assert account['PayloadType'] == 'com.apple.mail.managed'
    assert account['EmailAddress'] == USER
    assert account['IncomingMailServerUsername'] == USER == account['OutgoingMailServerUsername']
    assert USER in profile['PayloadIdentifier']
    listening = mail_ports_listening(host)
    for side, protocol in (('Incoming', 'imap'), ('Outgoing', 'smtp')):
        assert account[side + 'MailServerHostName'] == MAIL_HOST
        port = account[side + 'MailServerPortNumber']
        assert port in listening and account[side + 'MailServerUseSSL'] is True
        # Apple: UseSSL means TLS from the first byte on 993/465, STARTTLS on 143/587.
        server.login_check(protocol, port, 'SSL' if port in (993, 465) else 'STARTTLS', USER, password(lab, USER))


@pytest.mark.parametrize('query', ['', 'email=', 'email=someone@example.com', 'email=LongNV@' + DOMAIN,
                                   'email=a"b@' + DOMAIN, 'email=longnv@' + DOMAIN + '.evil.example'])
def test_apple_profile_refuses_other_addresses(server, query):
    status, _headers, body = server.http('/mobileconfig?' + query)
    assert status == 400
    assert b'<plist' not in body
