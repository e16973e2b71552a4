"""The local resolver (role resolver, docs/resolver.md): unbound on the
province's server, on loopback only, validating DNSSEC, asked by the host
itself and by rspamd. The scenario runs it in the lab's local mode: the
simulated Internet's zones are asked of its DNS server, every other name is
answered NXDOMAIN on the host at once, and no query goes anywhere else. A
resolver outage defers mail (4xx), never bounces it (test_recovery.py has
the stream of inbound mail)."""

from __future__ import annotations

import os
import subprocess
import time

import dns.exception
import dns.message
import dns.query
import pytest

from mailtest import new_message, scenario_vars

NET = os.environ.get('CONGVU_NET') or '172.30.200'
PREFIX = os.environ.get('CONGVU_PREFIX') or 'congvu'
FOREIGN = '%s-%s-foreign' % (PREFIX, os.environ.get('MOLECULE_SCENARIO_NAME', 'default'))
NETWORK = scenario_vars()
MAIL_IP = NETWORK['dns_mail_ipv4']
DNS_IP = NETWORK['internet_dns_ip']
DOMAIN = 'bacgiang.gov.vn'
# Docker's own resolver in the container, which forwards to the scenario's
# dns_servers (the simulated Internet's DNS server, molecule.yml): asked only
# for the package archive's names, so that apt works.
DOCKER_DNS = '127.0.0.11'
# The discard port on loopback, where local mode sends what nothing answers.
BLACK_HOLE = '127.0.0.1@9'

LOOKUP = ('python3 -c "import socket,sys,time\n'
          't=time.monotonic()\n'
          'try:\n'
          ' r=sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1],25,socket.AF_INET)})\n'
          'except socket.gaierror as e:\n'
          ' r=[{socket.EAI_NONAME:\'NXDOMAIN\',socket.EAI_AGAIN:\'TEMPFAIL\'}.get(e.errno,str(e))]\n'
          'print(\' \'.join(r), round(time.monotonic()-t,3))" %s')


def lookup(host, name):
    """The host's own look-up of name (glibc, /etc/resolv.conf): (answer, seconds).
    The name is made absolute, so glibc tries no search domain after it."""
    out = host.check_output(LOOKUP % (name.rstrip('.') + '.')).rsplit(' ', 1)
    return out[0], float(out[1])


def test_the_host_asks_its_own_resolver(host):
    resolv = host.file('/etc/resolv.conf').content_string
    assert [line.split()[1] for line in resolv.splitlines() if line.startswith('nameserver')] == ['127.0.0.1']
    assert host.service('unbound').is_running and host.service('unbound').is_enabled


def test_the_simulated_internets_names_are_resolved_through_it(host):
    # Forwarded zones: example.net, the province's own domain, the test network's PTRs.
    assert lookup(host, 'mx.example.net')[0] == NET + '.25'
    assert lookup(host, 'mail.' + DOMAIN)[0] == MAIL_IP
    ptr = host.check_output('python3 -c "import socket; print(socket.gethostbyaddr(\'%s\')[0])"' % MAIL_IP)
    assert ptr == 'mail.' + DOMAIN


@pytest.mark.parametrize('name', ['www.debian.org', 'zen.spamhaus.org', 'gmail.com', 'vnnic.vn'])
def test_any_other_name_is_nxdomain_at_once(host, name):
    answer, seconds = lookup(host, name)
    assert answer == 'NXDOMAIN'
    assert seconds < 0.5, seconds


def test_it_answers_only_the_host_itself():
    # From outside (the test runner, on the test network): nothing answers on
    # the server's address, not even a refusal.
    query = dns.message.make_query('mail.' + DOMAIN, 'A')
    with pytest.raises((dns.exception.Timeout, ConnectionRefusedError, OSError)):
        dns.query.udp(query, MAIL_IP, timeout=2)
    with pytest.raises((dns.exception.Timeout, ConnectionRefusedError, OSError)):
        dns.query.tcp(query, MAIL_IP, timeout=2)


def test_answers_are_validated(host):
    # A zone the host forwards without a chain of trust from the root's key:
    # validated, it fails (SERVFAIL: the root's key cannot be checked here);
    # the same name marked insecure gets the server's plain answer.
    try:
        host.run_expect([0], 'unbound-control forward_add probe-signed.vn. %s' % DNS_IP)
        host.run_expect([0], 'unbound-control forward_add +i probe-insecure.vn. %s' % DNS_IP)
        host.run_expect([0], 'unbound-control local_zone probe-signed.vn. transparent')
        host.run_expect([0], 'unbound-control local_zone probe-insecure.vn. transparent')
        # The validated one first: the other's answer, cached, would tell of vn.
        assert lookup(host, 'x.probe-signed.vn')[0] == 'TEMPFAIL'
        assert lookup(host, 'x.probe-insecure.vn')[0] == 'NXDOMAIN'
    finally:
        for zone in ['probe-signed.vn.', 'probe-insecure.vn.']:
            host.run('unbound-control forward_remove +i %s' % zone)
            host.run('unbound-control local_zone_remove %s' % zone)
            host.run('unbound-control flush_zone %s' % zone)


