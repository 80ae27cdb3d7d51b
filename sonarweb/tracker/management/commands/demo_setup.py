"""Prepare the demo: a user with a fresh printed password, the simulator's key saved
for them, and the simulator's sample jobs tracked."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from django.db import transaction

from sonarweb.simulator.demo import DEMO_KEY, DEMO_TRACKED
from sonarweb.tracker.models import ApiKey, TrackedRequest


class Command(BaseCommand):
    help = "Create or reset the demo user and track the simulator's sample jobs."

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
        # The simulator starts its sample jobs afresh on every run; so do their rows, or a
        # job archived as finished last time would not be seen running again.
        TrackedRequest.objects.filter(request_id__in=[job.id for job in DEMO_TRACKED]).delete()
        for job in DEMO_TRACKED:
            TrackedRequest.objects.create(request_id=job.id, added_by=user, question=job.question)
        self.stdout.write(
            self.style.SUCCESS(
                "\n  Demo user ready.\n"
                f"  Sign in at http://127.0.0.1:8000/accounts/login/ as '{username}'"
                f" with password: {password}\n"
            )
        )
