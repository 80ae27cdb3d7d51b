from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.utils import timezone

from .models import Scope

EXPIRY_CHOICES = [
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
    ("never", "Never"),
]


class TokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What uses it, such as “nightly report script” or “Claude Code”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"required": "Name the token, so that you can tell it apart later."},
    )
    scope = forms.ChoiceField(
        label="Scope",
        choices=Scope.choices,
        initial=Scope.READ,
        widget=forms.RadioSelect,
    )
    expires = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial="90")

    def clean_name(self) -> str:
        # Names show on one line in tables.
        return " ".join(self.cleaned_data["name"].split())

    def expires_at(self) -> datetime | None:
        choice = self.cleaned_data["expires"]
        if choice == "never":
            return None
        return timezone.now() + timedelta(days=int(choice))
