"""An answer's sources as BibTeX, RIS and CSL-JSON, for Zotero and other reference managers."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from tests.conftest import archived_request

DOCUMENT = {
    "model": "sonar-deep-research",
    "response": {
        "choices": [{"message": {"content": "Claim [1] and [2]."}}],
        "citations": [
            "https://www.alpha.example/a",
            "https://beta.example/b_{x}",
            "javascript:alert(1)",
        ],
        "search_results": [
            {
                "url": "https://www.alpha.example/a",
                "title": "Alpha & {Omega} 100%",
                "date": "2024-03-05",
            },
            {"url": "https://beta.example/b_{x}", "title": "Beta\nreport"},
        ],
    },
}


@pytest.fixture
def answered(owner):
    return archived_request(owner, DOCUMENT, request_id="job-refs", question="Do refs work?")


def fetch(client, tracked, ending: str):
    return client.get(reverse("answer_references", args=[tracked.slug, ending]))


def test_bibtex_entries_are_escaped_and_complete(owner_client, answered) -> None:
    response = fetch(owner_client, answered, "bib")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/x-bibtex")
    assert 'filename="do-refs-work-sources.bib"' in response["Content-Disposition"]
    text = response.content.decode()
    entries = re.findall(r"@online\{([^,]+),", text)
    assert entries == ["do-refs-work-1", "do-refs-work-2"]  # the javascript: one is left out
    assert r"title = {{Alpha \& \{Omega\} 100\%}}" in text
    assert "date = {2024-03-05}" in text and "organization = {alpha.example}" in text
    assert "url = {https://beta.example/b_%7Bx%7D}" in text
    # Balanced braces: every entry parses.
    assert text.count("{") == text.count("}")


def test_ris_records_follow_the_spec(owner_client, answered) -> None:
    text = fetch(owner_client, answered, "ris").content.decode()
    records = [r for r in text.split("ER  - ") if r.strip()]
    assert len(records) == 2
    assert "TY  - ELEC\r\nTI  - Alpha & {Omega} 100%\r\nUR  - https://www.alpha.example/a" in text
    assert "PY  - 2024\r\n" in text and "DA  - 2024/03/05/" in text
    assert "TI  - Beta report" in text
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]  - .*", line) for line in text.splitlines() if line)


def test_csl_json_is_a_list_of_webpages(owner_client, answered) -> None:
    items = json.loads(fetch(owner_client, answered, "json").content)
    assert [item["type"] for item in items] == ["webpage", "webpage"]
    assert items[0]["issued"] == {"date-parts": [[2024, 3, 5]]}
    assert items[0]["container-title"] == "alpha.example"
    assert items[1]["title"] == "Beta report"
    assert "date-parts" in items[1]["accessed"]


def test_unknown_formats_and_unanswered_requests_are_404(owner_client, owner, answered) -> None:
    assert fetch(owner_client, answered, "docx").status_code == 404
    from sonarweb.tracker.models import TrackedRequest

    running = TrackedRequest.objects.create(request_id="job-running", added_by=owner)
    assert fetch(owner_client, running, "bib").status_code == 404


def test_references_need_sign_in(anon_client, answered) -> None:
    response = fetch(anon_client, answered, "bib")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
