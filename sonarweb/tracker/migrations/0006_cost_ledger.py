"""The cost ledger /costs/ once read: a small table kept current by triggers.

Migration 0009 drops it again (/costs/ now sums the requests themselves), so nothing here is
used by the running code. The statements are kept in this file, as they were made, so that
the chain still applies to an empty database and can be reversed.
"""

import re

from django.conf import settings
from django.db import migrations

CREATE_TABLES = [
    """CREATE TABLE tracker_costledger (
         month varchar(7) NOT NULL,
         member_id bigint NOT NULL,
         model varchar(64) NOT NULL,
         cost_micros bigint NOT NULL,
         n bigint NOT NULL,
         PRIMARY KEY (month, member_id, model)
       )""",
    "CREATE TABLE tracker_costledger_zone (zone varchar(64) NOT NULL)",
]
DROP_TABLES = [
    "DROP TABLE IF EXISTS tracker_costledger",
    "DROP TABLE IF EXISTS tracker_costledger_zone",
]

# A request counted in the ledger, and its contribution (in micro-dollars) to a month.
_SQLITE_ADD = """
    INSERT INTO tracker_costledger (month, member_id, model, cost_micros, n)
    SELECT strftime('%Y-%m', COALESCE(new.completed_at, new.created), 'localtime'),
           COALESCE(new.added_by_id, 0), new.model,
           CAST(ROUND(new.total_cost * 1000000) AS INTEGER), 1
    WHERE new.status = 'COMPLETED' AND new.total_cost IS NOT NULL
    ON CONFLICT (month, member_id, model) DO UPDATE SET
      cost_micros = cost_micros + excluded.cost_micros, n = n + excluded.n;"""
_SQLITE_REMOVE = """
    INSERT INTO tracker_costledger (month, member_id, model, cost_micros, n)
    SELECT strftime('%Y-%m', COALESCE(old.completed_at, old.created), 'localtime'),
           COALESCE(old.added_by_id, 0), old.model,
           -CAST(ROUND(old.total_cost * 1000000) AS INTEGER), -1
    WHERE old.status = 'COMPLETED' AND old.total_cost IS NOT NULL
    ON CONFLICT (month, member_id, model) DO UPDATE SET
      cost_micros = cost_micros + excluded.cost_micros, n = n + excluded.n;"""

SQLITE_TRIGGERS = {
    "tracker_costledger_ai": f"""
        CREATE TRIGGER tracker_costledger_ai AFTER INSERT ON tracker_trackedrequest
        WHEN new.status = 'COMPLETED' AND new.total_cost IS NOT NULL BEGIN
          {_SQLITE_ADD}
        END""",
    "tracker_costledger_au": f"""
        CREATE TRIGGER tracker_costledger_au
        AFTER UPDATE OF status, total_cost, completed_at, created, added_by_id, model
        ON tracker_trackedrequest
        WHEN (old.status = 'COMPLETED' AND old.total_cost IS NOT NULL)
          OR (new.status = 'COMPLETED' AND new.total_cost IS NOT NULL) BEGIN
          {_SQLITE_REMOVE}
          {_SQLITE_ADD}
          DELETE FROM tracker_costledger WHERE n = 0;
        END""",
    "tracker_costledger_ad": f"""
        CREATE TRIGGER tracker_costledger_ad AFTER DELETE ON tracker_trackedrequest
        WHEN old.status = 'COMPLETED' AND old.total_cost IS NOT NULL BEGIN
          {_SQLITE_REMOVE}
          DELETE FROM tracker_costledger WHERE n = 0;
        END""",
}

# PostgreSQL: the month is taken in the zone named where __ZONE__ stands.
_PG_CHANGE = """
          IF {row}.status = 'COMPLETED' AND {row}.total_cost IS NOT NULL THEN
            INSERT INTO tracker_costledger (month, member_id, model, cost_micros, n) VALUES (
              to_char(COALESCE({row}.completed_at, {row}.created) AT TIME ZONE '__ZONE__',
                      'YYYY-MM'),
              COALESCE({row}.added_by_id, 0), {row}.model,
              {sign}round({row}.total_cost * 1000000)::bigint, {sign}1)
            ON CONFLICT (month, member_id, model) DO UPDATE SET
              cost_micros = tracker_costledger.cost_micros + EXCLUDED.cost_micros,
              n = tracker_costledger.n + EXCLUDED.n;
          END IF;"""
