from __future__ import annotations

import re
from datetime import date
from typing import Any

from django import forms

from sonarweb.perplexity.agent import PRESETS, build_request

from .ids import UUID, InvalidRequestId, extract_request_id
from .models import AppState, UpstreamStatus

_KEY = re.compile(r"[A-Za-z0-9_\-.]{8,200}")
# The inputs for ids, keys, models and domains: neither completed nor spell-checked.
_VERBATIM = {"autocomplete": "off", "spellcheck": "false"}


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
        help_text=(
            "Paste the id of an Agent API run (resp_…) or of a Sonar job, or a URL or JSON "
            "that contains it."
        ),
        widget=forms.TextInput(attrs={**_VERBATIM, "placeholder": "e.g. resp_3f1c…"}),
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
        widget=forms.PasswordInput(render_value=False, attrs=_VERBATIM),
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


# The Agent API's presets, shallowest first. Medium is Perplexity's equivalent of the retired
# sonar-deep-research; times and costs are rough (one sample each for fast and medium, none
# for the others: see the contract's §7).
PRESET_CHOICES = [
    ("fast", "Fast"),
    ("low", "Low"),
    ("medium", "Medium"),
    ("high", "High"),
    ("xhigh", "Extra high"),
]
PRESET_NOTES = {
    "fast": "A quick search and a short answer in seconds, for roughly $0.001 to $0.002.",
    "low": (
        "A few more search steps than fast, a little slower and costlier (rough: not measured)."
    ),
    "medium": (
        "Deep research, Perplexity's equivalent of sonar-deep-research: about 35 to 40 s and "
        "roughly $0.016 in one sample."
    ),
    "high": "Deeper research on a stronger model, costlier than medium (rough: not measured).",
    "xhigh": "The deepest and costliest research (rough: not measured).",
}
DEFAULT_PRESET = "medium"
RECENCY_CHOICES = [
    ("", "Any time"),
    ("hour", "Past hour"),
    ("day", "Past day"),
    ("week", "Past week"),
    ("month", "Past month"),
    ("year", "Past year"),
]
REASONING_CHOICES = [
    ("", "The preset's or model's default"),
    ("minimal", "Minimal"),
    ("low", "Low"),
    ("medium", "Medium"),
    ("high", "High"),
    ("xhigh", "Extra high"),
]
MAX_QUESTION_CHARS = 20_000
MAX_INSTRUCTIONS_CHARS = 20_000
MAX_DOMAINS = 20
MIN_OUTPUT_TOKENS = 16
MAX_OUTPUT_TOKENS = 128_000
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
# provider/model, as the Agent API names models (perplexity/sonar, openai/gpt-6-luna).
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}/[A-Za-z0-9][A-Za-z0-9._:-]{0,100}")
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


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


