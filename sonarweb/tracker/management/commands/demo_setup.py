"""Prepare the demo: a user with a fresh printed password, the simulator's key saved for them,
the simulator's sample Agent runs tracked, and two Sonar answers archived as a team would have
them from before the Sonar API's retirement."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from sonarweb.perplexity.documents import loads_document
from sonarweb.simulator.demo import DEMO_AGENT_TRACKED, DEMO_KEY, sonar_archive_samples
from sonarweb.tracker.following.polling import archive_saved
from sonarweb.tracker.models import ApiKey, Origin, TrackedRequest


class Command(BaseCommand):
    help = "Create or reset the demo user, track the simulator's sample runs and archive samples."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="demo")

    @transaction.atomic
    def handle(self, *args: Any, username: str, **options: Any) -> None:
        password = secrets.token_urlsafe(12)
        user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        key = ApiKey.objects.filter(user=user).first() or ApiKey(user=user)
        key.set_secret(DEMO_KEY)
        key.save()
        # The simulator starts its sample runs afresh on every run; so do their rows, or a
        # run archived as finished last time would not be seen running again.
        TrackedRequest.objects.filter(
            request_id__in=[run.id for run in DEMO_AGENT_TRACKED]
        ).delete()
        for run in DEMO_AGENT_TRACKED:
            TrackedRequest.objects.create(
                request_id=run.id,
                added_by=user,
                question=run.question,
                origin=Origin.STARTED,
                options={"preset": run.preset},
            )
        # Answers archived before 2026-09-27 cannot be fetched any more: they are kept as
        # they were, once. Their pictures come from the simulator the demo runs (its own
        # image host).
        images_from = str(settings.PERPLEXITY_API_BASE).rstrip("/")
        for job_id, question, raw_text in sonar_archive_samples(image_base=images_from):
            if TrackedRequest.objects.filter(request_id=job_id).exists():
                continue
            tracked = TrackedRequest.objects.create(
                request_id=job_id, added_by=user, question=question, next_poll_at=None
            )
            archive_saved(tracked, loads_document(raw_text), raw_text)
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Demo user ready.\n"
                f"  Sign in at http://127.0.0.1:8000/accounts/login/ as '{username}'"
                f" with password: {password}\n"
            )
        )
