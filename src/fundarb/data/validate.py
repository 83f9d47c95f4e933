"""Checks shared by every loader.

Each check takes the raw table as read from one file and the file's name (``source``), and raises
:class:`fundarb.DataError` naming the file, the column and the first offending row (1-based, header
excluded). Nothing is repaired silently: identical duplicate rows are the one thing dropped, and they
are counted in the returned report.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fundarb.errors import DataError, DataWarning

__all__ = [
    "FUNDING_PLAUSIBLE_CAP",
    "CleanReport",
    "check_columns",
    "check_funding_plausible",
    "check_not_empty",
    "check_prices",
    "clean_time_index",
    "require_file",
    "to_float",
    "to_utc",
]

#: Largest funding rate per event considered plausible (Binance caps most symbols at 2-3% per event).
FUNDING_PLAUSIBLE_CAP = 0.03


@dataclass
class CleanReport:
    """What :func:`clean_time_index` did to a table."""

    source: str
    rows_in: int = 0
    duplicates_dropped: int = 0
    notes: list[str] = field(default_factory=list)


def require_file(path: str | os.PathLike[str], what: str = "file") -> str:
    """Raise DataError if ``path`` does not exist or is empty; return it as a string."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DataError(f"{what} not found", source=p)
    if os.path.isfile(p) and os.path.getsize(p) == 0:
        raise DataError(f"{what} is empty (0 bytes)", source=p)
    return p


def check_not_empty(df: pd.DataFrame, source: str) -> None:
    """Raise DataError if the table has no data rows."""
    if len(df) == 0:
        raise DataError("file has no data rows", source=source)


def check_columns(df: pd.DataFrame, required: list[str], source: str) -> None:
    """Raise DataError naming the first required column that is absent."""
    from fundarb.errors import did_you_mean

    for col in required:
        if col not in df.columns:
            raise DataError(
                f"missing column{did_you_mean(col, df.columns)}; columns present: {list(map(str, df.columns))}",
                source=source,
                column=col,
            )


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def to_float(
    values: pd.Series,
    *,
    source: str,
    column: str,
    percent: bool = False,
    row_offset: int = 1,
) -> np.ndarray:
    """Convert a column to float64, failing on the first value that is not a number.

    Parameters
    ----------
    values
        The raw column.
    source, column
        Where it came from, for messages.
    percent
        If True, strings such as ``"0.0100%"`` are converted to fractions (``0.0001``) and plain numbers are
        divided by 100. If False, a value with a ``%`` sign is an error: the caller must say that the file
        holds percents.
    row_offset
        Added to the 0-based position to give the row number in messages (1 = first data row).
    """
    raw = values.to_numpy()
    if raw.dtype.kind in "fiub":
        out = raw.astype(np.float64)
        return out / 100.0 if percent else out
    text = pd.Series(raw, dtype="object").astype(str).str.strip()
    has_pct = text.str.endswith("%").to_numpy()
    if has_pct.any() and not percent:
        i = _first_bad(has_pct)
        raise DataError(
            f"value '{text.iloc[i]}' is a percent string; pass percent=True if the file holds percents",
            source=source, column=column, row=i + row_offset,
        )
    cleaned = text.str.rstrip("%").str.strip()
    num = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64)
    missing = pd.isna(values).to_numpy() | cleaned.isin(["", "nan", "NaN", "None", "<NA>"]).to_numpy()
    bad = np.isnan(num) & ~missing
    if bad.any():
        i = _first_bad(bad)
        raise DataError(f"value '{text.iloc[i]}' is not a number", source=source, column=column, row=i + row_offset)
    return num / 100.0 if percent else num


def check_prices(prices: np.ndarray, *, source: str, column: str, times: pd.DatetimeIndex | None = None) -> None:
    """Raise DataError at the first NaN or non-positive price."""
    bad = ~(np.isfinite(prices) & (prices > 0))
    if bad.any():
        i = _first_bad(bad)
        what = ("missing (NaN)" if np.isnan(prices[i]) else f"not positive ({prices[i]!r})" if prices[i] <= 0
                else f"not finite ({prices[i]!r})")
        raise DataError(f"price is {what}", source=source, column=column, row=i + 1,
                        value=None if times is None else times[i])


_EPOCH_UNITS = (("s", 1e11), ("ms", 1e14), ("us", 1e17), ("ns", np.inf))


