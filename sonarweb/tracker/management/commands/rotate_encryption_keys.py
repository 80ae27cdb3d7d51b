"""Re-encrypt every stored API key with the first key in SONARWEB_ENCRYPTION_KEYS.

Run it after putting a new key first (keeping the old one after it); once it reports
nothing left to re-encrypt and no failures, the old key can be removed from the list.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from sonarweb.tracker import crypto
from sonarweb.tracker.models import ApiKey


def _keys(n: int) -> str:
    return f"{n} API key{'' if n == 1 else 's'}"


class Command(BaseCommand):
    help = "Re-encrypt stored API keys with the current (first) encryption key."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = current = changed = 0
        failed: list[int] = []
        rows = ApiKey.objects.only("pk", "user_id", "encrypted").order_by("pk")
        for key in rows.iterator(chunk_size=500):
            if crypto.is_current(key.encrypted):
                current += 1
                continue
            try:
                fresh = crypto.rotate(key.encrypted)
            except crypto.DecryptionError:
                failed.append(key.user_id)
                continue
            # Only if unchanged since read: a member who saved a new key meanwhile keeps it,
            # and it was encrypted with whatever the web process was configured with.
            if ApiKey.objects.filter(pk=key.pk, encrypted=key.encrypted).update(encrypted=fresh):
                rotated += 1
            else:
                changed += 1
        self.stdout.write(
            f"Re-encrypted {_keys(rotated)} with the current key; {current} already current."
        )
        if changed:
            self.stdout.write(
                f"{_keys(changed)} changed while this ran and were left alone; run it again."
            )
        if failed:
            users = ", ".join(str(user_id) for user_id in failed)
            raise CommandError(
                f"{_keys(len(failed))} could not be decrypted with any configured key "
                f"(user ids: {users}). Add the key they were encrypted with to "
                "SONARWEB_ENCRYPTION_KEYS and run this again, or have those members save "
                "their key again in Settings."
            )
