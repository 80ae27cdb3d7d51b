"""Deterministic, plausible research answers for the simulator.

``generate_completion()`` builds a chat-completion document shaped like the one the async Sonar API
returns for a finished job: markdown content with ``[n]`` citation markers, the matching
``citations`` and ``search_results``, images, related questions, usage with a cost breakdown and,
for deep research, ``reasoning_steps``.

The text is assembled from sentence templates filled with noun phrases taken from the question, so
a page rendering it looks like a real answer about the question asked. Everything is driven by one
``random.Random`` seeded from a string (string seeds hash with SHA-512, so output is stable across
processes regardless of ``PYTHONHASHSEED``). All URLs live under the reserved example.org /
example.com / example.net domains, so nothing rendered from the simulator can reach a real host;
only images may instead point at the simulator itself (``image_base``), which draws them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random
from string import Template
from typing import Any

from .images import image_path

MODELS = ("sonar", "sonar-pro", "sonar-deep-research", "sonar-reasoning-pro")
THINKING_MODELS = frozenset({"sonar-deep-research", "sonar-reasoning-pro"})

# Used when the caller gives no creation time, so that output depends on the seed alone.
REFERENCE_TIME = 1_750_000_000

# USD per million tokens (input, output, citation, reasoning), per thousand searches, and per
# thousand requests by search context size; close to the published price list.
_PRICES: dict[str, dict[str, Any]] = {
    "sonar": {"in": 1.0, "out": 1.0, "cite": 0.0, "reason": 0.0, "search": 0.0,
              "request": {"low": 5.0, "medium": 8.0, "high": 12.0}},
    "sonar-pro": {"in": 3.0, "out": 15.0, "cite": 0.0, "reason": 0.0, "search": 0.0,
                  "request": {"low": 6.0, "medium": 10.0, "high": 14.0}},
    "sonar-reasoning-pro": {"in": 2.0, "out": 8.0, "cite": 0.0, "reason": 0.0, "search": 0.0,
                            "request": {"low": 6.0, "medium": 10.0, "high": 14.0}},
    "sonar-deep-research": {"in": 2.0, "out": 8.0, "cite": 2.0, "reason": 3.0, "search": 5.0,
                            "request": {"low": 0.0, "medium": 0.0, "high": 0.0}},
}  # fmt: skip

# Words that separate noun phrases in a question; kept as text because a literal list of 200
# strings would be unreadable.
_STOPWORD_TEXT = """
    a about above across after again against all almost also am among an and any are as at be
    because been before being below best between both but by can could did do does doing down
    during each either ever every few for from further get gets getting give had has have having
    he her here hers how however i if in into is it its itself just less let like many may me
    might more most much must my near need needs no nor not now of off often on once one only or
    other our out over own per please quite rather really same should so some such than that the
    their them then there these they this those through to too under until up upon us use used
    using very via vs versus want was we well were what when where whether which while who whom
    whose why will with within without would you your yours
    summarize summarise explain describe compare tell list give show find write research
    investigate analyse analyze review outline discuss evaluate assess provide overview
    currently today latest recent recently right actually effective main key important major
    different various good better top new common general specific possible compared comparing
    changed changes happen happened work works
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_ACTORS = (
    "industry analysts", "independent researchers", "practitioners", "early adopters",
    "standards bodies", "regulators", "academic groups", "vendors", "large operators",
    "smaller teams", "consultancies", "public agencies", "trade associations", "field engineers",
)  # fmt: skip
_EVIDENCE = (
    "benchmark data", "field reports", "survey results", "published case studies",
    "peer-reviewed studies", "vendor documentation", "post-incident reviews", "pilot programmes",
    "public filings", "longitudinal studies", "procurement records", "audit reports",
)  # fmt: skip
_DIMENSIONS = (
    "cost", "reliability", "scalability", "long-term maintenance", "safety",
    "performance under load", "ease of adoption", "regulatory exposure", "total cost of ownership",
    "operational complexity", "energy use", "supply-chain risk", "interoperability",
    "time to deploy", "data quality", "vendor lock-in",
)  # fmt: skip
_HEDGES = (
    "In most reported cases", "According to several sources", "Across the studies reviewed",
    "On balance", "Notably", "In practice", "By contrast", "More recently", "Historically",
    "At the same time", "Taken together", "Crucially", "As a rule of thumb", "Perhaps surprisingly",
)  # fmt: skip
_TRENDS = (
    "matured noticeably", "grown steadily", "attracted sustained attention", "changed considerably",
    "become more competitive", "moved from pilots to production", "drawn closer scrutiny",
)  # fmt: skip
_TIMEFRAMES = (
    "over the past two years", "since {year0}", "in {year}", "during the last decade",
    "in the most recent reporting period", "over the last few release cycles",
)  # fmt: skip
_FALLBACK_ASPECTS = (
    "implementation quality", "measurement methodology", "long-term performance",
    "vendor transparency", "real-world deployment", "independent oversight",
)  # fmt: skip

