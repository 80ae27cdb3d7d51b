"""/costs/ sums the requests themselves (sonarweb/tracker/costs/totals.py): drop the cost ledger made
by 0006, its triggers and its time zone table, on SQLite and on PostgreSQL, and add the
partial index those sums read (every column they need, for the rows with a cost).

Every statement is IF EXISTS: on SQLite a later migration that rebuilt the requests' table
may already have taken the ledger's triggers with it. Going back makes the ledger again as
0006 made it (tables, triggers, and the sums of the rows there are then).
"""

from importlib import import_module

from django.db import migrations, models

SQLITE_FORWARD = [
    "DROP TRIGGER IF EXISTS tracker_costledger_ai",
    "DROP TRIGGER IF EXISTS tracker_costledger_au",
    "DROP TRIGGER IF EXISTS tracker_costledger_ad",
    "DROP TABLE IF EXISTS tracker_costledger",
    "DROP TABLE IF EXISTS tracker_costledger_zone",
]
PG_FORWARD = [
    "DROP TRIGGER IF EXISTS tracker_costledger_ins ON tracker_trackedrequest",
    "DROP TRIGGER IF EXISTS tracker_costledger_upd ON tracker_trackedrequest",
    "DROP TRIGGER IF EXISTS tracker_costledger_del ON tracker_trackedrequest",
    "DROP TRIGGER IF EXISTS tracker_costledger_trunc ON tracker_trackedrequest",
    "DROP FUNCTION IF EXISTS tracker_costledger_row()",
    "DROP FUNCTION IF EXISTS tracker_costledger_truncate()",
    "DROP TABLE IF EXISTS tracker_costledger",
    "DROP TABLE IF EXISTS tracker_costledger_zone",
]


class DropCostLedger(migrations.RunSQL):
    """RunSQL whose statements depend on the database (SQLite or PostgreSQL)."""

    def __init__(self):
        super().__init__(sql="-- per vendor", reverse_sql="-- per vendor")

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        vendor = schema_editor.connection.vendor
        statements = {"sqlite": SQLITE_FORWARD, "postgresql": PG_FORWARD}.get(vendor, [])
        for statement in statements:
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        made = import_module("sonarweb.tracker.migrations.0006_cost_ledger")
        for statement in made.forward_sql(schema_editor.connection.vendor):
            schema_editor.execute(statement, params=None)

    def describe(self):
        return "Drop the cost ledger's triggers and tables"


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0008_agent_runs"),
    ]

    operations = [
        DropCostLedger(),
        migrations.AddIndex(
            model_name="trackedrequest",
            index=models.Index(
                condition=models.Q(("total_cost__isnull", False)),
                fields=["model", "added_by", "completed_at", "created", "total_cost"],
                name="tracked_costs",
            ),
        ),
    ]
