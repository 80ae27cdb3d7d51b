"""Delete now the stored images no answer shows and the bundles of removed answers.

The refresher does the same about once an hour; this runs it at once (after removing many
requests, say) and prints what it freed.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.template.defaultfilters import filesizeformat

from ...archive.images import sweep_media


class Command(BaseCommand):
    help = "Delete stored images no answer shows any more, and bundles of removed answers."

    def handle(self, *args: Any, **options: Any) -> None:
        swept = sweep_media(force=True)
        assert swept is not None
        self.stdout.write(
            f"Deleted {swept.images} stored image(s) and {swept.bundles} bundle(s): "
            f"{swept.files} file(s), {filesizeformat(swept.bytes)} freed."
        )
        if swept.errors:
            self.stderr.write(f"{swept.errors} file(s) could not be deleted; see the log.")
