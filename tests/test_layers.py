"""Layering of the package, read from the source with ``ast`` (imports inside functions included).

The engine never imports the layers above it (results, sweeps, the CLI), and no module reaches for a private
``_name`` of another fundarb package, whether by ``from … import _name`` or as ``module._name``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "fundarb"
ABOVE_ENGINE = ("fundarb.results", "fundarb.sweeps", "fundarb.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    """``fundarb.engine.run`` → ``fundarb.engine``; a top-level module (``fundarb.calc``) is its own package."""
    return ".".join(module.split(".")[:2])


def is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (SRC / rel).with_suffix(".py").is_file() or (SRC / rel / "__init__.py").is_file()


def imports(tree: ast.AST, module: str, *, is_pkg: bool) -> Iterator[tuple[int, str, str | None]]:
    """``(line, module imported from, name or None)`` for every import in ``tree``, relative ones resolved, plus
    ``importlib.import_module("…")`` / ``__import__("…")`` calls on a constant string."""
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            for a in node.names:
                yield node.lineno, base, a.name
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))):
            yield node.lineno, node.args[0].value, None


def upward_imports(tree: ast.AST, module: str, *, is_pkg: bool = False) -> list[str]:
    """Imports of ``results``/``sweeps``/``cli`` (or of a name from them) in an engine module."""
    out = []
    for line, src, name in imports(tree, module, is_pkg=is_pkg):
        targets = [src] + ([f"{src}.{name}"] if name else [])
        if any(t == top or t.startswith(top + ".") for t in targets for top in ABOVE_ENGINE):
            out.append(f"{module}:{line} imports {src}{'.' + name if name else ''}")
    return out


def private_imports(tree: ast.AST, module: str, *, is_pkg: bool = False) -> list[str]:
    """``from fundarb.x import _name`` or ``mod._name`` (``mod`` a fundarb module) reaching into another package."""
    out = []
    bound: dict[str, str] = {}  # local name → fundarb module it is bound to
    for line, src, name in imports(tree, module, is_pkg=is_pkg):
        if not src.startswith("fundarb"):
            continue
        if name is None:
            continue
        full = f"{src}.{name}"
        if is_module(full):
            bound[name] = full
        if (name.startswith("_") and not name.startswith("__") and package_of(src) != package_of(module)):
            out.append(f"{module}:{line} imports the private {name} from {src}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("fundarb") and a.asname:
                    bound[a.asname] = a.name
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
              and node.attr.startswith("_") and not node.attr.startswith("__")
              and package_of(bound[node.value.id]) != package_of(module)):
            out.append(f"{module}:{node.lineno} uses the private {bound[node.value.id]}.{node.attr}")
    return out


def parsed(under: Path) -> list[tuple[str, ast.AST, bool]]:
    files = sorted(under.rglob("*.py"))
    assert files, f"no modules found under {under}"
    return [(module_name(f), ast.parse(f.read_text(encoding="utf-8"), filename=str(f)), f.name == "__init__.py")
            for f in files]


def test_the_engine_never_imports_the_layers_above_it():
    modules = parsed(PKG / "engine")
    assert "fundarb.engine.run" in [m for m, _, _ in modules]
    bad = [msg for m, tree, pkg in modules for msg in upward_imports(tree, m, is_pkg=pkg)]
    assert not bad, "\n".join(bad)


def test_no_module_imports_a_private_name_of_another_package():
    bad = [msg for m, tree, pkg in parsed(PKG) for msg in private_imports(tree, m, is_pkg=pkg)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("code", [
    "from fundarb.results.result import Result",
    "def f():\n    from fundarb.results.result import Result\n    return Result",
    "def f():\n    import fundarb.sweeps.grid",
    "from fundarb import results",
    "from fundarb.cli import main",
    "from ..results import result",
    "import importlib\nimportlib.import_module('fundarb.results.result')",
])
def test_the_engine_check_sees_upward_imports(code):
    assert upward_imports(ast.parse(code), "fundarb.engine.run")


@pytest.mark.parametrize("code", [
    "from fundarb.engine.config import Costs",
    "from fundarb.engine import nb as k",
    "import numpy as np",
    "from fundarb.errors import ConfigError",
    "from .config import Costs",
])
def test_the_engine_check_allows_the_layers_below(code):
    assert upward_imports(ast.parse(code), "fundarb.engine.run") == []


@pytest.mark.parametrize(("code", "module", "found"), [
    ("from fundarb.engine.run import _bars", "fundarb.sweeps.grid", True),
    ("def f():\n    from fundarb.results.report import _esc", "fundarb.cli.main", True),
    ("from fundarb.engine import run\nrun._tiers_for(1, 2, 3)", "fundarb.sweeps.grid", True),
    ("import fundarb.engine.run as r\nr._weights_frame(1, 2)", "fundarb.sweeps.grid", True),
    ("from ..engine.run import _bars", "fundarb.sweeps.grid", True),
    ("from fundarb.engine.run import period_bars", "fundarb.sweeps.grid", False),
    ("from fundarb.engine.tiers import tier_of as _tier_of", "fundarb.calc", False),
    ("from fundarb.engine.tiers import _helper", "fundarb.engine.run", False),  # same package
    ("from fundarb import __version__", "fundarb.cli.main", False),
])
def test_the_private_check_sees_reaching_into_another_package(code, module, found):
    assert bool(private_imports(ast.parse(code), module)) is found
