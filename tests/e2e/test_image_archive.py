"""The archived answer in a real browser: its images load from the app alone, a public page
asks no other host for anything, and the portable bundle reads offline."""

from __future__ import annotations

import zipfile
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from sonarweb.media.models import AnswerBundle, AnswerImage, ImageStatus
from sonarweb.tracker.models import ShareLink, TrackedRequest
from tests.conftest import OWNER_KEY, PASSWORD, make_member, wait_for

from .conftest import open_menu, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_archived_images_load_from_the_app_alone(
    page, browser, live_server, sim_server, simulator, tmp_path
):
    user = make_member("olivia", OWNER_KEY)
    job_id = simulator.add_job(
        OWNER_KEY, queue_seconds=0, run_seconds=0, words=400, sources=5, images=4
    )
    tracked = TrackedRequest.objects.create(request_id=job_id, added_by=user)
    # The refresher archives the answer, then its images, then builds the bundle.
    wait_for(lambda: AnswerBundle.objects.filter(tracked=tracked).exists(), "the bundle")
    assert AnswerImage.objects.filter(tracked=tracked, status=ImageStatus.STORED).count() == 4
    link = ShareLink.objects.create(tracked=tracked, created_by=user)

    own = urlsplit(live_server.url).netloc
    visitor = browser.new_context()
    try:
        public = visitor.new_page()
        hosts: set[str] = set()
        public.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
        assert public.goto(f"{live_server.url}/s/{link.token}/").status == 200
        images = public.locator("#answer .gallery img")
        expect(images).to_have_count(4)
        for index in range(4):
            images.nth(index).scroll_into_view_if_needed()
            expect(images.nth(index)).to_have_js_property("complete", True)
            assert images.nth(index).evaluate("img => img.naturalWidth") > 0
        public.wait_for_load_state("networkidle")
        # Not the image host (the simulator), nor any other: only the app itself.
        assert hosts == {own}, hosts
    finally:
        visitor.close()

    sign_in(page, "olivia", PASSWORD)
    page.goto(f"/r/{tracked.slug}/")
    expect(page.locator(".image-archive summary")).to_contain_text("Images: 4 archived")
    with page.expect_download() as download:
        open_menu(page, "Export").get_by_role("link", name="Download archive (.zip)").click()
    with zipfile.ZipFile(download.value.path()) as bundle:
        bundle.extractall(tmp_path)
    index = next(tmp_path.rglob("index.html"))

    offline = browser.new_context(offline=True)
    try:
        reader = offline.new_page()
        requested: list[str] = []
        reader.on("request", lambda request: requested.append(request.url))
        reader.goto(index.as_uri())
        expect(reader.locator("h1")).to_be_visible()
        pictures = reader.locator("img")
        expect(pictures).to_have_count(4)
        for index_ in range(4):
            pictures.nth(index_).scroll_into_view_if_needed()
            expect(pictures.nth(index_)).to_have_js_property("complete", True)
            assert pictures.nth(index_).evaluate("img => img.naturalWidth") > 0
        assert all(url.startswith("file://") for url in requested), requested
    finally:
        offline.close()
    assert page.js_errors == []
