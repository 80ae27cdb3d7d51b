"""Finished permalink pages are cached per member and never served stale."""

from __future__ import annotations

import time

import pytest

from sonarweb.tracker.models import TrackedRequest
from sonarweb.tracker.pagecache import PageCache
from sonarweb.tracker.polling import refresh_if_due

from .conftest import OWNER_KEY

pytestmark = pytest.mark.django_db


@pytest.fixture
def completed(sim_server, simulator, owner) -> TrackedRequest:
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=owner, title="First")
    refresh_if_due(tracked)
    return tracked


def test_repeat_view_is_served_without_template_or_row_work(
    owner_client, completed, django_assert_num_queries
):
    url = f"/r/{completed.slug}/"
    first = owner_client.get(url)
    assert first.status_code == 200
    # The session with its member (one statement), and the row's version: nothing else.
    with django_assert_num_queries(2):
        second = owner_client.get(url)
    assert second.content == first.content
    assert second["Cache-Control"] == "private, no-cache"


def test_each_member_gets_their_own_page(owner_client, member_client, completed):
    url = f"/r/{completed.slug}/"
    assert "olivia" in owner_client.get(url).content.decode().split("</header>")[0]
    mateo_view = member_client.get(url).content.decode()
    assert '<span class="who">mateo</span>' in mateo_view
    assert '<span class="who">olivia</span>' not in mateo_view


def test_title_edit_and_share_link_show_at_once(owner_client, completed):
    url = f"/r/{completed.slug}/"
    owner_client.get(url)
    owner_client.post(f"/r/{completed.slug}/title/", {"title": "Second"})
    assert "Second" in owner_client.get(url).content.decode()
    owner_client.post(f"/r/{completed.slug}/share/", {"expires": "never"})
    page = owner_client.get(url).content.decode()
    token = completed.share_links.get().token
    assert f"/s/{token}/" in page
    owner_client.post(f"/links/{completed.share_links.get().pk}/revoke/", {"from": "panel"})
    assert f"/s/{token}/" not in owner_client.get(url).content.decode()


def test_pending_messages_are_shown_not_cached(owner_client, completed):
    url = f"/r/{completed.slug}/"
    owner_client.get(url)
    response = owner_client.post("/", {"request_id": completed.request_id}, follow=True)
    assert "already tracked" in response.content.decode()
    assert "already tracked" not in owner_client.get(url).content.decode()


def test_unfinished_pages_are_never_cached(owner_client, owner, sim_server, simulator):
    tracked = TrackedRequest.objects.create(request_id=simulator.add_job(OWNER_KEY), added_by=owner)
    url = f"/r/{tracked.slug}/"
    owner_client.get(url)
    TrackedRequest.objects.filter(pk=tracked.pk).update(status="FAILED", error_message="Gone.")
    assert "Gone." in owner_client.get(url).content.decode()


def test_cache_expires_and_stays_within_its_size():
    cache = PageCache(max_bytes=100, ttl_seconds=0.05)
    cache.put("a", b"x" * 20)
    assert cache.get("a") == b"x" * 20
    time.sleep(0.06)  # sleeps at least this long, so "a" has expired however busy we are
    assert cache.get("a") is None
    # A TTL no scheduling delay can reach, so only the size bound evicts below.
    cache = PageCache(max_bytes=100, ttl_seconds=3600)
    for key in "bcdefg":
        cache.put(key, b"y" * 25)
    assert cache.get("b") is None and cache.get("c") is None
    assert cache.get("g") == b"y" * 25
    cache.put("huge", b"z" * 60)
    assert cache.get("huge") is None
