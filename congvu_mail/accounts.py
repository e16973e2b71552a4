# Accounts from the inventory: check every record, then render the state the
# mailbox database must hold. The address and password rules themselves live
# in congvu_mail.address and congvu_mail.password; this module only applies
# them to the inventory's organisations, people, lists and domains.

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping

from . import address as _address
from . import forward as _forward
from . import password as _password
from .errors import RuleError
from .plain import plain as _plain

ROLES = ('user', 'admin')
STATES = ('active', 'suspended', 'terminated')


def _text(value):
    return '' if value is None else str(value).strip()


def _organizations(accounts):
    """Every organisation mailbox: organisations, their units and communes' bodies.
    Yields (record label, local part, org dict, parent local part or None)."""
    for index, org in enumerate(accounts.get('organizations') or []):
        label = 'organization #%d (%s)' % (index + 1, _text(org.get('name') or org.get('commune')))
        if org.get('commune'):
            place = _address.mail_place_localpart(org['commune'])
            yield label, place, org, None
            for body in org.get('bodies') or []:
                yield '%s body %s' % (label, body), _address.mail_place_localpart(org['commune'], prefix=body), org, place
            continue
        local = _address.mail_org_localpart(org['name'], abbreviation=org.get('abbreviation'))
        yield label, local, org, None
        for unit in org.get('units') or []:
            unit_label = '%s unit "%s"' % (label, _text(unit.get('name')))
            yield unit_label, _address.mail_org_localpart(
                unit['name'], abbreviation=unit.get('abbreviation'), parent=local), unit, local


def _person_label(person):
    return 'person %s (%s)' % (_text(person.get('id')) or '?', _text(person.get('name')) or 'no name')


# --- Checking the inventory -----------------------------------------------------
#
# Every problem is one line, "<list> · <record> · <field> · <rule> · <what to do>",
# never a password. First each record and field is checked for its YAML type (a
# record of the wrong shape is reported and left out of the rules); then the rules
# run on what is well typed; then every address of every kind is put in one
# namespace, where a clash names both records.

SEP = ' · '

PERSON_FIELDS = ('id', 'name', 'organization', 'unit', 'role', 'state', 'password', 'password_reset',
                 'restore', 'citizen_id', 'address', 'aliases', 'quota_mb')
ORG_FIELDS = ('name', 'abbreviation', 'commune', 'bodies', 'units', 'managers', 'password', 'password_reset',
              'quota_mb')
UNIT_FIELDS = ('name', 'abbreviation', 'managers', 'password', 'password_reset', 'quota_mb')
LIST_FIELDS = ('address', 'members')
DOMAIN_FIELDS = ('name', 'alias_of', 'send_until')
SECRET_FIELDS = ('password',)


def _problem(where, record, field, rule, todo):
    return SEP.join((where, record, field or '-', rule, todo))


def _kind(value):
    """What a YAML value is, in an operator's words."""
    if value is None:
        return 'empty (null)'
    if isinstance(value, bool):
        return 'true/false'
    if isinstance(value, (int, float)):
        return 'a number'
    if isinstance(value, str):
        return 'text'
    if isinstance(value, Mapping):
        return 'a mapping'
    if isinstance(value, (list, tuple)):
        return 'a list'
    if isinstance(value, (datetime.date, datetime.datetime)):
        return 'a date'
    return type(value).__name__


def _shown(value, limit=40):
    text = ' '.join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + '…'


def _check_text(field, value):
    """(rule, what to do) when value is not non-empty text, else None."""
    if isinstance(value, str):
        return None if value.strip() else ('is empty', 'give a value, or leave the field out')
    if field == 'id' and isinstance(value, int) and not isinstance(value, bool):
        return ('is a number, not text', 'quote it: id: "%s" (unquoted, YAML reads digits as a number, '
                                          'with a leading 0 even as an octal one)' % value)
    if field == 'citizen_id' and isinstance(value, int) and not isinstance(value, bool):
        return ('is a number, not text', 'quote it: citizen_id: "..." (unquoted, YAML drops leading zeros '
                                          'or reads it as octal)')
    if field in SECRET_FIELDS:
        return ('is %s, not text' % _kind(value), 'write it as text in quotes (in the vault)')
    return ('is %s, not text' % _kind(value), 'write it as text: %s: "..."' % field)


def _check_token(field, value):
    if isinstance(value, (str, datetime.date)) or (isinstance(value, int) and not isinstance(value, bool)):
        return None if str(value).strip() else ('is empty', 'give a value, or leave the field out')
    return ('is %s, not text or a date' % _kind(value), 'write it as text: %s: "2026-11-29"' % field)


