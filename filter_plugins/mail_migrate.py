# Ansible filter plugin: the filters of congvu_mail.migrate (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_migrate
  short_description: The migration map, checked and turned into congvu-migrate's job
  description:
    - C(mail_migrate_errors(mailboxes, people)), with O(_input) the source server
      (C(migrate_source)), gives every problem of the map (C(migrate_mailboxes)), one line
      each, naming the record, the field, the rule and what to do, never a password.
    - C(mail_migrate_job(mailboxes, addresses, folders, parallel, source_mailboxes, work_dir)),
      with O(_input) the source server, gives the job the host's congvu-migrate reads, each
      person id replaced by the address the database issued (C(addresses), account id to
      address).
  positional: _input
  options:
    _input:
      description: The source server (host, port, tls, ca_file, master_user, master_password).
      type: dict
      required: true
"""

EXAMPLES = r"""
- name: Refuse a bad map
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems }}"
  vars:
    problems: "{{ migrate_source | mail_migrate_errors(migrate_mailboxes, accounts_people) }}"
"""

RETURN = r"""
  _value:
    description: A list of problems (mail_migrate_errors) or the job, a dict (mail_migrate_job).
    type: raw
"""

from congvu_mail import migrate
from congvu_mail.filters import filter_map


class FilterModule:
    """The migration map."""

    def filters(self):
        return filter_map({
            'mail_migrate_errors': migrate.migration_errors,
            'mail_migrate_job': migrate.migration_job,
        })
