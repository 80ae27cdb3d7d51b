"""Every internal URL comes from the URL configuration, and every URL pattern has a name.

Templates write ``{% url %}`` (and ``{% static %}``), Python ``reverse()``: a path typed by
hand goes stale silently when a route moves. These tests read the sources, so they fail on a
hand-written path before any page shows a broken link. External links (``https://...``),
fragments (``#main``) and query-only links (``?page=2``) are not internal paths.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404

ROOT = Path(settings.BASE_DIR)
# Not the app's own: the simulator is a stand-in for Perplexity, migrations are history.
SKIPPED_DIRS = {"simulator", "migrations", "__pycache__"}
# The 500 page is rendered while something is broken, with no template tags at all
# (tests/test_error_pages.py): its few paths are checked against the URLconf instead.
NO_TAGS_TEMPLATE = ROOT / "templates" / "500.html"
# Runs as `python -m sonarweb.healthcheck` without importing Django (standard library only),
# and asks the server over HTTP like any client: it cannot reverse a URL.
NO_DJANGO_MODULES = {ROOT / "sonarweb" / "healthcheck.py"}
# Hand-written paths known and left for now, each with its reason; nothing else may join.
KNOWN_PATHS = {
    # The renderer's default follow-up link: answers render without Django settings (bench,
    # scripts; tests/test_answers_render.py). The app passes reverse("new_research").
    "sonarweb/answers/render.py": {"'/new/'"},
}

# Attributes that hold a URL the browser (or htmx) follows or loads.
URL_ATTRIBUTE = re.compile(
    r"""\s(?P<name>href|src|action|formaction|poster|hx-(?:get|post|put|patch|delete)"""
    r"""|hx-push-url|hx-replace-url|data-[\w-]*url)\s*=\s*(?P<q>["'])(?P<value>.*?)(?P=q)""",
    re.IGNORECASE | re.DOTALL,
)
REDIRECTS = {
    "HttpResponseRedirect",
    "HttpResponsePermanentRedirect",
    "HttpResponseClientRedirect",
    "redirect",
    "redirect_to_login",
    "build_absolute_uri",
}
# Context keys and keyword arguments that carry a URL to a template or a response.
URL_NAMES = re.compile(r"(^|_)(url|href|action|next|back|location)$")


def _files(top: Path, *suffixes: str) -> Iterator[Path]:
    for path in sorted(top.rglob("*")):
        if path.suffix in suffixes and not SKIPPED_DIRS.intersection(path.parts):
            yield path


def template_files() -> list[Path]:
    return [*_files(ROOT / "templates", ".html", ".txt"), *_files(ROOT / "sonarweb", ".html")]


def literal_path(value: str) -> bool:
    """A path on this site typed out, rather than produced by a tag: starts with one slash.
    ``//host`` is another site, ``https://``, ``#x``, ``?x`` and ``{{ ... }}`` are not paths."""
    return value.startswith("/") and not value.startswith("//")


def literal_paths_in_template(text: str) -> list[str]:
    return [
        f'{m["name"]}="{m["value"]}"'
        for m in URL_ATTRIBUTE.finditer(text)
        if literal_path(m["value"].strip())
    ]


# -- templates --------------------------------------------------------------------------------


def test_templates_write_internal_urls_with_the_url_tag():
    found = {}
    for path in template_files():
        if path == NO_TAGS_TEMPLATE:
            continue
        if hits := literal_paths_in_template(path.read_text()):
            found[str(path.relative_to(ROOT))] = hits
    assert not found, f"use {{% url %}} or {{% static %}} instead of these paths: {found}"


def test_the_500_page_links_only_where_the_url_configuration_says():
    text = NO_TAGS_TEMPLATE.read_text()
    paths = {m["value"] for m in URL_ATTRIBUTE.finditer(text) if literal_path(m["value"])}
    assert paths, "the 500 page's links were not found: has the attribute pattern drifted?"
    for path in paths:
        if path.startswith(settings.STATIC_URL):
            relative = path.removeprefix(settings.STATIC_URL)
            assert (ROOT / "static" / relative).is_file(), path
        else:
            assert path == reverse("dashboard"), path


def test_the_template_scan_finds_hand_written_paths():
    """The scan itself can fail: each shape of hand-written path is caught, nothing else."""
    caught = [
        '<a href="/settings/">',
        "<form method=\"post\" action='/r/{{ tracked.slug }}/share/'>",
        '<div hidden hx-get="/badges/?{{ q }}" hx-trigger="load">',
        '<button data-copy-url="/r/{{ s }}/answer.md">',
        '<a class="x"\n   href="/">',
        '<img src="/static/img/favicon.svg">',
    ]
    for html in caught:
        assert literal_paths_in_template(html), html
    allowed = [
        '<a href="https://www.perplexity.ai/account/api">',
        '<a href="#main">',
        '<a href="?page={{ page.next_page_number }}">',
        "<a href=\"{% url 'settings' %}\">",
        '<form method="post" action="{{ action }}">',
        '<a href="//cdn.example/x">',
        '<p class="help">Paste "/r/abc/" here</p>',
    ]
    for html in allowed:
        assert not literal_paths_in_template(html), html


def test_scripts_build_no_internal_urls():
    """Scripts read URLs from the page (hx-get, data-*-url), which the templates write."""
    found = []
    for path in [*_files(ROOT / "static", ".js"), *_files(ROOT / "sonarweb", ".js")]:
        for match in re.finditer(r"""(["'`])(/[^"'`\s]*)\1""", path.read_text()):
            # A lone "/" is more often a separator (split("/")) than a link.
            if resolves(match[2]) and route_of(match[2]) != "/":
                found.append(f"{path.relative_to(ROOT)}: {match[2]}")
    assert not found, found


# -- Python -----------------------------------------------------------------------------------


def route_of(text: str) -> str:
    """The path part of a URL: without its query and fragment."""
    return re.split(r"[?#]", text, maxsplit=1)[0]


def resolves(path: str) -> bool:
    if not literal_path(path):
        return False
    path = route_of(path)
    try:
        resolve(path)
    except Resolver404:
        return False
    return True


def samples(node: ast.expr) -> list[str]:
    """The text of a string literal; for an f-string, its text with each placeholder filled
    in as a word and as a SHA-256 digest (what the path converters here accept)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [
            "".join(str(p.value) if isinstance(p, ast.Constant) else fill for p in node.values)
            for fill in ("x", "0" * 64)
        ]
    return []


def _docstrings(tree: ast.Module) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds) and node.body and isinstance(node.body[0], ast.Expr)
    }


def _url_slots(tree: ast.Module) -> set[int]:
    """String nodes in a place that holds a URL: a redirect's first argument, a keyword or
    dict key named like a URL (``cancel_url=``, ``"action":``)."""
    places: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in REDIRECTS and node.args:
                places.append(node.args[0])
            places.extend(k.value for k in node.keywords if URL_NAMES.search(k.arg or ""))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and URL_NAMES.search(str(key.value)):
                    places.append(value)
    slots: set[int] = set()
    while places:
        place = places.pop()
        slots.add(id(place))
        # Either branch of `a if c else b` and `a or b` may be the URL.
        if isinstance(place, ast.IfExp):
            places += [place.body, place.orelse]
        elif isinstance(place, ast.BoolOp):
            places += place.values
    return slots


def literal_paths_in_python(source: str) -> list[str]:
    """Hand-written paths: any string that names a route of this site (``"/settings/"``,
    ``f"/r/{slug}/"``), and the site's root where a URL goes (a redirect's target)."""
    tree = ast.parse(source)
    skip, slots = _docstrings(tree), _url_slots(tree)
    found = []
    for node in ast.walk(tree):
        texts = samples(node) if isinstance(node, ast.expr) else []
        if not texts or id(node) in skip:
            continue
        in_slot = id(node) in slots
        # A lone "/" is a separator too (split("/")): as the site's root it counts only in a
        # URL's place.
        if any(resolves(t) and (in_slot or route_of(t) != "/") for t in texts):
            found.append(ast.unparse(node))
    return found


def test_python_reverses_internal_urls():
    found = {}
    for path in _files(ROOT / "sonarweb", ".py"):
        if path in NO_DJANGO_MODULES:
            continue
        name = str(path.relative_to(ROOT))
        known = KNOWN_PATHS.get(name, set())
        if hits := [h for h in literal_paths_in_python(path.read_text()) if h not in known]:
            found[name] = hits
    assert not found, f"use reverse() (or redirect with a URL name) instead: {found}"


@pytest.mark.parametrize(
    "source",
    [
        'HttpResponseRedirect("/settings/", status=303)',
        'HttpResponseRedirect("/", status=303)',
        'redirect("/team/")',
        'x = {"action": f"/links/{link.pk}/revoke/"}',
        'x = {"cancel_url": "/"}',
        'x = {"next_url": f"/?{query}" if query else "/"}',
        'HttpResponseRedirect(link.url if panel else "/links/")',
        'render(request, "t.html", {"next_url": f"/?{query}"})',
        'link = request.build_absolute_uri(f"/invite/{token}/")',
        'def get_absolute_url(self):\n    return f"/r/{self.slug}/"',
        'FOLLOWUP = "/new/"',
    ],
)
def test_the_python_scan_finds_hand_written_paths(source):
    assert literal_paths_in_python(source), source


@pytest.mark.parametrize(
    "source",
    [
        'HttpResponseRedirect(reverse("settings"), status=303)',
        'redirect("settings")',
        'url.rstrip("/")',
        'STATIC_URL = "/static/"',
        'RUNS_PATH = "/v1/agent"',
        'def f():\n    """/r/<slug>/cancel/: ask upstream to cancel."""',
        'api = NinjaAPI(docs_url="/docs", openapi_url="/openapi.json")',
        "back = current.path or default",
    ],
)
def test_the_python_scan_lets_other_strings_be(source):
    assert not literal_paths_in_python(source), source


# -- the URL configuration --------------------------------------------------------------------


def unnamed_patterns(patterns: list, prefix: str = "") -> Iterator[str]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            # Django's admin site names its own routes; one catch-all of it has no name.
            if entry.namespace != "admin":
                yield from unnamed_patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and not entry.name:
            yield prefix + str(entry.pattern)


def test_every_url_pattern_has_a_name():
    patterns = get_resolver().url_patterns
    assert len(patterns) >= 4
    assert not list(unnamed_patterns(patterns))


def test_every_named_url_is_unique():
    """Two routes under one name would make reverse() pick one of them silently."""
    names: list[str] = []

    def collect(patterns: list) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if entry.namespace is None:
                    collect(entry.url_patterns)
            elif entry.name:
                names.append(entry.name)

    collect(get_resolver().url_patterns)
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
