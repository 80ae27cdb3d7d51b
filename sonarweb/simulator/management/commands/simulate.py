"""Serve the Perplexity API simulator (the Agent API; the Sonar API retired or, with
--sonar-live, still answering) in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sonarweb.simulator.app import Simulator
from sonarweb.simulator.demo import DEMO_KEY, DEMO_UNTRACKED, seed_demo_jobs, seed_demo_runs
from sonarweb.simulator.server import serve


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _browser_url(host: str, port: int) -> str:
    """The server's URL as a browser on this machine reaches it (not 0.0.0.0 or ::)."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Command(BaseCommand):
    help = (
        "Run a stand-in for Perplexity's API (for the demo and manual testing): the Agent API "
        "(POST /v1/agent or /v1/responses, GET and cancel of background runs, GET /v1/models), "
        "and the async Sonar API, which answers 403 as retired unless --sonar-live is given."
    )
    # The simulator uses nothing of the project, so the project's checks (which import all of
    # it) need not pass for it to start.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001, help="0 picks a free port.")
        parser.add_argument(
            "--demo",
            action="store_true",
            help=f"Accept {DEMO_KEY} and create the demo's Agent runs (and Sonar jobs).",
        )
        parser.add_argument(
            "--sonar-live",
            action="store_true",
            help="Serve the async Sonar API as before its retirement (default: every Sonar path "
            "answers 403 chat_completions_not_available).",
        )
        parser.add_argument(
            "--key",
            action="append",
            default=[],
            dest="keys",
            help="Accept this API key (repeatable). Without --key or --demo, any pplx- key works.",
        )
        parser.add_argument("--queue-seconds", type=float, default=2.0)
        parser.add_argument("--run-seconds", type=float, default=20.0)
        parser.add_argument("--page-size", type=int, default=20)
        parser.add_argument(
            "--create-limit",
            type=int,
            default=None,
            help="Sonar jobs and Agent runs a key may create per minute (default: unlimited).",
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="Agent API calls a key may make per minute; more answer 429 (default: "
            "unlimited; the x-ratelimit-* headers are sent either way).",
        )
        parser.add_argument(
            "--image-base",
            default=None,
            help="Base URL that answers' images point at, as browsers reach this simulator "
            "(default: the URL it listens on).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host: str = options["host"]
        keys: list[str] = list(options["keys"])
        if options["demo"]:
            keys.append(DEMO_KEY)
        # The /_sim/ control endpoints have no authentication, so they only exist when nothing
        # but this machine can reach them.
        control = _is_loopback(host)
        sim = Simulator(
            keys or None,
            queue_seconds=options["queue_seconds"],
            run_seconds=options["run_seconds"],
            page_size=options["page_size"],
            create_limit_per_minute=options["create_limit"],
            control=control,
            sonar_retired=not options["sonar_live"],
            rate_limit_per_minute=options["rate_limit"],
        )
        tracked = seed_demo_jobs(sim) if options["demo"] else []
        runs = seed_demo_runs(sim) if options["demo"] else []
        try:
            server = serve(sim, host=host, port=options["port"])
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{options['port']}: {exc}") from exc
        # Known only once bound (--port 0); answers are generated when first read, so setting
        # it now still covers every job. The images then load in the demo's gallery.
        sim.image_base = options["image_base"] or _browser_url(server.host, server.port)

        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stop.set()

        previous = {
            sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._announce(server.url, keys, tracked, runs, sim.sonar_retired, control)
            # A timed wait keeps the main thread responsive to signals on every platform.
            while not stop.wait(0.5):
                pass
        finally:
            server.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stdout.write("Simulator stopped.")

    def _announce(
        self,
        url: str,
        keys: list[str],
        tracked: list[Any],
        runs: list[Any],
        retired: bool,
        control: bool,
    ) -> None:
        out = self.stdout
        out.write(f"Perplexity API simulator listening on {url}")
        if retired:
            out.write("The Sonar API is retired: its paths answer 403 (--sonar-live serves it).")
        else:
            out.write("The async Sonar API is live, as before its retirement.")
        if keys:
            # Only the last four characters: the terminal may be shared or recorded.
            out.write("Accepted keys: " + ", ".join(f"…{k[-4:]}" for k in keys))
        else:
            out.write("Accepting any key that looks like pplx-XXXXXXXX.")
        labels = ("completed", "running", "failed")
        if runs:
            out.write(f"Demo key: {DEMO_KEY}")
            out.write("Agent API runs:")
            for run, label in zip(runs, labels, strict=False):
                out.write(f"  {label:<10} {run.id}  {run.preset}  {run.question}")
        if tracked and not retired:
            out.write("Sonar jobs:")
            for job, label in zip(tracked, labels, strict=False):
                out.write(f"  {label:<10} {job.id}  {job.model}  {job.question}")
            for job in DEMO_UNTRACKED:
                out.write(f"  {'untracked':<10} {job.id}  {job.model}  {job.question}")
        if not control:
            out.write("Control endpoints (/_sim/) are off: the host is not a loopback address.")
        out.write("Press Ctrl-C to stop.")
        out.flush()
