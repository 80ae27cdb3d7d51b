from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from sonarweb.tracker.models import TrackedRequest

from .conftest import OWNER_KEY, archived_request, poll

pytestmark = pytest.mark.django_db

UUID = "3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b"


def test_anonymous_visitors_are_sent_to_login(anon_client):
    for url in ("/", "/settings/", "/r/whatever/", "/r/whatever/status/", "/badges/"):
        response = anon_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_dashboard_has_labelled_form_and_lists_team_rows(owner_client, owner, member):
    TrackedRequest.objects.create(request_id="job-older", added_by=member)
    TrackedRequest.objects.create(request_id="job-newer", added_by=owner, model="sonar-pro")
    response = owner_client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(r'<label for="id_request_id">Request ID</label>', html)
    assert html.index("job-newer") < html.index("job-older")
    assert "mateo" in html and "olivia" in html and "sonar-pro" in html
    assert 'data-status="PENDING"' in html
    assert 'id="badge-poller"' in html and "hx-trigger" in html


def test_submitting_redirects_303_to_the_permalink(owner_client, owner, simulator):
    response = owner_client.post("/", {"request_id": f"  {UUID}  "})
    assert response.status_code == 303
    tracked = TrackedRequest.objects.get()
    assert tracked.request_id == UUID
    assert tracked.added_by == owner
    assert response["Location"] == f"/r/{tracked.slug}/"


def test_urls_and_json_are_accepted(owner_client):
    owner_client.post("/", {"request_id": f"https://api.perplexity.ai/v1/async/sonar/{UUID}"})
    owner_client.post("/", {"request_id": f'{{"id": "{UUID}"}}'})
    assert TrackedRequest.objects.get().request_id == UUID


def test_same_id_twice_leads_to_one_permalink(owner_client, member_client):
    first = owner_client.post("/", {"request_id": UUID})
    second = member_client.post("/", {"request_id": UUID})
    assert second.status_code == 303
    assert first["Location"] == second["Location"]
    assert TrackedRequest.objects.count() == 1


@pytest.mark.parametrize("bad", ["", "   ", "a b", "a/b", "..", "x" * 129, "a\x01b"])
def test_implausible_ids_get_a_form_error_and_never_reach_upstream(
    owner_client, sim_server, simulator, bad
):
    response = owner_client.post("/", {"request_id": bad})
    assert response.status_code == 422
    assert 'class="form-error"' in response.content.decode()
    assert TrackedRequest.objects.count() == 0
    assert simulator.calls.count() == 0


def test_member_without_key_is_told_to_add_one(member_client):
    page = member_client.get("/").content.decode()
    assert 'href="/settings/"' in page and "Add your API key" in page
    response = member_client.post("/", {"request_id": UUID})
    assert response.status_code == 422
    assert "Add your Perplexity API key in Settings" in response.content.decode()
    assert TrackedRequest.objects.count() == 0


