"""A dashboard poll never waits for the status counts: counts found out of date are shown
as they are and counted again once the response is sent (sonarweb/tracker/poll_counts.py)."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sonarweb.tracker.listing import encode_cursor
from sonarweb.tracker.models import TrackedRequest, UpstreamStatus
from sonarweb.tracker.poll_counts import KEEP_SECONDS, cache_key, poll_counts
from sonarweb.tracker.search import Filters

pytestmark = pytest.mark.django_db

ALL = Filters()


def completed(owner, n: int) -> TrackedRequest:
    return TrackedRequest.objects.create(
        request_id=f"counted-{n}", added_by=owner, status=UpstreamStatus.COMPLETED
    )


def out_of_date() -> None:
    counts, _fresh_until = cache.get(cache_key("", ALL))
    cache.set(cache_key("", ALL), (counts, 0.0), timeout=KEEP_SECONDS)


def test_counts_out_of_date_are_given_at_once_and_counted_once_after(owner):
    completed(owner, 1)
    assert poll_counts("", ALL) == ({"COMPLETED": 1}, None)
    completed(owner, 2)
    with CaptureQueriesContext(connection) as queries:
        assert poll_counts("", ALL) == ({"COMPLETED": 1}, None)  # still fresh: shared
    assert len(queries) == 0

    out_of_date()
    with CaptureQueriesContext(connection) as queries:
        counts, recount = poll_counts("", ALL)
        # Another poll meanwhile gets the same answer and leaves the counting to the first.
        assert poll_counts("", ALL) == (counts, None)
    assert counts == {"COMPLETED": 1} and recount is not None
    assert len(queries) == 0

    with CaptureQueriesContext(connection) as queries:
        recount()
    assert len(queries) == 1
    assert poll_counts("", ALL) == ({"COMPLETED": 2}, None)


def test_the_poll_that_finds_them_out_of_date_counts_after_its_response(owner, owner_client):
    top = encode_cursor(completed(owner, 1))
    url = f"/badges/?top={top}"
    first = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r'data-count="COMPLETED">1<', first)
    completed(owner, 2).delete()  # a row that comes and goes changes nothing
    TrackedRequest.objects.filter(request_id="counted-1").update(status=UpstreamStatus.FAILED)
    out_of_date()

    stale = owner_client.get(url, HTTP_HX_REQUEST="true")
    # The answer went out with the counts as they were; closing it counted them again.
    assert stale.status_code == 200 and stale.closed
    assert re.search(r'data-count="COMPLETED">1<', stale.content.decode())
    assert poll_counts("", ALL) == ({"FAILED": 1}, None)
    after = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r'data-count="FAILED">1<', after)
    assert not re.search(r'data-count="COMPLETED"', after)
