"""The numbered source list that citation markers, source cards and the export share.

Numbering follows ``citations`` (marker ``[n]`` is ``citations[n-1]``); each citation borrows
title, date and snippet from the search result with the same URL. Search results that no
citation points at are appended after the citations so that nothing upstream sent is hidden,
but markers can only reach the citable ones, as the numbering upstream uses does.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload
from urllib.parse import urlsplit

from sonarweb.perplexity.payload import Completion, SearchResult, distinct

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


class SourceList(Sequence[Source]):
    """An answer's numbered sources, each ``Source`` built when it is asked for.

    The page lists the cited sources and 200 others, the references export 1,000, and an
    answer may carry a million search results: a ``Source`` for each was 160 MB at the
    moment archiving peaks. The numbering and the count are settled up front (one pass over
    the results, for duplicates); the ``Source`` objects only on demand, and not kept.
    """

    __slots__ = ("_citations", "_matched", "_others", "_results", "citable")

    def __init__(self, completion: Completion) -> None:
        results = completion.search_results
        citations = completion.citations
        self._results = results
        self._citations = citations
        # The sources markers can reach, numbered 1 to ``citable``.
        self.citable = len(citations) if citations else len(results)
        # Per citation, the first search result with the same URL (for its title, date...).
        self._matched: list[SearchResult | None] = []
        # Indexes of the search results listed after the citations, each URL once.
        self._others: Sequence[int] = range(len(results))
        if not citations:
            return
        keys = [_match_key(url) for url in citations]
        cited = set(keys)
        first: dict[str, SearchResult] = {}
        others = array("q")
        hashes = array("q")
        for index, result in enumerate(results):
            key = _match_key(result.url)
            if key in cited:
                first.setdefault(key, result)
            else:
                others.append(index)
                hashes.append(hash(key))
        self._matched = [first.get(key) for key in keys]
        self._others = distinct(others, hashes, lambda index: _match_key(results[index].url))

    def __len__(self) -> int:
        return len(self._citations) + len(self._others)

    @overload
    def __getitem__(self, index: int) -> Source: ...

    @overload
    def __getitem__(self, index: slice) -> list[Source]: ...

    def __getitem__(self, index: int | slice) -> Source | list[Source]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("source number out of range")
        number = index + 1
        if index < len(self._citations):
            return _make(number, self._citations[index], self._matched[index], citable=True)
        result = self._results[self._others[index - len(self._citations)]]
        return _make(number, result.url, result, citable=not self._citations)


def build_sources(completion: Completion) -> SourceList:
    return SourceList(completion)


def citable_count(sources: Sequence[Source]) -> int:
    """How many of the sources markers can reach (they come first)."""
    if isinstance(sources, SourceList):
        return sources.citable
    return sum(1 for source in sources if source.citable)
