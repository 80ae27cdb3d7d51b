"""The Agent API's documents: presets, the model list, and deterministic research answers.

``generate_answer()`` writes a finished background research run the way the Agent API reports it
(``/work/shared/reference/perplexity-agent-api.md`` §3): ``search_results`` output items whose
results carry integer ids unique across the response, a ``fetch_url_results`` item, and one
assistant ``message`` whose markdown cites results inline as ``[N]`` or ``[web:N]`` (plus one
marker that matches no result, as live answers sometimes have). ``usage`` has the token details,
the per-tool invocations and the cost breakdown, with ``total_cost`` the sum of its parts. There
are no images and no related questions: the Agent API has neither.

The prose comes from ``corpus.py``'s writer, so an Agent answer reads like a Sonar one about the
same question. Everything is driven by one ``random.Random`` seeded from a string (the run id), so
an answer is the same in every process. ``response_document()`` wraps output and usage in the
32-key Response object. Nothing here imports Django.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from random import Random
from typing import Any

from .corpus import (
    _QUERIES,
    _SNIPPETS,
    _TITLE_SUFFIXES,
    REFERENCE_TIME,
    _build_content,
    _search_results,
    _title,
    _Writer,
    extract_topic,
)

PRESETS = ("fast", "low", "medium", "high", "xhigh")
# "accepted as previous names for the first four" (contract §7).
PRESET_ALIASES = {
    "fast-search": "fast",
    "pro-search": "low",
    "deep-research": "medium",
    "advanced-deep-research": "high",
}
# The model a preset resolves to once the run has completed (CF catalog, 2026-10-06).
PRESET_MODELS = {
    "fast": "openai/gpt-6-luna",
    "low": "openai/gpt-6-luna",
    "medium": "openai/gpt-6-luna",
    "high": "openai/gpt-6-sol",
    "xhigh": "anthropic/claude-opus-5-5",
}
# The tools a preset runs when the request names none.
PRESET_TOOLS: dict[str, tuple[str, ...]] = {
    "fast": ("web_search",),
    "low": ("web_search",),
    "medium": ("web_search", "fetch_url"),
    "high": ("web_search", "fetch_url"),
    "xhigh": ("web_search", "fetch_url"),
}
# (words, sources) of a generated answer when the caller does not say.
PRESET_DEFAULTS: dict[str, tuple[int, int]] = {
    "fast": (350, 6),
    "low": (700, 10),
    "medium": (2000, 20),
    "high": (3500, 30),
    "xhigh": (5000, 40),
}
MODEL_ONLY_DEFAULTS = (500, 8)

# USD per million tokens, as GET /v1/models reported them (CF models.json, 2026-10-09); a
# subset of the live list. perplexity/sonar is the only Perplexity-owned Sonar slug.
MODEL_PRICES: dict[str, dict[str, float]] = {
    "anthropic/claude-opus-5-5": {"input": 4, "output": 20, "cache_write": 5, "cache_read": 0.2},
    "anthropic/claude-sonnet-5-5": {
        "input": 2, "output": 10, "cache_write": 2.5, "cache_read": 0.2,
    },
    "google/gemini-3.5-flash": {"input": 1.5, "output": 9, "cache_read": 0.15},
    "openai/gpt-5.4": {"input": 2.5, "output": 15, "cache_read": 0.25},
    "openai/gpt-6-luna": {"input": 0.1, "output": 0.5, "cache_write": 0.125, "cache_read": 0.01},
    "openai/gpt-6-sol": {"input": 2, "output": 10, "cache_write": 2.5, "cache_read": 0.2},
    "perplexity/sonar": {"input": 0.25, "output": 2.5, "cache_read": 0.0625},
    "xai/grok-4.5": {"input": 2, "output": 6, "cache_read": 0.3},
}  # fmt: skip
MODELS = tuple(MODEL_PRICES)
# What one tool call costs (contract §7: search_web $0.001 observed; fetch_url runs a model).
SEARCH_COST_USD = 0.001
FETCH_COST_RANGE = (0.0025, 0.0045)
FETCH_MODEL = "openai/gpt-5.6-luna"

# Every Response has these 32 keys, whatever its status (CF: "A response has 32 keys always").
RESPONSE_KEYS = (
    "id", "object", "status", "model", "created_at", "completed_at", "background", "store",
    "error", "incomplete_details", "instructions", "max_output_tokens", "max_tool_calls",
    "metadata", "parallel_tool_calls", "previous_response_id", "reasoning", "service_tier",
    "temperature", "text", "tool_choice", "tools", "top_p", "truncation", "user", "output",
    "usage", "frequency_penalty", "presence_penalty", "top_logprobs", "prompt_cache_key",
    "safety_identifier",
)  # fmt: skip
# The request fields a Response echoes, with what it shows when the request did not send them.
ECHO_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "previous_response_id": None,
    "reasoning": None,
    "temperature": 1,
    "tool_choice": "auto",
    "top_p": 1,
}

_MARKER = re.compile(r"\[(\d+)\]")
_FETCH_PUBLISHERS = ("standards", "handbook", "library", "archive", "registry", "statistics")


def canonical_preset(name: str) -> str | None:
    """The preset's current name (``deep-research`` is ``medium``), or None if unknown."""
    if name in PRESETS:
        return name
    return PRESET_ALIASES.get(name)


