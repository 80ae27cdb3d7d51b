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
