"""archive_images_for and manage.py archive_images, against real image hosts on loopback."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.utils import timezone

from sonarweb.media.archiving import MAX_ATTEMPTS, archive_images_for
from sonarweb.media.background import image_copies
from sonarweb.media.fetch import FetchPolicy, ImageFetcher
from sonarweb.media.lookup import disk_usage, image_summary
from sonarweb.media.models import AnswerImage, ArchivedImage, ImageStatus, storage_name
from sonarweb.media.refs import ImageRef, image_refs
from sonarweb.perplexity.sonar import parse_completion
from sonarweb.simulator.app import Simulator
from sonarweb.simulator.corpus import generate_completion
from sonarweb.simulator.server import serve
from sonarweb.tracker.models import TrackedRequest

from .conftest import archived_request
from .media_helpers import ImageHost, RawServer, drip, photo, png

LOOPBACK = FetchPolicy(allow=frozenset({"loopback"}), timeout=10)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = True
    return tmp_path / "media"


def stored_files(root) -> set[str]:
    return {p.name for p in root.rglob("*.webp")}


def answer_row(request_id: str = "req-1", completion: dict | None = None) -> TrackedRequest:
    """An archived answer, stored the way the refresher stores one (its images recorded)."""
    job = {"id": request_id, "status": "COMPLETED", "response": completion or {}}
    return archived_request(None, job)


def refs(*urls: str) -> list[ImageRef]:
    return [ImageRef(url=u, caption=f"image {i}") for i, u in enumerate(urls)]


@pytest.fixture
def host():
    files = {
        "/a.png": (200, png(800, 600, "teal")),
        "/same-as-a.png": (200, png(800, 600, "teal")),
        "/photo.jpg": (200, photo(2400, 1600)),
        "/missing.png": (404, b"gone"),
        "/busy.png": (503, b"try later"),
        "/page.png": (200, b"<!doctype html><html><body>hello</body></html>"),
    }
    app = ImageHost(files)
    with serve(app) as server:
        app.url = server.url
        yield app


@pytest.mark.django_db
def test_archives_gallery_and_inline_images_from_the_simulator(media_root):
    simulator = Simulator(keys=["k"])
    with serve(simulator) as server:
        question = "How do heat pumps cope with frost?"
        completion = generate_completion(question, images=3, image_base=server.url)
        inline = f"{server.url}/_sim/images/inline/01-abcd-640x480.png?title=Inline"
        text = completion["choices"][0]["message"]["content"]
        completion["choices"][0]["message"]["content"] = f"{text}\n\n![A chart]({inline})\n"
        tracked = answer_row(completion=completion)
        found = image_refs(parse_completion(completion))
        assert [r.kind for r in found] == ["gallery"] * 3 + ["inline"]
        report = archive_images_for(tracked, found, fetcher=ImageFetcher(LOOPBACK))
    assert (report.stored, report.failed, report.left) == (4, 0, 0)
    rows = list(AnswerImage.objects.filter(tracked=tracked).select_related("image"))
    assert [r.status for r in rows] == [ImageStatus.STORED] * 4
    assert rows[3].caption == "A chart" and rows[3].url == inline
    storage = storages["media"]
    for row in rows:
        image = row.image
        assert storage.exists(storage_name(image.sha256))
        assert storage.exists(storage_name(image.thumb_sha256))
        assert max(image.width, image.height) <= 1600
        assert max(image.thumb_width, image.thumb_height) <= 400
        assert row.attempts == 1 and row.fetched_at is not None and row.reason == ""
    # The simulator draws each picture at the size the answer says it has.
    first = rows[0]
    assert (first.image.source_width, first.image.source_height) == (first.width, first.height)


@pytest.mark.django_db
def test_a_second_pass_fetches_nothing(host):
    tracked = answer_row()
    wanted = refs(f"{host.url}/a.png", f"{host.url}/photo.jpg")
    first = archive_images_for(tracked, wanted, fetcher=ImageFetcher(LOOPBACK))
    assert first.stored == 2 and host.total() == 2
    again = archive_images_for(tracked, wanted, fetcher=ImageFetcher(LOOPBACK))
    assert (again.stored, again.failed, again.already) == (0, 0, 2)
    assert host.total() == 2
    assert AnswerImage.objects.filter(tracked=tracked).count() == 2


@pytest.mark.django_db
def test_the_same_picture_from_two_urls_is_stored_once(host, media_root):
    tracked = answer_row()
    report = archive_images_for(
        tracked,
        refs(f"{host.url}/a.png", f"{host.url}/same-as-a.png"),
        fetcher=ImageFetcher(LOOPBACK),
    )
    assert report.stored == 2
    assert ArchivedImage.objects.count() == 1
    assert AnswerImage.objects.filter(tracked=tracked, image__isnull=False).count() == 2
    image = ArchivedImage.objects.get()
    assert stored_files(media_root) == {f"{image.sha256}.webp", f"{image.thumb_sha256}.webp"}


@pytest.mark.django_db
def test_a_url_another_answer_archived_is_not_fetched_again(host):
    url = f"{host.url}/photo.jpg"
    archive_images_for(answer_row("one"), refs(url), fetcher=ImageFetcher(LOOPBACK))
    second = answer_row("two")
    report = archive_images_for(second, refs(url), fetcher=ImageFetcher(LOOPBACK))
    assert report.stored == 1 and host.hits["/photo.jpg"] == 1
    assert AnswerImage.objects.get(tracked=second).image == ArchivedImage.objects.get()


@pytest.mark.django_db
def test_failures_keep_their_reason_and_only_passing_ones_are_retried(host):
    tracked = answer_row()
    wanted = refs(f"{host.url}/missing.png", f"{host.url}/busy.png", f"{host.url}/page.png")
    report = archive_images_for(tracked, wanted, fetcher=ImageFetcher(LOOPBACK))
    assert (report.stored, report.failed) == (0, 3)
    rows = {r.url.rsplit("/", 1)[1]: r for r in AnswerImage.objects.filter(tracked=tracked)}
    assert rows["missing.png"].reason == "The image host answered HTTP 404."
    assert not rows["missing.png"].retryable
    assert rows["busy.png"].retryable and "503" in rows["busy.png"].reason
    assert "web page" in rows["page.png"].reason and not rows["page.png"].retryable

    for _ in range(MAX_ATTEMPTS + 2):
        archive_images_for(tracked, fetcher=ImageFetcher(LOOPBACK))
    assert host.hits["/missing.png"] == 1 and host.hits["/page.png"] == 1
    assert host.hits["/busy.png"] == MAX_ATTEMPTS
    assert AnswerImage.objects.get(pk=rows["busy.png"].pk).attempts == MAX_ATTEMPTS

    # Staff (or --retry-failed) can still ask for every failed image once more.
    host.files["/missing.png"] = (200, png(10, 10))
    report = archive_images_for(tracked, retry_failed=True, fetcher=ImageFetcher(LOOPBACK))
    assert (report.stored, report.failed) == (1, 2)
    assert AnswerImage.objects.get(pk=rows["missing.png"].pk).status == ImageStatus.STORED


@pytest.mark.django_db
def test_the_answer_budget_leaves_the_rest_pending(host):
    tracked = answer_row()
    with RawServer(drip(60)) as slow:
        wanted = refs(slow.url("/slow.png"), f"{host.url}/a.png", f"{host.url}/photo.jpg")
        policy = FetchPolicy(allow=frozenset({"loopback"}), timeout=30)
        report = archive_images_for(
            tracked, wanted, budget_seconds=1.5, fetcher=ImageFetcher(policy)
        )
    assert (report.stored, report.failed, report.left) == (0, 1, 2)
    slow_row = AnswerImage.objects.get(tracked=tracked, position=0)
    assert slow_row.status == ImageStatus.FAILED and slow_row.retryable
    assert AnswerImage.objects.filter(tracked=tracked, status=ImageStatus.PENDING).count() == 2
    assert host.total() == 0

    later = archive_images_for(tracked, fetcher=ImageFetcher(LOOPBACK))
    assert later.stored == 2


@pytest.mark.django_db
def test_a_row_another_process_is_fetching_is_left_alone(host):
    tracked = answer_row()
    wanted = refs(f"{host.url}/a.png")
    archive_images_for(tracked, wanted, budget_seconds=0.001, fetcher=ImageFetcher(LOOPBACK))
    AnswerImage.objects.filter(tracked=tracked).update(
        claimed_until=timezone.now() + timedelta(minutes=1)
    )
    report = archive_images_for(tracked, fetcher=ImageFetcher(LOOPBACK))
    assert (report.stored, report.left) == (0, 1) and host.total() == 0
    AnswerImage.objects.filter(tracked=tracked).update(
        claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert archive_images_for(tracked, fetcher=ImageFetcher(LOOPBACK)).stored == 1


@pytest.mark.django_db
def test_private_addresses_are_refused_without_the_setting(host, settings):
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = False
    tracked = answer_row()
    report = archive_images_for(tracked, refs(f"{host.url}/a.png"))
    assert report.failed == 1 and "loopback" in report.failures[0][1]
    assert host.total() == 0


def _completion_with(urls: list[str]) -> dict:
    return {
        "choices": [{"message": {"content": "An answer."}}],
        "images": [{"image_url": u, "title": f"Picture {i}"} for i, u in enumerate(urls)],
    }


@pytest.mark.django_db
def test_the_command_archives_old_answers_and_resumes(host):
    answer_row("one", _completion_with([f"{host.url}/a.png", f"{host.url}/busy.png"]))
    answer_row("two", _completion_with([f"{host.url}/photo.jpg"]))
    answer_row("three", _completion_with([]))
    out = StringIO()
    call_command("archive_images", stdout=out)
    text = out.getvalue()
    assert "[1/3]" in text and "[2/3]" in text
    assert "1 stored, 1 failed" in text and "HTTP 503" in text
    assert "3 answers (1 with nothing to do): 2 images stored, 1 failed." in text
    assert host.total() == 3

    out = StringIO()
    call_command("archive_images", stdout=out)
    assert "[1/3]" in out.getvalue() and "0 stored, 1 failed, 1 already kept" in out.getvalue()
    assert host.hits["/a.png"] == 1 and host.hits["/busy.png"] == 2

    for _ in range(MAX_ATTEMPTS):
        call_command("archive_images", stdout=StringIO())
    out = StringIO()
    call_command("archive_images", stdout=out)
    assert out.getvalue().strip() == "3 answers (3 with nothing to do): 0 images stored, 0 failed."

    host.files["/busy.png"] = (200, png(20, 20))
    out = StringIO()
    call_command("archive_images", "--retry-failed", stdout=out)
    assert "1 stored, 0 failed, 1 already kept" in out.getvalue()


@pytest.mark.django_db
def test_what_the_renderer_and_pages_read_back(host):
    tracked = answer_row()
    wanted = [
        ImageRef(url=f"{host.url}/photo.jpg", caption="A photo", origin_url="https://o.test/",
                 width=2400, height=1600),
        ImageRef(url=f"{host.url}/missing.png", caption="Gone"),
        ImageRef(url=f"{host.url}/a.png", kind="inline"),
    ]  # fmt: skip
    archive_images_for(tracked, wanted, budget_seconds=30, fetcher=ImageFetcher(LOOPBACK))
    found = image_copies(tracked.pk)
    assert list(found) == [r.url for r in wanted]
    photo_copy = found[f"{host.url}/photo.jpg"]
    image = ArchivedImage.objects.get(source_format="JPEG")
    assert photo_copy.stored
    assert photo_copy.full_url == f"/images/{image.sha256}.webp"
    assert photo_copy.thumb_url == f"/images/{image.thumb_sha256}.webp"
    assert (photo_copy.width, photo_copy.height) == (1600, 1067)
    assert (photo_copy.thumb_width, photo_copy.thumb_height) == (400, 267)
    gone = found[f"{host.url}/missing.png"]
    row = AnswerImage.objects.get(tracked=tracked, url=f"{host.url}/missing.png")
    assert (row.status, gone.full_url, row.caption) == (ImageStatus.FAILED, "", "Gone")
    assert gone.reason == "The image host answered HTTP 404."

    summary = image_summary(tracked.pk)
    assert (summary.stored, summary.failed, summary.pending) == (2, 1, 0)
    assert summary.failures == [(f"{host.url}/missing.png", "The image host answered HTTP 404.")]
    usage = disk_usage()
    assert usage.images == 2
    assert usage.stored_bytes == sum(i.size + i.thumb_size for i in ArchivedImage.objects.all())
    assert usage.source_bytes == len(host.files["/photo.jpg"][1]) + len(host.files["/a.png"][1])
