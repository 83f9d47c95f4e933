"""Half-open ms ranges ``[a, b)`` for :mod:`fundarb.data.fetch`: what a store file covers (spans), what the
exchange proved empty (gaps), and what is missing in between (holes). Lists are sorted and disjoint."""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np

__all__ = ["Range", "complement", "dumps", "empty_cells", "loads", "merge", "missing_bars", "subtract"]

Range = tuple[int, int]


def merge(ranges: Iterable[Range]) -> list[Range]:
    """Sorted, disjoint, with touching ranges joined; empty ranges dropped."""
    out: list[Range] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def complement(spans: list[Range], start: int, end: int) -> list[Range]:
    """The parts of ``[start, end)`` outside ``spans``."""
    out: list[Range] = []
    cur = start
    for a, b in spans:
        if b <= cur:
            continue
        if a >= end:
            break
        if a > cur:
            out.append((cur, a))
        cur = max(cur, b)
    if cur < end:
        out.append((cur, end))
    return out


def subtract(spans: list[Range], holes: list[Range]) -> list[Range]:
    """``spans`` without ``holes``."""
    out: list[Range] = []
    for a, b in spans:
        out.extend(complement(holes, a, b))
    return out


def empty_cells(times: np.ndarray, s: int, proven: int, step: int) -> list[Range]:
    """The parts of ``[s, proven)`` a page of rows at ``times`` (each ``step`` long) proves empty."""
    if not len(times):
        return [(s, proven)] if proven > s else []
    starts = np.concatenate([[s], times + step])
    stops = np.concatenate([times, [proven]])
    keep = stops > starts
    return [(int(a), int(b)) for a, b in zip(starts[keep], stops[keep], strict=True)]


def missing_bars(times: np.ndarray, spans: list[Range], gaps: list[Range], tf: int) -> list[Range]:
    """Bars of the ``tf`` grid inside ``spans`` that are neither among ``times`` nor inside ``gaps``, as ranges."""
    out: list[Range] = []
    gs = np.array([g[0] for g in gaps], dtype=np.int64)
    ge = np.array([g[1] for g in gaps], dtype=np.int64)
    for a, b in spans:
        grid = np.arange(-(-a // tf) * tf, b, tf, dtype=np.int64)
        if not len(grid):
            continue
        miss = ~np.isin(grid, times)
        if len(gs):
            k = np.searchsorted(gs, grid, side="right") - 1
            miss &= ~((k >= 0) & (grid < ge[np.maximum(k, 0)]))
        bars = grid[miss]
        if len(bars):
            breaks = np.flatnonzero(np.diff(bars) != tf) + 1
            out.extend((int(c[0]), int(c[-1]) + tf) for c in np.split(bars, breaks))
    return out


def dumps(ranges: list[Range]) -> str:
    return json.dumps([[a, b] for a, b in ranges], separators=(",", ":"))


def loads(text: object) -> list[Range] | None:
    """Ranges written by :func:`dumps`; None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        return merge((int(a), int(b)) for a, b in json.loads(text))
    except (TypeError, ValueError):
        return None
