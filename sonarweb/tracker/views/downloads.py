"""Downloads of an archived answer: markdown to keep and read, raw JSON to reprocess."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from sonarweb.answers.export import export_markdown, slugify

from ..archive import stored_completion
from ..models import TrackedRequest
from .access import get_request_for_user


def _answered_request(request: HttpRequest, slug: str) -> TrackedRequest:
    tracked = get_request_for_user(request, slug)
    if not tracked.has_answer:
        raise Http404("This request has no archived answer.")
    return tracked


def _question(tracked: TrackedRequest) -> str:
    # A pasted id has no question; a title someone gave it names the file better than the id.
    return tracked.question or tracked.title


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = content_disposition_header(True, filename)
    # The body is user-supplied text from the web: never let a browser render it inline.
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def answer_markdown(request: HttpRequest, slug: str) -> HttpResponse:
    """The answer with its numbered sources; the reasoning stays out."""
    tracked = _answered_request(request, slug)
    completion = stored_completion(tracked)
    if completion is None:
        # Unparseable JSON stays downloadable as answer.json; there is no markdown to make.
        raise Http404("The archived answer cannot be read as markdown.")
    filename, text = export_markdown(
        completion, question=_question(tracked), request_id=tracked.request_id
    )
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    return _attachment(response, filename)


@require_safe
def answer_json(request: HttpRequest, slug: str) -> HttpResponse:
    """The job document exactly as Perplexity sent it."""
    tracked = _answered_request(request, slug)
    name = slugify(_question(tracked)) or slugify(tracked.request_id) or "answer"
    response = HttpResponse(tracked.raw_json.encode("utf-8"), content_type="application/json")
    return _attachment(response, f"{name}.json")
