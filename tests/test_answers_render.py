"""render_completion: the answer, markers, sources, reasoning, gallery, related, usage."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from random import Random
from typing import Any

import pytest

from sonarweb.answers import RENDER_VERSION, render_completion
from sonarweb.answers.images import ImageCopy
from sonarweb.answers.sections import usd
from sonarweb.perplexity.payload import Completion, Usage
from sonarweb.perplexity.sonar import parse_completion


class Element:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.text = ""
        self.ancestors: list[Element] = []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def __repr__(self) -> str:
        return f"<{self.tag} {self.attrs}>{self.text[:40]}"


class Dom(HTMLParser):
    """Just enough DOM for assertions: every element with its attributes and text content."""

    VOID = {"br", "img", "hr", "input", "meta", "link", "source", "wbr", "col"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.text = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        element.ancestors = list(self._open)
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                del self._open[i:]
                break

    def handle_data(self, data: str) -> None:
        self.text += data
        for element in self._open:
            element.text += data

    def find(self, tag: str = "", cls: str = "", **attrs: str) -> list[Element]:
        found = []
        for e in self.elements:
            if tag and e.tag != tag:
                continue
            if cls and cls not in e.classes:
                continue
            if any(e.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            found.append(e)
        return found

    def one(self, tag: str = "", cls: str = "", **attrs: str) -> Element:
        found = self.find(tag, cls, **attrs)
        assert len(found) == 1, found
        return found[0]


def raw(content: Any = "", **fields: Any) -> Completion:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if "reasoning_steps" in fields:
        message["reasoning_steps"] = fields.pop("reasoning_steps")
    finish = fields.pop("finish_reason", "stop")
    doc = {"id": "c1", "model": "sonar-pro", "created": 1_750_000_000}
    doc["choices"] = [{"index": 0, "finish_reason": finish, "message": message}]
    doc.update(fields)
    completion = parse_completion(doc)
    assert completion is not None
    return completion


SOURCES = {
    "citations": ["https://www.alpha.com/a", "https://beta.org/b/", "https://gamma.net/c"],
    "search_results": [
        {"url": "https://gamma.net/c", "title": "Gamma report", "date": "2024-03-01",
         "snippet": "Gamma snippet text."},
        {"url": "https://www.alpha.com/a", "title": "Alpha study", "date": "2023-11-20",
         "last_updated": "2024-01-01", "snippet": "Alpha snippet text."},
        {"url": "https://beta.org/b", "title": "Beta post", "snippet": "Beta snippet."},
    ],
}  # fmt: skip


def render(content: Any = "", **fields: Any) -> Dom:
    return Dom(render_completion(raw(content, **fields)))


def elements_within(dom: Dom, container: Element) -> list[Element]:
    return [e for e in dom.elements if any(a is container for a in e.ancestors)]


def cite_targets(dom: Dom) -> list[str]:
    return [(a.attrs["href"] or "").removeprefix("#source-") for a in dom.find("a", "cite")]


# --- citation markers ------------------------------------------------------------------------


def test_single_marker_links_to_its_source_card() -> None:
    dom = render("Batteries got cheaper [1].", **SOURCES)
    sup = dom.one("sup", "cites")
    link = dom.one("a", "cite")
    assert sup.text == "1"
    assert link.attrs["href"] == "#source-1"
    # Citation 1 is alpha.com: its card data comes from the search result with that URL.
    # The marker's accessible name is the card's hidden label, written once per source.
    assert link.attrs["aria-labelledby"] == "source-1-label"
    label = dom.one("span", id="source-1-label")
    assert label.text == "Source 1: Alpha study (alpha.com)"
    assert "hidden" in label.attrs
    assert dom.one("li", "source-card", id="source-1")


def test_runs_and_comma_lists_become_one_group_each() -> None:
    dom = render("Run [1][2]. List [1, 3]. Tight [1,2,3].", **SOURCES)
    groups = dom.find("sup", "cites")
    assert [g.text for g in groups] == ["12", "13", "123"]
    assert cite_targets(dom) == ["1", "2", "1", "3", "1", "2", "3"]
    assert "[" not in "".join(g.text for g in groups)


def test_out_of_range_and_zero_markers_stay_text() -> None:
    dom = render("Too far [4]. Zero [0]. Mixed [1, 9]. Good [2][7].", **SOURCES)
    assert cite_targets(dom) == ["2"]
    body = dom.one("div", "answer-body").text
    assert "Too far [4]" in body
    assert "Zero [0]" in body
    assert "Mixed [1, 9]" in body
    assert "[7]" in body
    assert not dom.find("a", href="#source-4")


def test_markers_in_code_stay_literal() -> None:
    dom = render("Inline `x[1]` here.\n\n```python\nitems[2]\n```\n\n    indented[3]\n", **SOURCES)
    assert cite_targets(dom) == []
    codes = [c.text for c in dom.find("code")]
    assert "x[1]" in codes
    assert "items[2]\n" in codes
    assert dom.one("code", "language-python")


def test_markers_do_not_break_real_links() -> None:
    dom = render("[1](https://example.com/one) and [see [2]](https://example.com/two)", **SOURCES)
    assert cite_targets(dom) == []
    links = {a.attrs["href"]: a.text for a in dom.find("a") if "cite" not in a.classes}
    assert links["https://example.com/one"] == "1"
    assert links["https://example.com/two"] == "see [2]"


def test_without_citations_markers_use_search_results_in_order() -> None:
    dom = render("First [1], third [3].", search_results=SOURCES["search_results"])
    assert dom.one("span", id="source-1-label").text == "Source 1: Gamma report (gamma.net)"
    assert dom.one("span", id="source-3-label").text == "Source 3: Beta post (beta.org)"


def test_no_sources_means_no_markers() -> None:
    dom = render("Nothing to cite [1].")
    assert cite_targets(dom) == []
    assert "Nothing to cite [1]." in dom.text


# --- sources panel ---------------------------------------------------------------------------


def test_source_cards_show_title_domain_date_snippet_and_cited_mark() -> None:
    fields = dict(SOURCES)
    fields["search_results"] = [
        *SOURCES["search_results"],
        {"url": "https://delta.io/d", "title": "Delta, never cited", "snippet": "Delta."},
    ]
    dom = render("Only [1] and [3].", **fields)
    cards = dom.find("li", "source-card")
    assert [c.attrs["id"] for c in cards] == ["source-1", "source-2", "source-3", "source-4"]
    assert [("cited" in c.classes) for c in cards] == [True, False, True, False]
    first = cards[0]
    assert "Alpha study" in first.text
    assert "alpha.com" in first.text
    assert "2023-11-20" in first.text
    assert "Alpha snippet text." in first.text
    title = dom.find("a", "source-title")[0]
    assert title.attrs["href"] == "https://www.alpha.com/a"
    assert title.attrs["target"] == "_blank"
    assert title.attrs["rel"] == "noopener noreferrer"
    # Beta's citation has a trailing slash its search result lacks; they still match.
    assert "Beta snippet." in cards[1].text
    assert "Delta, never cited" in cards[3].text
    assert dom.one(id="answer-sources")
    # An appended search result is shown but is not citable.
    assert cite_targets(render("Delta [4].", **fields)) == []


def test_a_strip_of_hosts_sits_above_a_long_answer() -> None:
    urls = [
        "https://www.alpha.com/1",
        "https://beta.org/2",
        "https://www.alpha.com/3",
        "https://gamma.net/4",
        "https://delta.io/5",
        "https://epsilon.dev/6",
    ]
    results = [{"url": u, "title": f"Title {n}"} for n, u in enumerate(urls, 1)]
    dom = render("Gamma first [4], then beta [2].", citations=urls, search_results=results)
    strip = dom.one("nav", "source-strip")
    assert strip.attrs["aria-label"] == "Sources at a glance"
    links = [e for e in elements_within(dom, strip) if e.tag == "a"]
    # Cited hosts first, then the others in order; a host once, with how many it gave.
    assert [a.text for a in links] == [
        "gamma.net",
        "beta.org",
        "alpha.com \u00d72",
        "delta.io",
        "epsilon.dev",
        "All 6 sources",
    ]
    assert [a.attrs["href"] for a in links] == [
        "#source-4",
        "#source-2",
        "#source-1",
        "#source-5",
        "#source-6",
        "#answer-sources",
    ]
    # Every link lands on a card of the page, and the strip comes before the text.
    ids = {e.attrs.get("id") for e in dom.elements}
    assert all(a.attrs["href"][1:] in ids for a in links)
    body = dom.one("div", "answer-body")
    assert dom.elements.index(strip) < dom.elements.index(body)


def test_no_strip_for_a_few_sources_or_no_text() -> None:
    assert not render("Batteries got cheaper [1].", **SOURCES).find("nav", "source-strip")
    many = {
        "citations": [f"https://site{n}.example/" for n in range(8)],
        "search_results": [],
    }
    assert render("Text [1].", **many).find("nav", "source-strip")
    assert not render("", **many).find("nav", "source-strip")


def test_citation_without_search_result_gets_card_from_url() -> None:
    dom = render("See [1].", citations=["https://www.lonely.example.com/page?x=1"])
    card = dom.one("li", "source-card", id="source-1")
    assert dom.one("a", "source-title").text == "lonely.example.com"
    assert "cited" in card.classes
    assert dom.one("span", id="source-1-label").text == "Source 1: lonely.example.com"


# --- markdown and headings -------------------------------------------------------------------


def test_markdown_features() -> None:
    text = (
        "Some ~~old~~ *new* text.\n\n"
        "| Name | Value |\n|:-----|------:|\n| a<br>b | 1 |\n\n"
        "- [x] done\n- [ ] todo\n\n"
        "Note[^n].\n\n[^n]: The footnote.\n\n"
        "```js\nlet a = 1;\n```\n"
    )
    dom = render(text)
    assert dom.one("s").text == "old"
    assert dom.one("td", "align-right").text == "1"
    assert dom.one("th", "align-left").text == "Name"
    assert all("style" not in e.attrs for e in dom.elements)
    assert dom.find("br")
    boxes = dom.find("span", "task-box")
    assert [b.attrs["aria-label"] for b in boxes] == ["Done", "Not done"]
    assert not dom.find("input")
    assert "The footnote." in dom.one("section", "footnotes").text
    assert dom.one("code", "language-js").text == "let a = 1;\n"


def test_links_open_in_a_new_tab_and_bare_urls_are_linked() -> None:
    text = "[Doc](https://docs.example.com/x) and https://bare.example.com/p and [rel](/admin/)."
    dom = render(text)
    links = {a.attrs["href"]: a for a in dom.find("a")}
    assert set(links) == {"https://docs.example.com/x", "https://bare.example.com/p"}
    for link in links.values():
        assert link.attrs["target"] == "_blank"
        assert link.attrs["rel"] == "noopener noreferrer"
    # A relative link leads nowhere useful from our page: its text stays, the link goes.
    assert "and rel." in dom.text


def test_headings_get_ids_anchors_and_a_contents_list() -> None:
    text = "# Overview\n\nx\n\n## Costs\n\ny\n\n## Costs\n\nz\n\n### Source 1\n\nw\n"
    dom = render(text, **SOURCES)
    headings = [e for e in dom.elements if e.tag in ("h2", "h3", "h4") and "id" in e.attrs]
    body_headings = [h for h in headings if not h.attrs["id"].startswith("answer-")]
    assert [h.tag for h in body_headings] == ["h2", "h3", "h3", "h4"]
    ids = [h.attrs["id"] for h in body_headings]
    assert ids == ["overview", "costs", "costs-1", "source-1-section"]
    assert len(dom.find(id="source-1")) == 1
    anchors = dom.find("a", "heading-anchor")
    assert [a.attrs["href"] for a in anchors] == [f"#{i}" for i in ids]
    toc = dom.one("nav", "answer-toc")
    assert "Contents" in toc.text
    toc_links = [a.attrs["href"] for a in dom.find("a") if a.attrs.get("href", "").startswith("#")]
    assert toc_links[:4] == [f"#{i}" for i in ids]


def test_no_contents_list_below_three_headings() -> None:
    dom = render("# One\n\n## Two\n\ntext")
    assert not dom.find("nav")
    assert dom.one("h2", id="one")


# --- reasoning -------------------------------------------------------------------------------


def test_think_blocks_move_into_closed_reasoning_section() -> None:
    dom = render("<think>Planning the *answer*.</think>\n\nThe answer.\n\n<THINK>more</THINK> end")
    body = dom.one("div", "answer-body").text
    assert "Planning" not in body
    assert "more" not in body
    assert "The answer." in body
    details = dom.one("details", "answer-reasoning")
    assert "open" not in details.attrs
    assert "Reasoning" in dom.one("summary").text
    assert "Planning the answer." in details.text
    assert dom.find("em")[0].text == "answer"


def test_unclosed_and_orphan_think_blocks() -> None:
    cut = render("Intro.\n<think>ran out of tokens while thinking")
    assert "ran out" not in cut.one("div", "answer-body").text
    assert "ran out" in cut.one("details").text
    orphan = render("thinking without an opening tag</think>\n\nReal answer.")
    assert orphan.one("div", "answer-body").text.strip() == "Real answer."
    assert "thinking without" in orphan.one("details").text


def test_reasoning_steps() -> None:
    steps = [
        {"thought": "Look for prices.", "type": "web_search",
         "web_search": {"search_keywords": ["battery prices 2024", "lcoe storage"]}},
        {"thought": "Read two pages.", "type": "fetch_url_content",
         "fetch_url_content": {"contents": [{"url": "https://a.example.com/x"}]}},
        {"thought": "Compute.", "type": "execute_python",
         "execute_python": {"code": "print(6 * 7)", "result": "42"}},
    ]  # fmt: skip
    dom = render("Answer.", reasoning_steps=steps)
    details = dom.one("details", "answer-reasoning")
    assert "3 steps" in details.text
    items = dom.find("li", "reasoning-step")
    assert len(items) == 3
    assert "step-web_search" in items[0].classes
    assert dom.one("ul", "step-keywords").text == "battery prices 2024lcoe storage"
    assert "battery prices 2024" in items[0].text and "lcoe storage" in items[0].text
    fetched = [a for a in dom.find("a") if a.attrs.get("href") == "https://a.example.com/x"]
    assert fetched and fetched[0].attrs["target"] == "_blank"
    assert dom.one("pre", "step-code").text == "print(6 * 7)"
    assert dom.one("pre", "step-result").text == "42"
    assert "Look for prices." in items[0].text


def test_no_reasoning_section_without_reasoning() -> None:
    assert not render("Plain answer.").find("details")


# --- content shapes --------------------------------------------------------------------------


def test_structured_chunks() -> None:
    content = [
        {"type": "text", "text": "Part one [1], "},
        {"type": "text", "text": "part two."},
        {"type": "pdf_url", "pdf_url": {"url": "https://docs.example.com/r.pdf"}},
        {"type": "image_url", "image_url": "https://img.example.com/p.png"},
        {
            "type": "file_url",
            "file_url": {"url": "https://f.example.com/d.csv"},
            "file_name": "d.csv",
        },
        {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}},
    ]
    dom = render(content, **SOURCES)
    assert "Part one 1, part two." in dom.one("div", "answer-body").text
    section = dom.one("section", "answer-attachments")
    hrefs = [a.attrs.get("href") for a in dom.find("a")]
    assert "https://docs.example.com/r.pdf" in hrefs
    assert "https://img.example.com/p.png" in hrefs
    csv = [a for a in dom.find("a") if a.attrs.get("href") == "https://f.example.com/d.csv"]
    assert csv[0].text == "d.csv"
    assert "PDF" in section.text and "Video" in section.text
    assert "data:" not in render_completion(raw(content))


def test_json_answer_is_pretty_printed() -> None:
    dom = render('{"name": "Ada", "tags": ["a", "b"], "n": 1}')
    code = dom.one("code", "language-json")
    assert code.text == '{\n  "name": "Ada",\n  "tags": [\n    "a",\n    "b"\n  ],\n  "n": 1\n}'
    assert dom.one("pre", "answer-json")


def test_text_that_only_looks_like_json_is_markdown() -> None:
    dom = render("{not json} but **bold**")
    assert not dom.find("pre")
    assert dom.one("strong").text == "bold"


@pytest.mark.parametrize(
    "completion",
    [
        Completion(),
        raw(None),
        raw("   "),
        raw("<think>only thinking</think>"),
        raw([{"type": "text"}, {"type": "unknown"}, "x"[:0]]),
    ],
)
def test_empty_answers_say_so(completion: Completion) -> None:
    dom = Dom(render_completion(completion))
    assert dom.one("p", "answer-empty").text == "The answer is empty."


def test_missing_fields_everywhere_do_not_raise() -> None:
    doc = {
        "choices": [{"message": {"content": "Hi [1]", "reasoning_steps": [None, {}, {"type": 3}]}}],
        "citations": None,
        "search_results": [None, {"title": "no url"}, {"url": "https://x.example.com"}],
        "images": [None, {"title": "no url"}, {"image_url": "https://i.example.com/a.png"}],
        "related_questions": None,
        "usage": {"cost": None},
    }
    completion = parse_completion(doc)
    assert completion is not None
    dom = Dom(render_completion(completion))
    assert dom.one("a", "cite").attrs["href"] == "#source-1"
    # Not archived (no copies given): a placeholder that names the image's host.
    assert not dom.find("img")
    missing = dom.one("span", "image-missing")
    assert "i.example.com" in missing.text and "Not archived." in missing.text
    assert not dom.find("section", "answer-usage")


def test_length_limit_note() -> None:
    dom = render("Cut off mid", finish_reason="length")
    assert "output limit" in dom.one("p", "answer-note").text


# --- gallery, related, usage -----------------------------------------------------------------


def test_gallery_thumbnails() -> None:
    images = [
        {"image_url": "https://img.example.com/1.jpg", "origin_url": "https://www.news.example.com/s",
         "title": "Battery farm", "width": 1200, "height": 800},
        {"image_url": "javascript:alert(1)", "origin_url": "https://x.example.com", "title": "bad"},
        {"image_url": "data:image/png;base64,iVBORw0KGgo=", "title": "inline"},
        {"image_url": "https://img.example.com/2.jpg", "origin_url": "javascript:alert(2)",
         "title": ""},
    ]  # fmt: skip
    copies = {
        "https://img.example.com/1.jpg": ImageCopy(
            full_url="/images/aaa.webp", thumb_url="/images/bbb.webp", width=1600, height=1067,
            thumb_width=400, thumb_height=267,
        ),
        "https://img.example.com/2.jpg": ImageCopy(
            full_url="/images/ccc.webp", thumb_url="/images/ddd.webp"
        ),
    }  # fmt: skip
    dom = Dom(render_completion(raw("Answer.", images=images), images=copies))
    thumbs = dom.find("a", "gallery-thumb")
    assert len(thumbs) == 2
    first, second = thumbs
    assert first.attrs["href"] == "https://www.news.example.com/s"
    assert first.attrs["target"] == "_blank"
    assert first.attrs["rel"] == "noopener noreferrer"
    assert first.attrs["data-index"] == "0" and second.attrs["data-index"] == "1"
    assert first.attrs["data-full"] == "/images/aaa.webp"
    imgs = dom.find("img")
    # The archive's thumbnail, never the address the answer names.
    assert imgs[0].attrs == {
        "src": "/images/bbb.webp",
        "alt": "Battery farm",
        "width": "400",
        "height": "267",
        "loading": "lazy",
        "referrerpolicy": "no-referrer",
    }
    # A non-http origin falls back to the image itself; an untitled image still has alt text.
    assert second.attrs["href"] == "https://img.example.com/2.jpg"
    assert imgs[1].attrs["alt"] == "Image from img.example.com"
    assert "width" not in imgs[1].attrs
    assert dom.one("ul", "gallery")


def test_related_questions_link_to_follow_up() -> None:
    questions = ["What about cost & safety?", "Who builds them?"]
    dom = render("Answer.", related_questions=questions)
    links = dom.find("a", "followup")
    assert [a.attrs["href"] for a in links] == [
        "/new/?q=What+about+cost+%26+safety%3F",
        "/new/?q=Who+builds+them%3F",
    ]
    assert links[0].text == "Research this"
    assert links[0].attrs["aria-label"] == "Research this: What about cost & safety?"
    assert [q.text for q in dom.find("span", "related-question")] == questions
    assert "target" not in links[0].attrs
    custom = Dom(
        render_completion(raw("A", related_questions=questions), followup_url="/r/new?x=1")
    )
    assert custom.find("a", "followup")[0].attrs["href"].startswith("/r/new?x=1&q=What")
    plain = Dom(render_completion(raw("A", related_questions=questions), followup_url=None))
    assert not plain.find("a", "followup")
    assert "Who builds them?" in plain.one("ul", "related-list").text


def test_usage_table() -> None:
    usage = {
        "prompt_tokens": 1234, "completion_tokens": 56789, "total_tokens": 58023,
        "reasoning_tokens": 100000, "citation_tokens": 5000, "num_search_queries": 28,
        "search_context_size": "high",
        "cost": {"input_tokens_cost": 0.002468, "output_tokens_cost": 0.45431,
                 "reasoning_tokens_cost": 0.3, "request_cost": 0.005,
                 "search_queries_cost": 0.14, "total_cost": 1.90178, "new_fee_cost": 0.25},
    }  # fmt: skip
    dom = render("Answer.", usage=usage)
    table = dom.one("table", "usage-table")
    assert "Search context size: high" in table.text
    rows = [tr.text for tr in dom.find("tr")]
    # The token total right under the rows it adds up; Sonar counted and billed citation
    # and reasoning tokens apart from it. One precision for every amount, total included.
    assert rows[1:] == [
        "Prompt1,234$0.0025",
        "Completion56,789$0.4543",
        "Tokens in total58,023—",
        "Citations5,000—",
        "Reasoning100,000$0.3000",
        "Search queries28$0.1400",
        "Requests—$0.0050",
        "New fee—$0.2500",
        "Total cost—$1.9018",
    ]
    assert dom.one("tr", "subtotal").text.startswith("Tokens in total")
    assert dom.one("tr", "total").text.startswith("Total cost")
    assert not dom.find("tr", "part")


def test_usage_table_shows_reasoning_within_the_completion() -> None:
    """Agent runs count reasoning tokens within the output: a part of that row, not a row
    a reader would add to the total."""
    usage = Usage(
        prompt_tokens=18210, completion_tokens=2304, total_tokens=20514, reasoning_tokens=487,
        cache_read_tokens=9798, num_search_queries=5,
        cost={"input_tokens_cost": 0.00021, "output_tokens_cost": 0.0118,
              "cache_read_cost": 4e-05, "search_queries_cost": 0.005, "total_cost": 0.03345},
    )  # fmt: skip
    dom = Dom(render_completion(Completion(content="Answer.", usage=usage)))
    rows = [tr.text for tr in dom.find("tr")]
    assert rows[1:] == [
        "Prompt18,210$0.0002",
        "Completion2,304$0.0118",
        "Reasoning (part of completion)487—",
        "Tokens in total20,514—",
        "Cache reads9,798<$0.0001",
        "Search queries5$0.0050",
        "Total cost—$0.0335",
    ]
    assert dom.one("tr", "part").text.startswith("Reasoning (part of completion)")
    assert not any(tr.text.startswith("Reasoning1") for tr in dom.find("tr"))


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "$0.0000"), (1.90178, "$1.9018"), (1234.5, "$1,234.5000"), (0.45431, "$0.4543"),
     (0.1, "$0.1000"), (0.005, "$0.0050"), (0.0000123, "<$0.0001"), (1e-9, "<$0.0001"),
     (-0.5, "-$0.5000"), (0.00015, "$0.0002"), (0.00005, "$0.0001"), (0.00004, "<$0.0001"),
     (float("nan"), "n/a"), (float("inf"), "n/a")],
)  # fmt: skip
def test_usd(value: float, text: str) -> None:
    assert usd(value) == text


def test_renders_outside_a_configured_django_project() -> None:
    """bench/render_bench.py and scripts render answers without Django settings: the
    section templates must not need them (nor a number's localization)."""
    code = (
        "from tests.test_answers_render import SOURCES, raw\n"
        "from sonarweb.answers import render_completion\n"
        "html = render_completion(raw('# A\\n\\n## B\\n\\n## C\\n\\n' + 'x [1]. ' * 9,"
        " related_questions=['q'], usage={'total_tokens': 12345, 'cost': {'total_cost': 2}},"
        " reasoning_steps=[{'type': 'web_search', 'thought': 't'}], **SOURCES))\n"
        "for part in ('answer-toc', 'Cited in 1 place:', 'answer-related', 'Reasoning',"
        " '12,345', '$2.0000'):\n"
        "    assert part in html, part\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_render_version_is_an_int() -> None:
    assert isinstance(RENDER_VERSION, int) and RENDER_VERSION >= 1


# --- size and speed --------------------------------------------------------------------------


def big_completion(words: int = 40_000, sources: int = 150, images: int = 30) -> Completion:
    rng = Random(7)
    vocab = ["grid", "storage", "price", "market", "demand", "solar", "policy", "evidence"]
    urls = [f"https://s{i}.example.org/r/{i}" for i in range(1, sources + 1)]
    parts, count = ["<think>plan</think>\n# Report\n\n"], 0
    while count < words:
        if rng.random() < 0.01:
            parts.append(f"\n\n## Part {count}\n\n")
        sentence = " ".join(rng.choice(vocab) for _ in range(15))
        parts.append(f"{sentence} **{rng.choice(vocab)}** [{rng.randint(1, sources)}][2]. ")
        count += 16
        if rng.random() < 0.2:
            parts.append("\n\n")
    return raw(
        "".join(parts),
        citations=urls,
        search_results=[{"url": u, "title": u[8:12], "snippet": "s " * 80} for u in urls],
        images=[{"image_url": f"https://i.example.org/{i}.jpg", "title": f"I{i}", "width": 4,
                 "height": 3} for i in range(images)],
    )  # fmt: skip


def test_big_answer_renders_fast() -> None:
    completion = big_completion()
    render_completion(completion)  # warm caches: imports, compiled regexes
    # CPU time, not wall time: on a busy machine the wall clock also counts other processes.
    start = time.process_time()
    html = render_completion(completion)
    elapsed = time.process_time() - start
    dom = Dom(html)
    assert len(dom.find("li", "source-card")) == 150
    assert len(dom.find("li", "gallery-missing")) == 30
    assert len(dom.find("a", "cite")) > 4000
    assert elapsed < 1.0, f"{elapsed:.2f}s"


def test_simulator_answers_render() -> None:
    corpus = pytest.importorskip("sonarweb.simulator.corpus")
    doc = corpus.generate_completion("How do heat pumps work in cold climates?", sources=20, seed=3)
    completion = parse_completion(doc)
    assert completion is not None
    dom = Dom(render_completion(completion))
    assert len(dom.find("li", "source-card")) == 20
    # The simulator cites every source; each card must know it was cited.
    assert all("cited" in c.classes for c in dom.find("li", "source-card"))
    assert "<think>" not in dom.one("div", "answer-body").text
    assert dom.find("details", "answer-reasoning")


def test_a_hundred_thousand_sources_list_the_cited_ones_and_count_the_rest() -> None:
    from sonarweb.answers.export import render_plain_markdown
    from sonarweb.answers.render import UNCITED_LISTED

    results = [
        {"url": f"https://example.org/{i}", "title": f"Result {i}", "snippet": "s"}
        for i in range(100_000)
    ]
    completion = parse_completion(
        {
            "choices": [{"message": {"content": "Cited [1] and [9999]."}}],
            "search_results": results,
        }
    )
    html = render_completion(completion)
    dom = Dom(html)
    cards = dom.find("li", "source-card")
    assert len(cards) == UNCITED_LISTED + 2
    assert 'id="source-9999"' in html and 'id="source-1"' in html
    assert "99,798 more sources that the answer does not cite" in html
    assert len(html) < 500_000
    markdown = render_plain_markdown(completion)
    assert "99,798 more sources that the answer does not cite are in answer.json." in markdown
    assert "[^9999]: [Result 9998]" in markdown


def test_images_load_only_from_the_archive() -> None:
    content = (
        "Inline ![chart](https://tracker.example/pixel.gif) and ![kept](https://a.example/k.png)."
    )
    images = [
        {"image_url": "https://tracker.example/pixel.gif", "origin_url": "https://p.example/"}
    ]
    copies = {"https://a.example/k.png": ImageCopy(full_url="/images/k.webp", width=8, height=6)}
    dom = Dom(render_completion(raw(content, images=images), images=copies))
    assert [img.attrs["src"] for img in dom.find("img")] == ["/images/k.webp"]
    # The tracking pixel is a placeholder with its caption, host and the page it came from.
    missing = dom.find("span", "image-missing")
    assert len(missing) == 2 and "tracker.example" in missing[0].text
    links = [a.attrs["href"] for a in dom.find("a", "image-missing-origin")]
    assert links == ["https://tracker.example/pixel.gif", "https://p.example/"]
    # Even a renderer mistake could not load another host: the sanitizer drops such a src.
    from sonarweb.answers.sanitize import sanitize

    assert "src" not in Dom(sanitize('<img src="https://tracker.example/x.gif">')).one("img").attrs
    assert "src" not in Dom(sanitize('<img src="//tracker.example/x.gif">')).one("img").attrs


def test_a_failed_image_says_why() -> None:
    images = [{"image_url": "https://big.example/x.png", "origin_url": "https://big.example/p",
               "title": "Map"}]  # fmt: skip
    copies = {"https://big.example/x.png": ImageCopy(reason="the image is larger than 10 MB.")}
    dom = Dom(render_completion(raw("A.", images=images), images=copies))
    item = dom.one("li", "gallery-missing")
    assert "Not archived: the image is larger than 10 MB." in item.text and "Map" in item.text
    assert dom.one("a", "image-missing-origin").attrs["href"] == "https://big.example/p"


# --- reading long reports: scrolling regions, back-links, contents ---------------------------


def test_wide_tables_and_code_scroll_in_focusable_regions() -> None:
    text = (
        "| A | B |\n|---|---|\n| 1 | 2 |\n\n```sh\nls\n```\n\n    indented\n\n| C |\n|---|\n| 3 |"
    )
    dom = render(text)
    regions = dom.find("div", "table-scroll")
    assert [r.attrs["aria-label"] for r in regions] == ["Table 1", "Table 2"]
    assert all(r.attrs["tabindex"] == "0" and r.attrs["role"] == "region" for r in regions)
    assert "1" in regions[0].text and "3" in regions[1].text
    assert [p.attrs.get("tabindex") for p in dom.find("pre")] == ["0", "0"]


def test_source_cards_link_back_to_the_passages_that_cite_them() -> None:
    text = "First [1][2].\n\nSecond [2] and again [2].\n\n| cell [1] |\n|---|\n| x |\n\nLast [1]."
    dom = render(text, **SOURCES)
    groups = [s.attrs["id"] for s in dom.find("sup", "cites")]
    assert groups == ["cite-1", "cite-2", "cite-3", "cite-4", "cite-5"]
    card1 = dom.one("li", "source-card", id="source-1")
    card2 = dom.one("li", "source-card", id="source-2")
    # Source 1: paragraph 1, the table, paragraph 4; source 2: paragraphs 1 and 2 (one
    # back-link for the two markers in paragraph 2). The links count the places in order.
    back1 = [a for a in elements_within(dom, card1) if "backlink" in a.classes]
    back2 = [a for a in elements_within(dom, card2) if "backlink" in a.classes]
    assert [(a.text, a.attrs["href"]) for a in back1] == [
        ("1", "#cite-1"),
        ("2", "#cite-4"),
        ("3", "#cite-5"),
    ]
    assert [(a.text, a.attrs["href"]) for a in back2] == [("1", "#cite-1"), ("2", "#cite-2")]
    cited = dom.find("div", "source-cited")
    assert [c.text for c in cited] == ["Cited in 3 places: 1 2 3", "Cited in 2 places: 1 2"]
    assert all(any(e.tag == "div" and "source-cited" in e.classes for e in a.ancestors)
               for a in back1 + back2)  # fmt: skip
    assert not dom.find("details", "backlinks-more")
    one = render("Once [3].", **SOURCES)
    assert one.one("div", "source-cited").text == "Cited in 1 place: 1"


def test_many_back_links_keep_the_rest_in_a_disclosure() -> None:
    text = "\n\n".join(f"Paragraph {i} [1]." for i in range(10))
    dom = render(text, **SOURCES)
    card = dom.one("li", "source-card", id="source-1")
    links = [a for a in elements_within(dom, card) if "backlink" in a.classes]
    # Every place can be reached: six shown, four behind "+ 4 more", each to its marker.
    assert [a.text for a in links] == [str(n) for n in range(1, 11)]
    assert [a.attrs["href"] for a in links] == [f"#cite-{n}" for n in range(1, 11)]
    more = dom.one("details", "backlinks-more")
    assert "open" not in more.attrs
    assert [e.text for e in elements_within(dom, more) if e.tag == "summary"] == ["+ 4 more"]
    assert [a.text for a in elements_within(dom, more) if a.tag == "a"] == ["7", "8", "9", "10"]
    assert card.text.endswith("Cited in 10 places: 1 2 3 4 5 6 + 4 more 7 8 9 10")
    # One more than shown is shown, not hidden behind a control of its own size.
    seven = render("\n\n".join(f"Paragraph {i} [1]." for i in range(7)), **SOURCES)
    assert not seven.find("details", "backlinks-more")
    assert len(seven.find("a", "backlink")) == 7


def test_contents_are_collapsible_and_list_the_sections() -> None:
    text = "# One\n\nx [1]\n\n## Two\n\ny\n\n## Three\n\nz"
    dom = render(
        text,
        **SOURCES,
        images=[{"image_url": "https://img.example/a.png", "origin_url": "https://a.example/"}],
        related_questions=["And then?"],
    )
    toc = dom.one("nav", "answer-toc")
    details = dom.one("details", "toc-box")
    assert "open" not in details.attrs  # closed in the markup; answer.js opens it on wide screens
    assert dom.one("summary", id="answer-toc-title").text == "Contents"
    assert toc.attrs["aria-labelledby"] == "answer-toc-title"
    hrefs = [a.attrs["href"] for a in elements_within(dom, toc) if a.tag == "a"]
    sections = ["#answer-gallery", "#answer-sources", "#answer-related"]
    assert hrefs == ["#one", "#two", "#three", *sections]
    for target in hrefs:
        assert dom.find(id=target[1:])


@pytest.mark.parametrize(
    ("content", "heading"),
    [
        ("# Heat pumps in *cold* climates [1]\n\nText.", "Heat pumps in cold climates"),
        ("Intro.\n\n## The [grid](https://example.org) today ##\n", "The grid today"),
        ("<think>\n# Not this\n</think>\n\n### Answer\n", "Answer"),
        ("```\n# a comment in code\n```\n\n# Later\n", ""),
        ("No heading at all.", ""),
    ],
)
def test_first_heading_names_an_untitled_answer(content: str, heading: str) -> None:
    from sonarweb.answers.content import first_heading

    assert first_heading(content) == heading
