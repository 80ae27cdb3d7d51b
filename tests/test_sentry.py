"""The Sentry scrubber on an event shaped like the ones sentry-sdk's Django integration sends."""

from __future__ import annotations

import json

from sonarweb.sentry import FILTERED, scrub_event

KEY = "pplx-AbCdEf0123456789ghijKLMNopqrst"


def realistic_event() -> dict:
    return {
        "level": "error",
        "logger": "sonarweb.keys",
        "logentry": {"message": f"upstream refused {KEY}", "params": [KEY]},
        "request": {
            "url": "https://research.example.com/settings/",
            "method": "POST",
            "headers": {
                "Authorization": f"Bearer {KEY}",
                "X-Api-Key": KEY,
                "Cookie": "sessionid=abc; csrftoken=def",
                "User-Agent": "Mozilla/5.0",
            },
            "data": {
                "api_key": KEY,
                "csrfmiddlewaretoken": "tok",
                "note": f"my key is {KEY}, please",
            },
            "cookies": {"sessionid": "abc"},
        },
        "exception": {
            "values": [
                {
                    "type": "Unauthorized",
                    "value": f"401 for key {KEY}",
                    "stacktrace": {
                        "frames": [
                            {
                                "function": "list_jobs",
                                "vars": {
                                    "secret": KEY,
                                    "headers": [["authorization", f"Bearer {KEY}"]],
                                    "self": "<Client>",
                                    "url": "https://api.perplexity.ai/v1/async/sonar",
                                },
                            }
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {
            "values": [{"category": "httpx", "message": f"GET with {KEY}", "data": {"n": 1}}]
        },
        "extra": {"sys.argv": ["manage.py", "refresh_requests"]},
    }


def test_no_api_key_survives_anywhere():
    scrubbed = scrub_event(realistic_event(), {})
    assert "pplx-" not in json.dumps(scrubbed)


def test_secret_fields_lose_their_values_and_the_rest_is_kept():
    scrubbed = scrub_event(realistic_event(), {})
    headers = scrubbed["request"]["headers"]
    assert headers["Authorization"] == FILTERED
    assert headers["X-Api-Key"] == FILTERED
    assert headers["Cookie"] == FILTERED
    assert headers["User-Agent"] == "Mozilla/5.0"
    data = scrubbed["request"]["data"]
    assert data["api_key"] == FILTERED and data["csrfmiddlewaretoken"] == FILTERED
    assert data["note"] == f"my key is {FILTERED}, please"
    frame_vars = scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]
    assert frame_vars["secret"] == FILTERED
    assert frame_vars["headers"] == [["authorization", FILTERED]]
    assert frame_vars["url"] == "https://api.perplexity.ai/v1/async/sonar"
    assert scrubbed["exception"]["values"][0]["value"] == f"401 for key {FILTERED}"
    assert scrubbed["logentry"]["params"] == [FILTERED]
    assert scrubbed["extra"] == {"sys.argv": ["manage.py", "refresh_requests"]}
    assert scrubbed["level"] == "error"


def test_the_original_event_is_not_modified():
    event = realistic_event()
    scrub_event(event, {})
    assert event == realistic_event()


def test_share_and_invitation_tokens_never_reach_sentry() -> None:
    from sonarweb.sentry import scrub_event

    token = "Zq" * 20
    event = {
        "request": {"url": f"https://research.example.com/s/{token}/"},
        "logentry": {"message": f"Not Found: /invite/{token}/"},
    }
    scrubbed = str(scrub_event(event))
    assert token not in scrubbed
    assert "/s/[redacted]/" in scrubbed
