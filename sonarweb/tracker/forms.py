from __future__ import annotations

import re
from typing import Any

from django import forms

from .ids import UUID, InvalidRequestId, extract_request_id

_KEY = re.compile(r"[A-Za-z0-9_\-.]{8,200}")


class FocusFirstInvalid(forms.Form):
    """After a failed submit the page opens with the focus on the first field in error, so a
    keyboard or screen reader user lands where the fix goes (Django adds aria-invalid)."""

    def add_error(self, field: str | None, error: Any) -> None:
        super().add_error(field, error)
        first = next((name for name in self.fields if name in self.errors), None)
        for name, form_field in self.fields.items():
            if name == first and not form_field.widget.is_hidden:
                form_field.widget.attrs["autofocus"] = True
            else:
                form_field.widget.attrs.pop("autofocus", None)


class TrackForm(FocusFirstInvalid):
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


class ApiKeyForm(FocusFirstInvalid):
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


# The models of the async Sonar API's request schema, deep research first: it is what the
# async API is for.
MODEL_CHOICES = [
    ("sonar-deep-research", "Sonar Deep Research"),
    ("sonar-reasoning-pro", "Sonar Reasoning Pro"),
    ("sonar-pro", "Sonar Pro"),
    ("sonar", "Sonar"),
]
SEARCH_MODE_CHOICES = [("web", "Web"), ("academic", "Academic"), ("sec", "SEC filings")]
RECENCY_CHOICES = [
    ("", "Any time"),
    ("hour", "Past hour"),
    ("day", "Past day"),
    ("week", "Past week"),
    ("month", "Past month"),
    ("year", "Past year"),
]
REASONING_CHOICES = [
    ("", "Model default"),
    ("minimal", "Minimal"),
    ("low", "Low"),
    ("medium", "Medium"),
    ("high", "High"),
]
MAX_QUESTION_CHARS = 20_000
MAX_DOMAINS = 20
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def parse_domain(text: str) -> str:
    """One domain filter entry as a host name, '-' prefixed to exclude; ValueError if not one."""
    exclude = text.startswith("-")
    host = text[1:] if exclude else text
    # People paste URLs; the filter wants only their host.
    host = re.sub(r"^https?://", "", host, flags=re.IGNORECASE).rstrip("/").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(text) from exc
    labels = host.split(".")
    if (
        len(host) > 253
        or len(labels) < 2
        or not all(_HOST_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(text)
    return f"-{host}" if exclude else host


class NewResearchForm(FocusFirstInvalid):
    question = forms.CharField(
        label="Question",
        max_length=MAX_QUESTION_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "true"}),
        error_messages={"required": "Write the question to research."},
    )
    model = forms.ChoiceField(label="Model", choices=MODEL_CHOICES, initial="sonar-deep-research")
    search_mode = forms.ChoiceField(label="Search", choices=SEARCH_MODE_CHOICES, initial="web")
    search_recency_filter = forms.ChoiceField(
        label="Published within", choices=RECENCY_CHOICES, required=False
    )
    search_domain_filter = forms.CharField(
        label="Domains",
        required=False,
        max_length=2000,
        help_text=(
            f"Up to {MAX_DOMAINS} domains, separated by commas or spaces, such as "
            "nature.com arxiv.org. Put a - in front to leave a domain out: -pinterest.com."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    reasoning_effort = forms.ChoiceField(
        label="Reasoning effort", choices=REASONING_CHOICES, required=False
    )
    return_images = forms.BooleanField(label="Return images", required=False)
    return_related_questions = forms.BooleanField(
        label="Return related questions", required=False, initial=True
    )
    # Made when the form is rendered, so submitting the same form twice starts one job.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=36)

    def clean_search_domain_filter(self) -> list[str]:
        entries = [e for e in re.split(r"[\s,]+", self.cleaned_data["search_domain_filter"]) if e]
        domains: list[str] = []
        bad: list[str] = []
        for entry in entries:
            try:
                domain = parse_domain(entry)
            except ValueError:
                bad.append(entry)
                continue
            if domain not in domains:
                domains.append(domain)
        if bad:
            shown = ", ".join(b[:60] for b in bad[:5])
            raise forms.ValidationError(
                f"Not a domain name: {shown}. Write domains such as example.com.", code="invalid"
            )
        if len(domains) > MAX_DOMAINS:
            raise forms.ValidationError(
                f"At most {MAX_DOMAINS} domains; you gave {len(domains)}.", code="too_many"
            )
        return domains

    def clean_idempotency_key(self) -> str:
        value = self.cleaned_data["idempotency_key"].strip().lower()
        if not UUID.fullmatch(value):
            raise forms.ValidationError(
                "This form is out of date. Check it and submit it again.", code="invalid"
            )
        return value

    def choice_fields(self) -> list[forms.BoundField]:
        return [
            self[n] for n in ("model", "search_mode", "search_recency_filter", "reasoning_effort")
        ]

    def options(self) -> dict[str, object]:
        """The chosen options, as sent upstream and stored with the tracked request."""
        data = self.cleaned_data
        options: dict[str, object] = {"search_mode": data["search_mode"]}
        for name in ("search_recency_filter", "reasoning_effort"):
            if data[name]:
                options[name] = data[name]
        if data["search_domain_filter"]:
            options["search_domain_filter"] = data["search_domain_filter"]
        options["return_images"] = data["return_images"]
        options["return_related_questions"] = data["return_related_questions"]
        return options

    def upstream_request(self) -> dict[str, object]:
        return {
            "model": self.cleaned_data["model"],
            "messages": [{"role": "user", "content": self.cleaned_data["question"]}],
            **self.options(),
        }


STATUS_FILTER_CHOICES = [
    ("", "Any status"),
    ("CREATED", "Queued"),
    ("IN_PROGRESS", "In progress"),
    ("COMPLETED", "Completed"),
    ("FAILED", "Failed"),
    ("PENDING", "Pending"),
    ("NOT_FOUND", "Not found upstream"),
    ("KEY_INVALID", "API key rejected"),
    ("ERROR", "Error"),
]


class DashboardFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Question, title or answer"}
        ),
    )
    status = forms.ChoiceField(label="Status", choices=STATUS_FILTER_CHOICES, required=False)
    member = forms.ChoiceField(label="Added by", required=False)
    model = forms.ChoiceField(label="Model", required=False)

    def __init__(self, *args: Any, members: list[str], models: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_filter_%s")
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", "Anyone"), *((m, m) for m in members)]
        self.fields["model"].choices = [("", "Any model"), *((m, m) for m in models)]


class TitleForm(forms.Form):
    title = forms.CharField(
        label="Title",
        required=False,
        strip=True,
        max_length=200,
        error_messages={"max_length": "A title has at most %(limit_value)d characters."},
    )

    def clean_title(self) -> str:
        # Titles show on one line in tables; pasted newlines and tabs would only break that.
        return " ".join(self.cleaned_data["title"].split())
