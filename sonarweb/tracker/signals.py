"""What the tracker tells the apps above it (docs/architecture.md).

The webhooks (``sonarweb.webhooks``) sit above the tracker and may import it, never the other
way round: so a request's end is announced here, and whoever wants it connects a receiver in
its ``AppConfig.ready``. Both are sent inside the transaction that writes the change, after
the write, so what a receiver writes commits (or rolls back) with it.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent (by TrackedRequest) with ``tracked_id``, ``status`` (sonarweb's vocabulary, or an
# unknown upstream status verbatim) and ``at`` when a request's final status is stored with
# its archive.
request_finished = Signal()
# Sent (by TrackedRequest) with ``tracked_id`` and ``at`` when a request becomes RETIRED (only
# the write that changes the state sends it).
request_retired = Signal()
