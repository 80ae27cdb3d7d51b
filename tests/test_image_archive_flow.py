"""An answer's images from archive to page: fetched in the background, shown from the local
copies (or as placeholders), counted on the permalink, retried by staff, served to public
links under their token, and bundled in a portable .zip."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.test import Client

from sonarweb.media.background import archive_due_images
from sonarweb.media.models import AnswerBundle, AnswerImage, ImageStatus
from sonarweb.tracker.archive.store import rerender_many
from sonarweb.tracker.following.chores import run_due
from sonarweb.tracker.models import AnswerArchive, ShareLink, TrackedRequest

from .conftest import OWNER_KEY, poll

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_images(settings):
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = True


def archived_with_images(simulator, owner, images: int = 3) -> TrackedRequest:
    """An answer as the refresher archives it: stored and rendered, its images only noted."""
    job_id = simulator.add_job(
        OWNER_KEY, queue_seconds=0, run_seconds=0, words=300, sources=4, images=images
    )
    tracked = poll(TrackedRequest.objects.create(request_id=job_id, added_by=owner))
    assert tracked.has_answer
    return tracked


def image_srcs(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


def test_images_are_archived_in_the_background_and_the_page_shows_the_copies(
    sim_server, simulator, owner, owner_client
):
    tracked = archived_with_images(simulator, owner)
    # Archived, not yet fetched: placeholders, and nothing loads from the image host.
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert image_srcs(page) == [] and "Being archived" in page
    assert "3 being archived" in page and "Archive (.zip) being prepared" in page

    run_due(timezone_now())
    assert AnswerImage.objects.filter(tracked=tracked, status=ImageStatus.STORED).count() == 3
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    srcs = image_srcs(page)
    assert len(srcs) == 3 and all(re.fullmatch(r"/images/[0-9a-f]{64}\.webp", s) for s in srcs)
    assert "Images: 3 archived" in page
    assert sim_server.url not in " ".join(srcs)
    for src in srcs:
        response = owner_client.get(src)
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert "immutable" in response["Cache-Control"]

    # The bundle: built once the images settled, linked from the page, readable offline.
    assert AnswerBundle.objects.filter(tracked=tracked).exists()
    assert f'href="/r/{tracked.slug}/archive.zip"' in page
    response = owner_client.get(f"/r/{tracked.slug}/archive.zip")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].endswith('.zip"')
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert {n.split("/", 1)[1] for n in names} >= {"index.html", "answer.md", "answer.json"}
    assert len([n for n in names if n.endswith(".webp")]) == 3
    raw = AnswerArchive.objects.get(pk=tracked.pk).raw_json
    json_name = next(n for n in names if n.endswith("answer.json"))
    assert archive.read(json_name).decode() == raw
    index = archive.read(next(n for n in names if n.endswith("index.html"))).decode()
    assert "http://" not in " ".join(image_srcs(index))


def test_public_pages_serve_only_the_shared_answers_images(
    sim_server, simulator, owner, anon_client
):
    tracked = archived_with_images(simulator, owner, images=2)
    other = archived_with_images(simulator, owner, images=1)
    run_due(timezone_now())
    run_due(timezone_now())
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    html = anon_client.get(f"/s/{link.token}/").content.decode()
    srcs = image_srcs(html)
    assert len(srcs) == 2
    assert all(s.startswith(f"/s/{link.token}/images/") for s in srcs)
    for src in srcs:
        assert anon_client.get(src).status_code == 200
    # Another answer's image is not served under this link, nor the team address publicly.
    theirs = AnswerImage.objects.get(tracked=other).image.sha256
    assert anon_client.get(f"/s/{link.token}/images/{theirs}.webp").status_code == 404
    assert anon_client.get(f"/images/{theirs}.webp").status_code == 302
    ShareLink.objects.filter(pk=link.pk).update(revoked_at=timezone_now())
    assert anon_client.get(srcs[0]).status_code == 404


def test_an_image_that_cannot_be_archived_says_why_and_staff_can_retry(
    sim_server, simulator, owner, owner_client
):
    completion = {
        "choices": [{"message": {"content": "An answer with a picture."}}],
        "images": [
            {
                # Answered with JSON, not a picture.
                "image_url": f"{sim_server.url}/v1/async/sonar/picture.png",
                "origin_url": "https://maps.example.org/page",
                "title": "A map",
            }
        ],
    }
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, completion=completion)
    tracked = poll(TrackedRequest.objects.create(request_id=job_id, added_by=owner))
    for _ in range(4):  # it is retried a few times before it counts as failed for good
        AnswerImage.objects.filter(tracked=tracked).update(claimed_until=None)
        run_due(timezone_now())
    row = AnswerImage.objects.get(tracked=tracked)
    assert row.status == ImageStatus.FAILED and row.reason
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "1 could not be archived" in page and row.reason in page
    assert "A map" in page and 'href="https://maps.example.org/page"' in page
    assert image_srcs(page) == []
    # Only staff may ask for another try.
    assert owner_client.post(f"/r/{tracked.slug}/images/retry/").status_code == 403
    staff = Client()
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    staff.force_login(owner)
    assert "Try the failed images again" in staff.get(f"/r/{tracked.slug}/").content.decode()
    response = staff.post(f"/r/{tracked.slug}/images/retry/")
    assert response.status_code == 303
    assert AnswerImage.objects.get(tracked=tracked).status == ImageStatus.PENDING


def test_staff_page_shows_refreshers_and_archive_disk_use(sim_server, simulator, owner, settings):
    from sonarweb.tracker.models import RefresherBeat

    archived_with_images(simulator, owner, images=1)
    run_due(timezone_now())
    RefresherBeat.objects.create(token="t" * 32, host="web-1", pid=42, last_pass_at=timezone_now())
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    staff = Client()
    staff.force_login(owner)
    html = staff.get("/staff/calls/").content.decode()
    assert "web-1" in html and "running" in html
    assert "Archived images" in html and "1 stored" not in html
    assert re.search(r"Archived images</dt><dd>1:", html)


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def test_an_open_permalink_gets_the_pictures_once_they_are_kept(
    sim_server, simulator, owner, owner_client
):
    tracked = archived_with_images(simulator, owner, images=2)
    page = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert f'hx-get="/r/{tracked.slug}/answer/"' in page
    poll = owner_client.get(f"/r/{tracked.slug}/answer/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 204, "nothing to swap while they are fetched"
    run_due(timezone_now())
    poll = owner_client.get(f"/r/{tracked.slug}/answer/", HTTP_HX_REQUEST="true")
    html = poll.content.decode()
    assert poll.status_code == 200
    # Only the gallery and the counts change; the poller goes.
    # The gallery's inside, rendered from the archived document (never cut out of stored HTML).
    assert '<div hx-swap-oob="innerHTML:#answer-gallery"><h2 id="answer-gallery-title">' in html
    assert 'id="image-archive"' in html and "Images: 2 archived" in html
    assert '<div id="images-poller" hx-swap-oob="delete">' in html
    assert len(image_srcs(html)) == 2 and 'id="answer"' not in html
    assert "images-poller" not in owner_client.get(f"/r/{tracked.slug}/").content.decode()


def test_the_pictures_are_swapped_in_only_once_the_answer_shows_them(
    sim_server, simulator, owner, owner_client
):
    # The refresher keeps the images, then renders the answer again with them; a poll in
    # between must not swap in the old placeholders and stop polling for good.
    tracked = archived_with_images(simulator, owner, images=2)
    changed = archive_due_images(limit=5)
    assert changed == [tracked.pk]
    assert not AnswerImage.objects.filter(tracked=tracked, status=ImageStatus.PENDING).exists()
    poll = owner_client.get(f"/r/{tracked.slug}/answer/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 204, "kept, but the answer does not show them yet"
    rerender_many(changed)
    poll = owner_client.get(f"/r/{tracked.slug}/answer/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 200
    assert len(image_srcs(poll.content.decode())) == 2


def test_answer_md_names_only_the_archives_copies(sim_server, simulator, owner, owner_client):
    completion = {
        "choices": [
            {
                "message": {
                    "content": f"A chart ![kept]({sim_server.url}/_sim/images/a-40x30.png) "
                    "and a pixel ![gone](https://tracker.example/p.gif)."
                }
            }
        ]
    }
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, completion=completion)
    tracked = poll(TrackedRequest.objects.create(request_id=job_id, added_by=owner))
    for _ in range(4):
        AnswerImage.objects.filter(tracked=tracked).update(claimed_until=None)
        run_due(timezone_now())
    text = owner_client.get(f"/r/{tracked.slug}/answer.md").content.decode()
    assert re.search(r"!\[kept\]\(http://testserver/images/[0-9a-f]{64}\.webp\)", text)
    # Not archived: a link to it, which no Markdown viewer loads by itself.
    assert "[gone](https://tracker.example/p.gif)" in text and "![gone]" not in text
    assert sim_server.url not in text


def test_an_answer_with_inline_images_gets_its_whole_section_again(
    sim_server, simulator, owner, owner_client
):
    completion = {
        "choices": [
            {"message": {"content": f"See ![chart]({sim_server.url}/_sim/images/c-40x30.png)."}}
        ]
    }
    job_id = simulator.add_job(OWNER_KEY, queue_seconds=0, run_seconds=0, completion=completion)
    tracked = poll(TrackedRequest.objects.create(request_id=job_id, added_by=owner))
    assert owner_client.get(f"/r/{tracked.slug}/answer/").status_code == 204
    run_due(timezone_now())
    html = owner_client.get(f"/r/{tracked.slug}/answer/").content.decode()
    section = re.search(r'<section id="answer" class="answer-section"[^>]*>', html)
    assert section is not None and 'hx-swap-oob="true"' in section.group(0)
    assert len(image_srcs(html)) == 1
