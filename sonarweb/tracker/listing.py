"""The dashboard's table: filters, keyset pagination, status counts and search.

Every query here is an index range scan whose cost follows the page, not the archive:
rows come newest first from the ``tracked_list*`` indexes (one per filter combination, each
ending in ``created, id``), pages continue from a cursor (the last row's ``created`` and ``id``)
rather than an offset, so they stay stable while rows are added, and the status counts are a
GROUP BY on the stored ``badge`` column that those indexes cover. Search goes through
``search.Search`` and is ranked, so its pages are numbered instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, OuterRef, QuerySet

from .archive.search import Filters, Search, SearchTooSlow
from .models import TrackedRequest

ROWS_PER_PAGE = 25
# Search results are ranked, so they are paged by number; this bounds how deep.
MAX_SEARCH_PAGE = 40
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_cursor(row: TrackedRequest) -> str:
    micros = (row.created - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{row.pk}"


def decode_cursor(value: str | None) -> tuple[datetime, int] | None:
    """A cursor from a URL, or None when it is missing or malformed."""
    try:
        micros, pk = (value or "").split(".")
        return _EPOCH + timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError):
        return None


def member_choices() -> list[tuple[str, int]]:
    """(username, id) of members who tracked something: one indexed probe per member."""
    tracked = TrackedRequest.objects.filter(added_by=OuterRef("pk"))
    return list(
        get_user_model()
        .objects.filter(Exists(tracked))
        .order_by("username")
        .values_list("username", "pk")
    )


def used_models() -> list[str]:
    """The distinct models, by skipping through the (model, …) index: one seek per model.

    ``values_list("model").distinct()`` would inherit ``Meta.ordering`` and select
    ``DISTINCT model, created, id``, that is every row.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE m(model) AS (
              SELECT MIN(model) FROM tracker_trackedrequest WHERE model > ''
              UNION ALL
              SELECT (SELECT MIN(model) FROM tracker_trackedrequest t WHERE t.model > m.model)
              FROM m WHERE m.model IS NOT NULL
            )
            SELECT model FROM m WHERE model IS NOT NULL
            """
        )
        return [row[0] for row in cursor.fetchall()]


@dataclass
class Page:
    rows: list[TrackedRequest]
    counts: dict[str, int]
    newer: str | None = None  # cursor (keyset) or page number (search) of the newer page
    older: str | None = None
    number: int | None = None  # search pages only
    is_first: bool = True
    # A search stopped at its time bound: the sentence to show, and a looser search to offer.
    too_slow: str = ""
    without_order: str | None = None


def filtered(filters: Filters, *, with_badge: bool = True) -> QuerySet[TrackedRequest]:
    rows = TrackedRequest.objects.all()
    if filters.member_id is not None:
        rows = rows.filter(added_by_id=filters.member_id)
    if filters.model:
        rows = rows.filter(model=filters.model)
    if filters.badge and with_badge:
        rows = rows.filter(badge=filters.badge)
    return rows


# How long the status counts an open dashboard's poll shows may be old. Counting is one
# aggregate over every row (40 ms at 100,000 on PostgreSQL), and a hundred open dashboards
# poll about 33 times a second: counted afresh each time, that alone took both CPUs of the
# benchmark machine (/badges/ p95 1.3 s). A poll that brings a changed or a new row counts
# afresh, so the poll that shows a job finishing shows the counts after it too.
COUNTS_SECONDS = 5


def status_counts(filters: Filters, *, fresh: bool = True) -> dict[str, int]:
    """How many rows each badge has under ``filters`` (the status filter aside). ``fresh``
    counts now, and keeps the figure for polls; otherwise a figure at most COUNTS_SECONDS old
    will do, from Django's cache."""
    model = hashlib.blake2b(filters.model.encode(), digest_size=8).hexdigest()
    key = f"sonarweb:status-counts:{filters.member_id}:{model}"
    if not fresh and (counted := cache.get(key)) is not None:
        return counted
    rows = (
        filtered(filters, with_badge=False).order_by().values_list("badge").annotate(n=Count("pk"))
    )
    counts = dict(rows)
    cache.set(key, counts, COUNTS_SECONDS)
    return counts


