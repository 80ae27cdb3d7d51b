"""PostgreSQL: drop the adjacent-word pairs 0007 added beside each search document, their
GIN index and the functions that made them, and put back the trigger functions of
0005_full_text_search, which keep the words alone. A quoted phrase is checked by word order,
within the search's time bound. Nothing on SQLite (0007 added nothing there).

Going back makes the pairs again as 0007 made them: every document is then marked pending.
"""

from importlib import import_module

from django.db import migrations

PAIRS = import_module("sonarweb.tracker.migrations.0007_search_pairs")


class DropSearchPairs(migrations.RunSQL):
    """RunSQL whose statements depend on the database (PostgreSQL only)."""

    def __init__(self):
        super().__init__(sql="-- per vendor", reverse_sql="-- per vendor")

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            for statement in PAIRS.PG_REVERSE:
                schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            for statement in PAIRS.PG_FORWARD:
                schema_editor.execute(statement, params=None)

    def describe(self):
        return "Drop the search index's word pairs (PostgreSQL)"


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0009_drop_cost_ledger"),
    ]

    operations = [DropSearchPairs()]
