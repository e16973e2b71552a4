"""`make check INV=...` on broken copies of the lab inventory (issue 16).

Each inventory is inventories/lab copied to a temporary directory with some
records broken; the check must fail naming every broken record and its rule,
all in one run, and must never reach a container: a stand-in `docker` placed
first on PATH records any call and fails. A run costs a few seconds, so each
inventory carries several broken records, each asserted by its message."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / 'inventories' / 'lab'
DOMAIN = 'bacgiang.gov.vn'


class _Dumper(yaml.SafeDumper):
    """YAML that passes the repository's yamllint (indented sequences)."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def dump(data):
    return '---\n' + yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=150)


def copy_inventory(source, tmp_path, name='inventory'):
    """A copy of an inventory of the repository, to break or fill in."""
    path = tmp_path / name
    shutil.copytree(source, path)
    return path


@pytest.fixture
def inventory(tmp_path):
    return copy_inventory(LAB, tmp_path)


def load(inventory, name):
    return yaml.safe_load((inventory / 'group_vars' / 'all' / name).read_text(encoding='utf-8'))


def save(inventory, name, data):
    (inventory / 'group_vars' / 'all' / name).write_text(dump(data), encoding='utf-8')


def make_check(tmp_path, inventory, env=None):
    """`make check INV=...` with a stand-in docker first on PATH; returns
    (exit code, the output with YAML's line wrapping undone, docker's calls)."""
    stub = tmp_path / 'stub'
    stub.mkdir(exist_ok=True)
    calls = tmp_path / 'docker-calls'
    (stub / 'docker').write_text('#!/bin/sh\necho "docker $*" >> %s\nexit 1\n' % calls)
    (stub / 'docker').chmod(0o755)
    environment = {k: v for k, v in os.environ.items() if k != 'ANSIBLE_VAULT_PASSWORD_FILE'}
    environment.update(PATH='%s:%s' % (stub, os.environ['PATH']), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
                       **(env or {}))
    result = subprocess.run(['make', '-s', '-C', str(ROOT), 'check', 'INV=%s' % inventory], capture_output=True,
                            text=True, env=environment, stdin=subprocess.DEVNULL, timeout=300)
    output = ' '.join((result.stdout + result.stderr).split())
    return result.returncode, output, calls.read_text() if calls.exists() else ''


def assert_refused(code, output, calls, expected):
    assert code != 0, output[-3000:]
    assert calls == '', calls  # no container was reached
    assert 'Traceback' not in output and 'could not be checked' not in output, output[-3000:]
    for fragments in expected:
        assert all(f in output for f in fragments), (fragments, output[-6000:])


def test_the_lab_inventory_passes(tmp_path, inventory):
    code, output, calls = make_check(tmp_path, inventory)
    assert code == 0, output[-3000:]
    assert calls == ''


def test_broken_people(tmp_path, inventory):
    accounts = load(inventory, 'accounts.yml')
    people = accounts['accounts_people']
    people.append('BG0009 Nguyễn Văn Nam')                                            # 1 a person as one string
    people[3]['address'] = 12345                                                      # 2 an address as a number
    people[4]['quota_mb'] = '2GB'                                                     # 3 a quota with a unit
    people[2]['aliases'] = 'vanthu'                                                   # 4 aliases as one string
    people.append({'id': 'BG0010', 'name': 'Nguyễn Văn Long (Phó GĐ)', 'password': 'Lab-Pho-2026!'})  # 5 not a name
    people.append({'id': 'BG0011', 'name': 'Phạm Thu Hà', 'password': 'Lab-Ha-2026!',
                   'aliases': ['longnv2']})                                           # 6 takes BG0002's address
    people.append({'id': 'BG0012', 'name': 'Nguyễn Văn Long', 'password': 'Lab-Long12-2026!',
                   'address': 'longnv'})                                              # 7 would renumber BG0001
    people.append({'id': 'BG0013', 'name': 'Trần Văn An', 'password': 'Lab-An-2026!',
                   'address': 'antv@gmail.com'})                                      # 8 a domain not hosted
    people[1]['password'] = 'Lab-Long2-2026 '                                         # 9 a trailing space
    people.append({'id': 24075000123, 'name': 'Vũ Thị Mai', 'password': 'Lab-Mai-2026!'})  # 10 an id as a number
    accounts['accounts_lists'][0]['members'].append('BG9999')                         # 17 no such person
    save(inventory, 'accounts.yml', accounts)
    code, output, calls = make_check(tmp_path, inventory)
    assert_refused(code, output, calls, [
        ('accounts_people · #6 · - · is text, not a record',),
        ('accounts_people · BG0004 (Trần Minh Đức) · address · is a number, not text',),
        ('accounts_people · BG0005 (Lê Thị Hoa) · quota_mb · is "2GB", not a whole number of MiB',),
        ('accounts_people · BG0003 (Đặng Thị Ánh Tuyết) · aliases · is one text, not a list',),
        ('accounts_people · BG0010 (Nguyễn Văn Long (Phó GĐ)) · name · the name has', 'leave titles'),
        ('accounts_people · BG0011 (Phạm Thu Hà) · aliases · alias longnv2@%s is already the address of '
         'accounts_people BG0002' % DOMAIN,),
        ('accounts_people · BG0012 (Nguyễn Văn Long) · address · address longnv@%s is already the address of '
         'accounts_people BG0001' % DOMAIN,),
        ('accounts_people · BG0013 (Trần Văn An) · address · address antv@gmail.com is in gmail.com, which the '
         'inventory does not host',),
        ('accounts_people · BG0002 (Nguyễn Văn Long) · password · the initial password starts or ends with a space',),
        ('accounts_people · #11 (Vũ Thị Mai) · id · is a number, not text · quote it',),
        ('accounts_lists · toanthe.stttt · members · member BG9999 is neither a person id nor an organisation',),
    ])
    assert 'Lab-Long2-2026' not in output and 'Lab-Mai-2026' not in output