def _newer(rows: QuerySet[TrackedRequest], created: datetime, pk: int) -> QuerySet:
    """The rows after (``created``, ``pk``) in the dashboard's order, oldest first."""
    return (
        rows.filter(created__gte=created)
        .exclude(created=created, pk__lte=pk)
        .order_by("created", "id")
    )


def browse(filters: Filters, before: str | None = None, after: str | None = None) -> Page:
    """Newest first, ROWS_PER_PAGE at a time, continuing from a cursor."""
    rows = filtered(filters)
    if (cursor := decode_cursor(after)) is not None:
        # The page just newer than the cursor: read upwards, then show newest first.
        found = list(_newer(rows, *cursor).listing()[: ROWS_PER_PAGE + 1])
        has_newer = len(found) > ROWS_PER_PAGE
        page_rows = found[:ROWS_PER_PAGE][::-1]
        has_older = True
    else:
        query = rows
        cursor = decode_cursor(before)
        if cursor is not None:
            created, pk = cursor
            query = rows.filter(created__lte=created).exclude(created=created, pk__gte=pk)
        found = list(query.order_by("-created", "-id").listing()[: ROWS_PER_PAGE + 1])
        has_older = len(found) > ROWS_PER_PAGE
        page_rows = found[:ROWS_PER_PAGE]
        has_newer = (
            cursor is not None
            and bool(page_rows)
            and _newer(rows, page_rows[0].created, page_rows[0].pk).exists()
        )
    return Page(
        rows=page_rows,
        counts=status_counts(filters),
        newer=encode_cursor(page_rows[0]) if has_newer and page_rows else None,
        older=encode_cursor(page_rows[-1]) if has_older and page_rows else None,
        is_first=not has_newer,
    )


def newer_than(
    filters: Filters, cursor: str | None, limit: int = ROWS_PER_PAGE
) -> list[TrackedRequest]:
    """Rows added since the top row a dashboard shows (``cursor``), newest first."""
    decoded = decode_cursor(cursor)
    if decoded is None:
        return []
    return list(_newer(filtered(filters), *decoded).listing()[:limit])[::-1]


def search(text: str, filters: Filters, page: Any) -> Page:
    """Ranked matches, ROWS_PER_PAGE per numbered page, with where the words matched."""
    try:
        number = min(max(int(page or 1), 1), MAX_SEARCH_PAGE)
    except (TypeError, ValueError):
        number = 1
    found = Search(text)
    try:
        ids, counts = found.page_and_counts(
            filters, (number - 1) * ROWS_PER_PAGE, ROWS_PER_PAGE + 1
        )
    except SearchTooSlow:
        loose = found.without_order()
        seconds = f"{settings.SONARWEB_SEARCH_SECONDS:g}"
        if loose:
            sentence = (
                f"This search was stopped after {seconds} s: its quoted words are in so many "
                "answers that checking their order in each one takes too long."
            )
        else:
            sentence = f"This search was stopped after {seconds} s. Add a rarer word to narrow it."
        return Page(rows=[], counts={}, number=number, too_slow=sentence, without_order=loose)
    shown = ids[:ROWS_PER_PAGE]
    by_id = TrackedRequest.objects.listing().in_bulk(shown)
    snippets = found.snippets(shown)
    rows = [by_id[pk] for pk in shown if pk in by_id]
    for row in rows:
        row.search_snippets = snippets.get(row.pk, [])  # type: ignore[attr-defined]
    return Page(
        rows=rows,
        counts=counts,
        newer=str(number - 1) if number > 1 else None,
        older=str(number + 1) if len(ids) > ROWS_PER_PAGE and number < MAX_SEARCH_PAGE else None,
        number=number,
        is_first=number == 1,
    )
