"""Sentences about upstream failures that more than one view shows."""

from __future__ import annotations

from sonarweb.perplexity import client as upstream


def retry_seconds(exc: upstream.RateLimited) -> int | None:
    """Upstream's Retry-After in whole seconds (at least 1), when it sent one."""
    if exc.retry_after is None:
        return None
    return max(1, round(exc.retry_after))


def try_again(exc: upstream.RateLimited) -> str:
    """When to try again after a 429, as a sentence: "Try again in 7 seconds."."""
    seconds = retry_seconds(exc)
    if seconds is None:
        return "Try again in a minute."
    return f"Try again in {seconds} second{'' if seconds == 1 else 's'}."
