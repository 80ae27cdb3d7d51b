"""The two databases' ways to match, rank and highlight. Only ``Search`` uses these."""

from __future__ import annotations

from typing import Any

from django.db import connections

from .query import Query
from .schema import PG_CONFIG
from .snippets import START, STOP, Matcher, Snippet, from_markers

Sql = tuple[str, list[Any]]
_HEADLINE = (
    f"SELECT ts_headline('{PG_CONFIG}', x, websearch_to_tsquery('{PG_CONFIG}', %s), %s) "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n"
)


class Backend:
    """Each method answers SQL selecting ``(id, score)``: the requests that match, and how
    well (higher is better)."""

    vendor = ""

    def matching(self, query: Query, ranked: bool = True) -> Sql:
        raise NotImplementedError

    def excluding(self, words_sql: str) -> Sql:
        raise NotImplementedError

    def highlight(self, query: Query, passages: list[str], matcher: Matcher) -> list[Any]:
        return [matcher.highlight(p) for p in passages]

    def derived(self, query: Query, request_id: str | None, ranked: bool = True) -> Sql:
        """All matches as one derived table ``(id, score)``; unranked (score 0) for counting."""
        parts: list[Sql] = []
        if query.matching:
            parts.append(self.matching(query, ranked))
        for group in query.excluding:
            parts.append(self.excluding(self._alternatives(query, group)))
        if request_id:
            # A pasted request id finds its row first, as the old search did.
            parts.append(
                (
                    "SELECT id, 1e9 AS score FROM tracker_trackedrequest WHERE request_id = %s",
                    [request_id],
                )
            )
        if not parts:
            return ("SELECT id, 0 AS score FROM tracker_trackedrequest WHERE 1 = 0", [])
        if len(parts) == 1:
            return parts[0]
        union = " UNION ALL ".join(
            f"SELECT id, score FROM ({sql}) p{i}" for i, (sql, _) in enumerate(parts)
        )
        params = [p for _, ps in parts for p in ps]
        return (f"SELECT id, MAX(score) AS score FROM ({union}) u GROUP BY id", params)

    def _alternatives(self, query: Query, group: Any) -> Any:
        raise NotImplementedError


class SQLiteBackend(Backend):
    vendor = "sqlite"

    def matching(self, query: Query, ranked: bool = True) -> Sql:
        expression = query.fts5(query.matching)
        if not ranked:
            return (
                "SELECT rowid AS id, 0 AS score FROM tracker_search WHERE tracker_search MATCH %s",
                [expression],
            )
        # Ranked by the title and question only, as on PostgreSQL: bm25 over the answers reads
        # every instance of every word in every matching answer again (for two common words at
        # 100k answers, 190 ms of a 290 ms page), while the small columns cost a few ms. rank
        # is bm25 with the column weights set in the migration; lower is better. Both sets
        # are materialized: joined directly, SQLite would run the second MATCH once per row.
        return (
            "WITH p AS MATERIALIZED (SELECT rowid AS id FROM tracker_search "
            "WHERE tracker_search MATCH %s), "
            "h AS MATERIALIZED (SELECT rowid AS id, -rank AS score FROM tracker_search "
            "WHERE tracker_search MATCH %s) "
            "SELECT p.id AS id, COALESCE(h.score, 0) AS score FROM p LEFT JOIN h ON h.id = p.id",
            [expression, f"{{title question}} : ({expression})"],
        )

    def _alternatives(self, query: Query, group: Any) -> str:
        return " OR ".join(t.quoted for t in group.negative)

    def excluding(self, words_sql: str) -> Sql:
        return (
            "SELECT id, 0 AS score FROM tracker_trackedrequest WHERE id NOT IN "
            "(SELECT rowid FROM tracker_search WHERE tracker_search MATCH %s)",
            [words_sql],
        )


_TSQUERY = f"websearch_to_tsquery('{PG_CONFIG}', %s)"


class PostgresBackend(Backend):
    vendor = "postgresql"

    def matching(self, query: Query, ranked: bool = True) -> Sql:
        # Ranked by the title and question only: ranking by the answer as well would read the
        # answer's vector (tens of KB) for every match, on a common word thousands of them.
        text = query.websearch(query.matching)
        match, params = self._match(query)
        if not ranked:
            return (
                f"SELECT tracked_id AS id, 0 AS score FROM tracker_searchdocument WHERE {match}",
                params,
            )
        return (
            f"SELECT tracked_id AS id, ts_rank(head, {_TSQUERY}) "
            f"AS score FROM tracker_searchdocument WHERE {match}",
            [text, *params],
        )

    def _match(self, query: Query) -> Sql:
        """The WHERE clause for the query's matching groups.

        The GIN index can tell which documents have a phrase's words, not whether they are in
        order: PostgreSQL checks the order on every candidate, and with ``head || body`` it
        first builds that concatenation of two vectors, the answer's tens of KB. For the
        usual search (one group of words and phrases, nothing excluded) the index answers the
        words alone, exactly, and each phrase is checked on the title and question first and
        on the answer only when they lack it: three times faster when thousands of answers
        have the words, and a few ms when the titles have the phrase.
        """
        text = query.websearch(query.matching)
        whole = f"(head || body) @@ {_TSQUERY}"
        groups = query.matching
        if len(groups) != 1 or groups[0].negative:
            return whole, [text]
        phrases = [t for t in groups[0].positive if len(t.words) > 1]
        if not phrases:
            return whole, [text]
        words = " ".join(f'"{w}"' for t in groups[0].positive for w in t.words)
        ordered = " AND ".join(f"(head @@ {_TSQUERY} OR body @@ {_TSQUERY})" for _ in phrases)
        params = [words]
        for phrase in phrases:
            params += [phrase.quoted, phrase.quoted]
        return f"{whole} AND {ordered}", params

    def _alternatives(self, query: Query, group: Any) -> str:
        return " or ".join(t.quoted for t in group.negative)

    def excluding(self, words_sql: str) -> Sql:
        return (
            "SELECT id, 0 AS score FROM tracker_trackedrequest WHERE id NOT IN "
            "(SELECT tracked_id FROM tracker_searchdocument "
            f"WHERE (head || body) @@ websearch_to_tsquery('{PG_CONFIG}', %s))",
            [words_sql],
        )

    def highlight(self, query: Query, passages: list[str], matcher: Matcher) -> list[Any]:
        """``ts_headline`` over the passages alone: PostgreSQL's own stemming decides which
        words are marked."""
        if not passages:
            return []
        options = f"HighlightAll=true, StartSel={START}, StopSel={STOP}"
        with connections["default"].cursor() as cursor:
            cursor.execute(_HEADLINE, [query.websearch(query.matching), options, passages])
            return [from_markers(row[0]) for row in cursor.fetchall()]


def backend_for(vendor: str) -> Backend:
    if vendor == "postgresql":
        return PostgresBackend()
    if vendor == "sqlite":
        return SQLiteBackend()
    raise NotImplementedError(f"full-text search is not available on {vendor}")


__all__ = ["Backend", "Snippet", "backend_for"]
