"""Stored images and bundles whose files are gone (a restore without the media folder): the
permalink, the image views and ``manage.py check_media`` notice, the page says so, and the
refresher or ``manage.py archive_images`` fetch the pictures again and rebuild the bundle."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.core.management import call_command
from django.utils import timezone

from sonarweb.media import integrity
from sonarweb.media.background import archive_due_images
from sonarweb.media.integrity import MISSING_REASON, check_files, file_missing
from sonarweb.media.models import AnswerBundle, AnswerImage, ArchivedImage, ImageStatus
from sonarweb.tracker.archive.images import build_and_store, build_due_bundles
from sonarweb.tracker.archive.store import rerender_many
from sonarweb.tracker.models import ShareLink, TrackedRequest

from .conftest import OWNER_KEY, poll

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_images(settings):
    settings.SONARWEB_IMAGES_ALLOW_PRIVATE = True


def media_dir() -> Path:
    return Path(storages["media"].location)


def settled_answer(simulator, owner, images: int = 3) -> TrackedRequest:
    """An archived answer whose images are stored and whose bundle is built."""
    job_id = simulator.add_job(
        OWNER_KEY, queue_seconds=0, run_seconds=0, words=200, sources=2, images=images
    )
    tracked = poll(TrackedRequest.objects.create(request_id=job_id, added_by=owner))
    settle()
    assert AnswerImage.objects.filter(tracked=tracked).stored().count() == images
    assert AnswerBundle.objects.filter(tracked=tracked).exists()
    return tracked


def settle() -> None:
    """The refresher's image work: fetch what is due, render again, build the bundles."""
    rerender_many(archive_due_images(10))
    build_due_bundles(10)


def files_of(image: ArchivedImage) -> list[Path]:
    return [media_dir() / image.name, media_dir() / image.thumb_name]


def remove_files(image: ArchivedImage) -> None:
    for path in files_of(image):
        path.unlink(missing_ok=True)


def stored_images(tracked: TrackedRequest) -> list[ArchivedImage]:
    rows = AnswerImage.objects.filter(tracked=tracked).select_related("image").order_by("position")
    return [row.image for row in rows]


def page_of(client, tracked: TrackedRequest) -> str:
    response = client.get(f"/r/{tracked.slug}/")
    assert response.status_code == 200
    return response.content.decode()


def served(client, url: str) -> bytes:
    response = client.get(url)
    assert response.status_code == 200, url
    return b"".join(response.streaming_content)


def test_the_permalink_notices_a_missing_file_says_so_and_the_refresher_fetches_it_again(
    sim_server, simulator, owner, owner_client
):
    tracked = settled_answer(simulator, owner)
    assert "Images: 3 archived</summary>" in page_of(owner_client, tracked)
    gone = stored_images(tracked)[0]
    before = (media_dir() / gone.name).read_bytes()
    remove_files(gone)

    page = page_of(owner_client, tracked)
    assert "Images: 2 archived, 1 could not be archived" in page
    assert MISSING_REASON in page
    row = AnswerImage.objects.get(tracked=tracked, position=0)
    assert (row.status, row.image, row.retryable, row.attempts) == (
        ImageStatus.FAILED,
        None,
        True,
        0,
    )
    # The broken row is gone, so fetching again stores the picture and its files anew.
    assert not ArchivedImage.objects.filter(pk=gone.pk).exists()

    settle()
    row.refresh_from_db()
    assert row.status == ImageStatus.STORED and row.reason == ""
    assert (media_dir() / row.image.name).read_bytes() == before
    page = page_of(owner_client, tracked)
    assert "Images: 3 archived</summary>" in page and MISSING_REASON not in page
    assert served(owner_client, f"/images/{row.image.sha256}.webp") == before


def test_an_image_view_asked_for_a_missing_file_answers_404_and_marks_the_image(
    sim_server, simulator, owner, owner_client, anon_client
):
    tracked = settled_answer(simulator, owner, images=2)
    first, second = stored_images(tracked)
    remove_files(first)
    assert owner_client.get(f"/images/{first.sha256}.webp").status_code == 404
    row = AnswerImage.objects.get(tracked=tracked, position=0)
    assert row.status == ImageStatus.FAILED and row.reason == MISSING_REASON
    # Asked again, it is simply unknown now: no more work for a missing file.
    assert owner_client.get(f"/images/{first.sha256}.webp").status_code == 404

    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    (media_dir() / second.thumb_name).unlink()
    assert anon_client.get(f"/s/{link.token}/images/{second.thumb_sha256}.webp").status_code == 404
    row = AnswerImage.objects.get(tracked=tracked, position=1)
    assert row.status == ImageStatus.FAILED and row.reason == MISSING_REASON


def test_a_missing_file_noticed_by_an_image_view_changes_the_permalinks_etag(
    sim_server, simulator, owner, owner_client
):
    """The archive names answers only by id; it says what changed with a signal
    (``media.signals.answers_changed``) and the tracker marks the row changed."""
    tracked = settled_answer(simulator, owner, images=1)
    url = f"/r/{tracked.slug}/"
    owner_client.get(url)  # the first visit makes the CSRF secret the page's ETag includes
    etag = owner_client.get(url)["ETag"]
    assert owner_client.get(url, headers={"if-none-match": etag}).status_code == 304
    [image] = stored_images(tracked)
    remove_files(image)
    assert owner_client.get(f"/images/{image.sha256}.webp").status_code == 404
    again = owner_client.get(url, headers={"if-none-match": etag})
    assert again.status_code == 200 and MISSING_REASON in again.content.decode()


