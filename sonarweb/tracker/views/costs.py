from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from ..costs import ledger


@require_safe
def costs(request: HttpRequest) -> HttpResponse:
    """What the team's completed requests cost, from the cost upstream reported at completion."""
    return render(request, "tracker/costs.html", {"ledger": ledger()})
