from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .models import AuditEvent, Invitation


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("pk", "email", "created_by", "created", "expires_at", "used_by", "revoked_at")
    list_filter = ("used_at", "revoked_at")
    search_fields = ("email",)
    # Invitations are made on /team/, where the link is shown once; the hash is no use here.
    exclude = ("token_hash",)
    readonly_fields = ("created_by", "created", "used_at", "used_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The whole trail, read-only: a history nobody can edit is one people can trust."""

    list_display = ("at", "actor_name", "action", "request_id", "share_link", "detail")
    list_filter = ("action",)
    search_fields = ("actor_name", "request_id", "detail")
    date_hierarchy = "at"
    list_select_related = ("share_link",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