_SENTENCES = (
    "{Hedge}, {topic} has {trend} {timeframe}, driven largely by improvements in {dim}.",
    "{Evidence} suggest that {aspect} accounts for roughly {pct}% of the difference in {dim}.",
    "{Actor} generally agree that {aspect} is the main constraint, although they disagree on how "
    "quickly it will ease.",
    "One {year} analysis found that teams focusing on {aspect} reduced {dim} problems by about "
    "{pct}%.",
    "The trade-off between {dim} and {dim2} remains the central design question for {topic}.",
    "Where {aspect} is handled well, {dim} tends to stop being the bottleneck.",
    "{Evidence} from {n} deployments point to a consistent pattern: {aspect} matters more than "
    "headline specifications.",
    "Not every source agrees; some {actor} argue that the gains attributed to {aspect} are "
    "overstated.",
    "For {topic}, the practical question is less whether {aspect} helps and more at what level "
    "of {dim} it becomes worthwhile.",
    "{Hedge}, estimates for {dim} range from {lo}% to {hi}% depending on assumptions about "
    "{aspect}.",
    "A recurring caveat is that most published figures come from {actor}, who have an interest "
    "in favourable results.",
    "This is consistent with earlier work on {aspect2}, which reached a similar conclusion in "
    "{year0}.",
    "The picture changes when {aspect} is considered alongside {dim2}: the advantages narrow "
    "considerably.",
    "Several {actor} recommend starting with {aspect} because it offers the quickest measurable "
    "return.",
    "{Hedge}, the evidence on {aspect} is stronger than the evidence on {aspect2}.",
    "Reported {dim} varies widely, with a median improvement near {pct}% and a long tail of "
    "projects that saw none.",
    "The {year} revision of the relevant guidance addresses {aspect} explicitly for the first "
    "time.",
    "Critics point out that {dim} is often measured inconsistently, which makes direct "
    "comparison between studies difficult.",
    "In smaller deployments the effect of {aspect} is modest, but at scale it dominates {dim}.",
    "A survey of {n} organisations reported that {pct}% of respondents considered {aspect} "
    "their top priority.",
    "{Actor} increasingly treat {dim} as a first-class requirement rather than an afterthought.",
    "The strongest results come from settings where {aspect} and {aspect2} were planned "
    "together rather than in sequence.",
    "{Hedge}, {topic} still lags behind expectations on {dim}, even where {aspect} has improved.",
    "Independent replication remains limited: only a handful of {evidence} measure {dim} directly.",
    "When {actor} were asked what they would change, most named {aspect} before {dim}.",
    "Costs attributed to {aspect} fell by roughly {pct}% between {year0} and {year}.",
    "The main risk is not technical but organisational: {aspect} requires sustained attention "
    "to {dim}.",
    "Comparisons across regions are complicated by differences in how {dim} is reported.",
    "{Evidence} published in {year} show a clear improvement in {dim}, though the sample sizes "
    "are small.",
    "Most of the disagreement about {topic} comes down to different assumptions about {dim2}.",
    "It is worth separating the claims about {aspect} from the claims about {aspect2}, because "
    "they rest on different evidence.",
    "{Actor} that adopted {aspect} early report fewer surprises in {dim} later on.",
    "{Hedge}, the gap between the best and the median deployments of {topic} is roughly {factor}.",
    "A common failure mode is optimising {dim} in isolation while {dim2} quietly degrades.",
    "There is little evidence that {aspect} alone explains the outcomes; context matters.",
    "The data for {year} suggest the trend is continuing, albeit more slowly than in {year0}.",
)

_THINK = (
    "The question is about {topic}. I should cover {aspect} and {aspect2}, and be explicit about "
    "where the evidence is thin.",
    "Let me start with recent {evidence} on {topic}, then look for independent sources on "
    "{aspect}, since vendor material tends to dominate the first results.",
    "The first round of results leans heavily on {actor}. I need counterpoints, ideally "
    "{evidence} that measure {dim} directly.",
    "There seems to be a conflict between sources on {dim}: some report large gains, others "
    "almost none. The difference may come from how {aspect} was defined.",
    "I have enough on {aspect}; what is missing is data on {dim2} and anything after {year0}.",
    "I will structure the answer as background, the main findings, trade-offs, a comparison "
    "table, a worked example, and practical recommendations.",
    "I should flag that many figures are self-reported and that {dim} is measured "
    "inconsistently across studies.",
)

