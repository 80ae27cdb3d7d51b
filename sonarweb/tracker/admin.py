from django.contrib import admin

from .models import AnswerArchive, ApiKey, RefresherBeat, TrackedRequest


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("user", "mask", "updated", "invalid_since")
    # The ciphertext is never shown or edited here; members manage keys in Settings.
    exclude = ("encrypted",)
    readonly_fields = ("user", "last4", "created", "updated", "invalid_since")

    def has_add_permission(self, request: object) -> bool:
        return False


class AnswerArchiveInline(admin.StackedInline):
    model = AnswerArchive
    # The archive is written once, by the refresher; the admin only shows it.
    fields = ("archived_at", "sha256", "size", "render_version", "rendered_at", "render_error")
    readonly_fields = fields
    can_delete = False
    extra = 0


@admin.register(TrackedRequest)
class TrackedRequestAdmin(admin.ModelAdmin):
    list_display = ("request_id", "status", "state", "model", "added_by", "created")
    list_filter = ("status", "state", "model")
    search_fields = ("request_id", "question", "title")
    readonly_fields = ("slug", "archived_at")
    inlines = [AnswerArchiveInline]


@admin.register(RefresherBeat)
class RefresherBeatAdmin(admin.ModelAdmin):
    list_display = ("host", "pid", "started_at", "last_pass_at", "passes", "stopped_at")
    readonly_fields = [f.name for f in RefresherBeat._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False
