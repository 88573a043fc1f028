"""``abonent.core`` imports no other app of the project (DESIGN.md §3: ``core`` ← ``catalog`` ← ``subscribers``
← ``billing`` ← ``payments``; ``network``, ``dunning`` and the rest sit above). Apps plug into core instead:
their metrics through ``core.metrics.register_database_collector``, their jobs through the scheduler.

``staff`` counts as a domain app here too, although every app reads its permission table: ``staff`` itself
imports core (its actions write core's audit rows and login-failure metric), and core needs no more of it than
the user model, which it names as ``settings.AUTH_USER_MODEL``, and ``user.has_perm()``, which Django answers
through staff's ``RoleBackend``. An import from core into staff would be the first cycle between the two.

Allowed: ``abonent.core.*`` and the package root (``from abonent import __version__``). The project's entry
points named as strings to other programs (``"abonent.asgi:application"`` for granian) are not imports.
"""

import ast
from pathlib import Path

import pytest

import abonent

PACKAGE = Path(abonent.__file__).parent
CORE = PACKAGE / "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every module ``source`` imports, anywhere in it (a function's body too),
    relative imports resolved against ``module`` and ``import_module("…")`` with a literal name included."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from abonent import billing`` imports abonent.billing: each name may be a module.
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def outside_core(name: str) -> bool:
    """A module of the project other than core: ``abonent.<anything but core>.…``, and ``abonent.X`` for a
    package or module X (``abonent.__version__`` is an attribute, not a module)."""
    parts = name.split(".")
    if parts[0] != "abonent" or len(parts) == 1 or parts[1] == "core":
        return False
    return (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file()


def test_no_module_under_core_imports_another_app():
    offences = []
    for path in sorted(CORE.rglob("*.py")):
        module = module_name(path)
        for line, name in imported_modules(path.read_text(), module, is_package=path.name == "__init__.py"):
            if outside_core(name):
                offences.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}")
    assert offences == []


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from abonent.subscribers.validators import format_phone", ["abonent.subscribers.validators.format_phone"]),
        ("def f():\n    from abonent.network import selectors", ["abonent.network.selectors"]),
        ("import abonent.staff.permissions", ["abonent.staff.permissions"]),
        ("from abonent import billing", ["abonent.billing"]),
        ("from ..catalog.models import Plan", ["abonent.catalog.models.Plan"]),
        ("importlib.import_module('abonent.network.metrics')", ["abonent.network.metrics"]),
        ("from abonent import __version__", []),
        ("from abonent.core.money import quantize", []),
        ("from .money import quantize\nfrom . import clock", []),
        ("from django.conf import settings\nimport phonenumbers", []),
    ],
)
def test_the_check_catches_every_way_of_importing_an_app(source, caught):
    names = [name for _line, name in imported_modules(source, "abonent.core.templatetags_example")]
    assert [name for name in names if outside_core(name)] == caught
