# The local resolver (role resolver): the zone-file snippets role dns writes
# (the records an operator publishes) turned into unbound's local-data, so the
# lab's resolver answers the hosted domains exactly as the published zone
# would; and the checks of the resolver's inventory settings.

from __future__ import annotations

import ipaddress

from .errors import RuleError


def _strip_comment(line):
    """The line without its comment (a ';' outside double quotes)."""
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ';' and not quoted:
            return line[:i]
    return line


def _squeeze(text):
    """Runs of blanks outside double quotes become one space."""
    out = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if not quoted and char in ' \t' and out and out[-1] == ' ':
            continue
        out.append(' ' if not quoted and char == '\t' else char)
    return ''.join(out).strip()


def mail_resolver_local_data(zone_text):
    """unbound local-data lines ('name TTL IN TYPE data') of a zone-file snippet.

    Comments are dropped and a record written over several lines in
    parentheses becomes one line, as local-data needs."""
    records = []
    pending = []
    depth = 0
    for raw in str(zone_text).splitlines():
        line = _strip_comment(raw).strip()
        if not line:
            continue
        quoted = False
        kept = []
        for char in line:
            if char == '"':
                quoted = not quoted
            if not quoted and char in '()':
                depth += 1 if char == '(' else -1
                continue
            kept.append(char)
        part = ''.join(kept).strip()
        if part:
            pending.append(part)
        if depth < 0:
            raise RuleError('mail_resolver_local_data: unbalanced ")" in %r' % raw)
        if depth == 0 and pending:
            record = ' '.join(pending)
            record = _squeeze(record)
            if "'" in record:
                raise RuleError("mail_resolver_local_data: a record holds a \"'\": %r" % record)
            records.append(record)
            pending = []
    if depth:
        raise RuleError('mail_resolver_local_data: unbalanced "(" at the end of the snippet')
    return records


def mail_resolver_address_errors(addresses, name='resolver_forwarders'):
    """One line per entry that is not an IP address (optionally @port)."""
    errors = []
    for index, entry in enumerate(addresses or []):
        text = str(entry)
        host, _, port = text.partition('@')
        try:
            ipaddress.ip_address(host)
            if port and not (port.isdigit() and 0 < int(port) < 65536):
                raise ValueError(port)
        except ValueError:
            errors.append('%s[%d] · %r · not an IP address (optionally @port, e.g. 192.0.2.53 or '
                          '192.0.2.53@5353) · write the resolver\'s address, not its name'
                          % (name, index, text))
    return errors
