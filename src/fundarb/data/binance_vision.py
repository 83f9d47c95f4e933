"""Loader for the files Binance publishes for download (data.binance.vision), in Binance's own folder layout.

Expected tree under ``root`` (monthly and daily files may be mixed; ``.zip`` holding one CSV, or the CSV)::

    spot/{monthly,daily}/klines/<SYM>/<tf>/<SYM>-<tf>-<YYYY-MM[-DD]>.zip                 spot klines
    futures/um/{monthly,daily}/klines/<SYM>/<tf>/<SYM>-<tf>-<date>.zip                   USDT-M perp klines
    futures/um/{monthly,daily}/markPriceKlines/<SYM>/<tf>/<SYM>-<tf>-<date>.zip          mark-price klines
    futures/um/monthly/fundingRate/<SYM>/<SYM>-fundingRate-<YYYY-MM>.zip                 settled funding

Kline files have 12 columns (``open_time, open, high, low, close, volume, close_time, quote_volume, count,
taker_buy_volume, taker_buy_quote_volume, ignore``), with or without a header row; times are epoch
milliseconds, or microseconds (spot files since 2025) — told apart per file by their magnitude. Funding files
have a header ``calc_time, funding_interval_hours, last_funding_rate``. Each file is validated on its own,
then the files of a kind are merged in time order: a row that appears in two files (a daily file beside its
month) is kept once if identical, and is a DataError naming both files if not.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from fundarb.data.frames import SymbolFrames, funding_series, ohlcv_frame
from fundarb.data.market import MarketData
from fundarb.data.readers import read_raw
from fundarb.data.validate import CleanReport
from fundarb.errors import ConfigError, DataError, did_you_mean

__all__ = ["KLINE_COLUMNS", "binance_symbol", "load_binance_vision"]

KLINE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                 "taker_buy_volume", "taker_buy_quote_volume", "ignore"]

_DIRS = {
    "spot": ("spot", "klines"),
    "perp": ("futures/um", "klines"),
    "mark": ("futures/um", "markPriceKlines"),
}


def binance_symbol(symbol: str, quote: str = "USDT") -> str:
    """``BTC``, ``BTCUSDT`` or ``BTC/USDT:USDT`` → Binance's ``BTCUSDT``."""
    s = symbol.strip().upper()
    if "/" in s:
        base, rest = s.split("/", 1)
        return base + rest.split(":")[0]
    return s if s.endswith(quote) and len(s) > len(quote) else s + quote


def _files(root: str, market: str, kind: str, sym: str, timeframe: str | None) -> list[str]:
    found: list[str] = []
    for period in ("monthly", "daily"):
        base = os.path.join(root, market, period, kind, sym)
        if timeframe is not None:
            base = os.path.join(base, timeframe)
        for ext in ("zip", "csv"):
            found.extend(glob.glob(os.path.join(base, f"{sym}-*.{ext}")))
    # order by the date in the name, monthly before daily of the same month
    def key(p: str) -> tuple[str, int]:
        m = re.search(r"(\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)$", p)
        d = m.group(1) if m else p
        return (d[:7], len(d))

    return sorted(found, key=key)


def _merge(parts: list[tuple[str, pd.DataFrame | pd.Series]], report: CleanReport) -> pd.DataFrame | pd.Series:
    """Concatenate validated per-file tables in time order; drop identical overlaps, refuse conflicting ones."""
    if len(parts) == 1:
        return parts[0][1]
    tabs = [t for _, t in parts]
    src = np.concatenate([np.full(len(t), i) for i, (_, t) in enumerate(parts)])
    both = pd.concat(tabs)
    order = np.argsort(both.index.as_unit("ns").asi8, kind="stable")
    both = both.iloc[order]
    src = src[order]
    t = both.index.as_unit("ns").asi8
    dup = np.flatnonzero(np.diff(t) == 0) + 1
    if len(dup):
        vals = both.to_numpy(dtype=np.float64).reshape(len(both), -1)
        a, b = vals[dup - 1], vals[dup]
        same = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
        if not same.all():
            j = int(dup[np.flatnonzero(~same)[0]])
            raise DataError(f"the same time {both.index[j]} has different values in {parts[src[j - 1]][0]} and "
                            f"{parts[src[j]][0]}", source=parts[src[j]][0], value=both.index[j])
        keep = np.ones(len(both), dtype=bool)
        keep[dup] = False
        both = both[keep]
        report.duplicates_dropped += len(dup)
        report.notes.append(f"dropped {len(dup)} row(s) present in two files (identical)")
    return both


