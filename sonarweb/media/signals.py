"""What the image archive tells the apps above it.

The answers whose images or bundle these rows describe are the tracker's, a layer above this
app (docs/architecture.md): the archive names them only by id, and says what changed with a
signal instead of touching their rows.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``tracked_ids`` (a set of answer ids) and ``at`` (a datetime) when what those
# answers' pages show of their images or bundle changed with nobody asking: a stored file was
# found missing. The tracker marks the rows changed, so the permalinks' ETags change.
answers_changed = Signal()
