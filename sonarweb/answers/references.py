"""An answer's sources as references a reference manager imports: BibTeX, RIS and CSL-JSON.

Each source becomes a web page reference (BibTeX ``@online``, RIS ``ELEC``, CSL ``webpage``)
with its title, URL, site, the date the source gives (when it is one a reader can trust as a
date) and the day the answer was archived as the access date. Zotero, Mendeley, EndNote and
JabRef import all three. Only sources with an http(s) URL are exported; the text is the web's
and is escaped for each format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import date

from sonarweb.answers.sources import Source

_ISO_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_BIBTEX_SPECIAL = re.compile(r"([\\{}&%$#_^~])")


def _date_parts(value: str) -> list[int] | None:
    match = _ISO_DATE.match(value.strip())
    if match is None:
        return None
    return [int(part) for part in match.groups() if part]


def _exported(sources: Sequence[Source]) -> list[Source]:
    return [source for source in sources if source.href]


def _bibtex_text(value: str) -> str:
    value = " ".join(value.split())

    def escape(match: re.Match[str]) -> str:
        char = match.group(1)
        return {"\\": r"\textbackslash{}", "^": r"\^{}", "~": r"\~{}"}.get(char, "\\" + char)

    return _BIBTEX_SPECIAL.sub(escape, value)


def _bibtex_url(url: str) -> str:
    # Inside \url-style fields only braces and backslashes could break the entry.
    return url.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D")


def bibtex(sources: Sequence[Source], *, key: str, accessed: date) -> str:
    entries = []
    for source in _exported(sources):
        fields = [
            ("title", "{" + _bibtex_text(source.title) + "}"),
            ("url", _bibtex_url(source.href or "")),
            ("urldate", accessed.isoformat()),
        ]
        if source.domain:
            fields.append(("organization", _bibtex_text(source.domain)))
        parts = _date_parts(source.date)
        if parts:
            fields.append(
                ("date", "-".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts)))
            )
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
        entries.append(f"@online{{{key}-{source.number},\n{body}\n}}")
    return "\n\n".join(entries) + ("\n" if entries else "")


def _ris_text(value: str) -> str:
    return " ".join(value.split())


def ris(sources: Sequence[Source], *, accessed: date) -> str:
    records = []
    for source in _exported(sources):
        lines = ["TY  - ELEC", f"TI  - {_ris_text(source.title)}", f"UR  - {source.href}"]
        if source.domain:
            lines.append(f"PB  - {_ris_text(source.domain)}")
        parts = _date_parts(source.date)
        if parts:
            lines.append(f"PY  - {parts[0]}")
            padded = [*parts, 0, 0][:3]
            lines.append(f"DA  - {padded[0]}/{padded[1]:02d}/{padded[2]:02d}/".replace("/00", "/"))
        lines.append(f"Y2  - {accessed:%Y/%m/%d}")
        lines.append(f"N1  - Source {source.number} of the answer")
        lines.append("ER  - ")
        records.append("\r\n".join(lines))
    return "\r\n".join(records) + ("\r\n" if records else "")


def csl_json(sources: Sequence[Source], *, key: str, accessed: date) -> str:
    items = []
    for source in _exported(sources):
        item: dict[str, object] = {
            "id": f"{key}-{source.number}",
            "type": "webpage",
            "title": " ".join(source.title.split()),
            "URL": source.href,
            "accessed": {"date-parts": [[accessed.year, accessed.month, accessed.day]]},
        }
        if source.domain:
            item["container-title"] = source.domain
        parts = _date_parts(source.date)
        if parts:
            item["issued"] = {"date-parts": [parts]}
        items.append(item)
    return json.dumps(items, ensure_ascii=False, indent=2) + "\n"
