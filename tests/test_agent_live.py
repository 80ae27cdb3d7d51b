"""Following Agent runs and retired Sonar jobs over real HTTP, against the simulator.

Each test drives the simulator's clock, lets the app poll as the refresher does, and checks
what the row, the archive and the page say.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sonarweb.simulator.app import Simulator
from sonarweb.simulator.server import RunningServer, serve
from sonarweb.tracker.following import refresher
from sonarweb.tracker.models import AnswerArchive, ApiKey, AppState, TrackedRequest
from tests.conftest import MEMBER_KEY, OWNER_KEY, poll

pytestmark = pytest.mark.live


def track(user, run_id: str) -> TrackedRequest:
    return TrackedRequest.objects.create(request_id=run_id, added_by=user)


def due_now(tracked: TrackedRequest) -> TrackedRequest:
    TrackedRequest.objects.filter(pk=tracked.pk).update(next_poll_at=timezone.now())
    tracked.refresh_from_db()
    return tracked


def test_a_run_is_followed_to_completion_and_archived(
    sim_server: RunningServer, simulator: Simulator, owner, owner_client: Client
) -> None:
    run_id = simulator.add_run(OWNER_KEY, preset="medium", queue_seconds=5, run_seconds=60)
    tracked = poll(track(owner, run_id))
    assert tracked.status == "CREATED"
    assert tracked.model == "medium"
    first_seen = tracked.upstream_created_at
    assert first_seen is not None

    simulator.advance(10)
    tracked = poll(due_now(tracked))
    assert tracked.status == "IN_PROGRESS"
    # created_at moves between polls upstream; the first one seen stays.
    assert tracked.upstream_created_at == first_seen

    simulator.advance(120)
    tracked = poll(due_now(tracked))
    assert tracked.status == "COMPLETED"
    assert tracked.next_poll_at is None
    assert tracked.model != "medium"  # the resolved model once completed
    assert tracked.total_cost is not None and tracked.total_cost > 0
    assert tracked.upstream_created_at == first_seen
    archive = AnswerArchive.objects.get(tracked=tracked)
    assert '"status": "completed"' in archive.raw_json or '"status":"completed"' in archive.raw_json
    assert 'class="cite"' in archive.rendered_html
    assert simulator.calls.count(endpoint="run", job_id=run_id) == 3

    page = owner_client.get(tracked.get_absolute_url())
    assert page.status_code == 200
    body = page.content.decode()
    assert 'class="cite"' in body and "source-card" in body
    # Agent runs have no images and no related questions: no empty boxes for them.
    assert "answer-gallery" not in body and "answer-related" not in body


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("failed", "FAILED"), ("incomplete", "INCOMPLETE"), ("cancelled", "CANCELLED")],
)
def test_every_terminal_outcome_is_archived_once(
    sim_server: RunningServer, simulator: Simulator, owner, outcome: str, status: str
) -> None:
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=30, outcome=outcome)
    simulator.advance(3600)
    tracked = poll(track(owner, run_id))
    assert tracked.status == status
    assert tracked.next_poll_at is None
    assert tracked.archived_at is not None
    # Our own end time stands in where upstream gives none (failed, cancelled).
    assert (tracked.completed_at or tracked.failed_at) is not None
    if status == "FAILED":
        assert tracked.error_message
        assert not tracked.has_answer
    else:
        assert tracked.has_answer
    if status == "INCOMPLETE":
        assert "output limit" in tracked.archive.rendered_html


def test_a_cancelled_run_reads_in_progress_twice_then_cancelled(
    sim_server: RunningServer, simulator: Simulator, owner
) -> None:
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=3600)
    tracked = poll(track(owner, run_id))
    assert tracked.status == "IN_PROGRESS"
    simulator.cancel_run(run_id)
    for _ in range(2):
        tracked = poll(due_now(tracked))
        assert tracked.status == "IN_PROGRESS"
    tracked = poll(due_now(tracked))
    assert tracked.status == "CANCELLED"
    assert tracked.has_answer  # the partial output is kept
    assert tracked.total_cost is None  # usage is null on cancelled runs


def test_an_unknown_run_ends_not_found_after_two_answers(
    sim_server: RunningServer, simulator: Simulator, owner
) -> None:
    tracked = poll(track(owner, "resp_00000000-0000-4000-8000-000000000000"))
    assert tracked.state == AppState.PENDING and tracked.not_found_strikes == 1
    tracked = poll(due_now(tracked))
    assert tracked.state == AppState.NOT_FOUND
    assert tracked.next_poll_at is None


def test_another_members_run_is_not_found_for_this_key(
    sim_server: RunningServer, simulator: Simulator, owner
) -> None:
    run_id = simulator.add_run(MEMBER_KEY)
    tracked = poll(track(owner, run_id))
    assert tracked.not_found_strikes == 1


@pytest.fixture
def retired_server(settings) -> Iterator[tuple[Simulator, RunningServer]]:
    simulator = Simulator(keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=3600)
    assert simulator.sonar_retired  # retired mode is the default
    with serve(simulator) as server:
        settings.PERPLEXITY_API_BASE = server.url
        settings.PERPLEXITY_READ_TIMEOUT = 2.0
        settings.PERPLEXITY_CONNECT_TIMEOUT = 2.0
        yield simulator, server


def test_sonar_jobs_retire_from_one_call_per_key(
    retired_server: tuple[Simulator, RunningServer], owner, owner_client: Client
) -> None:
    simulator, _ = retired_server
    sonar = [track(owner, f"3f6c1e2a-8b4d-4c71-9a5e-2d7f0b9c4e1{i}") for i in range(3)]
    run_id = simulator.add_run(OWNER_KEY)
    run = track(owner, run_id)

    stats = refresher.run_once()
    assert stats.errors == ["Retired"]
    assert simulator.calls.count(endpoint="list") == 1
    assert simulator.calls.count(endpoint="get") == 0
    for tracked in sonar:
        tracked.refresh_from_db()
        assert tracked.state == AppState.RETIRED
        assert tracked.badge_status == AppState.RETIRED
        assert tracked.next_poll_at is None
    run.refresh_from_db()
    assert run.status == "IN_PROGRESS"  # the Agent run is followed all the same
    key = ApiKey.objects.get(user=owner)
    assert not key.is_invalid  # never reported as a bad key

    # Never asked again, however many passes follow.
    TrackedRequest.objects.filter(pk=run.pk).update(next_poll_at=None)
    refresher.run_once()
    refresher.run_once()
    assert simulator.calls.count(endpoint="list") == 1

    page = owner_client.get(sonar[0].get_absolute_url())
    assert "retired the Sonar API on 2026-09-27" in page.content.decode()
    assert sonar[0].request_id in page.content.decode()


def test_an_archived_sonar_answer_stays_readable_after_the_retirement(
    retired_server: tuple[Simulator, RunningServer], owner, owner_client: Client
) -> None:
    from tests.conftest import archived_request

    tracked = archived_request(
        owner,
        {
            "model": "sonar-deep-research",
            "response": {
                "choices": [{"message": {"content": "## Findings\n\nHeat pumps work [1]."}}],
                "citations": ["https://example.org/report"],
                "search_results": [{"url": "https://example.org/report", "title": "Report"}],
            },
        },
        request_id="c2e84b17-9f30-4d6a-8e15-7b4a1f6d03c8",
    )
    refresher.run_once()
    simulator, _ = retired_server
    assert len(simulator.calls) == 0  # nothing to ask: it is archived
    body = owner_client.get(tracked.get_absolute_url()).content.decode()
    assert "Heat pumps work" in body and 'href="#source-1"' in body
    assert owner_client.get(reverse("answer_markdown", args=[tracked.slug])).status_code == 200


def test_no_calls_left_in_the_window_pauses_the_key(
    settings, owner, simulator: Simulator, sim_server: RunningServer
) -> None:
    simulator.rate_limit_per_minute = 1
    run_id = simulator.add_run(OWNER_KEY)
    poll(track(owner, run_id))
    key = ApiKey.objects.get(user=owner)
    assert key.paused_until is not None and key.paused_until > timezone.now()


def test_a_429_pauses_the_key_and_the_run_waits(
    owner, simulator: Simulator, sim_server: RunningServer
) -> None:
    run_id = simulator.add_run(OWNER_KEY)
    simulator.inject("rate_limit", endpoint="run", retry_after=30)
    tracked = poll(track(owner, run_id))
    assert tracked.status == ""
    assert tracked.next_poll_at is not None
    assert (tracked.next_poll_at - timezone.now()).total_seconds() > 5
    key = ApiKey.objects.get(user=owner)
    assert key.paused_until is not None


def test_settings_checks_a_key_with_the_models_call(
    retired_server: tuple[Simulator, RunningServer], member_client: Client
) -> None:
    simulator, _ = retired_server
    response = member_client.post(reverse("settings"), {"api_key": MEMBER_KEY})
    assert response.status_code == 303
    assert simulator.calls.count(endpoint="models") == 1
    assert simulator.calls.count(endpoint="list") == 0  # never a Sonar path
    simulator.revoke_key(MEMBER_KEY)
    response = member_client.post(reverse("settings"), {"api_key": MEMBER_KEY})
    assert response.status_code == 422
    assert "rejected" in response.content.decode()


def test_an_agent_answer_is_searched_costed_shared_and_bundled(
    sim_server: RunningServer, simulator: Simulator, owner, owner_client: Client, settings
) -> None:
    """The rest of the app follows an Agent run as it follows a Sonar job."""
    import io
    import zipfile

    from sonarweb.media.models import AnswerBundle
    from sonarweb.tracker.archive.images import build_and_store
    from sonarweb.tracker.archive.search import Filters, Search
    from sonarweb.tracker.models import ShareLink

    run_id = simulator.add_run(
        OWNER_KEY, question="Which tidal lagoons were built?", queue_seconds=0, run_seconds=1
    )
    simulator.advance(3600)
    tracked = poll(track(owner, run_id))
    assert tracked.has_answer
    answer = tracked.archive.markdown
    word = next(w for w in answer.split() if w.isalpha() and len(w) > 8).lower()

    # Search: the Agent answer's words find it.
    ids = Search(word).page(Filters(), 0, 100)  # type: ignore[arg-type]
    assert tracked.pk in ids

    # Costs: its total counts under the resolved model.
    costs = owner_client.get(reverse("costs")).content.decode()
    assert tracked.model in costs

    # The public page carries the answer and its source cards.
    link = ShareLink.objects.create(tracked=tracked, created_by=owner)
    public = Client().get(link.get_absolute_url())
    assert public.status_code == 200
    body = public.content.decode()
    assert "source-card" in body and 'class="cite"' in body

    # The portable bundle: the page, answer.md with its numbered sources, the raw JSON.
    build_and_store(tracked.pk)
    assert AnswerBundle.objects.filter(tracked=tracked).exists()
    response = owner_client.get(reverse("answer_bundle", args=[tracked.slug]))
    assert response.status_code == 200
    data = b"".join(response.streaming_content) if response.streaming else response.content
    with zipfile.ZipFile(io.BytesIO(data)) as zipped:
        names = zipped.namelist()
        markdown = next(zipped.read(n).decode() for n in names if n.endswith("answer.md"))
        raw = next(zipped.read(n).decode() for n in names if n.endswith("answer.json"))
    assert "## Sources" in markdown
    assert raw == tracked.archive.raw_json


def test_a_pasted_run_is_named_by_its_answers_first_heading(
    sim_server: RunningServer, simulator: Simulator, owner, owner_client: Client
) -> None:
    run_id = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=1)
    simulator.advance(3600)
    tracked = poll(track(owner, run_id))
    assert tracked.heading and tracked.display_title == tracked.heading
    assert run_id not in tracked.display_title
    dashboard = owner_client.get(reverse("dashboard")).content.decode()
    assert tracked.heading[:40] in dashboard
