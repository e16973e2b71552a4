# Ansible filter plugin: the filters of congvu_mail.inventory (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

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
    - C(mail_ipv6_errors(hosts)) checks the hosts' IPv6 settings (docs/ipv6.md). O(_input) maps each host to its
      C(mail_host_ipv6), C(mail_host_ipv6_ptr) and C(dns_mail_ipv6) (None when undefined). It gives one line per
      problem (host · variable · rule · what to do) for an address that is not a public IPv6 address (no prefix
      length; not IPv4, loopback, link-local or multicast), for C(mail_host_ipv6_ptr) without an address, and for
      the former C(dns_mail_ipv6), which C(mail_host_ipv6) replaces.
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

from congvu_mail import inventory
from congvu_mail.filters import filter_map


class FilterModule:
    """The inventory as a whole."""

    def filters(self):
        return filter_map({
            'mail_placeholder_errors': inventory.mail_placeholder_errors,
            'mail_ipv6_errors': inventory.mail_ipv6_errors,
        })
