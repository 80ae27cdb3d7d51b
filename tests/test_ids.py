from __future__ import annotations

import pytest

from sonarweb.tracker.ids import InvalidRequestId, extract_request_id

UUID = "3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b"


@pytest.mark.parametrize(
    "pasted",
    [
        UUID,
        f"  {UUID}\n",
        f"https://api.perplexity.ai/v1/async/sonar/{UUID}",
        f'{{"id": "{UUID}", "status": "CREATED"}}',
        f'"id": "{UUID}", "model": "sonar-deep-research"',
        f"request {UUID} finished",
    ],
)
def test_ids_are_dug_out_of_what_users_paste(pasted):
    assert extract_request_id(pasted) == UUID


def test_non_uuid_ids_are_accepted_when_plausible():
    assert extract_request_id("req_01HXYZ.abc:1") == "req_01HXYZ.abc:1"


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        ("", "Paste"),
        ("   ", "Paste"),
        ("abc def", "spaces"),
        ("abc/def", "/"),
        ("abc..def", ".."),
        ("../etc/passwd", "/"),
        ("x" * 129, "128"),
        ("abc\x00def", "control"),
        ("abc\x1bdef", "control"),
        ("<script>", "look like"),
        ("%2e%2e", "look like"),
    ],
)
def test_implausible_ids_are_refused_with_a_reason(pasted, reason):
    with pytest.raises(InvalidRequestId, match=reason):
        extract_request_id(pasted)


@pytest.mark.parametrize(
    "pasted",
    [
        # The page's own name is in the path; the job is in the query string or fragment.
        f"https://www.perplexity.ai/whatever?id={UUID}",
        f"https://www.perplexity.ai/search/heat-pumps-in-cold-climates-Xy9Q?request_id={UUID}",
        f"https://www.perplexity.ai/search/heat-pumps?utm_source=copy&id={UUID}&s=u",
        f"https://www.perplexity.ai/async/jobs#{UUID}",
        f"https://www.perplexity.ai/app#/jobs?id={UUID}",
        f"https://research.example.com/login?next=%2Fjobs%2F{UUID}%2Fview",
        f"https://www.perplexity.ai/async/{UUID}/details",
        f"https://api.perplexity.ai/v1/async/sonar/{UUID}?format=json",
    ],
)
def test_a_uuid_anywhere_in_a_pasted_url_is_the_id(pasted):
    assert extract_request_id(pasted) == UUID


def test_a_url_without_a_uuid_still_gives_its_last_path_segment():
    assert extract_request_id("https://api.example.com/v1/async/sonar/req_01HXYZ") == "req_01HXYZ"
