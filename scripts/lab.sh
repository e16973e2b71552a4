#!/usr/bin/env bash
# The lab: the whole system in one local Debian 12 systemd container,
# converged by playbooks/site.yml with inventories/lab.
#   scripts/lab.sh up     start (or reuse) the lab host, converge, print endpoints
#   scripts/lab.sh down   remove the lab host
# Run it through `make lab` / `make lab-down`, which install what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME=congvu-lab
# The separate backup storage (inventory group backup), beside the lab host.
BACKUP=congvu-lab-backup
IMAGE=congvu-mail/debian12-systemd:latest
DOCKER=/usr/bin/docker
# host port on 127.0.0.1 -> port in the lab host (README: "The lab")
PORTS=(2525:25 2587:587 2465:465 2143:143 2993:993 2110:110 2995:995
       8080:80 8443:443 4190:4190 2636:636)

# start NAME HOSTNAME [docker run options]: create the container once, start it,
# wait for its systemd.
start() {
  local name=$1 hostname=$2
  shift 2
  if ! "$DOCKER" container inspect "$name" >/dev/null 2>&1; then
    "$DOCKER" run -d --name "$name" --hostname "$hostname" \
      --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined --cgroupns host \
      -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      --tmpfs /run --tmpfs /run/lock --tmpfs /tmp --stop-signal SIGRTMIN+3 \
      "$@" "$IMAGE" /lib/systemd/systemd >/dev/null
  fi
  "$DOCKER" start "$name" >/dev/null
  for _ in $(seq 1 30); do
    state=$("$DOCKER" exec "$name" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) break ;; esac
    sleep 1
  done
}

up() {
  local publish=()
  for p in "${PORTS[@]}"; do publish+=(-p "127.0.0.1:$p"); done
  start "$NAME" mail.bacgiang.gov.vn "${publish[@]}"
  start "$BACKUP" backup.bacgiang.gov.vn
  ansible-playbook -i inventories/lab playbooks/site.yml
  python3 scripts/lab-info.py "$NAME"
}

down() {
  "$DOCKER" rm -f "$NAME" "$BACKUP" >/dev/null 2>&1 || true
  echo "Lab hosts $NAME and $BACKUP removed (the lab CA in .lab/tls is kept)."
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
