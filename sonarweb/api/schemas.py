"""What the API takes and gives, as pydantic schemas (the OpenAPI document is made from
these). Bodies refuse fields they do not know, so a misspelt option, or a Perplexity API key,
is an error rather than silently ignored."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from sonarweb.tracker.forms import (
    MAX_INSTRUCTIONS_CHARS,
    MAX_OUTPUT_TOKENS,
    MAX_QUESTION_CHARS,
    MIN_OUTPUT_TOKENS,
)

Preset = Literal["fast", "low", "medium", "high", "xhigh"]
Recency = Literal["hour", "day", "week", "month", "year"]
Effort = Literal["minimal", "low", "medium", "high", "xhigh"]


class Strict(Schema):
    model_config = ConfigDict(extra="forbid")


class FiltersIn(Strict):
    domains: list[str] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Up to 20 domains to search, such as nature.com; a leading - leaves one out "
            "(-pinterest.com)."
        ),
    )
    recency: Recency | None = Field(None, description="Published within; not with dates.")
    published_after: str | None = Field(None, max_length=10, description="YYYY-MM-DD.")
    published_before: str | None = Field(None, max_length=10, description="YYYY-MM-DD.")
    updated_after: str | None = Field(None, max_length=10, description="YYYY-MM-DD.")
    updated_before: str | None = Field(None, max_length=10, description="YYYY-MM-DD.")


class ResearchIn(Strict):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS)
    preset: Preset = Field(
        "medium", description="The depth, fast to xhigh; medium is deep research."
    )
    model: str | None = Field(
        None,
        max_length=64,
        description="Optional provider/model (perplexity/sonar); replaces the preset.",
    )
    filters: FiltersIn = Field(default_factory=FiltersIn)
    reasoning_effort: Effort | None = None
    max_output_tokens: int | None = Field(None, ge=MIN_OUTPUT_TOKENS, le=MAX_OUTPUT_TOKENS)
    instructions: str | None = Field(
        None,
        max_length=MAX_INSTRUCTIONS_CHARS,
        description="Optional system prompt; replaces the preset's own.",
    )


class TrackIn(Strict):
    request_id: str = Field(
        ...,
        max_length=4000,
        description="The id of a run or job to follow, or a URL or JSON that contains it.",
    )


class ShareIn(Strict):
    expires_in_days: Literal[1, 7, 30] | None = Field(
        None, description="When the public link stops working; never when left out."
    )


class RequestOut(Schema):
    id: str = Field(..., description="sonarweb's own id of the request.")
    status: str = Field(
        ...,
        description=(
            "CREATED, IN_PROGRESS, COMPLETED, INCOMPLETE, CANCELLED, FAILED, or why sonarweb "
            "stopped asking: PENDING, NOT_FOUND, KEY_INVALID, ERROR, RETIRED, UNCONFIRMED."
        ),
    )
    status_label: str
    status_sentence: str
    finished: bool
    cancelling: bool
    has_answer: bool
    title: str
    question: str
    model: str
    cost_usd: float | None
    error: str
    added_by: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    updated_at: datetime
    permalink: str = Field(..., description="The request's page, for people.")
    answer_url: str | None = Field(None, description="Where the API serves its answer.")
    poll_after_seconds: int | None = Field(
        None, description="Set while the request runs: ask again after this many seconds."
    )


class RequestList(Schema):
    items: list[RequestOut]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")


class SectionOut(Schema):
    index: int = Field(..., description="1 for the first section.")
    heading: str = Field(..., description="Empty for the text before the first heading.")
    level: int = Field(..., description="The heading's level (1 to 6); 0 before any heading.")
    length: int = Field(..., description="Characters of markdown.")


class SourceOut(Schema):
    number: int = Field(..., description="The footnote number the answer cites it by.")
    title: str
    url: str | None
    domain: str


class AnswerOut(Schema):
    id: str
    status: str
    title: str
    markdown: str = Field(..., description="The sections asked for, joined.")
    section: int | None = Field(None, description="The one section asked for.")
    page: int
    page_size: int
    pages: int
    next_page: int | None
    total_length: int
    sections: list[SectionOut] = Field(..., description="Every section of the answer.")
    sources: list[SourceOut]


class ShareOut(Schema):
    url: str
    created_at: datetime
    expires_at: datetime | None


class RevokedOut(Schema):
    revoked: int = Field(..., description="How many public links stopped working.")


class ProblemOut(Schema):
    type: str
    title: str
    status: int
    detail: str
