from __future__ import annotations

import re

from django import forms

from .ids import InvalidRequestId, extract_request_id

_KEY = re.compile(r"[A-Za-z0-9_\-.]{8,200}")


class TrackForm(forms.Form):
    request_id = forms.CharField(
        label="Request ID",
        max_length=4000,
        help_text="Paste the id of an async Sonar job, or a URL or JSON that contains it.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "e.g. 3f1c…"}
        ),
    )

    def clean_request_id(self) -> str:
        try:
            return extract_request_id(self.cleaned_data["request_id"])
        except InvalidRequestId as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


class ApiKeyForm(forms.Form):
    api_key = forms.CharField(
        label="API key",
        max_length=200,
        strip=True,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
        help_text="Your Perplexity API key. It is stored encrypted and never shown again.",
    )

    def clean_api_key(self) -> str:
        key = self.cleaned_data["api_key"]
        if not _KEY.fullmatch(key):
            raise forms.ValidationError(
                "That does not look like an API key: it should be one word of letters, "
                "digits and dashes, such as pplx-….",
                code="invalid",
            )
        return key