_H2 = (
    "Background and Context", "How {Topic} Works in Practice", "The Current State of {Topic}",
    "Key Findings on {Aspect}", "Costs and Trade-offs", "Risks and Open Questions",
    "Comparing the Main Approaches", "Practical Recommendations", "Outlook for {next_year}",
    "What the Evidence Says About {Aspect}", "Case Studies", "Regional and Sector Differences",
    "Implementation Considerations", "Quality of the Evidence", "Where {Aspect} Fits",
    "Measuring {Dim}", "Lessons From Early Adopters", "Common Misconceptions",
)  # fmt: skip
_H3 = (
    "The Role of {Aspect}", "{Dim} in Detail", "What Changed Since {year0}", "Dissenting Views",
    "Numbers Worth Knowing", "Limits of the Data", "{Aspect} Versus {Aspect2}", "A Closer Look",
    "Operational Experience", "Why {Dim} Matters", "Early Signals", "Edge Cases",
)  # fmt: skip
_TITLE_SUFFIXES = (
    "A Research Overview", "Evidence, Trade-offs and Outlook", "What the Sources Say",
    "State of the Evidence in {year}", "A Structured Review",
)  # fmt: skip
_FINDINGS = (
    "Improving steadily since {year0}", "Mixed evidence; depends on scale",
    "Clear advantage in most studies", "Limited independent data", "Competitive at scale",
    "Strongly context-dependent", "Widely adopted, rarely measured", "Early but promising",
)  # fmt: skip
_BULLETS = (
    "Start by measuring {dim} before and after any change to {aspect}.",
    "Treat vendor figures on {aspect} as upper bounds until independently confirmed.",
    "Budget for {dim2}; it is the cost most often underestimated.",
    "Revisit assumptions about {aspect} at least once a year, as the evidence moves quickly.",
    "Pilot {topic} on a narrow scope first, with an explicit exit criterion.",
    "Document how {dim} is defined so that results stay comparable over time.",
    "Involve {actor} early; they see the failure modes first.",
)  # fmt: skip
_SOURCE_TITLES = (
    "{Topic}: What the {year} Data Shows", "A Practical Guide to {Aspect}", "{Aspect} Explained",
    "Why {Aspect} Matters for {Topic}", "{Topic} — Annual Review {year}",
    "Measuring {Dim} in {Topic}", "Lessons From {n} {Topic} Deployments",
    "{Aspect} and {Dim}: A Field Study", "The Hidden Costs of {Aspect}",
    "{Topic}: Frequently Asked Questions", "An Independent Assessment of {Aspect}",
)  # fmt: skip
_SNIPPETS = (
    "This report examines {aspect} across {n} organisations and finds that {dim} improved in "
    "most cases, although results varied by sector.",
    "We review the evidence on {topic}, with particular attention to {dim} and {dim2}.",
    "An overview of {aspect}, including common pitfalls, measurement approaches and costs.",
    "Data collected between {year0} and {year} suggest that {aspect} is becoming a standard "
    "practice among {actor}.",
    "The study compares {aspect} with {aspect2} and concludes that neither dominates on {dim}.",
    "Practitioners describe what changed after adopting {aspect}, and what they would do "
    "differently.",
)  # fmt: skip
_RELATED = (
    "How does {topic} compare with {aspect} in terms of {dim}?",
    "What are the main risks of {aspect}?",
    "Which independent sources publish data on {topic}?",
    "How is {topic} expected to change by {next_year}?",
    "What does {aspect} cost in practice?",
    "What are the alternatives to {aspect}?",
    "How should {dim} be measured for {topic}?",
)  # fmt: skip
_QUERIES = (
    "{topic} {dim} {year}", "{aspect} evidence", "{aspect} vs {aspect2}", "{topic} case study",
    "{aspect} {dim} benchmark", "{topic} criticism", "{topic} statistics {year}",
)  # fmt: skip
_PUBLISHER_A = (
    "North", "Clear", "Open", "Blue", "Iron", "Bright", "Harbor", "Summit", "Cedar", "Granite",
    "Silver", "Pioneer", "Meridian", "Atlas", "Lumen", "Vector", "Quarry", "Beacon", "Tidal",
)  # fmt: skip
_PUBLISHER_B = (
    "Review", "Institute", "Journal", "Lab", "Observer", "Press", "Analytics", "Digest",
    "Research", "Forum", "Quarterly", "Report", "Wiki", "Monitor",
)  # fmt: skip
_SUBDOMAINS = ("www", "docs", "blog", "research", "news", "journal", "data", "labs", "reports")
_TLDS = ("example.org", "example.com", "example.net")
_IMAGE_SIZES = ((1200, 800), (1024, 768), (800, 600), (1600, 900), (640, 480), (1280, 720))
_IMAGE_TITLES = (
    "Chart: {dim} by year", "Diagram of {topic}", "{Aspect} at a glance",
    "Survey results on {aspect}", "Comparison of {aspect} and {aspect2}", "{Topic} in the field",
)  # fmt: skip