def test_no_query_leaves_for_any_other_server(host):
    # Ask a forwarded name, an outside name and a blocklist's, then read every
    # server unbound has talked to since it started (its infrastructure cache).
    lookup(host, 'example.org')
    lookup(host, 'www.debian.org')
    lookup(host, '2.0.0.127.zen.spamhaus.org')
    infra = host.check_output('unbound-control dump_infra').splitlines()
    servers = {line.split()[0] for line in infra if line.strip()}
    assert DNS_IP in servers, infra
    assert servers <= {DNS_IP, DOCKER_DNS, BLACK_HOLE}, infra
    stats = host.check_output('unbound-control stats_noreset')
    assert 'total.num.queries=' in stats


RSPAMC = ('rspamc -i 203.0.113.5 -F someone@elsewhere.example --hostname mx.elsewhere.example '
          '--helo mx.elsewhere.example symbols /root/resolver-probe.eml')


@pytest.fixture(scope='module')
def probe(host):
    """A plain message from a domain outside, where rspamc reads it."""
    msg = new_message('someone@elsewhere.example', 'longnv@' + DOMAIN, subject='Resolver probe')
    host.run_expect([0], "cat > /root/resolver-probe.eml <<'EOF'\n%s\nEOF" % msg.as_string())


def test_rspamd_gets_nxdomain_not_a_timeout(host, probe):
    # rspamd's SPF and DMARC look-ups are answered at once (NXDOMAIN: no
    # record), not failed, so the check takes milliseconds, not seconds.
    started = time.monotonic()
    out = host.check_output(RSPAMC)
    elapsed = time.monotonic() - started
    assert 'R_SPF_NA' in out and 'DMARC_NA' in out, out
    assert 'DNSFAIL' not in out and 'Action: no action' in out, out
    assert elapsed < 2.0, elapsed


def test_rspamd_defers_what_it_cannot_check(host, probe):
    # The resolver down: SPF and DMARC fail for DNS reasons, and the message
    # is deferred (soft reject, a 4xx at Postfix), not accepted unchecked.
    try:
        host.run_expect([0], 'systemctl stop unbound')
        out = host.check_output(RSPAMC)
    finally:
        host.run_expect([0], 'systemctl start unbound')
        host.run_expect([0], 'unbound-control status')
    assert 'R_SPF_DNSFAIL' in out or 'DMARC_DNSFAIL' in out, out
    assert 'Action: soft reject' in out, out


def foreign_has(message_id):
    """Whether alice@example.net (the simulated Internet's mail server) has the message."""
    found = subprocess.run(['docker', 'exec', FOREIGN, 'sh', '-c',
                            "grep -l -F 'Message-ID: %s' /home/alice/Maildir/new/* /home/alice/Maildir/cur/* "
                            "2>/dev/null" % message_id], capture_output=True, check=False)
    return bool(found.stdout.strip())


def test_with_the_resolver_down_outgoing_mail_waits_in_the_queue(host, server, lab):
    person = next(p for p in lab['accounts_people'] if p['id'] == 'BG0003')
    msg = new_message('tuyetdta@' + DOMAIN, 'alice@example.net', subject='Resolver down')
    try:
        host.run_expect([0], 'systemctl stop unbound')
        client = server.submission('tuyetdta@' + DOMAIN, person['password'])
        try:
            client.send_message(msg)
        finally:
            client.close()
        # Deferred, not bounced: it waits in the queue, the lookup a temporary failure.
        deadline = time.monotonic() + 60
        while True:
            queue = host.check_output('postqueue -j || true')
            if msg['Message-ID'].strip('<>') in queue or 'example.net' in queue:
                if 'try again' in queue.lower() or 'deferred' in queue:
                    break
            assert time.monotonic() < deadline, queue
            time.sleep(2)
        assert not foreign_has(msg['Message-ID'])
    finally:
        host.run_expect([0], 'systemctl start unbound')
        host.run_expect([0], 'unbound-control status')
    # Back: the next try delivers it.
    host.run_expect([0], 'postqueue -f')
    deadline = time.monotonic() + 90
    while not foreign_has(msg['Message-ID']):
        assert time.monotonic() < deadline, host.check_output('postqueue -p')
        time.sleep(2)
