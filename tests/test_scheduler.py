from __future__ import annotations

from datetime import timedelta

from sonarweb.tracker.following.scheduler import MAX_BACKOFF_SECONDS, backoff, poll_interval


def test_young_jobs_are_polled_every_three_seconds():
    assert poll_interval(timedelta(seconds=0)) == 3
    assert poll_interval(timedelta(minutes=3)) == 3


def test_interval_grows_with_age_and_is_capped():
    values = [poll_interval(timedelta(minutes=m)) for m in (4, 6, 8, 10, 60, 600)]
    assert values == sorted(values)
    assert 3 < values[0] < values[2] < 30
    assert values[-1] == 30
    assert poll_interval(timedelta(seconds=-5)) == 3


def test_backoff_doubles_and_is_capped_with_jitter_in_upper_half():
    low = [backoff(n, rand=lambda: 0.0) for n in range(1, 12)]
    high = [backoff(n, rand=lambda: 1.0) for n in range(1, 12)]
    assert low[:4] == [1.5, 3.0, 6.0, 12.0]
    assert high[:4] == [3.0, 6.0, 12.0, 24.0]
    assert high[-1] == MAX_BACKOFF_SECONDS
    assert low[-1] == MAX_BACKOFF_SECONDS / 2


def test_retry_after_is_a_floor():
    assert backoff(1, retry_after=42, rand=lambda: 0.5) == 42
    assert backoff(8, retry_after=1, rand=lambda: 1.0) == 300
