# Ansible filter plugin: the filters of congvu_mail.resolver (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_resolver
  short_description: The local resolver's data and the checks of its settings
  description:
    - C(mail_resolver_local_data(zone_text)) gives unbound's local-data lines of a zone-file
      snippet (as role dns writes them): comments dropped, a record in parentheses joined
      on one line.
    - C(mail_resolver_address_errors(addresses, name='resolver_forwarders')) lists, one line
      each, the entries that are not an IP address (optionally C(@port)).
  positional: _input
  options:
    _input:
      description: The zone-file text, or the list of addresses.
      type: raw
      required: true
"""
EXAMPLES = r"""
- name: Answer the hosted domain from local data
  ansible.builtin.copy:
    content: |
      server:
      {% for record in lookup('ansible.builtin.file', 'bacgiang.gov.vn.zone') | mail_resolver_local_data %}
        local-data: '{{ record }}'
      {% endfor %}
    dest: /etc/unbound/unbound.conf.d/local.conf
    mode: "0644"
"""
RETURN = r"""
  _value:
    description: A list of local-data records, or a list of error lines.
    type: list
    elements: str
"""

from congvu_mail import resolver
from congvu_mail.filters import filter_map


class FilterModule:
    """The local resolver."""

    def filters(self):
        return filter_map({
            'mail_resolver_local_data': resolver.mail_resolver_local_data,
            'mail_resolver_address_errors': resolver.mail_resolver_address_errors,
        })
