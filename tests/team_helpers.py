"""Helpers for the team-account tests: a staff member, signed-in clients, a stopped row."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client

from .conftest import make_member


def make_staff(username: str = "sam", key: str | None = None) -> User:
    user = make_member(username, key)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
