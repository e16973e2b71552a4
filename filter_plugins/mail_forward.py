# Ansible filter plugin: the filters of congvu_mail.forward (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_forward
  short_description: The forwarding allow-list, for the inventory check and for Postfix
  description:
    - O(_input) is a list of domain patterns. A pattern is a domain (C(bacgiang.gov.vn)), which
      matches that domain only, or C(*.) and a domain (C(*.gov.vn)), which matches every
      subdomain of it (C(bacninh.gov.vn), C(sotttt.hanoi.gov.vn)) but not the domain itself.
      Letter case does not matter.
    - C(mail_forward_regexps(patterns)) gives one POSIX extended regular expression per
      pattern, matching a whole address, for a Postfix C(regexp:) table.
    - C(mail_forward_allowed(address, patterns)) tells whether mail may be forwarded to
      O(address).
  positional: _input
  options:
    _input:
      description: The allowed domain patterns.
      type: list
      elements: str
      required: true
"""

EXAMPLES = r"""
- name: Render Postfix's allow-list
  ansible.builtin.copy:
    content: |
      {% for re in ['bacgiang.gov.vn', '*.gov.vn'] | mail_forward_regexps %}
      /{{ re }}/ OK
      {% endfor %}
    dest: /etc/postfix/forward_allowed.regexp
    mode: "0644"
"""

RETURN = r"""
  _value:
    description: A list of regular expressions (mail_forward_regexps) or a boolean
      (mail_forward_allowed).
    type: raw
"""

from congvu_mail import forward
from congvu_mail.filters import filter_map


class FilterModule:
    """The forwarding allow-list."""

    def filters(self):
        return filter_map({
            'mail_forward_regexps': forward.mail_forward_regexps,
            'mail_forward_allowed': forward.mail_forward_allowed,
        })
