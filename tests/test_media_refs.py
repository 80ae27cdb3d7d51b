"""Which images an answer shows: gallery and inline, in page order, once per URL."""

from __future__ import annotations

import re

from sonarweb.answers import render_completion
from sonarweb.answers.images import ImageCopy
from sonarweb.media.refs import GALLERY, INLINE, image_refs, markdown_images
from sonarweb.perplexity.sonar import parse_completion


def completion(content, images=()):
    return parse_completion(
        {"choices": [{"message": {"content": content}}], "images": list(images)}
    )


def test_gallery_first_then_inline_images_of_answer_and_reasoning():
    parsed = completion(
        "<think>Looked at ![a sketch](https://think.test/s.png)</think>\n"
        "# Answer\n\nText ![Chart *one*](https://a.test/one.png \"Title\").\n\n"
        "| col |\n|---|\n| ![in a table](http://b.test/t.gif) |\n\n"
        "Footnote.[^1]\n\n[^1]: ![noted](https://c.test/f.webp)\n\n"
        "![by reference][r]\n\n[r]: https://d.test/r.jpg\n",
        images=[
            {"image_url": "https://g.test/1.jpg", "origin_url": "https://g.test/page",
             "title": "  Gallery   one ", "width": 800, "height": 600},
            {"image_url": "javascript:alert(1)", "title": "bad"},
        ],
    )  # fmt: skip
    found = image_refs(parsed)
    assert [(r.url, r.kind) for r in found] == [
        ("https://g.test/1.jpg", GALLERY),
        ("https://a.test/one.png", INLINE),
        ("http://b.test/t.gif", INLINE),
        ("https://d.test/r.jpg", INLINE),
        ("https://c.test/f.webp", INLINE),  # footnotes render at the end of the answer
        ("https://think.test/s.png", INLINE),
    ]
    first = found[0]
    assert (first.caption, first.origin_url, first.width, first.height) == (
        "Gallery one", "https://g.test/page", 800, 600,
    )  # fmt: skip
    assert found[1].caption == "Chart one"


def test_urls_are_those_the_renderer_emits():
    text = (
        "![x](https://a.test/a%20b.png) ![y](<https://a.test/c d.png>) ![z](https://a.test/é.png)"
    )
    parsed = completion(text)
    refs = image_refs(parsed)
    # The renderer finds each image's copy under the very URL the refs name.
    copies = {r.url: ImageCopy(full_url=f"/images/{i}.webp") for i, r in enumerate(refs)}
    html = render_completion(parsed, images=copies)
    emitted = re.findall(r'<img src="([^"]+)"', html)
    assert emitted == [f"/images/{i}.webp" for i in range(len(refs))] and len(refs) == 3


def test_one_ref_per_url_and_no_other_schemes():
    refs = markdown_images(
        "![a](https://a.test/1.png) ![again](https://a.test/1.png) ![d](data:image/png;base64,AA)"
        " ![f](file:///etc/passwd) ![r](/relative.png)"
    )
    assert [r.url for r in refs] == ["https://a.test/1.png", "https://a.test/1.png"]
    parsed = completion(
        "![a](https://a.test/1.png)", images=[{"image_url": "https://a.test/1.png"}]
    )
    assert [(r.url, r.kind) for r in image_refs(parsed)] == [("https://a.test/1.png", GALLERY)]


def test_a_json_answer_has_no_inline_images():
    parsed = completion('{"chart": "![x](https://a.test/x.png)"}')
    assert image_refs(parsed) == []
