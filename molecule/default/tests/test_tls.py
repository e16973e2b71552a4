"""The TLS profile (docs/reference/decisions.md: "TLS profile"): Mozilla's "intermediate" on every
TLS port, tried from outside as clients would: TLS 1.3, or TLS 1.2 with AEAD
suites only. A TLS 1.2 client offering only CBC suites is refused; an
ordinary TLS 1.2 client and a TLS 1.3 client get in. No compression over
HTTPS (BREACH)."""

from __future__ import annotations

import ssl

import pytest

# Every TLS listener the host publishes: (port, the protocol's STARTTLS or None).
PORTS = [
    (25, 'smtp'), (587, 'smtp'), (465, None),
    (143, 'imap'), (993, None), (110, 'pop3'), (995, None), (4190, 'sieve'),
    (443, None),
    (389, 'ldap'), (636, None),
]
IDS = ['%d%s' % (port, '-starttls' if starttls else '') for port, starttls in PORTS]

# What testssl.sh flagged on the lab: CBC suites with TLS 1.2 (SHA-2 and SHA-1 MACs).
CBC_ONLY = ':'.join([
    'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256', 'ECDHE-RSA-AES256-SHA', 'ECDHE-RSA-AES128-SHA',
    'DHE-RSA-AES256-SHA256', 'DHE-RSA-AES128-SHA256', 'DHE-RSA-AES256-SHA', 'DHE-RSA-AES128-SHA',
    'AES256-SHA256', 'AES128-SHA256', 'AES256-SHA', 'AES128-SHA',
])
AEAD = ('GCM', 'CHACHA20')


def tls12(server, ciphers=None):
    context = server.tls(maximum=ssl.TLSVersion.TLSv1_2)
    if ciphers:
        context.set_ciphers(ciphers)
    return context


@pytest.mark.parametrize(('port', 'starttls'), PORTS, ids=IDS)
def test_tls_1_2_with_only_cbc_suites_is_refused(server, port, starttls):
    client = tls12(server, CBC_ONLY)
    offered = {c['name'] for c in client.get_ciphers() if c['protocol'] == 'TLSv1.2'}
    assert offered and not any(mark in name for name in offered for mark in AEAD), offered
    with pytest.raises(ssl.SSLError) as refused:
        server.tls_handshake(port, client, starttls)
    # Refused by the server (a handshake alert), not by our own client.
    assert 'NO_CIPHERS_AVAILABLE' not in str(refused.value).upper(), refused.value


@pytest.mark.parametrize(('port', 'starttls'), PORTS, ids=IDS)
def test_tls_1_2_with_aead_suites_gets_in(server, port, starttls):
    version, cipher = server.tls_handshake(port, tls12(server), starttls)
    assert version == 'TLSv1.2' and any(mark in cipher for mark in AEAD), (version, cipher)
    assert cipher.startswith(('ECDHE-', 'DHE-')), cipher  # forward secrecy


@pytest.mark.parametrize(('port', 'starttls'), PORTS, ids=IDS)
def test_tls_1_3_gets_in(server, port, starttls):
    version, _cipher = server.tls_handshake(port, server.tls(minimum=ssl.TLSVersion.TLSv1_3), starttls)
    assert version == 'TLSv1.3'


@pytest.mark.parametrize('path', ['/', '/?_task=login'])
def test_webmail_pages_are_not_compressed(server, path):
    # BREACH: a compressed page's length would leak the request token next to
    # text an attacker can put in it.
    status, headers, body = server.http(path, headers={'Accept-Encoding': 'gzip, deflate, br'})
    assert status == 200 and len(body) > 1000, (status, len(body))
    assert 'content-encoding' not in headers, headers


def test_the_public_directory_page_is_still_compressed(server):
    # Static, public and with nothing a request puts in it: BREACH has nothing
    # to find, and the page is large (docs/reference/decisions.md: "TLS profile").
    status, headers, _body = server.http('/danh-ba/', headers={'Accept-Encoding': 'gzip'})
    assert status == 200 and headers.get('content-encoding') == 'gzip', (status, headers)
