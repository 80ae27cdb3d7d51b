"""Answers read with their sources streamed, and numbered lazily, are the answers read whole.

``payload.loads_streamed`` hands the source arrays to collectors while it parses, and
``SourceList`` builds a source only when it is asked for: both exist for memory (see
tests/test_memory_bounds.py). Here they are held to what they replace: ``json.loads`` and
the parsers given the whole tree, and the source list as it was built eagerly.
"""

from __future__ import annotations

import copy
import json
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sonarweb.answers import render
from sonarweb.answers.export import render_plain_markdown
from sonarweb.answers.render import listed_sources, render_completion
from sonarweb.answers.sources import Source, SourceList, _make, build_sources
from sonarweb.perplexity import agent, documents, sonar
from sonarweb.perplexity.payload import Completion, SearchResult, distinct, loads_streamed

from .test_payload_fuzz import JSON

EXAMPLES: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "agent_api_examples.json").read_text()
)
CHECKS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every element of these arrays goes to a list: the document must come out as json.loads's.
AS_LISTS = {path: list for path in documents.SOURCE_ARRAYS}

# Source entries: URLs that differ only cosmetically (one source for the page), duplicates,
# entries without a URL or not objects at all, ids of every kind.
URLS = st.sampled_from(
    [
        "https://a.example/x",
        "https://www.a.example/x/",
        "http://a.example/x",
        " https://a.example/x ",
        "https://a.example/x?q=1",
        "https://b.example/",
        "https://b.example",
        "javascript:alert(1)",
        "https://c.example/é",
        "",
    ]
)
ENTRY = st.one_of(
    st.fixed_dictionaries(
        {"url": URLS},
        optional={
            "id": st.one_of(st.integers(-2, 6), st.sampled_from(["3", "x", None, 2.0, True])),
            "title": st.one_of(st.text(max_size=8), st.none(), st.integers()),
            "snippet": st.text(max_size=8),
            "date": st.sampled_from(["2024-01-02", "", "yesterday"]),
            "source": st.sampled_from(["web", None, 3]),
            "extra": JSON,
        },
    ),
    JSON,
)
ENTRIES = st.one_of(st.lists(ENTRY, max_size=8), JSON)


def agent_document(items: list[Any], text: str) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLES["get_completed"])
    message = {"type": "message", "content": [{"type": "output_text", "text": text}]}
    doc["output"] = [*items, message]
    return doc


AGENT_ITEMS = st.lists(
    st.one_of(
        st.builds(lambda entries: {"type": "search_results", "results": entries}, ENTRIES),
        st.builds(lambda entries: {"type": "fetch_url_results", "contents": entries}, ENTRIES),
        # The array of the other kind, and items of a kind that has no sources.
        st.builds(lambda entries: {"type": "search_results", "contents": entries}, ENTRIES),
        st.builds(lambda entries: {"type": "other", "results": entries}, ENTRIES),
        st.builds(lambda entries: {"results": entries, "type": "search_results"}, ENTRIES),
        JSON,
    ),
    max_size=4,
)
MARKERS = st.sampled_from(["An answer [1].", "[1][2] and [web:3]", "No markers.", "`[1]` [9]"])


def same(ours: Any, theirs: Any) -> bool:
    """The same document, keys in the same order (NaN, which equals nothing, included)."""
    return json.dumps(ours) == json.dumps(theirs) and type(ours) is type(theirs)


@CHECKS
@given(JSON)
def test_any_json_reads_as_json_loads_reads_it(document: Any) -> None:
    for text in (json.dumps(document), json.dumps(document, indent=2)):
        assert same(loads_streamed(text, AS_LISTS), json.loads(text))


@CHECKS
@given(AGENT_ITEMS, st.sampled_from([None, 1, 2]))
def test_documents_with_sources_read_as_json_loads_reads_them(items: list[Any], indent) -> None:
    text = json.dumps({"output": items, "response": {"search_results": items}}, indent=indent)
    assert same(loads_streamed(text, AS_LISTS), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '{"output": [{"results": [1,]}]}',
        '{"output": [{"results": [{"url": "x"}]},]}',
        '{"output": [{"results": [{"url": "x"} {"url": "y"}]}]}',
        '{"output": [{"results": [',
        '{"output": []} trailing',
        '{"output" []}',
        '{"output": [], }',
        "{'output': []}",
        '\ufeff{"output": []}',
        '{"response": {"search_results": [{"url": "a\x01"}]}}',
        '{"response": {"search_results": [NaN, Infinity, -Infinity, 1e999]}}',
        '{"response": {"search_results": [1' + "0" * 5000 + "]}}",
        '{"output": [{"results": [{"url": "x"}], "results": [{"url": "y"}]}]}',
        ' \n{"output": [ { "results" : [ {"url": "x"} , 2 ] } ] }\n ',
    ],
)
def test_what_is_not_json_raises_what_json_loads_raises(text: str) -> None:
    try:
        expected: Any = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)) as raised:
            loads_streamed(text, AS_LISTS)
        assert str(raised.value) == str(exc)
        return
    # Odd but valid (NaN, a key given twice, spaces): the same document.
    assert same(loads_streamed(text, AS_LISTS), expected)


def test_nesting_too_deep_raises_as_json_loads_does() -> None:
    text = '{"output": [{"results": [' + "[" * 100_000 + "]" * 100_000 + "]}]}"
    with pytest.raises(RecursionError):
        json.loads(text)
    with pytest.raises(RecursionError):
        loads_streamed(text, AS_LISTS)