def resolved_model(preset: str | None, model: str | None) -> str:
    """The ``model`` a completed Response reports: an explicit model stays itself."""
    if model:
        return model
    return PRESET_MODELS.get(preset or "", PRESET_MODELS["medium"])


def models_document() -> dict[str, Any]:
    """The body of ``GET /v1/models``."""
    data = []
    for model_id, prices in sorted(MODEL_PRICES.items()):
        data.append(
            {
                "id": model_id,
                "object": "model",
                "created": 0,
                "owned_by": model_id.split("/", 1)[0],
                "pricing": {**prices, "unit": "usd_per_1m_tokens"},
            }
        )
    return {"object": "list", "data": data}


def response_document(
    run_id: str,
    *,
    status: str,
    model: str,
    created_at: int,
    completed_at: int | None = None,
    background: bool = True,
    store: bool = True,
    error: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
    tools: list[dict[str, Any]] | None = None,
    echo: dict[str, Any] | None = None,
    output: list[dict[str, Any]] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Response object with all 32 keys, in the order the examples show them."""
    echoed = {**ECHO_DEFAULTS, **(echo or {})}
    return {
        "id": run_id,
        "object": "response",
        "status": status,
        "model": model,
        "created_at": created_at,
        "completed_at": completed_at,
        "background": background,
        "store": store,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": echoed["instructions"],
        "max_output_tokens": echoed["max_output_tokens"],
        "max_tool_calls": None,
        # Always {} as seen live, whatever the request sent: nothing may rely on an echo.
        "metadata": {},
        "parallel_tool_calls": True,
        "previous_response_id": echoed["previous_response_id"],
        "reasoning": echoed["reasoning"],
        "service_tier": "default",
        "temperature": echoed["temperature"],
        "text": {"format": {"type": "text"}},
        "tool_choice": echoed["tool_choice"],
        "tools": list(tools or []),
        "top_p": echoed["top_p"],
        "truncation": "",
        "user": None,
        "output": list(output or []),
        "usage": usage,
        "frequency_penalty": 0,
        "presence_penalty": 0,
        "top_logprobs": 0,
        "prompt_cache_key": None,
        "safety_identifier": None,
    }


def _sparse(mapping: dict[str, Any], *required: str) -> dict[str, Any]:
    """Upstream leaves a key out when its value is zero (or empty), unless it is required."""
    return {k: v for k, v in mapping.items() if k in required or v not in (0, 0.0, None, {})}


class AgentAnswer:
    """A generated research run's results; ``output()`` and ``usage()`` build the documents.

    The partial forms (``partial_output``, ``truncated_output``) cut the message at a block
    boundary, so a page rendering them never sees half a table or an unclosed code fence.
    """

    def __init__(
        self,
        *,
        question: str,
        model: str,
        searches: list[dict[str, Any]],
        fetched: dict[str, Any] | None,
        parts: list[str],
        message_id: str,
        tokens: dict[str, int],
        fetch_costs: list[float],
        fetch_tokens: list[dict[str, Any]],
    ) -> None:
        self.question = question
        self.model = model
        self.searches = searches
        self.fetched = fetched
        self.parts = parts
        self.message_id = message_id
        self._tokens = tokens
        self._fetch_costs = fetch_costs
        self._fetch_tokens = fetch_tokens
        self._text: str | None = None
        self._usage: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "\n\n".join(self.parts)
        return self._text

    @property
    def result_ids(self) -> list[int]:
        return [r["id"] for item in self.searches for r in item["results"]]

    def _head(self, share: float) -> str:
        """The first blocks of the message, about ``share`` of its words (at least one)."""
        total = len(self.text.split())
        taken: list[str] = []
        count = 0
        for part in self.parts:
            if taken and count >= total * share:
                break
            taken.append(part)
            count += len(part.split())
        return "\n\n".join(taken)

    def _message(self, text: str, status: str) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self.message_id,
            "role": "assistant",
            "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }

    def output(self) -> list[dict[str, Any]]:
        """The output of the completed run."""
        items: list[dict[str, Any]] = [dict(s) for s in self.searches]
        if self.fetched is not None:
            items.append(dict(self.fetched))
        items.append(self._message(self.text, "completed"))
        return items

    def partial_output(self) -> list[dict[str, Any]]:
        """What a GET shows while the run is in progress: its first search, the answer begun."""
        items: list[dict[str, Any]] = [dict(s) for s in self.searches[:1]]
        items.append(self._message(self._head(0.3), "in_progress"))
        return items

    def truncated_output(self) -> list[dict[str, Any]]:
        """The output of a run cut short (``incomplete``): every tool result, part of the text."""
        items: list[dict[str, Any]] = [dict(s) for s in self.searches]
        if self.fetched is not None:
            items.append(dict(self.fetched))
        items.append(self._message(self._head(0.6), "incomplete"))
        return items

    def usage(self, *, truncated: bool = False) -> dict[str, Any]:
        if not truncated and self._usage is not None:
            return self._usage
        text = self._head(0.6) if truncated else self.text
        usage = self._build_usage(text)
        if not truncated:
            self._usage = usage
        return usage

    def _build_usage(self, text: str) -> dict[str, Any]:
        prices = MODEL_PRICES.get(self.model, MODEL_PRICES["openai/gpt-6-luna"])
        tokens = self._tokens
        reasoning = tokens["reasoning"]
        output_tokens = round(len(text.split()) * 1.33) + reasoning
        input_tokens = tokens["input"]
        cache_read = tokens["cache_read"]
        cache_creation = tokens["cache_creation"] if "cache_write" in prices else 0
        fresh = max(0, input_tokens - cache_read - cache_creation)
        million = 1_000_000
        searches = sum(len(item.get("queries") or []) for item in self.searches)
        search_cost = round(searches * SEARCH_COST_USD, 5)
        fetch_cost = round(sum(self._fetch_costs), 5)
        tool_calls_cost = round(search_cost + fetch_cost, 5)
        cost = {
            "currency": "USD",
            "input_cost": round(fresh * prices["input"] / million, 5),
            "output_cost": round(output_tokens * prices["output"] / million, 5),
            "cache_creation_cost": round(
                cache_creation * prices.get("cache_write", 0) / million, 5
            ),
            "cache_read_cost": round(cache_read * prices["cache_read"] / million, 5),
            "tool_calls_cost": tool_calls_cost,
            "tool_calls_cost_details": _sparse(
                {"search_web": search_cost, "fetch_url": fetch_cost}
            ),
        }
        parts = ("input_cost", "output_cost", "cache_creation_cost", "cache_read_cost")
        # Summing the rounded parts keeps total_cost what a reader adds up from the rows.
        cost["total_cost"] = round(sum(cost[p] for p in parts) + tool_calls_cost, 5)
        tool_details: dict[str, Any] = {}
        if searches:
            tool_details["search_web"] = {"invocation": searches, "cost_usd": search_cost}
        if self._fetch_costs:
            tool_details["fetch_url"] = {
                "invocation": len(self._fetch_costs),
                "cost_usd": fetch_cost,
                "token_usage": [dict(t) for t in self._fetch_tokens],
            }
        usage: dict[str, Any] = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "input_tokens_details": _sparse(
                {
                    "cached_tokens": cache_read,
                    "cache_creation_input_tokens": cache_creation,
                    "cache_read_input_tokens": cache_read,
                },
                "cached_tokens",
            ),
            "output_tokens_details": {"reasoning_tokens": reasoning},
        }
        if tool_details:
            usage["tool_calls_details"] = tool_details
        usage["cost"] = _sparse(cost, "currency", "input_cost", "output_cost", "total_cost")
        return usage


def reasoning_only_usage(question: str, model: str, max_output_tokens: int) -> dict[str, Any]:
    """Usage of a run whose output cap went entirely to reasoning (CF
    ``agent_incomplete_truncated.json``): no tool ran, no text, the cap floored to 16."""
    prices = MODEL_PRICES.get(model, MODEL_PRICES["openai/gpt-6-luna"])
    input_tokens = 12 + round(len(question.split()) * 1.35)
    output_tokens = max(16, max_output_tokens)
    input_cost = round(input_tokens * prices["input"] / 1_000_000, 5)
    output_cost = round(output_tokens * prices["output"] / 1_000_000, 5)
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": output_tokens},
        "cost": {
            "currency": "USD",
            "input_cost": input_cost,
            "output_cost": output_cost,
            "total_cost": round(input_cost + output_cost, 5),
        },
    }


def _round_sizes(rng: Random, count: int) -> list[int]:
    """How many results each search round found: one round for a handful, up to six."""
    if count <= 0:
        return []
    rounds = 1 if count <= 6 else min(6, 2 + count // 30)
    base, extra = divmod(count, rounds)
    sizes = [base + (index < extra) for index in range(rounds)]
    rng.shuffle(sizes)
    return sizes


def _result_ids(rng: Random, sizes: list[int]) -> list[list[int]]:
    """Ids per round: unique across the response, starting at 1 or 11 as seen live, and
    sometimes jumping to the next ten between rounds (CF: 1-15, then 31-...)."""
    next_id = rng.choice((1, 11))
    rounds: list[list[int]] = []
    for size in sizes:
        rounds.append(list(range(next_id, next_id + size)))
        next_id += size
        if rng.random() < 0.35:
            next_id = (next_id + 9) // 10 * 10 + 1
    return rounds


def _cite(parts: list[str], ids: list[int], rng: Random) -> list[str]:
    """Turn the corpus's ``[k]`` (k-th source) into result ids, as ``[N]`` or ``[web:N]``:
    the first marker of the answer is ``[web:N]``, the second ``[N]``, the rest either."""
    seen = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        ident = ids[int(match.group(1)) - 1]
        web = True if seen == 1 else False if seen == 2 else rng.random() < 0.5
        return f"[web:{ident}]" if web else f"[{ident}]"

    return [part if part.startswith("```") else _MARKER.sub(replace, part) for part in parts]


def _add_stray_marker(parts: list[str], ids: list[int], rng: Random) -> None:
    """One marker whose id matches no result, in a paragraph near the middle of the answer."""
    stray = max(ids, default=0) + rng.randint(3, 9)
    prose = [
        index
        for index, part in enumerate(parts)
        if index and part[:1].isalpha() and part.endswith(".") and "\n" not in part
    ]
    if not prose:
        parts.append(f"See also the methodology notes [web:{stray}].")
        return
    index = prose[len(prose) // 2]
    parts[index] = parts[index][:-1] + f" [web:{stray}]."


def _page_text(writer: _Writer, title: str) -> str:
    """The text of a fetched page: a heading and a few paragraphs, as fetch_url returns it."""
    rng = writer.rng
    paragraphs = [f"# {title}"]
    for _ in range(rng.randint(2, 4)):
        sentences = [writer.sentence(cite_probability=0) for _ in range(rng.randint(2, 4))]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def generate_answer(
    question: str,
    *,
    seed: str,
    model: str,
    words: int = 2000,
    sources: int = 20,
    search: bool = True,
    fetch: bool = True,
    created: int | None = None,
) -> AgentAnswer:
    """The finished research for ``question``: deterministic for the same arguments.

    ``sources`` results are spread over one to six ``search_results`` items, every one cited
    at least once; with ``search=False`` there are none (a bare model without a web_search
    tool answers ungrounded). ``fetch`` adds a ``fetch_url_results`` item that reads one or two
    of the results' pages in full and one page the search did not return.
    """
    rng = Random(f"agent|{seed}|{model}|{question}")
    created_ts = int(created) if created is not None else REFERENCE_TIME
    created_dt = datetime.fromtimestamp(created_ts, tz=UTC)
    topic = extract_topic(question)
    count = max(0, sources) if search else 0
    writer = _Writer(rng, topic, words=words, sources=count, created=created_dt)
    results = _search_results(writer, created_dt)
    _build_content(writer, results)
    sizes = _round_sizes(rng, count)
    id_rounds = _result_ids(rng, sizes)
    ids = [ident for round_ids in id_rounds for ident in round_ids]
    parts = _cite(writer.parts, ids, rng)
    _add_stray_marker(parts, ids, rng)

    searches: list[dict[str, Any]] = []
    position = 0
    for round_ids in id_rounds:
        queries = rng.sample(_QUERIES, rng.randint(1, 3))
        items = []
        for ident in round_ids:
            source = results[position]
            position += 1
            result: dict[str, Any] = {
                "id": ident,
                "url": source["url"],
                "title": source["title"],
                "snippet": source["snippet"],
                "source": "web",
            }
            # Live results often lack one date or both; the first of a round has both, so
            # every round shows each field at least once.
            first = ident == round_ids[0]
            if first or (source["date"] and rng.random() < 0.4):
                result["date"] = source["date"] or source["last_updated"]
            if first or rng.random() < 0.85:
                result["last_updated"] = source["last_updated"]
            items.append(result)
        searches.append(
            {
                "type": "search_results",
                "queries": [writer.fill(q).lower() for q in queries],
                "results": items,
            }
        )

    fetched: dict[str, Any] | None = None
    fetch_costs: list[float] = []
    fetch_tokens: list[dict[str, Any]] = []
    if fetch:
        contents = []
        for source in rng.sample(results, min(len(results), rng.randint(1, 2))):
            contents.append(
                {
                    "url": source["url"],
                    "title": source["title"],
                    "snippet": _page_text(writer, source["title"]),
                }
            )
        title = f"{_title(topic.subject)}: {writer.fill(rng.choice(_TITLE_SUFFIXES))}"
        publisher = rng.choice(_FETCH_PUBLISHERS)
        contents.append(
            {
                "url": f"https://{publisher}.example.net/{topic.slug}/{rng.randint(100, 999)}",
                "title": title,
                "snippet": _page_text(writer, title) + "\n\n" + writer.fill(rng.choice(_SNIPPETS)),
            }
        )
        fetched = {"type": "fetch_url_results", "contents": contents}
        for content in contents:
            read = round(len(content["snippet"].split()) * 1.35) + rng.randint(800, 2600)
            written = rng.randint(600, 2400)
            fetch_tokens.append(
                {
                    "model": FETCH_MODEL,
                    "input_tokens": read,
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": written,
                    "output_tokens_details": {"reasoning_tokens": rng.randint(100, 300)},
                }
            )
            fetch_costs.append(round(rng.uniform(*FETCH_COST_RANGE), 5))

    text_tokens = round(sum(len(p.split()) for p in parts) * 1.33)
    prompt = 350 + round(len(question.split()) * 1.35)
    context = sum(rng.randint(250, 900) for _ in range(count))
    context += sum(t["output_tokens"] for t in fetch_tokens)
    input_tokens = prompt + context
    cache_read = int(input_tokens * rng.uniform(0.2, 0.4))
    cache_creation = int(input_tokens * rng.uniform(0.3, 0.55))
    tokens = {
        "input": input_tokens,
        "cache_read": cache_read,
        "cache_creation": cache_creation,
        "reasoning": int(text_tokens * rng.uniform(0.15, 0.45)) + rng.randint(150, 900),
    }
    message_id = f"msg_{uuid.UUID(int=rng.getrandbits(128), version=4)}"
    return AgentAnswer(
        question=question,
        model=model,
        searches=searches,
        fetched=fetched,
        parts=parts,
        message_id=message_id,
        tokens=tokens,
        fetch_costs=fetch_costs,
        fetch_tokens=fetch_tokens,
    )
