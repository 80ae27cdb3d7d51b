"""Serving archived images: members see the team's images; a share link only its answer's."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from sonarweb.media.decode import reencode
from sonarweb.media.links import team_image_url
from sonarweb.media.models import AnswerImage, ImageStatus, storage_name, url_hash
from sonarweb.media.store import keep
from sonarweb.tracker.models import ShareLink, TrackedRequest, UpstreamStatus
from sonarweb.tracker.sharing.addresses import for_share, shared_image_url

from .media_helpers import photo, png

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }


def archived(data: bytes):
    return keep(
        reencode(data, max_pixels=40_000_000),
        source_sha256=hashlib.sha256(data).hexdigest(),
        source_size=len(data),
    )


def answer_with(request_id: str, image, status=ImageStatus.STORED) -> TrackedRequest:
    tracked = TrackedRequest.objects.create(request_id=request_id, status=UpstreamStatus.COMPLETED)
    url = f"https://images.example/{request_id}.png"
    AnswerImage.objects.create(
        tracked=tracked, url=url, url_hash=url_hash(url), status=status, image=image
    )
    return tracked


@pytest.fixture
def ours(owner):
    image = archived(photo(2000, 1200))
    tracked = answer_with("ours", image)
    return tracked, image


@pytest.fixture
def theirs():
    image = archived(png(300, 200, "orange"))
    return answer_with("theirs", image), image


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_members_get_any_team_image_with_immutable_caching(member_client, ours, theirs):
    for _, image in (ours, theirs):
        for sha in (image.sha256, image.thumb_sha256):
            response = member_client.get(f"/images/{sha}.webp")
            assert response.status_code == 200
            assert response["Content-Type"] == "image/webp"
            assert response["Cache-Control"] == "private, max-age=31536000, immutable"
            assert response["ETag"] == f'"{sha}"'
            with storages["media"].open(storage_name(sha)) as stored:
                assert body(response) == stored.read()
            assert hashlib.sha256(body(member_client.get(f"/images/{sha}.webp"))).hexdigest() == sha


def test_a_cached_copy_is_confirmed_without_a_body(member_client, ours):
    sha = ours[1].sha256
    response = member_client.get(f"/images/{sha}.webp", headers={"If-None-Match": f'"{sha}"'})
    assert response.status_code == 304 and response["ETag"] == f'"{sha}"'


def test_head_works_and_other_methods_do_not(member_client, ours):
    sha = ours[1].sha256
    assert member_client.head(f"/images/{sha}.webp").status_code == 200
    assert member_client.post(f"/images/{sha}.webp").status_code == 405


def test_unknown_and_missing_images_are_404(member_client, ours):
    assert member_client.get(f"/images/{'0' * 64}.webp").status_code == 404
    assert member_client.get("/images/not-a-hash.webp").status_code == 404
    storages["media"].delete(storage_name(ours[1].sha256))
    assert member_client.get(f"/images/{ours[1].sha256}.webp").status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(anon_client, ours):
    response = anon_client.get(f"/images/{ours[1].sha256}.webp")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_share_link_serves_its_answers_images(anon_client, ours, owner):
    tracked, image = ours
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    for sha in (image.sha256, image.thumb_sha256):
        response = anon_client.get(shared_image_url(link.token, sha))
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        assert response["Cache-Control"] == "private, max-age=31536000, immutable"
        assert hashlib.sha256(body(response)).hexdigest() == sha


def test_a_share_link_serves_no_other_answers_images(anon_client, ours, theirs, owner):
    link = ShareLink.objects.create(tracked=ours[0], created_by=owner)
    other = ShareLink.objects.create(tracked=theirs[0], created_by=owner)
    assert anon_client.get(shared_image_url(link.token, theirs[1].sha256)).status_code == 404
    assert anon_client.get(shared_image_url(other.token, ours[1].sha256)).status_code == 404
    assert anon_client.get(shared_image_url(other.token, theirs[1].sha256)).status_code == 200


def test_a_revoked_or_expired_link_serves_nothing(anon_client, ours, owner):
    tracked, image = ours
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    url = shared_image_url(link.token, image.sha256)
    assert anon_client.get(url).status_code == 200
    ShareLink.objects.filter(pk=link.pk).update(revoked_at=timezone.now())
    assert anon_client.get(url).status_code == 404
    expired = ShareLink.objects.create(
        tracked=tracked, created_by=owner, expires_at=timezone.now() - timedelta(minutes=1)
    )
    assert anon_client.get(shared_image_url(expired.token, image.sha256)).status_code == 404
    assert anon_client.get(shared_image_url("no-such-token", image.sha256)).status_code == 404


def test_a_share_link_serves_only_images_archived_for_its_answer(anon_client, ours, owner):
    tracked, image = ours
    # The same picture linked to the answer, but that row failed: not this answer's image.
    AnswerImage.objects.filter(tracked=tracked).update(status=ImageStatus.FAILED)
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    assert anon_client.get(shared_image_url(link.token, image.sha256)).status_code == 404


def test_rendered_addresses_move_under_the_token():
    sha = "a" * 64
    html = f'<a href="{team_image_url(sha)}"><img src="{team_image_url(sha)}" alt="/images/"></a>'
    shared = for_share(html, "tok")
    assert shared.count(f"/s/tok/images/{sha}.webp") == 2 and 'alt="/images/"' in shared
