"""PostgreSQL: adjacent-word pairs beside each search document, with their own GIN index, so
that a common quoted phrase is found through the index (sonarweb/tracker/search/pairs.py).

Existing documents are marked pending and filled by the refresher in batches (or at once by
``manage.py fill_search_pairs``); searches check those the old way meanwhile. Nothing on
SQLite, whose FTS5 index keeps positions.
"""

from django.db import migrations

from sonarweb.tracker.search import pairs


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in pairs.PG_FORWARD:
            schema_editor.execute(statement, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in pairs.PG_REVERSE:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0006_cost_ledger"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
