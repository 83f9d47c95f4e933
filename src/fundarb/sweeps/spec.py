"""Reading a parameter grid: ``--grid FIELD=v1,v2`` flags, ``--grid-file`` TOML files and Python mappings.

Values keep their type: ``1`` is an int, ``1.5`` and ``1e-4`` floats, ``inf`` the float infinity, ``none`` is
None, anything else (``3d``, ``auto``) a string. numpy scalars become the Python scalar they hold.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fundarb.data.validate import require_file
from fundarb.errors import ConfigError, DataError

__all__ = ["grid_from_args", "normalise_grid", "parse_grid_value"]

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def parse_grid_value(text: str) -> Any:
    """One value of a ``--grid`` flag, typed: int, float, ``inf``, ``none`` or a string (e.g. a duration)."""
    item = text.strip()
    low = item.lower()
    if _INT.fullmatch(item):
        return int(item)
    if _FLOAT.fullmatch(item):
        return float(item)
    if low in ("inf", "+inf", "infinity"):
        return math.inf
    if low == "none":
        return None
    if not item:
        raise ConfigError("--grid: empty value in the list (write FIELD=v1,v2,…)")
    return item


def _scalar(key: str, v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        raise ConfigError(f"grid[{key!r}] contains NaN")
    return v


def normalise_grid(grid: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Check a grid mapping (field → non-empty list of values) and return it with plain Python scalars."""
    if not isinstance(grid, Mapping):
        raise ConfigError(f"a grid is a mapping field → list of values, got {type(grid).__name__}")
    if not grid:
        raise ConfigError("empty grid: give at least one field and its values (e.g. --grid entry=0.05,0.1)")
    out: dict[str, list[Any]] = {}
    for key, vals in grid.items():
        if not isinstance(key, str):
            raise ConfigError(f"grid fields are names (strings), got {key!r}")
        if isinstance(vals, str | bytes) or not isinstance(vals, Sequence | np.ndarray) or len(vals) == 0:
            raise ConfigError(f"grid[{key!r}] must be a non-empty list of values, got {vals!r}")
        vals = [_scalar(key, v) for v in vals]
        seen: list[Any] = []
        for v in vals:
            if any(type(v) is type(s) and v == s for s in seen):
                raise ConfigError(f"grid[{key!r}] lists {v!r} twice")
            seen.append(v)
        out[key] = vals
    return out


def _read_grid_file(path: str) -> dict[str, list[Any]]:
    p = Path(path)
    try:
        require_file(p, "grid file")  # a FIFO would block the read forever
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read grid file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    table = doc.get("grid", doc)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [grid] must be a table of FIELD = [values]")
    extra = [k for k in doc if k != "grid" and not isinstance(doc[k], list)]
    if "grid" in doc and extra:
        raise ConfigError(f"{path}: unexpected top-level key(s) {extra}; put the fields under [grid]")
    for key, vals in table.items():
        if not isinstance(vals, list) or not vals:
            raise ConfigError(f"{path}: [grid] {key} must be a non-empty list, e.g. {key} = [1, 2]")
    return {k: list(v) for k, v in table.items()}


def grid_from_args(flags: Sequence[str] | None, grid_file: str | None = None) -> dict[str, list[Any]]:
    """The grid of the command line: ``--grid FIELD=v1,v2`` flags plus an optional ``--grid-file``.

    A field given twice (two flags, or a flag and the file) is an error.
    """
    out: dict[str, list[Any]] = dict(_read_grid_file(grid_file)) if grid_file else {}
    from_file = set(out)
    for g in flags or ():
        key, sep, vals = g.partition("=")
        key = key.strip()
        if not sep or not key or not vals.strip():
            raise ConfigError(f"--grid takes FIELD=v1,v2,…, got {g!r}")
        if key in out:
            where = f"in {grid_file} and in --grid" if key in from_file else "by two --grid flags"
            raise ConfigError(f"grid field {key!r} is given {where}; give each field once")
        out[key] = [parse_grid_value(v) for v in vals.split(",")]
    return normalise_grid(out)
