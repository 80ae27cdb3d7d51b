"""/api/v1/docs: the API described from its OpenAPI document, as a plain page.

Rendered on the server from the same document as /api/v1/openapi.json, so it works without
JavaScript (and under the site's CSP, which allows no inline script), at any width and in
dark mode. It describes the API, not the team's data: anyone may read it.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from ninja.openapi.docs import DocsBase

from .problems import TITLES

METHODS = ("get", "post", "put", "patch", "delete")


def _type(schema: dict[str, Any]) -> str:
    """A property's type in a few words: ``string``, ``list of string``, ``one of: a, b``."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return str(schema["const"])
    if "anyOf" in schema:
        kinds = [_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        nullable = len(kinds) < len(schema["anyOf"])
        return " or ".join(kinds) + (" (or null)" if nullable else "")
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    kind = str(schema.get("type", "any"))
    if schema.get("format"):
        kind += f" ({schema['format']})"
    return kind


def _notes(description: str, schema: dict[str, Any]) -> str:
    """The description, then the limits and the default."""
    words = [
        text.format(schema[key])
        for key, text in (
            ("minimum", "at least {}"),
            ("maximum", "at most {}"),
            ("maxLength", "at most {} characters"),
        )
        if key in schema
    ]
    if "default" in schema and schema["default"] not in (None, "", [], {}):
        words.append(f"default {schema['default']}")
    return " ".join(part for part in (description, ", ".join(words)) if part)


def _fields(name: str, components: dict[str, Any]) -> list[dict[str, str]]:
    schema = components.get(name, {})
    required = set(schema.get("required", []))
    return [
        {
            "name": field,
            "type": _type(prop),
            "required": "yes" if field in required else "no",
            "notes": _notes(prop.get("description", ""), prop),
        }
        for field, prop in schema.get("properties", {}).items()
    ]


def _parameters(operation: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {
            "name": p["name"],
            "where": p.get("in", ""),
            "type": _type(p.get("schema", {})),
            "required": "yes" if p.get("required") else "no",
            "notes": _notes(p.get("description", ""), p.get("schema", {})),
        }
        for p in operation.get("parameters", [])
    ]


def _body(operation: dict[str, Any]) -> str:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return _type(schema) if schema else ""


def _responses(operation: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for code, answer in sorted(operation.get("responses", {}).items()):
        content = answer.get("content", {})
        schema = next(iter(content.values()), {}).get("schema", {}) if content else {}
        rows.append({"code": code, "type": _type(schema) if schema else ""})
    return rows


def describe(schema: dict[str, Any]) -> dict[str, Any]:
    """What the page shows, from an OpenAPI document."""
    components = schema.get("components", {}).get("schemas", {})
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method in METHODS:
            if method not in methods:
                continue
            operation = methods[method]
            operations.append(
                {
                    "anchor": operation.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "scope": operation.get("x-scope", ""),
                    "parameters": _parameters(operation),
                    "body": _body(operation),
                    "responses": _responses(operation),
                }
            )
    shown = sorted({name for name in components if name != "ProblemOut"})
    return {
        "info": schema.get("info", {}),
        "operations": operations,
        "schemas": [{"name": name, "fields": _fields(name, components)} for name in shown],
        "problems": sorted(TITLES.items()),
    }


class PlainDocs(DocsBase):
    def render_page(self, request: HttpRequest, api: Any, **kwargs: Any) -> HttpResponse:
        schema = api.get_openapi_schema(path_params=kwargs)
        context = describe(schema)
        context["openapi_url"] = reverse("api:openapi-json")
        response = render(request, "api/docs.html", context)
        response["X-Robots-Tag"] = "noindex"
        return response
