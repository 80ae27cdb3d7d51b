"""The sweep of stored images no answer shows and of bundles of removed answers
(sonarweb/media/cleanup.py), against real image hosts on loopback and a real media folder."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone

from sonarweb.media import archiving, cleanup, store
from sonarweb.media.archiving import ImageGone, archive_images_for, attach
from sonarweb.media.background import bundle_name
from sonarweb.media.decode import reencode
from sonarweb.media.fetch import FetchPolicy, ImageFetcher
from sonarweb.media.links import team_image_url
from sonarweb.media.models import AnswerBundle, AnswerImage, ArchivedImage, ImageStatus
from sonarweb.media.refs import ImageRef
from sonarweb.simulator.server import serve
from sonarweb.tracker.archive.images import build_and_store, sweep_media
from sonarweb.tracker.following import chores
from sonarweb.tracker.models import TrackedRequest

from .conftest import archived_request
from .media_helpers import ImageHost, photo, png

pytestmark = pytest.mark.django_db

LOOPBACK = FetchPolicy(allow=frozenset({"loopback"}), timeout=10)
LATER = timedelta(hours=2)  # past the sweep's grace period


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


@pytest.fixture
def host():
    app = ImageHost(
        {
            "/own.png": (200, png(800, 600, "teal")),
            "/shared.jpg": (200, photo(1200, 800)),
            "/again.png": (200, png(640, 480, "orange")),
        }
    )
    with serve(app) as server:
        app.url = server.url
        yield app


def stored_files(root) -> set[str]:
    return {p.name for p in root.rglob("*.webp")}


def files_of(*images: ArchivedImage) -> set[str]:
    return {f"{sha}.webp" for image in images for sha in (image.sha256, image.thumb_sha256)}


def answer(owner, request_id: str, host, *paths: str) -> TrackedRequest:
    """An archived answer of ``owner`` whose images (``paths`` on ``host``) are stored."""
    tracked = archived_request(owner, {"id": request_id, "status": "COMPLETED", "response": {}})
    refs = [ImageRef(url=f"{host.url}{path}", caption=path) for path in paths]
    report = archive_images_for(tracked, refs, fetcher=ImageFetcher(LOOPBACK))
    assert report.stored == len(paths)
    return tracked


def image_of(tracked: TrackedRequest, path: str) -> ArchivedImage:
    return AnswerImage.objects.get(tracked=tracked, url__endswith=path).image


def test_removing_a_request_frees_its_own_images_and_bundle_but_not_shared_ones(
    owner, owner_client, host, media_root
):
    removed = answer(owner, "to-remove", host, "/own.png", "/shared.jpg")
    kept = answer(owner, "to-keep", host, "/shared.jpg")
    own, shared = image_of(removed, "/own.png"), image_of(removed, "/shared.jpg")
    assert image_of(kept, "/shared.jpg") == shared
    bundle = build_and_store(removed.pk)
    assert bundle is not None and (media_root / bundle.name).exists()
    kept_bundle = build_and_store(kept.pk)
    assert stored_files(media_root) == files_of(own, shared)

    response = owner_client.post(f"/r/{removed.slug}/remove/")
    assert response.status_code == 303
    # The rows went with the request; the files and the stored image are still there.
    assert not AnswerBundle.objects.filter(tracked_id=removed.pk).exists()
    assert (media_root / bundle.name).exists()
    assert ArchivedImage.objects.count() == 2

    swept = sweep_media(timezone.now() + LATER, force=True)
    assert (swept.images, swept.bundles, swept.files) == (1, 1, 3)
    assert swept.bytes == own.size + own.thumb_size + bundle.size
    assert list(ArchivedImage.objects.all()) == [shared]
    assert stored_files(media_root) == files_of(shared)
    assert not (media_root / bundle.name).exists()
    assert (media_root / kept_bundle.name).exists()
    # The answer left shows its image as before.
    page = owner_client.get(f"/r/{kept.slug}/")
    assert page.status_code == 200
    assert owner_client.get(team_image_url(shared.sha256)).status_code == 200
    assert owner_client.get(team_image_url(own.sha256)).status_code == 404


def test_the_confirmation_page_says_what_happens_to_images(owner, owner_client, host):
    tracked = answer(owner, "confirm", host, "/own.png")
    html = owner_client.get(f"/r/{tracked.slug}/remove/").content.decode()
    assert "stored images and portable bundle are deleted within the hour" in html
    assert "except images another answer also shows" in html


def test_an_unused_image_is_kept_through_the_grace_period(owner, host, media_root):
    tracked = answer(owner, "recent", host, "/own.png")
    image = image_of(tracked, "/own.png")
    tracked.delete()
    assert cleanup.sweep_images(timezone.now()).images == 0
    assert cleanup.sweep_images(timezone.now() + cleanup.GRACE / 2).images == 0
    assert stored_files(media_root) == files_of(image)
    assert cleanup.sweep_images(timezone.now() + LATER).images == 1
    assert stored_files(media_root) == set()


def test_a_file_another_stored_image_names_is_kept(owner, host, media_root):
    tracked = answer(owner, "shares-a-file", host, "/own.png")
    image = image_of(tracked, "/own.png")
    other = answer(owner, "other", host, "/again.png")
    neighbour = image_of(other, "/again.png")
    # The neighbour's thumbnail is, byte for byte, the swept image's full rendition.
    ArchivedImage.objects.filter(pk=neighbour.pk).update(thumb_sha256=image.sha256)
    tracked.delete()
    swept = cleanup.sweep_images(timezone.now() + LATER)
    assert (swept.images, swept.files) == (1, 1)
    assert f"{image.sha256}.webp" in stored_files(media_root)
    assert f"{image.thumb_sha256}.webp" not in stored_files(media_root)


def test_the_sweep_runs_from_the_refresher_once_an_hour(owner, host, media_root, monkeypatch):
    tracked = answer(owner, "hourly", host, "/own.png")
    tracked.delete()
    now = timezone.now() + LATER
    chores.run_due(now)
    assert ArchivedImage.objects.count() == 0 and stored_files(media_root) == set()

    again = answer(owner, "hourly-2", host, "/again.png")
    again.delete()
    chores.run_due(now + timedelta(minutes=30))
    assert ArchivedImage.objects.count() == 1  # not yet: the last sweep was half an hour ago
    chores.run_due(now + cleanup.SWEEP_EVERY)
    assert ArchivedImage.objects.count() == 0


def test_the_command_sweeps_at_once(owner, host, media_root):
    tracked = answer(owner, "command", host, "/own.png")
    ArchivedImage.objects.update(created=timezone.now() - LATER)
    tracked.delete()
    out = StringIO()
    call_command("sweep_media", stdout=out)
    assert "Deleted 1 stored image(s) and 0 bundle(s): 2 file(s)" in out.getvalue()
    assert stored_files(media_root) == set()


def test_a_bundle_being_written_is_left_until_its_row_comes(owner, host, media_root):
    tracked = answer(owner, "writing", host, "/own.png")
    storage = store.media_storage()
    now = timezone.now()
    name = storage.save(bundle_name(tracked.pk, now), ContentFile(b"zip"))
    assert cleanup.sweep_bundles(now).bundles == 0  # its request exists, the file is new
    assert (media_root / name).exists()
    # A writer that stopped before its row: the file goes once it is older than the grace.
    assert cleanup.sweep_bundles(now + LATER).bundles == 1
    assert not (media_root / name).exists()


def test_a_removed_requests_bundle_goes_at_once_when_the_tracker_says_it_is_gone(
    owner, host, media_root
):
    """The archive cannot tell a removed request from one whose bundle row is being written
    (requests are the tracker's): alone it waits out the grace; the tracker's sweep says
    which answers still exist."""
    tracked = answer(owner, "removed", host, "/own.png")
    bundle = build_and_store(tracked.pk)
    tracked.delete()
    now = timezone.now()
    assert cleanup.sweep_bundles(now).bundles == 0
    assert (media_root / bundle.name).exists()
    assert sweep_media(now, force=True).bundles == 1
    assert not (media_root / bundle.name).exists()


def test_an_image_swept_before_its_use_is_recorded_is_stored_again(
    owner, host, media_root, monkeypatch
):
    first = answer(owner, "first", host, "/own.png")
    old = image_of(first, "/own.png")
    first.delete()
    ArchivedImage.objects.update(created=timezone.now() - LATER)

    second = archived_request(owner, {"id": "second", "status": "COMPLETED", "response": {}})
    real = archiving.archive_one
    found: list[ArchivedImage] = []

    def sweep_after_finding(row, fetcher, *, timeout):
        image = real(row, fetcher, timeout=timeout)
        found.append(image)
        if len(found) == 1:
            # The same picture was found stored (unused); the sweep deletes it right then.
            assert cleanup.sweep_images().images == 1
        return image

    monkeypatch.setattr(archiving, "archive_one", sweep_after_finding)
    report = archive_images_for(
        second, [ImageRef(url=f"{host.url}/own.png")], fetcher=ImageFetcher(LOOPBACK)
    )
    assert report.stored == 1 and report.failed == 0
    assert found[0].pk == old.pk and found[1].pk != old.pk
    new = image_of(second, "/own.png")
    assert new.pk == found[1].pk and new.sha256 == old.sha256
    assert AnswerImage.objects.get(tracked=second).status == ImageStatus.STORED
    assert stored_files(media_root) == files_of(new)
    # Fetched for the first answer, for the second, and once more since the copy was gone.
    assert host.hits["/own.png"] == 3


def test_attach_refuses_an_image_that_is_gone(owner, host):
    tracked = answer(owner, "gone", host, "/own.png")
    row = AnswerImage.objects.get(tracked=tracked)
    image = row.image
    ArchivedImage.objects.filter(pk=image.pk).update(created=timezone.now() - LATER)
    AnswerImage.objects.filter(pk=row.pk).update(image=None, status=ImageStatus.PENDING)
    assert cleanup.sweep_images().images == 1
    with pytest.raises(ImageGone):
        attach(row, image)
    assert AnswerImage.objects.get(pk=row.pk).status == ImageStatus.PENDING


def test_a_new_image_gets_back_files_the_sweep_deleted_while_it_was_stored(
    owner, host, media_root, monkeypatch
):
    data = png(500, 400, "purple")
    decoded = reencode(data, max_pixels=10**8)
    # An unused stored image whose thumbnail has the bytes of the new picture's full rendition.
    tracked = answer(owner, "neighbour", host, "/own.png")
    neighbour = image_of(tracked, "/own.png")
    storage = store.media_storage()
    store.save_rendition(decoded.full, storage)
    ArchivedImage.objects.filter(pk=neighbour.pk).update(
        thumb_sha256=decoded.full.sha256, created=timezone.now() - LATER
    )
    tracked.delete()

    real = store.save_rendition
    written: list[str] = []

    def sweep_between_files_and_row(rendition, storage=None):
        name = real(rendition, storage)
        written.append(name)
        if len(written) == 2:
            # Both files were found or written; the sweep deletes the neighbour's now.
            assert cleanup.sweep_images().images == 1
            assert not storage_has(decoded.full.sha256)
        return name

    def storage_has(sha256: str) -> bool:
        return f"{sha256}.webp" in stored_files(media_root)

    monkeypatch.setattr(store, "save_rendition", sweep_between_files_and_row)
    kept = store.keep(
        decoded, source_sha256=hashlib.sha256(data).hexdigest(), source_size=len(data)
    )
    assert storage_has(kept.sha256) and storage_has(kept.thumb_sha256)


@pytest.mark.django_db(transaction=True)
def test_a_sweep_at_the_moment_a_use_is_recorded_keeps_the_image(owner, host, media_root):
    """Two connections: one recording a use of an unused stored image (``attach``, its
    transaction held open); the sweep, at that moment, must leave the image and its files."""
    import threading

    from django.db import connection, transaction

    first = answer(owner, "first", host, "/own.png")
    image = image_of(first, "/own.png")
    second = archived_request(owner, {"id": "second", "status": "COMPLETED", "response": {}})
    archiving.record_refs(second, [ImageRef(url=f"{host.url}/own.png")])
    row = AnswerImage.objects.get(tracked=second)
    first.delete()
    ArchivedImage.objects.update(created=timezone.now() - LATER)

    locked, go = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def record_use() -> None:
        try:
            # ``attach`` inside a longer transaction: its lock lasts until the test says go.
            with transaction.atomic():
                attach(row, image)
                locked.set()
                assert go.wait(120)
        except BaseException as error:  # reported to the test below
            results["error"] = error
            locked.set()
        finally:
            connection.close()

    def sweep() -> None:
        try:
            results["swept"] = cleanup.sweep_images()
        except BaseException as error:
            results["error"] = error
        finally:
            connection.close()

    user = threading.Thread(target=record_use)
    user.start()
    assert locked.wait(120)
    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    if connection.vendor == "postgresql":
        # The locked row is skipped: the sweep ends while the use is still being recorded.
        sweeper.join(120)
        assert not sweeper.is_alive()
        go.set()
    else:
        # SQLite has one writer at a time: the sweep waits for the use to be recorded.
        go.set()
        sweeper.join(120)
    user.join(120)
    assert "error" not in results, results.get("error")
    assert results["swept"].images == 0
    assert AnswerImage.objects.get(pk=row.pk).image_id == image.pk
    assert stored_files(media_root) == files_of(image)
    # Once shown, the image is not the sweep's any more.
    assert cleanup.sweep_images(timezone.now() + LATER).images == 0
