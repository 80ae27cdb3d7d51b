"""The back end that signs members in and finds the member behind a session.

Signing in is Django's ModelBackend, unchanged. Finding the member runs on every signed-in
request. The session store reads the member in the same statement as the session
(sonarweb/accounts/sessions.py), and while Django asks for the member
(middleware.MemberAuthenticationMiddleware) this back end takes that row instead of
reading it again. Otherwise it reads the row with one plain statement.

Either way the row becomes a member through the fields' database converters, as the ORM
does, so the member is the same object the ORM would build, and an inactive member is
refused the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from functools import cache
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from sonarweb.db import hot_cursor

if TYPE_CHECKING:
    from django.contrib.sessions.backends.base import SessionBase

MEMBER_BACKEND = "sonarweb.accounts.backends.MemberBackend"

# The session whose member Django is asking for, while it asks (set by the middleware).
SESSION_ASKING: ContextVar[SessionBase | None] = ContextVar("session_asking", default=None)

Converter = Any
_converters: WeakKeyDictionary[BaseDatabaseWrapper, list[tuple[Any, list[Converter]]]] = (
    WeakKeyDictionary()
)


@cache
def member_columns(alias: str, table_alias: str = "") -> str:
    """The member table's columns, quoted, in field order (optionally qualified)."""
    model = get_user_model()
    quote = connections[alias].ops.quote_name
    prefix = f"{quote(table_alias)}." if table_alias else ""
    return ", ".join(prefix + quote(f.column) for f in model._meta.concrete_fields)


@cache
def _user_sql(alias: str) -> str:
    model = get_user_model()
    quote = connections[alias].ops.quote_name
    # Names from the model's metadata, quoted; the id is a parameter.
    return (
        f"SELECT {member_columns(alias)} FROM {quote(model._meta.db_table)}"  # noqa: S608
        f" WHERE {quote(model._meta.pk.column)} = %s"
    )


def member_from_row(alias: str, values: Sequence[Any]) -> Any:
    """A member from the values of ``member_columns``, converted as the ORM converts them."""
    connection = connections[alias]
    fields = _converters.get(connection)
    if fields is None:
        model = get_user_model()
        fields = []
        for field in model._meta.concrete_fields:
            column = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
            fields.append((column, found))
        _converters[connection] = fields
    converted = []
    for value, (column, found) in zip(values, fields, strict=True):
        for convert in found:
            value = convert(value, column, connection)
        converted.append(value)
    model = get_user_model()
    return model.from_db(alias, [f.attname for f in model._meta.concrete_fields], converted)


class MemberBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(user_id)
        except ValidationError:
            return None
        read_with_session = getattr(SESSION_ASKING.get(), "member_read_with_it", None)
        read, user = read_with_session(pk) if read_with_session else (False, None)
        if not read:
            alias = router.db_for_read(model)
            with hot_cursor(connections[alias]) as cursor:
                cursor.execute(_user_sql(alias), [pk])
                row = cursor.fetchone()
            user = member_from_row(alias, row) if row is not None else None
        return user if user is not None and self.user_can_authenticate(user) else None
