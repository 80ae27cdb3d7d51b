from django.contrib import admin

from .models import AnswerImage, ArchivedImage


@admin.register(ArchivedImage)
class ArchivedImageAdmin(admin.ModelAdmin):
    list_display = ("sha256", "width", "height", "size", "thumb_size", "source_format", "created")
    search_fields = ("sha256", "thumb_sha256", "source_sha256")
    readonly_fields = [f.name for f in ArchivedImage._meta.fields]


@admin.register(AnswerImage)
class AnswerImageAdmin(admin.ModelAdmin):
    list_display = ("tracked", "position", "kind", "status", "reason", "attempts", "fetched_at")
    list_filter = ("status", "kind", "retryable")
    search_fields = ("url", "tracked__slug", "tracked__request_id")
    raw_id_fields = ("tracked", "image")