_CODE = {
    "python": Template(
        "from dataclasses import dataclass\n\n\n"
        "@dataclass\n"
        "class Option:\n"
        "    name: str\n"
        "    upfront_cost: float\n"
        "    annual_cost: float\n\n\n"
        "def total_cost(option: Option, years: int = $years) -> float:\n"
        "    # Figures are illustrative; substitute your own quotes.\n"
        "    return option.upfront_cost + option.annual_cost * years\n\n\n"
        "options = [\n"
        '    Option("$a", $c1, $c2),\n'
        '    Option("$b", $c3, $c4),\n'
        "]\n"
        "for option in sorted(options, key=total_cost):\n"
        '    print(f"{option.name}: {total_cost(option):,.0f}")'
    ),
    "sql": Template(
        "-- Share of $topic records by category since $year0\n"
        "SELECT category,\n"
        "       COUNT(*) AS records,\n"
        "       ROUND(AVG(score), 2) AS avg_score\n"
        "FROM ${ident}_observations\n"
        "WHERE observed_at >= DATE '$year0-01-01'\n"
        "GROUP BY category\n"
        "ORDER BY records DESC\n"
        "LIMIT $years;"
    ),
    "bash": Template(
        "# Download the public dataset referenced above and count rows per category\n"
        'curl -sSfL "https://data.example.org/$slug/latest.csv" -o $slug.csv\n'
        "tail -n +2 $slug.csv | cut -d, -f3 | sort | uniq -c | sort -rn | head -n $years"
    ),
    "yaml": Template(
        "# Evaluation plan for $topic\n"
        "evaluation:\n"
        "  name: $slug-review\n"
        "  horizon_years: $years\n"
        "  criteria:\n"
        '    - name: "$a"\n'
        "      weight: 0.$w1\n"
        '    - name: "$b"\n'
        "      weight: 0.$w2\n"
        "  sources:\n"
        "    minimum_independent: 3"
    ),
    "json": Template(
        "{\n"
        '  "study": "$slug",\n'
        '  "period": [$year0, $year],\n'
        '  "metrics": {\n'
        '    "$ident_a": {"median": $c1, "p90": $c2},\n'
        '    "$ident_b": {"median": $c3, "p90": $c4}\n'
        "  }\n"
        "}"
    ),
}


@dataclass(frozen=True)
class Topic:
    """Noun phrases pulled from a question, used to fill the templates."""

    subject: str
    aspects: tuple[str, ...]
    slug: str


def _clean_token(token: str) -> str:
    return token.strip(".-/'+")


def extract_topic(question: str) -> Topic:
    """Split the question on stop words; runs of content words are usable noun phrases."""
    tokens = re.findall(r"[\w][\w'+./-]*", question)
    chunks: list[list[str]] = [[]]
    for raw in tokens:
        token = _clean_token(raw)
        if not token or token.lower() in _STOPWORDS or token.isdigit():
            chunks.append([])
            continue
        if len(chunks[-1]) >= 4:
            chunks.append([])
        chunks[-1].append(token)
    phrases: list[str] = []
    seen: set[str] = set()
    for chunk in chunks:
        if not chunk:
            continue
        phrase = " ".join(chunk)
        if len(chunk) == 1 and len(phrase) < 4:
            continue
        if phrase.lower() not in seen:
            seen.add(phrase.lower())
            phrases.append(phrase)
    # The longest phrase is usually the subject ("autonomous delivery robots" rather than
    # "regulatory landscape"); sorting is stable, so ties keep question order.
    ordered = sorted(phrases, key=lambda p: -min(p.count(" "), 2)) or ["the subject"]
    subject = ordered[0]
    candidates = ordered[1:]
    words = subject.split(" ")
    if len(words) >= 3 and " ".join(words[-2:]).lower() not in seen:
        # "sodium-ion batteries" out of "grid-scale sodium-ion batteries": a second phrasing
        # of the subject reads better than a generic fallback.
        candidates.append(" ".join(words[-2:]))
    # Lone words make poor subjects for template sentences; use them only when short of phrases.
    aspects = [p for p in candidates if " " in p]
    if len(aspects) < 2:
        aspects = candidates
    for fallback in _FALLBACK_ASPECTS:
        if len(aspects) >= 4:
            break
        aspects.append(fallback)
    slug = re.sub(r"[^a-z0-9]+", "-", subject.lower()).strip("-")[:48] or "topic"
    return Topic(subject=subject, aspects=tuple(aspects[:8]), slug=slug)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _title(text: str) -> str:
    small = {"and", "or", "of", "the", "in", "on", "for", "to", "a", "an", "vs", "at", "by"}
    words = text.split(" ")
    return " ".join(
        w if (i and w.lower() in small) or not w.islower() else _cap(w) for i, w in enumerate(words)
    )


