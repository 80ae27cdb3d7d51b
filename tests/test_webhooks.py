"""Completion webhooks, live over real HTTP: a receiver on loopback records what it is sent.

The outbox is written in the status change's transaction (by the refresher's own write
paths, against the simulator); ``deliver_due`` (the refresher's ``webhooks`` chore) posts;
the receiver checks Standard Webhooks signatures with the ``standardwebhooks`` library.
Retries, 410, 429, disabling, the SSRF refusals (checked on the address connected to, before
a byte is sent) and the staff pages are covered too.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any

import pytest
from django.core import mail
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from sonarweb.simulator.server import RunningServer, serve
from sonarweb.tracker.following import chores
from sonarweb.tracker.following.polling import store
from sonarweb.tracker.models import AnswerArchive, AppState, TrackedRequest
from sonarweb.webhooks import conf, outbox, sender, signing
from sonarweb.webhooks import delivery as outbox_delivery
from sonarweb.webhooks.models import Attempt, Delivery, DeliveryState, Endpoint, Event, Format

from .conftest import OWNER_KEY, archived_request, make_member, poll

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/SeCrEtToKeNvAlUeWXYZ"
SONAR_ID = "3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e17"


# -- the receiver ---------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b"ok"
    sleep: float = 0.0
    endless: bool = False


class Receiver:
    """A WSGI app that records every request and answers from a script (then ``default``)."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.script: list[Answer] = []
        self.default = Answer()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        with self._lock:
            self.hits.append(Hit(environ.get("PATH_INFO", ""), headers, body))
            answer = self.script.pop(0) if self.script else self.default
        if answer.sleep:
            time.sleep(answer.sleep)
        status = f"{answer.status} {HTTPStatus(answer.status).phrase}"
        start_response(status, [("Content-Type", "text/plain"), *answer.headers])
        if answer.endless:
            return _endless()
        return iter([answer.body])


def _endless() -> Iterator[bytes]:
    chunk = b"x" * 65536
    for _ in range(10_000):  # 640 MB: far more than anyone may read
        yield chunk


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, RunningServer]]:
    app = Receiver()
    with serve(app) as server:
        yield app, server


@pytest.fixture
def second_receiver() -> Iterator[tuple[Receiver, RunningServer]]:
    app = Receiver()
    with serve(app) as server:
        yield app, server


@pytest.fixture
def staff(db):
    user = make_member("sasha", None)
    user.is_staff = True
    user.save()
    return user


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def add_endpoint(
    url: str,
    *,
    format: str = Format.STANDARD,
    events: list[str] | None = None,
    allow_private: bool = True,
    name: str = "receiver",
) -> tuple[Endpoint, str]:
    endpoint = Endpoint(
        name=name,
        format=format,
        events=list(Event.values) if events is None else events,
        allow_private=allow_private,
    )
    endpoint.set_url(url)
    secret = ""
    if format == Format.STANDARD:
        secret = signing.new_secret()
        endpoint.set_secret(secret)
    endpoint.save()
    return endpoint, secret


def finished(owner, **fields: object) -> TrackedRequest:
    fields.setdefault("title", "Heat pumps in cold climates")
    return archived_request(owner, {"id": "resp_not_shown", "status": "COMPLETED"}, **fields)


def deliver(now=None) -> int:
    return outbox_delivery.deliver_due(now or timezone.now())


def only_delivery() -> Delivery:
    return Delivery.objects.select_related("endpoint").get()


# -- the outbox -----------------------------------------------------------------------------------


def test_a_finishing_run_enqueues_its_event(sim_server, simulator, owner, receiver):
    _, server = receiver
    endpoint, _ = add_endpoint(server.url + "/hook")
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=run_id, added_by=owner, title="Tides")
    assert not Delivery.objects.exists()
    poll(tracked)
    assert tracked.status == "COMPLETED" and tracked.has_answer
    row = only_delivery()
    assert row.endpoint == endpoint and row.event == Event.COMPLETED
    assert row.state == DeliveryState.PENDING and row.next_attempt_at is not None
    event = json.loads(row.payload)
    assert event["type"] == "request.completed"
    assert event["timestamp"]
    data = event["data"]
    assert data["id"] == tracked.slug and data["status"] == "COMPLETED"
    assert data["title"] == "Tides" and data["model"] == tracked.model
    assert data["cost_usd"] == pytest.approx(float(tracked.total_cost))
    assert data["permalink"].endswith(reverse("request_detail", args=[tracked.slug]))
    # sonarweb's own id and vocabulary: never the upstream id or its protocol.
    assert run_id not in row.payload and "resp_" not in row.payload
    # Polled again, nothing more is queued: the archive is written once.
    tracked.next_poll_at = timezone.now()
    tracked.save()
    poll(tracked)
    assert Delivery.objects.count() == 1


