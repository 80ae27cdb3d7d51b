from django.contrib import admin
from django.http import HttpRequest

from .models import Invitation


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
