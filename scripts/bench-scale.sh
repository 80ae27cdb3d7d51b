#!/usr/bin/env bash
# `make bench-scale`: bench/scale.py fills a fresh database (SQLite in a temporary directory,
# or the PostgreSQL database DATABASE_URL names) and measures it; bench/report.py prints the
# table and fails when a target is missed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
BENCH_RESULTS=$(mktemp "${TMPDIR:-/tmp}/sonarweb-bench-scale.XXXXXX")
export BENCH_RESULTS
trap 'rm -f "$BENCH_RESULTS"' EXIT

$PY bench/scale.py "$@"
DB=sqlite
case "${DATABASE_URL:-}" in postgres*) DB=postgresql ;; esac
$PY bench/report.py --write docs/benchmarks.md --section "make bench-scale ($DB, $*)"
