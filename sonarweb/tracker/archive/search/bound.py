"""A time bound for one search statement, so that no search holds a request thread for long.

Most searches take milliseconds whatever the size of the archive, but a quoted phrase of words
that most answers contain makes the database check word order in nearly every answer: at
100k answers that is seconds on SQLite and longer on PostgreSQL. The statement is stopped at
``SONARWEB_SEARCH_SECONDS`` and the page says so, instead of the thread waiting it out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

# SQLite asks the handler every this many virtual machine steps (about a millisecond).
_SQLITE_STEPS = 20_000


class SearchTooSlow(Exception):
    """The statement ran past its time bound and was stopped."""


@contextmanager
def bounded(connection: BaseDatabaseWrapper, seconds: float) -> Iterator[None]:
    """Run the statements inside within ``seconds``, or raise ``SearchTooSlow``."""
    if connection.vendor == "postgresql":
        try:
            # Local to the transaction, which in a request (autocommit) is the statement's
            # own. Inside a longer transaction this is a savepoint, and the settings are put
            # back afterwards so that later statements keep neither.
            #
            # Sequential scans are discouraged too: PostgreSQL does not count the cost of
            # reading the answers' vectors out of TOAST, so on a small archive it planned a
            # scan of every answer (320 ms at 2k answers for "geothermal -oslo", against
            # 42 ms through the GIN index).
            nested = connection.in_atomic_block
            with transaction.atomic(using=connection.alias):
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT current_setting('statement_timeout'), "
                        "current_setting('enable_seqscan'), "
                        "set_config('statement_timeout', %s, true), "
                        "set_config('enable_seqscan', 'off', true)",
                        [f"{max(1, round(seconds * 1000))}ms"],
                    )
                    previous = cursor.fetchone()[:2]
                yield
                if nested:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT set_config('statement_timeout', %s, true), "
                            "set_config('enable_seqscan', %s, true)",
                            list(previous),
                        )
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) == "57014":  # query_canceled
                raise SearchTooSlow from error
            raise
    elif connection.vendor == "sqlite":
        connection.ensure_connection()
        raw = connection.connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_STEPS)
        try:
            yield
        except OperationalError as error:
            if "interrupted" in str(error):
                raise SearchTooSlow from error
            raise
        finally:
            raw.set_progress_handler(None, 0)
    else:
        yield
