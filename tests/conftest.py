"""Shared fixtures: team members, a running simulator, a live app server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from sonarweb.simulator.app import Simulator
from sonarweb.simulator.server import RunningServer, serve
from sonarweb.tracker.models import AnswerArchive, ApiKey, TrackedRequest

OWNER_KEY = "pplx-owner0000000000000000a1b2"
MEMBER_KEY = "pplx-member000000000000000c3d4"
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(
        keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=3600, sonar_retired=False
    )


@pytest.fixture
def sim_server(simulator: Simulator, settings) -> Iterator[RunningServer]:
    """The simulator on a real socket; the app's client is pointed at it."""
    with serve(simulator) as server:
        # Answers' images point at the simulator itself, as the demo's do.
        simulator.image_base = server.url
        settings.PERPLEXITY_API_BASE = server.url
        settings.PERPLEXITY_READ_TIMEOUT = 2.0
        settings.PERPLEXITY_CONNECT_TIMEOUT = 2.0
        yield server


@pytest.fixture
def refresher(transactional_db, settings) -> Iterator[object]:
    """The background refresher, running beside the live server as it does in production:
    the only thing that polls upstream. Stopped (and its calls abandoned) after the test."""
    from sonarweb.tracker.following.refresher import Refresher

    # The simulator serves answers' images on loopback, which production refuses to fetch.
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = True
    running = Refresher(interval=0.2, workers=4)
    ready = threading.Event()
    thread = threading.Thread(target=running.run, kwargs={"ready": ready.set}, daemon=True)
    thread.start()
    assert ready.wait(60), "the refresher did not start"
    yield running
    running.stop.set()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the refresher did not stop"


def make_member(username: str, key: str | None) -> User:
    """A team member, with their API key saved when one is given."""
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
    if key is not None:
        api_key = ApiKey(user=user)
        api_key.set_secret(key)
        api_key.save()
    return user


def wait_for(
    condition: Callable[[], object], what: str = "the condition", *, timeout: float = 120.0
) -> object:
    """Poll until ``condition()`` returns something true, and return it. The deadline is
    generous on purpose: on a busy machine a state comes late, never wrong."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.1)


def poll(tracked: TrackedRequest) -> TrackedRequest:
    """What the refresher does for one due row: ask upstream, store (and archive) the answer."""
    from sonarweb.tracker.following.polling import refresh_if_due

    refresh_if_due(tracked)
    tracked.refresh_from_db()
    return tracked


def archived_request(
    user: User | None,
    document: dict | None = None,
    *,
    raw_text: str | None = None,
    html: str | None = None,
    version: int | None = None,
    **fields: object,
) -> TrackedRequest:
    """A finished request with its archive, stored by the refresher's own write path.

    ``raw_text`` stores a body verbatim (even one that is not JSON); ``html`` and ``version``
    replace the rendering afterwards, to tell stored HTML from what the JSON renders to.
    """
    import json

    from sonarweb.perplexity.documents import parse_document
    from sonarweb.perplexity.payload import Job, PayloadError
    from sonarweb.tracker.archive.store import archive_job
    from sonarweb.tracker.following.polling import job_fields

    document = document or {}
    request_id = str(fields.pop("request_id", document.get("id") or "job-archived"))
    status = str(fields.pop("status", document.get("status") or "COMPLETED"))
    document = {"id": request_id, "status": status, **document}
    text = raw_text if raw_text is not None else json.dumps(document)
    try:
        job = parse_document(document)
    except PayloadError:
        job = Job(id=request_id, status=status)
    # Not due from the start: a refresher running beside the test must not poll it before it is
    # archived (a Sonar id would make it list the key's jobs).
    tracked = TrackedRequest.objects.create(
        request_id=request_id, added_by=user, **{"next_poll_at": None, **fields}
    )
    now = timezone.now()
    values = job_fields(job, now, tracked.created)
    values.update({k: v for k, v in fields.items() if k in values})
    archive_job(tracked, job, text, values)
    if html is not None or version is not None:
        changes: dict[str, object] = {}
        if html is not None:
            changes["rendered_html"] = html
        if version is not None:
            changes["render_version"] = version
        AnswerArchive.objects.filter(tracked=tracked).update(**changes)
    tracked.refresh_from_db()
    return tracked


@pytest.fixture
def owner(db) -> User:
    """The member who adds requests; has a saved key."""
    return make_member("olivia", OWNER_KEY)


@pytest.fixture
def member(db) -> User:
    """Another team member, with no key of their own."""
    return make_member("mateo", None)


@pytest.fixture
def owner_client(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def member_client(member: User) -> Client:
    client = Client()
    client.force_login(member)
    return client


@pytest.fixture
def anon_client() -> Client:
    return Client()


@pytest.fixture(autouse=True)
def _chores_due_afresh() -> None:
    """Each test starts with every refresher chore due, as a fresh process does."""
    from sonarweb.tracker.following import chores

    chores.forget_schedule()


@pytest.fixture(autouse=True)
def _media_in_a_temporary_directory(settings, tmp_path_factory) -> None:
    """Archived images and bundles go to a directory of the test run, not the data directory."""
    media = settings.STORAGES["media"]
    if media["BACKEND"].endswith("FileSystemStorage"):
        location = tmp_path_factory.mktemp("media")
        options = {**media.get("OPTIONS", {}), "location": str(location)}
        settings.STORAGES = {**settings.STORAGES, "media": {**media, "OPTIONS": options}}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Django's cache is per process; tests must not see each other's entries."""
    from django.core.cache import cache

    cache.clear()
    yield
