"""Keep unfinished requests moving in the background, so answers are archived
even when nobody has a page open. Safe to run in several processes at once."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from sonarweb.tracker.following.refresher import Refresher, run_once


class Command(BaseCommand):
    help = "Poll unfinished requests in a loop (or once with --once). Stops cleanly on SIGTERM."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="Make a single pass and exit.")
        parser.add_argument(
            "--interval",
            type=float,
            default=None,
            help="Seconds between passes (default SONARWEB_REFRESH_SECONDS).",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Keys worked at the same time (default SONARWEB_REFRESH_WORKERS).",
        )

    def handle(
        self, *args: Any, once: bool, interval: float | None, workers: int | None, **options: Any
    ) -> None:
        if once:
            stats = run_once()
            self.stdout.write(
                f"keys={stats.keys} claimed={stats.claimed} list_calls={stats.list_calls} "
                f"detail_calls={stats.detail_calls} errors={len(stats.errors)}"
            )
            return
        stop = threading.Event()
        # Handlers first: a SIGTERM that arrives once we have said we are ready is honoured.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        every = interval if interval is not None else settings.SONARWEB_REFRESH_SECONDS
        refresher = Refresher(
            interval=every,
            workers=workers if workers is not None else settings.SONARWEB_REFRESH_WORKERS,
            stop=stop,
        )
        refresher.start()

        def ready() -> None:
            self.stdout.write(f"Refreshing unfinished requests every {every:g} s (SIGTERM stops).")
            self.stdout.flush()

        refresher.run(ready=ready)
        self.stdout.write("Refresher stopped.")
        self.stdout.flush()
