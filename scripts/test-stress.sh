#!/usr/bin/env bash
# make test-stress: the whole suite while nproc+2 processes spin on every CPU, so tests that
# lean on wall-clock margins fail here rather than on a busy CI host. The spinners are
# always stopped, whatever happens to the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
spinners=()
stop_spinners() {
  for pid in "${spinners[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait "${spinners[@]}" 2>/dev/null || true
}
trap stop_spinners EXIT INT TERM
count=$(( $(nproc) + 2 ))
for _ in $(seq 1 "$count"); do
  .venv/bin/python -c 'while True: pass' &
  spinners+=($!)
done
echo "test-stress: $count busy loops on $(nproc) CPUs (pids ${spinners[*]})"
started=$(date +%s)
make --no-print-directory test
echo "test-stress: make test passed under load in $(( $(date +%s) - started )) s"
