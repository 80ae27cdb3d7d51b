"""The permalink of a completed answer: header, answer, render-once, hostile payloads."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sonarweb.answers import RENDER_VERSION
from sonarweb.tracker.models import AnswerArchive, TrackedRequest

from .conftest import OWNER_KEY, archived_request, poll
from .test_answers_render import Dom
from .test_answers_security import BAD_URLS, XSS, assert_safe

pytestmark = pytest.mark.django_db

QUESTION = "How do heat pumps behave in cold climates?"


def track(simulator, owner, **job) -> TrackedRequest:
    """A tracked job, polled once the way the refresher does (finished, by default)."""
    job.setdefault("queue_seconds", 0)
    job.setdefault("run_seconds", 0)
    return poll(
        TrackedRequest.objects.create(
            request_id=simulator.add_job(OWNER_KEY, **job), added_by=owner
        )
    )


def answer_html(page: str) -> str:
    """The rendered answer fragment as the page serves it, without the page's own controls."""
    start = page.index('<article class="answer">', page.index('<section id="answer"'))
    return page[start : page.index("\n  </section>", start)]


def updates(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]


def test_completed_header_shows_question_model_timing_and_cost(
    owner_client, owner, sim_server, simulator
):
    tracked = track(simulator, owner, question=QUESTION, run_seconds=0)
    TrackedRequest.objects.filter(pk=tracked.pk).update(question=QUESTION, title="Heat pumps")
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "<h1>Heat pumps</h1>" in html
    assert f"Question:</span> {QUESTION}" in html
    for label in ("Model", "Created", "Started", "Completed", "Run time", "Cost"):
        assert f"<dt>{label}</dt>" in html, label
    assert "<dd>sonar-deep-research</dd>" in html
    assert re.search(r"<dt>Cost</dt><dd>\$\d+\.\d{4}</dd>", html)


def test_completed_answer_has_every_part(owner_client, owner, sim_server, simulator):
    tracked = track(simulator, owner, words=1500, sources=8, images=4)
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    dom = Dom(answer_html(html))
    assert dom.find("nav", "answer-toc")
    assert dom.find("a", "heading-anchor")
    assert dom.find("sup", "cites") and dom.find("a", "cite", href="#source-1")
    assert len(dom.find("li", "source-card")) == 8
    assert len(dom.find("li", "gallery-item")) == 4
    assert dom.find("details", "answer-reasoning")
    followups = dom.find("a", "followup")
    assert followups and all(a.attrs["href"].startswith("/new/?q=") for a in followups)
    assert dom.find("table", "usage-table")
    assert dom.find("code", "language-python") or dom.find("pre")
    # Downloads sit with the answer, so they also arrive when the answer is swapped in live.
    assert f'href="/r/{tracked.slug}/answer.md"' in html
    assert f'href="/r/{tracked.slug}/answer.json"' in html


def test_unfinished_page_offers_notifications_and_loads_watch_script(
    owner_client, owner, sim_server, simulator
):
    tracked = track(simulator, owner, run_seconds=3600)
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert 'id="notify-button"' in html
    assert re.search(r'<script src="/static/js/watch\.js" defer data-icon-completed="[^"]+', html)
    assert "answer.md" not in html

    done = track(simulator, owner)
    html = owner_client.get(f"/r/{done.slug}/").content.decode()
    assert 'id="notify-button"' not in html and "watch.js" not in html


# --- render once --------------------------------------------------------------------------


def archived(owner, html: str, version: int, **fields) -> TrackedRequest:
    completion = {
        "id": "job-archived",
        "model": "sonar-pro",
        "choices": [{"message": {"content": "# Fresh\n\nFresh answer [1]."}}],
        "citations": ["https://example.org/a"],
    }
    document = {"id": "job-archived", "status": "COMPLETED", "response": completion}
    return archived_request(owner, document, html=html, version=version, **fields)


def test_current_render_is_served_as_stored_without_any_write(owner_client, owner):
    # The stored HTML is deliberately not what the JSON renders to: seeing it proves the
    # page did no markdown work.
    tracked = archived(
        owner, '<article class="answer"><p>stored copy</p></article>', RENDER_VERSION
    )
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
        assert "stored copy" in html and "Fresh answer" not in html
        assert updates(queries) == []


