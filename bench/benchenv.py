"""What every script under bench/ does first: run in the project's venv.

    import benchenv  # the bench's own directory is first on sys.path
    PROJECT = benchenv.use_venv()
    import yaml  # noqa: E402  (third-party modules after it: the venv's)

Run as `bench/NAME` from anywhere, with any python3: when this is not the
project's venv (<project>/.venv), the script starts again with the venv's
python; either way the venv's bin is put first on PATH, so the
ansible-playbook the bench runs is the project's. Standard library only: it
runs before the venv's packages can be imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
VENV = PROJECT / '.venv'
_MARK = 'CONGVU_BENCH_VENV'


def use_venv():
    """Re-executes the running bench with <project>/.venv/bin/python unless it
    already runs there; puts .venv/bin first on PATH. Returns the project's
    directory."""
    python = VENV / 'bin' / 'python'
    if not python.exists():
        sys.exit('bench/%s: the project\'s venv %s is missing: run `make bootstrap-venv` in %s first'
                 % (Path(sys.argv[0]).name, VENV, PROJECT))
    bin_dir = str(VENV / 'bin')
    path = os.environ.get('PATH', '')
    if path.split(os.pathsep)[0] != bin_dir:
        os.environ['PATH'] = bin_dir + (os.pathsep + path if path else '')
    if Path(sys.prefix).resolve() != VENV.resolve():
        if os.environ.get(_MARK):
            sys.exit('bench/%s: started again with %s but still not in its venv (sys.prefix %s)'
                     % (Path(sys.argv[0]).name, python, sys.prefix))
        os.environ[_MARK] = '1'
        script = str(Path(sys.argv[0]).resolve())
        os.execv(str(python), [str(python), script, *sys.argv[1:]])
    return PROJECT
