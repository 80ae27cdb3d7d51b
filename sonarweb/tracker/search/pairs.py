"""Adjacent-word pairs, so that PostgreSQL finds a common quoted phrase through its index.

The GIN index over ``head || body`` says which documents have a phrase's words, not whether
they stand in that order. PostgreSQL checks the order on each candidate by reading its
answer's vector (tens of KB, out of line). When nearly every answer has the words, that is
every answer: "median improvement", in 90% of 100k answers, ran past the 3 s bound.

So each search document also keeps ``pairs``: one lexeme per pair of lexemes at adjacent
positions, in the title and question and in the answer (``'median improv'``), with its own
GIN index. A quoted phrase of two words that stem to one lexeme each matches exactly when
its pair does: the index answers it, no vector is read. A longer phrase must have all its
pairs (the index narrows the candidates) and its order is still checked on those.

- The pairs are made from the stored vectors, so they know exactly what phrase matching
  knows: the same stemming and stop words, the same position limits (16,383; 256 positions
  per lexeme).
- Lexemes longer than ``LONGEST`` characters make no pair, so a document's pairs always fit
  the 1 MB a tsvector may hold (16,383 pairs of at most 49 bytes). A phrase with such a word
  is checked the old way.
- ``PENDING`` marks documents whose pairs are not made yet (all of them right after the
  migration; the refresher fills them in batches, ``manage.py fill_search_pairs`` at once),
  ``TOO_LONG`` one whose pairs would not fit after all. Searches check the order on those,
  as before, so nothing is missed meanwhile.

SQLite's FTS5 keeps positions in its index and needs none of this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connections

from .schema import PG_CONFIG

LONGEST = 24
PENDING = "~pending"
TOO_LONG = "~toolong"
# Documents whose pairs searches cannot use, as a tsquery.
UNUSABLE = f"'{PENDING}' | '{TOO_LONG}'"

_PAIRS_OF = f"""
    WITH p AS (SELECT u.lexeme, q FROM unnest(v) u, unnest(u.positions) q
               WHERE length(u.lexeme) <= {LONGEST})
    SELECT array_to_tsvector(array_agg(DISTINCT a.lexeme || ' ' || b.lexeme))
    FROM p a JOIN p b ON b.q = a.q + 1"""

PG_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION tracker_search_pairs(v tsvector)
        RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
          SELECT coalesce(({_PAIRS_OF}), ''::tsvector)
        $$""",
    f"""CREATE OR REPLACE FUNCTION tracker_search_pairs(head tsvector, body tsvector)
        RETURNS tsvector LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
          RETURN tracker_search_pairs(head) || tracker_search_pairs(body);
        EXCEPTION WHEN program_limit_exceeded THEN
          RETURN array_to_tsvector(ARRAY['{TOO_LONG}']);
        END $$""",
    # The triggers of 0005_full_text_search, now keeping the pairs too. A new title or
    # question makes the pairs again from the answer's stored vector (a few ms).
    """CREATE OR REPLACE FUNCTION tracker_search_tracked() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          h tsvector;
        BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM tracker_searchdocument WHERE tracked_id = OLD.id;
            RETURN NULL;
          END IF;
          h := tracker_search_head(NEW.title, NEW.question);
          INSERT INTO tracker_searchdocument (tracked_id, head, pairs)
            VALUES (NEW.id, h, tracker_search_pairs(h, ''::tsvector))
            ON CONFLICT (tracked_id) DO UPDATE SET head = EXCLUDED.head,
              pairs = tracker_search_pairs(EXCLUDED.head, tracker_searchdocument.body);
          RETURN NULL;
        END $$""",
    """CREATE OR REPLACE FUNCTION tracker_search_archive() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          b tsvector;
        BEGIN
          IF TG_OP = 'DELETE' THEN
            b := ''::tsvector;
          ELSE
            b := tracker_search_body(NEW.markdown);
          END IF;
          UPDATE tracker_searchdocument SET body = b, pairs = tracker_search_pairs(head, b)
            WHERE tracked_id = CASE WHEN TG_OP = 'DELETE' THEN OLD.tracked_id
                                    ELSE NEW.tracked_id END;
          RETURN NULL;
        END $$""",
]

