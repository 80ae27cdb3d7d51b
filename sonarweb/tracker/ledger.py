"""The cost ledger: what completed requests cost, summed per month, member and model.

``/costs/`` reads this small table (one row per month x member x model), so the page costs
the same with 1k or 100k requests. Triggers on ``tracker_trackedrequest`` keep it current on
every write that can change a request's contribution (status, cost, completion or tracking
time, member, model; insert, update, delete), whoever makes it, so it cannot drift from the
rows. Amounts are whole micro-dollars, exact on both databases.

A row counts in the month of its completion time (its tracking time when upstream gave none)
in ``settings.TIME_ZONE``. SQLite's ``'localtime'`` reads the process's TZ, which Django sets
to TIME_ZONE; PostgreSQL is given the zone's name when the triggers are made. ``ensure``
(after every migrate) rebuilds the ledger when TIME_ZONE has changed.
"""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db.backends.base.base import BaseDatabaseWrapper

log = logging.getLogger("sonarweb.costs")

TABLE = "tracker_costledger"
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")

CREATE_TABLES = [
    f"""CREATE TABLE {TABLE} (
         month varchar(7) NOT NULL,
         member_id bigint NOT NULL,
         model varchar(64) NOT NULL,
         cost_micros bigint NOT NULL,
         n bigint NOT NULL,
         PRIMARY KEY (month, member_id, model)
       )""",
    "CREATE TABLE tracker_costledger_zone (zone varchar(64) NOT NULL)",
]
DROP_TABLES = [f"DROP TABLE IF EXISTS {TABLE}", "DROP TABLE IF EXISTS tracker_costledger_zone"]


def _counts(row: str) -> str:
    return f"{row}.status = 'COMPLETED' AND {row}.total_cost IS NOT NULL"


def _sqlite_values(row: str, sign: str) -> str:
    return (
        f"strftime('%Y-%m', COALESCE({row}.completed_at, {row}.created), 'localtime'), "
        f"COALESCE({row}.added_by_id, 0), {row}.model, "
        f"{sign}CAST(ROUND({row}.total_cost * 1000000) AS INTEGER), {sign}1"
    )


_SQLITE_UPSERT = (
    "ON CONFLICT (month, member_id, model) DO UPDATE SET "
    "cost_micros = cost_micros + excluded.cost_micros, n = n + excluded.n"
)


def _sqlite_change(row: str, sign: str) -> str:
    return (
        f"INSERT INTO {TABLE} (month, member_id, model, cost_micros, n) "
        f"SELECT {_sqlite_values(row, sign)} WHERE {_counts(row)} {_SQLITE_UPSERT};"
    )


_COLUMNS = "status, total_cost, completed_at, created, added_by_id, model"
SQLITE_TRIGGERS = {
    "tracker_costledger_ai": f"""
        CREATE TRIGGER tracker_costledger_ai AFTER INSERT ON tracker_trackedrequest
        WHEN {_counts("new")} BEGIN
          {_sqlite_change("new", "")}
        END""",
    "tracker_costledger_au": f"""
        CREATE TRIGGER tracker_costledger_au AFTER UPDATE OF {_COLUMNS} ON tracker_trackedrequest
        WHEN ({_counts("old")}) OR ({_counts("new")}) BEGIN
          {_sqlite_change("old", "-")}
          {_sqlite_change("new", "")}
          DELETE FROM {TABLE} WHERE n = 0;
        END""",
    "tracker_costledger_ad": f"""
        CREATE TRIGGER tracker_costledger_ad AFTER DELETE ON tracker_trackedrequest
        WHEN {_counts("old")} BEGIN
          {_sqlite_change("old", "-")}
          DELETE FROM {TABLE} WHERE n = 0;
        END""",
}


def _pg_change(row: str, sign: str, zone: str) -> str:
    return f"""
          IF {_counts(row)} THEN
            INSERT INTO {TABLE} (month, member_id, model, cost_micros, n) VALUES (
              to_char(COALESCE({row}.completed_at, {row}.created) AT TIME ZONE '{zone}', 'YYYY-MM'),
              COALESCE({row}.added_by_id, 0), {row}.model,
              {sign}round({row}.total_cost * 1000000)::bigint, {sign}1)
            ON CONFLICT (month, member_id, model) DO UPDATE SET
              cost_micros = {TABLE}.cost_micros + EXCLUDED.cost_micros,
              n = {TABLE}.n + EXCLUDED.n;
          END IF;"""


