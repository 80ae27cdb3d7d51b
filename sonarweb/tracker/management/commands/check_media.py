"""Check that every stored image and bundle still has its file in the media storage.

After a restore without the media folder (or a lost disk) the database names files that are
gone. Each stored image with a file missing is marked as failed with a reason the page shows
("The archived file is missing ...") and retryable, so the refresher, the staff retry button
and ``manage.py archive_images`` fetch it again; each bundle with its file missing is built
again by the refresher. The refresher runs the same check when it starts and every few hours.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sonarweb.media.integrity import check_files

from ...archive.store import rerender_many


class Command(BaseCommand):
    help = "Find stored images and bundles whose files are missing, and mark them to be redone."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="only count what is missing; change nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = bool(options["dry_run"])
        report = check_files(dry_run=dry_run)
        self.stdout.write(
            f"Checked {report.images} stored image(s) and {report.bundles} bundle(s): "
            f"{report.missing_images} image(s) and {report.missing_bundles} bundle(s) "
            f"have their file missing, in {len(report.answers)} answer(s)."
        )
        if dry_run or not (report.missing_images or report.missing_bundles):
            return
        # The pages show why the pictures are not there until they are fetched again.
        rendered = rerender_many(sorted(report.answers))
        self.stdout.write(
            f"Marked {report.marked} image(s) to be fetched again and rendered {rendered} "
            "answer(s) again; the refresher fetches the images and rebuilds the bundles, or "
            "run `manage.py archive_images` now."
        )
