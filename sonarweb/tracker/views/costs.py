from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from ..costs.totals import cached_team_costs


@require_safe
def costs(request: HttpRequest) -> HttpResponse:
    """What the team's requests cost, from the cost upstream reported for each."""
    return render(request, "tracker/costs.html", {"costs": cached_team_costs()})
