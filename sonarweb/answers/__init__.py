"""Completed answers as sanitized HTML and as markdown downloads.

A pure package: no models, no database, no HTTP. Callers pass a parsed ``Completion``.
"""

from sonarweb.answers.export import export_markdown, render_plain_markdown
from sonarweb.answers.render import RENDER_VERSION, render_completion

__all__ = ["RENDER_VERSION", "export_markdown", "render_completion", "render_plain_markdown"]
