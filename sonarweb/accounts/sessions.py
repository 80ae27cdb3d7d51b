"""The session engine: Django's database sessions in a table that names each session's
member, read together with that member in one plain SQL statement.

Every signed-in page reads its session, then its member, before anything else. Django's
store builds the session lookup through the ORM on each request, and compiling it costs
about twice what running it does; the member is a second round trip. Here the session row
carries its member's id (``MemberSession.member``, written on every save), and one
statement returns the session joined to its member. The member back end takes that row
when Django asks for the session's member (backends.MemberBackend); nothing is kept
between requests, so a member signed out or deactivated elsewhere is seen at once.
Saving, deleting and clearing expired sessions stay Django's.

Sessions written before the member back end existed name Django's ModelBackend; a read
moves them to ``MEMBER_BACKEND``, so nobody is signed out by the change.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends import db
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.utils import timezone

from sonarweb.accounts.backends import MEMBER_BACKEND, member_columns, member_from_row
from sonarweb.accounts.models import MemberSession
from sonarweb.db import hot_cursor

LEGACY_BACKEND = "django.contrib.auth.backends.ModelBackend"


def member_id(data: dict[str, Any]) -> Any:
    """The member a session's data signs in as, or None."""
    value = data.get(SESSION_KEY)
    if value is None:
        return None
    try:
        return get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None


@cache
def _session_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    meta = MemberSession._meta
    users = get_user_model()._meta

    def column(name: str) -> str:
        return f"s.{quote(meta.get_field(name).column)}"

    # Names from the models' metadata, quoted; the key and the time are parameters.
    return (
        f"SELECT {column('session_data')}, {column('member')}, {member_columns(alias, 'u')}"  # noqa: S608
        f" FROM {quote(meta.db_table)} s"
        f" LEFT JOIN {quote(users.db_table)} u ON u.{quote(users.pk.column)} = {column('member')}"
        f" WHERE {column('session_key')} = %s AND {column('expire_date')} > %s"
    )


class SessionStore(db.SessionStore):
    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._member: tuple[Any, Any] | None = None  # (id, member) as read with the session

    @classmethod
    def get_model_class(cls) -> type[MemberSession]:
        return MemberSession

    def create_model_instance(self, data: dict[str, Any]) -> MemberSession:
        session = super().create_model_instance(data)
        session.member_id = member_id(data)
        return session

    def _get_session_from_db(self) -> MemberSession | None:
        self._member = None
        if not self.session_key:
            return None
        alias = router.db_for_read(self.model)
        connection = connections[alias]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with hot_cursor(connection) as cursor:
            cursor.execute(_session_sql(alias), [self.session_key, now])
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        data, member, *user = row
        if member is not None:
            # A member deleted since is no row here; the back end then finds nobody.
            found = member_from_row(alias, user) if user[0] is not None else None
            self._member = (found.pk if found is not None else member, found)
        return self.model(session_key=self.session_key, session_data=data, member_id=member)

    def member_read_with_it(self, pk: Any) -> tuple[bool, Any]:
        """(True, member or None) when the session's read also read member ``pk``."""
        if self._member is not None and self._member[0] == pk:
            return True, self._member[1]
        return False, None

    def load(self) -> dict[str, Any]:
        data = super().load()
        if data.get(BACKEND_SESSION_KEY) == LEGACY_BACKEND:
            data[BACKEND_SESSION_KEY] = MEMBER_BACKEND
            self.modified = True
        return data
