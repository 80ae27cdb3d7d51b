"""Archive the images of answers that were archived before images were kept.

Resumable and idempotent: every image's outcome is saved as it happens, stored images are
never fetched again, and a second run only picks up what is still to do. Retryable failures
(network, timeouts, busy hosts) are retried up to media.archiving.MAX_ATTEMPTS; ``--retry-failed``
retries every failed image once more.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sonarweb.media.archiving import ArchiveReport, archive_images_for, to_fetch
from sonarweb.media.fetch import FetchPolicy, ImageFetcher
from sonarweb.media.models import AnswerImage
from sonarweb.media.refs import image_refs

from ...archive.store import rerender_many, stored_job
from ...models import AnswerArchive, TrackedRequest


class Command(BaseCommand):
    help = "Fetch and keep the images of archived answers (safe to run again; resumes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--retry-failed", action="store_true", help="also retry images that failed before"
        )
        parser.add_argument(
            "--slug", action="append", default=[], help="only this answer (repeatable)"
        )
        parser.add_argument(
            "--budget", type=float, default=None, help="seconds per answer (default: settings)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        retry = bool(options["retry_failed"])
        rows = TrackedRequest.objects.answered().filter(archived_at__isnull=False)
        if options["slug"]:
            rows = rows.filter(slug__in=options["slug"])
        answers = list(rows.order_by("pk").values_list("pk", flat=True))
        total = ArchiveReport()
        idle = 0
        with ImageFetcher(FetchPolicy.from_settings()) as fetcher:
            for number, pk in enumerate(answers, 1):
                report = self._one(pk, fetcher, retry=retry, budget=options["budget"])
                if report is None:
                    idle += 1
                    continue
                slug = TrackedRequest.objects.filter(pk=pk).values_list("slug", flat=True)[0]
                line = (
                    f"[{number}/{len(answers)}] {slug}: {report.stored} stored, "
                    f"{report.failed} failed, {report.already} already kept"
                )
                if report.left:
                    line += f", {report.left} left for the next run"
                self.stdout.write(line)
                if report.stored or report.failed:
                    # The page and the bundle show the local copies from now on.
                    rerender_many([pk])
                for url, reason in report.failures:
                    self.stdout.write(f"    failed {url[:100]}: {reason}")
                total.stored += report.stored
                total.failed += report.failed
                total.left += report.left
        self.stdout.write(
            f"{len(answers)} answers ({idle} with nothing to do): "
            f"{total.stored} images stored, {total.failed} failed"
            + (f", {total.left} left (run again to continue)" if total.left else "")
            + "."
        )

    def _one(
        self, pk: int, fetcher: ImageFetcher, *, retry: bool, budget: float | None
    ) -> ArchiveReport | None:
        """The report for one answer, or None when it had nothing to do."""
        recorded = AnswerImage.objects.filter(tracked_id=pk).exists()
        if recorded and not to_fetch(pk, retry_failed=retry).exists():
            return None
        refs = []
        if not recorded:
            job = stored_job(AnswerArchive.objects.get(pk=pk))
            completion = job.response if job is not None else None
            refs = image_refs(completion) if completion is not None else []
            if not refs:
                return None
        return archive_images_for(
            pk, refs, budget_seconds=budget, retry_failed=retry, fetcher=fetcher
        )
