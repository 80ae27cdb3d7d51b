"""Database back ends: Django's, with what this app adds to them."""

from __future__ import annotations

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper


def hot_cursor(connection: BaseDatabaseWrapper) -> Any:
    """A cursor for a statement that runs on nearly every request (a session, a permalink's
    head row). On PostgreSQL it binds on the server, so the statement is prepared after a
    few runs on a connection (sonarweb/db/postgresql/base.py); elsewhere it is the usual
    cursor. Only for plain SQL whose parameters are values in a WHERE clause."""
    prepared = getattr(connection, "prepared_cursor", None)
    return prepared() if prepared is not None else connection.cursor()
