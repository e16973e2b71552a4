# Accounts from the inventory: check every record, then render the state the
# mailbox database must hold. The address and password rules themselves live
# in mail_address.py and mail_password.py; this module only applies them to
# the inventory's organisations, people, lists and domains.

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping
from pathlib import Path

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # imported outside Ansible (unit tests, bench/)
    class AnsibleFilterError(ValueError):
        """Stand-in for Ansible's error when Ansible is not installed."""

try:  # ansible-core 2.19's lazy containers, only to read them faster (see _plain)
    from ansible._internal._templating._lazy_containers import _AnsibleLazyTemplateMixin, _LazyValue
except ImportError:  # another ansible-core, or none: every item is read the ordinary way
    _AnsibleLazyTemplateMixin = _LazyValue = None

DOCUMENTATION = r"""
  name: mail_accounts
  short_description: Check the inventory's accounts and render the mailbox database's state
  description:
    - C(mail_accounts_errors(accounts, policy=None, forward_allowed=None)) lists every problem
      of every record (organisation, unit, person, list, domain), each naming the record, the
      rule and what to do; never a password. Empty when the inventory is good. With
      O(forward_allowed) (domain patterns, see mail_forward), a list member outside the
      hosted domains and those patterns is a problem too.
    - C(mail_accounts_render(accounts, existing=None, policy=None, hashing=None)) gives the
      state the database must hold. O(existing) is what the database already holds (one dict
      per mailbox with C(account_id), C(address), C(password_reset)): issued addresses are
      kept, and a password hash is rendered only for a new mailbox or a new C(password_reset)
      token.
    - C(mail_accounts_render_json(accounts, existing=None, policy=None, hashing=None)) is the
      same state as JSON text, what the sync reads on stdin (much faster in Ansible than
      C(mail_accounts_render | to_json) for thousands of people); its O(existing) may be
      the database's JSON text itself.
    - C(mail_accounts_resets(accounts, existing=None)) lists the account ids whose password
      the next sync sets again (an existing mailbox with a new C(password_reset) token).
    - C(mail_accounts_reused(accounts, history=None, policy=None)) lists the records whose
      reset password reuses one of the mailbox's last passwords; O(history) maps account id
      to stored hashes, oldest first (C(mail_accounts_resets) says whose to read).
    - A person's C(restore) token, when it changes, lifts a suspension the inactivity job
      made; the sync keeps such a suspension otherwise.
    - O(accounts) holds C(domain) (where addresses are issued), C(domains) (hosted domains;
      an item with C(alias_of) is an alias domain, C(send_until) a date), C(organizations),
      C(people), C(lists), C(duplicates), C(must_change), C(quota_mb) (per C(person) and
      C(organization)), C(role_addresses) (local parts such as postmaster and abuse that
      reach the administrators) and C(postmaster) (who they are: person ids, organisations
      or addresses; empty means every active person with role admin). The README
      documents the model with a worked example.
  positional: _input
  options:
    _input:
      description: The accounts model described above.
      type: dict
      required: true
"""

EXAMPLES = r"""
- name: Refuse a bad inventory before any host is touched
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('\n') }}"
  vars:
    problems: "{{ accounts | mail_accounts_errors(policy=regulation_password_policy) }}"
"""

RETURN = r"""
  _value:
    description: A list of problems (mail_accounts_errors), or the rendered state with keys
      C(domains), C(mailboxes), C(aliases) and C(senders) (mail_accounts_render), or that
      state as JSON text (mail_accounts_render_json).
    type: raw
"""

ROLES = ('user', 'admin')
STATES = ('active', 'suspended', 'terminated')


