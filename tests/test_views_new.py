from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from sonarweb.simulator.app import Simulator
from sonarweb.tracker.models import ApiKey, Origin, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY

pytestmark = pytest.mark.django_db

QUESTION = "How do heat pumps cope with -25 °C winters?"


def form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "question": QUESTION,
        "model": "sonar-deep-research",
        "search_mode": "academic",
        "search_recency_filter": "year",
        "search_domain_filter": "nature.com, https://arxiv.org/  -pinterest.com",
        "reasoning_effort": "high",
        "return_related_questions": "on",
        "idempotency_key": str(uuid.uuid4()),
    }
    data.update(overrides)
    return data


def created_bodies(simulator: Simulator) -> int:
    return simulator.calls.count(endpoint="create", status=200)


def test_form_has_labels_defaults_and_a_fresh_idempotency_key(owner_client):
    first = owner_client.get("/new/").content.decode()
    for field, label in [
        ("question", "Question"),
        ("model", "Model"),
        ("search_mode", "Search"),
        ("search_recency_filter", "Published within"),
        ("search_domain_filter", "Domains"),
        ("reasoning_effort", "Reasoning effort"),
    ]:
        assert re.search(rf'<label for="id_{field}">{label}</label>', first), field
    assert re.search(r'<label class="check" for="id_return_images">', first)
    assert re.search(r'<label class="check" for="id_return_related_questions">', first)
    assert re.search(r'<option value="sonar-deep-research" selected>', first)
    for model in ("sonar", "sonar-pro", "sonar-reasoning-pro"):
        assert f'<option value="{model}">' in first
    assert re.search(r'<select name="reasoning_effort"[^>]*>\s*<option value="" selected>', first)
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', first).group(1)
    second = owner_client.get("/new/").content.decode()
    assert key not in second
    assert 'href="/new/" aria-current="page"' in first


def test_q_prefills_the_question_and_submits_nothing(owner_client, sim_server, simulator):
    response = owner_client.get("/new/", {"q": "What is <b>next</b>?"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "What is &lt;b&gt;next&lt;/b&gt;?</textarea>" in html
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0


def test_start_creates_one_job_and_tracks_it(owner_client, owner, sim_server, simulator):
    data = form_data()
    response = owner_client.post("/new/", data)
    assert response.status_code == 303
    tracked = TrackedRequest.objects.get()
    assert response["Location"] == f"/r/{tracked.slug}/"
    assert created_bodies(simulator) == 1
    assert simulator.job_status(tracked.request_id) is not None
    assert tracked.origin == Origin.STARTED
    assert tracked.added_by == owner
    assert tracked.question == QUESTION
    assert tracked.model == "sonar-deep-research"
    assert tracked.status == "CREATED" and tracked.is_polling
    assert tracked.options == {
        "search_mode": "academic",
        "search_recency_filter": "year",
        "search_domain_filter": ["nature.com", "arxiv.org", "-pinterest.com"],
        "reasoning_effort": "high",
        "return_images": False,
        "return_related_questions": True,
        "idempotency_key": data["idempotency_key"],
    }
    page = owner_client.get(response["Location"]).content.decode()
    assert "Research started" in page and "heat pumps cope" in page


def test_unset_options_are_not_sent(owner_client, sim_server, simulator):
    data = form_data(search_recency_filter="", reasoning_effort="", search_domain_filter="")
    del data["return_related_questions"]
    assert owner_client.post("/new/", data).status_code == 303
    assert TrackedRequest.objects.get().options == {
        "search_mode": "academic",
        "return_images": False,
        "return_related_questions": False,
        "idempotency_key": data["idempotency_key"],
    }


def test_double_submit_makes_one_job_and_one_row(owner_client, sim_server, simulator):
    data = form_data()
    first = owner_client.post("/new/", data)
    second = owner_client.post("/new/", data)
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert TrackedRequest.objects.count() == 1
    assert created_bodies(simulator) == 1


def test_a_retry_after_a_lost_answer_gets_the_same_job_upstream(
    owner_client, sim_server, simulator
):
    """The first create reached upstream but its row was lost: the resend must not fork."""
    data = form_data()
    owner_client.post("/new/", data)
    first_id = TrackedRequest.objects.get().request_id
    TrackedRequest.objects.all().delete()
    owner_client.post("/new/", data)
    assert TrackedRequest.objects.get().request_id == first_id
    assert simulator.calls.count(endpoint="create") == 2


def test_two_forms_make_two_jobs(owner_client, sim_server, simulator):
    owner_client.post("/new/", form_data())
    owner_client.post("/new/", form_data())
    assert TrackedRequest.objects.count() == 2
    assert created_bodies(simulator) == 2


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("search_domain_filter", "not a domain!", "Not a domain name: not, a, domain!"),
        ("search_domain_filter", "-", "Not a domain name: -"),
        ("search_domain_filter", "example.com/path", "Not a domain name"),
        (
            "search_domain_filter",
            " ".join(f"site{i}.org" for i in range(21)),
            "At most 20 domains; you gave 21.",
        ),
        ("question", "   ", "Write the question to research."),
        ("model", "gpt-4", "Select a valid choice."),
        ("idempotency_key", "x", "This form is out of date."),
    ],
)
def test_invalid_forms_are_shown_and_never_reach_upstream(
    owner_client, sim_server, simulator, field, value, message
):
    response = owner_client.post("/new/", form_data(**{field: value}))
    assert response.status_code == 422
    assert message in response.content.decode()
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0


