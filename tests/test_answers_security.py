"""Hostile payloads: nothing executable survives anywhere in the rendered fragment."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from sonarweb.answers import render_completion
from sonarweb.answers.images import ImageCopy
from sonarweb.answers.sanitize import sanitize
from tests.test_answers_render import Dom, raw

FORBIDDEN_TAGS = {
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "form", "input",
    "button", "textarea", "select", "svg", "math", "link", "meta", "base", "template", "dialog",
}  # fmt: skip

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)><script>alert(2)</script></svg>",
    "<iframe src=javascript:alert(1)></iframe>",
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">',
    "<style>body{display:none}</style>",
    '<form action="https://evil.example"><input name=x autofocus onfocus=alert(1)></form>',
    '<a href="javascript:alert(1)" style="position:fixed">x</a>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '"><script>alert(1)</script>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "</p></section></article><script>alert(1)</script>",
]

BAD_URLS = [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "javascript&colon;alert(1)",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "data:image/svg+xml,<svg onload=alert(1)>",
    "DATA:text/html,<script>alert(1)</script>",
    "//evil.example/path",
    "/\\evil.example/path",
    "file:///etc/passwd",
]


def assert_safe(html: str, *, rendered: bool = True) -> Dom:
    """No dangerous markup; ``rendered`` adds what our renderer guarantees beyond that: every
    outbound link opens in a new tab and every image has an http(s) source."""
    assert "<script" not in html.lower()
    dom = Dom(html)
    for element in dom.elements:
        assert element.tag not in FORBIDDEN_TAGS, element
        for name, value in element.attrs.items():
            assert not name.startswith("on"), element
            assert name != "style", element
            if name in ("href", "src", "action", "formaction", "data", "srcset", "poster"):
                assert value is not None
                assert_safe_url(value)
        if element.tag == "a" and (element.attrs.get("href") or "").startswith("http"):
            assert set((element.attrs.get("rel") or "").split()) >= {"noopener", "noreferrer"}
            assert element.attrs.get("target") == "_blank" or not rendered, element
        if element.tag == "img":
            assert element.attrs.get("referrerpolicy") == "no-referrer", element
            src = element.attrs.get("src") or ""
            # Only the archive's copies, on this site: nothing loads from another host.
            assert (src.startswith("/") and not src.startswith("//")) or not src, element
        if "target" in element.attrs:
            assert element.attrs["target"] == "_blank"
    return dom


def assert_safe_url(value: str) -> None:
    if value.startswith("#"):
        return
    if value.startswith("/"):
        assert not value.startswith(("//", "/\\")), value
        return
    assert urlsplit(value).scheme in ("http", "https"), value


@pytest.mark.parametrize("payload", XSS)
def test_raw_html_in_the_answer_is_text(payload: str) -> None:
    html = render_completion(
        raw(f"Before {payload} after [1].\n\n{payload}\n", citations=["https://a.example.com"])
    )
    dom = assert_safe(html)
    # Shown as text, so a reader can see what the model wrote.
    assert "alert(1)" in dom.one("div", "answer-body").text or "display:none" in html


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_urls_in_markdown_links_and_images(url: str) -> None:
    text = f"[click]({url}) ![pic]({url}) <{url}> [ref]\n\n[ref]: {url}\n"
    assert_safe(render_completion(raw(text)))


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_urls_in_payload_fields(url: str) -> None:
    completion = raw(
        [{"type": "text", "text": "See [1][2]."}, {"type": "pdf_url", "pdf_url": {"url": url}},
         {"type": "image_url", "image_url": url}],
        citations=[url, "https://ok.example.com/"],
        search_results=[{"url": url, "title": "T", "snippet": "S"}],
        images=[{"image_url": url, "origin_url": url, "title": "I"},
                {"image_url": "https://img.example.com/a.png", "origin_url": url}],
        reasoning_steps=[{"type": "fetch_url_content", "fetch_url_content": {"urls": [url]}}],
    )  # fmt: skip
    copies = {"https://img.example.com/a.png": ImageCopy(full_url="/images/a.webp")}
    dom = assert_safe(render_completion(completion, images=copies))
    # The hostile image is dropped; the good one links to itself instead of the bad origin.
    assert [img.attrs["src"] for img in dom.find("img")] == ["/images/a.webp"]
    assert dom.one("a", "gallery-thumb").attrs["href"] == "https://img.example.com/a.png"
    # Marker 1 still points at its card; the card shows no link for the bad URL.
    assert dom.find("a", "cite")[0].attrs["href"] == "#source-1"
    titles = dom.find(cls="source-title")
    assert titles[0].tag == "span" and "href" not in titles[0].attrs
    assert titles[1].attrs["href"] == "https://ok.example.com/"


@pytest.mark.parametrize("payload", XSS)
def test_hostile_text_in_every_field(payload: str) -> None:
    completion = raw(
        f"# {payload}\n\n## b\n\n### c\n\nText [1].\n\n```{payload}\ncode\n```\n\n"
        f"<think>{payload}</think>",
        citations=["https://a.example.com/"],
        search_results=[{"url": "https://a.example.com/", "title": payload, "snippet": payload,
                         "date": payload, "last_updated": payload}],
        images=[{"image_url": "https://i.example.com/x.png", "origin_url": "https://o.example.com",
                 "title": payload}],
        related_questions=[payload],
        reasoning_steps=[{"thought": payload, "type": payload,
                          "web_search": {"search_keywords": [payload]},
                          "execute_python": {"code": payload, "result": payload}}],
        usage={"search_context_size": payload, "cost": {payload: 1.0, "total_cost": 1.0}},
    )  # fmt: skip
    dom = assert_safe(render_completion(completion))
    # Titles are escaped text, not markup: the marker's accessible name still has the payload.
    assert payload.strip() in dom.one("span", id="source-1-label").text
    assert payload in dom.one("span", "image-missing-caption").text


def test_template_syntax_in_the_payload_stays_text() -> None:
    """The sections are Django templates: what the answer says is data to them, never code."""
    tricks = ["{{ 7|add:1 }}", "{% now 'Y' %}", "{% include 'base.html' %}", "{# x #}"]
    completion = raw(
        "# a\n\n## b\n\n## c\n\nText [1].",
        citations=["https://a.example.com/"],
        search_results=[{"url": "https://a.example.com/", "title": tricks[0], "snippet": tricks[1],
                         "date": tricks[2]}],
        images=[{"image_url": "https://i.example.com/x.png", "title": tricks[3]}],
        related_questions=tricks,
        reasoning_steps=[{"thought": tricks[1], "type": "web_search",
                          "web_search": {"search_keywords": tricks}}],
        usage={"search_context_size": tricks[0], "cost": {tricks[1]: 1.0}},
    )  # fmt: skip
    dom = assert_safe(render_completion(completion))
    for trick in tricks:
        assert trick in dom.text, trick
    assert "8" not in dom.one("span", id="source-1-label").text


def test_hostile_ids_do_not_clobber_the_fragment() -> None:
    text = "# source-1\n\n# lightbox\n\n# cite-card\n\n# fn1\n\nText [1]."
    dom = assert_safe(render_completion(raw(text, citations=["https://a.example.com/"])))
    ids = [e.attrs["id"] for e in dom.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids))
    assert dom.one(id="source-1").tag == "li"
    assert not dom.find(id="lightbox") and not dom.find(id="cite-card")


def test_followup_url_is_escaped() -> None:
    completion = raw("A", related_questions=['"><script>alert(1)</script>'])
    dom = assert_safe(render_completion(completion, followup_url='/new/"onmouseover="x'))
    link = dom.one("a", "followup")
    assert link.attrs["href"].startswith('/new/"onmouseover="x?q=')
    assert set(link.attrs) == {"class", "href", "rel", "aria-label"}


@pytest.mark.parametrize("followup", ["javascript:alert(1)", "//evil.example/new/"])
def test_hostile_followup_url_is_dropped(followup: str) -> None:
    dom = assert_safe(render_completion(raw("A", related_questions=["q"]), followup_url=followup))
    assert "href" not in dom.one("a", "followup").attrs


# --- the sanitizer on its own, as the backstop for mistakes before it ------------------------


@pytest.mark.parametrize(
    "html",
    [
        *XSS,
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<a href="&#106;&#97;vascript:alert(1)">x</a>',
        '<a href=" &#x09;javascript:alert(1)">x</a>',
        '<a href="javas&#x0A;cript:alert(1)">x</a>',
        '<img src="data:image/png;base64,AAAA">',
        '<img src="https://ok.example.com/a.png" onload="x" referrerpolicy="unsafe-url">',
        '<a href="https://ok.example.com" target="_top" rel="opener">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<details open ontoggle="alert(1)"><summary>s</summary></details>',
        '<span role="button" tabindex="0" onclick="x">x</span>',
        '<p style="color:red">x</p><!-- <script>alert(1)</script> -->',
    ],
)
def test_sanitizer_backstop(html: str) -> None:
    cleaned = sanitize(html)
    assert_safe(cleaned, rendered=False)
    assert "<!--" not in cleaned
    assert "tabindex" not in cleaned
    assert 'role="button"' not in cleaned


def test_sanitizer_keeps_what_the_fragment_needs() -> None:
    html = (
        '<a class="cite" href="#source-1" aria-labelledby="source-1-label" title="t">1</a>'
        '<span id="source-1-label" hidden>Source 1</span>'
        '<a href="/new/?q=x">q</a><a href="https://ok.example.com" target="_blank">o</a>'
        '<img src="https://ok.example.com/a.png" alt="a" width="2" height="1">'
        '<details class="answer-reasoning"><summary>R</summary></details>'
        '<time datetime="2024-01-01">d</time>'
        '<span class="task-box" role="img" aria-label="Done">x</span>'
    )
    cleaned = sanitize(html)
    for kept in (
        'href="#source-1"', 'aria-labelledby="source-1-label"', 'hidden="">Source 1<',
        'href="/new/?q=x"',
        'target="_blank"', 'width="2"', 'loading="lazy"', 'referrerpolicy="no-referrer"',
        "<details", 'datetime="2024-01-01"', 'role="img"',
    ):  # fmt: skip
        assert kept in cleaned, kept
