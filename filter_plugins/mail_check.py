# Ansible filter plugin: the filters of congvu_mail.check (the code and its
# tests are in congvu_mail and tests/unit; this file names and documents the filters).

from __future__ import annotations

DOCUMENTATION = r"""
  name: mail_check_report
  short_description: Assemble the health and compliance report from every host's probe
  description:
    - O(_input) maps each host of the play to the registered result of its probe
      (roles/check/files/congvu-check.py), or to an empty dict when it has none.
    - A host whose probe did not answer (unreachable, or the probe failed) gets one failed
      check, C(probe), saying why.
    - The inventory-wide check C(backup-separate-host) fails when the group C(backup) is
      empty, or when one of its hosts also holds data (O(data_groups)).
  positional: _input
  options:
    _input:
      description: Host name to its probe's registered result.
      type: dict
      required: true
    groups:
      description: The inventory's groups (Ansible's C(groups)).
      type: dict
      required: true
    data_groups:
      description: The groups whose hosts hold data to back up.
      type: list
      elements: str
      required: true
    generated:
      description: When the report was made (ISO-8601, UTC).
      type: str
      required: true
"""

EXAMPLES = r"""
- name: Assemble the report
  ansible.builtin.set_fact:
    report: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
         | map(attribute='__check_probe', default={})))
         | mail_check_report(groups=groups, data_groups=['db', 'mailstore'], generated=now(utc=true).isoformat()) }}
"""

RETURN = r"""
  _value:
    description: >-
      The report: generated, hosts, counts (PASS, WARN, FAIL), failed (the failed checks'
      names), lines (one printed line per check) and checks, each with id, host, ref (the
      regulation's article), title, status and evidence.
    type: dict
"""

from congvu_mail import check
from congvu_mail.filters import filter_map


class FilterModule:
    """The health and compliance report."""

    def filters(self):
        return filter_map({
            'mail_check_report': check.mail_check_report,
        })