def test_a_failed_run_is_its_own_event_and_endpoints_get_only_what_they_want(
    sim_server, simulator, owner
):
    wants_failed, _ = add_endpoint("http://127.0.0.1:9/a", events=[Event.FAILED])
    add_endpoint("http://127.0.0.1:9/b", events=[Event.COMPLETED])
    switched_off, _ = add_endpoint("http://127.0.0.1:9/c", events=[Event.FAILED])
    Endpoint.objects.filter(pk=switched_off.pk).update(enabled=False)
    run_id = simulator.add_run(
        OWNER_KEY, queue_seconds=0, run_seconds=0, outcome="failed", error_message="No budget."
    )
    tracked = poll(TrackedRequest.objects.create(request_id=run_id, added_by=owner))
    assert tracked.status == "FAILED"
    row = only_delivery()
    assert row.endpoint == wants_failed and row.event == Event.FAILED
    assert json.loads(row.payload)["type"] == "request.failed"


def test_the_outbox_row_rolls_back_with_the_status_change(owner):
    add_endpoint("http://127.0.0.1:9/hook")
    with pytest.raises(RuntimeError), transaction.atomic():
        finished(owner, request_id="job-rolled-back")
        assert Delivery.objects.count() == 1  # written inside the transaction...
        raise RuntimeError("the transaction fails after the status change")
    assert not Delivery.objects.exists()  # ...and gone with it
    assert not TrackedRequest.objects.filter(request_id="job-rolled-back").exists()


def test_a_failing_outbox_write_rolls_back_the_archive(sim_server, simulator, owner, monkeypatch):
    add_endpoint("http://127.0.0.1:9/hook")
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=0)
    tracked = TrackedRequest.objects.create(request_id=run_id, added_by=owner)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the outbox cannot be written")

    monkeypatch.setattr(Delivery.objects, "bulk_create", broken)
    poll(tracked)
    # One transaction: no event, so no final status or archive either (polled again later).
    assert tracked.status != "COMPLETED"
    assert not AnswerArchive.objects.filter(tracked=tracked).exists()
    monkeypatch.undo()
    tracked.next_poll_at = timezone.now()
    tracked.save()
    poll(tracked)
    assert tracked.status == "COMPLETED" and Delivery.objects.count() == 1


def test_retiring_enqueues_once(sim_server, simulator, owner):
    endpoint, _ = add_endpoint("http://127.0.0.1:9/hook", events=[Event.RETIRED])
    simulator.sonar_retired = True
    tracked = poll(TrackedRequest.objects.create(request_id=SONAR_ID, added_by=owner))
    assert tracked.state == AppState.RETIRED
    row = only_delivery()
    assert row.endpoint == endpoint and row.event == Event.RETIRED
    data = json.loads(row.payload)
    assert data["type"] == "request.retired"
    assert data["data"]["status"] == "RETIRED" and SONAR_ID not in row.payload
    # Written as RETIRED again: it already was, so nothing more is queued.
    store(tracked, state=AppState.RETIRED, next_poll_at=None)
    assert Delivery.objects.count() == 1


# -- delivering -----------------------------------------------------------------------------------


def test_a_delivery_is_signed_and_verifies(owner, receiver):
    app, server = receiver
    endpoint, secret = add_endpoint(server.url + "/hook")
    tracked = finished(owner)
    assert deliver() == 1
    assert len(app.hits) == 1
    hit = app.hits[0]
    assert hit.path == "/hook"
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["webhook-id"].startswith("msg_")
    event = Webhook(secret).verify(hit.body, hit.headers)
    assert event["type"] == "request.completed" and event["data"]["id"] == tracked.slug
    # Another secret does not verify it.
    with pytest.raises(Exception, match="signature"):
        Webhook(signing.new_secret()).verify(hit.body, hit.headers)
    row = only_delivery()
    assert row.state == DeliveryState.DELIVERED and row.attempts == 1
    assert row.last_status_code == 200 and row.last_error == "" and row.next_attempt_at is None
    assert list(Attempt.objects.values_list("number", "status_code")) == [(1, 200)]
    endpoint.refresh_from_db()
    assert endpoint.last_success_at is not None and endpoint.consecutive_failures == 0
    assert deliver() == 0 and len(app.hits) == 1  # delivered once