def test_broken_organisations_lists_and_settings(tmp_path, inventory):
    accounts = load(inventory, 'accounts.yml')
    orgs = accounts['accounts_organizations']
    orgs[2]['bodies'] = 'du'                                                          # 11 bodies as one string
    orgs[0]['managers'] = 'BG0001'                                                    # 12 managers as one string
    orgs.append('Sở Y tế')                                                            # 13 an organisation as text
    orgs.append({'name': 'Sở \u0301 Y tế'})                                           # 14 a lone accent
    orgs.append({'name': 'Sở TT&TT'})                                                 # 15 not a name
    accounts['accounts_lists'].append({'address': 'giamdoc.stttt', 'members': ['BG0001']})  # 16 an alias's
    save(inventory, 'accounts.yml', accounts)
    settings = load(inventory, 'main.yml')
    settings['mail_admins'] = ['quantri@' + DOMAIN]                                   # 18 not an account
    save(inventory, 'main.yml', settings)
    code, output, calls = make_check(tmp_path, inventory)
    assert_refused(code, output, calls, [
        ('accounts_organizations · #3 (Kinh Bắc) · bodies · is one text, not a list',),
        ('accounts_organizations · #1 (Sở Thông tin và Truyền thông) · managers · is one text, not a list',),
        ('accounts_organizations · #4 · - · is text, not a record',),
        ('accounts_organizations · #5 (Sở \u0301 Y tế) · name · the name has an accent mark with no letter',),
        ("accounts_organizations · #6 (Sở TT&TT) · name · the name has '&'", 'abbreviation'),
        ('accounts_people · BG0001 (Nguyễn Văn Long) · aliases · alias giamdoc.stttt@%s is already the address '
         'of accounts_lists giamdoc.stttt' % DOMAIN,),
        ('quantri@%s · - · is no account, list or alias of the hosted domains' % DOMAIN, 'mail_admins'),
    ])


def test_ipv6_settings_are_checked_before_any_host(tmp_path, inventory):
    settings = load(inventory, 'main.yml')
    settings['mail_host_ipv6'] = 'fe80::10'                                           # 19 link-local
    settings['dns_mail_ipv6'] = '2001:db8::10'                                        # 20 the former name
    save(inventory, 'main.yml', settings)
    code, output, calls = make_check(tmp_path, inventory)
    assert_refused(code, output, calls, [
        ("mail_host_ipv6 · 'fe80::10' is a loopback, unspecified, link-local or multicast address",
         'leave it empty for IPv4 only'),
        ('dns_mail_ipv6 · is no longer read · rename it mail_host_ipv6',),
    ])


def test_yaml_errors_name_the_file_and_line(tmp_path, inventory):
    path = inventory / 'group_vars' / 'all' / 'accounts.yml'
    lines = path.read_text(encoding='utf-8').splitlines()
    number = next(i for i, line in enumerate(lines) if 'name: Trần Minh Đức' in line)
    lines[number] = '   ' + lines[number]                                              # 19 bad indentation
    octal = next(i for i, line in enumerate(lines) if 'id: "BG0005"' in line)
    lines[octal] = lines[octal].replace('"BG0005"', '024075000123')                    # 20 an unquoted id (octal)
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    code, output, calls = make_check(tmp_path, inventory)
    assert code != 0 and calls == ''
    assert '%s %d:' % (path, number + 1) in output, output[-2000:]
    assert '%d:' % (octal + 1) in output and 'forbidden implicit octal value "024075000123"' in output, output[-2000:]
    assert 'playbooks/preflight.yml' not in output  # stopped before Ansible