PG_FUNCTIONS = [
    f"""CREATE OR REPLACE FUNCTION tracker_costledger_row() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP IN ('UPDATE', 'DELETE') THEN {_PG_CHANGE.format(row="OLD", sign="-")}
            DELETE FROM tracker_costledger WHERE n = 0;
          END IF;
          IF TG_OP IN ('INSERT', 'UPDATE') THEN {_PG_CHANGE.format(row="NEW", sign="")}
          END IF;
          RETURN NULL;
        END $$""",
    """CREATE OR REPLACE FUNCTION tracker_costledger_truncate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          TRUNCATE tracker_costledger;
          RETURN NULL;
        END $$""",
]
PG_TRIGGERS = [
    """CREATE TRIGGER tracker_costledger_ins
        AFTER INSERT ON tracker_trackedrequest FOR EACH ROW
        WHEN (NEW.status = 'COMPLETED' AND NEW.total_cost IS NOT NULL)
        EXECUTE FUNCTION tracker_costledger_row()""",
    """CREATE TRIGGER tracker_costledger_upd
        AFTER UPDATE OF status, total_cost, completed_at, created, added_by_id, model
        ON tracker_trackedrequest FOR EACH ROW
        WHEN ((OLD.status = 'COMPLETED' AND OLD.total_cost IS NOT NULL)
          OR (NEW.status = 'COMPLETED' AND NEW.total_cost IS NOT NULL))
        EXECUTE FUNCTION tracker_costledger_row()""",
    """CREATE TRIGGER tracker_costledger_del
        AFTER DELETE ON tracker_trackedrequest FOR EACH ROW
        WHEN (OLD.status = 'COMPLETED' AND OLD.total_cost IS NOT NULL)
        EXECUTE FUNCTION tracker_costledger_row()""",
    # Django's flush (between transactional tests) truncates, which fires no row triggers.
    """CREATE TRIGGER tracker_costledger_trunc
        AFTER TRUNCATE ON tracker_trackedrequest
        FOR EACH STATEMENT EXECUTE FUNCTION tracker_costledger_truncate()""",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS tracker_costledger_ins ON tracker_trackedrequest",
    "DROP TRIGGER IF EXISTS tracker_costledger_upd ON tracker_trackedrequest",
    "DROP TRIGGER IF EXISTS tracker_costledger_del ON tracker_trackedrequest",
    "DROP TRIGGER IF EXISTS tracker_costledger_trunc ON tracker_trackedrequest",
    "DROP FUNCTION IF EXISTS tracker_costledger_row()",
    "DROP FUNCTION IF EXISTS tracker_costledger_truncate()",
]

_FILL = """
    INSERT INTO tracker_costledger (month, member_id, model, cost_micros, n)
    SELECT {month}, COALESCE(added_by_id, 0), model, SUM({micros}), COUNT(*)
    FROM tracker_trackedrequest WHERE status = 'COMPLETED' AND total_cost IS NOT NULL
    GROUP BY 1, 2, 3"""
SQLITE_FILL = _FILL.format(
    month="strftime('%Y-%m', COALESCE(completed_at, created), 'localtime')",
    micros="CAST(ROUND(total_cost * 1000000) AS INTEGER)",
)
PG_FILL = _FILL.format(
    month="to_char(COALESCE(completed_at, created) AT TIME ZONE '__ZONE__', 'YYYY-MM')",
    micros="round(total_cost * 1000000)::bigint",
)
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")


def forward_sql(vendor: str) -> list[str]:
    """The tables and triggers, and the ledger filled from the rows there are."""
    zone = settings.TIME_ZONE or "UTC"
    if not _ZONE.fullmatch(zone):
        raise ValueError(f"not a time zone name: {zone!r}")
    if vendor == "sqlite":
        statements = [*SQLITE_TRIGGERS.values(), SQLITE_FILL]
    elif vendor == "postgresql":
        statements = [*PG_FUNCTIONS, *PG_TRIGGERS, PG_FILL]
    else:
        statements = []
    return [
        *CREATE_TABLES,
        *(statement.replace("__ZONE__", zone) for statement in statements),
        f"INSERT INTO tracker_costledger_zone (zone) VALUES ('{zone}')",
    ]


def reverse_sql(vendor: str) -> list[str]:
    if vendor == "sqlite":
        triggers = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
    else:
        triggers = PG_DROP if vendor == "postgresql" else []
    return [*triggers, *DROP_TABLES]


def create(apps, schema_editor):
    for statement in forward_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    for statement in reverse_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0005_full_text_search"),
    ]

    operations = [migrations.RunPython(create, drop)]