def test_twenty_domains_and_unicode_hosts_are_accepted(owner_client, sim_server, simulator):
    domains = " ".join(f"site{i}.org" for i in range(19)) + " bücher.de"
    assert owner_client.post("/new/", form_data(search_domain_filter=domains)).status_code == 303
    sent = TrackedRequest.objects.get().options["search_domain_filter"]
    assert len(sent) == 20 and sent[-1] == "xn--bcher-kva.de"


def test_upstream_422_details_are_shown_and_the_form_kept(
    owner_client, sim_server, simulator, monkeypatch
):
    # The form only offers valid values, so make the body invalid where the simulator checks.
    from sonarweb.tracker.forms import NewResearchForm

    monkeypatch.setattr(
        NewResearchForm, "options", lambda self: {"search_mode": "everything"}, raising=True
    )
    response = owner_client.post("/new/", form_data())
    html = response.content.decode()
    assert response.status_code == 422
    assert "Perplexity rejected the request: search_mode: Input should be" in html
    assert "heat pumps cope" in html
    assert TrackedRequest.objects.count() == 0


class TestRateLimit:
    @pytest.fixture
    def simulator(self) -> Simulator:
        return Simulator(
            keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=60, create_limit_per_minute=1
        )

    def test_429_says_the_limit_and_when_to_retry(self, owner_client, sim_server, simulator):
        assert owner_client.post("/new/", form_data()).status_code == 303
        response = owner_client.post("/new/", form_data())
        html = response.content.decode()
        assert response.status_code == 429
        assert "limited to a few a minute per key" in html
        assert re.search(r"Try again in \d+ seconds", html)
        assert response["Retry-After"].isdigit()
        assert "heat pumps cope" in html
        assert TrackedRequest.objects.count() == 1


def test_injected_429_without_a_saved_job(owner_client, sim_server, simulator):
    simulator.inject("rate_limit", endpoint="create", retry_after=7)
    response = owner_client.post("/new/", form_data())
    assert response.status_code == 429
    assert "Try again in 7 seconds." in response.content.decode()
    assert TrackedRequest.objects.count() == 0
    # The create limit is not the key's GET limit: polling its running jobs goes on.
    assert ApiKey.objects.get(user__username="olivia").paused_until is None


def test_rejected_key_says_so_and_links_to_settings(owner_client, owner, sim_server, simulator):
    simulator.revoke_key(OWNER_KEY)
    response = owner_client.post("/new/", form_data())
    html = response.content.decode()
    assert response.status_code == 422
    assert "Perplexity rejected your API key (401)" in html and 'href="/settings/"' in html
    assert ApiKey.objects.get(user=owner).is_invalid
    # A key known to be rejected is not sent again.
    simulator.reset_calls()
    owner_client.post("/new/", form_data())
    assert simulator.calls.count() == 0


@pytest.mark.parametrize("kind", ["server_error", "not_json"])
def test_upstream_trouble_keeps_the_form(owner_client, sim_server, simulator, kind):
    simulator.inject(kind, endpoint="create")
    response = owner_client.post("/new/", form_data())
    html = response.content.decode()
    assert response.status_code in (502, 503)
    assert 'class="form-error"' in html and "heat pumps cope" in html
    assert TrackedRequest.objects.count() == 0


def test_network_failure_keeps_the_form_and_its_idempotency_key(owner_client, settings):
    settings.PERPLEXITY_API_BASE = "http://127.0.0.1:9"  # discard port: nothing listens
    data = form_data()
    response = owner_client.post("/new/", data)
    html = response.content.decode()
    assert response.status_code == 503
    assert "could not be reached" in html and "heat pumps cope" in html
    assert f'value="{data["idempotency_key"]}"' in html


def test_member_without_key_is_told_to_add_one(member_client, sim_server, simulator):
    page = member_client.get("/new/").content.decode()
    assert "Add your API key in Settings" in page and 'href="/settings/"' in page
    response = member_client.post("/new/", form_data())
    assert response.status_code == 422
    assert "Add your Perplexity API key in Settings to start research." in response.content.decode()
    assert simulator.calls.count() == 0


def test_anonymous_visitors_are_sent_to_login(anon_client):
    response = anon_client.get("/new/?q=x")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert anon_client.post("/new/", form_data()).status_code == 302


def test_csrf_is_enforced(owner, sim_server, simulator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/new/", form_data()).status_code == 403
    assert simulator.calls.count() == 0


@pytest.mark.parametrize("kind", ["long_model", "unstorable_text"])
def test_an_odd_model_name_from_the_create_call_is_fitted_and_tracked(
    owner_client, sim_server, simulator, kind
):
    # The job has started upstream by the time the answer arrives: it must be tracked.
    simulator.inject(kind, endpoint="create")
    response = owner_client.post("/new/", form_data())
    assert response.status_code == 303, response.content.decode()[:500]
    tracked = TrackedRequest.objects.get()
    assert response["Location"] == tracked.get_absolute_url()
    assert tracked.origin == Origin.STARTED and "\x00" not in tracked.model
    assert len(tracked.model) <= 64 and tracked.model.startswith("sonar-deep-research")
