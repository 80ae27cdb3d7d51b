#!/usr/bin/env bash
# make demo: migrate, start the simulator with sample jobs, prepare the demo user,
# then serve the app on http://127.0.0.1:8000. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
SIM_PORT=${SIM_PORT:-8001}
export DJANGO_DEBUG=1 SONARWEB_INSECURE_HTTP=1
# The simulator serves its answers' images on loopback; production never fetches from there.
export SONARWEB_IMAGES_ALLOW_PRIVATE=1
export PERPLEXITY_API_BASE="http://127.0.0.1:${SIM_PORT}"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

$PY manage.py migrate --noinput >/dev/null
$PY manage.py simulate --port "$SIM_PORT" --demo &
pids+=($!)
for _ in $(seq 1 50); do
  if $PY -c "import urllib.request,sys; urllib.request.urlopen('$PERPLEXITY_API_BASE/_sim/health', timeout=1)" 2>/dev/null; then break; fi
  sleep 0.2
done
$PY manage.py demo_setup
# Archives answers even when no page is open.
$PY manage.py refresh_requests &
pids+=($!)
echo "  Serving sonarweb at http://127.0.0.1:8000 (Ctrl-C stops everything)"
$PY manage.py runserver 127.0.0.1:8000 --noreload &
pids+=($!)
wait -n "${pids[@]}"
