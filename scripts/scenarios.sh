#!/bin/bash
# Runs Molecule scenarios side by side: `molecule test -s NAME` for each name
# given, each on its own test network, and fails when any of them fails.
#
#   scripts/scenarios.sh default cluster rebuild
#
# Most of a scenario's time is spent waiting (package downloads, services
# starting, timers, protocol sessions), so scenarios run together finish
# much sooner than one after another. Each gets its own /24 network: the
# first CONGVU_NET (default 172.30.200), the next one .201, and so on; and its
# own IPv6 /64 where it is dual stack: the first CONGVU_NET6 (default
# fd42:0:200, the first three groups), the next one fd42:0:201, and so on. The
# output of each goes to artifacts/molecule-NAME.log and is printed whole
# when the scenario ends, so logs never interleave.
#
# With both `default` and `rebuild`, the rebuild scenario does not converge
# a province's server of its own: the default scenario saves its host as an
# image right after its converge (molecule/snapshot.yml), and the rebuild
# scenario starts from that image once it exists (CONGVU_REBUILD_IMAGE). The
# host the rebuild then creates and rebuilds is still a new one from the
# base image. The image is removed at the end.
set -uo pipefail

cd "$(dirname "$0")/.."
DOCKER=/usr/bin/docker
base=${CONGVU_NET:-172.30.200}
base6=${CONGVU_NET6:-fd42:0:200}
prefix=${CONGVU_PREFIX:-congvu}
mkdir -p artifacts

declare -A pids nets
snapshot=
if [[ " $* " == *" default "* && " $* " == *" rebuild "* ]]; then
  snapshot="congvu-mail/snapshot:$prefix-default"
  "$DOCKER" rmi -f "$snapshot" >/dev/null 2>&1
fi

# The rebuild scenario, once the default scenario's converged host is saved;
# it fails at once if the default scenario ends without saving it.
rebuild_from_snapshot() {
  local waited=$SECONDS
  until "$DOCKER" image inspect "$snapshot" >/dev/null 2>&1; do
    if ! kill -0 "${pids[default]}" 2>/dev/null; then
      echo "The default scenario ended before its converged host was saved as $snapshot:"
      echo "see its log. The rebuild scenario did not run."
      return 1
    fi
    sleep 10
  done
  echo "Started from $snapshot, saved by the default scenario, after $(( (SECONDS - waited) / 60 )) min"
  CONGVU_REBUILD_IMAGE=$snapshot molecule test -s rebuild
}

# The rebuild scenario waits on the default scenario's run, so it starts last.
order=("$@")
if [ -n "$snapshot" ]; then
  order=()
  for scenario in "$@"; do [ "$scenario" = rebuild ] || order+=("$scenario"); done
  order+=(rebuild)
fi

index=0
for scenario in "${order[@]}"; do
  net="${base%.*}.$(( ${base##*.} + index ))"
  # The third group is hexadecimal, and so is its sum.
  export CONGVU_NET6="${base6%:*}:$(printf %x $(( 16#${base6##*:} + index )))"
  index=$((index + 1))
  nets[$scenario]=$net
  # Hosts left over from an interrupted run (Molecule no longer knows them)
  # are removed by name first, so every run starts from new hosts.
  stale=$("$DOCKER" ps -aq --filter "name=^$prefix-$scenario")
  [ -z "$stale" ] || "$DOCKER" rm -f $stale >/dev/null
  echo "==> molecule test -s $scenario (network $net.0/24 and $CONGVU_NET6::/64, log artifacts/molecule-$scenario.log)"
  if [ -n "$snapshot" ] && [ "$scenario" = rebuild ]; then
    echo "    (starts from the default scenario's host once that one has converged)"
    CONGVU_NET=$net rebuild_from_snapshot >"artifacts/molecule-$scenario.log" 2>&1 &
  elif [ -n "$snapshot" ] && [ "$scenario" = default ]; then
    CONGVU_NET=$net CONGVU_SNAPSHOT=$snapshot molecule test -s "$scenario" >"artifacts/molecule-$scenario.log" 2>&1 &
  else
    CONGVU_NET=$net molecule test -s "$scenario" >"artifacts/molecule-$scenario.log" 2>&1 &
  fi
  pids[$scenario]=$!
  # Docker creates the networks and containers one scenario at a time.
  sleep 20
done

failed=()
started=$SECONDS
remaining=("$@")
while [ ${#remaining[@]} -gt 0 ]; do
  running=()
  for scenario in "${remaining[@]}"; do running+=("${pids[$scenario]}"); done
  # Returns when one of them ends; which one is found below.
  wait -n "${running[@]}"
  still=()
  for scenario in "${remaining[@]}"; do
    if kill -0 "${pids[$scenario]}" 2>/dev/null; then
      still+=("$scenario")
      continue
    fi
    wait "${pids[$scenario]}"
    rc=$?
    echo
    echo "==> molecule test -s $scenario: $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)") after $(( (SECONDS - started) / 60 )) min"
    cat "artifacts/molecule-$scenario.log"
    echo "==> end of molecule test -s $scenario"
    [ $rc -eq 0 ] || failed+=("$scenario")
  done
  remaining=("${still[@]}")
done

[ -z "$snapshot" ] || "$DOCKER" rmi -f "$snapshot" >/dev/null 2>&1

if [ ${#failed[@]} -gt 0 ]; then
  echo "==> failed scenarios: ${failed[*]}" >&2
  exit 1
fi
echo "==> every scenario passed: $*"
