"""The full-text index's tables and triggers, for SQLite (FTS5) and PostgreSQL (tsvector + GIN).

The searchable text lives in two tables: a request's title and question in
``tracker_trackedrequest``, its answer's Markdown in ``tracker_answerarchive``. Triggers on both
keep one search document per request in step with every write, whoever makes it: ``save()``,
``QuerySet.update()``, a cascade delete or raw SQL. Nothing in Python has to remember to
re-index.

- SQLite: an external-content FTS5 table ``tracker_search`` over the view
  ``tracker_search_source`` (one row per request: title, question, answer). FTS5 must be told
  the old values to remove a row, so every trigger deletes the row as it was indexed and inserts
  it as it is now.
- PostgreSQL: ``tracker_searchdocument`` holds two tsvectors per request: ``head`` (title weight
  A, question weight B), small and ranked; ``body`` (the answer), matched through a GIN index on
  ``head || body``. Deleting a request deletes its document by trigger (no foreign key, so
  that Django's flush can TRUNCATE the requests; a TRUNCATE trigger empties this table too).

The migration that creates all this imports the statements from here; ``ensure_triggers`` runs
after every ``migrate``, because SQLite drops a table's triggers when Django rebuilds the table
for a schema change (it does for many kinds of ``AlterField``).
"""

from __future__ import annotations

import logging

from django.db.backends.base.base import BaseDatabaseWrapper

log = logging.getLogger("sonarweb.search")

# PostgreSQL's text search configuration; FTS5's tokenizer is its porter stemmer over unicode61.
PG_CONFIG = "english"

_OLD_ANSWER = "COALESCE((SELECT markdown FROM tracker_answerarchive WHERE tracked_id = old.id), '')"
_NEW_ANSWER = "COALESCE((SELECT markdown FROM tracker_answerarchive WHERE tracked_id = new.id), '')"
_DELETE = "INSERT INTO tracker_search(tracker_search, rowid, title, question, answer)"
_INSERT = "INSERT INTO tracker_search(rowid, title, question, answer)"


def _reindex(row: str, was: str, now: str) -> str:
    """The statements that index the request of the archive row ``row`` (``old`` or ``new``)
    again: its answer was indexed as ``was``, and is now ``now``."""
    request = f"FROM tracker_trackedrequest t WHERE t.id = {row}.tracked_id"
    return f"""{_DELETE} SELECT 'delete', t.id, t.title, t.question, {was} {request};
          {_INSERT} SELECT t.id, t.title, t.question, {now} {request};"""


SQLITE_TRIGGERS = {
    "tracker_search_tracked_ai": f"""
        CREATE TRIGGER tracker_search_tracked_ai AFTER INSERT ON tracker_trackedrequest BEGIN
          {_INSERT} VALUES (new.id, new.title, new.question, {_NEW_ANSWER});
        END""",
    "tracker_search_tracked_au": f"""
        CREATE TRIGGER tracker_search_tracked_au
        AFTER UPDATE OF title, question ON tracker_trackedrequest
        WHEN old.title IS NOT new.title OR old.question IS NOT new.question BEGIN
          {_DELETE} VALUES ('delete', old.id, old.title, old.question, {_OLD_ANSWER});
          {_INSERT} VALUES (new.id, new.title, new.question, {_NEW_ANSWER});
        END""",
    "tracker_search_tracked_ad": f"""
        CREATE TRIGGER tracker_search_tracked_ad AFTER DELETE ON tracker_trackedrequest BEGIN
          {_DELETE} VALUES ('delete', old.id, old.title, old.question, {_OLD_ANSWER});
        END""",
    # An archive row is written once, and its Markdown again when the renderer changes.
    "tracker_search_archive_ai": f"""
        CREATE TRIGGER tracker_search_archive_ai AFTER INSERT ON tracker_answerarchive BEGIN
          {_reindex("new", "''", "new.markdown")}
        END""",
    "tracker_search_archive_au": f"""
        CREATE TRIGGER tracker_search_archive_au AFTER UPDATE OF markdown ON tracker_answerarchive
        WHEN old.markdown IS NOT new.markdown BEGIN
          {_reindex("new", "old.markdown", "new.markdown")}
        END""",
    # Django deletes a request's archive before the request, so the request's own trigger
    # then removes the row as re-indexed here, without an answer.
    "tracker_search_archive_ad": f"""
        CREATE TRIGGER tracker_search_archive_ad AFTER DELETE ON tracker_answerarchive BEGIN
          {_reindex("old", "old.markdown", "''")}
        END""",
}

