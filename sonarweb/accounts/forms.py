from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
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
