"""Loading any CSV / Parquet / feather table with an explicit column mapping and time zone.

For files no dedicated loader knows — other venues' funding histories, exports from notebooks, a broker's
candles. The caller names the columns and the time zone of naive timestamps; nothing is guessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from fundarb.data.frames import SymbolFrames, funding_series, ohlcv_frame
from fundarb.data.market import MarketData
from fundarb.data.readers import read_raw
from fundarb.data.validate import CleanReport, check_tz
from fundarb.errors import ConfigError, DataError, did_you_mean

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
    where: Mapping[str, object] | None = None,
    dayfirst: bool | None = None,
    format: str | None = None,
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
        Time zone in which naive timestamps are written: an IANA name (``"UTC"``, ``"Asia/Tokyo"``, or
        ``"Etc/GMT-3"`` for a fixed UTC+3 — the ``Etc/GMT`` names invert the sign) or a ``datetime.tzinfo``;
        None makes naive timestamps an error. Ignored for timestamps that carry their own zone. Checked before
        the file is read. At a fall-back clock change the repeated hour is resolved by the rows' order when it
        can be; otherwise it is an error.
    kind
        ``"funding"`` (returns a Series of rates by event time) or ``"spot"``, ``"perp"``, ``"mark"`` (returns an
        OHLCV DataFrame by bar-open time).
    percent
        Funding only: the file holds percents (``0.01`` or ``"0.0100%"`` meaning 0.0001).
    header
        CSV only: whether the first row is a header (None: detect).
    report
        Collects dropped identical duplicates.
    where
        Keep only rows whose columns equal these values, e.g. ``{"Symbol": "BTC-USDT"}``, for a file that
        holds several symbols or venues (required for such a file). Row numbers in messages then count the
        kept rows only, as the message's source says.
    dayfirst, format
        Dates such as ``01/02/2024`` are never guessed: say ``dayfirst=True`` (1 February) or ``False``
        (2 January), or give a ``format`` (``"%d/%m/%Y %H:%M"``).

    Raises
    ------
    DataError
        Naming the file, column and first offending row.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}{did_you_mean(kind, KINDS)}")
    if "time" not in columns:
        raise ConfigError("columns must name the 'time' column, e.g. columns={'time': 'Date', ...}")
    if kind == "funding" and "funding_rate" not in columns:
        raise ConfigError("columns must name the 'funding_rate' column for kind='funding'")
    src = os.fspath(path)
    tz = check_tz(tz, source=src)  # type: ignore[assignment]
    raw = read_raw(src, header=header)
    raw, src = _filter_rows(raw, src, where, used=set(columns.values()))
    times = {"dayfirst": dayfirst, "format": format}
    if kind == "funding":
        return funding_series(raw, source=src, time_column=columns["time"], rate_column=columns["funding_rate"],
                              tz=tz, percent=percent, report=report, **times)  # type: ignore[arg-type]
    unknown = [c for c in columns if c not in ("time", "open", "high", "low", "close", "volume")]
    if unknown:
        raise ConfigError(f"unknown canonical column {unknown[0]!r}"
                          f"{did_you_mean(unknown[0], ['time', 'open', 'high', 'low', 'close', 'volume'])}")
    mapping = {k: v for k, v in columns.items() if k != "time"}
    return ohlcv_frame(raw, source=src, time_column=columns["time"], columns=mapping, tz=tz, report=report,
                       **times)  # type: ignore[arg-type]


_KEY_COLUMN = re.compile(r"symbol|pair|ticker|instrument|market|venue|exchange|coin|asset|contract", re.IGNORECASE)


def _filter_rows(raw: pd.DataFrame, src: str, where: Mapping[str, object] | None,
                 used: set[str]) -> tuple[pd.DataFrame, str]:
    """Apply ``where``; refuse a file that mixes several symbols or venues when no ``where`` picks one."""
    if where:
        if not isinstance(where, Mapping):
            raise ConfigError(f"where must be a mapping column → value, got {where!r}")
        keep = np.ones(len(raw), dtype=bool)
        for col, value in where.items():
            if col not in raw.columns:
                raise DataError(f"where= names a column the file does not have{did_you_mean(col, raw.columns)}; "
                                f"columns present: {list(map(str, raw.columns))}", source=src, column=str(col))
            keep &= (raw[col].astype(str).str.strip() == str(value).strip()).to_numpy()
            if not keep.any():
                seen = list(dict.fromkeys(raw[col].astype(str).str.strip()))[:8]
                raise DataError(f"no row has {col} == {value!r}{did_you_mean(str(value), seen)}; values present: "
                                f"{seen}", source=src, column=str(col))
        label = ", ".join(f"{k} == {v!r}" for k, v in where.items())
        return raw[keep].reset_index(drop=True), f"{src} [rows where {label}]"
    for col in raw.columns:
        if col in used or raw[col].dtype.kind not in "OSU" or not _KEY_COLUMN.search(str(col)):
            continue
        seen = list(dict.fromkeys(raw[col].dropna().astype(str).str.strip()))
        if len(seen) > 1:
            raise DataError(f"several symbols in one file ({col} holds {seen[:5]}{' …' if len(seen) > 5 else ''}): "
                            f"pass where={{{str(col)!r}: {seen[0]!r}}} to load one", source=src, column=str(col))
    return raw, src


def load_venue_funding(path: str | os.PathLike[str], *, tz: str | None, where: Mapping[str, object] | None = None,
                       percent: bool = False) -> pd.Series:
    """Read a ``Symbol,Date,Funding Rate`` venue history (the seven-venue files under ``$FUNDARB_DATA/exchanges``).

    Those files' ``Date`` labels are naive, and the zone must be given:

    ========================================  ===================
    venue                                     ``tz``
    ========================================  ===================
    binance, bybit, htx, kucoin, mexc         ``"Etc/GMT-3"`` (UTC+3)
    gate, dydx                                ``"UTC"``
    ========================================  ===================

    (dydx is hourly and spans exactly its file's window, 2022-01-01 00:00 → 2023-12-31 23:00, only when read as
    UTC.) A file holding several symbols needs ``where={"Symbol": "BTC-USDT"}``.
    """
    out = load_table(path, columns={"time": "Date", "funding_rate": "Funding Rate"}, tz=tz, kind="funding",
                     where=where, percent=percent)
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
