"""The store side of :mod:`fundarb.data.fetch`: one writer per store (a lock file), stale temporary files of a
killed writer, and reading back what a file holds and covers."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd

from fundarb.data.fetch_report import FetchError
from fundarb.errors import ConfigError, DataError

try:  # POSIX advisory lock; elsewhere the lock is skipped
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["coverage", "prepare_out", "read_existing", "remove_stale_tmp", "store_lock"]


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


def coverage(df: pd.DataFrame | None, meta: Mapping[str, Any], step: int) -> tuple[int, int] | None:
    """``[covered_from, covered_to)`` in ms from the metadata, else from the rows; None when nothing is held."""
    try:
        return int(meta["covered_from_ms"]), int(meta["covered_to_ms"])
    except (KeyError, TypeError, ValueError):
        pass
    if df is None or df.empty:
        return None
    t = df.index.asi8
    return int(t[0]), int(t[-1]) + step


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
