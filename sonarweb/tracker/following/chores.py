"""The refresher's periodic chores: the background work that is not a call upstream.

Each chore is a function of the current time that returns how much it did. The refresher runs
the ones that are due after each pass (``run_due``), each on its own schedule; any of them can
also be run at once with ``manage.py chore NAME`` (``manage.py chore --list`` names them).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.sessions.models import Session
from django.db.models import Q

from sonarweb.accounts import audit as trail
from sonarweb.accounts import signin
from sonarweb.media import background as media
from sonarweb.media import cleanup as media_cleanup
from sonarweb.media import integrity as media_integrity

from .. import audit
from ..archive import images
from ..archive import store as archive
from ..models import RefresherBeat, UpstreamCall

log = logging.getLogger("sonarweb.chores")

CALL_LOG_DAYS = timedelta(days=7)
BEATS_KEPT = timedelta(days=1)
# Archives rendered again per run after the renderer changed.
RERENDER_PER_RUN = 5
# Answers whose images are fetched per run, and portable bundles built per run.
IMAGE_ANSWERS_PER_RUN = 2
BUNDLES_PER_RUN = 2


def archive_images(now: datetime) -> int:
    """Fetch the images of a few answers, then render those answers with their copies."""
    return archive.rerender_many(media.archive_due_images(IMAGE_ANSWERS_PER_RUN))


def rerender(now: datetime) -> int:
    """Render a few archives made by an older renderer again."""
    return archive.rerender_stale(RERENDER_PER_RUN)


def build_bundles(now: datetime) -> int:
    """Build the portable .zip of a few answers whose images are settled."""
    return images.build_due_bundles(BUNDLES_PER_RUN)


def expire_links(now: datetime) -> int:
    """Expiry happens with nobody acting: the audit trail learns of it here."""
    return audit.record_expired_links(now)


def prune(now: datetime) -> int:
    """Forget what no page shows any more: old call records and refresher beats, year-old
    audit events, spent sign-in allowances and expired sessions."""
    deleted, _ = UpstreamCall.objects.filter(at__lt=now - CALL_LOG_DAYS).delete()
    beats, _ = RefresherBeat.objects.filter(
        Q(last_pass_at__lt=now - BEATS_KEPT) | Q(stopped_at__lt=now - BEATS_KEPT)
    ).delete()
    events = trail.prune(now)
    allowances = signin.prune(now) or 0
    sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
    return deleted + beats + events + allowances + sessions


def sweep_media(now: datetime) -> int:
    """Delete stored images no answer shows and bundles of removed answers."""
    swept = images.sweep_media(now, force=True)
    return (swept.images + swept.bundles) if swept else 0


@dataclass(frozen=True)
class Chore:
    name: str
    run: Callable[[datetime], int]
    # None: after every pass.
    every: timedelta | None = None

    @property
    def help(self) -> str:
        return (self.run.__doc__ or "").strip().splitlines()[0]


CHORES: tuple[Chore, ...] = (
    Chore("archive-images", archive_images),
    Chore("rerender", rerender),
    Chore("bundles", build_bundles),
    Chore("expire-links", expire_links, timedelta(minutes=1)),
    Chore("prune", prune, timedelta(minutes=10)),
    Chore("sweep-media", sweep_media, media_cleanup.SWEEP_EVERY),
    Chore("check-media", media_integrity.check_missing, media_integrity.CHECK_EVERY),
)
BY_NAME = {chore.name: chore for chore in CHORES}


def register(chore: Chore) -> None:
    """Add an app's chore (or replace the one of that name): apps above the tracker, which
    it never imports, register theirs in their ``AppConfig.ready`` (the webhooks' delivery)."""
    global CHORES
    CHORES = (*(c for c in CHORES if c.name != chore.name), chore)
    BY_NAME[chore.name] = chore


_last_run: dict[str, datetime] = {}
_lock = threading.Lock()


def _due(chore: Chore, now: datetime) -> bool:
    with _lock:
        last = _last_run.get(chore.name)
        if chore.every is not None and last is not None and now - last < chore.every:
            return False
        _last_run[chore.name] = now
        return True


def run_due(now: datetime) -> dict[str, int]:
    """Run every chore whose time has come; one chore's failure does not stop the others."""
    done: dict[str, int] = {}
    for chore in CHORES:
        if not _due(chore, now):
            continue
        try:
            done[chore.name] = chore.run(now)
        except Exception:
            log.exception("chore %s failed; it runs again next time", chore.name)
    return done


def forget_schedule() -> None:
    """Every chore due again (tests, and a fresh process)."""
    with _lock:
        _last_run.clear()