def _check_text_list(field, value):
    if isinstance(value, str):
        return ('is one text, not a list', 'write a list: %s: [%s]' % (field, _shown(value)))
    if not isinstance(value, (list, tuple)):
        return ('is %s, not a list' % _kind(value), 'write a list: %s: [...]' % field)
    bad = [i + 1 for i, item in enumerate(value) if not isinstance(item, str) or not item.strip()]
    if bad:
        return ('item %s is not text' % ', '.join('#%d' % i for i in bad[:5]),
                'write each item as text in quotes')
    return None


def _check_quota(field, value):
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
        return ('is %s, not a whole number of MiB' % ('"%s"' % _shown(value) if isinstance(value, str) else _kind(value)),
                'write the size in MiB, e.g. %s: 2048' % field)
    if int(value) <= 0:
        return ('is not more than 0', 'write the size in MiB, e.g. %s: 2048' % field)
    return None


def _check_choice(choices):
    def check(field, value):
        if isinstance(value, str) and value in choices:
            return None
        return ('%s is not one of %s' % (_shown(value) if isinstance(value, str) else _kind(value),
                                         ', '.join(choices)), 'write one of them')
    return check


_FIELD_CHECKS = {
    'id': _check_text, 'name': _check_text, 'organization': _check_text, 'unit': _check_text,
    'role': _check_choice(ROLES), 'state': _check_choice(STATES), 'password': _check_text,
    'password_reset': _check_token, 'restore': _check_token, 'citizen_id': _check_text,
    'address': _check_text, 'aliases': _check_text_list, 'quota_mb': _check_quota,
    'abbreviation': _check_text, 'commune': _check_text, 'bodies': _check_text_list,
    'managers': _check_text_list, 'members': _check_text_list, 'alias_of': _check_text,
    'send_until': _check_token,
}


def _typed(where, label, record, fields, add, what):
    """The record's well-typed fields (a field of the wrong type is reported and
    left out); None when the record is not a mapping at all."""
    if not isinstance(record, Mapping):
        add(_problem(where, label, '-', 'is %s, not a record' % _kind(record),
                     'write the %s as fields, one per line (- %s: ...)' % (what.split(' ', 1)[-1], fields[0])))
        return None
    good = {}
    for field, value in record.items():
        if field not in fields:
            add(_problem(where, label, field, 'is not a field of %s' % what,
                         'check the spelling; the fields are %s' % ', '.join(fields)))
            continue
        if value is None or field == 'units':
            good[field] = value
            continue
        wrong = _FIELD_CHECKS[field](field, value)
        if wrong:
            add(_problem(where, label, field, *wrong))
        else:
            good[field] = value
    return good


