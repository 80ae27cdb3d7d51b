"""Access checks. Every signed-in user is a member of the instance's one team."""

from __future__ import annotations

from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from ..models import ApiKey, TrackedRequest


def get_request_for_user(request: HttpRequest, slug: str) -> TrackedRequest:
    """A tracked request any team member may see; 404 for unknown slugs."""
    return get_object_or_404(TrackedRequest.objects.select_related("added_by"), slug=slug)


def key_of(request: HttpRequest) -> ApiKey | None:
    return ApiKey.objects.filter(user_id=request.user.pk).first()
