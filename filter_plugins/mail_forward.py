# The forwarding allow-list ("no automatic forwarding to non-government
# mailboxes"): which domains automatic forwarding may reach. One rule, used
# twice: the inventory's lists are checked with mail_forward_allowed, and
# Postfix's table for Sieve redirects is rendered from mail_forward_regexps.

from __future__ import annotations

import re

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # imported outside Ansible (unit tests)
    class AnsibleFilterError(ValueError):
        """Stand-in for Ansible's error when Ansible is not installed."""

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

_LABEL = re.compile(r'^[a-z0-9]([a-z0-9-]*[a-z0-9])?$')


def _domain(pattern):
    text = str(pattern).strip().lower().rstrip('.')
    wildcard = text.startswith('*.')
    domain = text[2:] if wildcard else text
    if not domain or not all(_LABEL.match(label) for label in domain.split('.')):
        raise AnsibleFilterError('mail_forward: %r is not a domain or *.domain' % pattern)
    return wildcard, domain


def mail_forward_regexps(patterns):
    """One POSIX ERE per pattern, matching a whole address of an allowed domain."""
    result = []
    for pattern in patterns:
        wildcard, domain = _domain(pattern)
        escaped = domain.replace('.', r'\.')
        result.append('^[^@]*@%s%s$' % ('([^@.]+\\.)+' if wildcard else '', escaped))
    return sorted(set(result))


def mail_forward_allowed(address, patterns):
    """True when automatic forwarding may reach address."""
    text = str(address).strip().lower()
    return any(re.match(rx, text) for rx in mail_forward_regexps(patterns))


class FilterModule:
    """The forwarding allow-list."""

    def filters(self):
        return {
            'mail_forward_regexps': mail_forward_regexps,
            'mail_forward_allowed': mail_forward_allowed,
        }
