# The forwarding allow-list ("no automatic forwarding to non-government
# mailboxes"): which domains automatic forwarding may reach. One rule, used
# twice: the inventory's lists are checked with mail_forward_allowed, and
# Postfix's table for Sieve redirects is rendered from mail_forward_regexps.

from __future__ import annotations

import re

from .errors import RuleError


_LABEL = re.compile(r'^[a-z0-9]([a-z0-9-]*[a-z0-9])?$')


def _domain(pattern):
    text = str(pattern).strip().lower().rstrip('.')
    wildcard = text.startswith('*.')
    domain = text[2:] if wildcard else text
    if not domain or not all(_LABEL.match(label) for label in domain.split('.')):
        raise RuleError('mail_forward: %r is not a domain or *.domain' % pattern)
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
