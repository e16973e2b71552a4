"""`make check` on the production example (issue 18), as an operator uses it:
copied, its vault example's values replaced by values of the right kind, and
the servers' addresses put in place of the documentation range. The example
then passes the whole check, in its one-host layout and in its commented
several-hosts alternative; as copied, it is refused for exactly those
placeholders (tests/unit/test_inventory_check.py, and below)."""

import itertools
import re
import shutil

import pytest
from test_preflight import ROOT, assert_refused, copy_inventory, load, make_check, save

PRODUCTION = ROOT / 'inventories' / 'production'
DOCUMENTATION = re.compile(r'\b(192\.0\.2|198\.51\.100|203\.0\.113)\.(\d+)\b')


def filled(value, numbers):
    """Each placeholder replaced by its own test value: 24 characters (the
    webmail's key), with the four classes of Điều 4.1 (initial passwords)."""
    if isinstance(value, dict):
        return {k: filled(v, numbers) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, numbers) for v in value]
    return 'Kq7-Test-%04d-Value-Ab!x' % next(numbers)


@pytest.fixture
def copied(tmp_path):
    return copy_inventory(PRODUCTION, tmp_path, 'province')


def fill_in(inventory, hosts_text):
    save(inventory, 'vault.yml', filled(load(inventory, 'vault.yml.example'), itertools.count(1)))
    replaced, count = DOCUMENTATION.subn(r'10.99.0.\2', hosts_text)
    assert count >= 2  # the example's addresses are placeholders the check refuses
    (inventory / 'hosts.yml').write_text(replaced, encoding='utf-8')


def test_the_example_filled_in_passes(tmp_path, copied):
    fill_in(copied, (copied / 'hosts.yml').read_text(encoding='utf-8'))
    code, output, calls = make_check(tmp_path, copied)
    assert code == 0, output[-3000:]
    assert calls == ''
    assert re.search(r'mail\.bacgiang\.gov\.vn : ok=\d+ changed=0 unreachable=0 failed=0', output), output[-3000:]


def test_the_several_hosts_alternative_filled_in_passes(tmp_path, copied):
    text = (copied / 'hosts.yml').read_text(encoding='utf-8')
    alternative = '---\n' + '\n'.join(re.sub(r'^# ?', '', line)
                                      for line in ('# all:' + text.partition('\n# all:')[2]).splitlines()) + '\n'
    fill_in(copied, alternative)
    code, output, calls = make_check(tmp_path, copied)
    assert code == 0, output[-3000:]
    assert calls == ''
    for host in ('db', 'mailstore', 'mx', 'directory', 'webmail'):
        assert '%s.bacgiang.gov.vn' % host in output, output[-3000:]


def test_the_example_as_copied_is_refused_for_its_placeholders(tmp_path, copied):
    shutil.copy(copied / 'group_vars' / 'all' / 'vault.yml.example', copied / 'group_vars' / 'all' / 'vault.yml')
    code, output, calls = make_check(tmp_path, copied)
    example = load(copied, 'vault.yml.example')
    assert_refused(code, output, calls, [(name, "is the production example's placeholder") for name in example] + [
        ('hosts.yml · %s · ansible_host · is an address of a documentation range' % host,)
        for host in ('mail.bacgiang.gov.vn', 'backup.bacgiang.gov.vn')])
    assert 'replace:' not in output  # no placeholder is printed