# The trigger functions as 0005_full_text_search made them, for going back.
_PREVIOUS_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION tracker_search_tracked() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' THEN
            DELETE FROM tracker_searchdocument WHERE tracked_id = OLD.id;
            RETURN NULL;
          END IF;
          INSERT INTO tracker_searchdocument (tracked_id, head)
            VALUES (NEW.id, tracker_search_head(NEW.title, NEW.question))
            ON CONFLICT (tracked_id) DO UPDATE SET head = EXCLUDED.head;
          RETURN NULL;
        END $$""",
    """CREATE OR REPLACE FUNCTION tracker_search_archive() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' THEN
            UPDATE tracker_searchdocument SET body = ''::tsvector WHERE tracked_id = OLD.tracked_id;
          ELSE
            UPDATE tracker_searchdocument SET body = tracker_search_body(NEW.markdown)
              WHERE tracked_id = NEW.tracked_id;
          END IF;
          RETURN NULL;
        END $$""",
]

PG_FORWARD = [
    # Existing documents are marked pending (a constant default: no table rewrite).
    f"""ALTER TABLE tracker_searchdocument
        ADD COLUMN pairs tsvector NOT NULL DEFAULT array_to_tsvector(ARRAY['{PENDING}'])""",
    *PG_FUNCTIONS,
    "CREATE INDEX tracker_searchdocument_pairs ON tracker_searchdocument USING gin (pairs)",
]
PG_REVERSE = [
    *_PREVIOUS_FUNCTIONS,
    "DROP INDEX IF EXISTS tracker_searchdocument_pairs",
    "ALTER TABLE tracker_searchdocument DROP COLUMN IF EXISTS pairs",
    "DROP FUNCTION IF EXISTS tracker_search_pairs(tsvector, tsvector)",
    "DROP FUNCTION IF EXISTS tracker_search_pairs(tsvector)",
]

# A phrase's pairs as a tsquery (``'a b' & 'b c'``), and whether that pair alone is the
# phrase: exactly two lexemes, adjacent, each from one word.
_PHRASE_PAIRS = f"""
    WITH p AS (SELECT u.lexeme, q FROM unnest(to_tsvector('{PG_CONFIG}', %s)) u,
                                       unnest(u.positions) q),
    j AS (SELECT DISTINCT a.lexeme || ' ' || b.lexeme AS pair FROM p a JOIN p b ON b.q = a.q + 1
          WHERE length(a.lexeme) <= {LONGEST} AND length(b.lexeme) <= {LONGEST})
    SELECT (SELECT string_agg('''' || pair || '''', ' & ' ORDER BY pair) FROM j),
           coalesce((SELECT count(*) = 2 AND max(q) - min(q) = 1 FROM p), false)
             AND (SELECT count(*) = 1 FROM j)"""


_QUERY = re.compile(r"'[^'\\]+'( & '[^'\\]+')*")


@dataclass(frozen=True)
class PhrasePairs:
    query: str | None  # a tsquery over ``pairs``; None when the phrase has no usable pair
    exact: bool  # the pairs match exactly the documents that have the phrase


def phrase_pairs(phrases: list[str], using: str = "default") -> list[PhrasePairs]:
    """What ``pairs`` can answer for each phrase (words of letters and digits only)."""
    found = []
    with connections[using].cursor() as cursor:
        for phrase in phrases:
            cursor.execute(_PHRASE_PAIRS, [phrase])
            query, exact = cursor.fetchone()
            if query is not None and not _QUERY.fullmatch(query):
                query = None  # a quote in a lexeme: leave this phrase to the order check
            found.append(PhrasePairs(query, bool(exact) and query is not None))
    return found


def fill_pending(limit: int, using: str = "default") -> int:
    """Make the pairs of up to ``limit`` documents still pending; returns how many."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracker_searchdocument SET pairs = tracker_search_pairs(head, body) "
            "WHERE tracked_id IN (SELECT tracked_id FROM tracker_searchdocument "
            "WHERE pairs @@ %s::tsquery LIMIT %s)",
            [f"'{PENDING}'", limit],
        )
        return cursor.rowcount


def pending(using: str = "default") -> int:
    connection = connections[using]
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM tracker_searchdocument WHERE pairs @@ %s::tsquery",
            [f"'{PENDING}'"],
        )
        return cursor.fetchone()[0]
