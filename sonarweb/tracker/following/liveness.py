"""Is a background refresher alive here? Read from the passes it records in the database."""

from __future__ import annotations

import socket
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.timesince import timesince

from ..models import RefresherBeat

# A refresher is alive while it finished a pass within this many refresh intervals.
INTERVALS = 10


def check_refresher(host: str | None = None) -> tuple[bool, str]:
    """(alive, a sentence): a refresher on ``host`` (this machine by default) finished a pass
    within the last ten refresh intervals."""
    host = host or socket.gethostname()
    horizon = timedelta(seconds=INTERVALS * float(settings.SONARWEB_REFRESH_SECONDS))
    now = timezone.now()
    beats = RefresherBeat.objects.filter(host=host[:255])
    last = beats.aggregate(last=Max("last_pass_at"))["last"]
    if last is None:
        return False, f"No refresher on {host} has finished a pass yet."
    if now - last > horizon:
        return False, (
            f"The refresher on {host} last finished a pass {timesince(last, now)} ago, "
            f"longer than {INTERVALS} refresh intervals ({horizon.total_seconds():g} s)."
        )
    seconds = max((now - last).total_seconds(), 0.0)
    return True, f"The refresher on {host} finished a pass {seconds:.1f} s ago."
