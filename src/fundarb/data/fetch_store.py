"""The store side of :mod:`fundarb.data.fetch`: one writer per store (a lock file), stale temporary files of a
killed writer, and reading back what a file holds and truly covers (holes and duplicated rows found)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.fetch_ranges import Range, dumps, loads, merge, missing_bars, subtract
from fundarb.data.fetch_report import FetchError, iso, iso_ms
from fundarb.errors import ConfigError, DataError

try:  # POSIX advisory lock; elsewhere the lock is skipped
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileState", "file_state", "prepare_out", "read_existing", "remove_stale_tmp", "spans_metadata",
           "store_lock"]


def read_existing(path: str) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """A store file's rows (indexed by UTC time, sorted) and its ``fundarb`` metadata; ``(None, {})`` if absent."""
    if not os.path.exists(path):
        return None, {}
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # a file not written by fetch (writes are atomic)
        raise DataError(f"cannot read store file ({exc}); delete it to fetch it again", source=path) from exc
    meta: dict[str, Any] = {}
    raw = (table.schema.metadata or {}).get(b"fundarb")
    if raw:
        with contextlib.suppress(ValueError):
            meta = dict(json.loads(raw))
    df = table.to_pandas()
    if "time" not in df.columns:
        raise DataError("store file has no 'time' column; delete it to fetch it again", source=path)
    idx = pd.DatetimeIndex(df.pop("time"))
    idx = (idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")).as_unit("ms").rename("time")
    df.index = idx
    return df.sort_index(), meta


@dataclass
class FileState:
    """What a store file holds and proves: rows, covered spans, proven-empty gaps (klines), repairs made."""

    df: pd.DataFrame | None
    spans: list[Range]
    gaps: list[Range]
    notes: list[str] = field(default_factory=list)
    dirty: bool = False  # rows were repaired in memory: write the file even if nothing is fetched


def file_state(path: str, *, kind: str, step: int, grid_ms: int | None) -> FileState:
    """Read a store file and work out what it truly covers.

    Coverage is the ``covered_*`` metadata (or the rows' span for a file without it). Rows sharing a time are
    dropped, and what they covered is fetched again. A kline file (``grid_ms`` its bar) loses from its coverage every
    bar that is neither stored nor inside a range the exchange proved empty (``gaps_ms``), so deleted rows are
    fetched again; a funding file whose row count differs from the one it was written with is fetched again whole.
    """
    df, meta = read_existing(path)
    notes: list[str] = []
    dirty = False
    if df is not None and df.index.has_duplicates:
        dup = df.index.duplicated(keep=False)
        notes.append(f"{path}: {int(dup.sum())} rows share a time (first {iso(df.index[dup][0])}); they are "
                     "dropped and fetched again")
        df, dirty = df[~dup], True
    spans = _spans(df, meta, step)
    gaps = loads(meta.get("gaps_ms")) if grid_ms is not None else None
    if kind == "funding":
        rows = meta.get("rows")
        if dirty or (rows is not None and str(rows) != str(0 if df is None else len(df))):
            if not dirty:
                notes.append(f"{path}: {rows} rows were written, {0 if df is None else len(df)} are there; "
                             "fetched again")
            spans = []
        elif rows is None:  # written without a row count: nothing to check it against, so fetch it again
            spans = []
    elif grid_ms is None:  # bars longer than a day: no grid to find holes on; a repaired file is fetched again
        if dirty:
            spans = []
    elif spans:
        times = np.empty(0, dtype=np.int64) if df is None else df.index.asi8
        holes = missing_bars(times, spans, gaps or [], grid_ms)
        if holes:
            if gaps is not None and not dirty:
                n = sum((b - a) // grid_ms for a, b in holes)
                notes.append(f"{path}: {n} bars missing inside the stored range (first {iso_ms(holes[0][0])}); "
                             "fetched again")
            spans = subtract(spans, holes)
    return FileState(df, spans, gaps or [], notes, dirty)


def _spans(df: pd.DataFrame | None, meta: Mapping[str, Any], step: int) -> list[Range]:
    try:
        main = [(int(meta["covered_from_ms"]), int(meta["covered_to_ms"]))]
    except (KeyError, TypeError, ValueError):
        if df is None or df.empty:
            return []
        t = df.index.asi8
        return [(int(t[0]), int(t[-1]) + step)]
    return merge(main + (loads(meta.get("partial_ms")) or []))


def spans_metadata(spans: list[Range]) -> dict[str, str]:
    """``covered_from_ms``/``covered_to_ms`` (the last span) and ``partial_ms`` (the others, while a fetch that
    started before the coverage has not reached it yet)."""
    if not spans:
        return {}
    meta = {"covered_from_ms": str(spans[-1][0]), "covered_to_ms": str(spans[-1][1])}
    if len(spans) > 1:
        meta["partial_ms"] = dumps(spans[:-1])
    return meta


def prepare_out(out: str, exchange: str) -> str:
    """Create ``<out>/<exchange>`` and check that a file can be written there; returns that directory.

    Raises
    ------
    ConfigError
        ``out`` (or a parent) is a file, or the directory cannot be created or written.
    """
    p = os.path.abspath(out)
    if os.path.exists(p) and not os.path.isdir(p):
        raise ConfigError(f"out {out!r} is a file, not a directory; give the store directory")
    parent = p
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"out {out!r}: {parent} is a file, not a directory")
    base = os.path.join(out, exchange)
    try:
        os.makedirs(base, exist_ok=True)
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise ConfigError(f"out {out!r} is not writable: {exc.strerror or exc}") from exc
    return base


def remove_stale_tmp(directory: str) -> None:
    """Remove the temporary files a killed writer left in ``directory``."""
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        stale = name.startswith(".") and name.endswith(".tmp") and (
            ".parquet." in name or name.startswith(".leverage_tiers.json."))
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


@contextlib.contextmanager
def store_lock(directory: str) -> Iterator[None]:
    """Hold ``<directory>/.fetch.lock``; another fetch on the same store fails at once."""
    os.makedirs(directory, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fh = open(os.path.join(directory, ".fetch.lock"), "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise FetchError(f"another fetch is writing to {directory}; wait for it to finish") from exc
        yield
    finally:
        fh.close()