SQLITE_FORWARD = [
    """CREATE VIEW tracker_search_source AS
       SELECT t.id AS id, t.title AS title, t.question AS question,
              COALESCE(a.markdown, '') AS answer
       FROM tracker_trackedrequest t LEFT JOIN tracker_answerarchive a ON a.tracked_id = t.id""",
    """CREATE VIRTUAL TABLE tracker_search USING fts5(
         title, question, answer,
         content='tracker_search_source', content_rowid='id',
         tokenize='porter unicode61 remove_diacritics 2')""",
    # Ranking: a word in the title counts ten times one in the answer, the question five.
    "INSERT INTO tracker_search(tracker_search, rank) VALUES ('rank', 'bm25(10.0, 5.0, 1.0)')",
    *SQLITE_TRIGGERS.values(),
    "INSERT INTO tracker_search(tracker_search) VALUES ('rebuild')",
]
SQLITE_REVERSE = [
    *(f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS),
    "DROP TABLE IF EXISTS tracker_search",
    "DROP VIEW IF EXISTS tracker_search_source",
]

PG_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION tracker_search_head(title text, question text)
        RETURNS tsvector LANGUAGE sql IMMUTABLE AS $$
          SELECT setweight(to_tsvector('{PG_CONFIG}', coalesce(title, '')), 'A')
              || setweight(to_tsvector('{PG_CONFIG}', coalesce(question, '')), 'B')
        $$""",
    # A tsvector holds at most 1 MB of lexemes. An answer past that (upstream text is
    # untrusted) is searched by its first 100,000 characters rather than failing the write
    # that archives it: indexing must never cost an answer.
    f"""CREATE OR REPLACE FUNCTION tracker_search_body(markdown text)
        RETURNS tsvector LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
          RETURN to_tsvector('{PG_CONFIG}', coalesce(markdown, ''));
        EXCEPTION WHEN program_limit_exceeded THEN
          RETURN to_tsvector('{PG_CONFIG}', left(markdown, 100000));
        END $$""",
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
    """CREATE OR REPLACE FUNCTION tracker_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          TRUNCATE tracker_searchdocument;
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
PG_TRIGGERS = {
    "tracker_search_tracked_ins": """
        CREATE TRIGGER tracker_search_tracked_ins AFTER INSERT ON tracker_trackedrequest
        FOR EACH ROW EXECUTE FUNCTION tracker_search_tracked()""",
    "tracker_search_tracked_upd": """
        CREATE TRIGGER tracker_search_tracked_upd
        AFTER UPDATE OF title, question ON tracker_trackedrequest FOR EACH ROW
        WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.question IS DISTINCT FROM NEW.question)
        EXECUTE FUNCTION tracker_search_tracked()""",
    "tracker_search_tracked_del": """
        CREATE TRIGGER tracker_search_tracked_del AFTER DELETE ON tracker_trackedrequest
        FOR EACH ROW EXECUTE FUNCTION tracker_search_tracked()""",
    # Django's flush (between transactional tests) truncates; TRUNCATE fires no row triggers.
    "tracker_search_tracked_trunc": """
        CREATE TRIGGER tracker_search_tracked_trunc AFTER TRUNCATE ON tracker_trackedrequest
        FOR EACH STATEMENT EXECUTE FUNCTION tracker_search_truncate()""",
    "tracker_search_archive_ins": """
        CREATE TRIGGER tracker_search_archive_ins AFTER INSERT ON tracker_answerarchive
        FOR EACH ROW EXECUTE FUNCTION tracker_search_archive()""",
    "tracker_search_archive_upd": """
        CREATE TRIGGER tracker_search_archive_upd AFTER UPDATE OF markdown ON tracker_answerarchive
        FOR EACH ROW WHEN (OLD.markdown IS DISTINCT FROM NEW.markdown)
        EXECUTE FUNCTION tracker_search_archive()""",
    "tracker_search_archive_del": """
        CREATE TRIGGER tracker_search_archive_del AFTER DELETE ON tracker_answerarchive
        FOR EACH ROW EXECUTE FUNCTION tracker_search_archive()""",
}
PG_FORWARD = [
    """CREATE TABLE tracker_searchdocument (
         tracked_id bigint PRIMARY KEY,
         head tsvector NOT NULL DEFAULT ''::tsvector,
         body tsvector NOT NULL DEFAULT ''::tsvector
       )""",
    *PG_FUNCTIONS,
    *PG_TRIGGERS.values(),
    """INSERT INTO tracker_searchdocument (tracked_id, head, body)
       SELECT t.id, tracker_search_head(t.title, t.question),
              coalesce(tracker_search_body(a.markdown), ''::tsvector)
       FROM tracker_trackedrequest t LEFT JOIN tracker_answerarchive a ON a.tracked_id = t.id""",
    # Matching reads only this index (and the small head for ranking): a word that is in every
    # answer still costs one posting-list read, not a scan of the answers.
    """CREATE INDEX tracker_searchdocument_match ON tracker_searchdocument
       USING gin ((head || body))""",
]
PG_REVERSE = [
    "DROP TABLE IF EXISTS tracker_searchdocument",
    # The trigger functions go with the triggers that run them.
    "DROP FUNCTION IF EXISTS tracker_search_tracked() CASCADE",
    "DROP FUNCTION IF EXISTS tracker_search_archive() CASCADE",
    "DROP FUNCTION IF EXISTS tracker_search_truncate() CASCADE",
    "DROP FUNCTION IF EXISTS tracker_search_head(text, text)",
    "DROP FUNCTION IF EXISTS tracker_search_body(text)",
]


