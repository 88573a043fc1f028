"""The import run (dry or real): read, clean, find duplicates, write through the domain apps' bulk actions."""

from __future__ import annotations


def run(job, *, dry_run: bool, acting_user, progress=None):
    raise NotImplementedError
