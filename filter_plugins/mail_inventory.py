# The inventory as a whole, checked on the controller before any host is
# touched (playbooks/preflight.yml): values still holding the production
# example's placeholders. The accounts' own rules are in mail_accounts.py.

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # imported outside Ansible (unit tests)
    class AnsibleFilterError(ValueError):
        """Stand-in for Ansible's error when Ansible is not installed."""

DOCUMENTATION = r"""
  name: mail_placeholder_errors
  short_description: Find the production example's placeholders left in an inventory
  description:
    - O(example) is the production example's vault (inventories/production/group_vars/all/vault.yml.example),
      whose every text is a placeholder such as "a long random string".
    - A value of O(_input) (variable name to value) that holds one of those texts, at any depth,
      is reported as C(<variable> · <path> · <field> · is the example's placeholder · replace this value).
      The value itself is never shown.
    - O(hosts) maps host names to their C(ansible_host); an address of the documentation ranges
      (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), as in the example's hosts.yml,
      is reported too.
  positional: _input
  options:
    _input:
      description: Variable name to its value (undefined ones left out or None).
      type: dict
      required: true
    example:
      description: The example vault's content.
      type: dict
      required: true
    hosts:
      description: Host name to its ansible_host (or None).
      type: dict
"""

EXAMPLES = r"""
- name: Refuse the example's placeholders
  ansible.builtin.assert:
    that: problems | length == 0
  vars:
    problems: "{{ values | mail_placeholder_errors(example=example, hosts=hosts) }}"
"""

RETURN = r"""
  _value:
    description: One line per value still holding a placeholder; empty when there is none.
    type: list
    elements: str
"""

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
        raise AnsibleFilterError('mail_placeholder_errors: expected a dict of variables and the example as a dict')
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


class FilterModule:
    """The inventory as a whole."""

    def filters(self):
        return {'mail_placeholder_errors': mail_placeholder_errors}
