"""The "New research" page: a background run on the Agent API, started once per form."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from sonarweb.simulator.app import Simulator
from sonarweb.tracker.following.starting import STARTING_NOTE
from sonarweb.tracker.models import ApiKey, AppState, Origin, TrackedRequest

from .conftest import MEMBER_KEY, OWNER_KEY, wait_for

pytestmark = pytest.mark.django_db

QUESTION = "How do heat pumps cope with -25 °C winters?"
GET_A_KEY = "https://www.perplexity.ai/account/api"


def form_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "question": QUESTION,
        "preset": "medium",
        "idempotency_key": str(uuid.uuid4()),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def starts(simulator: Simulator) -> int:
    return simulator.calls.count(endpoint="start")


def text_of(response) -> str:
    return response.content.decode()


# -- the form ----------------------------------------------------------------------------------


def test_form_offers_the_presets_with_medium_first_choice_and_a_fresh_key(owner_client):
    first = text_of(owner_client.get("/new/"))
    assert re.search(r'<label for="id_question">Question</label>', first)
    assert re.search(r"<legend>Depth</legend>", first)
    for preset in ("fast", "low", "medium", "high", "xhigh"):
        radio = re.search(rf'<input type="radio" name="preset" value="{preset}"[^>]*>', first)
        assert radio, preset
        assert ("checked" in radio.group(0)) == (preset == "medium")
        note_id = re.search(r'aria-describedby="([^"]+)"', radio.group(0)).group(1)
        note = re.search(rf'<span class="help" id="{note_id}">([^<]+)</span>', first).group(1)
        assert note.endswith(".")
    assert "equivalent of sonar-deep-research" in first and "$0.016" in first
    assert "$0.001 to $0.002" in first and first.count("rough") >= 3
    # The Advanced section is a <details>, closed until it is used.
    assert re.search(r'<details class="advanced">\s*<summary>Advanced</summary>', first)
    for field, label in [
        ("model", "Model"),
        ("domains", "Domains"),
        ("recency", "Published within"),
        ("after_date", "Published after"),
        ("before_date", "Published before"),
        ("updated_after", "Updated after"),
        ("updated_before", "Updated before"),
        ("effort", "Reasoning effort"),
        ("max_output_tokens", r"Output limit \(tokens\)"),
        ("instructions", "Instructions"),
    ]:
        assert re.search(rf'<label for="id_{field}">{label}</label>', first), field
    assert re.search(r'<input type="date" name="after_date"', first)
    assert re.search(r'<input type="number" name="max_output_tokens"[^>]*min="16"', first)
    assert "end the run &#x27;incomplete&#x27;" in first
    assert "replaces the preset&#x27;s own system prompt" in first
    for effort in ("minimal", "low", "medium", "high", "xhigh"):
        assert re.search(rf'<select name="effort"[^>]*>[\s\S]*?<option value="{effort}">', first)
    # Nothing of the retired Sonar form is left.
    for gone in ("search_mode", "return_images", "return_related_questions", "sonar-pro"):
        assert gone not in first
    key = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', first).group(1)
    assert key not in text_of(owner_client.get("/new/"))
    assert 'href="/new/" aria-current="page"' in first
    assert "/static/css/new" in first


def test_q_prefills_the_question_and_submits_nothing(owner_client, sim_server, simulator):
    response = owner_client.get("/new/", {"q": "What is <b>next</b>?"})
    assert response.status_code == 200
    assert "What is &lt;b&gt;next&lt;/b&gt;?</textarea>" in text_of(response)
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0


# -- what is sent ------------------------------------------------------------------------------


def test_a_preset_run_sends_only_the_preset_the_question_and_background(
    owner_client, owner, sim_server, simulator
):
    data = form_data(preset="high")
    response = owner_client.post("/new/", data)
    assert response.status_code == 303
    assert simulator.created_bodies == [{"input": QUESTION, "background": True, "preset": "high"}]
    tracked = TrackedRequest.objects.get()
    assert response["Location"] == f"/r/{tracked.slug}/"
    assert re.fullmatch(r"resp_[0-9a-f-]{36}", tracked.request_id)
    assert simulator.run_status(tracked.request_id) is not None
    assert tracked.origin == Origin.STARTED and tracked.added_by == owner
    assert tracked.question == QUESTION
    assert (tracked.status, tracked.state, tracked.model) == ("CREATED", AppState.PENDING, "high")
    assert tracked.is_polling and tracked.next_poll_at <= timezone.now()
    assert tracked.upstream_created_at is not None and tracked.note == ""
    assert tracked.options == {
        "preset": "high",
        "instructions": False,
        "idempotency_key": data["idempotency_key"],
    }
    page = text_of(owner_client.get(response["Location"]))
    assert "Research started" in page and "heat pumps cope" in page


def test_a_model_run_with_every_filter_sends_exactly_the_contracts_fields(
    owner_client, sim_server, simulator
):
    data = form_data(
        preset="fast",
        model=" perplexity/sonar ",
        domains="nature.com, HTTPS://arxiv.org/  -pinterest.com nature.com",
        after_date="2026-01-15",
        before_date="3/31/2026",
        updated_after="12/01/2025",
        updated_before="2026-04-01",
        effort="xhigh",
        max_output_tokens="4000",
        instructions="  Answer in French, in five paragraphs.  ",
    )
    assert owner_client.post("/new/", data).status_code == 303
    filters = {
        "search_domain_filter": ["nature.com", "arxiv.org", "-pinterest.com"],
        "search_after_date_filter": "01/15/2026",
        "search_before_date_filter": "03/31/2026",
        "last_updated_after_filter": "12/01/2025",
        "last_updated_before_filter": "04/01/2026",
    }
    # The simulator is as strict as upstream: an unknown field anywhere would have been a 400.
    assert simulator.created_bodies == [
        {
            "input": QUESTION,
            "background": True,
            "model": "perplexity/sonar",
            "tools": [{"type": "web_search", "filters": filters}],
            "reasoning": {"effort": "xhigh"},
            "max_output_tokens": 4000,
            "instructions": "Answer in French, in five paragraphs.",
        }
    ]
    tracked = TrackedRequest.objects.get()
    assert tracked.model == "perplexity/sonar"
    assert tracked.options == {
        "model": "perplexity/sonar",
        **filters,
        "reasoning_effort": "xhigh",
        "max_output_tokens": 4000,
        "instructions": True,
        "idempotency_key": data["idempotency_key"],
    }


def test_a_bare_model_gets_a_web_search_tool_and_a_preset_keeps_its_filters(
    owner_client, sim_server, simulator
):
    owner_client.post("/new/", form_data(model="perplexity/sonar"))
    owner_client.post("/new/", form_data(preset="low", recency="week", domains="-reddit.com"))
    assert simulator.created_bodies == [
        {
            "input": QUESTION,
            "background": True,
            "model": "perplexity/sonar",
            "tools": [{"type": "web_search"}],
        },
        {
            "input": QUESTION,
            "background": True,
            "preset": "low",
            "tools": [
                {
                    "type": "web_search",
                    "filters": {
                        "search_domain_filter": ["-reddit.com"],
                        "search_recency_filter": "week",
                    },
                }
            ],
        },
    ]
    assert [t.options.get("search_recency_filter") for t in TrackedRequest.objects.all()] == [
        "week",
        None,
    ]


def test_twenty_domains_and_unicode_hosts_are_accepted(owner_client, sim_server, simulator):
    domains = " ".join(f"site{i}.org" for i in range(19)) + " -bücher.de"
    assert owner_client.post("/new/", form_data(domains=domains)).status_code == 303
    sent = simulator.created_bodies[0]["tools"][0]["filters"]["search_domain_filter"]
    assert len(sent) == 20 and sent[-1] == "-xn--bcher-kva.de"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"domains": "not a domain!"}, "Not a domain name: not, a, domain!"),
        ({"domains": "-"}, "Not a domain name: -"),
        ({"domains": "example.com/path"}, "Not a domain name"),
        ({"domains": " ".join(f"s{i}.org" for i in range(21))}, "At most 20 domains; you gave 21"),
        ({"domains": "a.org -a.org"}, "a.org is both searched and left out"),
        ({"after_date": "yesterday"}, "Write a date such as 2026-03-31 or 03/31/2026."),
        ({"before_date": "2026-02-30"}, "There is no such day as 2026-02-30."),
        ({"updated_after": "13/01/2026"}, "There is no such day as 13/01/2026."),
        (
            {"after_date": "2026-05-01", "before_date": "04/30/2026"},
            "The &#x27;published before&#x27; date is earlier than the &#x27;published after&#x27;",
        ),
        (
            {"updated_after": "2026-05-02", "updated_before": "2026-05-01"},
            "The &#x27;updated before&#x27; date is earlier",
        ),
        (
            {"recency": "month", "updated_after": "2026-01-01"},
            "Choose either &#x27;Published within&#x27; or dates, not both",
        ),
        ({"max_output_tokens": "15"}, "The output limit is at least 16 tokens."),
        ({"max_output_tokens": "128001"}, "The output limit is at most 128000 tokens."),
        ({"max_output_tokens": "lots"}, "Write a whole number of tokens."),
        ({"model": "sonar"}, "Write the model as provider/model, such as perplexity/sonar"),
        ({"model": "anthropic/claude-opus-5-5"}, "Anthropic models need an output limit"),
        ({"recency": "decade"}, "Select a valid choice."),
        ({"effort": "max"}, "Select a valid choice."),
        ({"preset": "sonar-deep-research"}, "Select a valid choice."),
        ({"question": "   "}, "Write the question to research."),
        ({"idempotency_key": "x"}, "This form is out of date."),
    ],
)
def test_invalid_forms_are_shown_and_never_reach_upstream(
    owner_client, sim_server, simulator, fields, message
):
    response = owner_client.post("/new/", form_data(**fields))
    html = text_of(response)
    assert response.status_code == 422
    assert message in html
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0
    # What was typed is kept, and a mistake in the Advanced section opens it.
    advanced = set(fields) - {"question", "preset", "idempotency_key"}
    assert ('<details class="advanced" open>' in html) == bool(advanced)


# -- one run per form --------------------------------------------------------------------------


def test_a_double_submit_makes_one_run_and_one_row(owner_client, sim_server, simulator):
    data = form_data()
    first = owner_client.post("/new/", data)
    second = owner_client.post("/new/", data)
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert TrackedRequest.objects.count() == 1 and starts(simulator) == 1
    page = text_of(owner_client.get(second["Location"]))
    assert "This form was already submitted, so it was not sent again" in page


def test_two_forms_make_two_runs(owner_client, sim_server, simulator):
    owner_client.post("/new/", form_data())
    owner_client.post("/new/", form_data())
    assert TrackedRequest.objects.count() == 2 and starts(simulator) == 2


def _post_at_once(clients: list[Client], forms: list[dict[str, object]]) -> list[object]:
    """Each client posts its form in its own thread (its own database connection), all
    released together."""
    barrier = threading.Barrier(len(clients))
    responses: list[object] = [None] * len(clients)

    def post(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            responses[index] = clients[index].post("/new/", forms[index])
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in responses), "a submit did not finish"
    return responses


def _clients_of(user, count: int) -> list[Client]:
    clients = [Client() for _ in range(count)]
    for client in clients:
        client.force_login(user)
    return clients


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submits_of_one_form_make_one_run(owner, sim_server, simulator):
    # The answer to the create takes a while, so both submits are in flight together.
    simulator.inject("slow", endpoint="start", delay=1.5, times=None)
    data = form_data()
    first, second = _post_at_once(_clients_of(owner, 2), [data, data])
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert starts(simulator) == 1
    tracked = TrackedRequest.objects.get()
    assert tracked.request_id.startswith("resp_") and tracked.state == AppState.PENDING


@pytest.mark.django_db(transaction=True)
def test_a_member_starts_one_run_at_a_time(owner, sim_server, simulator):
    simulator.inject("slow", endpoint="start", delay=1.5, times=None)
    one, two = form_data(question="First question"), form_data(question="Second question")
    responses = _post_at_once(_clients_of(owner, 2), [one, two])
    assert sorted(r.status_code for r in responses) == [303, 429]
    refused = next(r for r in responses if r.status_code == 429)
    html = text_of(refused)
    assert "still waiting for Perplexity&#x27;s answer" in html
    assert refused["Retry-After"].isdigit()
    kept = "Second question" if "Second question</textarea>" in html else "First question"
    assert f"{kept}</textarea>" in html
    assert starts(simulator) == 1
    assert TrackedRequest.objects.get().question != kept


def test_a_start_in_flight_answers_another_form_at_once(owner, owner_client, sim_server, simulator):
    waiting = TrackedRequest.objects.create(
        request_id=f"starting-{uuid.uuid4()}",
        added_by=owner,
        origin=Origin.STARTED,
        question="The first one",
        state=AppState.UNCONFIRMED,
        note=STARTING_NOTE,
        next_poll_at=None,
        options={"preset": "medium", "idempotency_key": str(uuid.uuid4())},
    )
    response = owner_client.post("/new/", form_data())
    assert response.status_code == 429
    assert f"{QUESTION}</textarea>" in text_of(response)
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 1
    # A start that died long ago blocks nobody; neither does one that ended unconfirmed.
    TrackedRequest.objects.filter(pk=waiting.pk).update(
        created=timezone.now() - timedelta(minutes=5)
    )
    assert owner_client.post("/new/", form_data()).status_code == 303
    TrackedRequest.objects.filter(pk=waiting.pk).update(created=timezone.now(), note="Timed out.")
    assert owner_client.post("/new/", form_data()).status_code == 303
    assert starts(simulator) == 2


# -- when the answer does not come -------------------------------------------------------------


def test_a_timeout_keeps_an_unconfirmed_row_that_is_never_sent_again(
    owner_client, sim_server, simulator, settings
):
    settings.PERPLEXITY_INTERACTIVE_TIMEOUT = 1.0
    simulator.inject("slow", endpoint="start", delay=4)
    data = form_data()
    response = owner_client.post("/new/", data)
    assert response.status_code == 303
    tracked = TrackedRequest.objects.get()
    assert response["Location"] == tracked.get_absolute_url()
    assert tracked.request_id == f"starting-{data['idempotency_key']}"
    assert tracked.state == AppState.UNCONFIRMED and tracked.status == ""
    assert tracked.next_poll_at is None and not TrackedRequest.objects.due().exists()
    assert tracked.options["idempotency_key"] == data["idempotency_key"]
    assert tracked.question == QUESTION and tracked.model == "medium"
    assert "It was not sent again" in tracked.note
    page = text_of(owner_client.get(response["Location"]))
    assert "may have started: check your Perplexity usage" in page
    assert "may or may not have started" in page
    # The same form again, later: the row, not a second run.
    again = owner_client.post("/new/", data)
    assert again.status_code == 303 and again["Location"] == response["Location"]
    # The simulator logs a call once it has answered, and the slow answer is still on its way.
    wait_for(lambda: starts(simulator) >= 1, "the slow start to be answered")
    assert starts(simulator) == 1 and len(simulator.created_bodies) == 1
    assert TrackedRequest.objects.count() == 1


@pytest.mark.parametrize("kind", ["server_error", "not_json"])
def test_an_answer_that_may_hide_a_run_keeps_it_unconfirmed(
    owner_client, sim_server, simulator, kind
):
    simulator.inject(kind, endpoint="start")
    data = form_data()
    response = owner_client.post("/new/", data)
    assert response.status_code == 303
    tracked = TrackedRequest.objects.get()
    assert tracked.state == AppState.UNCONFIRMED and tracked.next_poll_at is None
    assert owner_client.post("/new/", data)["Location"] == response["Location"]
    assert starts(simulator) == 1


# -- when Perplexity says no -------------------------------------------------------------------


def test_a_400_shows_perplexitys_message_and_keeps_the_form(owner_client, sim_server, simulator):
    data = form_data(model="acme/no-such-model", domains="nature.com")
    response = owner_client.post("/new/", data)
    html = text_of(response)
    assert response.status_code == 422
    assert (
        "Perplexity rejected the request, so nothing was started: "
        "model &quot;acme/no-such-model&quot; is not supported"
    ) in html
    assert "heat pumps cope" in html and 'value="acme/no-such-model"' in html
    assert f'value="{data["idempotency_key"]}"' in html
    assert TrackedRequest.objects.count() == 0 and simulator.created_bodies == []
    # Corrected, the same form starts its run: the failed submit reserved nothing.
    assert owner_client.post("/new/", {**data, "model": "perplexity/sonar"}).status_code == 303
    assert TrackedRequest.objects.count() == 1


def test_a_rejected_key_says_so_once(owner_client, owner, sim_server, simulator):
    simulator.revoke_key(OWNER_KEY)
    response = owner_client.post("/new/", form_data())
    html = text_of(response)
    assert response.status_code == 422
    assert html.count("Perplexity rejected your API key") == 1
    assert html.count(GET_A_KEY) == 1 and 'href="/settings/"' in html
    assert "heat pumps cope" in html
    assert ApiKey.objects.get(user=owner).is_invalid
    assert TrackedRequest.objects.count() == 0
    # A key known to be rejected is not sent again.
    simulator.reset_calls()
    again = owner_client.post("/new/", form_data())
    assert again.status_code == 422 and simulator.calls.count() == 0
    assert text_of(again).count("Perplexity rejected your API key") == 1


def test_a_429_says_when_to_retry_without_pausing_the_key(owner_client, sim_server, simulator):
    simulator.inject("rate_limit", endpoint="start", retry_after=7)
    response = owner_client.post("/new/", form_data())
    html = text_of(response)
    assert response.status_code == 429
    assert "Try again in 7 seconds." in html and "nothing was started" in html
    assert response["Retry-After"] == "7"
    assert "heat pumps cope" in html
    assert TrackedRequest.objects.count() == 0
    # Starting is limited, not polling: this key's running research goes on being followed.
    assert ApiKey.objects.get(user__username="olivia").paused_until is None


class TestCreateLimit:
    @pytest.fixture
    def simulator(self) -> Simulator:
        return Simulator(
            keys=[OWNER_KEY, MEMBER_KEY], queue_seconds=0, run_seconds=60, create_limit_per_minute=1
        )

    def test_over_the_limit_the_form_comes_back(self, owner_client, sim_server, simulator):
        assert owner_client.post("/new/", form_data()).status_code == 303
        response = owner_client.post("/new/", form_data())
        assert response.status_code == 429
        assert re.search(r"Try again in \d+ seconds?\.", text_of(response))
        assert response["Retry-After"].isdigit()
        assert TrackedRequest.objects.count() == 1


def test_a_refused_connection_keeps_the_form_and_reserves_nothing(owner_client, settings):
    settings.PERPLEXITY_API_BASE = "http://127.0.0.1:9"  # discard port: nothing listens
    data = form_data()
    response = owner_client.post("/new/", data)
    html = text_of(response)
    assert response.status_code == 503
    assert "could not be reached" in html and "Nothing was sent" in html
    assert "heat pumps cope" in html and f'value="{data["idempotency_key"]}"' in html
    assert TrackedRequest.objects.count() == 0


def test_a_404_to_the_start_reserves_nothing(owner_client, sim_server, simulator):
    simulator.inject("not_found", endpoint="start")
    data = form_data()
    response = owner_client.post("/new/", data)
    assert response.status_code == 502
    assert "Perplexity refused the start (HTTP 404), so nothing was started." in text_of(response)
    assert TrackedRequest.objects.count() == 0
    assert owner_client.post("/new/", data).status_code == 303
    assert starts(simulator) == 2 and len(simulator.created_bodies) == 1


def test_no_free_slot_keeps_the_form_and_sends_nothing(
    owner_client, sim_server, simulator, settings, monkeypatch
):
    from sonarweb.tracker.keys import upstream as tracker_upstream

    slots = tracker_upstream._slots(int(settings.SONARWEB_INTERACTIVE_CALLS))
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    try:
        response = owner_client.post("/new/", form_data())
    finally:
        for _ in range(taken):
            slots.release()
    assert response.status_code == 503
    assert "already in progress" in text_of(response)
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0


# -- without a key -----------------------------------------------------------------------------


def test_without_a_key_one_message_says_where_to_get_one(member_client, sim_server, simulator):
    for response in (member_client.get("/new/"), member_client.post("/new/", form_data())):
        html = text_of(response)
        assert html.count(GET_A_KEY) == 1, html
        assert html.count("API key") == 1
        assert "the team's answers</a> without one" in html
        assert 'href="/settings/"' in html
    assert response.status_code == 422 and "heat pumps cope" in html
    assert simulator.calls.count() == 0 and TrackedRequest.objects.count() == 0


def test_with_a_key_marked_rejected_one_message_says_so(owner_client, owner):
    ApiKey.objects.filter(user=owner).update(invalid_since=timezone.now())
    html = text_of(owner_client.get("/new/"))
    assert html.count("Perplexity rejected your API key pplx-…a1b2") == 1
    assert html.count(GET_A_KEY) == 1


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


# -- after the start ---------------------------------------------------------------------------


def test_the_started_message_never_shows_on_a_finished_page(owner_client, sim_server, simulator):
    from sonarweb.tracker.following.polling import refresh_if_due

    simulator.queue_seconds = simulator.run_seconds = 0
    response = owner_client.post("/new/", form_data(preset="fast"))
    tracked = TrackedRequest.objects.get()
    refresh_if_due(tracked)  # the run finished before the browser followed the redirect
    tracked.refresh_from_db()
    assert tracked.status == "COMPLETED"
    page = text_of(owner_client.get(response["Location"]))
    assert "Research started" not in page
    # Consumed, not kept for the next page either.
    assert "Research started" not in text_of(owner_client.get("/"))


def test_the_started_message_promises_no_live_updates(owner_client, sim_server, simulator):
    response = owner_client.post("/new/", form_data())
    page = text_of(owner_client.get(response["Location"]))
    message = re.search(r'<li class="message message-success" data-live-status>([^<]*)<', page)
    assert message and "updates by itself" not in message.group(1)
    assert '<span class="live-note" hidden>This page updates by itself.</span>' in page