def _records(where, value, add, what):
    """The items of one of the inventory's lists, or [] when it is not a list."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        add(_problem(where, '-', '-', 'is %s, not a list' % _kind(value),
                     'write a list of %s, one item per "- "' % what))
        return []
    return list(value)


def _name_label(record, *fields):
    for field in fields:
        if isinstance(record, Mapping) and isinstance(record.get(field), str) and record[field].strip():
            return _shown(record[field])
    return ''


def _person_record_label(index, person):
    pid = person.get('id') if isinstance(person, Mapping) else None
    name = _name_label(person, 'name')
    head = _text(pid) if isinstance(pid, str) and pid.strip() else '#%d' % (index + 1)
    return '%s (%s)' % (head, name) if name else head


def _local(address):
    return address.rpartition('@')[0] if '@' in address else address


class _Namespace:
    """Every address of the hosted domains and who holds it: one namespace."""

    def __init__(self, domain):
        self.domain = domain
        self.owner = {}

    def full(self, address):
        address = address.strip().lower()
        return address if '@' in address else '%s@%s' % (address, self.domain)

    def claim(self, address, holder, label):
        """None when the address is free (or already this holder's), else who holds it."""
        address = self.full(address)
        held = self.owner.get(address)
        if held is not None and held[0] != holder:
            return held[1]
        self.owner[address] = (holder, label)
        return None

    def __contains__(self, address):
        return self.full(address) in self.owner


def mail_accounts_errors(accounts, policy=None, forward_allowed=None, existing=None, mailed=None):
    """Every problem of every record, as "<list> · <record> · <field> · <rule> · <what to do>".

    forward_allowed: the domain patterns list members outside the hosted domains
    may have (congvu_mail.forward); None checks nothing. existing: the mailboxes the
    database holds (as for mail_accounts_render), whose issued addresses nobody
    else may take. mailed: variable name to the addresses a job mails (mail_admins...),
    each of which must be an account, a list or an alias of the hosted domains."""
    if not isinstance(accounts, Mapping):
        raise RuleError('mail_accounts_errors: expected the accounts model as a dict')
    if isinstance(existing, str):
        try:
            existing = json.loads(existing or '[]')
        except ValueError as error:
            raise RuleError('mail_accounts_errors: existing is not JSON: %s' % error) from None
    # The policy too: read once here rather than through Ansible's lazy mapping per password.
    accounts, policy, existing, mailed = _plain(accounts), _plain(policy), _plain(existing), _plain(mailed)
    problems = []
    try:
        _errors(accounts, policy, forward_allowed, existing or [], mailed or {}, problems.append)
    except (RuleError, KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        # A gap in the checks above: still one clear line, and every problem found so far.
        problems.append(_problem('accounts', '-', '-', 'could not be checked (%s: %s)' % (
            type(error).__name__, _shown(error, 120)), 'report this as a bug of congvu-mail, with the record'))
    return problems


def _errors(accounts, policy, forward_allowed, existing, mailed, add):
    # --- Domains ---------------------------------------------------------------
    domains = []
    for index, d in enumerate(_records('mail_domains', accounts.get('domains'), add, 'domains')):
        label = _name_label(d, 'name') or '#%d' % (index + 1)
        d = _typed('mail_domains', label, d, DOMAIN_FIELDS, add, 'a domain')
        if d is None:
            continue
        if not d.get('name'):
            add(_problem('mail_domains', label, 'name', 'is missing', 'give the domain: - name: example.gov.vn'))
            continue
        domains.append(d)
    names = [_text(d['name']).lower() for d in domains]
    primary = [_text(d['name']).lower() for d in domains if not d.get('alias_of')]
    for d in domains:
        for problem in _address.mail_address_errors('x@' + _text(d['name']).lower()):
            add(_problem('mail_domains', _text(d['name']), 'name', problem, 'write the domain name'))
        if d.get('alias_of') and _text(d['alias_of']).lower() not in primary:
            add(_problem('mail_domains', _text(d['name']), 'alias_of',
                         'alias_of %s is not a hosted domain' % _text(d['alias_of']),
                         'list it in mail_domains without alias_of'))
    domain = _text(accounts.get('domain')).lower() if isinstance(accounts.get('domain'), str) else ''
    if domain not in primary:
        add(_problem('mail_domain', _shown(accounts.get('domain')), '-',
                     'mail_domain %s: not a hosted domain of mail_domains (without alias_of)'
                     % _shown(accounts.get('domain')), 'add it there'))
        domain = domain or (primary[0] if primary else 'invalid')
    if len(set(names)) != len(names):
        add(_problem('mail_domains', '-', 'name', 'a domain is listed twice', 'keep one entry per domain'))
    hosted = set(names)
    alias_target = {_text(d['name']).lower(): _text(d['alias_of']).lower() for d in domains if d.get('alias_of')}

    duplicates = accounts.get('duplicates', 'number')
    if duplicates not in _address.DUPLICATE_STRATEGIES:
        add(_problem('accounts_duplicates', _shown(duplicates), '-',
                     'accounts_duplicates %s: not one of %s' % (_shown(duplicates), ', '.join(_address.DUPLICATE_STRATEGIES)),
                     'write one of them'))
        duplicates = 'number'

    # --- Organisations, units, communes and their bodies -------------------------
    W = 'accounts_organizations'
    org_mailboxes = []  # (label, local, record, top-level local or None)
    top_locals, unit_locals = {}, {}
    managers = []  # (where, label, person id)
    # Records that give no address: references to them are not reported as well
    # (once the record is fixed, they are checked).
    org_records = read_orgs = 0
    unreadable_units = set()
    for index, raw in enumerate(_records(W, accounts.get('organizations'), add, 'organisations')):
        org_records += 1
        label = '#%d' % (index + 1) + (' (%s)' % _name_label(raw, 'name', 'commune') if _name_label(raw, 'name', 'commune') else '')
        org = _typed(W, label, raw, ORG_FIELDS, add, 'an organisation')
        if org is None:
            continue
        if bool(org.get('name')) == bool(org.get('commune')):
            typed_away = not org.get('name') and any(raw.get(f) is not None for f in ('name', 'commune'))
            if not typed_away:  # else already reported by its type
                add(_problem(W, label, 'name', 'has %s' % ('both name and commune' if org.get('name') else
                                                          'neither name nor commune'),
                             'give an organisation its name, or a commune its commune (place name)'))
            continue
        if org.get('commune'):
            if org.get('units'):
                add(_problem(W, label, 'units', 'a commune has bodies, not units', 'use bodies: [du, hdnd]'))
            if org.get('abbreviation'):
                add(_problem(W, label, 'abbreviation', 'a commune is written in full', 'leave abbreviation out'))
            bad_name = _address.mail_name_errors(org['commune'], digits=True)
            for problem in bad_name:
                add(_problem(W, label, 'commune', 'the place name %s' % problem, 'write the place name only'))
            if bad_name:
                continue
            try:
                local = _address.mail_place_localpart(org['commune'])
            except RuleError as error:
                add(_problem(W, label, 'commune', 'gives no address (%s)' % _shown(error, 80), 'write the place name only'))
                continue
            org_mailboxes.append((label, local, org, None))
            top_locals[local] = label
            read_orgs += 1
            for body in org.get('bodies') or []:
                errors = _address.mail_address_errors(body) if '.' not in body else ['has a dot']
                if errors:
                    add(_problem(W, label, 'bodies', 'body %s %s' % (_shown(body), '; '.join(errors)),
                                 'write the body\'s short name, such as du or hdnd'))
                    continue
                org_mailboxes.append(('%s body %s' % (label, body), '%s.%s' % (body, local), org, local))
            managers.extend((label, m) for m in org.get('managers') or [])
            continue
        if org.get('bodies'):
            add(_problem(W, label, 'bodies', 'only a commune has bodies', 'use units for an organisation'))
        local = _org_local(W, label, org, None, add)
        if local is None:
            continue
        org_mailboxes.append((label, local, org, None))
        top_locals[local] = label
        read_orgs += 1
        managers.extend((label, m) for m in org.get('managers') or [])
        units = org.get('units')
        if units is not None and not isinstance(units, (list, tuple)):
            add(_problem(W, label, 'units', 'is %s, not a list' % _kind(units), 'write a list: units: [- name: ...]'))
            units = []
        for uindex, raw_unit in enumerate(units or []):
            ulabel = '%s unit #%d' % (label, uindex + 1) + (
                ' (%s)' % _name_label(raw_unit, 'name') if _name_label(raw_unit, 'name') else '')
            unit = _typed(W, ulabel, raw_unit, UNIT_FIELDS, add, 'a unit')
            if unit is None or not unit.get('name'):
                if unit is not None and not (isinstance(raw_unit, Mapping) and raw_unit.get('name') is not None):
                    add(_problem(W, ulabel, 'name', 'is missing', 'give the unit its name'))
                unreadable_units.add(local)
                continue
            ulocal = _org_local(W, ulabel, unit, local, add)
            if ulocal is None:
                unreadable_units.add(local)
                continue
            org_mailboxes.append((ulabel, ulocal, unit, local))
            unit_locals[ulocal] = ulabel
            managers.extend((ulabel, m) for m in unit.get('managers') or [])

    for label, local, org, _parent in org_mailboxes:
        if org.get('password') is not None:
            for problem in _password.mail_password_errors(org['password'], role='user', login=local, policy=policy):
                add(_problem(W, label, 'password', 'the initial password %s' % problem,
                             'set a compliant password in the vault'))

    # --- People ----------------------------------------------------------------
    W = 'accounts_people'
    people = []  # (label, person) of records well typed enough to hold an address
    seen_ids = {}
    for index, raw in enumerate(_records(W, accounts.get('people'), add, 'people')):
        label = _person_record_label(index, raw)
        person = _typed(W, label, raw, PERSON_FIELDS, add, 'a person')
        if person is None:
            continue
        pid = _text(person.get('id'))
        if not pid:
            if not (isinstance(raw, Mapping) and raw.get('id') is not None):
                add(_problem(W, label, 'id', 'is missing', 'give every person a stable id (staff number or citizen ID), '
                                                           'quoted: id: "BG0009"'))
        elif pid in seen_ids:
            add(_problem(W, label, 'id', 'id %s is used twice (also %s)' % (pid, seen_ids[pid]), 'ids must be unique'))
            pid = ''
        else:
            seen_ids[pid] = label
        explicit = person.get('address')
        if not person.get('name'):
            if not (isinstance(raw, Mapping) and raw.get('name') is not None):
                add(_problem(W, label, 'name', 'is missing', 'give the full name'))
            continue
        name_problems = [] if explicit else _address.mail_name_errors(person['name'])
        for problem in name_problems:
            add(_problem(W, label, 'name', 'the name %s' % problem,
                         'write only the full name (leave titles and notes out), or give the person an '
                         'explicit address: address: <local part>'))
        role = person.get('role') or 'user'
        state = person.get('state') or 'active'
        org = person.get('organization')
        if org and org not in top_locals and (org in unit_locals or read_orgs == org_records):
            rule = ('%s is a unit, not an organisation' % org if org in unit_locals else
                    'organization %s is not an organisation mailbox of the inventory' % org)
            add(_problem(W, label, 'organization', rule, 'use its address local part (an organisation or a commune)'))
        unit = person.get('unit')
        if unit and not org:
            add(_problem(W, label, 'unit', 'a unit needs its organization', 'give organization: too'))
        elif unit and org in top_locals and ('%s.%s' % (unit, org)) not in unit_locals and org not in unreadable_units:
            add(_problem(W, label, 'unit', 'unit %s is not a unit of %s' % (unit, org), 'use the unit\'s abbreviation'))
        if person.get('citizen_id') and not re.fullmatch(r'[0-9]+', _text(person['citizen_id'])):
            add(_problem(W, label, 'citizen_id', 'has characters other than digits', 'write the 12 digits, quoted'))
        login = None
        if explicit:
            address = explicit.strip().lower()
            at = address.rpartition('@')[2] if '@' in address else domain
            errors = _address.mail_address_errors(address)
            for problem in errors:
                add(_problem(W, label, 'address', 'address %s %s' % (_shown(explicit), problem),
                             'write a local part such as longnv (a-z, 0-9, dots)'))
            if not errors and at not in primary:
                add(_problem(W, label, 'address', 'address %s is in %s, which the inventory does not host%s'
                             % (_shown(explicit), at, ' as a mailbox domain' if at in hosted else ''),
                             'write the local part only (it is issued at mail_domain), or host that domain'))
                errors = ['not hosted']
            if errors:
                continue
            login = address
        elif not name_problems:
            try:
                login = _address.mail_person_localpart(person['name'])
            except RuleError as error:
                add(_problem(W, label, 'name', 'gives no address (%s)' % _shown(error, 80),
                             'write the full Vietnamese name, or give an explicit address'))
                continue
        if state != 'terminated':
            if person.get('password') is None:
                if not (isinstance(raw, Mapping) and raw.get('password') is not None):
                    add(_problem(W, label, 'password', 'no initial password', 'set one in the vault'))
            elif login is not None:
                for problem in _password.mail_password_errors(person['password'], role=role, login=login, policy=policy):
                    add(_problem(W, label, 'password', 'the initial password %s' % problem,
                                 'set a compliant password in the vault'))
        for alias in person.get('aliases') or []:
            if '@' in alias:
                add(_problem(W, label, 'aliases', 'alias %s is a full address' % _shown(alias),
                             'write the local part only: aliases are issued at mail_domain'))
                continue
            for problem in _address.mail_address_errors(alias):
                add(_problem(W, label, 'aliases', 'alias %s %s' % (_shown(alias), problem), 'choose another alias'))
        if pid and login is not None and not name_problems:
            people.append((label, dict(person, id=pid)))

    for where_label, manager in managers:
        if manager not in seen_ids:
            add(_problem('accounts_organizations', where_label, 'managers', 'manager %s is not a person id' % manager,
                         'name people by their id'))

    # --- Lists -------------------------------------------------------------------
    W = 'accounts_lists'
    lists = []
    for index, raw in enumerate(_records(W, accounts.get('lists'), add, 'lists')):
        label = _name_label(raw, 'address') or '#%d' % (index + 1)
        mlist = _typed(W, label, raw, LIST_FIELDS, add, 'a list')
        if mlist is None:
            continue
        if not mlist.get('address'):
            if not (isinstance(raw, Mapping) and raw.get('address') is not None):
                add(_problem(W, label, 'address', 'is missing', 'give the list its local part'))
            continue
        errors = _address.mail_address_errors(mlist['address']) if '@' not in mlist['address'] else [
            'is a full address']
        for problem in errors:
            add(_problem(W, label, 'address', 'address %s' % problem, 'write a local part (a-z, 0-9, dots)'))
        if not errors:
            lists.append((label, mlist))

    # --- One namespace -------------------------------------------------------------
    names_space = _Namespace(domain)

    def taken(where, label, field, address, holder, what, todo):
        other = names_space.claim(address, holder, '%s %s' % (where, label))
        if other:
            add(_problem(where, label, field, '%s %s is already the address of %s' % (what, names_space.full(address),
                                                                                  other), todo))
        return other

    role_addresses = []
    for name in _records('accounts_role_addresses', accounts.get('role_addresses'), add, 'local parts'):
        if not isinstance(name, str) or _address.mail_address_errors(name):
            add(_problem('accounts_role_addresses', _shown(name), '-', 'is not a local part', 'write postmaster, abuse'))
            continue
        role_addresses.append(name)
        taken('accounts_role_addresses', name, '-', name, 'role:' + name, 'role address', 'keep each once')

    # Issued addresses (the database): they stay their person's, listed or not.
    issued = {}
    listed = {person['id'] for _label, person in people}
    for row in existing if isinstance(existing, list) else []:
        if not isinstance(row, Mapping) or _text(row.get('account_id')).startswith('org:'):
            continue
        pid, address = _text(row.get('account_id')), _text(row.get('address'))
        if not pid or not address:
            continue
        issued[pid] = '%s@%s' % (_local(address), domain)
        if pid not in listed:
            names_space.claim(issued[pid], 'person:' + pid, 'person %s, issued in the database%s' % (
                pid, '' if pid in seen_ids else ' (no longer in the inventory)'))

    # Every person's address as it would be with nothing else in the way: no
    # alias, list or organisation may then take it (nor renumber anyone).
    natural = {}
    plain = [p for _l, p in people if not p.get('address')]
    labels = {p['id']: l for l, p in people}
    try:
        natural = _address.mail_assign_addresses(
            [{'id': p['id'], 'name': p['name'], 'organization': p.get('organization'),
              'citizen_id': p.get('citizen_id')} for p in plain],
            domain, issued=issued,
            duplicates=duplicates, reserved=role_addresses)
    except RuleError as error:
        add(_problem('accounts_people', '-', '-', 'addresses could not be given (%s)' % _shown(error, 160),
                     'fix the problems above, or give the people named there an explicit address'))
    for pid, address in sorted(natural.items()):
        names_space.claim(address, 'person:' + pid, 'accounts_people %s' % labels[pid])
    for pid, address in sorted(issued.items()):
        if pid in labels:  # an explicit address wins, the issued one stays blocked
            names_space.claim(address, 'person:' + pid, 'accounts_people %s (issued in the database)' % labels[pid])
    for label, person in people:
        if person.get('address'):
            taken('accounts_people', label, 'address', person['address'], 'person:' + person['id'], 'address',
                  'choose another address: this one belongs to that record')

    for label, local, _org, _parent in org_mailboxes:
        taken('accounts_organizations', label, 'name', local, 'org:' + label, 'address',
              'give one of them an explicit abbreviation')
    for number, (label, mlist) in enumerate(lists):
        taken('accounts_lists', label, 'address', mlist['address'], 'list:%d' % number, 'address',
              'choose another list address')
    for label, person in people:  # a terminated person's aliases stay reserved too (mail_accounts_render)
        for alias in person.get('aliases') or []:
            if '@' not in alias and not _address.mail_address_errors(alias):
                taken('accounts_people', label, 'aliases', alias, 'alias:%s:%s' % (person['id'], alias), 'alias',
                      'choose another alias')

    def known(address):
        """Whether a full address is held in a hosted domain (alias domains map to theirs)."""
        local, _, at = address.strip().lower().rpartition('@')
        return '%s@%s' % (local, alias_target.get(at, at)) in names_space

    # --- References --------------------------------------------------------------------
    for label, mlist in lists:
        for member in mlist.get('members') or []:
            member = _text(member)
            if '@' not in member:
                if member not in seen_ids and not any(member == m[1] for m in org_mailboxes) and (
                        read_orgs == org_records and not unreadable_units):
                    add(_problem('accounts_lists', label, 'members', 'member %s is neither a person id nor an '
                                 'organisation' % member, 'fix the member list'))
            elif member.lower().rpartition('@')[2] in hosted:
                if not known(member):
                    add(_problem('accounts_lists', label, 'members', 'member %s is no account, list or alias of '
                                 'the hosted domains' % member, 'name an existing address, a person id or an organisation'))
            elif forward_allowed is not None and not _forward.mail_forward_allowed(member, list(forward_allowed) + names):
                add(_problem('accounts_lists', label, 'members', 'member %s is outside the forwarding allow-list (no '
                             'automatic forwarding to non-government mailboxes)' % member,
                             'remove it, or add its domain to regulation_forward_allowed_domains'))

    targets = _records('accounts_postmaster', accounts.get('postmaster'), add, 'person ids, organisations or addresses')
    for target in targets:
        if not isinstance(target, str) or not target.strip():
            add(_problem('accounts_postmaster', _shown(target), '-', 'is %s, not text' % _kind(target),
                         'write a person id, an organisation or an address'))
            continue
        target = target.strip()
        if '@' not in target and target not in seen_ids and not any(target == m[1] for m in org_mailboxes):
            add(_problem('accounts_postmaster', target, '-', '%s is neither a person id, an organisation nor an '
                         'address' % target, 'fix it'))
        elif '@' in target and target.lower().rpartition('@')[2] in hosted and not known(target):
            add(_problem('accounts_postmaster', target, '-', 'is no account, list or alias of the hosted domains',
                         'name an existing address'))
    if role_addresses and not targets and not any(
            (p.get('role') or 'user') == 'admin' and (p.get('state') or 'active') == 'active' for _l, p in people):
        add(_problem('accounts_postmaster', '-', '-', 'nobody receives postmaster@ mail',
                     'name people or addresses there, or give an active person role admin'))

    by_address = {}  # the same address in several variables is one problem
    for variable, value in sorted(mailed.items()):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            add(_problem(variable, '-', '-', 'is %s, not a list of addresses' % _kind(value),
                         'write a list: %s: [quantri@%s]' % (variable, domain)))
            continue
        for address in value:
            by_address.setdefault(_shown(address, 80), (address, []))[1].append(variable)
    for shown, (address, variables) in sorted(by_address.items()):
        where = ', '.join(variables)
        if not isinstance(address, str) or '@' not in address or _address.mail_address_errors(address.strip().lower()):
            add(_problem(where, shown, '-', 'is not an address', 'write a full address'))
        elif address.strip().lower().rpartition('@')[2] not in hosted:
            add(_problem(where, shown, '-', 'is not in a hosted domain',
                         'name an account, list or alias of mail_domains'))
        elif not known(address):
            add(_problem(where, shown, '-', 'is no account, list or alias of the hosted domains',
                         'name an existing address (a person, an organisation, a list, an alias or postmaster@)'))


def _org_local(where, label, org, parent, add):
    """The address local part of an organisation or unit, or None (reported)."""
    if org.get('abbreviation'):
        source = 'abbreviation'
    else:
        source = 'name'
        problems = _address.mail_name_errors(org['name'])
        for problem in problems:
            add(_problem(where, label, 'name', 'the name %s' % problem,
                         'write only the name, or give an explicit abbreviation: abbreviation: <local part>'))
        if problems:
            return None
    try:
        return _address.mail_org_localpart(org['name'] if org.get('name') else '', abbreviation=org.get('abbreviation'),
                                           parent=parent)
    except RuleError as error:
        add(_problem(where, label, source, 'gives no address (%s)' % _shown(error, 80),
                     'give an explicit abbreviation (a-z, 0-9)'))
        return None


def _role_targets(accounts):
    """Who receives postmaster@ and abuse@: accounts_postmaster, or every active admin person."""
    named = [_text(t) for t in accounts.get('postmaster') or []]
    if named:
        return named
    return [_text(p.get('id')) for p in accounts.get('people') or []
            if (p.get('role') or 'user') == 'admin' and (p.get('state') or 'active') == 'active']


def _no_crash(function):
    """Render-side filters run on data mail_accounts_errors has passed; should
    anything else reach them, they fail as a filter, never with a Python error."""
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RuleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise RuleError('%s: the accounts do not pass the check (%s: %s); run the check first: '
                            'make check INV=<inventory>' % (function.__name__, type(error).__name__,
                                                           error)) from None
    guarded.__name__ = function.__name__
    guarded.__doc__ = function.__doc__
    return guarded


def _reset_due(known, reset):
    """Whether the inventory's password is to be stored: a new mailbox, or a new reset token."""
    return known is None or _text(known.get('password_reset')) != reset


def _with_passwords(accounts):
    """(account_id, label, role, login, password, reset token) of every record with a password."""
    for label, local, org, _parent in _organizations(accounts):
        if org.get('password') is not None:
            yield ('org:' + local, label, 'user', local, org['password'],
                   _text(org.get('password_reset') or 'initial'))
    for person in accounts.get('people') or []:
        if person.get('password') is not None and (person.get('state') or 'active') != 'terminated':
            yield (_text(person['id']), _person_label(person), person.get('role') or 'user',
                   _text(person.get('address')), person['password'],
                   _text(person.get('password_reset') or 'initial'))


@_no_crash
def mail_accounts_resets(accounts, existing=None):
    """account_id of every existing mailbox whose inventory password_reset token is new:
    the mailboxes whose password the next sync sets again."""
    if isinstance(existing, str):
        existing = json.loads(existing)
    accounts = _plain(accounts)
    known = {_text(row['account_id']): row for row in _plain(existing) or []}
    return sorted(account_id for account_id, _label, _role, _login, _pw, reset in _with_passwords(accounts)
                  if account_id in known and _reset_due(known[account_id], reset))


@_no_crash
def mail_accounts_reused(accounts, history=None, policy=None):
    """Every record whose inventory password (about to be set again by a reset) is one of
    the mailbox's last passwords (Điều 4.2, 2025 text). O(history) maps account_id to the
    stored hashes of its current and earlier passwords, oldest first; records not in it are
    not checked. Problems name the record and the rule, never the password."""
    if isinstance(history, str):
        history = json.loads(history or '{}')
    accounts, history = _plain(accounts), _plain(history) or {}
    policy = _password._checked_policy('mail_accounts_reused', _plain(policy))
    reused = _password.MSG_REUSED.format(history=int(policy['history']))
    problems = []
    for account_id, label, _role, _login, password, _reset in _with_passwords(accounts):
        previous = history.get(account_id)
        if previous and _password.mail_password_reused(password, previous, policy=policy):
            problems.append('%s: the reset password %s - set another one in the vault' % (label, reused))
    return problems


@_no_crash
def mail_accounts_render(accounts, existing=None, policy=None, hashing=None):
    """The state the mailbox database must hold (see DOCUMENTATION)."""
    accounts, existing, hashing = _plain(accounts), _plain(existing), _plain(hashing or {})
    domain = _text(accounts['domain']).lower()
    quota = accounts.get('quota_mb') or {}
    must_change = bool(accounts.get('must_change', True))
    existing = {_text(row['account_id']): row for row in existing or []}

    mailboxes, aliases, senders, to_hash = [], [], [], []

    def mailbox(account_id, address, name, kind, password, reset, **extra):
        row = dict(account_id=account_id, address=address, name=name, kind=kind,
                   organization=extra.get('organization'), unit=extra.get('unit'),
                   role=extra.get('role') or 'user', state=extra.get('state') or 'active',
                   quota_bytes=int(extra.get('quota_mb') or quota.get(kind, 0)) * 1048576,
                   password=None, password_reset=reset, must_change=must_change,
                   restore=_text(extra.get('restore')) or None)
        if password is not None and _reset_due(existing.get(account_id), reset):
            to_hash.append((row, password))
        mailboxes.append(row)

    org_address, managed = {}, []
    for _label, local, org, parent in _organizations(accounts):
        address = '%s@%s' % (local, domain)
        org_address[local] = address
        managed.extend((address, _text(manager)) for manager in org.get('managers') or [])
        mailbox('org:' + local, address, _text(org.get('name') or org.get('commune')), 'organization',
                org.get('password'), _text(org.get('password_reset') or 'initial'),
                organization=parent or local, unit=local if parent else None, quota_mb=org.get('quota_mb'))

    people = accounts.get('people') or []
    # Issued local parts belong to their person for good, at whatever domain is
    # now the province's (the 2025 merger moves everybody to the new domain).
    issued = {pid: '%s@%s' % (_text(row['address']).split('@')[0], domain)
              for pid, row in existing.items() if not pid.startswith('org:')}
    reserved = (set(org_address) | {_text(m.get('address')) for m in accounts.get('lists') or []}
                | {_text(name) for name in accounts.get('role_addresses') or []})
    for person in people:
        reserved.update(person.get('aliases') or [])
    addresses = _address.mail_assign_addresses(
        [{'id': _text(p['id']), 'name': p['name'], 'organization': p.get('organization'),
          'citizen_id': p.get('citizen_id'), 'address': p.get('address')} for p in people],
        domain, issued=issued, duplicates=accounts.get('duplicates', 'number'), reserved=sorted(reserved))

    by_id = {}
    for person in people:
        pid = _text(person['id'])
        by_id[pid] = person
        unit = person.get('unit')
        mailbox(pid, addresses[pid], _text(person['name']), 'person', person.get('password'),
                _text(person.get('password_reset') or 'initial'),
                organization=person.get('organization'),
                unit='%s.%s' % (unit, person.get('organization')) if unit else None,
                role=person.get('role') or 'user', state=person.get('state') or 'active',
                quota_mb=person.get('quota_mb'), restore=person.get('restore'))
        if (person.get('state') or 'active') == 'terminated':
            continue
        for alias in person.get('aliases') or []:
            alias_address = '%s@%s' % (alias, domain)
            aliases.append({'address': alias_address, 'goto': addresses[pid]})
            senders.append({'address': alias_address, 'login': addresses[pid]})

    # Staff named as managers may send as their organisation's mailbox.
    for address, manager in managed:
        if manager in by_id and (by_id[manager].get('state') or 'active') != 'terminated':
            senders.append({'address': address, 'login': addresses[manager]})

    for mlist in accounts.get('lists') or []:
        list_address = '%s@%s' % (_text(mlist['address']), domain)
        for member in mlist.get('members') or []:
            member = _text(member)
            if member in addresses:
                if (by_id[member].get('state') or 'active') == 'terminated':
                    continue
                goto = addresses[member]
            else:
                goto = org_address.get(member, member)
            aliases.append({'address': list_address, 'goto': goto})

    for name in accounts.get('role_addresses') or []:
        for target in _role_targets(accounts):
            goto = addresses.get(target) or org_address.get(target) or target
            aliases.append({'address': '%s@%s' % (_text(name), domain), 'goto': goto})

    hashes = _password.mail_password_hash_many(
        [(row['account_id'], password) for row, password in to_hash],
        scheme=hashing.get('scheme'), rounds=hashing.get('rounds'))
    for (row, _password_text), value in zip(to_hash, hashes):
        row['password'] = value

    key = lambda row: tuple(sorted(row.items()))  # noqa: E731 - stable order for re-runs
    return {
        'domains': [{'name': _text(d['name']).lower(), 'alias_of': d.get('alias_of'),
                     'send_until': _text(d.get('send_until')) or None}
                    for d in sorted(accounts.get('domains') or [], key=lambda d: _text(d['name']))],
        'mailboxes': sorted(mailboxes, key=lambda row: row['account_id']),
        'aliases': sorted({key(a): a for a in aliases}.values(), key=key),
        'senders': sorted({key(s): s for s in senders}.values(), key=key),
    }


def mail_accounts_render_json(accounts, existing=None, policy=None, hashing=None):
    """mail_accounts_render as JSON text, for the sync's stdin. A dict returned to
    Ansible is wrapped again for templating, and its to_json then walks 20,000 rows
    slowly (13 s of a 20,000-people re-run); text passes through as it is. O(existing)
    may be given as the JSON text the database returned, for the same reason."""
    if isinstance(existing, str):  # the database's JSON as read, never walked by Ansible
        existing = json.loads(existing)
    return json.dumps(mail_accounts_render(accounts, existing=existing, policy=policy, hashing=hashing),
                      ensure_ascii=False, sort_keys=True)
