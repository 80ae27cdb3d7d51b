"""Downloads of an archived answer: markdown to keep and read, raw JSON to reprocess."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from sonarweb.answers.export import slugify

from ..models import AnswerArchive, TrackedRequest
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
    """The answer with its numbered sources; the reasoning stays out. Rendered once, when the
    answer was archived; only the title line is added here, since the title may change."""
    tracked = _answered_request(request, slug)
    archive = _archive(tracked, "markdown")
    if not archive.markdown:
        # Unparseable JSON stays downloadable as answer.json; there is no markdown to make.
        raise Http404("The archived answer cannot be read as markdown.")
    question = _question(tracked)
    name = slugify(question) or slugify(tracked.request_id) or "answer"
    title = " ".join(question.split())
    body = f"# {title}\n\n{archive.markdown}" if title else archive.markdown
    response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
    return _attachment(response, f"{name}.md")


@require_safe
def answer_json(request: HttpRequest, slug: str) -> HttpResponse:
    """The job document exactly as Perplexity sent it."""
    tracked = _answered_request(request, slug)
    archive = _archive(tracked, "raw_json")
    name = slugify(_question(tracked)) or slugify(tracked.request_id) or "answer"
    response = HttpResponse(archive.raw_json.encode("utf-8"), content_type="application/json")
    return _attachment(response, f"{name}.json")


def _archive(tracked: TrackedRequest, column: str) -> AnswerArchive:
    """Only the column the download needs: the other one may be as large."""
    return get_object_or_404(AnswerArchive.objects.only("tracked_id", column), tracked=tracked)