@CHECKS
@given(AGENT_ITEMS, MARKERS)
def test_an_agent_run_parses_from_its_text_as_from_its_json(items: list[Any], text: str) -> None:
    doc = agent_document(items, text)
    raw = json.dumps(doc)
    expected = agent.parse_response(copy.deepcopy(doc))
    assert documents.loads_document(raw) == expected
    assert agent.parse_response(documents.load_json(raw)) == expected


@CHECKS
@given(ENTRIES, st.lists(URLS, max_size=4))
def test_a_sonar_job_parses_from_its_text_as_from_its_json(entries: Any, citations) -> None:
    doc = {
        "id": "job-1",
        "status": "COMPLETED",
        "response": {
            "choices": [{"message": {"content": "An answer [1][2]."}}],
            "citations": citations,
            "search_results": entries,
        },
    }
    raw = json.dumps(doc)
    expected = sonar.parse_job(copy.deepcopy(doc))
    assert sonar.loads_job(raw) == expected
    assert documents.loads_document(raw) == expected


# The source list --------------------------------------------------------------------------


def _eager_key(url: str) -> str:
    parts = urlsplit(url.strip())
    query = f"?{parts.query}" if parts.query else ""
    return f"{(parts.hostname or '').removeprefix('www.')}{parts.path.rstrip('/')}{query}"


def eager_sources(completion: Completion) -> list[Source]:
    """The source list as it was built before it was lazy: every source, at once."""
    results = completion.search_results
    if not completion.citations:
        return [_make(i, r.url, r, citable=True) for i, r in enumerate(results, 1)]
    by_key: dict[str, SearchResult] = {}
    for result in results:
        by_key.setdefault(_eager_key(result.url), result)
    sources: list[Source] = []
    used: set[str] = set()
    for i, url in enumerate(completion.citations, 1):
        used.add(_eager_key(url))
        sources.append(_make(i, url, by_key.get(_eager_key(url)), citable=True))
    for result in results:
        key = _eager_key(result.url)
        if key not in used:
            used.add(key)
            sources.append(_make(len(sources) + 1, result.url, result, citable=False))
    return sources


def eager_listed(sources: Sequence[Source], cited: set[int], limit: int) -> list[Source]:
    listed, uncited = [], 0
    for source in sources:
        if source.number in cited:
            listed.append(source)
        elif uncited < limit:
            listed.append(source)
            uncited += 1
    return listed


SOURCE_URLS = st.lists(URLS.filter(bool), max_size=12)


@CHECKS
@given(SOURCE_URLS, SOURCE_URLS, st.sets(st.integers(1, 14), max_size=5))
def test_sources_are_numbered_and_counted_as_before(results, citations, cited) -> None:
    completion = Completion(
        citations=tuple(citations),
        search_results=tuple(SearchResult(url=u.strip(), title=u[:9]) for u in results),
    )
    sources = build_sources(completion)
    expected = eager_sources(completion)
    assert isinstance(sources, SourceList)
    assert len(sources) == len(expected)
    assert list(sources) == expected
    assert sources[-1:] == expected[-1:] and sources[1:5:2] == expected[1:5:2]
    assert sources.citable == sum(1 for s in expected if s.citable)
    cited = {n for n in cited if n <= sources.citable}
    listed, hidden = listed_sources(sources, cited)
    assert listed == eager_listed(expected, cited, render.UNCITED_LISTED)
    assert hidden == len(expected) - len(listed)


def test_past_the_uncited_limit_only_cited_sources_are_listed(monkeypatch) -> None:
    monkeypatch.setattr(render, "UNCITED_LISTED", 3)
    urls = [f"https://s{n}.example/" for n in range(1, 11)]
    completion = Completion(
        content="Cited: [2] and [9], and [4][2].",
        citations=tuple(urls),
        search_results=tuple(SearchResult(url=u) for u in [*urls, "https://more.example/"]),
    )
    sources = build_sources(completion)
    listed, hidden = listed_sources(sources, {2, 4, 9})
    assert [s.number for s in listed] == [1, 2, 3, 4, 5, 9]
    assert listed == eager_listed(eager_sources(completion), {2, 4, 9}, 3)
    assert hidden == 11 - 6
    html = render_completion(completion)
    assert html.count('<li class="source-card') == 6
    assert "5 more sources that the answer does not cite" in html
    markdown = render_plain_markdown(completion)
    assert "[^9]: [s9.example](https://s9.example/)" in markdown
    assert "5 more sources that the answer does not cite are in answer.json." in markdown


def test_distinct_keeps_the_first_of_each_key_whatever_the_hashes() -> None:
    keys = ["a", "b", "a", "c", "b", "d"]

    def key_of(index: int) -> str:
        return keys[index]

    same = array("q", [7] * len(keys))  # every hash clashes: the keys decide
    assert list(distinct(range(6), same, key_of)) == [0, 1, 3, 5]
    # Hashes that share a bit of the bitmap but differ: different keys, all kept.
    close = array("q", [5, 5 + (1 << 40), 5 + (1 << 41), 5 + (1 << 42), 5 + (1 << 43), 6])
    assert list(distinct(range(6), close, lambda i: i)) == [0, 1, 2, 3, 4, 5]
    real = array("q", [hash(k) for k in keys])
    assert list(distinct(range(6), real, key_of)) == [0, 1, 3, 5]
    assert list(distinct(range(0), array("q"), key_of)) == []
