# The inventory as a whole, checked on the controller before any host is
# touched (playbooks/preflight.yml): values still holding the production
# example's placeholders. The accounts' own rules are in congvu_mail.accounts.

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .errors import RuleError


SEP = ' · '
DOCUMENTATION_NETWORKS = tuple(ipaddress.ip_network(n) for n in
                               ('192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8::/32'))


def _leaves(value, path=()):
    """(path, text) of every text in a value, at any depth."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(item, path + (str(key),))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, path + ('#%d' % (index + 1),))


def _record(value, path):
    """The record a path points into, by its id or name where it has one."""
    parts, node = [], value
    for step in path[:-1]:
        if step.startswith('#') and isinstance(node, (list, tuple)):
            node = node[int(step[1:]) - 1]
            label = node.get('id') or node.get('name') if isinstance(node, Mapping) else None
            parts.append(str(label) if isinstance(label, str) and label else step)
        else:
            node = node.get(step) if isinstance(node, Mapping) else None
            parts.append(step)
    return ' › '.join(parts) or '-'


def mail_placeholder_errors(values, example, hosts=None):
    """Every value that still holds a placeholder of the production example."""
    if not isinstance(values, Mapping) or not isinstance(example, Mapping):
        raise RuleError('mail_placeholder_errors: expected a dict of variables and the example as a dict')
    placeholders = {text.strip() for _path, text in _leaves(dict(example)) if text.strip()}
    problems = []
    for name in sorted(values, key=str):
        value = values[name]
        for path, text in _leaves(value):
            if text.strip() in placeholders:
                problems.append(SEP.join((str(name), _record(value, path), path[-1] if path else '-',
                                          "is the production example's placeholder",
                                          'replace this value (in the vault)')))
    for host, address in sorted((hosts or {}).items(), key=lambda item: str(item[0])):
        try:
            ip = ipaddress.ip_address(str(address).strip())
        except ValueError:
            continue
        if any(ip in network for network in DOCUMENTATION_NETWORKS):
            problems.append(SEP.join(('hosts.yml', str(host), 'ansible_host',
                                      'is an address of a documentation range, as in the example',
                                      "replace this value with the server's address")))
    return problems


def _ipv6_problem(text):
    """Why a text is not a host's public IPv6 address, or None."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return 'is not an IPv6 address'
    if ip.version != 6:
        return 'is an IPv4 address'
    if ip.ipv4_mapped is not None:
        return 'is an IPv4-mapped address'
    if ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast:
        return 'is a loopback, unspecified, link-local or multicast address, which no client can reach'
    return None


def mail_ipv6_errors(hosts):
    """The hosts' IPv6 settings (docs/ipv6.md), checked before any host is touched.

    hosts maps a host name to its mail_host_ipv6, mail_host_ipv6_ptr and
    dns_mail_ipv6 (None when undefined). One line per problem: the host, the
    variable, the rule, what to do."""
    if not isinstance(hosts, Mapping):
        raise RuleError('mail_ipv6_errors: expected a dict of host names to their IPv6 settings')
    problems = []
    for host in sorted(hosts, key=str):
        settings = hosts[host] if isinstance(hosts[host], Mapping) else {}
        address = settings.get('mail_host_ipv6')
        address = '' if address is None else str(address).strip()
        if settings.get('dns_mail_ipv6') is not None:
            problems.append(SEP.join((str(host), 'dns_mail_ipv6', 'is no longer read',
                                      'rename it mail_host_ipv6 (a host variable): the same address then is '
                                      'the AAAA record and the one every service listens on')))
        if address:
            why = _ipv6_problem(address)
            if why:
                problems.append(SEP.join((str(host), 'mail_host_ipv6', '%r %s' % (address, why),
                                          "give the host's public IPv6 address (such as 2001:db8::25, "
                                          'no prefix length) or leave it empty for IPv4 only')))
        elif settings.get('mail_host_ipv6_ptr') in (True, 'true', 'yes', 'True'):
            problems.append(SEP.join((str(host), 'mail_host_ipv6_ptr', 'is true but mail_host_ipv6 is empty',
                                      'set mail_host_ipv6, or mail_host_ipv6_ptr to false')))
    return problems