def test_batched_badge_poll_updates_rows_and_stops_when_finished(
    owner_client, owner, sim_server, simulator
):
    done = simulator.add_job(OWNER_KEY, run_seconds=0, queue_seconds=0)
    running = simulator.add_job(OWNER_KEY)
    a = poll(TrackedRequest.objects.create(request_id=done, added_by=owner))
    b = poll(TrackedRequest.objects.create(request_id=running, added_by=owner))
    response = owner_client.get(f"/badges/?s={a.slug}&s={b.slug}", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert f'id="badge-{a.slug}"' in html and 'hx-swap-oob="true"' in html
    assert 'data-status="COMPLETED"' in html and 'data-status="IN_PROGRESS"' in html
    poller = re.search(r'<div id="badge-poller"[^>]*>', html).group(0)
    assert f"s={b.slug}" in poller and f"s={a.slug}" not in poller
    TrackedRequest.objects.filter(pk=b.pk).update(next_poll_at=None, status="COMPLETED")
    html = owner_client.get(f"/badges/?s={b.slug}").content.decode()
    assert "hx-trigger" not in html


def test_pages_send_csp_without_inline_scripts(owner_client):
    response = owner_client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in response.content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in response.content.decode()


# Filters, search, pagination, counts -----------------------------------------------------


def _rows(html: str) -> list[str]:
    """The request ids of the table's rows, in order."""
    table = html.split('<table class="requests">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<div class="muted mono small">([^<]+)</div>', table)


@pytest.fixture
def spread(owner, member) -> dict[str, TrackedRequest]:
    make = TrackedRequest.objects.create
    answer = {"choices": [{"message": {"content": "Ground-source systems keep a COP above three "
                                                 "in January."}}]}  # fmt: skip
    return {
        "done": archived_request(
            owner,
            {"response": answer},
            request_id="job-done",
            question="Heat pumps in Oslo?",
            model="sonar-deep-research",
        ),
        "failed": make(
            request_id="job-failed",
            question="Failed one",
            added_by=member,
            model="sonar-pro",
            status="FAILED",
            next_poll_at=None,
        ),
        "running": make(
            request_id="job-running",
            question="Still running",
            added_by=owner,
            model="sonar-pro",
            status="IN_PROGRESS",
        ),
        "lost": make(
            request_id="job-lost",
            title="Lost job",
            added_by=member,
            state="NOT_FOUND",
            next_poll_at=None,
        ),
        "pending": make(request_id="job-pending", question="Pending one", added_by=owner),
    }


def test_filter_controls_are_labelled_get_controls(owner_client, spread):
    html = owner_client.get("/").content.decode()
    form = re.search(r'<form method="get" action="/"[^>]*>.*?</form>', html, re.S).group(0)
    for field, label in [("q", "Search"), ("status", "Status"), ("member", "Added by")]:
        assert f'<label for="id_filter_{field}">{label}</label>' in form
    assert '<label for="id_filter_model">Model</label>' in form
    assert '<option value="mateo">mateo</option>' in form
    # The models the column holds, and only those.
    assert '<option value="sonar-pro">sonar-pro</option>' in form
    assert '<option value="sonar-reasoning-pro">' not in form


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=COMPLETED", ["job-done"]),
        ("status=FAILED", ["job-failed"]),
        ("status=IN_PROGRESS", ["job-running"]),
        ("status=NOT_FOUND", ["job-lost"]),
        ("status=PENDING", ["job-pending"]),
        ("member=mateo", ["job-lost", "job-failed"]),
        ("model=sonar-pro", ["job-running", "job-failed"]),
        ("member=olivia&model=sonar-pro", ["job-running"]),
        ("q=cop+above+three", ["job-done"]),
        ("q=lost", ["job-lost"]),
        ("q=running", ["job-running"]),
        ("q=nothing+like+this", []),
        ("status=BOGUS&member=mateo", ["job-lost", "job-failed"]),
    ],
)
def test_filters_and_search(owner_client, spread, query, expected):
    response = owner_client.get(f"/?{query}")
    html = response.content.decode()
    assert response.status_code == 200
    if expected:
        assert _rows(html) == expected
    else:
        assert "No requests match these filters." in html


def test_a_pending_row_with_an_upstream_status_counts_by_that_status(owner_client, spread):
    # state stays PENDING once upstream answered; the badge shows status, so must the filter.
    assert TrackedRequest.objects.get(request_id="job-done").state == "PENDING"
    assert _rows(owner_client.get("/?status=PENDING").content.decode()) == ["job-pending"]


