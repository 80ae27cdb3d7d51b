"""Figures the bench steps report, collected into one table by ``bench/report.py``.

Each step appends JSON lines to the file named by ``BENCH_RESULTS`` (scripts/bench.sh sets
it), so steps stay separate programs and a new step is one more line in the script.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Result:
    name: str
    value: float
    unit: str
    target: str
    passed: bool | None  # None: a figure shown for context, with no target of its own

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return ""
        return "PASS" if self.passed else "FAIL"


def record(result: Result) -> None:
    path = os.environ.get("BENCH_RESULTS")
    status = f" [{result.verdict}]" if result.verdict else ""
    target = f" (target {result.target})" if result.target else ""
    print(f"  {result.name}: {result.value:,.2f} {result.unit}{target}{status}", flush=True)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(asdict(result)) + "\n")


def load(path: str) -> list[Result]:
    with open(path, encoding="utf-8") as lines:
        return [Result(**json.loads(line)) for line in lines if line.strip()]
