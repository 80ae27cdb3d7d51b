"""Full-text search: an FTS5 table on SQLite, tsvectors with a GIN index on PostgreSQL.

Both are kept in step by triggers and filled here from the existing rows. The statements live
in sonarweb/tracker/archive/search/schema.py, which also re-creates the triggers after later
migrations (SQLite drops a table's triggers when Django rebuilds the table).
"""

from django.db import migrations

from sonarweb.tracker.archive.search.schema import forward_sql, reverse_sql


class RunSQLForVendor(migrations.RunSQL):
    """RunSQL whose statements depend on the database (SQLite or PostgreSQL)."""

    def __init__(self):
        super().__init__(sql="-- per vendor", reverse_sql="-- per vendor")

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        for statement in forward_sql(schema_editor.connection.vendor):
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        for statement in reverse_sql(schema_editor.connection.vendor):
            schema_editor.execute(statement, params=None)

    def describe(self):
        return "Create the full-text search index and its triggers"


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0004_dashboard_badge_and_list_indexes"),
    ]

    operations = [RunSQLForVendor()]
