"""The import page's forms: many pasted ids at once, and a saved answer uploaded as a file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from sonarweb.perplexity import agent
from sonarweb.perplexity.client import human_size
from sonarweb.perplexity.documents import parse_document
from sonarweb.perplexity.payload import Job, PayloadError, as_dict, as_list, as_str

from .forms import FocusFirstInvalid
from .ids import FoundIds, InvalidRequestId, extract_request_ids, validate_request_id
from .models import STATUS_LABELS

# Django refuses a form body over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) before this is read;
# this says so in a sentence for what gets through.
MAX_PASTE_CHARS = 2_000_000
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_QUESTION_CHARS = 20_000


class PasteIdsForm(FocusFirstInvalid):
    pasted = forms.CharField(
        label="Request ids",
        max_length=MAX_PASTE_CHARS,
        error_messages={
            "required": "Paste at least one request id.",
            "max_length": f"Paste at most {MAX_PASTE_CHARS:,} characters at once.",
        },
        help_text=(
            "Agent run ids (resp_…) and Sonar job ids, separated by anything: new lines, "
            "commas or spaces. JSON that holds them, or links that contain them, work too."
        ),
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "autocomplete": "off",
                "spellcheck": "false",
                "placeholder": "resp_3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b",
            }
        ),
    )

    def clean_pasted(self) -> FoundIds:
        found = extract_request_ids(self.cleaned_data["pasted"])
        if not found.ids and not found.invalid:
            raise forms.ValidationError(
                "No request ids were found in what you pasted: an Agent run id looks like "
                "resp_3f1c9a2e-7b4d-4e8f-9a1b-2c3d4e5f6a7b, a Sonar job id like the same "
                "without resp_.",
                code="empty",
            )
        return found


@dataclass(frozen=True)
class SavedDocument:
    """An uploaded answer, read: the job or run, its text exactly as stored, its question."""

    job: Job
    raw_text: str
    question: str
    size: int


class SavedAnswerForm(FocusFirstInvalid):
    document = forms.FileField(
        label="Saved answer (JSON file)",
        error_messages={
            "required": "Choose a saved JSON file to upload.",
            "empty": "The file is empty.",
            "invalid": "No file was received; choose the file again.",
        },
        help_text=(
            "The JSON of a finished Sonar job or Agent API run, as it was saved from "
            f"Perplexity (at most {human_size(MAX_UPLOAD_BYTES)}). It is archived here like "
            "any answer sonarweb fetched itself."
        ),
        widget=forms.FileInput(attrs={"accept": "application/json,.json"}),
    )

    def clean_document(self) -> SavedDocument:
        upload: UploadedFile = self.cleaned_data["document"]
        text, size = _read(upload)
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError(
                "This file is not JSON. Upload the .json file of a saved answer.", code="not_json"
            ) from exc
        if isinstance(raw, dict) and isinstance(raw.get("requests"), list) and "id" not in raw:
            raise forms.ValidationError(
                "This file is a list of jobs, not one answer. Paste it in the box above to "
                "track the jobs it names.",
                code="a_list",
            )
        try:
            job = parse_document(raw)
        except (PayloadError, RecursionError) as exc:
            raise forms.ValidationError(
                "This JSON is not a Sonar job or an Agent API run: it has no id or no status.",
                code="not_a_job",
            ) from exc
        if not job.finished:
            label = STATUS_LABELS.get(job.status, job.status)
            kind = "run" if agent.is_run_id(job.id) else "job"
            raise forms.ValidationError(
                f"This {kind} is not finished (its status is {label}), so there is no "
                "answer to archive yet. Paste its id in the box above to follow it instead.",
                code="unfinished",
            )
        try:
            validate_request_id(job.id)
        except InvalidRequestId as exc:
            raise forms.ValidationError(
                f"The id in this file is not a valid request id: {exc}", code="bad_id"
            ) from exc
        return SavedDocument(job=job, raw_text=text, question=question_of(raw), size=size)


def _read(upload: UploadedFile) -> tuple[str, int]:
    """The file's text, never reading more than the cap (plus one byte, to know it is over)."""
    too_large = forms.ValidationError(
        f"The file is over the {human_size(MAX_UPLOAD_BYTES)} limit for a saved answer.",
        code="too_large",
    )
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise forms.ValidationError(
            f"The file is {human_size(upload.size)}, over the {human_size(MAX_UPLOAD_BYTES)} "
            "limit for a saved answer.",
            code="too_large",
        )
    upload.seek(0)
    data = upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise too_large
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff"), len(data)


def question_of(raw: Any) -> str:
    """The question where the document carries one: an Agent document saved with its
    ``input`` (a string, or messages whose first user message is the question). A Sonar job
    document never holds its messages."""
    value = as_dict(raw).get("input")
    if isinstance(value, str):
        return as_str(value).strip()[:MAX_QUESTION_CHARS]
    for item in as_list(value):
        message = as_dict(item)
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return as_str(content).strip()[:MAX_QUESTION_CHARS]
        texts = [as_str(as_dict(part).get("text")) for part in as_list(content)]
        return " ".join(t for t in texts if t).strip()[:MAX_QUESTION_CHARS]
    return ""
