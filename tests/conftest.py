"""Shared fixtures: team members, a running simulator, a live app server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from sonarweb.simulator.app import Simulator
from sonarweb.simulator.server import RunningServer, serve
from sonarweb.tracker.models import ApiKey

OWNER_KEY = "pplx-owner0000000000000000a1b2"
MEMBER_KEY = "pplx-member000000000000000c3d4"
PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=3600)


@pytest.fixture
def sim_server(simulator: Simulator, settings) -> Iterator[RunningServer]:
    """The simulator on a real socket; the app's client is pointed at it."""
    with serve(simulator) as server:
        settings.PERPLEXITY_API_BASE = server.url
        settings.PERPLEXITY_READ_TIMEOUT = 2.0
        settings.PERPLEXITY_CONNECT_TIMEOUT = 2.0
        yield server


def make_member(username: str, key: str | None) -> User:
    """A team member, with their API key saved when one is given."""
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
    if key is not None:
        api_key = ApiKey(user=user)
        api_key.set_secret(key)
        api_key.save()
    return user


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
def _fresh_page_cache() -> Iterator[None]:
    """Cached finished pages are per process; tests must not see each other's."""
    from sonarweb.tracker.views.requests import FINISHED_PAGES

    FINISHED_PAGES.clear()
    yield
    FINISHED_PAGES.clear()
