"""Print the figures every bench step recorded as one table; exit 1 when a target is missed.

BENCH_RESULTS=/tmp/results.jsonl .venv/bin/python bench/report.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import load


def main() -> int:
    path = os.environ.get("BENCH_RESULTS", "")
    if not path or not Path(path).exists():
        print("bench/report.py: no results (BENCH_RESULTS is not set or the file is missing)")
        return 1
    results = load(path)
    rows = [("figure", "measured", "target", "")]
    rows += [(r.name, f"{r.value:,.2f} {r.unit}", r.target, r.verdict) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    print()
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * width for width in widths))
    failed = [r.name for r in results if r.passed is False]
    if failed:
        print(f"\nmissed targets: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
