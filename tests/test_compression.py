"""HTML goes out gzipped; the permalink's cached pages are compressed once, not per view."""

from __future__ import annotations

import gzip

import pytest

from sonarweb.tracker.models import ShareLink

from .conftest import archived_request

pytestmark = pytest.mark.django_db

GZIP = {"accept-encoding": "gzip, deflate, br"}
LONG = {
    "model": "sonar-pro",
    "response": {
        "choices": [{"message": {"content": "# Report\n\n" + "A long paragraph of text. " * 800}}]
    },
}


def test_pages_are_compressed_for_browsers_that_accept_gzip(owner_client):
    plain = owner_client.get("/")
    packed = owner_client.get("/", headers=GZIP)
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert gzip.decompress(packed.content).startswith(b"<!doctype html>")


def test_a_cached_permalink_is_compressed_once_and_reads_the_same(owner_client, owner):
    tracked = archived_request(owner, LONG, request_id="job-long")
    url = f"/r/{tracked.slug}/"
    plain = owner_client.get(url)  # rendered, and cached for this member
    first = owner_client.get(url, headers=GZIP)
    second = owner_client.get(url, headers=GZIP)
    assert first["Content-Encoding"] == second["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in first["Vary"]
    assert first["Cache-Control"] == "private, no-cache"
    assert gzip.decompress(first.content) == plain.content
    # The same bytes: served from the cache, not compressed again (nor padded anew).
    assert second.content == first.content
    assert len(first.content) < len(plain.content) / 5


def test_a_first_view_of_a_permalink_is_compressed_too(owner_client, owner):
    tracked = archived_request(owner, LONG, request_id="job-first")
    page = owner_client.get(f"/r/{tracked.slug}/", headers=GZIP)
    assert page["Content-Encoding"] == "gzip"
    assert b"A long paragraph" in gzip.decompress(page.content)


def test_the_public_page_is_compressed(anon_client, owner):
    tracked = archived_request(owner, LONG, request_id="job-public")
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    page = anon_client.get(f"/s/{link.token}/", headers=GZIP)
    assert page.status_code == 200
    assert page["Content-Encoding"] == "gzip"
    assert b"A long paragraph" in gzip.decompress(page.content)
