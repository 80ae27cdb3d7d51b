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
_DELETE = "INSERT INTO tracker_search(tracker_search, rowid, title, question, answer) VALUES"
_INSERT = "INSERT INTO tracker_search(rowid, title, question, answer) VALUES"

SQLITE_TRIGGERS = {
    "tracker_search_tracked_ai": f"""
        CREATE TRIGGER tracker_search_tracked_ai AFTER INSERT ON tracker_trackedrequest BEGIN
          {_INSERT} (new.id, new.title, new.question, {_NEW_ANSWER});
        END""",
    "tracker_search_tracked_au": f"""
        CREATE TRIGGER tracker_search_tracked_au
        AFTER UPDATE OF title, question ON tracker_trackedrequest
        WHEN old.title IS NOT new.title OR old.question IS NOT new.question BEGIN
          {_DELETE} ('delete', old.id, old.title, old.question, {_OLD_ANSWER});
          {_INSERT} (new.id, new.title, new.question, {_NEW_ANSWER});
        END""",
    "tracker_search_tracked_ad": f"""
        CREATE TRIGGER tracker_search_tracked_ad AFTER DELETE ON tracker_trackedrequest BEGIN
          {_DELETE} ('delete', old.id, old.title, old.question, {_OLD_ANSWER});
        END""",
    # An archive row is written once, and its Markdown again when the renderer changes.
    "tracker_search_archive_ai": """
        CREATE TRIGGER tracker_search_archive_ai AFTER INSERT ON tracker_answerarchive BEGIN
          INSERT INTO tracker_search(tracker_search, rowid, title, question, answer)
            SELECT 'delete', t.id, t.title, t.question, '' FROM tracker_trackedrequest t
            WHERE t.id = new.tracked_id;
          INSERT INTO tracker_search(rowid, title, question, answer)
            SELECT t.id, t.title, t.question, new.markdown FROM tracker_trackedrequest t
            WHERE t.id = new.tracked_id;
        END""",
    "tracker_search_archive_au": """
        CREATE TRIGGER tracker_search_archive_au AFTER UPDATE OF markdown ON tracker_answerarchive
        WHEN old.markdown IS NOT new.markdown BEGIN
          INSERT INTO tracker_search(tracker_search, rowid, title, question, answer)
            SELECT 'delete', t.id, t.title, t.question, old.markdown FROM tracker_trackedrequest t
            WHERE t.id = old.tracked_id;
          INSERT INTO tracker_search(rowid, title, question, answer)
            SELECT t.id, t.title, t.question, new.markdown FROM tracker_trackedrequest t
            WHERE t.id = new.tracked_id;
        END""",
    # Django deletes a request's archive before the request, so the request's own trigger
    # then removes the row as re-indexed here, without an answer.
    "tracker_search_archive_ad": """
        CREATE TRIGGER tracker_search_archive_ad AFTER DELETE ON tracker_answerarchive BEGIN
          INSERT INTO tracker_search(tracker_search, rowid, title, question, answer)
            SELECT 'delete', t.id, t.title, t.question, old.markdown FROM tracker_trackedrequest t
            WHERE t.id = old.tracked_id;
          INSERT INTO tracker_search(rowid, title, question, answer)
            SELECT t.id, t.title, t.question, '' FROM tracker_trackedrequest t
            WHERE t.id = old.tracked_id;
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
_PG_TRIGGER_TABLES = {
    "tracker_search_tracked_ins": "tracker_trackedrequest",
    "tracker_search_tracked_upd": "tracker_trackedrequest",
    "tracker_search_tracked_del": "tracker_trackedrequest",
    "tracker_search_tracked_trunc": "tracker_trackedrequest",
    "tracker_search_archive_ins": "tracker_answerarchive",
    "tracker_search_archive_upd": "tracker_answerarchive",
    "tracker_search_archive_del": "tracker_answerarchive",
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
    *(f"DROP TRIGGER IF EXISTS {n} ON {t}" for n, t in _PG_TRIGGER_TABLES.items()),
    "DROP TABLE IF EXISTS tracker_searchdocument",
    "DROP FUNCTION IF EXISTS tracker_search_tracked()",
    "DROP FUNCTION IF EXISTS tracker_search_archive()",
    "DROP FUNCTION IF EXISTS tracker_search_truncate()",
    "DROP FUNCTION IF EXISTS tracker_search_head(text, text)",
    "DROP FUNCTION IF EXISTS tracker_search_body(text)",
]


def forward_sql(vendor: str) -> list[str]:
    return {"sqlite": SQLITE_FORWARD, "postgresql": PG_FORWARD}.get(vendor, [])


def reverse_sql(vendor: str) -> list[str]:
    return {"sqlite": SQLITE_REVERSE, "postgresql": PG_REVERSE}.get(vendor, [])


def ensure_triggers(connection: BaseDatabaseWrapper) -> bool:
    """Recreate any missing trigger; True when some were missing (and the index was rebuilt).

    On SQLite, Django rebuilds a table (new table, copy, drop, rename) for many schema changes,
    and the drop takes the table's triggers with it; writes made before they are back would be
    missing from the index, so it is rebuilt from the content then.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master "
                "WHERE type = 'trigger' AND name LIKE 'tracker_search_%'"
            )
            present = {row[0] for row in cursor.fetchall()}
            missing = [name for name in SQLITE_TRIGGERS if name not in present]
            if not missing or not _exists(cursor, "table", "tracker_search"):
                return False
            for name in missing:
                cursor.execute(SQLITE_TRIGGERS[name])
            cursor.execute("INSERT INTO tracker_search(tracker_search) VALUES ('rebuild')")
        elif connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger "
                "WHERE tgname LIKE 'tracker_search_%%' AND NOT tgisinternal"
            )
            present = {row[0] for row in cursor.fetchall()}
            missing = [name for name in PG_TRIGGERS if name not in present]
            if not missing or not _pg_table(cursor):
                return False
            for name in missing:
                cursor.execute(PG_TRIGGERS[name])
        else:
            return False
    log.warning("search index triggers were missing and are back: %s", ", ".join(missing))
    return True


def _exists(cursor: object, kind: str, name: str) -> bool:
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = %s AND name = %s", [kind, name])  # type: ignore[attr-defined]
    return cursor.fetchone() is not None  # type: ignore[attr-defined]


def _pg_table(cursor: object) -> bool:
    cursor.execute("SELECT to_regclass('tracker_searchdocument') IS NOT NULL")  # type: ignore[attr-defined]
    return bool(cursor.fetchone()[0])  # type: ignore[attr-defined]
