from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sonarweb.tracker.keys import budget
from sonarweb.tracker.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(owner) -> ApiKey:
    return ApiKey.objects.get(user=owner)


def test_budget_allows_n_calls_per_window_then_refuses(key, settings):
    settings.SONARWEB_KEY_CALLS_PER_MINUTE = 3
    now = timezone.now()
    for _ in range(3):
        budget.take(key.pk, now)
    with pytest.raises(budget.BudgetExhausted) as info:
        budget.take(key.pk, now + timedelta(seconds=10))
    assert info.value.retry_after == pytest.approx(50, abs=1)
    budget.take(key.pk, now + timedelta(seconds=61))


def test_pause_blocks_until_retry_after_and_never_shortens(key):
    now = timezone.now()
    until = budget.pause(key.pk, 20, now)
    assert until == now + timedelta(seconds=20)
    budget.pause(key.pk, 5, now)
    key.refresh_from_db()
    assert key.paused_until == until
    with pytest.raises(budget.KeyPaused) as info:
        budget.take(key.pk, now + timedelta(seconds=5))
    assert info.value.retry_after == pytest.approx(15)
    budget.take(key.pk, now + timedelta(seconds=21))


def test_default_pause_without_retry_after(key):
    now = timezone.now()
    assert budget.pause(key.pk, None, now) == now + timedelta(seconds=30)