def to_utc(
    values: pd.Series | np.ndarray,
    *,
    source: str,
    column: str,
    tz: str | None = None,
) -> pd.DatetimeIndex:
    """Parse timestamps to a UTC DatetimeIndex.

    Integers are epoch times whose unit (s, ms, us, ns) is inferred from their magnitude; strings and
    datetimes are parsed. Naive times need ``tz`` (the time zone they are written in, e.g. ``"UTC"`` or
    ``"Etc/GMT-3"`` for UTC+3); guessing it would be a silent error.
    """
    ser = pd.Series(values)
    if ser.dtype.kind in "iuf":
        arr = ser.to_numpy(dtype=np.float64)
        if np.isnan(arr).any():
            i = _first_bad(np.isnan(arr))
            raise DataError("timestamp is missing", source=source, column=column, row=i + 1)
        units = np.searchsorted([lim for _, lim in _EPOCH_UNITS[:-1]], np.abs(arr), side="right")
        if len(units) and (units != units[0]).any():
            i = _first_bad(units != units[0])
            names = [u for u, _ in _EPOCH_UNITS]
            raise DataError(f"epoch timestamp {ser.iloc[i]} is in {names[units[i]]}, but row 1 is in "
                            f"{names[units[0]]}; one unit per file", source=source, column=column, row=i + 1)
        unit = _EPOCH_UNITS[int(units[0])][0] if len(units) else "ms"
        idx = pd.DatetimeIndex(pd.to_datetime(ser.astype(np.int64), unit=unit, utc=True))
        if tz not in (None, "UTC", "utc"):
            raise DataError(f"epoch timestamps are UTC by definition; tz={tz!r} does not apply",
                            source=source, column=column)
        return idx
    if ser.dtype.kind == "M" and getattr(ser.dt, "tz", None) is not None:
        return pd.DatetimeIndex(ser).tz_convert("UTC")
    try:
        parsed = pd.to_datetime(ser, utc=False, format="mixed") if ser.dtype.kind != "M" else ser
    except (ValueError, TypeError):
        coerced = pd.to_datetime(ser, errors="coerce", format="mixed", utc=True)
        bad = coerced.isna().to_numpy() & ser.notna().to_numpy()
        if bad.any():
            i = _first_bad(bad)
            raise DataError(f"value '{ser.iloc[i]}' is not a timestamp", source=source, column=column,
                            row=i + 1) from None
        # every value parses, but with different UTC offsets: fine when each carries its own offset
        text = ser.astype(str)
        has_zone = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})\s*$", regex=True).to_numpy()
        if not has_zone.all():
            i = _first_bad(~has_zone)
            raise DataError(f"value '{ser.iloc[i]}' has no UTC offset while others do", source=source,
                            column=column, row=i + 1) from None
        parsed = coerced
    if parsed.isna().any():
        i = _first_bad(parsed.isna().to_numpy())
        raise DataError("timestamp is missing", source=source, column=column, row=i + 1)
    idx = pd.DatetimeIndex(parsed)
    if idx.tz is None:
        if tz is None:
            raise DataError(
                "timestamps are naive (no time zone); pass tz= with the zone they are written in "
                "(e.g. tz='UTC', or tz='Etc/GMT-3' for UTC+3)",
                source=source, column=column, row=1, value=idx[0],
            )
        idx = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        if idx.isna().any():
            i = _first_bad(np.asarray(idx.isna()))
            raise DataError(f"local time '{ser.iloc[i]}' is ambiguous or does not exist in {tz} (a clock change); "
                            "give the data in UTC or a fixed-offset zone", source=source, column=column, row=i + 1)
    return idx.tz_convert("UTC")


def clean_time_index(
    df: pd.DataFrame,
    *,
    source: str,
    time_column: str = "time",
    label: str | None = None,
    report: CleanReport | None = None,
) -> pd.DataFrame:
    """Index a table by its UTC time column, after checking order and duplicates.

    Identical duplicate rows are dropped and counted in ``report``; duplicate timestamps with different
    values, and rows out of time order, raise DataError naming the first such row (and the time column as the
    file calls it, ``label``).
    """
    label = label or time_column
    times = pd.DatetimeIndex(df[time_column])
    vals = df.drop(columns=[time_column])
    tv = times.asi8
    back = np.flatnonzero(np.diff(tv) < 0)
    if len(back):
        i = int(back[0]) + 1
        raise DataError(f"rows are not in time order: {times[i]} comes after {times[i - 1]}",
                        source=source, column=label, row=i + 1, value=times[i])
    dup = np.flatnonzero(np.diff(tv) == 0) + 1
    if len(dup):
        a = vals.iloc[dup - 1].to_numpy(dtype=np.float64)
        b = vals.iloc[dup].to_numpy(dtype=np.float64)
        same = ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)
        if not same.all():
            j = int(dup[np.flatnonzero(~same)[0]])
            raise DataError(f"duplicate timestamp {times[j]} with conflicting values",
                            source=source, column=label, row=j + 1, value=times[j])
        keep = np.ones(len(df), dtype=bool)
        keep[dup] = False
        vals = vals[keep]
        times = times[keep]
        if report is not None:
            report.duplicates_dropped += len(dup)
            report.notes.append(f"{source}: dropped {len(dup)} identical duplicate row(s)")
    out = vals.copy()
    out.index = times.rename("time")
    return out


def check_funding_plausible(rates: pd.Series, *, source: str, column: str = "funding_rate",
                            cap: float = FUNDING_PLAUSIBLE_CAP) -> None:
    """Warn (DataWarning) when a funding rate per event exceeds ``cap`` in absolute value.

    Such a value is usually a percent read as a fraction; it is kept, since capped spikes are real.
    """
    arr = rates.to_numpy(dtype=np.float64)
    bad = np.abs(arr) > cap
    if bad.any():
        i = _first_bad(bad)
        warnings.warn(
            f"{source}: column '{column}', row {i + 1} ({rates.index[i]}): rate {arr[i]:.6g} exceeds the "
            f"plausible cap {cap:g} per event ({int(bad.sum())} such value(s)); is the file in percent?",
            DataWarning,
            stacklevel=3,
        )