class PresetSelect(forms.RadioSelect):
    """Radio buttons whose each option is described by its own note (``<id>_note``)."""

    def create_option(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(*args, **kwargs)
        option["attrs"]["aria-describedby"] = f"{option['attrs']['id']}_note"
        return option


class FilterDateField(forms.CharField):
    """An optional date filter, as a date input sends it (YYYY-MM-DD) or as people write it
    in the US (MM/DD/YYYY); None when left empty."""

    def __init__(self, label: str) -> None:
        widget = forms.TextInput(attrs={"type": "date", "autocomplete": "off"})
        super().__init__(label=label, required=False, max_length=10, widget=widget)

    def clean(self, value: Any) -> date | None:
        text = super().clean(value)
        if match := _ISO_DATE.fullmatch(text):
            year, month, day = (int(g) for g in match.groups())
        elif match := _US_DATE.fullmatch(text):
            month, day, year = (int(g) for g in match.groups())
        elif not text:
            return None
        else:
            raise forms.ValidationError("Write a date such as 2026-03-31 or 03/31/2026.")
        try:
            return date(year, month, day)
        except ValueError as exc:
            raise forms.ValidationError(f"There is no such day as {text[:20]}.") from exc


# (cleaned field, the Agent API's filter it is sent as), in the order they are checked.
DATE_FILTERS = (
    ("after_date", "search_after_date_filter"),
    ("before_date", "search_before_date_filter"),
    ("updated_after", "last_updated_after_filter"),
    ("updated_before", "last_updated_before_filter"),
)
ADVANCED_FIELDS = (
    "model",
    "domains",
    "recency",
    "after_date",
    "before_date",
    "updated_after",
    "updated_before",
    "effort",
    "max_output_tokens",
    "instructions",
)


class NewResearchForm(FocusFirstInvalid):
    """A background research run on the Agent API: a preset, or a model with web search."""

    question = forms.CharField(
        label="Question",
        max_length=MAX_QUESTION_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "true"}),
        error_messages={"required": "Write the question to research."},
    )
    preset = forms.ChoiceField(
        label="Depth",
        choices=PRESET_CHOICES,
        initial=DEFAULT_PRESET,
        widget=PresetSelect,
        error_messages={"required": "Choose a depth."},
    )
    model = forms.CharField(
        label="Model",
        required=False,
        max_length=64,
        help_text=(
            "Optional: a model in provider/model form, such as perplexity/sonar. It replaces "
            "the depth chosen above, and the run gets a web search tool."
        ),
        widget=forms.TextInput(attrs={**_VERBATIM, "placeholder": "perplexity/sonar"}),
    )
    domains = forms.CharField(
        label="Domains",
        required=False,
        max_length=2000,
        help_text=(
            f"Up to {MAX_DOMAINS} in total, separated by commas or spaces, such as nature.com "
            "arxiv.org. Put a - in front to leave a domain out: -pinterest.com. A pasted "
            "https:// is dropped."
        ),
        widget=forms.TextInput(attrs=_VERBATIM),
    )
    recency = forms.ChoiceField(label="Published within", choices=RECENCY_CHOICES, required=False)
    after_date = FilterDateField("Published after")
    before_date = FilterDateField("Published before")
    updated_after = FilterDateField("Updated after")
    updated_before = FilterDateField("Updated before")
    effort = forms.ChoiceField(label="Reasoning effort", choices=REASONING_CHOICES, required=False)
    max_output_tokens = forms.IntegerField(
        label="Output limit (tokens)",
        required=False,
        min_value=MIN_OUTPUT_TOKENS,
        max_value=MAX_OUTPUT_TOKENS,
        help_text=(
            f"Optional, {MIN_OUTPUT_TOKENS} to {MAX_OUTPUT_TOKENS:,}. A small limit can end the "
            "run 'incomplete': the model may spend it all on reasoning before it writes the "
            "answer."
        ),
        error_messages={
            "invalid": "Write a whole number of tokens.",
            "min_value": "The output limit is at least %(limit_value)s tokens.",
            "max_value": "The output limit is at most %(limit_value)s tokens.",
        },
    )
    instructions = forms.CharField(
        label="Instructions",
        required=False,
        max_length=MAX_INSTRUCTIONS_CHARS,
        strip=True,
        help_text=(
            "Optional: a system prompt for the run. It replaces the preset's own system "
            "prompt rather than adding to it."
        ),
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "true"}),
    )
    # Made when the form is rendered, so submitting the same form twice starts one run.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=36)

    def clean_model(self) -> str:
        model = self.cleaned_data["model"].strip()
        if model and not _MODEL.fullmatch(model):
            raise forms.ValidationError(
                "Write the model as provider/model, such as perplexity/sonar: the Agent API "
                "does not accept bare names such as sonar.",
                code="invalid",
            )
        return model

    def clean_domains(self) -> list[str]:
        entries = [e for e in re.split(r"[\s,]+", self.cleaned_data["domains"]) if e]
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
        both = [d for d in domains if f"-{d}" in domains]
        if both:
            raise forms.ValidationError(
                f"{both[0]} is both searched and left out: keep one of the two.", code="both"
            )
        return domains

    def clean_idempotency_key(self) -> str:
        value = self.cleaned_data["idempotency_key"].strip().lower()
        if not UUID.fullmatch(value):
            raise forms.ValidationError(
                "This form is out of date. Check it and submit it again.", code="invalid"
            )
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for after, before, what in (
            ("after_date", "before_date", "published"),
            ("updated_after", "updated_before", "updated"),
        ):
            start, end = data.get(after), data.get(before)
            if start and end and start > end:
                self.add_error(
                    before,
                    f"The '{what} before' date is earlier than the '{what} after' date.",
                )
        if str(data.get("model", "")).lower().startswith("anthropic/") and not data.get(
            "max_output_tokens"
        ):
            self.add_error(
                "max_output_tokens",
                "Anthropic models need an output limit: Perplexity refuses them without one.",
            )
        dates = [name for name, _ in DATE_FILTERS if data.get(name)]
        if data.get("recency") and dates:
            self.add_error(
                "recency",
                "Choose either 'Published within' or dates, not both: Perplexity's recency "
                "filter cannot be combined with date filters.",
            )
        return data

    # -- what the page shows -------------------------------------------------------------

    def preset_options(self) -> list[tuple[forms.BoundField, str]]:
        """Each preset's radio button with its sentence on depth and cost."""
        return [(radio, PRESET_NOTES.get(radio.data["value"], "")) for radio in self["preset"]]

    def date_fields(self) -> list[forms.BoundField]:
        return [self[name] for name, _ in DATE_FILTERS]

    @property
    def advanced_open(self) -> bool:
        """Whether the Advanced section starts open: after a submit that used or broke it."""
        if not self.is_bound:
            return False
        return any(
            name in self.errors or str(self.data.get(name, "")).strip() for name in ADVANCED_FIELDS
        )

    # -- what is sent ----------------------------------------------------------------------

    def filters(self) -> dict[str, Any]:
        """The web_search filters chosen, by the Agent API's names, as they are sent."""
        data = self.cleaned_data
        filters: dict[str, Any] = {}
        if data["domains"]:
            filters["search_domain_filter"] = data["domains"]
        if data["recency"]:
            filters["search_recency_filter"] = data["recency"]
        for name, api_name in DATE_FILTERS:
            if day := data[name]:
                # MM/DD/YYYY, as the Agent API's filters take dates.
                filters[api_name] = f"{day.month:02d}/{day.day:02d}/{day.year:04d}"
        return filters

    def options(self) -> dict[str, object]:
        """The chosen options, stored with the tracked request so its page can show them:
        the preset or the model, the filters (by the API's names), the reasoning effort, the
        output limit, and whether instructions were given (not their text)."""
        data = self.cleaned_data
        options: dict[str, object] = (
            {"model": data["model"]} if data["model"] else {"preset": data["preset"]}
        )
        options.update(self.filters())
        if data["effort"]:
            options["reasoning_effort"] = data["effort"]
        if data["max_output_tokens"]:
            options["max_output_tokens"] = data["max_output_tokens"]
        options["instructions"] = bool(data["instructions"])
        return options

    def run_name(self) -> str:
        """What the run is called until Perplexity names its model: the model or the preset."""
        return self.cleaned_data["model"] or self.cleaned_data["preset"]

    def create_body(self) -> dict[str, Any]:
        """The body of ``POST /v1/agent``: only fields the contract maps (build_request)."""
        data = self.cleaned_data
        filters = self.filters()
        return build_request(
            data["question"],
            preset=data["preset"],
            model=data["model"],
            instructions=data["instructions"],
            domains=filters.get("search_domain_filter"),
            recency=data["recency"],
            after_date=filters.get("search_after_date_filter", ""),
            before_date=filters.get("search_before_date_filter", ""),
            updated_after=filters.get("last_updated_after_filter", ""),
            updated_before=filters.get("last_updated_before_filter", ""),
            effort=data["effort"],
            max_output_tokens=data["max_output_tokens"],
        )


# Every value the stored ``badge`` column takes in sonarweb's vocabulary (an upstream status
# outside it shows as itself, and is counted under "All"); the labels are the badges' own.
STATUS_FILTER_CHOICES = [("", "Any status"), *UpstreamStatus.choices, *AppState.choices]


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
        # A stored Agent run holds its preset's name (``medium``) until it completes, and the
        # resolved model (``openai/gpt-6-luna``) after.
        self.fields["model"].choices = [
            ("", "Any model"),
            *((m, f"preset {m}" if m in PRESETS else m) for m in models),
        ]


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
