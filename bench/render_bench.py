"""Time rendering a deep-research sized answer, as the archive does once at completion.

    .venv/bin/python bench/render_bench.py [--words 40000] [--sources 150] [--images 30]

"Render" is the whole archive step (tracker/archive/store.py): parse the stored JSON, render the
sanitized HTML fragment and the plain markdown kept for search. Both protocols are measured:
a Sonar job with images, and an Agent run (which has no images) of the same size. Prints the
median of a few runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fixture import agent_text, job_text
from bench.results import Result, record
from sonarweb.answers import render_completion, render_plain_markdown
from sonarweb.perplexity.documents import loads_document

TARGET_SECONDS = 1.0


def render_once(text: str) -> tuple[float, float, int]:
    """(seconds for the whole step, seconds for the HTML alone, bytes of HTML)."""
    start = time.perf_counter()
    completion = loads_document(text).response
    assert completion is not None
    html_start = time.perf_counter()
    html = render_completion(completion, followup_url="/new/")
    html_seconds = time.perf_counter() - html_start
    render_plain_markdown(completion)
    return time.perf_counter() - start, html_seconds, len(html.encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=40_000)
    parser.add_argument("--sources", type=int, default=150)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cases = (
        ("render", f"{args.images} images", job_text(args.words, args.sources, args.images)),
        ("render Agent run", "no images", agent_text(args.words, args.sources)),
    )
    for name, images, text in cases:
        render_once(text)
        runs = [render_once(text) for _ in range(args.runs)]
        total = statistics.median(r[0] for r in runs)
        html_only = statistics.median(r[1] for r in runs)
        size = runs[0][2]
        print(
            f"{name}: {args.words:,} words, {args.sources} sources, {images}; "
            f"{len(text):,} bytes of JSON -> {size:,} bytes of HTML; median of {args.runs} runs"
        )
        record(Result(f"{name}: parse + HTML + text", total * 1000, "ms", "< 1000 ms", total < 1))
        record(Result(f"{name}: HTML fragment alone", html_only * 1000, "ms", "", None))
        record(Result(f"{name}: HTML size", size / 1024, "KB", "", None))


if __name__ == "__main__":
    main()
