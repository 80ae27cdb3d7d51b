"""Archiving a saved answer: a JSON file of a finished Sonar job or Agent run, uploaded on
the import page. No upstream call is involved: the file is the answer."""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from sonarweb.accounts.models import AuditAction, AuditEvent
from sonarweb.simulator.corpus import generate_completion
from sonarweb.tracker.import_forms import MAX_UPLOAD_BYTES
from sonarweb.tracker.models import AnswerArchive, AppState, Origin, TrackedRequest

from .conftest import archived_request

pytestmark = pytest.mark.django_db

UPLOAD = "/import/upload/"
EXAMPLES = json.loads(
    (Path(__file__).parent / "fixtures" / "agent_api_examples.json").read_text("utf-8")
)
SONAR_ID = "6c1f2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
QUESTION = "How do cold-climate heat pumps perform in Nordic winters?"
ANSWER = "Measured seasonal efficiency stays above two in the coldest month"


def sonar_completion() -> dict[str, Any]:
    completion = generate_completion(QUESTION, words=300, sources=5, images=0)
    completion["choices"][0]["message"]["content"] = f"# Heat pumps up north\n\n{ANSWER} [1][2].\n"
    return completion


def sonar_job(completion: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A COMPLETED Sonar job document as GET /v1/async/sonar/{id} answered it."""
    completion = completion or sonar_completion()
    return {
        "id": SONAR_ID,
        "model": "sonar-deep-research",
        "status": "COMPLETED",
        "created_at": 1790000000,
        "started_at": 1790000002,
        "completed_at": 1790000300,
        "failed_at": None,
        "error_message": None,
        "response": completion,
        **fields,
    }


def json_file(content: bytes | str | dict[str, Any], name: str = "answer.json") -> Any:
    if isinstance(content, dict):
        content = json.dumps(content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    return SimpleUploadedFile(name, content, content_type="application/json")


def upload(client: Client, content: Any, **kwargs: Any) -> Any:
    return client.post(UPLOAD, {"document": json_file(content)}, **kwargs)


def error_of(response: Any) -> str:
    html = response.content.decode()
    match = re.search(r'id="id_document_error">([^<]*)<', html)
    assert match, "no error sentence on the upload field"
    return match.group(1)


def test_a_sonar_job_document_is_archived_and_shown(owner_client, owner):
    document = sonar_job()
    response = upload(owner_client, document, follow=True)
    tracked = TrackedRequest.objects.get(request_id=SONAR_ID)
    assert response.redirect_chain == [(f"/r/{tracked.slug}/", 303)]
    assert tracked.origin == Origin.IMPORTED and tracked.added_by == owner
    assert tracked.status == "COMPLETED" and tracked.archived_at is not None
    assert tracked.next_poll_at is None  # nothing left to ask upstream
    assert tracked.question == ""  # a Sonar job document does not hold its messages
    archive = AnswerArchive.objects.get(tracked=tracked)
    assert json.loads(archive.raw_json) == document
    html = response.content.decode()
    assert "The uploaded answer is archived." in html
    first_source = document["response"]["search_results"][0]
    assert 'id="answer-sources"' in html and first_source["url"] in html
    assert ANSWER in html and "Heat pumps up north" in html
    assert AuditEvent.objects.filter(action=AuditAction.IMPORTED).count() == 1


def test_an_agent_completed_response_is_archived_with_its_sources(owner_client):
    document = EXAMPLES["get_completed"]
    response = upload(owner_client, document, follow=True)
    tracked = TrackedRequest.objects.get(request_id=document["id"])
    assert tracked.status == "COMPLETED" and tracked.model == "openai/gpt-6-luna"
    html = response.content.decode()
    assert "Heat pumps in cold climates" in html
    assert "https://research.example.net/heat-pumps/3" in html
    assert "https://standards.example.org/heat-pump-test" in html
    assert 'data-status="COMPLETED"' in html


def test_an_agent_document_with_its_input_gives_the_question(owner_client):
    document = {**EXAMPLES["get_completed"], "input": "  Heat pumps in Oslo?  "}
    upload(owner_client, document)
    assert TrackedRequest.objects.get().question == "Heat pumps in Oslo?"


def test_a_bom_and_invalid_utf8_are_read(owner_client):
    text = json.dumps(EXAMPLES["get_completed"]).replace("Field report 1", "Field \\u00e9 1")
    raw = b"\xef\xbb\xbf" + text.encode("utf-8").replace(b"Field report 2", b"Field \xff 2")
    response = upload(owner_client, raw)
    assert response.status_code == 303
    archive = AnswerArchive.objects.get()
    assert "Field \ufffd 2" in archive.raw_json and not archive.raw_json.startswith("\ufeff")


@pytest.mark.parametrize("status", ["in_progress", "queued"])
def test_an_unfinished_agent_run_is_refused(owner_client, status):
    document = {**EXAMPLES["get_in_progress"], "status": status}
    response = upload(owner_client, document)
    assert response.status_code == 422
    assert "is not finished" in error_of(response) and "Paste its id" in error_of(response)
    assert TrackedRequest.objects.count() == 0


def test_a_file_over_the_cap_is_refused_before_it_is_read(owner_client):
    document = sonar_job()
    text = json.dumps(document)
    padded = text[:-1] + ', "pad": "' + "x" * (MAX_UPLOAD_BYTES - len(text)) + '"}'
    assert len(padded.encode()) > MAX_UPLOAD_BYTES
    response = upload(owner_client, padded)
    assert response.status_code == 422
    assert "over the 8 MB limit for a saved answer" in error_of(response)
    assert TrackedRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "sentence"),
    [
        (b"<html>not json</html>", "This file is not JSON."),
        (b"\xff\xfe\x00garbage", "This file is not JSON."),
        (b"[" * 100_000, "This file is not JSON."),
        (b'{"hello": "world"}', "is not a Sonar job or an Agent API run"),
        (b"[1, 2, 3]", "is not a Sonar job or an Agent API run"),
        (b'{"requests": [{"id": "a", "status": "COMPLETED"}]}', "is a list of jobs"),
        (b"", "The file is empty."),
    ],
)
def test_files_that_are_not_answers_get_a_sentence(owner_client, content, sentence):
    response = upload(owner_client, content)
    assert response.status_code == 422
    assert sentence in error_of(response)
    assert TrackedRequest.objects.count() == 0


def test_a_document_with_a_bad_id_is_refused(owner_client):
    response = upload(owner_client, sonar_job(id="../../etc/passwd"))
    assert response.status_code == 422
    assert "not a valid request id" in error_of(response)
    assert TrackedRequest.objects.count() == 0


def test_no_file_chosen(owner_client):
    response = owner_client.post(UPLOAD, {})
    assert response.status_code == 422
    assert error_of(response) == "Choose a saved JSON file to upload."


def test_an_archived_request_is_not_archived_again(owner_client, owner):
    tracked = archived_request(owner, request_id=SONAR_ID)
    before = AnswerArchive.objects.get(tracked=tracked).raw_json
    response = upload(owner_client, sonar_job())
    html = response.content.decode()
    assert response.status_code == 200
    assert "is already archived, so the uploaded file was not stored" in html
    assert f'href="/r/{tracked.slug}/"' in html
    assert AnswerArchive.objects.get(tracked=tracked).raw_json == before


def test_a_tracked_request_without_archive_is_archived_into_its_row(owner_client, member):
    tracked = TrackedRequest.objects.create(
        request_id=SONAR_ID, added_by=member, state=AppState.RETIRED, next_poll_at=None
    )
    response = upload(owner_client, sonar_job())
    assert response.status_code == 303 and response["Location"] == f"/r/{tracked.slug}/"
    tracked.refresh_from_db()
    assert TrackedRequest.objects.count() == 1
    assert tracked.added_by == member and tracked.status == "COMPLETED"
    assert tracked.state == AppState.PENDING and tracked.archived_at is not None


def test_hostile_content_is_sanitized_on_the_page(owner_client):
    completion = copy.deepcopy(sonar_completion())
    completion["choices"][0]["message"]["content"] = (
        "# Findings\n\nSafe text [1].\n\n<script>alert('upload')</script>\n\n"
        '[click me](javascript:alert(1)) <a href="javascript:alert(2)">also</a> '
        "<img src=x onerror=alert(3)>\n"
    )
    completion["search_results"][0]["url"] = "javascript:alert(4)"
    completion["citations"] = ["javascript:alert(4)", *completion.get("citations", [])[1:]]
    response = upload(owner_client, sonar_job(completion), follow=True)
    html = response.content.decode()
    assert "Findings" in html and "Safe text" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html  # shown as text
    # No tag anywhere on the page links to javascript: or carries a handler.
    assert not re.search(r"<[a-z][^>]*\s(?:href|src)\s*=\s*[\"']?\s*javascript:", html, re.I)
    assert not re.search(r"<[a-z][^>]*\sonerror\s*=", html, re.I)
    assert "click me" in html


def test_nothing_of_the_file_is_logged(owner_client, caplog):
    secret = "a-sentence-only-the-file-holds"
    completion = sonar_completion()
    completion["choices"][0]["message"]["content"] = f"# Answer\n\n{secret}\n"
    with caplog.at_level(logging.DEBUG):
        upload(owner_client, sonar_job(completion))
        upload(owner_client, f"not json {secret}")
        upload(owner_client, {**EXAMPLES["get_in_progress"], "secret": secret})
    assert secret not in caplog.text


def test_upload_without_login_redirects_to_login(anon_client):
    response = upload(anon_client, sonar_job())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert TrackedRequest.objects.count() == 0


def test_upload_needs_the_csrf_token(owner, sim_server):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert upload(client, sonar_job()).status_code == 403
    assert TrackedRequest.objects.count() == 0
    page = client.get("/import/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = {"document": json_file(sonar_job()), "csrfmiddlewaretoken": token}
    response = client.post(UPLOAD, data)
    assert response.status_code == 303 and TrackedRequest.objects.count() == 1


def test_the_upload_form_is_multipart_and_accepts_json(owner_client, sim_server):
    html = owner_client.get("/import/").content.decode()
    form = re.search(r'<form method="post" action="/import/upload/"[^>]*>', html).group(0)
    assert 'enctype="multipart/form-data"' in form
    field = re.search(r'<input type="file" name="document"[^>]*>', html).group(0)
    assert 'accept="application/json,.json"' in field
