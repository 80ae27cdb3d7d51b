"""The numbered source list that citation markers, source cards and the export share.

Numbering follows ``citations`` (marker ``[n]`` is ``citations[n-1]``); each citation borrows
title, date and snippet from the search result with the same URL. Search results that no
citation points at are appended after the citations so that nothing upstream sent is hidden,
but markers can only reach the citable ones, as the numbering upstream uses does.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sonarweb.perplexity.payload import Completion, SearchResult

SNIPPET_LIMIT = 500


@dataclass(frozen=True, slots=True)
class Source:
    number: int
    url: str
    href: str | None  # the URL when it is safe to link to, else None
    title: str
    domain: str
    date: str
    updated: str
    snippet: str
    citable: bool

    @property
    def label(self) -> str:
        """Title and domain: the accessible name a marker carries for this source."""
        if self.domain and self.domain != self.title:
            return f"{self.title} ({self.domain})"
        return self.title


def http_url(url: str) -> str | None:
    """The URL stripped of surrounding space if it is an absolute http(s) URL, else None.

    urlsplit drops tabs and newlines the way browsers do, so obfuscations such as
    ``java\\tscript:`` or ``JaVaScRiPt:`` never reach the scheme check as ``http``.
    """
    url = url.strip()
    if not url or any(ch in url for ch in '"<>\\`') or any(ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def domain_of(url: str) -> str:
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    return host.removeprefix("www.")


def _match_key(url: str) -> str:
    """Loose form of a URL so citations find their search result despite cosmetic differences."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").removeprefix("www.")
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"


def _shorten(text: str, limit: int = SNIPPET_LIMIT) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "…"


def _make(number: int, url: str, result: SearchResult | None, *, citable: bool) -> Source:
    href = http_url(url)
    domain = domain_of(url) if href else ""
    title = " ".join((result.title if result else "").split())
    return Source(
        number=number,
        url=url.strip(),
        href=href,
        title=title or domain or url.strip() or f"Source {number}",
        domain=domain,
        date=(result.date if result else "").strip(),
        updated=(result.last_updated if result else "").strip(),
        snippet=_shorten(result.snippet) if result else "",
        citable=citable,
    )


def build_sources(completion: Completion) -> list[Source]:
    results = completion.search_results
    if not completion.citations:
        return [_make(i, r.url, r, citable=True) for i, r in enumerate(results, 1)]
    by_key: dict[str, SearchResult] = {}
    for result in results:
        by_key.setdefault(_match_key(result.url), result)
    sources: list[Source] = []
    used: set[str] = set()
    for i, url in enumerate(completion.citations, 1):
        key = _match_key(url)
        used.add(key)
        sources.append(_make(i, url, by_key.get(key), citable=True))
    for result in results:
        key = _match_key(result.url)
        if key in used:
            continue
        used.add(key)
        sources.append(_make(len(sources) + 1, result.url, result, citable=False))
    return sources