def forward_sql(vendor: str) -> list[str]:
    return {"sqlite": SQLITE_FORWARD, "postgresql": PG_FORWARD}.get(vendor, [])


def reverse_sql(vendor: str) -> list[str]:
    return {"sqlite": SQLITE_REVERSE, "postgresql": PG_REVERSE}.get(vendor, [])


# Per database: the statement naming the index's triggers that exist, the triggers, the
# statement that finds the index itself, and what follows putting triggers back.
_CHECKS = {
    "sqlite": (
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'tracker_search_%'",
        SQLITE_TRIGGERS,
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tracker_search'",
        ["INSERT INTO tracker_search(tracker_search) VALUES ('rebuild')"],
    ),
    "postgresql": (
        "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tracker_search_%%' AND NOT tgisinternal",
        PG_TRIGGERS,
        "SELECT 1 WHERE to_regclass('tracker_searchdocument') IS NOT NULL",
        [],
    ),
}


def ensure_triggers(connection: BaseDatabaseWrapper) -> bool:
    """Recreate any missing trigger; True when some were missing (and the index was rebuilt).

    On SQLite, Django rebuilds a table (new table, copy, drop, rename) for many schema changes,
    and the drop takes the table's triggers with it; writes made before they are back would be
    missing from the index, so it is rebuilt from the content then.
    """
    if connection.vendor not in _CHECKS:
        return False
    listing, triggers, index, then = _CHECKS[connection.vendor]
    with connection.cursor() as cursor:
        cursor.execute(listing)
        present = {row[0] for row in cursor.fetchall()}
        missing = [name for name in triggers if name not in present]
        if not missing:
            return False
        cursor.execute(index)
        if cursor.fetchone() is None:
            return False
        for statement in [*(triggers[name] for name in missing), *then]:
            cursor.execute(statement)
    log.warning("search index triggers were missing and are back: %s", ", ".join(missing))
    return True