class _Slots(dict[str, Any]):
    """Template values drawn on first use, so one sentence stays self-consistent."""

    def __init__(self, writer: _Writer) -> None:
        super().__init__()
        self._w = writer

    def __missing__(self, key: str) -> Any:
        value = self._w.slot(key, self)
        self[key] = value
        return value


class _Writer:
    def __init__(
        self, rng: Random, topic: Topic, *, words: int, sources: int, created: datetime
    ) -> None:
        self.rng = rng
        self.topic = topic
        self.target = max(1, words)
        self.sources = max(0, sources)
        self.year = created.year
        self.next_new = 0
        self.count = 0
        self.parts: list[str] = []
        self.recent_headings: list[str] = []

    # -- template slots --------------------------------------------------------------------

    def slot(self, key: str, slots: _Slots) -> Any:
        rng = self.rng
        if key[:1].isupper():
            lower = key[:1].lower() + key[1:]
            value = slots[lower]
            return _title(value) if key in {"Topic", "Aspect", "Aspect2", "Dim"} else _cap(value)
        match key:
            case "topic":
                return self.topic.subject
            case "aspect":
                return rng.choice(self.topic.aspects)
            case "aspect2":
                return self._other(self.topic.aspects, slots["aspect"])
            case "dim":
                return rng.choice(_DIMENSIONS)
            case "dim2":
                return self._other(_DIMENSIONS, slots["dim"])
            case "actor":
                return rng.choice(_ACTORS)
            case "evidence":
                return rng.choice(_EVIDENCE)
            case "hedge":
                return rng.choice(_HEDGES)
            case "trend":
                return rng.choice(_TRENDS)
            case "timeframe":
                return rng.choice(_TIMEFRAMES).format_map(slots)
            case "pct":
                return rng.randint(6, 64)
            case "lo":
                return rng.randint(3, 25)
            case "hi":
                return slots["lo"] + rng.randint(8, 45)
            case "n":
                return rng.choice((12, 18, 24, 37, 40, 52, 75, 120, 160, 240, 310, 1200))
            case "year":
                return self.year - rng.randint(0, 2)
            case "year0":
                return self.year - rng.randint(3, 8)
            case "next_year":
                return self.year + 1
            case "factor":
                return f"{rng.randint(12, 40) / 10:.1f}x"
        raise KeyError(key)

    def _other(self, pool: tuple[str, ...], taken: str) -> str:
        for _ in range(4):
            choice = self.rng.choice(pool)
            if choice != taken:
                return choice
        return pool[0] if pool[0] != taken else pool[-1]

    def fill(self, template: str) -> str:
        return _cap(template.format_map(_Slots(self)))

    # -- citation markers ------------------------------------------------------------------

    def _new_probability(self) -> float:
        unseen = self.sources - self.next_new
        if self.next_new < 3:
            return 1.0
        # Roughly 0.8 markers per ~22-word sentence: introduce new sources at a pace that
        # spreads first citations over the whole answer instead of front-loading them.
        slots_left = max(1.0, (self.target - self.count) / 22 * 0.8)
        return min(1.0, unseen / slots_left * 1.3)

    def _pick(self, taken: list[int]) -> int | None:
        if self.next_new < self.sources and self.rng.random() < self._new_probability():
            self.next_new += 1
            return self.next_new - 1
        if not self.next_new:
            return None
        for _ in range(4):
            index = self.rng.randrange(self.next_new)
            if index not in taken:
                return index
        return None

    def markers(self) -> str:
        if not self.sources:
            return ""
        want = 1 + (self.rng.random() < 0.28) + (self.rng.random() < 0.08)
        picks: list[int] = []
        for _ in range(want):
            index = self._pick(picks)
            if index is not None:
                picks.append(index)
        return "".join(f"[{i + 1}]" for i in sorted(picks))

    # -- blocks ----------------------------------------------------------------------------

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.count += len(text.split())

    def sentence(self, cite_probability: float = 0.65) -> str:
        text = self.fill(self.rng.choice(_SENTENCES))
        if self.rng.random() < cite_probability:
            text = text[:-1] + self.markers() + text[-1]
        return text

    def paragraph(self, budget: int, min_sentences: int = 3) -> None:
        sentences: list[str] = []
        used = 0
        wanted = self.rng.randint(3, 6)
        while len(sentences) < wanted and (used < budget or len(sentences) < min_sentences):
            sentence = self.sentence()
            sentences.append(sentence)
            used += len(sentence.split())
        self.add(" ".join(sentences))

    def bullets(self) -> None:
        items = []
        for template in self.rng.sample(_BULLETS, self.rng.randint(3, 5)):
            label = _title(self.rng.choice((*_DIMENSIONS, *self.topic.aspects)))
            items.append(f"- **{label}**: {self.fill(template)[:-1]}{self.markers()}.")
        self.add("\n".join(items))

    def table(self) -> None:
        rng = self.rng
        rows = list(self.topic.aspects[:3]) + rng.sample(_DIMENSIONS, 2)
        if rng.random() < 0.5:
            lines = [
                "| Aspect | What the sources say | Confidence | Key sources |",
                "|---|---|---|---|",
            ]
            for row in rows:
                finding = self.fill(rng.choice(_FINDINGS))
                confidence = rng.choice(("High", "Medium", "Low"))
                lines.append(f"| {_title(row)} | {finding} | {confidence} | {self.markers()} |")
        else:
            a, b = rng.sample(self.topic.aspects, 2)
            lines = [f"| Metric | {_title(a)} | {_title(b)} | Notes |", "|---|---:|---:|---|"]
            for row in rows[2:]:
                left, right = rng.randint(20, 95), rng.randint(20, 95)
                note = f"{self.fill(rng.choice(_FINDINGS))}{self.markers()}"
                lines.append(f"| {_cap(row)} (index) | {left} | {right} | {note} |")
        self.add("\n".join(lines))

    def code(self) -> None:
        rng = self.rng
        language = rng.choice(tuple(_CODE))
        a, b = rng.sample(self.topic.aspects, 2)
        ident = re.sub(r"[^a-z0-9]+", "_", self.topic.slug).strip("_") or "topic"
        body = _CODE[language].substitute(
            topic=self.topic.subject,
            slug=self.topic.slug,
            ident=ident,
            ident_a=re.sub(r"[^a-z0-9]+", "_", a.lower()).strip("_") or "a",
            ident_b=re.sub(r"[^a-z0-9]+", "_", b.lower()).strip("_") or "b",
            a=a.replace('"', ""),
            b=b.replace('"', ""),
            years=rng.randint(5, 15),
            year=self.year,
            year0=self.year - rng.randint(3, 6),
            c1=rng.randint(1, 90) * 1000,
            c2=rng.randint(1, 30) * 100,
            c3=rng.randint(1, 90) * 1000,
            c4=rng.randint(1, 30) * 100,
            w1=rng.randint(3, 6),
            w2=rng.randint(2, 4),
        )
        intro = self.fill(
            rng.choice(
                (
                    "The following sketch shows how the figures above can be compared for {topic}:",
                    "A minimal example of how {actor} typically evaluate {aspect}:",
                    "To reproduce the comparison locally, something like this is enough:",
                )
            )
        )
        self.add(intro)
        self.add(f"```{language}\n{body}\n```")

    def heading(self, level: int, templates: tuple[str, ...]) -> None:
        # Long answers cycle through the templates; avoiding recent ones keeps neighbouring
        # sections from sharing a title.
        template = self.rng.choice(templates)
        for _ in range(6):
            if template not in self.recent_headings:
                break
            template = self.rng.choice(templates)
        self.recent_headings = [*self.recent_headings[-(len(templates) // 2) :], template]
        self.add("#" * level + " " + self.fill(template))


def _build_content(writer: _Writer, search_results: list[dict[str, Any]]) -> str:
    rng = writer.rng
    topic = writer.topic
    writer.add(f"# {_title(topic.subject)}: {writer.fill(rng.choice(_TITLE_SUFFIXES))}")
    writer.paragraph(budget=min(90, writer.target // 4))
    conclusion_reserve = min(160, writer.target // 10)
    large = writer.target > 2500
    features = ["bullets", "table", "code"]
    section = 0
    while writer.count < writer.target - conclusion_reserve or features:
        remaining = writer.target - conclusion_reserve - writer.count
        writer.heading(2, _H2)
        writer.paragraph(budget=min(remaining, rng.randint(60, 140)), min_sentences=2)
        if large:
            for _ in range(rng.randint(2, 4)):
                if writer.count >= writer.target - conclusion_reserve:
                    break
                writer.heading(3, _H3)
                for _ in range(rng.randint(1, 3)):
                    writer.paragraph(budget=rng.randint(70, 150))
        elif remaining > 200 and rng.random() < 0.6:
            writer.paragraph(budget=rng.randint(60, 120))
        if features:
            getattr(writer, features.pop(0))()
        elif section >= 3 and rng.random() < 0.3:
            getattr(writer, rng.choice(("bullets", "table", "code")))()
        section += 1
    writer.heading(2, ("Conclusion", "Summary", "Bottom Line"))
    writer.paragraph(budget=max(30, writer.target - writer.count))
    if writer.next_new < writer.sources:
        # Guarantees every search result is cited at least once, as in real answers.
        writer.add("## Further Reading")
        items = []
        while writer.next_new < writer.sources:
            result = search_results[writer.next_new]
            writer.next_new += 1
            items.append(f"- {result['title']} [{writer.next_new}]")
        writer.add("\n".join(items))
    return "\n\n".join(writer.parts)


def _think(writer: _Writer) -> str:
    rng = writer.rng
    count = min(len(_THINK), 3 + writer.target // 4000)
    lines = [writer.fill(t) for t in rng.sample(_THINK, count)]
    return "<think>\n" + "\n\n".join(lines) + "\n</think>\n\n"


def _date(rng: Random, created: datetime) -> tuple[str | None, str]:
    published = created - timedelta(days=rng.randint(3, 1100))
    updated = min(created, published + timedelta(days=rng.randint(0, 240)))
    # Some real results carry no publication date.
    date = None if rng.random() < 0.1 else published.strftime("%Y-%m-%d")
    return date, updated.strftime("%Y-%m-%d")


def _search_results(writer: _Writer, created: datetime) -> list[dict[str, Any]]:
    rng = writer.rng
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index in range(writer.sources):
        first, second = rng.choice(_PUBLISHER_A), rng.choice(_PUBLISHER_B)
        host = f"{rng.choice(_SUBDOMAINS)}.{first.lower()}{second.lower()}.{rng.choice(_TLDS)}"
        title = writer.fill(rng.choice(_SOURCE_TITLES))
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]
        date, updated = _date(rng, created)
        year = (date or updated)[:4]
        path = rng.choice(
            (
                f"/{year}/{updated[5:7]}/{slug}",
                f"/articles/{rng.randint(1000, 99999)}-{slug}",
                f"/papers/{slug}.pdf",
                f"/docs/{writer.topic.slug}/{slug}",
                f"/wiki/{slug.replace('-', '_').title()}",
            )
        )
        url = f"https://{host}{path}"
        if url in seen:
            url = f"{url}?v={index}"
        seen.add(url)
        results.append(
            {
                "title": f"{title} | {first} {second}",
                "url": url,
                "date": date,
                "last_updated": updated,
                "snippet": writer.fill(rng.choice(_SNIPPETS)),
                "source": "web",
            }
        )
    return results


def _images(
    writer: _Writer, count: int, results: list[dict[str, Any]], image_base: str | None
) -> list[dict[str, Any]]:
    rng = writer.rng
    images = []
    for index in range(count):
        width, height = rng.choice(_IMAGE_SIZES)
        origin = results[index % len(results)]["url"] if results else "https://www.example.org/"
        token = f"{rng.getrandbits(32):08x}"
        title = writer.fill(rng.choice(_IMAGE_TITLES))
        if image_base:
            slug = writer.topic.slug
            url = image_base.rstrip("/") + image_path(slug, index + 1, token, width, height, title)
        else:
            url = f"https://images.example.org/{writer.topic.slug}/{index + 1:02d}-{token}.jpg"
        images.append(
            {
                "image_url": url,
                "origin_url": origin,
                "title": title,
                "width": width,
                "height": height,
            }
        )
    return images


def _reasoning_steps(writer: _Writer, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = writer.rng
    rounds = max(2, min(12, len(results) // 4 or 2))
    per_round = max(1, -(-len(results) // rounds)) if results else 0
    steps: list[dict[str, Any]] = []
    for index in range(rounds):
        batch = results[index * per_round : (index + 1) * per_round]
        keywords = [writer.fill(q).lower() for q in rng.sample(_QUERIES, rng.randint(2, 3))]
        steps.append(
            {
                "thought": writer.fill(rng.choice(_THINK)),
                "type": "web_search",
                "web_search": {
                    "search_keywords": keywords,
                    "search_results": [dict(r) for r in batch],
                },
            }
        )
        if batch:
            fetched = rng.sample(batch, min(len(batch), rng.randint(1, 3)))
            steps.append(
                {
                    "thought": writer.fill(
                        "Reading the most relevant pages in full to check the figures on {dim}."
                    ),
                    "type": "fetch_url_content",
                    "fetch_url_content": {
                        "contents": [{"url": r["url"], "title": r["title"]} for r in fetched]
                    },
                }
            )
    return steps


def _usage(
    model: str,
    *,
    question: str,
    content: str,
    sources: int,
    searches: int,
    context_size: str,
    rng: Random,
) -> dict[str, Any]:
    prices = _PRICES.get(model, _PRICES["sonar-pro"])
    prompt_tokens = 12 + round(len(question.split()) * 1.35)
    completion_tokens = round(len(content.split()) * 1.33)
    citation_tokens = sum(rng.randint(350, 1800) for _ in range(sources))
    if model == "sonar-deep-research":
        reasoning_tokens = completion_tokens * rng.randint(6, 14) + rng.randint(5000, 40000)
    elif model == "sonar-reasoning-pro":
        reasoning_tokens = completion_tokens * rng.randint(1, 3)
    else:
        reasoning_tokens = 0
    million = 1_000_000
    parts = {
        "input_tokens_cost": prompt_tokens * prices["in"] / million,
        "output_tokens_cost": completion_tokens * prices["out"] / million,
        "reasoning_tokens_cost": reasoning_tokens * prices["reason"] / million,
        "request_cost": prices["request"].get(context_size, prices["request"]["low"]) / 1000,
        "citation_tokens_cost": citation_tokens * prices["cite"] / million,
        "search_queries_cost": searches * prices["search"] / 1000,
    }
    cost: dict[str, float] = {name: round(value, 5) for name, value in parts.items()}
    # Summing the rounded parts keeps total_cost equal to what a reader adds up from the rows.
    cost["total_cost"] = round(sum(cost.values()), 5)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "citation_tokens": citation_tokens,
        "reasoning_tokens": reasoning_tokens,
        "num_search_queries": searches,
        "search_context_size": context_size,
        "cost": cost,
    }


def generate_completion(
    question: str,
    *,
    model: str = "sonar-deep-research",
    words: int = 1500,
    sources: int = 12,
    images: int = 6,
    related: bool = True,
    seed: int | str = 0,
    job_id: str = "",
    created: int | None = None,
    search_context_size: str = "low",
    image_base: str | None = None,
) -> dict[str, Any]:
    """A chat-completion document answering ``question``.

    ``words`` is the length of the answer proper (the ``<think>`` block comes on top for
    thinking models); every one of the ``sources`` search results is cited at least once.
    ``images=0`` or ``related=False`` leave those keys out, as upstream does when they were not
    requested. ``created`` (unix seconds) dates the completion and its sources; by default a
    fixed time, so the result depends only on the arguments. With ``image_base`` (the
    simulator's own URL) images point at pictures the simulator serves under ``/_sim/images/``;
    without it, at ``images.example.org``, which never answers.
    """
    rng = Random(f"{seed}|{model}|{job_id}|{question}")
    created_ts = int(created) if created is not None else REFERENCE_TIME
    created_dt = datetime.fromtimestamp(created_ts, tz=UTC)
    topic = extract_topic(question)
    writer = _Writer(rng, topic, words=words, sources=sources, created=created_dt)
    results = _search_results(writer, created_dt)
    body = _build_content(writer, results)
    content = (_think(writer) if model in THINKING_MODELS else "") + body

    message: dict[str, Any] = {"role": "assistant", "content": content}
    if model == "sonar-deep-research":
        steps = _reasoning_steps(writer, results)
        message["reasoning_steps"] = steps
        searches = sum(
            len(s["web_search"]["search_keywords"]) for s in steps if s["type"] == "web_search"
        )
    else:
        searches = rng.randint(1, 3)

    completion_id = job_id or str(uuid.UUID(int=rng.getrandbits(128), version=4))
    document: dict[str, Any] = {
        "id": completion_id,
        "model": model,
        "created": created_ts,
        "object": "chat.completion",
        "usage": _usage(
            model,
            question=question,
            content=content,
            sources=sources,
            searches=searches,
            context_size=search_context_size,
            rng=rng,
        ),
        "citations": [r["url"] for r in results],
        "search_results": results,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": message,
                "delta": {"role": "assistant", "content": ""},
            }
        ],
    }
    if images > 0:
        document["images"] = _images(writer, images, results, image_base)
    if related:
        templates = rng.sample(_RELATED, rng.randint(4, 5))
        document["related_questions"] = [writer.fill(t) for t in templates]
    return document
