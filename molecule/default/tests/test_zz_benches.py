"""Every benchmark under bench/, once, at its smallest size, against this
scenario's converged host: a smoke test, so a bench that no longer runs fails
`make test` instead of rotting unseen. Each must finish and print its figures;
no time is asserted (docs/benchmarks.md has the figures, measured apart).
What each printed, and how long it took, is kept in artifacts/benches/.

Last of the module list (zz): bench/smtp switches the milter off for a moment
and bench/logins checks that fail2ban counted nothing, so nothing else should
run beside them. bench/accounts runs with --host: the same playbook and loop
on this host, in a scratch copy of its mailbox database, which it drops; the
scenario's own accounts are not written.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from mailtest import ARTIFACTS, PROJECT

# One line per bench: its smallest run ({host}: this scenario's container) and
# a line of its output that holds its figures.
BENCHES = {
    'smtp': (['--container', '{host}', '--count', '12', '--sessions', '3', '--timeout', '120'],
             r'ratio full chain / milter off: \d+\.\d+'),
    'logins': (['--container', '{host}', '--count', '32', '--parallel', '8,16', '--timeout', '60'],
               r'16 parallel: app-password logins \d+\.\d+/s against main-password logins \d+\.\d+/s'),
    'accounts': (['--host', '{host}', '--sizes', '50', '--loop-size', '5', '--timeout', '300'],
                 r'\| 50 \| \d+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|'),
    'migrate': (['--container', '{host}', '--mailboxes', '1', '--timeout', '300'],
                r'ratio migrate / plain: \d+\.\d+'),
}


def test_every_bench_has_a_smoke_run():
    """A new script in bench/ is listed above, or this fails."""
    scripts = {path.name for path in (PROJECT / 'bench').iterdir()
               if path.is_file() and os.access(path, os.X_OK) and '.' not in path.name}
    assert scripts == set(BENCHES), 'bench/ has %s; BENCHES lists %s' % (sorted(scripts), sorted(BENCHES))


@pytest.mark.parametrize('name', sorted(BENCHES))
def test_bench_runs_and_prints_its_figures(server, name):
    arguments, figures = BENCHES[name]
    # As a person runs it, bench/NAME: the script finds the project's venv itself.
    command = [str(PROJECT / 'bench' / name)] + [a.format(host=server.container) for a in arguments]
    env = {key: value for key, value in os.environ.items() if not key.startswith('VIRTUAL_ENV')}
    env['PATH'] = '/usr/local/bin:/usr/bin:/bin'
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    # Kept beside the other artifacts (not in git): what each bench printed, and how long it took.
    report = '%s\n%.1f s, exit %d\n\n%s' % (' '.join(command), time.monotonic() - started, result.returncode,
                                           result.stdout)
    (ARTIFACTS / 'benches').mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / 'benches' / (name + '.txt')).write_text(report, encoding='utf-8')
    assert result.returncode == 0, 'bench/%s failed (rc %d):\n%s\n%s' % (
        name, result.returncode, result.stdout[-3000:], result.stderr[-3000:])
    assert re.search(figures, result.stdout), 'bench/%s printed no figures:\n%s' % (name, result.stdout[-3000:])
