"""A Sonar job list that never ends must not hold a key's jobs for ever: a repeated or
endless ``next_token`` is noticed, pages and bytes per pass are bounded, and the wanted jobs
the list did not show are fetched one by one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from sonarweb.simulator.server import RunningServer, serve
from sonarweb.tracker.following import refresher
from sonarweb.tracker.models import TrackedRequest

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

WANTED = "3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e11"


class EndlessList:
    """An upstream whose list always has another page: a new token each time, or one token
    again and again. Each page is ``padding`` bytes of other jobs' ids."""

    def __init__(self, *, repeat: bool, padding: int = 0) -> None:
        self.repeat = repeat
        self.padding = padding
        self.list_calls = 0
        self.get_calls = 0

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ["PATH_INFO"].rstrip("/")
        if path == "/v1/async/sonar":
            self.list_calls += 1
            token = "same" if self.repeat else uuid.uuid4().hex
            jobs = [{"id": str(uuid.uuid4()), "status": "COMPLETED", "model": "x"}]
            body: dict[str, Any] = {"requests": jobs, "next_token": token}
            if self.padding:
                body["padding"] = "x" * self.padding
        else:
            self.get_calls += 1
            body = {
                "id": path.rsplit("/", 1)[-1],
                "status": "COMPLETED",
                "model": "sonar-deep-research",
                "response": {"choices": [{"message": {"content": "Found it."}}]},
            }
        data = json.dumps(body).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]


@pytest.fixture
def upstream(request, settings) -> Iterator[tuple[EndlessList, RunningServer]]:
    app = EndlessList(**request.param)
    with serve(app) as server:
        settings.PERPLEXITY_API_BASE = server.url
        yield app, server


@pytest.mark.parametrize(
    "upstream",
    [{"repeat": True}, {"repeat": False}, {"repeat": False, "padding": 4 * 1024 * 1024}],
    indirect=True,
    ids=["repeated-token", "new-token-each-page", "large-pages"],
)
def test_an_endless_list_ends_and_the_job_is_fetched_directly(upstream, owner, monkeypatch):
    app, _ = upstream
    monkeypatch.setattr(refresher, "LIST_BYTES_PER_PASS", 16 * 1024 * 1024)
    tracked = TrackedRequest.objects.create(request_id=WANTED, added_by=owner)
    refresher.run_once()
    tracked.refresh_from_db()
    assert tracked.status == "COMPLETED" and tracked.has_answer
    assert app.get_calls == 1
    if app.repeat:
        assert app.list_calls == 2
    elif app.padding:
        # Pages of a little over 4 MB: the fourth takes the pass over 16 MB.
        assert app.list_calls == 4
    else:
        assert app.list_calls == refresher.MAX_LIST_PAGES
