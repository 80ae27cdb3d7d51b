from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens, read-only: they are made in Settings (shown once there) and revoked there or on
    /team/tokens/, which record who did it. The HMAC is no use to anyone here."""

    list_display = ("name", "user", "scope", "prefix", "created", "expires_at", "last_used_at")
    list_filter = ("scope", "revoked_at")
    search_fields = ("name", "prefix", "user__username")
    list_select_related = ("user",)
    exclude = ("token_hash", "window_start", "window_calls")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
