"""Run one of the refresher's chores now: ``manage.py chore prune``; ``--list`` names them."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ...following.chores import BY_NAME, CHORES


class Command(BaseCommand):
    help = "Run one of the refresher's periodic chores at once (see --list)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", help="chores to run, in this order")
        parser.add_argument("--list", action="store_true", help="name every chore and stop")

    def handle(self, *args: Any, names: list[str], list: bool, **options: Any) -> None:
        if list or not names:
            for chore in CHORES:
                self.stdout.write(f"{chore.name:16} {chore.help}")
            return
        unknown = [name for name in names if name not in BY_NAME]
        if unknown:
            raise CommandError(f"No chore named {', '.join(unknown)}; see --list.")
        for name in names:
            done = BY_NAME[name].run(timezone.now())
            self.stdout.write(f"{name}: {done}")
