from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Case, F, Q, When
from django.urls import reverse
from django.utils import timezone

from sonarweb.perplexity.documents import retention_of
from sonarweb.perplexity.payload import ANSWERED_STATUSES, FINISHED_STATUSES

from . import crypto


class ApiKey(models.Model):
    """A member's Perplexity API key, encrypted at rest; only its last four characters show."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_key"
    )
    encrypted = models.TextField()
    last4 = models.CharField(max_length=4)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # Set when upstream answers 401: polling with this key stops until it is replaced.
    invalid_since = models.DateTimeField(null=True, blank=True)
    # Set from a 429's Retry-After: no process calls upstream with this key before then.
    paused_until = models.DateTimeField(null=True, blank=True)
    # The per-key call budget, shared by every process through atomic updates.
    budget_window_start = models.DateTimeField(null=True, blank=True)
    budget_calls = models.PositiveIntegerField(default=0)
    # One refresher at a time works a key; others skip it until the lease ends. The holder
    # renews the short lease while it is alive, so a refresher that died loses the key fast.
    refresh_lease_until = models.DateTimeField(null=True, blank=True)
    refresh_lease_holder = models.CharField(max_length=32, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.mask} ({self.user})"

    def __repr__(self) -> str:
        return f"<ApiKey {self.mask} user={self.user_id}>"

    @property
    def mask(self) -> str:
        return f"pplx-…{self.last4}"

    @property
    def is_invalid(self) -> bool:
        return self.invalid_since is not None

    def set_secret(self, plaintext: str) -> None:
        self.encrypted = crypto.encrypt(plaintext)
        self.last4 = plaintext[-4:]
        self.invalid_since = None

    def reveal(self) -> str:
        return crypto.decrypt(self.encrypted)


class AppState(models.TextChoices):
    """The app's own state, shown while upstream has given no status."""

    PENDING = "PENDING", "Pending"
    NOT_FOUND = "NOT_FOUND", "Not found upstream"
    KEY_INVALID = "KEY_INVALID", "API key rejected"
    ERROR = "ERROR", "Error"
    # A Sonar job asked about after Perplexity retired the Sonar API: never asked again.
    RETIRED = "RETIRED", "Sonar retired"
    # A start whose answer never came (a timeout): it may or may not be running upstream.
    UNCONFIRMED = "UNCONFIRMED", "May have started"


class UpstreamStatus(models.TextChoices):
    """sonarweb's status vocabulary; both upstream protocols map onto it."""

    CREATED = "CREATED", "Queued"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    COMPLETED = "COMPLETED", "Completed"
    INCOMPLETE = "INCOMPLETE", "Incomplete"
    CANCELLED = "CANCELLED", "Cancelled"
    FAILED = "FAILED", "Failed"


class Origin(models.TextChoices):
    PASTED = "pasted", "Pasted id"
    STARTED = "started", "Started here"
    IMPORTED = "imported", "Imported"


STATUS_SENTENCES = {
    AppState.PENDING: "Waiting for the first answer from Perplexity.",
    UpstreamStatus.CREATED: "Queued at Perplexity; the research has not started yet.",
    UpstreamStatus.IN_PROGRESS: "Perplexity is researching; deep research takes minutes.",
    UpstreamStatus.COMPLETED: "Finished. The answer is archived here.",
    UpstreamStatus.FAILED: "Perplexity reported that the job failed.",
    UpstreamStatus.INCOMPLETE: (
        "Finished early: Perplexity stopped before the answer was complete. The partial "
        "answer is archived here."
    ),
    UpstreamStatus.CANCELLED: "Cancelled. Whatever the research had written by then is kept.",
    AppState.NOT_FOUND: (
        "Perplexity does not know this request id. It may be mistyped, belong to another "
        "account, or be older than upstream keeps its jobs."
    ),
    AppState.RETIRED: (
        "Perplexity retired the Sonar API on 2026-09-27, so this job can no longer be "
        "fetched. Its id was kept."
    ),
    AppState.UNCONFIRMED: (
        "The start did not get an answer in time, so it may have started: check your "
        "Perplexity usage before starting it again."
    ),
    AppState.KEY_INVALID: "The API key used for this request was rejected or removed.",
    AppState.ERROR: "Perplexity could not be asked about this request; retrying with backoff.",
}
STATUS_LABELS = {**dict(AppState.choices), **dict(UpstreamStatus.choices)}


class TrackedRequestQuerySet(models.QuerySet["TrackedRequest"]):
    def due(self, now: datetime | None = None) -> TrackedRequestQuerySet:
        return self.filter(next_poll_at__lte=now or timezone.now())

    def answered(self) -> TrackedRequestQuerySet:
        """Finished with an answer to read: completed, incomplete or cancelled."""
        return self.filter(status__in=ANSWERED_STATUSES)

    def unfinished(self) -> TrackedRequestQuerySet:
        return self.exclude(status__in=FINISHED_STATUSES)

    def listing(self) -> TrackedRequestQuerySet:
        """Rows for tables, with the member who added them."""
        return self.select_related("added_by")


