"""Loader for a freqtrade ``user_data/data/<exchange>`` directory (``freqtrade download-data`` layout).

Layout (``<tf>`` is the storage timeframe, ``<ext>`` one of feather, parquet, json, jsongz)::

    <dir>/<BASE>_<QUOTE>-<tf>.<ext>                              spot klines
    <dir>/futures/<BASE>_<QUOTE>_<SETTLE>-<tf>-futures.<ext>     perpetual klines (trade price)
    <dir>/futures/<BASE>_<QUOTE>_<SETTLE>-<tf>-mark.<ext>        mark-price klines
    <dir>/futures/<BASE>_<QUOTE>_<SETTLE>-<tf>-funding_rate.<ext>  settled funding; the rate is in ``open``
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable

from fundarb.data.frames import SymbolFrames, funding_series, ohlcv_frame
from fundarb.data.market import MarketData
from fundarb.data.readers import read_raw
from fundarb.data.validate import CleanReport
from fundarb.errors import ConfigError, DataError, did_you_mean

__all__ = ["freqtrade_symbols", "load_freqtrade"]

_EXTS = ("feather", "parquet", "json", "jsongz", "json.gz")


def _parse_symbol(symbol: str, quote: str) -> tuple[str, str, str]:
    """``BTC/USDT:USDT`` or ``BTC`` → (base, quote, settle)."""
    m = re.fullmatch(r"([A-Za-z0-9]+)(?:/([A-Za-z0-9]+)(?::([A-Za-z0-9]+))?)?", symbol.strip())
    if not m:
        raise DataError(f"cannot read symbol {symbol!r}; write it as 'BTC' or 'BTC/USDT:USDT'")
    base, q, settle = m.group(1).upper(), (m.group(2) or quote).upper(), (m.group(3) or m.group(2) or quote).upper()
    return base, q, settle


def _find(pattern_base: str) -> str | None:
    for ext in _EXTS:
        hits = sorted(glob.glob(f"{pattern_base}.{ext}"))
        if hits:
            return hits[0]
    return None


def freqtrade_symbols(path: str | os.PathLike[str], *, timeframe: str = "1h", quote: str = "USDT") -> list[str]:
    """Bases that have spot, perp and funding files in a freqtrade data directory."""
    root = os.fspath(path)
    found = []
    for f in sorted(glob.glob(os.path.join(root, "futures", f"*_{quote}_{quote}-{timeframe}-futures.*"))):
        base = os.path.basename(f).split("_")[0]
        if _find(os.path.join(root, f"{base}_{quote}-{timeframe}")) and _find(
                os.path.join(root, "futures", f"{base}_{quote}_{quote}-*-funding_rate")):
            found.append(base)
    return found


def load_freqtrade(
    path: str | os.PathLike[str],
    symbols: str | Iterable[str] | None = None,
    timeframe: str = "1h",
    *,
    bar: str | None = None,
    quote: str = "USDT",
) -> MarketData:
    """Load spot, perp, mark and funding data from a freqtrade data directory.

    Parameters
    ----------
    path
        The ``user_data/data/<exchange>`` directory (one; a list of several is refused, since their symbols
        could overlap — load each on its own).
    symbols
        ``"BTC"`` or ``"BTC/USDT:USDT"`` style names (a string or a list); None loads every symbol that has
        spot, perp and funding files. Symbols keep the names given.
    timeframe
        Storage timeframe of the kline files (part of their names).
    bar
        Bar size of the result (default: ``timeframe``); finer data is resampled.
    quote
        Quote currency assumed for bare names like ``"BTC"``.

    Returns
    -------
    MarketData

    Raises
    ------
    DataError
        A directory, file, column or value is missing or invalid; a symbol is not there.
    """
    if isinstance(path, list | tuple | set):
        paths = list(path)
        if len(paths) != 1:
            raise ConfigError(f"load_freqtrade takes one data directory, got {len(paths)}: {paths}; load each "
                              "with its own call")
        path = paths[0]
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"load_freqtrade takes a directory path, got {type(path).__name__}")
    root = os.fspath(path)
    if not os.path.isdir(root):
        what = "is not a directory" if os.path.exists(root) else "not found"
        raise DataError(f"freqtrade data directory {what}", source=root)
    available = freqtrade_symbols(root, timeframe=timeframe, quote=quote)
    if symbols is None:
        names = available
        if not names:
            raise DataError(f"no symbol with spot, futures and funding_rate files at timeframe {timeframe}",
                            source=root)
    else:
        if not isinstance(symbols, str | Iterable):
            raise ConfigError(f"symbols must be a symbol, a list of symbols or None, got {type(symbols).__name__}")
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        bad = [n for n in names if not isinstance(n, str)]
        if bad:
            raise ConfigError(f"symbols must be names (str), got {bad[0]!r}")
        if not names:
            raise ConfigError(f"symbols is empty; give at least one, or None for all ({', '.join(available)})")
    frames = []
    for name in names:
        base, q, settle = _parse_symbol(name, quote)
        spot = _find(os.path.join(root, f"{base}_{q}-{timeframe}"))
        fut = os.path.join(root, "futures", f"{base}_{q}_{settle}-{timeframe}")
        perp = _find(f"{fut}-futures")
        mark = _find(f"{fut}-mark")
        funding = _find(os.path.join(root, "futures", f"{base}_{q}_{settle}-*-funding_rate"))
        if spot is None and perp is None and funding is None:
            raise DataError(f"symbol {name!r} is not in this directory{did_you_mean(base, available)}; "
                            f"available: {', '.join(available) or 'none'}", source=root)
        for kind, f, expect in (("spot", spot, f"{base}_{q}-{timeframe}.<ext>"),
                                ("perp", perp, f"futures/{base}_{q}_{settle}-{timeframe}-futures.<ext>"),
                                ("funding", funding, f"futures/{base}_{q}_{settle}-<tf>-funding_rate.<ext>")):
            if f is None:
                raise DataError(f"{kind} file for {name!r} not found (expected {expect})", source=root)
        assert spot and perp and funding
        rep = CleanReport(source=root)
        sources = {"spot": spot, "perp": perp, "funding": funding}
        spot_df = ohlcv_frame(read_raw(spot), source=spot, time_column="date", report=rep)
        perp_df = ohlcv_frame(read_raw(perp), source=perp, time_column="date", report=rep)
        mark_df = None
        if mark is not None:
            sources["mark"] = mark
            mark_df = ohlcv_frame(read_raw(mark), source=mark, time_column="date", report=rep)
        fund = funding_series(read_raw(funding), source=funding, time_column="date", rate_column="open", report=rep)
        frames.append(SymbolFrames(symbol=name, spot=spot_df, perp=perp_df, mark=mark_df, funding=fund,
                                   sources=sources, report=rep.notes))
    return MarketData.from_frames(frames, timeframe=bar or timeframe, label=f"freqtrade:{root}")
