"""The refresher's chores: each on its own schedule, each runnable as a command."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from sonarweb.tracker.following import chores
from sonarweb.tracker.models import ApiKey, UpstreamCall

pytestmark = pytest.mark.django_db


def test_every_chore_is_listed_by_the_command() -> None:
    out = io.StringIO()
    call_command("chore", "--list", stdout=out)
    for chore in chores.CHORES:
        assert chore.name in out.getvalue() and chore.help in out.getvalue()


def test_a_chore_runs_at_once_from_the_command(owner) -> None:
    key = ApiKey.objects.get(user=owner)
    UpstreamCall.objects.create(
        api_key=key, method="GET", endpoint="run", at=timezone.now() - timedelta(days=30)
    )
    out = io.StringIO()
    call_command("chore", "prune", stdout=out)
    assert "prune: 1" in out.getvalue()
    assert UpstreamCall.objects.count() == 0
    with pytest.raises(CommandError, match="No chore named"):
        call_command("chore", "nonsense")


def test_chores_keep_their_own_schedules() -> None:
    now = timezone.now()
    first = chores.run_due(now)
    assert set(first) == {chore.name for chore in chores.CHORES}
    soon = chores.run_due(now + timedelta(seconds=5))
    assert set(soon) == {c.name for c in chores.CHORES if c.every is None}
    later = chores.run_due(now + timedelta(minutes=10))
    assert "prune" in later and "sweep-media" not in later


def test_one_failing_chore_does_not_stop_the_others(monkeypatch) -> None:
    def broken(now):
        raise RuntimeError("disk on fire")

    failing = chores.Chore("archive-images", broken)
    monkeypatch.setattr(chores, "CHORES", (failing, *chores.CHORES[1:]))
    done = chores.run_due(timezone.now())
    assert "archive-images" not in done and "prune" in done