# Statuses the badge shows whatever the app's state says. INCOMPLETE and CANCELLED are final
# too, and show as themselves because a finished row's state is always PENDING (polling
# writes it with the status); they are not listed here because the badge is a generated
# column, which a database cannot alter in place.
BADGE_FINAL = ("COMPLETED", "FAILED")


def new_slug() -> str:
    return secrets.token_urlsafe(9)


class TrackedRequest(models.Model):
    request_id = models.CharField(max_length=128, unique=True)
    slug = models.CharField(max_length=16, unique=True, default=new_slug, editable=False)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="tracked_requests",
    )
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(auto_now=True)
    question = models.TextField(blank=True)
    title = models.CharField(max_length=200, blank=True)
    # The answer's first heading, kept when it is archived: it names a request that was
    # pasted or imported, with no title and no question. Nullable only so that SQLite adds the
    # column in place: rebuilding the table would trip over the search index's view of it.
    heading = models.CharField(max_length=200, blank=True, null=True)  # noqa: DJ001
    # How the request came to be tracked, and what was asked when it was started here.
    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.PASTED)
    options = models.JSONField(default=dict, blank=True)

    # What upstream said last. ``status`` stays empty until the first answer.
    status = models.CharField(max_length=16, choices=UpstreamStatus.choices, blank=True)
    state = models.CharField(max_length=16, choices=AppState.choices, default=AppState.PENDING)
    model = models.CharField(max_length=64, blank=True)
    upstream_created_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    error_message = models.TextField(blank=True)
    total_cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    # When a member asked upstream to cancel the run (the acknowledgement said "cancelling").
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    # When the finished document was stored in AnswerArchive (its own table, so that list
    # pages never read megabytes of answer).
    archived_at = models.DateTimeField(null=True, blank=True)

    # What the badge shows (``badge_status``), computed by the database on every write, so
    # that the dashboard's status filter and counts are index lookups however the row was
    # written (``save()``, ``update()`` or raw SQL).
    badge = models.GeneratedField(
        expression=Case(
            When(status__in=list(BADGE_FINAL), then=F("status")),
            When(state=AppState.PENDING, status="", then=F("state")),
            When(state=AppState.PENDING, then=F("status")),
            default=F("state"),
        ),
        output_field=models.CharField(max_length=16),
        db_persist=True,
    )

    # Polling. ``next_poll_at`` is null once nothing is left to ask upstream.
    next_poll_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # The refresher process whose call for this row is in flight (its lease holder token).
    claimed_by = models.CharField(max_length=32, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveIntegerField(default=0)
    not_found_strikes = models.PositiveSmallIntegerField(default=0)
    note = models.CharField(max_length=300, blank=True)

    objects = TrackedRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        # The dashboard lists newest first, with keyset pagination on (created, id), under
        # any combination of its member, model and status filters: one index per
        # combination, each ending in the sort key, so a page is a short index range scan.
        # The status counts read the same indexes' prefixes (index-only aggregates).
        indexes = [
            models.Index(fields=["next_poll_at"], name="tracked_next_poll"),
            models.Index(fields=["created", "id"], name="tracked_list"),
            models.Index(fields=["badge", "created", "id"], name="tracked_list_s"),
            models.Index(fields=["added_by", "created", "id"], name="tracked_list_m"),
            models.Index(fields=["model", "created", "id"], name="tracked_list_d"),
            models.Index(fields=["added_by", "badge", "created", "id"], name="tracked_list_ms"),
            models.Index(fields=["model", "badge", "created", "id"], name="tracked_list_ds"),
            models.Index(fields=["added_by", "model", "created", "id"], name="tracked_list_md"),
            models.Index(
                fields=["added_by", "model", "badge", "created", "id"], name="tracked_list_mds"
            ),
            # /costs/ (costs.py): every column its aggregate reads, for the rows with a cost,
            # so the sums scan this small index and never the table.
            models.Index(
                fields=["model", "added_by", "completed_at", "created", "total_cost"],
                condition=Q(total_cost__isnull=False),
                name="tracked_costs",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(request_id=""), name="tracked_request_id_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return self.request_id

    def get_absolute_url(self) -> str:
        return reverse("request_detail", args=[self.slug])

    @property
    def badge_status(self) -> str:
        """Upstream's status, unless the app has stopped asking about an unfinished job:
        then its own state (NOT_FOUND, KEY_INVALID, ERROR) says why nothing moves."""
        if self.status in BADGE_FINAL or self.state == AppState.PENDING:
            return self.status or self.state
        return self.state

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.badge_status, self.badge_status)

    @property
    def status_sentence(self) -> str:
        return STATUS_SENTENCES.get(self.badge_status, "")

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def is_polling(self) -> bool:
        return self.next_poll_at is not None

    @property
    def has_answer(self) -> bool:
        return self.status in ANSWERED_STATUSES and self.archived_at is not None

    @property
    def is_cancelling(self) -> bool:
        return self.cancel_requested_at is not None and not self.is_finished

    @property
    def display_title(self) -> str:
        return self.title or self.question or self.heading or self.request_id

    @property
    def elapsed(self) -> timedelta | None:
        start = self.started_at or self.upstream_created_at
        if start is None:
            return None
        end = self.completed_at or self.failed_at or timezone.now()
        return max(end - start, timedelta(0))

    @property
    def elapsed_text(self) -> str:
        elapsed = self.elapsed
        if elapsed is None:
            return ""
        hours, rest = divmod(int(elapsed.total_seconds()), 3600)
        minutes, seconds = divmod(rest, 60)
        if hours:
            return f"{hours} h {minutes} min"
        if minutes:
            return f"{minutes} min {seconds} s"
        return f"{seconds} s"

    @property
    def expires_at(self) -> datetime | None:
        """When upstream forgets the job, where its retention is known."""
        retention = retention_of(self.request_id)
        if self.upstream_created_at is None or retention is None:
            return None
        return self.upstream_created_at + retention

    @property
    def upstream_forgot(self) -> bool:
        """Upstream no longer has the job (it said so, or its retention is over)."""
        if self.state == AppState.NOT_FOUND:
            return True
        expires = self.expires_at
        return expires is not None and expires <= timezone.now()

    @property
    def is_running_long(self) -> bool:
        if self.status != UpstreamStatus.IN_PROGRESS:
            return False
        since = self.started_at or self.upstream_created_at
        limit = timedelta(minutes=settings.SONARWEB_STUCK_AFTER_MINUTES)
        return since is not None and timezone.now() - since > limit


class AnswerArchive(models.Model):
    """A finished job's document exactly as received, and what is rendered from it once.

    Written once, when the job is archived; only the rendering is written again, in the
    background, when the renderer changes (``render_version``).
    """

    tracked = models.OneToOneField(
        TrackedRequest, on_delete=models.CASCADE, primary_key=True, related_name="archive"
    )
    # The body as received, decoded as UTF-8 (RFC 8259) whatever charset was declared.
    raw_json = models.TextField()
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField(default=0)
    archived_at = models.DateTimeField(default=timezone.now)
    # The sanitized HTML fragment of the page and answer.md's body, rendered together.
    rendered_html = models.TextField(blank=True)
    markdown = models.TextField(blank=True)
    render_version = models.PositiveIntegerField(default=0)
    rendered_at = models.DateTimeField(null=True, blank=True)
    render_error = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["render_version"], name="archive_render_version")]

    def __str__(self) -> str:
        return f"archive of {self.tracked_id}"


