"""Loading any CSV / Parquet / feather table with an explicit column mapping and time zone.

For files no dedicated loader knows — other venues' funding histories, exports from notebooks, a broker's
candles. The caller names the columns and the time zone of naive timestamps; nothing is guessed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pandas as pd

from fundarb.data.frames import SymbolFrames, funding_series, ohlcv_frame
from fundarb.data.market import MarketData
from fundarb.data.readers import read_raw
from fundarb.data.validate import CleanReport
from fundarb.errors import ConfigError, did_you_mean

__all__ = ["load_table", "load_venue_funding", "market_from_tables"]

KINDS = ("funding", "spot", "perp", "mark")


def load_table(
    path: str | os.PathLike[str],
    *,
    columns: Mapping[str, str],
    tz: str | None,
    kind: str = "funding",
    percent: bool = False,
    header: bool | None = None,
    report: CleanReport | None = None,
) -> pd.Series | pd.DataFrame:
    """Read one table and validate it as funding events or OHLCV bars.

    Parameters
    ----------
    path
        A CSV (optionally .gz or in a .zip), Parquet or feather file.
    columns
        Canonical name → column in the file: ``time`` and ``funding_rate`` for funding; ``time``, ``open``,
        ``high``, ``low``, ``close`` and optionally ``volume`` for prices.
    tz
        Time zone in which naive timestamps are written (``"UTC"``, ``"Etc/GMT-3"`` for UTC+3, ``"Asia/Tokyo"``);
        None makes naive timestamps an error. Ignored for timestamps that carry their own zone.
    kind
        ``"funding"`` (returns a Series of rates by event time) or ``"spot"``, ``"perp"``, ``"mark"`` (returns an
        OHLCV DataFrame by bar-open time).
    percent
        Funding only: the file holds percents (``0.01`` or ``"0.0100%"`` meaning 0.0001).
    header
        CSV only: whether the first row is a header (None: detect).
    report
        Collects dropped identical duplicates.

    Raises
    ------
    DataError
        Naming the file, column and first offending row.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}{did_you_mean(kind, KINDS)}")
    if "time" not in columns:
        raise ConfigError("columns must name the 'time' column, e.g. columns={'time': 'Date', ...}")
    src = os.fspath(path)
    raw = read_raw(src, header=header)
    if kind == "funding":
        if "funding_rate" not in columns:
            raise ConfigError("columns must name the 'funding_rate' column for kind='funding'")
        return funding_series(raw, source=src, time_column=columns["time"], rate_column=columns["funding_rate"],
                              tz=tz, percent=percent, report=report)
    unknown = [c for c in columns if c not in ("time", "open", "high", "low", "close", "volume")]
    if unknown:
        raise ConfigError(f"unknown canonical column {unknown[0]!r}"
                          f"{did_you_mean(unknown[0], ['time', 'open', 'high', 'low', 'close', 'volume'])}")
    mapping = {k: v for k, v in columns.items() if k != "time"}
    return ohlcv_frame(raw, source=src, time_column=columns["time"], columns=mapping, tz=tz, report=report)


def load_venue_funding(path: str | os.PathLike[str], *, tz: str | None) -> pd.Series:
    """Read a ``Symbol,Date,Funding Rate`` venue history (as in ``../shared/data/exchanges``).

    Those files' ``Date`` labels are naive local times — UTC+3 (``tz="Etc/GMT-3"``) for every venue there except
    gate (``tz="UTC"``); the zone must be given.
    """
    out = load_table(path, columns={"time": "Date", "funding_rate": "Funding Rate"}, tz=tz, kind="funding")
    assert isinstance(out, pd.Series)
    return out


def market_from_tables(
    *,
    symbol: str,
    spot: pd.DataFrame,
    perp: pd.DataFrame,
    funding: pd.Series,
    mark: pd.DataFrame | None = None,
    borrow: pd.Series | None = None,
    timeframe: str = "1h",
    label: str = "tables",
) -> MarketData:
    """A one-symbol MarketData from tables returned by :func:`load_table`."""
    return MarketData.from_frames([SymbolFrames(symbol=symbol, spot=spot, perp=perp, funding=funding, mark=mark,
                                                borrow=borrow)], timeframe=timeframe, label=label)
