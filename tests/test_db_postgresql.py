"""The PostgreSQL back end (sonarweb/db/postgresql/base.py): a quiet kept connection is
used without a health-check round trip, one the server has ended is replaced before a
request uses it, and the statements every request runs are prepared."""

from __future__ import annotations

import select
import time

import psycopg
import pytest
from django.db import connection, connections
from psycopg.pq import TransactionStatus

from sonarweb.tracker.models import TrackedRequest, UpstreamStatus

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="sonarweb.db.postgresql is the PostgreSQL back end; SQLite keeps Django's",
    ),
]


def as_a_request_starts() -> None:
    """What Django does between requests on a kept connection."""
    connection.close_if_unusable_or_obsolete()
    assert not connection.health_check_done


def test_a_quiet_connection_is_used_without_asking_the_server():
    connection.health_check_enabled = True
    connection.ensure_connection()
    kept = connection.connection
    pid = kept.info.backend_pid

    as_a_request_starts()
    connection.close_if_health_check_failed()
    assert connection.health_check_done
    assert connection.connection is kept
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] == pid


def test_the_check_makes_no_round_trip_on_a_quiet_connection(monkeypatch):
    wrapper = connections["default"]
    wrapper.health_check_enabled = True
    wrapper.ensure_connection()
    kept = wrapper.connection
    asked = []
    django_check = wrapper.is_usable

    def is_usable() -> bool:  # Django's own check: a SELECT 1
        asked.append(kept.info.transaction_status)
        return django_check()

    monkeypatch.setattr(wrapper, "is_usable", is_usable)
    as_a_request_starts()
    wrapper.close_if_health_check_failed()
    assert asked == []
    # A transaction left open is something the quiet check cannot vouch for.
    kept.execute("BEGIN")
    wrapper.health_check_done = False
    wrapper.close_if_health_check_failed()
    kept.execute("ROLLBACK")
    assert asked == [TransactionStatus.INTRANS]
    assert wrapper.connection is kept


def test_a_connection_the_server_ended_is_replaced_before_it_is_used():
    connection.health_check_enabled = True
    connection.ensure_connection()
    kept = connection.connection
    pid = kept.info.backend_pid
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    # The server says so on the socket; wait for that (not for a fixed time).
    waiting = select.poll()
    waiting.register(kept.fileno(), select.POLLIN)
    deadline = time.monotonic() + 60
    while not waiting.poll(100):
        assert time.monotonic() < deadline, "the ended connection never became readable"

    as_a_request_starts()
    connection.close_if_health_check_failed()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
    assert connection.connection is not kept


def test_the_statements_every_request_runs_are_prepared(owner, owner_client):
    done = TrackedRequest.objects.create(
        request_id="prepared-1", added_by=owner, status=UpstreamStatus.COMPLETED
    )
    for _ in range(6):
        assert owner_client.get(f"/r/{done.slug}/").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("accounts_session" in s and "auth_user" in s for s in prepared), prepared
    assert any("tracker_answerarchive" in s and "slug" in s for s in prepared), prepared
    # Django's own queries bind on the client and are never prepared.
    assert all("$1" in s for s in prepared), prepared
