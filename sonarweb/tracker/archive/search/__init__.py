"""Full-text search of questions, titles and answers, on SQLite (FTS5) and PostgreSQL.

One interface; the backend follows ``connection.vendor``, so views never know which
database they have::

    found = Search(text)
    ids = found.page(Filters(member_id=3), offset=0, limit=25)   # best matches first
    counts = found.counts(Filters(member_id=3))                  # {badge: n}
    snippets = found.snippets(ids)                               # {id: [Snippet, ...]}

The syntax is websearch's (see ``query.py``). The index lives in the database and follows
every write through triggers (see ``schema.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from .backends import Backend, backend_for
from .bound import SearchTooSlow, bounded
from .query import Query, parse
from .snippets import Matcher, Snippet

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{5,127}")
# Questions are shown whole below this length; longer ones as a passage.
SHORT_TEXT = 240


@dataclass(frozen=True)
class Filters:
    """The dashboard's other filters, as plain column values."""

    member_id: int | None = None
    model: str = ""
    badge: str = ""

    def where(self, *, with_badge: bool = True) -> tuple[str, list[Any]]:
        clauses, params = ["1 = 1"], []
        if self.member_id is not None:
            clauses.append("t.added_by_id = %s")
            params.append(self.member_id)
        if self.model:
            clauses.append("t.model = %s")
            params.append(self.model)
        if self.badge and with_badge:
            clauses.append("t.badge = %s")
            params.append(self.badge)
        return " AND ".join(clauses), params


class Search:
    def __init__(self, text: str) -> None:
        self.text = (text or "").strip()
        self.query: Query = parse(self.text)
        self.backend: Backend = backend_for(connection.vendor)
        request_id = self.text if _REQUEST_ID.fullmatch(self.text) else None
        self._derived = self.backend.derived(self.query, request_id)
        self._unranked = self.backend.derived(self.query, request_id, ranked=False)

    def _run(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Raises ``SearchTooSlow`` past ``SONARWEB_SEARCH_SECONDS``."""
        with bounded(connection, settings.SONARWEB_SEARCH_SECONDS):
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()

    def without_order(self) -> str | None:
        """The same search with its phrases as plain words (any order), for the page to offer
        when a phrase made the search too slow; None when it has no phrase to loosen."""
        if not any(len(t.words) > 1 for g in self.query.groups for t in g.positive):
            return None
        return " or ".join(
            " ".join(
                [w for t in g.positive for w in t.words] + [f"-{t.quoted}" for t in g.negative]
            )
            for g in self.query.groups
        )

    def page(self, filters: Filters, offset: int, limit: int) -> list[int]:
        """Ids of matching requests, best first, then newest."""
        matches, params = self._derived
        where, where_params = filters.where()
        rows = self._run(
            f"SELECT t.id FROM ({matches}) m JOIN tracker_trackedrequest t ON t.id = m.id "
            f"WHERE {where} ORDER BY m.score DESC, t.created DESC, t.id DESC LIMIT %s OFFSET %s",
            [*params, *where_params, limit, offset],
        )
        return [row[0] for row in rows]

    def page_and_counts(
        self, filters: Filters, offset: int, limit: int
    ) -> tuple[list[int], dict[str, int]]:
        """``page`` and ``counts`` in one statement: the index is asked once (a phrase over
        common words reads long position lists; doing that twice doubled the page's time)."""
        matches, params = self._derived
        where, where_params = filters.where(with_badge=False)
        badge = "AND j.badge = %s" if filters.badge else ""
        rows = self._run(
            f"WITH m AS MATERIALIZED ({matches}), "
            f"j AS MATERIALIZED (SELECT t.id, t.badge, t.created, m.score FROM m "
            f"JOIN tracker_trackedrequest t ON t.id = m.id WHERE {where}) "
            f"SELECT 0, badge, COUNT(*), 0 FROM j GROUP BY badge "
            f"UNION ALL SELECT * FROM (SELECT 1, '', j.id, ROW_NUMBER() OVER "
            f"(ORDER BY j.score DESC, j.created DESC, j.id DESC) AS n FROM j WHERE 1 = 1 {badge} "
            f"ORDER BY n LIMIT %s OFFSET %s) p",
            [*params, *where_params, *([filters.badge] if filters.badge else []), limit, offset],
        )
        counts = {badge: n for kind, badge, n, _ in rows if kind == 0}
        page = sorted((position, pk) for kind, _, pk, position in rows if kind == 1)
        return [pk for _, pk in page], counts

    def counts(self, filters: Filters) -> dict[str, int]:
        """How many requests match, per badge status, under every filter but the status."""
        matches, params = self._unranked
        where, where_params = filters.where(with_badge=False)
        rows = self._run(
            f"SELECT t.badge, COUNT(*) FROM ({matches}) m "
            f"JOIN tracker_trackedrequest t ON t.id = m.id WHERE {where} GROUP BY t.badge",
            [*params, *where_params],
        )
        return dict(rows)

    def snippets(self, ids: list[int]) -> dict[int, list[Snippet]]:
        """For each request, the fields where the words matched, with them marked."""
        from ...models import TrackedRequest

        matcher = Matcher(self.query.words())
        if not ids or matcher.pattern is None:
            return {}
        rows = TrackedRequest.objects.filter(pk__in=ids).values_list(
            "pk", "title", "question", "archive__markdown"
        )
        places: list[tuple[int, str]] = []
        passages: list[str] = []
        for pk, title, question, markdown in rows:
            for name, text, whole in (
                ("title", title, 10_000),
                ("question", question, SHORT_TEXT),
                ("answer", markdown or "", 0),
            ):
                passage = matcher.window(text, whole_below=whole) if text else None
                if passage:
                    places.append((pk, name))
                    passages.append(passage)
        found: dict[int, list[Snippet]] = {}
        marked = self.backend.highlight(self.query, passages, matcher)
        for (pk, name), html in zip(places, marked, strict=True):
            if html:
                found.setdefault(pk, []).append(Snippet(name, html))
        return found


__all__ = ["Filters", "Query", "Search", "SearchTooSlow", "Snippet", "parse"]
