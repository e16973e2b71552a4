#!/bin/bash
# Runs Molecule scenarios side by side: `molecule test -s NAME` for each name
# given, each on its own test network, and fails when any of them fails.
#
#   scripts/scenarios.sh default cluster rebuild
#
# Most of a scenario's time is spent waiting (package downloads, services
# starting, timers, protocol sessions), so scenarios run together finish
# much sooner than one after another. Each gets its own /24 network: the
# first CONGVU_NET (default 172.30.200), the next one .201, and so on. The
# output of each goes to artifacts/molecule-NAME.log and is printed whole
# when the scenario ends, so logs never interleave.
set -uo pipefail

cd "$(dirname "$0")/.."
DOCKER=/usr/bin/docker
base=${CONGVU_NET:-172.30.200}
prefix=${CONGVU_PREFIX:-congvu}
mkdir -p artifacts

declare -A pids nets
index=0
for scenario in "$@"; do
  net="${base%.*}.$(( ${base##*.} + index ))"
  index=$((index + 1))
  nets[$scenario]=$net
  # Hosts left over from an interrupted run (Molecule no longer knows them)
  # are removed by name first, so every run starts from new hosts.
  stale=$("$DOCKER" ps -aq --filter "name=^$prefix-$scenario")
  [ -z "$stale" ] || "$DOCKER" rm -f $stale >/dev/null
  echo "==> molecule test -s $scenario (network $net.0/24, log artifacts/molecule-$scenario.log)"
  CONGVU_NET=$net molecule test -s "$scenario" >"artifacts/molecule-$scenario.log" 2>&1 &
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

if [ ${#failed[@]} -gt 0 ]; then
  echo "==> failed scenarios: ${failed[*]}" >&2
  exit 1
fi
echo "==> every scenario passed: $*"
