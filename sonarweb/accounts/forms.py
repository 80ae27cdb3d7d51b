from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils import timezone

EXPIRY_CHOICES = [
    ("1", "1 day"),
    ("3", "3 days"),
    ("7", "7 days"),
    ("14", "14 days"),
    ("30", "30 days"),
]


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="Email (optional)",
        required=False,
        help_text="Only a note of whom the link is for: sonarweb sends no mail.",
        # A text field styled like the others; the field still checks the address.
        widget=forms.TextInput(attrs={"inputmode": "email", "autocomplete": "off"}),
    )
    expires = forms.ChoiceField(label="Link expires in", choices=EXPIRY_CHOICES, initial="7")

    def expires_at(self) -> datetime:
        return timezone.now() + timedelta(days=int(self.cleaned_data["expires"]))


class JoinForm(UserCreationForm):
    """The form of an invitation: a username and a password, typed twice.

    Django's form puts the password validators' complaints ("too short", "too common") under
    the confirmation field, run together into one sentence. Here they go under the password
    they are about; only a mismatch stays under the confirmation. The template lists each
    error on its own line."""

    def validate_password_for_user(self, user: Any, **kwargs: Any) -> None:
        super().validate_password_for_user(user, password_field_name="password1")  # noqa: S106