def load_binance_vision(
    path: str | os.PathLike[str],
    symbols: str | Iterable[str] | None = None,
    *,
    timeframe: str = "1h",
    bar: str | None = None,
) -> MarketData:
    """Load spot, perp, mark and funding files downloaded from data.binance.vision.

    Parameters
    ----------
    path
        The root of the tree described in the module docstring.
    symbols
        ``"BTCUSDT"``, ``"BTC"`` or ``"BTC/USDT:USDT"`` (a string or list); None loads every symbol with perp
        klines and funding files. Symbols keep the names given (Binance's for discovered ones).
    timeframe
        Kline interval of the files (a folder level and part of their names).
    bar
        Bar size of the result (default ``timeframe``).

    Raises
    ------
    DataError
        Missing folder or files, malformed rows (naming file, column, row), conflicting overlaps.
    """
    root = os.fspath(path)
    if not os.path.isdir(root):
        what = "is not a directory" if os.path.exists(root) else "not found"
        raise DataError(f"Binance download folder {what}", source=root)
    fund_root = os.path.join(root, "futures", "um", "monthly", "fundingRate")
    available = sorted(os.listdir(fund_root)) if os.path.isdir(fund_root) else []
    if symbols is None:
        names = available
        if not names:
            raise DataError("no symbols: futures/um/monthly/fundingRate/<SYMBOL>/ is empty or missing", source=root)
    else:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        if not names:
            raise ConfigError("symbols is empty; give at least one, or None for every symbol in the folder")
    frames = []
    for name in names:
        sym = binance_symbol(name)
        rep = CleanReport(source=root)
        tables: dict[str, pd.DataFrame | pd.Series | None] = {}
        sources: dict[str, str] = {}
        for kind, (market, folder) in _DIRS.items():
            files = _files(root, market, folder, sym, timeframe)
            if not files:
                if kind == "mark":
                    tables[kind] = None
                    continue
                hint = did_you_mean(sym, available) if available else ""
                raise DataError(f"no {kind} kline files for {sym}{hint} (expected {market}/monthly/{folder}/{sym}/"
                                f"{timeframe}/{sym}-{timeframe}-YYYY-MM.zip)", source=root)
            parts = []
            for f in files:
                raw = read_raw(f, names=KLINE_COLUMNS)
                if "open_time" not in raw.columns and len(raw.columns) == 12:
                    raw.columns = KLINE_COLUMNS
                parts.append((f, ohlcv_frame(raw, source=f, time_column="open_time", report=rep)))
            tables[kind] = _merge(parts, rep)  # type: ignore[assignment]
            sources[kind] = files[0] if len(files) == 1 else os.path.dirname(files[0])
        ffiles = _files(root, "futures/um", "fundingRate", sym, None)
        if not ffiles:
            raise DataError(f"no funding files for {sym}{did_you_mean(sym, available)} (expected "
                            f"futures/um/monthly/fundingRate/{sym}/{sym}-fundingRate-YYYY-MM.zip)", source=root)
        fparts = [(f, funding_series(read_raw(f, header=True), source=f, time_column="calc_time",
                                     rate_column="last_funding_rate", report=rep)) for f in ffiles]
        sources["funding"] = os.path.dirname(ffiles[0])
        frames.append(SymbolFrames(symbol=name, spot=tables["spot"], perp=tables["perp"],  # type: ignore[arg-type]
                                   mark=tables["mark"], funding=_merge(fparts, rep),  # type: ignore[arg-type]
                                   sources=sources, report=rep.notes))
    return MarketData.from_frames(frames, timeframe=bar or timeframe, label=f"binance-vision:{root}")
