"""The package production installs (``pip install --no-deps /opt/abonent``, docs/operations.md) holds every file
of the source tree: an installed copy without the RADIUS dictionary could not even run ``abonent check``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_holds_every_file_of_the_package(tmp_path):
    # Given a copy of the project (the build writes its egg-info and build/ beside the sources)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "abonent", source / "abonent", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))

    # When it is built as production builds it
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path, source],
        check=True,
        capture_output=True,
    )

    # Then the wheel has every file the tree has
    (wheel,) = tmp_path.glob("abonent-*.whl")
    packaged = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("abonent/")}
    tree = {path.relative_to(source).as_posix() for path in (source / "abonent").rglob("*") if path.is_file()}
    assert sorted(tree - packaged) == []
