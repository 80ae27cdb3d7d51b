#!/usr/bin/env python3
"""Django's command-line utility for sonarweb."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sonarweb.settings")
    from django.core.management import execute_from_command_line

    from sonarweb.startup import require_valid_settings

    # Before Django's own handling, which would hide the reason behind "Unknown command".
    require_valid_settings()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
