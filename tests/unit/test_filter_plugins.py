"""The filter plugins as Ansible loads them (filter_plugins/, ANSIBLE_FILTER_PLUGINS):
each names functions of the congvu_mail package, documents them, and turns the
package's RuleError into Ansible's filter error. The rules themselves are tested
in the other test_mail_*.py files, on the package directly."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FILTER_PLUGINS

BIN = Path(sys.executable).parent

FILTERS = {
    'mail_accounts_errors', 'mail_accounts_render', 'mail_accounts_render_json', 'mail_accounts_resets',
    'mail_accounts_reused', 'vn_ascii', 'mail_org_localpart', 'mail_place_localpart', 'mail_person_localpart',
    'mail_assign_addresses', 'mail_address_errors', 'mail_name_errors', 'mail_check_report',
    'mail_directory_entries', 'mail_directory_ldap', 'mail_directory_csv', 'mail_directory_json',
    'mail_directory_vcard', 'mail_forward_allowed', 'mail_forward_regexps', 'mail_placeholder_errors',
    'mail_ipv6_errors',
    'mail_password_errors', 'mail_password_hash', 'mail_password_hash_many', 'mail_password_reused',
    'mail_password_verify', 'mail_migrate_errors', 'mail_migrate_job',
    'mail_resolver_local_data', 'mail_resolver_address_errors',
}

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Apply filters of several plugins
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0600"
        content: >-
          {{ {'org': 'Sở Thông tin và Truyền thông' | mail_org_localpart,
              'person': 'Đặng Thị Ánh Tuyết' | mail_person_localpart,
              'weak': 'longnvxyz' | mail_password_errors(policy={'min_length': {'user': 8}, 'history': 0,
                                                              'required_classes': ['digit'],
                                                              'reject_login_name': false}),
              'forward': ['*.gov.vn'] | mail_forward_regexps} | to_json }}
    - name: A rule that refuses its input
      ansible.builtin.debug:
        msg: "{{ 'Văn phòng' | mail_org_localpart(abbreviation=5) }}"
"""


def ansible(tool, *args, cwd):
    env = {'PATH': '%s:/usr/bin:/bin' % BIN, 'ANSIBLE_FILTER_PLUGINS': str(FILTER_PLUGINS), 'HOME': str(cwd),
           'ANSIBLE_LOCAL_TEMP': str(cwd / 'tmp'), 'ANSIBLE_NOCOLOR': '1'}
    return subprocess.run([str(BIN / tool), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=180)


def test_every_filter_is_found_and_documented(tmp_path):
    listed = ansible('ansible-doc', '-t', 'filter', '--list', '--json', cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {name.rpartition('.')[2] for name in json.loads(listed.stdout)}
    assert FILTERS <= names
    shown = ansible('ansible-doc', '-t', 'filter', '--json', 'mail_password_errors', 'mail_accounts_render',
                    'mail_placeholder_errors', cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    docs = json.loads(shown.stdout)
    assert len(docs) == 3 and all(doc['doc']['short_description'] for doc in docs.values())


@pytest.mark.slow
def test_filters_run_in_a_playbook_and_report_a_rule_as_a_filter_error(tmp_path):
    (tmp_path / 'play.yml').write_text(PLAYBOOK, encoding='utf-8')
    out = tmp_path / 'out.json'
    run = ansible('ansible-playbook', '-i', 'localhost,', '-c', 'local', 'play.yml', '-e', 'out=%s' % out,
                  cwd=tmp_path)
    result = json.loads(out.read_text(encoding='utf-8'))
    assert result['org'] == 'stttt' and result['person'] == 'tuyetdta'
    assert result['weak'] == ['has no digit (Điều 4.1)']
    assert result['forward'] == [r'^[^@]*@([^@.]+\.)+gov\.vn$']
    # The second task fails with the rule's own message, as a filter error.
    assert run.returncode != 0
    assert 'mail_org_localpart: abbreviation must be a text string' in run.stdout
    assert 'RuleError' not in run.stdout