def pg_functions(zone: str) -> list[str]:
    if not _ZONE.fullmatch(zone):
        raise ValueError(f"not a time zone name: {zone!r}")
    return [
        f"""CREATE OR REPLACE FUNCTION tracker_costledger_row() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF TG_OP IN ('UPDATE', 'DELETE') THEN {_pg_change("OLD", "-", zone)}
                DELETE FROM {TABLE} WHERE n = 0;
              END IF;
              IF TG_OP IN ('INSERT', 'UPDATE') THEN {_pg_change("NEW", "", zone)}
              END IF;
              RETURN NULL;
            END $$""",
        f"""CREATE OR REPLACE FUNCTION tracker_costledger_truncate() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              TRUNCATE {TABLE};
              RETURN NULL;
            END $$""",
    ]


# WHEN clauses keep the function out of the refresher's many updates of unfinished rows.
PG_TRIGGERS = {
    "tracker_costledger_ins": f"""CREATE TRIGGER tracker_costledger_ins
        AFTER INSERT ON tracker_trackedrequest FOR EACH ROW
        WHEN ({_counts("NEW")}) EXECUTE FUNCTION tracker_costledger_row()""",
    "tracker_costledger_upd": f"""CREATE TRIGGER tracker_costledger_upd
        AFTER UPDATE OF {_COLUMNS} ON tracker_trackedrequest FOR EACH ROW
        WHEN (({_counts("OLD")}) OR ({_counts("NEW")}))
        EXECUTE FUNCTION tracker_costledger_row()""",
    "tracker_costledger_del": f"""CREATE TRIGGER tracker_costledger_del
        AFTER DELETE ON tracker_trackedrequest FOR EACH ROW
        WHEN ({_counts("OLD")}) EXECUTE FUNCTION tracker_costledger_row()""",
    # Django's flush (between transactional tests) truncates, which fires no row triggers.
    "tracker_costledger_trunc": """CREATE TRIGGER tracker_costledger_trunc
        AFTER TRUNCATE ON tracker_trackedrequest
        FOR EACH STATEMENT EXECUTE FUNCTION tracker_costledger_truncate()""",
}
PG_DROP = [
    *(f"DROP TRIGGER IF EXISTS {name} ON tracker_trackedrequest" for name in PG_TRIGGERS),
    "DROP FUNCTION IF EXISTS tracker_costledger_row()",
    "DROP FUNCTION IF EXISTS tracker_costledger_truncate()",
]


def _rebuild_sql(vendor: str, zone: str) -> str:
    if vendor == "sqlite":
        month = "strftime('%Y-%m', COALESCE(completed_at, created), 'localtime')"
        micros = "CAST(ROUND(total_cost * 1000000) AS INTEGER)"
    else:
        month = f"to_char(COALESCE(completed_at, created) AT TIME ZONE '{zone}', 'YYYY-MM')"
        micros = "round(total_cost * 1000000)::bigint"
    return (
        f"INSERT INTO {TABLE} (month, member_id, model, cost_micros, n) "
        f"SELECT {month}, COALESCE(added_by_id, 0), model, SUM({micros}), COUNT(*) "
        f"FROM tracker_trackedrequest WHERE status = 'COMPLETED' AND total_cost IS NOT NULL "
        f"GROUP BY 1, 2, 3"
    )


def _zone() -> str:
    return settings.TIME_ZONE or "UTC"


def ensure(connection: BaseDatabaseWrapper, *, force: bool = False) -> bool:
    """Create or recreate the triggers and refill the ledger when they are missing or the time
    zone changed; True when it did. Safe to run any number of times."""
    vendor = connection.vendor
    zone = _zone()
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = %s", [TABLE]
            )
            if cursor.fetchone() is None:
                return False
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'tracker_costledger_%%'"
            )
            present = {row[0] for row in cursor.fetchall()}
            wanted = SQLITE_TRIGGERS
        elif vendor == "postgresql":
            cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [TABLE])
            if not cursor.fetchone()[0]:
                return False
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'tracker_costledger_%%' "
                "AND NOT tgisinternal"
            )
            present = {row[0] for row in cursor.fetchall()}
            wanted = PG_TRIGGERS
        else:
            return False
        cursor.execute("SELECT zone FROM tracker_costledger_zone")
        stored = cursor.fetchone()
        if not force and stored and stored[0] == zone and set(wanted) <= present:
            return False
        if vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            for statement in SQLITE_TRIGGERS.values():
                cursor.execute(statement)
        else:
            for statement in [*PG_DROP, *pg_functions(zone), *PG_TRIGGERS.values()]:
                cursor.execute(statement)
        cursor.execute(f"DELETE FROM {TABLE}")
        cursor.execute(_rebuild_sql(vendor, zone))
        cursor.execute("DELETE FROM tracker_costledger_zone")
        cursor.execute("INSERT INTO tracker_costledger_zone (zone) VALUES (%s)", [zone])
    log.info("cost ledger rebuilt (time zone %s)", zone)
    return True


def drop(connection: BaseDatabaseWrapper) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        elif connection.vendor == "postgresql":
            for statement in PG_DROP:
                cursor.execute(statement)
        for statement in DROP_TABLES:
            cursor.execute(statement)
