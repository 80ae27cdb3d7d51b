from django.contrib import admin

from .models import ApiKey, TrackedRequest


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("user", "mask", "updated", "invalid_since")
    # The ciphertext is never shown or edited here; members manage keys in Settings.
    exclude = ("encrypted",)
    readonly_fields = ("user", "last4", "created", "updated", "invalid_since")

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(TrackedRequest)
class TrackedRequestAdmin(admin.ModelAdmin):
    list_display = ("request_id", "status", "state", "model", "added_by", "created")
    list_filter = ("status", "state", "model")
    search_fields = ("request_id", "question", "title")
    readonly_fields = ("slug", "raw_json", "rendered_html", "render_version")
