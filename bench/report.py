"""Print the figures every bench step recorded as one table; exit 1 when a target is missed.

BENCH_RESULTS=/tmp/results.jsonl .venv/bin/python bench/report.py [--write docs/benchmarks.md
    --section NAME]

With ``--write`` the table also goes into that Markdown file, in the section NAME (between
two HTML comments, replaced on every run, other sections kept), with the date, the commit
and the machine it was measured on: the benchmark page is written by the benchmarks, never
by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import load


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    return done.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def markdown_section(name: str, results: list, note: str = "") -> str:
    lines = [
        f"<!-- {name}: start -->",
        f"### {name}",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit {_commit()}, on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}"
        + (f", {note}" if note else "")
        + ".",
        "",
        "| figure | measured | target | |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.name} | {r.value:,.2f} {r.unit} | {r.target} | {r.verdict} |" for r in results]
    lines.append(f"<!-- {name}: end -->")
    return "\n".join(lines)


def write_section(path: Path, name: str, section: str) -> None:
    """Put ``section`` in place of the one with the same name, or at the end."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name}: start -->", f"<!-- {name}: end -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description="Print (and write) the benchmark table.")
    parser.add_argument("--write", type=Path, help="a Markdown file to write the table into")
    parser.add_argument("--section", default="make bench", help="the section's name there")
    parser.add_argument("--note", default="", help="what else the reader should know")
    args = parser.parse_args()
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
    if args.write:
        write_section(args.write, args.section, markdown_section(args.section, results, args.note))
        print(f"\nwritten to {args.write}, section {args.section!r}")
    failed = [r.name for r in results if r.passed is False]
    if failed:
        print(f"\nmissed targets: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
