"""The upstream client against the simulator over real HTTP."""

from __future__ import annotations

import logging
from email.utils import formatdate

import pytest

from sonarweb.perplexity import client as upstream
from sonarweb.perplexity.client import PerplexityClient, parse_retry_after

from .conftest import OWNER_KEY
from .media_helpers import RawServer, answer


@pytest.fixture
def api(sim_server):
    calls: list[upstream.CallRecord] = []
    with PerplexityClient(
        OWNER_KEY,
        base_url=sim_server.url,
        read_timeout=1.0,
        connect_timeout=1.0,
        on_call=calls.append,
    ) as client:
        client.calls = calls
        yield client


def test_get_job_returns_parsed_job_and_verbatim_text(api, simulator):
    job_id = simulator.add_job(OWNER_KEY, run_seconds=0, queue_seconds=0)
    job, text = api.get_job(job_id)
    assert job.id == job_id
    assert job.status == "COMPLETED"
    assert job.response is not None and job.response.content
    assert f'"{job_id}"' in text
    assert api.calls[-1].status == 200 and api.calls[-1].endpoint == "get"


def test_list_jobs(api, simulator):
    job_id = simulator.add_job(OWNER_KEY)
    page = api.list_jobs()
    assert job_id in [j.id for j in page.jobs]


def test_validation_error_has_details(api):
    with pytest.raises(upstream.Rejected) as info:
        api.list_jobs("garbage!")
    assert info.value.status == 422
    assert "next_token" in str(info.value)


def test_bad_key_is_unauthorized(sim_server):
    with PerplexityClient("pplx-unknown00000000000", base_url=sim_server.url) as api:
        with pytest.raises(upstream.Unauthorized):
            api.list_jobs()


def test_unknown_id_is_not_found(api):
    with pytest.raises(upstream.NotFound):
        api.get_job("no-such-job")


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("server_error", upstream.ServerError),
        ("not_json", upstream.BadPayload),
        ("list_instead_of_job", upstream.WrongJob),
        ("rate_limit", upstream.RateLimited),
        ("slow", upstream.UpstreamTimeout),
    ],
)
def test_faults_become_typed_transient_errors(api, simulator, kind, error):
    job_id = simulator.add_job(OWNER_KEY)
    simulator.inject(kind, endpoint="get", retry_after=7, delay=2.5)
    with pytest.raises(error) as info:
        api.get_job(job_id)
    assert info.value.transient
    if kind == "rate_limit":
        assert info.value.retry_after == 7
    # The fault was consumed: the next call works.
    job, _ = api.get_job(job_id)
    assert job.id == job_id


def test_network_error_when_nothing_listens():
    with PerplexityClient(OWNER_KEY, base_url="http://127.0.0.1:9", connect_timeout=0.5) as api:
        with pytest.raises(upstream.NetworkError):
            api.list_jobs()


def test_key_never_logged_or_in_errors(api, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    simulator.inject("server_error", endpoint="list")
    with pytest.raises(upstream.ServerError) as info:
        api.list_jobs()
    api.list_jobs()
    assert OWNER_KEY not in caplog.text
    assert OWNER_KEY not in str(info.value) and OWNER_KEY not in repr(info.value)
    assert "upstream GET list" in caplog.text
    assert all(OWNER_KEY not in repr(c) for c in api.calls)


def test_id_is_quoted_into_the_path(api, simulator):
    with pytest.raises(upstream.NotFound):
        api.get_job("a?b#c")
    assert simulator.calls.count(endpoint="get") >= 1


def test_retry_after_forms():
    assert parse_retry_after("12") == 12
    assert parse_retry_after("  0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0


def test_the_list_instead_of_the_job_is_a_wrong_job(api, simulator):
    job_id = simulator.add_job(OWNER_KEY)
    simulator.inject("list_instead_of_job", endpoint="get")
    with pytest.raises(upstream.WrongJob, match="list of jobs"):
        api.get_job(job_id)


def test_json_that_is_no_job_at_all_is_a_bad_payload(api, simulator):
    job_id = simulator.add_job(OWNER_KEY)
    simulator.inject("not_a_job", endpoint="get")
    with pytest.raises(upstream.BadPayload) as info:
        api.get_job(job_id)
    assert not isinstance(info.value, upstream.WrongJob)


def test_a_byte_order_mark_is_skipped_and_bad_bytes_are_replaced():
    run_id = "resp_3b8e2f4c-9d1a-4e7b-8c2f-5a6d7e8f9a0b"
    text = f'{{"id": "{run_id}", "status": "queued", "model": "caf\u00e9 X"}}'
    # UTF-8 after a byte order mark, one byte that is no UTF-8, and labelled Latin-1 besides.
    body = b"\xef\xbb\xbf" + text.encode().replace(b"X", b"\xff")
    headers = {"Content-Type": "application/json; charset=iso-8859-1"}
    with RawServer(answer(200, body, headers)) as server:
        with PerplexityClient(OWNER_KEY, base_url=server.url(path="")) as api:
            job, received = api.get_run(run_id)
    assert received == text.replace("X", "\ufffd")
    assert (job.id, job.model) == (run_id, "caf\u00e9 \ufffd")
