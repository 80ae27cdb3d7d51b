"""Time render_completion on a deep-research sized answer.

    .venv/bin/python bench/render_bench.py [--words 40000] [--sources 150] [--images 30]

Uses the simulator's corpus when it is importable (the same answers the demo shows), else a
small generator of its own, and prints the median of five renders.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from random import Random
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sonarweb.answers import render_completion
from sonarweb.perplexity.payload import Completion, parse_completion

QUESTION = "How do grid-scale batteries change electricity markets?"
_WORDS = [
    "battery", "storage", "market", "price", "grid", "capacity", "demand", "solar", "wind",
    "policy", "evidence", "study", "operators", "revenue", "frequency", "lithium", "cost",
]  # fmt: skip


def _fallback(words: int, sources: int, images: int, seed: int) -> dict[str, Any]:
    rng = Random(seed)
    urls = [f"https://site{i % 40}.example.org/report/{i}" for i in range(1, sources + 1)]
    parts, count, section = ["<think>Plan the report. [1]</think>\n\n# Report\n\n"], 0, 0
    while count < words:
        if count // 900 > section:
            section = count // 900
            parts.append(f"\n\n## Part {section}\n\n")
        sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(10, 24)))
        marks = "".join(f"[{rng.randint(1, sources)}]" for _ in range(rng.randint(0, 2)))
        parts.append(f"{sentence.capitalize()} **{rng.choice(_WORDS)}**{marks}. ")
        count += len(sentence.split()) + 1
        if rng.random() < 0.15:
            parts.append("\n\n")
    return {
        "id": "bench",
        "model": "sonar-deep-research",
        "choices": [{"message": {"content": "".join(parts)}, "finish_reason": "stop"}],
        "citations": urls,
        "search_results": [
            {"url": u, "title": f"Report {i}", "date": "2025-01-02", "snippet": "text " * 60}
            for i, u in enumerate(urls, 1)
        ],
        "images": [
            {
                "image_url": f"https://img.example.org/{i}.jpg",
                "origin_url": urls[i % sources],
                "title": f"Figure {i}",
                "width": 800,
                "height": 600,
            }
            for i in range(images)
        ],
        "related_questions": ["What next?"],
        "usage": {"prompt_tokens": 20, "completion_tokens": 60000, "cost": {"total_cost": 1.2}},
    }


def build(words: int, sources: int, images: int, seed: int = 1) -> Completion:
    try:
        from sonarweb.simulator.corpus import generate_completion
    except ImportError:
        raw = _fallback(words, sources, images, seed)
    else:
        raw = generate_completion(QUESTION, words=words, sources=sources, images=images, seed=seed)
    completion = parse_completion(raw)
    assert completion is not None
    return completion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=40_000)
    parser.add_argument("--sources", type=int, default=150)
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    completion = build(args.words, args.sources, args.images)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        html = render_completion(completion)
        times.append(time.perf_counter() - start)
    print(
        f"{len(completion.content.split()):,} words, {len(completion.citations)} citations, "
        f"{len(completion.images)} images -> {len(html):,} bytes of HTML"
    )
    print(f"render_completion: median {statistics.median(times) * 1000:.0f} ms of {args.runs} runs")


if __name__ == "__main__":
    main()
