"""PostgreSQL: adjacent-word pairs beside each search document, with their own GIN index, so
that a common quoted phrase was found through an index. Nothing on SQLite, whose FTS5 index
keeps positions.

Migration 0010 drops them again (phrases are checked by word order, within the search's time
bound), so nothing here is used by the running code. The statements are kept in this file, as
they were made, so that the chain still applies to an empty database and can be reversed.
"""

from django.db import migrations

# Lexemes longer than 24 characters made no pair; '~pending' marked documents whose pairs
# were not made yet, '~toolong' those whose pairs would not fit a tsvector.
PG_FUNCTIONS = [
    """CREATE OR REPLACE FUNCTION tracker_search_pairs(v tsvector)
        RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
          SELECT coalesce((
            WITH p AS (SELECT u.lexeme, q FROM unnest(v) u, unnest(u.positions) q
                       WHERE length(u.lexeme) <= 24)
            SELECT array_to_tsvector(array_agg(DISTINCT a.lexeme || ' ' || b.lexeme))
            FROM p a JOIN p b ON b.q = a.q + 1), ''::tsvector)
        $$""",
    """CREATE OR REPLACE FUNCTION tracker_search_pairs(head tsvector, body tsvector)
        RETURNS tsvector LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
          RETURN tracker_search_pairs(head) || tracker_search_pairs(body);
        EXCEPTION WHEN program_limit_exceeded THEN
          RETURN array_to_tsvector(ARRAY['~toolong']);
        END $$""",
    # The triggers of 0005_full_text_search, keeping the pairs too.
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

# The trigger functions as 0005_full_text_search made them.
PREVIOUS_FUNCTIONS = [
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
    """ALTER TABLE tracker_searchdocument
        ADD COLUMN pairs tsvector NOT NULL DEFAULT array_to_tsvector(ARRAY['~pending'])""",
    *PG_FUNCTIONS,
    "CREATE INDEX tracker_searchdocument_pairs ON tracker_searchdocument USING gin (pairs)",
]
PG_REVERSE = [
    *PREVIOUS_FUNCTIONS,
    "DROP INDEX IF EXISTS tracker_searchdocument_pairs",
    "ALTER TABLE tracker_searchdocument DROP COLUMN IF EXISTS pairs",
    "DROP FUNCTION IF EXISTS tracker_search_pairs(tsvector, tsvector)",
    "DROP FUNCTION IF EXISTS tracker_search_pairs(tsvector)",
]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in PG_FORWARD:
            schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in PG_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0006_cost_ledger"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
