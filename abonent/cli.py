"""The ``abonent`` console command: every Django management command, plus web/worker/demo/seed."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abonent.settings")
    from django.core.management import execute_from_command_line

    argv = list(sys.argv if argv is None else argv)
    argv[0] = "abonent"
    if len(argv) > 1 and not argv[1].startswith("-"):
        argv[1] = argv[1].replace("-", "_")  # `abonent rotate-field-key` runs rotate_field_key
    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
