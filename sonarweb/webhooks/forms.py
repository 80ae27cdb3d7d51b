from __future__ import annotations

from typing import Any

from django import forms

from sonarweb.tracker.crypto import DecryptionError

from . import conf
from .models import Endpoint, Event, Format
from .sender import TargetRefused, allowed_kinds, checked_url, literal_refusal

DEFAULT_EVENTS = [Event.COMPLETED, Event.FAILED, Event.INCOMPLETE]


def _current_url(endpoint: Endpoint) -> str:
    try:
        return endpoint.url()
    except DecryptionError:
        return ""


class EndpointForm(forms.Form):
    """A new endpoint (``endpoint=None``), or an existing one's settings. The format is
    chosen once; a Slack URL is never shown again, so leaving it empty keeps it."""

    name = forms.CharField(
        label="Name",
        max_length=100,
        strip=True,
        help_text="What receives them, such as “#research on Slack” or “nightly report job”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        error_messages={"required": "Name the endpoint, so that you can tell it apart later."},
    )
    format = forms.ChoiceField(
        label="Format", choices=Format.choices, initial=Format.STANDARD, widget=forms.RadioSelect
    )
    url = forms.CharField(
        label="URL",
        max_length=2000,
        strip=True,
        widget=forms.TextInput(
            attrs={"inputmode": "url", "autocomplete": "off", "spellcheck": "false"}
        ),
        error_messages={"required": "Give the address that receives the events."},
    )
    events = forms.MultipleChoiceField(
        label="Events",
        choices=Event.choices,
        initial=DEFAULT_EVENTS,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one event."},
    )
    allow_private = forms.BooleanField(
        label="Allow private network",
        required=False,
        help_text=(
            "Lets this endpoint reach loopback and private addresses (10.x, 172.16-31.x, "
            "192.168.x), as a chat server on your own network needs. Link-local addresses, "
            "cloud metadata among them, are never reached."
        ),
    )

    def __init__(self, *args: Any, endpoint: Endpoint | None = None, **kwargs: Any) -> None:
        self.endpoint = endpoint
        if endpoint is not None:
            kwargs.setdefault(
                "initial",
                {
                    "name": endpoint.name,
                    "url": "" if endpoint.format == Format.SLACK else _current_url(endpoint),
                    "events": list(endpoint.events),
                    "allow_private": endpoint.allow_private,
                },
            )
        super().__init__(*args, **kwargs)
        if endpoint is not None:
            del self.fields["format"]
            if endpoint.format == Format.SLACK:
                self.fields["url"].required = False
                self.fields["url"].help_text = (
                    f"Now {endpoint.url_shown}. It is kept secret and never shown again: leave "
                    "this empty to keep it, or paste a new one."
                )
        if not conf.private_opt_in_permitted():
            field = self.fields["allow_private"]
            field.disabled = True
            field.help_text = (
                "This server forbids it (SONARWEB_WEBHOOKS_ALLOW_PRIVATE=0): endpoints reach "
                "public addresses only."
            )

    def clean_name(self) -> str:
        return " ".join(self.cleaned_data["name"].split())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        allow = bool(data.get("allow_private")) and conf.private_opt_in_permitted()
        url = data.get("url") or ""
        if not url and self.endpoint is not None and "url" not in self.errors:
            url = _current_url(self.endpoint)
        if url:
            try:
                parsed = checked_url(url)
            except TargetRefused as exc:
                self.add_error("url", str(exc))
            else:
                reason = literal_refusal(parsed, allowed_kinds(allow))
                if reason:
                    self.add_error("url", reason)
        return data

    def apply(self, endpoint: Endpoint) -> None:
        """Copy the cleaned values onto ``endpoint`` (not saved)."""
        data = self.cleaned_data
        endpoint.name = data["name"]
        if self.endpoint is None:
            endpoint.format = data["format"]
        endpoint.events = [e for e in Event.values if e in data["events"]]
        if not self.fields["allow_private"].disabled:
            endpoint.allow_private = bool(data.get("allow_private"))
        if data.get("url"):
            endpoint.set_url(data["url"])