def test_a_file_that_is_there_is_never_marked(sim_server, simulator, owner):
    tracked = settled_answer(simulator, owner, images=1)
    [image] = stored_images(tracked)
    assert file_missing(image.sha256) == 0
    assert AnswerImage.objects.get(tracked=tracked).status == ImageStatus.STORED
    report = check_files()
    assert (report.images, report.missing_images, report.missing_bundles) == (1, 0, 0)


def test_check_media_after_a_restore_without_the_media_folder(
    sim_server, simulator, owner, owner_client
):
    tracked = settled_answer(simulator, owner)
    other = settled_answer(simulator, owner, images=1)
    before = {image.sha256 for image in stored_images(tracked)}
    shutil.rmtree(media_dir())

    out = io.StringIO()
    call_command("check_media", "--dry-run", stdout=out)
    assert "4 image(s) and 2 bundle(s) have their file missing, in 2 answer(s)" in out.getvalue()
    assert AnswerImage.objects.stored().count() == 4  # a dry run changes nothing

    out = io.StringIO()
    call_command("check_media", stdout=out)
    assert "Marked 4 image(s) to be fetched again and rendered 2 answer(s) again" in out.getvalue()
    assert not AnswerImage.objects.stored().exists()
    assert set(AnswerImage.objects.values_list("reason", flat=True)) == {MISSING_REASON}
    assert not AnswerBundle.objects.exists()
    # The page says so, in the summary and in place of each picture.
    page = page_of(owner_client, tracked)
    assert "Images: 0 archived, 3 could not be archived" in page
    assert f"Not archived: {MISSING_REASON}" in page
    assert "Archive (.zip) being prepared" in page

    out = io.StringIO()
    call_command("archive_images", stdout=out)
    assert "4 images stored" in out.getvalue()
    build_due_bundles(10)
    page = page_of(owner_client, tracked)
    assert "Images: 3 archived</summary>" in page
    # The same pictures again, under the same names (their bytes' hashes), served from disk.
    assert {image.sha256 for image in stored_images(tracked)} == before
    shas = re.findall(r'<img src="/images/([0-9a-f]{64})\.webp"', page)
    assert len(shas) == 3
    for sha in shas:
        assert hashlib.sha256(served(owner_client, f"/images/{sha}.webp")).hexdigest() == sha
    for answer in (tracked, other):
        assert served(owner_client, f"/r/{answer.slug}/archive.zip").startswith(b"PK")
    assert check_files().missing_images == 0


def test_a_bundle_whose_file_is_gone_is_not_offered_and_is_built_again(
    sim_server, simulator, owner, owner_client
):
    tracked = settled_answer(simulator, owner, images=1)
    bundle = AnswerBundle.objects.get(tracked=tracked)
    (media_dir() / bundle.name).unlink()
    assert owner_client.get(f"/r/{tracked.slug}/archive.zip").status_code == 404
    assert not AnswerBundle.objects.filter(tracked=tracked).exists()
    assert "Archive (.zip) being prepared" in page_of(owner_client, tracked)
    assert build_due_bundles(10) == 1
    assert served(owner_client, f"/r/{tracked.slug}/archive.zip").startswith(b"PK")


def test_a_bundle_is_not_built_while_a_stored_file_is_missing(sim_server, simulator, owner):
    tracked = settled_answer(simulator, owner, images=2)
    AnswerBundle.objects.filter(tracked=tracked).delete()
    remove_files(stored_images(tracked)[1])
    assert build_and_store(tracked.pk) is None
    assert AnswerImage.objects.get(tracked=tracked, position=1).reason == MISSING_REASON
    settle()
    assert AnswerBundle.objects.filter(tracked=tracked).exists()


def test_the_refresher_chore_checks_when_it_starts_then_every_few_hours(
    sim_server, simulator, owner, monkeypatch
):
    from sonarweb.tracker.following import chores

    # The line chores.CHORES is to hold (given to the lead; chores.py is not ours).
    chore = chores.Chore("check-media", integrity.check_missing, integrity.CHECK_EVERY)
    assert chore.help.startswith("Mark stored images and bundles whose files are missing")
    monkeypatch.setattr(chores, "CHORES", (chore,))
    chores.forget_schedule()
    tracked = settled_answer(simulator, owner, images=2)
    shutil.rmtree(media_dir())
    now = timezone.now()
    # At once in a new process (a restore has just happened), then every CHECK_EVERY.
    assert chores.run_due(now) == {"check-media": 3}  # two images and the bundle
    assert AnswerImage.objects.filter(tracked=tracked, reason=MISSING_REASON).count() == 2
    assert chores.run_due(now + timedelta(minutes=5)) == {}
    assert chores.run_due(now + integrity.CHECK_EVERY) == {"check-media": 0}
    chores.forget_schedule()
