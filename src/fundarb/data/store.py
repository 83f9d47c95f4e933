"""fundarb's own Parquet store: what ``fundarb fetch`` writes and :func:`load_store` reads.

Layout (``<SYMBOL_ID>`` is the ccxt perpetual symbol with ``/`` and ``:`` replaced by ``_``,
e.g. ``BTC/USDT:USDT`` → ``BTC_USDT_USDT``)::

    <root>/<exchange>/<SYMBOL_ID>/spot-<tf>.parquet   time, open, high, low, close, volume
    <root>/<exchange>/<SYMBOL_ID>/perp-<tf>.parquet   same, perpetual trade price
    <root>/<exchange>/<SYMBOL_ID>/mark-<tf>.parquet   same, mark price (volume NaN)
    <root>/<exchange>/<SYMBOL_ID>/funding.parquet     time, funding_rate   (one row per settled event)
    <root>/<exchange>/leverage_tiers.json             ccxt ``fetch_leverage_tiers`` format

``time`` is ``timestamp[ms, tz=UTC]``: the bar open for klines, the event time for funding. Rows are sorted
and unique. Every file carries ``fundarb`` key-value metadata (symbol, exchange, kind, timeframe). Files are
only ever replaced whole and atomically (written aside, flushed, renamed over), so a reader or a killed
writer never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fundarb.data.frames import SymbolFrames, funding_series, ohlcv_frame
from fundarb.data.market import MarketData
from fundarb.data.validate import CleanReport
from fundarb.errors import DataError, did_you_mean

__all__ = [
    "KINDS",
    "load_store",
    "read_table",
    "store_path",
    "store_symbols",
    "symbol_id",
    "write_json_atomic",
    "write_table",
]

KINDS = ("spot", "perp", "mark", "funding")


def symbol_id(symbol: str) -> str:
    """Directory name of a ccxt symbol: ``BTC/USDT:USDT`` → ``BTC_USDT_USDT``."""
    return symbol.replace("/", "_").replace(":", "_")


def store_path(root: str | os.PathLike[str], exchange: str, symbol: str, kind: str, timeframe: str = "1h") -> str:
    """Path of one file of the store."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = "funding.parquet" if kind == "funding" else f"{kind}-{timeframe}.parquet"
    return os.path.join(os.fspath(root), exchange, symbol_id(symbol), name)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_replace(path: str, write: object) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)  # type: ignore[operator]
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a store file is as readable as any other
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_table(path: str, df: pd.DataFrame, *, metadata: Mapping[str, str] | None = None) -> None:
    """Write a store table atomically.

    Parameters
    ----------
    path
        Destination (see :func:`store_path`).
    df
        Indexed by UTC time (named ``time``) with float columns, sorted and unique.
    metadata
        Extra key-values stored under the ``fundarb`` metadata key.
    """
    idx = pd.DatetimeIndex(df.index)
    if idx.tz is None:
        raise DataError("store tables need UTC timestamps", source=path, column="time")
    if not idx.is_monotonic_increasing or idx.has_duplicates:
        raise DataError("store tables must be sorted with unique times", source=path, column="time")
    out = df.copy()
    out.index = idx.tz_convert("UTC").as_unit("ms").rename("time")
    table = pa.Table.from_pandas(out.reset_index(), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"fundarb"] = json.dumps(dict(metadata or {})).encode()
    table = table.replace_schema_metadata(meta)
    _atomic_replace(path, lambda tmp: pq.write_table(table, tmp))


def write_json_atomic(path: str, obj: object) -> None:
    """Write JSON atomically (for leverage tiers and manifests)."""

    def _w(tmp: str) -> None:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)

    _atomic_replace(path, _w)


def read_table(path: str, kind: str, *, report: CleanReport | None = None) -> pd.DataFrame | pd.Series:
    """Read and validate one store file: an OHLCV frame, or the funding series for ``kind="funding"``."""
    from fundarb.data.readers import read_raw

    raw = read_raw(path)
    if kind == "funding":
        return funding_series(raw, source=path, time_column="time", rate_column="funding_rate", report=report)
    return ohlcv_frame(raw, source=path, time_column="time", report=report)


def store_symbols(root: str | os.PathLike[str], exchange: str) -> list[str]:
    """Symbol ids present in the store for ``exchange``."""
    base = os.path.join(os.fspath(root), exchange)
    if not os.path.isdir(base):
        return []
    return sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d)))


def load_store(
    root: str | os.PathLike[str],
    symbols: str | Iterable[str] | None = None,
    *,
    exchange: str = "binance",
    timeframe: str = "1h",
    bar: str | None = None,
) -> MarketData:
    """Load a fundarb Parquet store (as written by ``fundarb fetch``).

    Parameters
    ----------
    root
        The store directory.
    symbols
        ccxt symbols (``"BTC/USDT:USDT"``), symbol ids (``"BTC_USDT_USDT"``) or bases (``"BTC"``);
        None loads all.
    exchange
        Sub-directory of the exchange.
    timeframe
        Kline timeframe of the files.
    bar
        Bar size of the result (default ``timeframe``).
    """
    r = os.fspath(root)
    if not os.path.isdir(r):
        raise DataError("store directory not found", source=r)
    present = store_symbols(r, exchange)
    if not present:
        raise DataError(f"no symbols stored for exchange {exchange!r}", source=os.path.join(r, exchange))
    wanted = present if symbols is None else ([symbols] if isinstance(symbols, str) else list(symbols))
    frames = []
    for name in wanted:
        sid = symbol_id(name)
        if sid not in present:
            bases = {p.split("_")[0]: p for p in present}
            if name.upper() in bases:
                sid = bases[name.upper()]
            else:
                raise DataError(f"symbol {name!r} is not in the store{did_you_mean(sid, present)}; "
                                f"stored: {', '.join(present)}", source=os.path.join(r, exchange))
        paths = {k: os.path.join(r, exchange, sid, "funding.parquet" if k == "funding" else f"{k}-{timeframe}.parquet")
                 for k in KINDS}
        for k in ("spot", "perp", "funding"):
            if not os.path.exists(paths[k]):
                raise DataError(f"{k} file missing for {name!r}", source=paths[k])
        rep = CleanReport(source=r)
        mark = read_table(paths["mark"], "mark", report=rep) if os.path.exists(paths["mark"]) else None
        frames.append(SymbolFrames(
            symbol=name,
            spot=read_table(paths["spot"], "spot", report=rep),  # type: ignore[arg-type]
            perp=read_table(paths["perp"], "perp", report=rep),  # type: ignore[arg-type]
            mark=mark,  # type: ignore[arg-type]
            funding=read_table(paths["funding"], "funding", report=rep),  # type: ignore[arg-type]
            sources={k: v for k, v in paths.items() if os.path.exists(v)},
            report=rep.notes,
        ))
    return MarketData.from_frames(frames, timeframe=bar or timeframe, label=f"store:{r}/{exchange}")
