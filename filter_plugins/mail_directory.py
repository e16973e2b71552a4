# Ansible filter plugin: the filters of congvu_mail.directory (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_directory
  short_description: The published directory of organisation mailboxes and active people
  description:
    - C(mail_directory_entries(mailboxes, organizations=None, bodies=None)) gives one dict per
      published mailbox (C(kind), C(uid), C(mail), C(cn), C(sn), C(givenName), C(o), C(ou),
      C(key)), sorted by organisation, unit, then given name. Every active mailbox, of an
      organisation or a person, and every one the inactivity job suspended (it still receives
      mail); those the inventory suspends or terminates are left out. O(mailboxes) are the
      mailbox database's rows (C(account_id), C(address), C(name), C(kind), C(organization),
      C(unit), C(state), C(inactive)), as a list or the JSON text the database returned: the accounts are
      never rendered again. O(organizations) are the inventory's, for the names of communes' bodies.
      O(bodies) names the bodies of a commune by address prefix (C(du) -> C(Đảng ủy)); the
      empty prefix names the commune's own mailbox.
    - C(mail_directory_ldap(entries, suffix, readers=None)) gives the directory's LDAP state
      (C(suffix), C(entries)) for congvu-directory-sync: inetOrgPerson entries under
      C(ou=people) and C(ou=organizations) whose password is C({SASL}<address>), and
      read-only service entries under C(ou=services) from O(readers) (C(name), C(password)).
    - C(mail_directory_csv(entries)) and C(mail_directory_vcard(entries)) give the CSV (with a
      byte-order mark, for Excel) and vCard 3.0 downloads; C(mail_directory_json(entries)) the
      directory page's rows, as JSON safe to embed in HTML.
  positional: _input
  options:
    _input:
      description: The mailbox rows (mail_directory_entries) or the entries it gave.
      type: raw
      required: true
"""

EXAMPLES = r"""
- name: Render the directory page's CSV
  ansible.builtin.copy:
    content: "{{ entries | mail_directory_csv }}"
    dest: /var/www/congvu-mail/danh-ba/danh-ba.csv
    mode: "0644"
  vars:
    entries: "{{ mailbox_rows | mail_directory_entries(organizations=accounts_organizations) }}"
"""

RETURN = r"""
  _value:
    description: A list of entries, the LDAP state (dict) or the text of a file.
    type: raw
"""

from congvu_mail import directory
from congvu_mail.filters import filter_map


class FilterModule:
    """The published directory."""

    def filters(self):
        return filter_map({
            'mail_directory_entries': directory.mail_directory_entries,
            'mail_directory_ldap': directory.mail_directory_ldap,
            'mail_directory_csv': directory.mail_directory_csv,
            'mail_directory_json': directory.mail_directory_json,
            'mail_directory_vcard': directory.mail_directory_vcard,
        })
