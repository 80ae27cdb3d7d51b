from __future__ import annotations

import json

import pytest

from sonarweb.tracker.ids import InvalidRequestId, extract_request_id, extract_request_ids

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


@pytest.mark.parametrize(
    "pasted",
    [
        "resp_3b8e2f4c-9d1a-4e7b-8c2f-5a6d7e8f9a0b",
        "  resp_3b8e2f4c-9d1a-4e7b-8c2f-5a6d7e8f9a0b\n",
        '{"id": "resp_3b8e2f4c-9d1a-4e7b-8c2f-5a6d7e8f9a0b", "object": "response"}',
        "https://example.com/runs/resp_3b8e2f4c-9d1a-4e7b-8c2f-5a6d7e8f9a0b?x=1",
        '{"response_id":"resp_3b8e2f4c-9d1a-4e7b-8c2f-5a6d7e8f9a0b","status":"cancelling"}',
    ],
)
def test_an_agent_run_id_keeps_its_prefix(pasted: str) -> None:
    assert extract_request_id(pasted) == "resp_3b8e2f4c-9d1a-4e7b-8c2f-5a6d7e8f9a0b"


# -- many ids at once ---------------------------------------------------------------------------

RUN = f"resp_{UUID}"
RUN_2 = "resp_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.mark.parametrize("separator", ["\n", "\r\n", ",", ", ", " ", "\t", ";", " ,\n\n"])
def test_pasted_lists_with_any_separator(separator):
    assert extract_request_ids(separator.join([RUN, RUN_2, UUID])).ids == [RUN, RUN_2, UUID]


def test_ids_in_prose_and_links_are_found_once_each():
    found = extract_request_ids(
        f"Run {RUN} (see https://example.com/r?next=%2Fagent%2F{RUN_2}) and {RUN} again; "
        f"a message msg_{UUID} is not a job."
    )
    assert found.ids == [RUN, RUN_2] and found.repeats == 1 and found.invalid == []


@pytest.mark.parametrize(
    "garbled",
    [RUN[:-3], RUN + "abc", "resp_" + UUID.replace("-", ""), "resp_hello", RUN + "_v2"],
)
def test_garbled_run_ids_are_reported_with_a_reason(garbled):
    found = extract_request_ids(f"ok {RUN_2}, broken {garbled}.")
    assert found.ids == [RUN_2]
    assert [text for text, _ in found.invalid] == [garbled]
    assert "resp_ followed by a UUID" in found.invalid[0][1]


def test_words_are_not_mistaken_for_ids():
    found = extract_request_ids("Please track these when you can, thanks! resp_ ids only.")
    assert found.ids == [] and found.invalid == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([RUN, RUN_2], [RUN, RUN_2]),
        ([{"id": RUN}, {"id": UUID, "status": "COMPLETED"}], [RUN, UUID]),
        ({"id": RUN, "object": "response", "output": [{"id": f"msg_{UUID}"}]}, [RUN]),
        ({"response_id": RUN, "status": "cancelling"}, [RUN]),
        ({"requests": [{"id": UUID}, {"id": "job-7"}], "next_token": None}, [UUID, "job-7"]),
        # Deeper down only run ids count: a UUID in an answer's link is not a job.
        ({"a": {"b": [f"text {RUN_2} text", f"https://x.example/{UUID}"]}}, [RUN_2]),
        ({"id": UUID, "response": {"id": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"}}, [UUID]),
    ],
)
def test_json_in_its_usual_shapes(document, expected):
    assert extract_request_ids(json.dumps(document)).ids == expected


def test_json_list_elements_that_are_not_ids_are_reported():
    found = extract_request_ids(json.dumps([RUN, "two words", "a/b", "x" * 300]))
    assert found.ids == [RUN]
    reasons = [reason for _, reason in found.invalid]
    assert "no spaces" in reasons[0] and "'/'" in reasons[1] and "128" in reasons[2]
    assert len(found.invalid[2][0]) == 80 and found.invalid[2][0].endswith("…")


def test_deep_or_broken_json_falls_back_to_text():
    assert extract_request_ids("[" * 50_000 + RUN).ids == [RUN]
    assert extract_request_ids(f'{{"id": "{RUN}", ').ids == [RUN]


def test_control_characters_never_reach_a_report():
    found = extract_request_ids(json.dumps(["ab\x00\x1bc"]))
    assert found.invalid[0][0] == "ab\ufffd\ufffdc" and "control" in found.invalid[0][1]