def _sibling(name):
    """Import a sibling filter module: as a plain module where filter_plugins is on
    sys.path, else by its path (Ansible loads plugins under other module names)."""
    if name in sys.modules:
        return sys.modules[name]
    try:
        return __import__(name)
    except ImportError:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(name + '.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
        return module


_address = _sibling('mail_address')
_password = _sibling('mail_password')
_forward = _sibling('mail_forward')


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


_TEMPLATE = object()  # _raw_plain's answer for data that holds a possible template


def _raw_plain(value):
    """A plain copy of data not templated yet, or _TEMPLATE if any string in it
    may be a template (only Ansible can render that)."""
    if isinstance(value, str):
        return _TEMPLATE if ('{{' in value or '{%' in value or '{#' in value) else str(value)
    if _LazyValue is not None and isinstance(value, _AnsibleLazyTemplateMixin):
        return _TEMPLATE
    if isinstance(value, Mapping):
        copy = {}
        for key, item in value.items():
            item = _raw_plain(item)
            if item is _TEMPLATE:
                return _TEMPLATE
            copy[str(key)] = item
        return copy
    if isinstance(value, (list, tuple)):
        copy = []
        for item in value:
            item = _raw_plain(item)
            if item is _TEMPLATE:
                return _TEMPLATE
            copy.append(item)
        return copy
    return value


def _plain_lazy(container, pairs):
    """The items of one of Ansible's lazy containers, as (key, plain value): an item
    holding no template is copied as stored, without Ansible's templating of every
    string (most of a 20,000-people run went there); any other item is read through
    the container, so Ansible renders it exactly as it would have."""
    for key, stored in pairs:
        if type(stored) is _LazyValue:  # pylint: disable=unidiomatic-typecheck
            plain = _raw_plain(stored.value)
            yield key, (_plain(container[key]) if plain is _TEMPLATE else plain)
        else:  # already rendered by an earlier access
            yield key, _plain(stored)


def _plain(value):
    """The same data as plain dicts, lists and strings, in one pass. Ansible hands
    filters lazy containers that template every item on each access: read
    thousands of people through them and most of the time goes there."""
    if _LazyValue is not None and isinstance(value, _AnsibleLazyTemplateMixin):
        if isinstance(value, dict):
            return {str(key): item for key, item in _plain_lazy(value, dict.items(value))}
        if isinstance(value, list):
            return [item for _index, item in _plain_lazy(value, enumerate(list.__iter__(value)))]
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def mail_accounts_errors(accounts, policy=None, forward_allowed=None):
    """Every problem of every record, as "<record>: <rule> - <what to do>".

    forward_allowed: the domain patterns list members outside the hosted domains
    may have (mail_forward.py); None checks nothing."""
    if not isinstance(accounts, Mapping):
        raise AnsibleFilterError('mail_accounts_errors: expected the accounts model as a dict')
    # The policy too: read once here rather than through Ansible's lazy mapping per password.
    accounts, policy = _plain(accounts), _plain(policy)
    problems = []
    add = problems.append

    # Domains.
    domains = accounts.get('domains') or []
    names = [_text(d.get('name')).lower() for d in domains]
    primary = [d for d in domains if not d.get('alias_of')]
    for d in domains:
        if d.get('alias_of') and _text(d['alias_of']).lower() not in [_text(p.get('name')).lower() for p in primary]:
            add('domain %s: alias_of %s is not a hosted domain - list it in mail_domains without alias_of'
                % (d.get('name'), d['alias_of']))
    if _text(accounts.get('domain')).lower() not in [_text(p.get('name')).lower() for p in primary]:
        add('mail_domain %s: not a hosted domain of mail_domains (without alias_of) - add it there'
            % accounts.get('domain'))
    if len(set(names)) != len(names):
        add('mail_domains: a domain is listed twice - keep one entry per domain')

    # Organisations, units, communes.
    org_locals = {}
    for label, local, org, _parent in _safe_organizations(accounts, add):
        for problem in _address.mail_address_errors(local):
            add('%s: address %s: %s - give an explicit abbreviation' % (label, local, problem))
        if local in org_locals:
            add('%s: address %s is also the address of %s - give one of them an explicit abbreviation'
                % (label, local, org_locals[local]))
        org_locals.setdefault(local, label)
        if org.get('password') is not None:
            for problem in _password.mail_password_errors(org['password'], role='user', login=local, policy=policy):
                add('%s: initial password %s - set a compliant password in the vault' % (label, problem))

    # People.
    seen_ids = {}
    explicit = {}
    for person in accounts.get('people') or []:
        label = _person_label(person)
        pid = _text(person.get('id'))
        if not pid:
            add('%s: no id - give every person a stable id (staff number or citizen ID)' % label)
        elif pid in seen_ids:
            add('%s: id %s is used twice - ids must be unique' % (label, pid))
        seen_ids[pid] = label
        if not _text(person.get('name')):
            add('%s: no name - give the full name' % label)
            continue
        role = person.get('role', 'user')
        if role not in ROLES:
            add('%s: role %r is not one of %s' % (label, role, ', '.join(ROLES)))
            role = 'user'
        if person.get('state', 'active') not in STATES:
            add('%s: state %r is not one of %s' % (label, person.get('state'), ', '.join(STATES)))
        org = person.get('organization')
        if org and org not in org_locals:
            add('%s: organization %s is not an organisation mailbox of the inventory - use its address local part'
                % (label, org))
        unit = person.get('unit')
        if unit and ('%s.%s' % (unit, org)) not in org_locals:
            add('%s: unit %s is not a unit of %s - use the unit\'s abbreviation' % (label, unit, org))
        try:
            login = _text(person.get('address')) or _address.mail_person_localpart(person['name'])
        except AnsibleFilterError as error:
            add('%s: name: %s - give the full Vietnamese name' % (label, error))
            continue
        if person.get('address'):
            for problem in _address.mail_address_errors(person['address'].split('@')[0]):
                add('%s: address %s: %s' % (label, person['address'], problem))
            if person['address'] in explicit:
                add('%s: address %s is also given to %s - addresses are personal' % (
                    label, person['address'], explicit[person['address']]))
            explicit[person['address']] = label
        if person.get('state', 'active') != 'terminated':
            if person.get('password') is None:
                add('%s: no initial password - set one in the vault' % label)
            else:
                for problem in _password.mail_password_errors(person['password'], role=role, login=login, policy=policy):
                    add('%s: initial password %s - set a compliant password in the vault' % (label, problem))
        for alias in person.get('aliases') or []:
            for problem in _address.mail_address_errors(alias):
                add('%s: alias %s: %s' % (label, alias, problem))
            if alias in org_locals:
                add('%s: alias %s is the address of %s - choose another alias' % (label, alias, org_locals[alias]))

    # Distribution lists.
    for index, mlist in enumerate(accounts.get('lists') or []):
        label = 'list #%d (%s)' % (index + 1, _text(mlist.get('address')))
        for problem in _address.mail_address_errors(_text(mlist.get('address'))):
            add('%s: address: %s' % (label, problem))
        if _text(mlist.get('address')) in org_locals:
            add('%s: address is the address of %s - choose another' % (label, org_locals[mlist['address']]))
        for member in mlist.get('members') or []:
            if '@' not in _text(member) and _text(member) not in seen_ids and _text(member) not in org_locals:
                add('%s: member %s is neither a person id nor an organisation - fix the member list' % (label, member))
            elif '@' in _text(member) and forward_allowed is not None and not _forward.mail_forward_allowed(
                    member, list(forward_allowed) + names):
                add('%s: member %s is outside the forwarding allow-list (no automatic forwarding to '
                    'non-government mailboxes) - remove it, or add its domain to regulation_forward_allowed_domains'
                    % (label, member))

    # postmaster@ (RFC 5321) and abuse@ (RFC 2142): every hosted domain has them.
    list_locals = {_text(m.get('address')) for m in accounts.get('lists') or []}
    for name in accounts.get('role_addresses') or []:
        name = _text(name)
        for problem in _address.mail_address_errors(name):
            add('role address %s: %s' % (name, problem))
        taken = org_locals.get(name) or ('a list' if name in list_locals else None) or next(
            (_person_label(p) for p in accounts.get('people') or []
             if name in (p.get('aliases') or []) or _text(p.get('address')).split('@')[0] == name), None)
        if taken:
            add('role address %s: it is also the address of %s - mail to %s@ must reach the administrators; '
                'rename that one' % (name, taken, name))
    if accounts.get('role_addresses') and not _role_targets(accounts):
        add('accounts_postmaster: nobody receives postmaster@ mail - name people or addresses there, '
            'or give an active person role admin')
    for target in accounts.get('postmaster') or []:
        target = _text(target)
        if '@' not in target and target not in seen_ids and target not in org_locals:
            add('accounts_postmaster: %s is neither a person id, an organisation nor an address - fix it' % target)

    if accounts.get('duplicates', 'number') not in ('number', 'organization', 'citizen_id'):
        add('accounts_duplicates %r: not one of number, organization, citizen_id' % accounts.get('duplicates'))
    return problems


def _role_targets(accounts):
    """Who receives postmaster@ and abuse@: accounts_postmaster, or every active admin person."""
    named = [_text(t) for t in accounts.get('postmaster') or []]
    if named:
        return named
    return [_text(p.get('id')) for p in accounts.get('people') or []
            if p.get('role', 'user') == 'admin' and p.get('state', 'active') == 'active']


def _safe_organizations(accounts, add):
    """The organisation mailboxes, reporting (not raising) the ones whose name gives no address."""
    try:
        return list(_organizations(accounts))
    except (AnsibleFilterError, KeyError, TypeError) as error:
        add('organizations: %s - give each organisation a name (or commune) and, if needed, an abbreviation'
            % error)
        return []


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
        if person.get('password') is not None and person.get('state', 'active') != 'terminated':
            yield (_text(person['id']), _person_label(person), person.get('role', 'user'),
                   _text(person.get('address')), person['password'],
                   _text(person.get('password_reset') or 'initial'))


def mail_accounts_resets(accounts, existing=None):
    """account_id of every existing mailbox whose inventory password_reset token is new:
    the mailboxes whose password the next sync sets again."""
    if isinstance(existing, str):
        existing = json.loads(existing)
    accounts = _plain(accounts)
    known = {_text(row['account_id']): row for row in _plain(existing) or []}
    return sorted(account_id for account_id, _label, _role, _login, _pw, reset in _with_passwords(accounts)
                  if account_id in known and _reset_due(known[account_id], reset))


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
                   role=extra.get('role', 'user'), state=extra.get('state', 'active'),
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
                role=person.get('role', 'user'), state=person.get('state', 'active'),
                quota_mb=person.get('quota_mb'), restore=person.get('restore'))
        if person.get('state', 'active') == 'terminated':
            continue
        for alias in person.get('aliases') or []:
            alias_address = '%s@%s' % (alias, domain)
            aliases.append({'address': alias_address, 'goto': addresses[pid]})
            senders.append({'address': alias_address, 'login': addresses[pid]})

    # Staff named as managers may send as their organisation's mailbox.
    for address, manager in managed:
        if manager in by_id and by_id[manager].get('state', 'active') != 'terminated':
            senders.append({'address': address, 'login': addresses[manager]})

    for mlist in accounts.get('lists') or []:
        list_address = '%s@%s' % (_text(mlist['address']), domain)
        for member in mlist.get('members') or []:
            member = _text(member)
            if member in addresses:
                if by_id[member].get('state', 'active') == 'terminated':
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


class FilterModule:
    """Accounts from the inventory."""

    def filters(self):
        return {
            'mail_accounts_errors': mail_accounts_errors,
            'mail_accounts_render': mail_accounts_render,
            'mail_accounts_render_json': mail_accounts_render_json,
            'mail_accounts_resets': mail_accounts_resets,
            'mail_accounts_reused': mail_accounts_reused,
        }
