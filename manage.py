#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sessions_project.settings")
    # The settings leave long-running commands (migrate, seed_demo, purge_sessions) without the
    # web requests' statement timeout; runserver serves requests and keeps it.
    os.environ["SESSIONS_MANAGEMENT_COMMAND"] = sys.argv[1] if len(sys.argv) > 1 else "help"
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
