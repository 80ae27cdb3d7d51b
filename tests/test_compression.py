"""HTML goes out gzipped (GZipMiddleware), permalinks and public pages included."""

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


def test_a_permalink_is_compressed_and_reads_the_same(owner_client, owner):
    tracked = archived_request(owner, LONG, request_id="job-long")
    url = f"/r/{tracked.slug}/"
    assert "ETag" not in owner_client.get(url)  # the first view makes the CSRF cookie
    plain = owner_client.get(url)
    packed = owner_client.get(url, headers=GZIP)
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert "private" in packed["Cache-Control"] and "no-cache" in packed["Cache-Control"]
    assert len(packed.content) < len(plain.content) / 5
    page = gzip.decompress(packed.content)
    assert page.startswith(b"<!doctype html>") and page.count(b"A long paragraph") == 800
    # The compressed page's ETag is weak (its bytes differ), and a revisit still gets a 304.
    assert packed["ETag"] == f"W/{plain['ETag']}"
    again = owner_client.get(url, headers={**GZIP, "if-none-match": packed["ETag"]})
    assert again.status_code == 304 and again.content == b""


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
