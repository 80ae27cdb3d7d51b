"""Downloads of an archived answer: markdown to keep and read, raw JSON to reprocess."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe

from sonarweb.accounts.views.access import staff_required
from sonarweb.answers import references
from sonarweb.answers.export import slugify
from sonarweb.answers.sources import build_sources
from sonarweb.media.background import current_bundle, image_copies, retry_failed
from sonarweb.media.bundle import local_markdown_images
from sonarweb.media.store import media_storage

from ..archive.store import stored_job
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


def _attachment(response: HttpResponse, tracked: TrackedRequest, ending: str) -> HttpResponse:
    name = slugify(_question(tracked)) or slugify(tracked.request_id) or "answer"
    response["Content-Disposition"] = content_disposition_header(True, f"{name}{ending}")
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
    title = " ".join(_question(tracked).split())
    # Images point at this server's copies, never at the hosts the answer names.
    copies = {
        url: request.build_absolute_uri(copy.full_url)
        for url, copy in image_copies(tracked.pk).items()
        if copy.stored
    }
    text = local_markdown_images(archive.markdown, copies)
    body = f"# {title}\n\n{text}" if title else text
    response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
    return _attachment(response, tracked, ".md")


@require_safe
def answer_json(request: HttpRequest, slug: str) -> HttpResponse:
    """The job document exactly as Perplexity sent it."""
    tracked = _answered_request(request, slug)
    archive = _archive(tracked, "raw_json")
    response = HttpResponse(archive.raw_json.encode("utf-8"), content_type="application/json")
    return _attachment(response, tracked, ".json")


def _archive(tracked: TrackedRequest, column: str) -> AnswerArchive:
    """Only the column the download needs: the other one may be as large."""
    return get_object_or_404(AnswerArchive.objects.only("tracked_id", column), tracked=tracked)


# The media types of the formats reference managers import, by file ending.
REFERENCE_FORMATS = {
    "bib": "application/x-bibtex; charset=utf-8",
    "ris": "application/x-research-info-systems; charset=utf-8",
    "json": "application/vnd.citationstyles.csl+json; charset=utf-8",
}
# Sources exported at the most: an answer with 100,000 search results makes no bibliography.
MAX_REFERENCES = 1000


@require_safe
def answer_references(request: HttpRequest, slug: str, ending: str) -> HttpResponse:
    """The answer's sources for Zotero and other reference managers, in the order of the page
    (sources the text cites first): BibTeX (.bib), RIS (.ris) or CSL-JSON (.json)."""
    if ending not in REFERENCE_FORMATS:
        raise Http404("No such reference format.")
    tracked = _answered_request(request, slug)
    job = stored_job(_archive(tracked, "raw_json"))
    if job is None or job.response is None:
        raise Http404("The archived answer cannot be read.")
    sources = build_sources(job.response)[:MAX_REFERENCES]
    accessed = timezone.localdate(tracked.archived_at or timezone.now())
    key = slugify(_question(tracked), limit=30) or tracked.slug
    if ending == "bib":
        body = references.bibtex(sources, key=key, accessed=accessed)
    elif ending == "ris":
        body = references.ris(sources, accessed=accessed)
    else:
        body = references.csl_json(sources, key=key, accessed=accessed)
    response = HttpResponse(body, content_type=REFERENCE_FORMATS[ending])
    return _attachment(response, tracked, f"-sources.{ending}")


@require_safe
def answer_bundle(request: HttpRequest, slug: str) -> HttpResponse:
    """The portable .zip: the answer, its JSON, its images and a page that reads offline.

    Built in the background once the answer's images are settled; until then there is none
    to give, and the permalink says so instead of linking here.
    """
    tracked = _answered_request(request, slug)
    rendered_at = (
        AnswerArchive.objects.filter(pk=tracked.pk).values_list("rendered_at", flat=True).first()
    )
    bundle = current_bundle(tracked.pk, rendered_at)
    if bundle is None:
        raise Http404("The archive of this answer is still being prepared.")
    try:
        file = media_storage().open(bundle.name)
    except OSError as exc:
        raise Http404("The archive of this answer is missing from storage.") from exc
    return _attachment(FileResponse(file, content_type="application/zip"), tracked, ".zip")


@require_POST
@staff_required
def retry_images(request: HttpRequest, slug: str) -> HttpResponse:
    """Staff: try the answer's failed images again on the refresher's next pass."""
    tracked = _answered_request(request, slug)
    count = retry_failed(tracked.pk)
    TrackedRequest.objects.filter(pk=tracked.pk).update(updated=timezone.now())
    noun = "image" if count == 1 else "images"
    messages.success(
        request, f"{count} {noun} will be fetched again within a minute; reload to see them."
    )
    return HttpResponseRedirect(tracked.get_absolute_url(), status=303)