def test_old_render_is_served_as_it_is_and_rendered_again_once_in_the_background(
    owner_client, member_client, owner
):
    from sonarweb.tracker.archive.store import rerender_stale

    tracked = archived(owner, "<p>old renderer</p>", RENDER_VERSION - 1)
    with CaptureQueriesContext(connection) as queries:
        html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    # A page view never renders: it shows what is stored until the refresher renders again.
    assert "old renderer" in html and updates(queries) == []
    assert rerender_stale() == 1
    assert rerender_stale() == 0
    assert AnswerArchive.objects.get(pk=tracked.pk).render_version == RENDER_VERSION
    again = member_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "old renderer" not in again and "Fresh answer" in again


def test_answer_that_cannot_be_rendered_says_so_and_keeps_raw_json(owner_client, owner):
    tracked = archived(owner, "", RENDER_VERSION)
    html = owner_client.get(f"/r/{tracked.slug}/").content.decode()
    assert "could not be displayed" in html
    assert f'href="/r/{tracked.slug}/answer.json"' in html


# --- hostile payloads through the real simulator -------------------------------------------

JS = "javascript:alert(document.cookie)"


def hostile_completion() -> dict:
    content = "\n\n".join(
        [
            "<think><script>alert('think')</script></think>",
            "# Title <img src=x onerror=alert(1)>",
            *XSS,
            *(f"[link {i}]({url}) and ![img {i}]({url})" for i, url in enumerate(BAD_URLS)),
            "Marker [1] and [2][3] and [99].",
            '<a href="javascript:alert(1)">raw link</a> <iframe srcdoc="<script>x</script>">',
            "```html\n<script>alert('code')</script>\n```",
        ]
    )
    return {
        "id": "hostile",
        "model": "sonar-pro",
        "choices": [
            {
                "message": {
                    "content": content,
                    "reasoning_steps": [
                        {"thought": "<script>alert(2)</script>", "type": "web_search"},
                    ],
                }
            }
        ],
        "citations": [JS, "https://ok.example/<script>", 'https://x.example/"onmouseover=alert(1)'],
        "search_results": [
            {
                "url": JS,
                "title": "<img src=x onerror=alert(3)>",
                "snippet": "<script>alert(4)</script>",
                "date": "<b>2024</b>",
            },
            {"url": "data:text/html,<script>alert(5)</script>", "title": "data"},
        ],
        "images": [
            {"image_url": JS, "origin_url": JS, "title": "<svg onload=alert(6)>"},
            {
                "image_url": "https://img.example/ok.png",
                "origin_url": "javascript:alert(7)",
                "title": '"><script>alert(8)</script>',
                "width": "100 onerror=alert(9)",
                "height": 50,
            },
        ],
        "related_questions": ["<script>alert(10)</script>", '"><img src=x onerror=alert(11)>'],
        "usage": {"cost": {"total_cost": "<script>", "<img src=x onerror=alert(12)>": 1}},
    }


def test_hostile_answer_is_inert_on_the_permalink(owner_client, owner, sim_server, simulator):
    tracked = track(simulator, owner, completion=hostile_completion())
    response = owner_client.get(f"/r/{tracked.slug}/")
    assert response.status_code == 200
    page = response.content.decode()
    section = answer_html(page)
    dom = assert_safe(section)
    for element in dom.elements:
        for name, value in element.attrs.items():
            assert not name.lower().startswith("on"), element
            if name in ("href", "src"):
                lowered = (value or "").lower()
                assert not lowered.startswith(("javascript:", "data:", "vbscript:")), element
                assert lowered.startswith(("http://", "https://", "#", "/new/?q=", "/r/")), element
        if element.tag == "a" and (element.attrs.get("href") or "").startswith("http"):
            assert element.attrs.get("rel") == "noopener noreferrer", element
        if element.tag == "img":
            assert element.attrs.get("referrerpolicy") == "no-referrer", element
    for tag in ("script", "iframe", "object", "embed", "form", "style", "svg"):
        assert f"<{tag}" not in section.lower(), tag
    # The whole page: the only scripts are our own files; the CSP header forbids inline ones.
    assert re.findall(r"<script\b[^>]*>", page) == [
        tag for tag in re.findall(r"<script\b[^>]*>", page) if 'src="/static/' in tag
    ]
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    # The payload is shown as text, not lost: readers should see what upstream sent.
    assert "<code class=\"language-html\">&lt;script&gt;alert('code')&lt;/script&gt;" in section