def test_a_vaulted_inventory_with_the_examples_placeholders(tmp_path, inventory):
    example = yaml.safe_load((ROOT / 'inventories' / 'production' / 'group_vars' / 'all' /
                              'vault.yml.example').read_text(encoding='utf-8'))
    password_file = tmp_path / 'vault-password'
    password_file.write_text('test-vault-password\n')
    vault = inventory / 'group_vars' / 'all' / 'vault.yml'
    vault.write_text(dump({'vault_backup_passphrase': example['vault_backup_passphrase'],
                           'vault_initial_passwords': {'BG0001': example['vault_initial_passwords']['024085000123']}}))
    subprocess.run(['ansible-vault', 'encrypt', '--vault-password-file', str(password_file), str(vault)],
                   check=True, capture_output=True, env=dict(os.environ, PATH='%s:%s' % (
                       ROOT / '.venv' / 'bin', os.environ['PATH'])))
    settings = load(inventory, 'main.yml')
    settings['backup_passphrase'] = '{{ vault_backup_passphrase }}'                  # 21 a placeholder
    save(inventory, 'main.yml', settings)
    accounts = load(inventory, 'accounts.yml')
    accounts['accounts_people'][0]['password'] = "{{ vault_initial_passwords['BG0001'] }}"  # 22 the admin's
    save(inventory, 'accounts.yml', accounts)
    hosts = yaml.safe_load((inventory / 'hosts.yml').read_text(encoding='utf-8'))
    hosts['all']['hosts']['congvu-lab']['ansible_host'] = '192.0.2.10'                # 23 the example's address
    (inventory / 'hosts.yml').write_text(dump(hosts), encoding='utf-8')
    code, output, calls = make_check(tmp_path, inventory, env={'ANSIBLE_VAULT_PASSWORD_FILE': str(password_file)})
    assert_refused(code, output, calls, [
        ("vault_backup_passphrase · - · - · is the production example's placeholder · replace this value",),
        ("accounts_people · BG0001 · password · is the production example's placeholder · replace this value",),
        ('hosts.yml · congvu-lab · ansible_host · is an address of a documentation range',),
    ])
    assert example['vault_backup_passphrase'] not in output
    # Without a password file, the check asks for the vault password (here nobody answers).
    code, output, calls = make_check(tmp_path, inventory)
    assert code != 0 and calls == ''
    assert 'vault' in output.lower(), output[-2000:]


def test_the_production_example_as_shipped_says_to_copy_the_vault(tmp_path):
    inventory = copy_inventory(ROOT / 'inventories' / 'production', tmp_path, 'production')
    code, output, calls = make_check(tmp_path, inventory)
    vault = inventory / 'group_vars' / 'all' / 'vault.yml'
    assert_refused(code, output, calls, [
        ('%s · missing · the secrets (passwords, keys) are not there' % vault,
         'copy %s.example to %s, replace every value, then ansible-vault encrypt it' % (vault, vault)),
    ])
    assert 'is undefined' not in output and 'playbooks/preflight.yml' not in output


def test_the_venv_bootstrap_installs_no_docker_nor_browser(tmp_path):
    """make lint, unit and check run `scripts/bootstrap.sh venv`: with the venv
    there, it calls neither Docker nor apt (stand-ins record any call)."""
    stub = tmp_path / 'stub'
    stub.mkdir()
    calls = tmp_path / 'calls'
    for tool in ('docker', 'dockerd', 'apt-get', 'mmdebstrap'):
        (stub / tool).write_text('#!/bin/sh\necho "%s $*" >> %s\nexit 1\n' % (tool, calls))
        (stub / tool).chmod(0o755)
    result = subprocess.run(['bash', str(ROOT / 'scripts' / 'bootstrap.sh'), 'venv'], capture_output=True, text=True,
                            env=dict(os.environ, PATH='%s:%s' % (stub, os.environ['PATH'])), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not calls.exists(), calls.read_text()
    script = (ROOT / 'Makefile').read_text(encoding='utf-8')
    for target in ('lint', 'unit', 'check'):
        assert '\n%s: bootstrap-venv\n' % target in script, target


@pytest.mark.parametrize(('settings', 'expected'), [
    ({'resolver_mode': 'forward'}, ('resolver_mode is forward but resolver_forwarders is empty',)),
    ({'resolver_mode': 'forward', 'resolver_forwarders': ['10.10.0.53', 'dns.bacgiang.gov.vn']},
     ("resolver_forwarders[1] · 'dns.bacgiang.gov.vn' · not an IP address",)),
    ({'resolver_mode': 'forwarding'}, ('resolver_mode is forwarding: choose recursive, forward or local',)),
])
def test_broken_resolver_settings(tmp_path, inventory, settings, expected):
    main = load(inventory, 'main.yml')
    main.update(settings)
    save(inventory, 'main.yml', main)
    code, output, calls = make_check(tmp_path, inventory)
    assert_refused(code, output, calls, [expected])
