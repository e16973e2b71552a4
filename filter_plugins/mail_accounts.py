# Ansible filter plugin: the filters of congvu_mail.accounts (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_accounts
  short_description: Check the inventory's accounts and render the mailbox database's state
  description:
    - C(mail_accounts_errors(accounts, policy=None, forward_allowed=None, existing=None, mailed=None))
      lists every problem of every record (organisation, unit, person, list, domain), each one
      line C(<list> · <record> · <field> · <rule> · <what to do>); never a password. Empty when
      the inventory is good. Every record and field is type-checked first (any YAML value is
      reported, never raised); then names, references, hosted domains and passwords; then one
      namespace of addresses, aliases, lists, organisation mailboxes and role addresses, where
      each person's address is computed first and anything else equal to it is a clash naming
      both records. With O(forward_allowed) (domain patterns, see mail_forward), a list member
      outside the hosted domains and those patterns is a problem too. O(existing) (as for
      C(mail_accounts_render), or its JSON text) adds the addresses the database has issued,
      also of people no longer listed. O(mailed) maps variable names (mail_admins...) to
      addresses that must be accounts, lists or aliases of the hosted domains.
    - C(mail_accounts_render(accounts, existing=None, policy=None, hashing=None)) gives the
      state the database must hold. O(existing) is what the database already holds (one dict
      per mailbox with C(account_id), C(address), C(password_reset)); issued addresses are
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
      reach the administrators) and C(postmaster) (who they are - person ids, organisations
      or addresses; empty means every active person with role admin). docs/accounts.md
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

from congvu_mail import accounts
from congvu_mail.filters import filter_map


class FilterModule:
    """Accounts from the inventory."""

    def filters(self):
        return filter_map({
            'mail_accounts_errors': accounts.mail_accounts_errors,
            'mail_accounts_render': accounts.mail_accounts_render,
            'mail_accounts_render_json': accounts.mail_accounts_render_json,
            'mail_accounts_resets': accounts.mail_accounts_resets,
            'mail_accounts_reused': accounts.mail_accounts_reused,
        })
