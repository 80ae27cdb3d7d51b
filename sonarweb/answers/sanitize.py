"""The last step of rendering: nh3 with an allowlist of exactly what the fragment uses.

Everything before this step already escapes, so the allowlist is the backstop that makes a
mistake there harmless: no scripts, styles, frames, forms or event handlers; ``href`` and
``src`` only http(s), in-page fragments and our own root-relative paths.
"""

from __future__ import annotations

import nh3

TAGS = {
    "a", "abbr", "article", "b", "blockquote", "br", "caption", "code", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "i", "img", "kbd", "li", "mark", "nav", "ol", "p", "pre", "q", "s", "section", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "time", "tr", "ul",
}  # fmt: skip

# Removed with their content, not just unwrapped: their text is code or markup, not prose.
CLEAN_CONTENT_TAGS = {
    "script", "style", "iframe", "object", "embed", "svg", "math", "template", "noscript",
    "textarea", "select", "option", "title", "xmp", "noembed", "noframes", "frameset", "frame",
    "applet", "form", "button", "input", "link", "meta", "base",
}  # fmt: skip

ATTRIBUTES = {
    "*": {"class", "id", "title", "aria-label", "aria-labelledby", "aria-hidden", "lang"},
    "a": {"href", "data-index", "data-full"},
    "span": {"hidden"},
    "img": {"src", "alt", "width", "height"},
    "ol": {"start"},
    "li": {"value"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "details": {"open"},
}

TAG_ATTRIBUTE_VALUES = {
    "a": {"target": {"_blank"}},
    "span": {"role": {"img"}},
    # Scrolling regions (wide tables, code) must take keyboard focus; nothing else may.
    "div": {"role": {"region"}, "tabindex": {"0"}},
    "pre": {"tabindex": {"0"}},
}

# Forced onto every image whatever the markup said, so no image leaks the page address.
SET_ATTRIBUTES = {"img": {"referrerpolicy": "no-referrer", "loading": "lazy"}}


def _relative_url(url: str) -> str | None:
    """Keep in-page fragments and root-relative paths; drop `//host` and `/\\host` forms that
    browsers resolve to another site."""
    if url.startswith(("#", "?")):
        return url
    if url.startswith("/") and not url.startswith(("//", "/\\")) and "\\" not in url:
        return url
    return None


def _attribute(element: str, attribute: str, value: str) -> str | None:
    """Images load only from this site (the archive's copies): an answer's own image address
    would send every reader's IP address to whoever runs that host."""
    if (element == "img" and attribute == "src") or attribute == "data-full":
        return value if value.startswith("/") and not value.startswith("//") else None
    return value


_CLEANER = nh3.Cleaner(
    tags=TAGS,
    clean_content_tags=CLEAN_CONTENT_TAGS,
    attributes=ATTRIBUTES,
    tag_attribute_values=TAG_ATTRIBUTE_VALUES,
    set_tag_attribute_values=SET_ATTRIBUTES,
    url_schemes={"http", "https"},
    url_relative=_relative_url,
    link_rel="noopener noreferrer",
    strip_comments=True,
    attribute_filter=_attribute,
)


def sanitize(html: str) -> str:
    return _CLEANER.clean(html)