def test_a_500_is_retried_later_and_then_succeeds(owner, receiver):
    app, server = receiver
    _, secret = add_endpoint(server.url + "/hook")
    finished(owner)
    app.script = [Answer(500, body=b"database on fire")]
    now = timezone.now()
    assert deliver(now) == 1
    row = only_delivery()
    assert row.state == DeliveryState.PENDING and row.attempts == 1
    assert row.last_status_code == 500 and "database on fire" in row.last_error
    wait = (row.next_attempt_at - now).total_seconds()
    assert 60 <= wait < 65
    assert deliver(now + timedelta(seconds=30)) == 0 and len(app.hits) == 1
    assert deliver(now + timedelta(seconds=66)) == 1
    assert len(app.hits) == 2
    row.refresh_from_db()
    assert row.state == DeliveryState.DELIVERED and row.attempts == 2
    first, second = app.hits
    # The same message both times, signed afresh each time.
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    Webhook(secret).verify(second.body, second.headers)
    assert [a.status_code for a in Attempt.objects.all()] == [500, 200]


def test_repeated_failures_disable_the_endpoint_and_staff_are_told(
    owner, member, receiver, staff, staff_client, member_client, settings
):
    settings.SONARWEB_MAIL_ENABLED = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    app, server = receiver
    app.default = Answer(503, body=b"down for maintenance")
    endpoint, _ = add_endpoint(server.url + "/hook", name="Nightly job")
    finished(owner)
    now = timezone.now()
    waits = []
    for number in range(1, outbox_delivery.MAX_ATTEMPTS + 1):
        assert deliver(now) == 1, f"attempt {number} was not made"
        row = only_delivery()
        assert row.attempts == number
        if row.next_attempt_at is None:
            break
        waits.append(round((row.next_attempt_at - now).total_seconds() / 60))
        now = row.next_attempt_at + timedelta(seconds=1)
    # Backing off over about a day: 1, 5, 15 minutes, 1, 3, 6 and 12 hours.
    assert waits == [1, 5, 15, 60, 180, 360, 720]
    assert len(app.hits) == outbox_delivery.MAX_ATTEMPTS
    row = only_delivery()
    assert row.state == DeliveryState.FAILED
    endpoint.refresh_from_db()
    assert not endpoint.enabled and endpoint.disabled_automatically
    assert "in a row failed" in endpoint.disabled_reason
    # Staff see it on the webhooks page and on the team page, and get a mail.
    page = staff_client.get(reverse("webhooks")).content.decode()
    assert f'data-webhook-disabled="{endpoint.pk}"' in page and "Nightly job" in page
    team = staff_client.get(reverse("team")).content.decode()
    assert f'data-webhook-disabled="{endpoint.pk}"' in team
    assert reverse("webhooks") in team
    assert "data-webhook-disabled" not in member_client.get(reverse("team")).content.decode()
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [staff.email]
    assert "Nightly job" in mail.outbox[0].subject
    # Nothing is queued for a disabled endpoint; enabling it again lets waiting ones out.
    finished(owner, request_id="job-while-disabled")
    assert Delivery.objects.count() == 1
    staff_client.post(reverse("webhook_enable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.consecutive_failures == 0
    assert "data-webhook-disabled" not in staff_client.get(reverse("team")).content.decode()


def test_410_stops_and_disables_the_endpoint(owner, receiver):
    app, server = receiver
    app.default = Answer(410, body=b"gone")
    endpoint, _ = add_endpoint(server.url + "/hook")
    finished(owner)
    assert deliver() == 1
    row = only_delivery()
    assert row.state == DeliveryState.FAILED and row.next_attempt_at is None
    assert row.last_status_code == 410
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert deliver(timezone.now() + timedelta(days=2)) == 0
    assert len(app.hits) == 1


def test_429_retry_after_is_honoured(owner, receiver):
    app, server = receiver
    app.script = [Answer(429, headers=[("Retry-After", "120")], body=b"slow down")]
    endpoint, _ = add_endpoint(server.url + "/hook")
    finished(owner)
    now = timezone.now()
    assert deliver(now) == 1
    row = only_delivery()
    assert row.last_status_code == 429 and row.state == DeliveryState.PENDING
    assert 120 <= (row.next_attempt_at - now).total_seconds() < 125
    # Not a minute later (the backoff's first step): after the two minutes asked for.
    assert deliver(now + timedelta(seconds=90)) == 0 and len(app.hits) == 1
    assert deliver(now + timedelta(seconds=126)) == 1 and len(app.hits) == 2
    row.refresh_from_db()
    assert row.state == DeliveryState.DELIVERED
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 0 and endpoint.enabled


def test_retry_after_as_a_date() -> None:
    now = timezone.now()
    later = (now + timedelta(minutes=10)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 590 <= sender.retry_after_seconds(later, now) <= 600
    assert sender.retry_after_seconds("86400000") == sender.MAX_RETRY_AFTER_SECONDS
    assert sender.retry_after_seconds("soon") is None


def test_an_attempt_ends_by_its_total_deadline(owner, receiver, monkeypatch):
    app, server = receiver
    app.script = [Answer(sleep=4.0)]
    monkeypatch.setattr(sender, "TOTAL_SECONDS", 1.0)
    add_endpoint(server.url + "/hook")
    finished(owner)
    started = time.monotonic()
    assert deliver() == 1
    assert time.monotonic() - started < 3.0
    row = only_delivery()
    assert row.last_status_code is None and "within 1 s" in row.last_error
    assert row.state == DeliveryState.PENDING


def test_an_endless_answer_is_read_only_so_far(owner, receiver):
    app, server = receiver
    app.script = [Answer(endless=True)]
    add_endpoint(server.url + "/hook")
    finished(owner)
    started = time.monotonic()
    assert deliver() == 1
    assert time.monotonic() - started < 5.0
    assert only_delivery().state == DeliveryState.DELIVERED


def test_a_claim_is_granted_once_and_a_dead_senders_claim_runs_out(owner):
    add_endpoint("http://127.0.0.1:9/hook")
    finished(owner)
    now = timezone.now()
    first = outbox_delivery.claim_next(now)
    assert first is not None
    assert outbox_delivery.claim_next(now) is None
    assert outbox_delivery.claim_next(now + timedelta(seconds=10)) is None
    # The process that claimed it died: once the claim runs out it is due again.
    later = now + timedelta(seconds=outbox_delivery.claim_seconds() + 1)
    again = outbox_delivery.claim_next(later)
    assert again is not None and again.delivery.pk == first.delivery.pk
    assert again.holder != first.holder


def test_the_refresher_runs_the_chore(owner, receiver):
    app, server = receiver
    add_endpoint(server.url + "/hook")
    finished(owner)
    assert "webhooks" in chores.BY_NAME
    done = chores.run_due(timezone.now())
    assert done["webhooks"] == 1 and len(app.hits) == 1


# -- SSRF -----------------------------------------------------------------------------------------


def test_loopback_is_refused_without_the_opt_in(owner, receiver):
    app, server = receiver
    add_endpoint(server.url + "/hook", allow_private=False)
    finished(owner)
    assert deliver() == 1
    assert app.hits == []  # refused before a byte was sent
    row = only_delivery()
    assert row.last_status_code is None and "loopback" in row.last_error
    assert row.state == DeliveryState.PENDING


def test_a_name_resolving_to_loopback_is_refused(owner, receiver, monkeypatch):
    app, server = receiver
    # What the socket would connect to is checked, not what the URL says.
    monkeypatch.setattr(outbox_delivery, "resolver", lambda host, port: ["127.0.0.1"])
    add_endpoint(f"http://hooks.example.test:{server.port}/hook", allow_private=False)
    finished(owner)
    assert deliver() == 1
    assert app.hits == []
    assert "loopback (127.0.0.1)" in only_delivery().last_error


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://10.20.30.40:8080/hook", "private"),
        ("http://192.168.1.10/hook", "private"),
        ("http://[::1]:9/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ],
)
def test_private_and_metadata_addresses_are_refused(owner, url, kind):
    add_endpoint(url, allow_private=False)
    finished(owner)
    started = time.monotonic()
    assert deliver() == 1
    assert time.monotonic() - started < 2.0  # refused, not tried
    row = only_delivery()
    assert row.last_status_code is None and f"is {kind}" in row.last_error


def test_metadata_is_refused_even_with_the_opt_in(owner, receiver, monkeypatch):
    app, server = receiver
    monkeypatch.setattr(outbox_delivery, "resolver", lambda host, port: ["169.254.169.254"])
    add_endpoint(f"http://metadata.example.test:{server.port}/", allow_private=True)
    finished(owner)
    assert deliver() == 1
    assert "link-local" in only_delivery().last_error and app.hits == []


def test_a_redirect_is_not_followed(owner, receiver, second_receiver):
    app, server = receiver
    other, other_server = second_receiver
    app.default = Answer(302, headers=[("Location", other_server.url + "/stolen")], body=b"")
    add_endpoint(server.url + "/hook", allow_private=True)
    finished(owner)
    assert deliver() == 1
    assert len(app.hits) == 1 and other.hits == []
    row = only_delivery()
    assert row.last_status_code == 302 and "redirect" in row.last_error
    assert row.state == DeliveryState.PENDING


def test_a_redirecting_target_without_the_opt_in_gets_nothing(owner, receiver, second_receiver):
    app, server = receiver
    other, other_server = second_receiver
    app.default = Answer(307, headers=[("Location", other_server.url + "/stolen")], body=b"")
    add_endpoint(server.url + "/hook", allow_private=False)
    finished(owner)
    assert deliver() == 1
    assert app.hits == [] and other.hits == []
    assert "loopback" in only_delivery().last_error


def test_the_server_can_forbid_the_opt_in(owner, receiver, settings, staff_client):
    settings.SONARWEB_WEBHOOKS_ALLOW_PRIVATE = False
    app, server = receiver
    add_endpoint(server.url + "/hook", allow_private=True)
    finished(owner)
    assert deliver() == 1
    assert app.hits == [] and "loopback" in only_delivery().last_error
    # The form refuses a private address whatever the box says.
    response = staff_client.post(
        reverse("webhook_add"),
        {
            "name": "LAN chat",
            "format": Format.SLACK,
            "url": "http://192.168.1.20/hooks/abc",
            "events": [Event.COMPLETED],
            "allow_private": "on",
        },
    )
    assert response.status_code == 422
    assert "private" in response.content.decode()
    assert Endpoint.objects.count() == 1


# -- formats --------------------------------------------------------------------------------------


def test_slack_gets_a_thin_message(owner, receiver):
    app, server = receiver
    add_endpoint(server.url + "/services/T0/B0/abcd", format=Format.SLACK)
    tracked = finished(owner, title="<!channel> Cold & heat", total_cost=Decimal("0.4234"))
    assert deliver() == 1
    hit = app.hits[0]
    assert "webhook-signature" not in hit.headers
    message = json.loads(hit.body)
    permalink = conf.base_url() + reverse("request_detail", args=[tracked.slug])
    text = message["text"]
    assert text.startswith(f"<{permalink}|&lt;!channel&gt; Cold &amp; heat>")
    assert text.endswith(": Completed · $0.42")
    assert "<!channel>" not in hit.body.decode()  # nobody is mentioned
    assert message["blocks"][0]["text"]["type"] == "mrkdwn"
    assert set(message) == {"text", "blocks", "unfurl_links"}


def test_the_slack_url_is_encrypted_and_never_shown(staff_client):
    response = staff_client.post(
        reverse("webhook_add"),
        {"name": "#research", "format": Format.SLACK, "url": SLACK_URL, "events": ["completed"]},
    )
    assert response.status_code == 303
    endpoint = Endpoint.objects.get()
    assert endpoint.url() == SLACK_URL and endpoint.secret_encrypted == ""
    assert SLACK_URL not in endpoint.url_encrypted and "SeCrEt" not in endpoint.url_encrypted
    assert endpoint.url_shown == "hooks.slack.com/…WXYZ"
    assert "SeCrEt" not in repr(endpoint)
    for url in (reverse("webhooks"), reverse("webhook_detail", args=[endpoint.pk])):
        page = staff_client.get(url).content.decode()
        assert "hooks.slack.com/…WXYZ" in page
        assert "SeCrEt" not in page and "B0BBBBBBB" not in page
    # Saving the settings with the URL left empty keeps it.
    response = staff_client.post(
        reverse("webhook_detail", args=[endpoint.pk]),
        {"name": "#research-feed", "url": "", "events": ["completed", "failed"]},
    )
    assert response.status_code == 303
    endpoint.refresh_from_db()
    assert endpoint.name == "#research-feed" and endpoint.url() == SLACK_URL
    assert endpoint.events == ["completed", "failed"]


def test_a_standard_endpoints_secret_is_shown_once(staff_client):
    response = staff_client.post(
        reverse("webhook_add"),
        {
            "name": "Report job",
            "format": Format.STANDARD,
            "url": "https://reports.example.com/hooks/sonarweb",
            "events": ["completed", "failed"],
        },
    )
    assert response.status_code == 201
    endpoint = Endpoint.objects.get()
    secret = endpoint.secret()
    assert secret.startswith("whsec_") and secret in response.content.decode()
    Webhook(secret)  # the library takes it
    assert secret not in endpoint.secret_encrypted
    detail = staff_client.get(reverse("webhook_detail", args=[endpoint.pk])).content.decode()
    assert secret not in detail and "https://reports.example.com/hooks/sonarweb" in detail


# -- the staff pages ------------------------------------------------------------------------------


def test_only_staff_manage_webhooks(member_client):
    endpoint, _ = add_endpoint("https://example.com/hook")
    assert member_client.get(reverse("webhooks")).status_code == 403
    assert member_client.get(reverse("webhook_add")).status_code == 403
    assert member_client.get(reverse("webhook_detail", args=[endpoint.pk])).status_code == 403
    assert member_client.post(reverse("webhook_delete", args=[endpoint.pk])).status_code == 403
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()
    assert Client().get(reverse("webhooks")).status_code == 302  # sign in first


def test_the_form_refuses_what_would_be_refused(staff_client):
    def add(url: str, **extra: str) -> Any:
        data = {"name": "x", "format": Format.STANDARD, "url": url, "events": ["completed"]}
        return staff_client.post(reverse("webhook_add"), {**data, **extra})

    assert add("ftp://example.com/hook").status_code == 422
    assert add("https://user:pw@example.com/hook").status_code == 422
    assert "link-local" in add("http://169.254.169.254/", allow_private="on").content.decode()
    refused = add("http://localhost:8080/hook")
    assert refused.status_code == 422 and "allow private network" in refused.content.decode()
    assert add("http://localhost:8080/hook", allow_private="on").status_code == 201
    endpoint = Endpoint.objects.get()
    assert endpoint.allow_private
    response = staff_client.post(reverse("webhook_add"), {"name": "", "url": "", "events": []})
    assert response.status_code == 422


def test_the_endpoint_page_lists_deliveries_and_redelivers(owner, receiver, staff):
    app, server = receiver
    app.script = [Answer(500, body=b"oops")]
    endpoint, secret = add_endpoint(server.url + "/hook", name="Reports")
    tracked = finished(owner)
    deliver()
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    page = client.get(reverse("webhook_detail", args=[endpoint.pk]))
    html = page.content.decode()
    row = only_delivery()
    assert "request.completed" in html and "data-status-code>500<" in html and "oops" in html
    assert tracked.display_title in html
    url = reverse("webhook_redeliver", args=[row.pk])
    assert f'action="{url}"' in html
    # Without the CSRF token, no.
    assert client.post(url).status_code == 403
    token = client.cookies["csrftoken"].value
    response = client.post(url, {"csrfmiddlewaretoken": token})
    assert response.status_code == 303
    assert Delivery.objects.count() == 2
    again = Delivery.objects.exclude(pk=row.pk).get()
    assert again.message_id == row.message_id and again.payload == row.payload
    assert deliver() == 1  # the redelivery (the original waits for its backoff)
    assert len(app.hits) == 2
    Webhook(secret).verify(app.hits[1].body, app.hits[1].headers)
    assert app.hits[1].headers["webhook-id"] == row.message_id


def test_staff_disable_and_delete(staff_client):
    endpoint, _ = add_endpoint("https://example.com/hook")
    staff_client.post(reverse("webhook_disable", args=[endpoint.pk]))
    endpoint.refresh_from_db()
    assert not endpoint.enabled and not endpoint.disabled_automatically
    # Disabled by staff: no alarm on the team page.
    assert "data-webhook-disabled" not in staff_client.get(reverse("team")).content.decode()
    assert outbox.enqueue_finished(1, "COMPLETED") == 0
    confirm = staff_client.get(reverse("webhook_delete", args=[endpoint.pk]))
    assert (
        confirm.status_code == 200 and "Delete this webhook endpoint?" in confirm.content.decode()
    )
    response = staff_client.post(reverse("webhook_delete", args=[endpoint.pk]))
    assert response.status_code == 303 and response["Location"] == reverse("webhooks")
    assert not Endpoint.objects.exists()