def test_counts_per_status_in_one_query_and_follow_other_filters(owner_client, spread):
    with CaptureQueriesContext(connection) as queries:
        html = owner_client.get("/").content.decode()
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html))
    assert counts == {
        "all": "5",
        "COMPLETED": "1",
        "FAILED": "1",
        "IN_PROGRESS": "1",
        "PENDING": "1",
        "NOT_FOUND": "1",
    }
    aggregates = [q["sql"] for q in queries if "COUNT(" in q["sql"]]
    assert len(aggregates) == 1 and "GROUP BY" in aggregates[0] and '"badge"' in aggregates[0]
    html = owner_client.get("/?member=mateo").content.decode()
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html))
    assert counts == {"all": "2", "FAILED": "1", "NOT_FOUND": "1"}
    assert 'href="?member=mateo&amp;status=FAILED"' in html


def _link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}" href="([^"]+)">', html)
    return found.group(1).replace("&amp;", "&") if found else None


def test_pagination_keeps_filters_and_polls_only_the_visible_page(owner_client, owner):
    for i in range(30):
        TrackedRequest.objects.create(
            request_id=f"job-{i:02d}", added_by=owner, model="sonar", question=f"q{i}"
        )
    first = owner_client.get("/?model=sonar").content.decode()
    assert _rows(first) == [f"job-{i:02d}" for i in range(29, 4, -1)]
    older = _link(first, "next")
    assert older.startswith("?model=sonar&before=") and _link(first, "prev") is None
    poller = re.search(r'<div id="badge-poller"[^>]*>', first).group(0)
    assert poller.count("s=") == 25
    second = owner_client.get(f"/{older}").content.decode()
    assert _rows(second) == [f"job-{i:02d}" for i in range(4, -1, -1)]
    assert _link(second, "next") is None
    newer = _link(second, "prev")
    assert newer.startswith("?model=sonar&after=")
    assert _rows(owner_client.get(f"/{newer}").content.decode()) == _rows(first)
    # A cursor that is not one shows the first page.
    assert _rows(owner_client.get("/?model=sonar&before=99x").content.decode()) == _rows(first)


def test_keyset_pages_are_stable_while_rows_are_added(owner_client, owner):
    for i in range(30):
        TrackedRequest.objects.create(request_id=f"job-{i:02d}", added_by=owner, question="q")
    first = owner_client.get("/").content.decode()
    older = _link(first, "next")
    # Teammates add rows meanwhile: the next page still starts right after the last row seen.
    for i in range(30, 40):
        TrackedRequest.objects.create(request_id=f"job-{i:02d}", added_by=owner, question="q")
    second = owner_client.get(f"/{older}").content.decode()
    assert _rows(second) == [f"job-{i:02d}" for i in range(4, -1, -1)]
    assert _rows(owner_client.get("/").content.decode())[0] == "job-39"


def test_table_rows_do_not_load_answers(owner_client, spread):
    with CaptureQueriesContext(connection) as queries:
        owner_client.get("/")
    listing = [q["sql"] for q in queries if 'FROM "tracker_trackedrequest" LEFT OUTER' in q["sql"]]
    assert listing and all(
        "tracker_answerarchive" not in sql and '"raw_json"' not in sql for sql in listing
    )


# Inline titles ---------------------------------------------------------------------------


def test_edit_title_with_htmx_swaps_form_then_title(owner_client, member, spread):
    tracked = spread["done"]
    url = f"/r/{tracked.slug}/title/"
    form = owner_client.get(f"{url}?next=/%3Fstatus%3DCOMPLETED", HTTP_HX_REQUEST="true")
    html = form.content.decode()
    assert form.status_code == 200 and "<html" not in html
    assert f'<label for="title-input-{tracked.slug}">Title</label>' in html
    assert f'hx-post="{url}"' in html and 'maxlength="200"' in html and "autofocus" in html
    assert "?cancel=1" in html
    saved = owner_client.post(
        url, {"title": "  Oslo   heat\tpumps  ", "next": "/"}, HTTP_HX_REQUEST="true"
    )
    html = saved.content.decode()
    assert saved.status_code == 200
    assert 'class="title-cell"' in html and ">Oslo heat pumps</a>" in html
    tracked.refresh_from_db()
    assert tracked.title == "Oslo heat pumps"
    cancel = owner_client.get(f"{url}?cancel=1", HTTP_HX_REQUEST="true").content.decode()
    assert ">Oslo heat pumps</a>" in cancel and "<form" not in cancel


def test_any_member_may_edit_and_blank_restores_the_question(member_client, spread):
    tracked = spread["done"]
    member_client.post(f"/r/{tracked.slug}/title/", {"title": "x"}, HTTP_HX_REQUEST="true")
    response = member_client.post(
        f"/r/{tracked.slug}/title/", {"title": "   "}, HTTP_HX_REQUEST="true"
    )
    tracked.refresh_from_db()
    assert tracked.title == ""
    assert ">Heat pumps in Oslo?</a>" in response.content.decode()


def test_too_long_title_is_refused_with_a_sentence(owner_client, spread):
    tracked = spread["done"]
    response = owner_client.post(
        f"/r/{tracked.slug}/title/", {"title": "x" * 201}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "A title has at most 200 characters" in html and "<form" in html
    response = owner_client.post(f"/r/{tracked.slug}/title/", {"title": "x" * 201}, follow=True)
    assert "A title has at most 200 characters" in response.content.decode()
    tracked.refresh_from_db()
    assert tracked.title == ""


def test_edit_title_without_js(owner_client, spread):
    tracked = spread["done"]
    page = owner_client.get("/?status=COMPLETED").content.decode()
    link = re.search(r'<a class="edit-title small" href="([^"]+)"', page).group(1)
    link = link.replace("&amp;", "&")
    response = owner_client.get(link)
    assert response.status_code == 302
    assert response["Location"] == f"/?status=COMPLETED&edit={tracked.slug}#title-{tracked.slug}"
    html = owner_client.get(response["Location"]).content.decode()
    form = re.search(r'<form id="title-[^"]+" class="title-cell title-form".*?</form>', html, re.S)
    assert form and 'method="post"' in form.group(0)
    assert 'name="csrfmiddlewaretoken"' in form.group(0)
    assert 'name="next" value="/?status=COMPLETED"' in form.group(0)
    saved = owner_client.post(
        f"/r/{tracked.slug}/title/", {"title": "Plain form", "next": "/?status=COMPLETED"}
    )
    assert saved.status_code == 303 and saved["Location"] == "/?status=COMPLETED"
    tracked.refresh_from_db()
    assert tracked.title == "Plain form"


def test_edit_title_never_redirects_offsite_and_needs_csrf(owner, spread):
    tracked = spread["done"]
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(f"/r/{tracked.slug}/title/", {"title": "x"}).status_code == 403
    client = Client()
    client.force_login(owner)
    response = client.post(
        f"/r/{tracked.slug}/title/", {"title": "x", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"
    assert client.get("/r/nope/title/").status_code == 404


def test_title_edit_escapes_html(owner_client, spread):
    tracked = spread["done"]
    html = owner_client.post(
        f"/r/{tracked.slug}/title/",
        {"title": "<img src=x onerror=alert(1)>"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "<img" not in html and "&lt;img" in html


def test_expired_session_moves_htmx_polls_to_the_login_page(anon_client):
    response = anon_client.get(
        "/badges/?s=abc",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/r/abc/?tab=1",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=/r/abc/%3Ftab%3D1"
    assert b"<html" not in response.content


def test_a_badge_batch_never_calls_upstream(owner_client, owner, sim_server, simulator):
    rows = [
        TrackedRequest.objects.create(request_id=simulator.add_job(OWNER_KEY), added_by=owner)
        for _ in range(10)
    ]
    query = "&".join(f"s={r.slug}" for r in rows)
    for _ in range(3):
        response = owner_client.get(f"/badges/?{query}", HTTP_HX_REQUEST="true")
        assert response.status_code == 200
    assert simulator.calls.count() == 0, "viewers never make the call themselves"
    html = response.content.decode()
    # Every row answers its stored badge and stays in the poller.
    poller = re.search(r'<div id="badge-poller"[^>]*>', html).group(0)
    for row in rows:
        assert f'id="badge-{row.slug}"' in html and f"s={row.slug}" in poller


def test_a_poll_sends_only_changes_and_links_counts_to_the_dashboard(owner_client, owner):
    from sonarweb.tracker.listing import encode_cursor

    rows = [
        TrackedRequest.objects.create(request_id=f"job-{i}", added_by=owner, status="IN_PROGRESS")
        for i in range(3)
    ]
    top = encode_cursor(rows[-1])
    shown = "&".join(f"s={r.slug}.IN_PROGRESS" for r in rows)
    html = owner_client.get(f"/badges/?{shown}&status=IN_PROGRESS&top={top}").content.decode()
    # Nothing changed: no badge is sent again, only the counts (not yet shown) and the poller.
    assert 'hx-swap-oob="true"' in html and f'id="badge-{rows[0].slug}"' not in html
    counts = re.search(r'<ul id="status-counts".*?</ul>', html, re.S).group(0)
    assert 'href="?status=COMPLETED"' not in counts
    assert 'href="?status=IN_PROGRESS"' in counts and "?s=" not in counts and "top=" not in counts
    poller = re.search(r'hx-get="/badges/\?([^"]+)"', html).group(1).replace("&amp;", "&")
    # The counts shown are named by a digest: the next poll gets them only if they change.
    again = owner_client.get(f"/badges/?{poller}").content.decode()
    assert "hx-swap-oob" not in again
    # The counts are counted on every poll: the next one brings the change.
    TrackedRequest.objects.filter(pk=rows[0].pk).update(status="COMPLETED", next_poll_at=None)
    changed = owner_client.get(f"/badges/?{poller}").content.decode()
    assert f'id="badge-{rows[0].slug}"' in changed and "no longer in progress" in changed
    assert f'id="badge-{rows[1].slug}"' not in changed and "status-counts" in changed


def test_polls_without_a_change_reuse_a_recent_count(owner_client, owner):
    """A hundred open dashboards poll about 33 times a second; the counts are one aggregate
    over every row, so a poll that brings no change shows a figure counted at most a few
    seconds before. The poll that brings a changed row counts afresh."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sonarweb.tracker.listing import encode_cursor

    other = TrackedRequest.objects.create(
        request_id="job-other", added_by=owner, status="IN_PROGRESS"
    )
    rows = [
        TrackedRequest.objects.create(request_id=f"job-{i}", added_by=owner, status="IN_PROGRESS")
        for i in range(3)
    ]
    shown = "&".join(f"s={r.slug}.IN_PROGRESS" for r in rows)
    query = f"/badges/?{shown}&top={encode_cursor(rows[-1])}"

    def counted(url: str) -> tuple[bool, dict[str, str]]:
        with CaptureQueriesContext(connection) as queries:
            html = owner_client.get(url, HTTP_HX_REQUEST="true").content.decode()
        return any("GROUP BY" in q["sql"] for q in queries.captured_queries), _counts(html)

    # The dashboard counts and keeps the figure; its polls reuse it.
    owner_client.get("/")
    assert counted(query)[0] is False
    assert counted(query)[0] is False
    # A row this dashboard does not watch changes: its poll keeps the recent figure.
    TrackedRequest.objects.filter(pk=other.pk).update(status="FAILED", next_poll_at=None)
    assert counted(query)[0] is False
    # A watched row finishes: that poll counts afresh, and says so.
    TrackedRequest.objects.filter(pk=rows[0].pk).update(status="COMPLETED", next_poll_at=None)
    again, counts = counted(query)
    assert again is True
    assert counts["COMPLETED"] == "1" and counts["FAILED"] == "1" and counts["IN_PROGRESS"] == "2"


# Agent run statuses ------------------------------------------------------------------------

EXAMPLES = Path(__file__).parent / "fixtures" / "agent_api_examples.json"


def agent_example(name: str) -> dict:
    document = json.loads(EXAMPLES.read_text())[name]
    document["id"] = f"resp_{uuid.uuid4()}"
    return document


@pytest.fixture
def agent_spread(owner, member) -> dict[str, TrackedRequest]:
    """One row in each of the new statuses, each written the way the app writes it."""
    make = TrackedRequest.objects.create
    new_run = {"added_by": owner, "model": "medium", "options": {"preset": "medium"}}
    return {
        "incomplete": archived_request(owner, agent_example("get_incomplete"), question="a"),
        "cancelled": archived_request(member, agent_example("get_cancelled"), question="b"),
        "failed": archived_request(owner, agent_example("get_failed_http_200"), question="c"),
        "retired": make(
            request_id="job-retired", question="d", added_by=owner, state="RETIRED",
            next_poll_at=None,
        ),
        "unconfirmed": make(
            request_id=f"resp_{uuid.uuid4()}", question="e", state="UNCONFIRMED",
            next_poll_at=None, **{**new_run, "model": "high", "options": {"preset": "high"}},
        ),
        "running": make(
            request_id=f"resp_{uuid.uuid4()}", question="f", status="IN_PROGRESS", **new_run
        ),
        "unknown": make(
            request_id=f"resp_{uuid.uuid4()}", question="g", added_by=owner,
            status="requires_action",
        ),
    }  # fmt: skip


def _counts(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-count="([\w-]+)">(\d+)<', html))


def test_new_statuses_are_filters_with_counts(owner_client, agent_spread):
    html = owner_client.get("/").content.decode()
    assert _counts(html) == {
        "all": "7",
        "INCOMPLETE": "1",
        "CANCELLED": "1",
        "FAILED": "1",
        "RETIRED": "1",
        "UNCONFIRMED": "1",
        "IN_PROGRESS": "1",
        "requires_action": "1",
    }
    form = re.search(r'<select name="status"[^>]*>.*?</select>', html, re.S).group(0)
    for value, label in [
        ("INCOMPLETE", "Incomplete"),
        ("CANCELLED", "Cancelled"),
        ("RETIRED", "Sonar retired"),
        ("UNCONFIRMED", "May have started"),
    ]:
        assert f'<option value="{value}">{label}</option>' in form
        counts = re.search(r'<ul id="status-counts".*?</ul>', html, re.S).group(0)
        assert f'href="?status={value}"' in counts
        assert f'<span class="badge badge-{value.lower()}">{label}</span>' in counts
        rows = _rows(owner_client.get(f"/?status={value}").content.decode())
        assert rows == [agent_spread[value.lower()].request_id]
    # An upstream status sonarweb does not know is counted as itself, with no filter link.
    assert '<li><span class="badge badge-other">requires_action</span>' in html
    assert "status=requires_action" not in html


def test_badge_polling_stops_for_every_finished_or_stopped_row(owner_client, agent_spread):
    html = owner_client.get("/").content.decode()
    poller = re.search(r'<div id="badge-poller"[^>]*>', html).group(0)
    polled = set(re.findall(r"s=([\w-]+)\.", poller))
    # Only what still runs, the unknown status included, is polled.
    assert polled == {agent_spread["running"].slug, agent_spread["unknown"].slug}
    # And a batch that named them all polls on only for those.
    query = "&".join(f"s={r.slug}" for r in agent_spread.values())
    batch = owner_client.get(f"/badges/?{query}", HTTP_HX_REQUEST="true").content.decode()
    poller = re.search(r'<div id="badge-poller"[^>]*>', batch).group(0)
    assert set(re.findall(r"s=([\w-]+)\.", poller)) == polled
    # Once the last running rows stop, so does the poller.
    TrackedRequest.objects.filter(pk=agent_spread["running"].pk).update(
        status="CANCELLED", next_poll_at=None
    )
    TrackedRequest.objects.filter(pk=agent_spread["unknown"].pk).update(state="RETIRED")
    batch = owner_client.get(f"/badges/?{query}", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-get" not in re.search(r'<div id="badge-poller"[^>]*>', batch).group(0)


def test_badges_carry_each_status_in_words(owner_client, agent_spread):
    html = owner_client.get("/").content.decode()
    for key, label in [
        ("incomplete", "Incomplete"),
        ("cancelled", "Cancelled"),
        ("retired", "Sonar retired"),
        ("unconfirmed", "May have started"),
        ("unknown", "requires_action"),
    ]:
        cell = re.search(
            rf'<span id="badge-{agent_spread[key].slug}".*?</span>\s*</span>', html, re.S
        ).group(0)
        assert f">{label}</span>" in cell and 'title="' in cell


def test_model_column_and_filter_show_presets_and_resolved_models(owner_client, agent_spread):
    html = owner_client.get("/").content.decode()
    form = re.search(r'<select name="model"[^>]*>.*?</select>', html, re.S).group(0)
    # Whatever the column holds: the resolved model of a finished run, presets of the others.
    assert '<option value="openai/gpt-6-luna">openai/gpt-6-luna</option>' in form
    assert '<option value="medium">preset medium</option>' in form
    assert '<option value="high">preset high</option>' in form
    running = agent_spread["running"]
    row = re.search(rf"{running.request_id}.*?</tr>", html, re.S).group(0)
    assert '<td data-label="Model">preset medium</td>' in row
    rows = _rows(owner_client.get("/?model=medium").content.decode())
    expected = {agent_spread[k].request_id for k in ("running", "cancelled", "failed")}
    assert set(rows) == expected and len(rows) == 3


def test_the_last_poll_brings_the_whole_row_and_the_counts(
    owner_client, owner, sim_server, simulator
):
    """When the last running row finishes, the poll that says so is the last one: it carries
    the counts and the whole row (the resolved model replaces the preset), not the badge
    alone, and the poller without a trigger."""
    from django.utils import timezone

    run = simulator.add_run(OWNER_KEY, queue_seconds=0, run_seconds=60)
    tracked = poll(
        TrackedRequest.objects.create(
            request_id=run, added_by=owner, model="medium", options={"preset": "medium"}
        )
    )
    assert tracked.status == "IN_PROGRESS"
    page = owner_client.get("/").content.decode()
    assert '<td data-label="Model">preset medium</td>' in page
    poller = re.search(r'hx-get="/badges/\?([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "hx-swap-oob" not in owner_client.get(f"/badges/?{poller}").content.decode()

    simulator.advance(120)
    TrackedRequest.objects.filter(pk=tracked.pk).update(next_poll_at=timezone.now())
    tracked = poll(TrackedRequest.objects.get(pk=tracked.pk))  # as the refresher would
    assert tracked.status == "COMPLETED" and tracked.model not in ("", "medium")
    last = owner_client.get(f"/badges/?{poller}", HTTP_HX_REQUEST="true").content.decode()
    whole = rf'<template><tr id="row-{tracked.slug}" hx-swap-oob="true">.*?</tr></template>'
    row = re.search(whole, last, re.S)
    assert row is not None, last
    assert f'<td data-label="Model">{tracked.model}</td>' in row.group(0)
    assert 'data-status="COMPLETED"' in row.group(0) and tracked.request_id in row.group(0)
    assert _counts(last) == {"all": "1", "COMPLETED": "1"}
    assert re.search(r'<ul id="status-counts"[^>]* hx-swap-oob="true"', last)
    assert "hx-get" not in re.search(r'<div id="badge-poller"[^>]*>', last).group(0)
