"""The image archive: answers' images fetched once, safely, re-encoded and kept locally.

Import-light on purpose: ``sonarweb.settings`` imports ``sonarweb.media.conf``.
"""