class RefresherBeat(models.Model):
    """One background refresher process: when it started and last finished a pass.

    In the database so that any machine (and the container health check) can tell whether
    answers are being archived with nobody watching.
    """

    token = models.CharField(max_length=32, unique=True)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_pass_at = models.DateTimeField(null=True, blank=True)
    last_pass_ms = models.PositiveIntegerField(default=0)
    passes = models.PositiveBigIntegerField(default=0)
    interval_seconds = models.FloatField(default=2.0)
    keys_in_flight = models.PositiveIntegerField(default=0)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_pass_at"]

    def __str__(self) -> str:
        return f"refresher {self.host}:{self.pid}"


class UpstreamCall(models.Model):
    """One call to Perplexity, for the staff call log. Never holds the key itself."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    api_key = models.ForeignKey(
        ApiKey, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    key_last4 = models.CharField(max_length=4, blank=True)
    method = models.CharField(max_length=8)
    endpoint = models.CharField(max_length=16)
    request_id = models.CharField(max_length=128, blank=True)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint} {self.request_id} {self.status}"


def new_share_token() -> str:
    # 32 random bytes: 256 bits, far beyond guessing.
    return secrets.token_urlsafe(32)


class ShareLinkQuerySet(models.QuerySet["ShareLink"]):
    def active(self, now: datetime | None = None) -> ShareLinkQuerySet:
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ShareLink(models.Model):
    """A revocable public, read-only link to one completed answer."""

    tracked = models.ForeignKey(
        TrackedRequest, on_delete=models.CASCADE, related_name="share_links"
    )
    token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="share_links"
    )
    created = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ShareLinkQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"share link for {self.tracked_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        # The permalink lists its links: a new ``updated`` retires cached copies of it.
        TrackedRequest.objects.filter(pk=self.tracked_id).update(updated=timezone.now())

    def get_absolute_url(self) -> str:
        return reverse("shared_answer", args=[self.token])

    @property
    def is_active(self) -> bool:
        unexpired = self.expires_at is None or self.expires_at > timezone.now()
        return self.revoked_at is None and unexpired
