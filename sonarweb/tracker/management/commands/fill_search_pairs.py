"""Make the adjacent-word pairs of every search document still pending, now (PostgreSQL).

The refresher does this in batches on its own; this finishes it at once, after the
migration that adds the pairs to a large archive, and prints its progress. Safe to stop and
run again. Nothing to do on SQLite.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...search import pairs


class Command(BaseCommand):
    help = "Make the search index's word pairs for every answer still waiting (PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="documents per statement")

    def handle(self, *args: Any, **options: Any) -> None:
        left = pairs.pending()
        total, done, started = left, 0, time.monotonic()
        while left:
            filled = pairs.fill_pending(options["batch"])
            if not filled:
                break
            done += filled
            left = max(left - filled, 0)
            rate = done / max(time.monotonic() - started, 1e-6)
            self.stdout.write(f"{done:,}/{total:,} answers ({rate:,.0f}/s)")
        self.stdout.write(f"Word pairs made for {done:,} answers; {pairs.pending():,} waiting.")
