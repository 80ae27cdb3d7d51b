"""PostgreSQL is Django's own back end with Django's public settings: connections kept between
requests (CONN_MAX_AGE) and checked before a request uses them (CONN_HEALTH_CHECKS), so a
connection the server ended fails no request."""

from __future__ import annotations

import select
import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from sonarweb.settings import database_from_url

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs DATABASE_URL pointing at PostgreSQL"
)


def test_a_postgresql_url_selects_django_s_back_end_with_kept_checked_connections():
    parsed = database_from_url(
        "DATABASE_URL", "postgres://u:p@db.internal:5433/sonar", conn_max_age=60
    )
    assert parsed["ENGINE"] == "django.db.backends.postgresql"
    assert (parsed["HOST"], parsed["PORT"], parsed["NAME"]) == ("db.internal", 5433, "sonar")
    assert parsed["CONN_MAX_AGE"] == 60 and parsed["CONN_HEALTH_CHECKS"] is True
    # Django's defaults: client-side binding, no pool, no prepared statements.
    assert not parsed.get("OPTIONS")


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_ended_is_replaced_before_a_request_uses_it():
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    kept = connection.connection
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    # The server says so on the socket; wait for that (not for a fixed time).
    waiting = select.poll()
    waiting.register(kept.fileno(), select.POLLIN)
    deadline = time.monotonic() + 60
    while not waiting.poll(100):
        assert time.monotonic() < deadline, "the ended connection never became readable"

    close_old_connections()  # what Django does as each request starts
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
    assert connection.connection is not kept
