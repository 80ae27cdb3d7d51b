"""The two databases' ways to match, rank and highlight. Only ``Search`` uses these."""

from __future__ import annotations

from typing import Any

from django.db import connections

from .query import Group, Query
from .schema import PG_CONFIG
from .snippets import START, STOP, Matcher, from_markers

Sql = tuple[str, list[Any]]
_HEADLINE = (
    f"SELECT ts_headline('{PG_CONFIG}', x, websearch_to_tsquery('{PG_CONFIG}', %s), %s) "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS u(x, n) ORDER BY n"
)


class Backend:
    """Each method answers SQL selecting ``(id, score)``: the requests that match, and how
    well (higher is better)."""

    # SQL selecting the ids of the requests that match the index expression ``%s``, and the
    # word that joins alternatives in such an expression.
    matches = ""
    or_word = ""

    def matching(self, query: Query, ranked: bool = True) -> Sql:
        raise NotImplementedError

    def excluding(self, group: Group) -> Sql:
        """Every request with none of the group's terms: an anti-join through the index."""
        return (
            f"SELECT id, 0 AS score FROM tracker_trackedrequest WHERE id NOT IN ({self.matches})",
            [self.or_word.join(t.quoted for t in group.negative)],
        )

    def highlight(self, query: Query, passages: list[str], matcher: Matcher) -> list[Any]:
        return [matcher.highlight(p) for p in passages]

    def derived(self, query: Query, request_id: str | None, ranked: bool = True) -> Sql:
        """All matches as one derived table ``(id, score)``; unranked (score 0) for counting."""
        parts: list[Sql] = []
        if query.matching:
            parts.append(self.matching(query, ranked))
        for group in query.excluding:
            parts.append(self.excluding(group))
        if request_id:
            # A pasted request id finds its row first, as the old search did.
            by_id = "SELECT id, 1e9 AS score FROM tracker_trackedrequest WHERE request_id = %s"
            parts.append((by_id, [request_id]))
        if not parts:
            return ("SELECT id, 0 AS score FROM tracker_trackedrequest WHERE 1 = 0", [])
        if len(parts) == 1:
            return parts[0]
        union = " UNION ALL ".join(
            f"SELECT id, score FROM ({sql}) p{i}" for i, (sql, _) in enumerate(parts)
        )
        params = [p for _, ps in parts for p in ps]
        return (f"SELECT id, MAX(score) AS score FROM ({union}) u GROUP BY id", params)


class SQLiteBackend(Backend):
    matches = "SELECT rowid FROM tracker_search WHERE tracker_search MATCH %s"
    or_word = " OR "

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


_TSQUERY = f"websearch_to_tsquery('{PG_CONFIG}', %s)"


class PostgresBackend(Backend):
    matches = f"SELECT tracked_id FROM tracker_searchdocument WHERE (head || body) @@ {_TSQUERY}"
    or_word = " or "

    def matching(self, query: Query, ranked: bool = True) -> Sql:
        """Ranked by the title and question only: ranking by the answer as well would read
        the answer's vector (tens of KB) for every match, on a common word thousands of them.

        The GIN index over ``head || body`` answers words exactly, but for a phrase only which
        documents have its words: PostgreSQL then checks the order on each of them. So for the
        usual search with a phrase (one group, no ``or``) the index is asked for all the words,
        and each phrase's order is checked on the title and question, or else on the answer,
        rather than on their concatenation. A phrase whose words are in most answers is
        checked on most answers: the time bound (``bound.py``) stops that search, and the page
        offers the same words in any order. Exclusions are an anti-join through the index, not
        a test on each row.
        """
        text = query.websearch(query.matching)
        score = f"ts_rank(head, {_TSQUERY})" if ranked else "0"
        score_params = [text] if ranked else []
        where, params = f"(head || body) @@ {_TSQUERY}", [text]
        groups = query.matching
        phrases = [t for t in groups[0].positive if len(t.words) > 1] if len(groups) == 1 else []
        if phrases:
            group = groups[0]
            params = [" ".join(f'"{w}"' for t in group.positive for w in t.words)]
            if group.negative:
                where += f" AND tracked_id NOT IN ({self.matches})"
                params.append(self.or_word.join(t.quoted for t in group.negative))
            for phrase in phrases:
                where += f" AND (head @@ {_TSQUERY} OR body @@ {_TSQUERY})"
                params += [phrase.quoted, phrase.quoted]
        return (
            f"SELECT tracked_id AS id, {score} AS score FROM tracker_searchdocument WHERE {where}",
            [*score_params, *params],
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
    backends = {"postgresql": PostgresBackend, "sqlite": SQLiteBackend}
    if vendor not in backends:
        raise NotImplementedError(f"full-text search is not available on {vendor}")
    return backends[vendor]()
