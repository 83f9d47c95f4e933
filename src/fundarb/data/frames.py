"""The raw per-symbol tables every loader produces, before alignment into :class:`MarketData`.

A loader's job ends with one :class:`SymbolFrames` per symbol: OHLCV tables indexed by bar-open time
(UTC) and the funding events indexed by their own timestamps. :meth:`MarketData.from_frames` aligns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fundarb.data.validate import (
    CleanReport,
    check_columns,
    check_funding_plausible,
    check_not_empty,
    check_ohlc,
    check_prices,
    check_volume,
    clean_time_index,
    to_float,
    to_utc,
)

__all__ = ["OHLCV", "PERCENT_LIKE_MEDIAN", "SymbolFrames", "funding_series", "ohlcv_frame"]

OHLCV = ("open", "high", "low", "close", "volume")
#: A funding file whose median |rate| per event exceeds this (1%) is read as percents given as fractions.
PERCENT_LIKE_MEDIAN = 0.01


@dataclass(frozen=True)
class SymbolFrames:
    """One symbol's raw data.

    Attributes
    ----------
    symbol
        Display name, e.g. ``"BTC"`` or ``"BTC/USDT:USDT"``.
    spot, perp
        OHLCV tables (columns ``open, high, low, close, volume``), UTC bar-open index named ``time``.
    mark
        Mark-price OHLC table, or None (the perp prices stand in, with a warning).
    funding
        Settled funding rates (fractions), indexed by event time (UTC).
    borrow
        Hourly borrow rate of the base asset indexed by time, or None (the cost config's constant).
    sources
        File each table came from, by kind, for messages.
    report
        Cleaning notes (dropped duplicates).
    """

    symbol: str
    spot: pd.DataFrame
    perp: pd.DataFrame
    funding: pd.Series
    mark: pd.DataFrame | None = None
    borrow: pd.Series | None = None
    sources: dict[str, str] = field(default_factory=dict)
    report: list[str] = field(default_factory=list)


def ohlcv_frame(
    raw: pd.DataFrame,
    *,
    source: str,
    time_column: str,
    columns: dict[str, str] | None = None,
    tz: str | None = "UTC",
    need_volume: bool = False,
    report: CleanReport | None = None,
    dayfirst: bool | None = None,
    format: str | None = None,
) -> pd.DataFrame:
    """Validate a raw price table and return it as a canonical OHLCV frame.

    Parameters
    ----------
    raw
        The table as read from the file.
    source
        The file name, for messages.
    time_column
        Name of the time column in ``raw``.
    columns
        Mapping canonical name (``open`` …) → column name in ``raw``; identity by default.
    tz
        Time zone of naive timestamps (None: naive timestamps are an error).
    need_volume
        Whether a missing volume column is an error (otherwise it is NaN).
    report
        Collects counts of dropped duplicates.
    dayfirst, format
        How to read ``dd/mm`` versus ``mm/dd`` dates (see :func:`~fundarb.data.validate.to_utc`).
    """
    columns = columns or {}
    check_not_empty(raw, source)
    names = {k: columns.get(k, k) for k in OHLCV}
    required = [time_column] + [names[k] for k in OHLCV[:4]] + ([names["volume"]] if need_volume else [])
    check_columns(raw, required, source)
    out = pd.DataFrame({"time": to_utc(raw[time_column], source=source, column=time_column, tz=tz,
                                       dayfirst=dayfirst, format=format)})
    for k in OHLCV:
        col = names[k]
        if col in raw.columns:
            out[k] = to_float(raw[col], source=source, column=col)
        else:
            out[k] = np.nan
    times = pd.DatetimeIndex(out["time"])
    for k in OHLCV[:4]:
        check_prices(out[k].to_numpy(), source=source, column=names[k], times=times)
    check_ohlc(out, source=source, names=names)
    if names["volume"] in raw.columns:
        check_volume(out["volume"].to_numpy(), source=source, column=names["volume"], times=times)
    return clean_time_index(out, source=source, label=time_column, report=report)


def funding_series(
    raw: pd.DataFrame,
    *,
    source: str,
    time_column: str,
    rate_column: str,
    tz: str | None = "UTC",
    percent: bool = False,
    report: CleanReport | None = None,
    dayfirst: bool | None = None,
    format: str | None = None,
) -> pd.Series:
    """Validate a raw funding table and return the rates indexed by event time (UTC).

    A median absolute rate above 1% per event is an error: real funding is near 0.01%, so such a file almost
    surely holds percents (``percent=True``).
    """
    check_not_empty(raw, source)
    check_columns(raw, [time_column, rate_column], source)
    out = pd.DataFrame({
        "time": to_utc(raw[time_column], source=source, column=time_column, tz=tz, dayfirst=dayfirst,
                       format=format),
        "funding_rate": to_float(raw[rate_column], source=source, column=rate_column, percent=percent),
    })
    rates = out["funding_rate"].to_numpy()
    nan = ~np.isfinite(rates)
    if nan.any():
        from fundarb.errors import DataError

        i = int(np.flatnonzero(nan)[0])
        what = "missing" if np.isnan(rates[i]) else f"not finite ({rates[i]!r})"
        raise DataError(f"funding rate is {what}", source=source, column=rate_column, row=i + 1,
                        value=out["time"].iloc[i])
    clean = clean_time_index(out, source=source, label=time_column, report=report)["funding_rate"]
    median = float(np.median(np.abs(clean.to_numpy()))) if len(clean) else 0.0
    if median > PERCENT_LIKE_MEDIAN:
        from fundarb.errors import DataError

        hint = ("pass percent=True if the file holds percents" if not percent else
                "even read as percents (percent=True) that is implausible")
        raise DataError(f"the median |funding rate| is {median:.4g} per event ({median:.2%}); real rates are "
                        f"near 0.0001 (0.01%): {hint}", source=source, column=rate_column)
    check_funding_plausible(clean, source=source, column=rate_column)
    return clean
