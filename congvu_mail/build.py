"""The wheel the hosts get (role python_package), built on the controller
from the checkout this package runs from (installed editable by
scripts/bootstrap.sh):

    python -m congvu_mail.build [CACHE_DIR]

prints {"path": ..., "name": ..., "sha256": ...}. The build is reproducible:
the same code gives the same bytes (fixed zip timestamps, flit_core's sorted
entries and normalised modes), so a re-run copies nothing to the hosts and
restarts nothing. Each build lands in CACHE_DIR/<sha256>/ (default
~/.cache/congvu-mail/wheels), so runs side by side never read each other's
half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

# 1980-01-01, the earliest time a zip file can hold: the date of every file.
SOURCE_DATE_EPOCH = '315532800'
CHECKOUT = Path(__file__).resolve().parent.parent


def build(cache_dir):
    if not (CHECKOUT / 'pyproject.toml').is_file():
        sys.exit('congvu_mail.build: %s is not a checkout of congvu-mail (the package must be installed '
                 'editable: make bootstrap-venv)' % CHECKOUT)
    from flit_core import wheel  # the build backend, pinned in requirements.txt

    os.environ['SOURCE_DATE_EPOCH'] = SOURCE_DATE_EPOCH
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix='build-', dir=cache_dir))
    try:
        with open(os.devnull, 'w', encoding='utf-8') as quiet:
            stdout, sys.stdout = sys.stdout, quiet  # flit_core reports on stdout
            try:
                built = wheel.make_wheel_in(CHECKOUT / 'pyproject.toml', scratch)
            finally:
                sys.stdout = stdout
        path = scratch / built.file.name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        final = cache_dir / digest
        if not (final / path.name).is_file():
            staged = Path(tempfile.mkdtemp(prefix='stage-', dir=cache_dir))
            os.replace(path, staged / path.name)
            try:
                os.rename(staged, final)
            except OSError:  # another run put the same build there first
                shutil.rmtree(staged, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {'path': str(final / path.name), 'name': path.name, 'sha256': digest}


def main(argv=None):
    argv = sys.argv if argv is None else argv
    default = Path(os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache') / 'congvu-mail' / 'wheels'
    print(json.dumps(build(argv[1] if len(argv) > 1 else default)))


if __name__ == '__main__':
    main()
