"""Refresher liveness, read from the passes refreshers record in the database."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from sonarweb.healthcheck import check_refresher
from sonarweb.tracker.models import RefresherBeat

pytestmark = pytest.mark.django_db

HOST = socket.gethostname()


def beat(host: str = HOST, seconds_ago: float | None = 1.0) -> RefresherBeat:
    last = None if seconds_ago is None else timezone.now() - timedelta(seconds=seconds_ago)
    return RefresherBeat.objects.create(
        token=f"{host}-{seconds_ago}"[:32], host=host, pid=1, last_pass_at=last
    )


def test_alive_while_a_pass_finished_within_ten_intervals(settings, capsys):
    settings.SONARWEB_REFRESH_SECONDS = 2
    beat(seconds_ago=15)
    assert check_refresher() == 0
    assert capsys.readouterr().out.startswith(f"The refresher on {HOST} finished a pass")


def test_dead_after_ten_intervals_without_a_pass(settings, capsys):
    settings.SONARWEB_REFRESH_SECONDS = 2
    beat(seconds_ago=25)
    assert check_refresher() == 1
    assert "longer than 10 refresh intervals (20 s)" in capsys.readouterr().err


def test_dead_when_none_ever_finished_a_pass_here(capsys, monkeypatch):
    beat(seconds_ago=None)
    beat(host="another-machine", seconds_ago=1)  # alive, but not on this machine
    assert check_refresher() == 1
    assert capsys.readouterr().err.strip() == f"No refresher on {HOST} has finished a pass yet."
    monkeypatch.setattr(socket, "gethostname", lambda: "another-machine")
    assert check_refresher() == 0


@pytest.mark.django_db(transaction=True)
def test_a_running_refresher_records_its_passes(refresher):
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and check_refresher() != 0:
        time.sleep(0.1)
    assert check_refresher() == 0
    assert RefresherBeat.objects.get(token=refresher.holder).passes >= 1
