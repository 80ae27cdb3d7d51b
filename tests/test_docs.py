"""What protects a reader of the docs: the README starts with the two commands and stays short,
every variable the code reads is documented, and every relative link leads to a file."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CONFIGURATION = DOCS / "configuration.md"
MAX_README_BYTES = 8 * 1024

# How the code reads the environment: settings.py's helpers, os.environ / os.getenv, and the
# ``environ`` mapping media/conf.py is given (os.environ by default).
PYTHON_READERS = re.compile(
    r"""\benv(?:_\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|\benviron\.(?:get|setdefault)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|\bgetenv\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    r"""|\benviron\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]"""
)
# The project's own prefix: media/conf.py reads its variables from a table of names, so any
# quoted SONARWEB_ name in the package counts as read.
OWN_NAMES = re.compile(r"""["'](SONARWEB_[A-Z0-9_]+)["']""")
# Secrets also read from the file that <NAME>_FILE names.
FILE_READERS = re.compile(r"""\b(?:env_secret|env_file_value)\(\s*["']([A-Z][A-Z0-9_]+)["']""")
# Shell, compose and Dockerfile: ${NAME...} and build arguments.
SHELL_READERS = re.compile(r"\$\{([A-Z][A-Z0-9_]+)|^ARG ([A-Z][A-Z0-9_]+)", re.M)
# A WSGI app's ``environ`` (the simulator's) holds the request, not the process environment.
WSGI_KEYS = re.compile(
    r"HTTP_\w+|REQUEST_METHOD|PATH_INFO|QUERY_STRING|CONTENT_TYPE|CONTENT_LENGTH"
    r"|SCRIPT_NAME|SERVER_NAME|SERVER_PORT|SERVER_PROTOCOL|REMOTE_ADDR"
)
# Set by Django, the test suite or the operating system, not by whoever runs sonarweb.
NOT_CONFIGURATION = {"DJANGO_SETTINGS_MODULE", "TMPDIR"}


def variables_the_code_reads() -> set[str]:
    names: set[str] = set()
    python = [*(ROOT / "sonarweb").rglob("*.py"), ROOT / "gunicorn.conf.py", ROOT / "manage.py"]
    for source in python:
        text = source.read_text()
        names.update(n for match in PYTHON_READERS.findall(text) for n in match if n)
        names.update(OWN_NAMES.findall(text))
        names.update(f"{n}_FILE" for n in FILE_READERS.findall(text))
    shell = [
        ROOT / "Dockerfile",
        ROOT / "compose.yaml",
        *(ROOT / "deploy").glob("*.sh"),
        *(ROOT / "scripts").glob("*.sh"),
    ]
    for source in shell:
        names.update(n for match in SHELL_READERS.findall(source.read_text()) for n in match if n)
    return {n for n in names if not WSGI_KEYS.fullmatch(n)} - NOT_CONFIGURATION


def test_every_variable_the_code_reads_is_documented():
    read = variables_the_code_reads()
    # The derivation finds each way of reading: helpers, os.environ, media's mapping, shell.
    assert {
        "DATABASE_URL_FILE",
        "GUNICORN_WORKERS",
        "SONARWEB_SEARCH_SECONDS",
        "SONARWEB_MEDIA_S3_REGION",
        "SONARWEB_IMAGE_MAX_BYTES",
        "SONARWEB_ROLE_FILE",
        "SONARWEB_LOCK",
        "SIM_PORT",
    } <= read
    documented = CONFIGURATION.read_text()
    # <NAME>_FILE is explained once for every secret, not row by row.
    missing = sorted(
        n
        for n in read
        if f"`{n}`" not in documented and f"`{n.removesuffix('_FILE')}`" not in documented
    )
    assert not missing, f"document these in docs/configuration.md: {missing}"
    assert "_FILE" in documented


def test_readme_opens_with_the_two_commands():
    text = README.read_text()
    blocks = re.findall(r"```(?:sh|bash|shell)?\n(.*?)```", text, re.S)
    assert blocks, "README.md shows no commands"
    commands = [
        line.split("#")[0].strip()
        for block in blocks
        for line in block.splitlines()
        if line.split("#")[0].strip()
    ]
    assert commands[:2] == ["make demo", "make test"], commands[:2]


def test_readme_is_at_most_8_kb():
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; move detail into docs/"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def relative_links(page: Path) -> list[str]:
    text = CODE.sub("", page.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:|#", t)]


def test_every_relative_link_points_at_a_file():
    pages = [README, *sorted(DOCS.glob("*.md"))]
    assert CONFIGURATION in pages
    broken = []
    for page in pages:
        for target in relative_links(page):
            path = unquote(target.split("#", 1)[0])
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_link_check_sees_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[a](docs/a.md) [b](https://example.com) [c](#top) `[d](not/a/link.md)`\n"
        '[e](../x.md#part "title")\n'
    )
    assert relative_links(page) == ["docs/a.md", "../x.md#part"]
