"""The cost ledger that /costs/ reads: a small table kept current by triggers.

The statements live in sonarweb/tracker/ledger.py, which also re-creates the triggers after
later migrations (SQLite drops a table's triggers when Django rebuilds it) and refills the
ledger when TIME_ZONE changes.
"""

from django.db import migrations

from sonarweb.tracker import ledger


def create(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        for statement in ledger.CREATE_TABLES:
            cursor.execute(statement)
    ledger.ensure(connection, force=True)


def drop(apps, schema_editor):
    ledger.drop(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0005_full_text_search"),
    ]

    operations = [migrations.RunPython(create, drop)]
