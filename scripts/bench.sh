#!/usr/bin/env bash
# `make bench`: each step is one `python bench/<name>.py` that prints its figures and records
# them in $BENCH_RESULTS; bench/report.py prints the table and fails when a target is missed.
# Add a step by adding a line before the report.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
BENCH_RESULTS=$(mktemp "${TMPDIR:-/tmp}/sonarweb-bench.XXXXXX")
export BENCH_RESULTS
trap 'rm -f "$BENCH_RESULTS"' EXIT

$PY bench/render_bench.py
$PY bench/page_bench.py
$PY bench/poll_load.py
$PY bench/upstream_faults.py
$PY bench/image_archive.py
$PY bench/memory_bench.py

$PY bench/report.py --write docs/benchmarks.md --section "make bench"
