#!/usr/bin/env bash
# Install what `make lab` and `make test` need on a Debian 12 machine, as root:
# Debian packages, the Python venv with the pinned packages, a running Docker
# engine and the Debian 12 systemd base image. Each step is skipped when it is
# already done, so a second call takes a few seconds.
#
#   scripts/bootstrap.sh        everything (make lab, test, molecule, bench...)
#   scripts/bootstrap.sh venv   only the Python venv (make lint, unit, check):
#                               no Docker engine, base image nor browser
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
case "$MODE" in all|venv) ;; *) echo "usage: $0 [venv]" >&2; exit 2 ;; esac

VENV=.venv
IMAGE_RECIPE=scripts/build-image.sh
DOCKERD_LOG=/var/log/congvu-mail-dockerd.log

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

apt_updated=no
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$apt_updated" = no ]; then apt-get update -qq; apt_updated=yes; fi
  say "Installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# --- Python venv ------------------------------------------------------------
# The pinned packages (requirements.txt), then the project's own package,
# congvu_mail (pyproject.toml), editable: the filter plugins import it, and
# an edit of its code needs no reinstall. Again only when either file changed.
install_venv() {
  stamp="$VENV/.requirements.sha256"
  want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "Creating the Python venv in $VENV"
    /usr/bin/python3 -m venv "$VENV"
    # pip's notes about index locations it cannot use are machine noise.
    "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements.txt 2>&1 \
      | { grep -v "^WARNING: Location " || true; }
    # Its build backend (flit_core) is pinned above: no download here.
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-build-isolation --no-deps -e . 2>&1 \
      | { grep -v "^WARNING: Location " || true; }
    echo "$want" > "$stamp"
  fi
}

if [ "$MODE" = venv ]; then
  # postgresql-15: the services' database tests start a throw-away server.
  apt_install python3-venv postgresql-15
  install_venv
  exit 0
fi

# --- Debian packages --------------------------------------------------------
# python3-venv: the controller's venv; docker.io: the test hosts; mmdebstrap:
# the base image; ldap-utils: the directory tests' ldapsearch; postgresql-15:
# the services' database tests (a throw-away server of their own).
apt_install python3-venv docker.io mmdebstrap ca-certificates iptables ldap-utils postgresql-15
# chromium: the webmail tests' browser (driven by Playwright, headless);
# libnss3-tools: certutil, to make it trust the lab CA.
apt_install chromium libnss3-tools

# --- Docker engine ----------------------------------------------------------
# There may be no systemd on the machine: start dockerd by hand when no engine
# answers. Debian's /usr/bin/docker is preferred to any other client on PATH.
DOCKER=/usr/bin/docker
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "Starting dockerd (log: $DOCKERD_LOG)"
  nohup setsid dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$DOCKER" info >/dev/null 2>&1 || { echo "dockerd did not start; see $DOCKERD_LOG" >&2; exit 1; }
fi

# Every test host runs systemd, which takes several inotify instances, all
# counted against root. Debian's limit of 128 is used up at about 20 hosts
# (the lab and a test run side by side); past it a new host's systemd exits at
# once, silently, and the scenario fails with "Container ... is not running".
if [ "$(sysctl -n fs.inotify.max_user_instances)" -lt 1024 ]; then
  say "Raising fs.inotify.max_user_instances to 1024 (one systemd per test host)"
  sysctl -qw fs.inotify.max_user_instances=1024 ||
    echo "Could not raise it (a read-only /proc/sys?): more than about 20 test hosts at once will not start" >&2
fi

# --- Base image -------------------------------------------------------------
image="congvu-mail/debian12-systemd:$(sha256sum "$IMAGE_RECIPE" | cut -c1-12)"
# Built while the venv is installed: both mostly wait for downloads.
image_pid=
if ! "$DOCKER" image inspect "$image" >/dev/null 2>&1; then
  say "Building the base image $image (about a minute)"
  bash "$IMAGE_RECIPE" "$image" &
  image_pid=$!
fi

install_venv

# --- Base image, ready ------------------------------------------------------
if [ -n "$image_pid" ]; then
  wait "$image_pid" || { echo "The base image $image could not be built" >&2; exit 1; }
fi
"$DOCKER" tag "$image" congvu-mail/debian12-systemd:latest
