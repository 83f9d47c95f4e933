"""Checks shared by every loader.

Each check takes the raw table as read from one file and the file's name (``source``), and raises
:class:`fundarb.DataError` naming the file, the column and the first offending row (1-based, header
excluded). Nothing is repaired silently: identical duplicate rows are the one thing dropped, and they
are counted in the returned report.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import warnings
import zoneinfo
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
    "check_ohlc",
    "check_prices",
    "check_tz",
    "check_volume",
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
    """Raise DataError if ``path`` does not exist, is not a regular file (a folder, a FIFO, a device) or is
    empty; return it as a string. Reading a FIFO would block forever, so it is refused before opening."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DataError(f"{what} not found", source=p)
    mode = os.stat(p).st_mode
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a device or socket")
        raise DataError(f"{what} is {kind}, not a regular file", source=p)
    if os.path.getsize(p) == 0:
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
    if raw.dtype.kind == "b" or (raw.dtype.kind == "O" and len(raw) and any(isinstance(v, bool | np.bool_)
                                                                         for v in raw[:1000])):
        i = _first_bad(np.array([isinstance(v, bool | np.bool_) for v in raw]))
        raise DataError(f"value {bool(raw[i])} is a boolean (True/False), not a number", source=source,
                        column=column, row=i + row_offset)
    if raw.dtype.kind in "fiu":
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


def check_ohlc(frame: pd.DataFrame, *, source: str, names: dict[str, str]) -> None:
    """Raise DataError at the first bar whose low is above its open or close, or whose high is below them.

    ``frame`` has columns ``open, high, low, close`` (floats, already checked positive) and a ``time`` column;
    ``names`` maps them to the file's own column names for the message.
    """
    o, h, lo, c = (frame[k].to_numpy(dtype=np.float64) for k in ("open", "high", "low", "close"))
    low_bad = lo > np.minimum(o, c)
    high_bad = h < np.maximum(o, c)
    bad = low_bad | high_bad
    if bad.any():
        i = _first_bad(bad)
        col = "low" if low_bad[i] else "high"
        raise DataError(f"bar is inconsistent: open {o[i]:g}, high {h[i]:g}, low {lo[i]:g}, close {c[i]:g} (needs "
                        f"low ≤ open, close ≤ high; {int(bad.sum())} such bar(s))", source=source,
                        column=names.get(col, col), row=i + 1, value=frame["time"].iloc[i])


def check_volume(volume: np.ndarray, *, source: str, column: str, times: pd.DatetimeIndex | None = None) -> None:
    """Raise DataError at the first volume that is negative or infinite. NaN is "unknown" (mark klines have no
    volume; the engine then uses the fixed slippage) and is kept."""
    bad = np.isinf(volume) | (volume < 0)
    if bad.any():
        i = _first_bad(bad)
        v = volume[i]
        what = f"negative ({v!r})" if v < 0 else f"not finite ({v!r})"
        raise DataError(f"volume is {what}", source=source, column=column, row=i + 1,
                        value=None if times is None else times[i])


_EPOCH_UNITS = (("s", 1e11), ("ms", 1e14), ("us", 1e17), ("ns", np.inf))
_NS_PER = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0}
_FIRST, _LAST = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
_DAY_MONTH = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{2}|\d{4})(?!\d)")


def check_tz(tz: object, *, source: str | None = None) -> str | dt.tzinfo | None:
    """Validate a time-zone argument before any file is read; return it (``"utc"`` → ``"UTC"``).

    Accepts None, a ``datetime.tzinfo`` or an IANA name (``"UTC"``, ``"Europe/Berlin"``, ``"Etc/GMT-3"``).
    ``"UTC+3"`` is refused rather than handed on: some parsers read it as a POSIX zone, whose sign is the reverse.
    """
    if isinstance(tz, dt.tzinfo):
        return "UTC" if str(tz) == "UTC" else tz
    if tz is None:
        return tz
    if not isinstance(tz, str):
        raise DataError(f"tz must be a time-zone name such as 'UTC' or 'Etc/GMT-3', got {tz!r} "
                        f"({type(tz).__name__})", source=source)
    if tz.strip().upper() == "UTC":
        return "UTC"
    m = _OFFSET.fullmatch(tz.strip())
    if m:
        sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3) or 0)
        if minutes == 0 and hours <= 14:
            etc = f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"
            raise DataError(f"tz {tz!r} is an offset, not a time-zone name; for a fixed UTC{sign}{hours} write "
                            f"tz='{etc}' (the Etc/GMT names invert the sign: '{etc}' is {hours} hour(s) "
                            f"{'ahead of' if sign == '+' else 'behind'} UTC)", source=source)
        raise DataError(f"tz {tz!r} is an offset, not a time-zone name; pass "
                        f"datetime.timezone(datetime.timedelta(hours={sign}{hours}, minutes={sign}{minutes})) "
                        "or the place's zone name (e.g. 'Asia/Kolkata')", source=source)
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        from fundarb.errors import did_you_mean

        hint = did_you_mean(tz, zoneinfo.available_timezones()) if tz.strip() else ""
        raise DataError(f"unknown time zone {tz!r}{hint}; give an IANA name such as 'UTC', 'Europe/Berlin', "
                        "or 'Etc/GMT-3' for a fixed UTC+3", source=source) from None
    return tz


def _epoch(ser: pd.Series, *, source: str, column: str) -> pd.DatetimeIndex:
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
    ns = arr * _NS_PER[unit]
    out = (ns < _FIRST.value) | (ns > _LAST.value)
    if out.any():
        i = _first_bad(out)
        years = 1970 + arr[i] * _NS_PER[unit] / 1e9 / 31_556_952
        raise DataError(f"epoch timestamp {ser.iloc[i]} read as {unit} is around year {years:.0f}, outside what "
                        f"pandas can represent ({_FIRST:%Y-%m-%d} → {_LAST:%Y-%m-%d}); is the column in another "
                        "unit?", source=source, column=column, row=i + 1)
    return pd.DatetimeIndex(pd.to_datetime(ser.astype(np.int64), unit=unit, utc=True)).as_unit("ns")


def _day_month(ser: pd.Series, *, source: str, column: str, dayfirst: bool | None) -> None:
    """Refuse to guess whether ``01/02/2024`` is 1 February or 2 January."""
    parts = ser.astype(str).str.extract(_DAY_MONTH)
    hit = parts[0].notna().to_numpy()
    if not hit.any():
        return
    a = pd.to_numeric(parts[0], errors="coerce").to_numpy()
    b = pd.to_numeric(parts[1], errors="coerce").to_numpy()
    if dayfirst is None:
        i = _first_bad(hit)
        raise DataError(f"date '{ser.iloc[i]}' could be day-first or month-first; pass dayfirst=True or False "
                        "(or format=, e.g. '%d/%m/%Y %H:%M')", source=source, column=column, row=i + 1)
    wrong = hit & ((b > 12) if dayfirst else (a > 12))
    if wrong.any():
        i = _first_bad(wrong)
        raise DataError(f"date '{ser.iloc[i]}' is not {'day' if dayfirst else 'month'}-first as "
                        f"dayfirst={dayfirst} says", source=source, column=column, row=i + 1)


def _localize(idx: pd.DatetimeIndex, ser: pd.Series, tz: str | dt.tzinfo, *, source: str,
              column: str) -> pd.DatetimeIndex:
    out = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    if not out.isna().any():
        return out
    try:  # a repeated hour at a fall-back is resolved by the rows' own order when it can be
        inferred = idx.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
        if not inferred.isna().any() and (np.diff(inferred.asi8) >= 0).all():
            return inferred
    except (ValueError, TypeError):
        pass
    i = _first_bad(np.asarray(out.isna()))
    raise DataError(f"local time '{ser.iloc[i]}' is ambiguous or does not exist in {tz} (a clock change) and "
                    "the rows' order does not resolve it; give the data in UTC or a fixed-offset zone",
                    source=source, column=column, row=i + 1)


def to_utc(
    values: pd.Series | np.ndarray,
    *,
    source: str,
    column: str,
    tz: str | dt.tzinfo | None = None,
    dayfirst: bool | None = None,
    format: str | None = None,
) -> pd.DatetimeIndex:
    """Parse timestamps to a UTC DatetimeIndex.

    Integers are epoch times whose unit (s, ms, us, ns) is inferred from their magnitude; strings and
    datetimes are parsed. Naive times need ``tz`` (the time zone they are written in, e.g. ``"UTC"`` or
    ``"Etc/GMT-3"`` for UTC+3); guessing it would be a silent error. Dates written ``dd/mm/yyyy`` or
    ``mm/dd/yyyy`` need ``dayfirst`` (or ``format``): the order is never guessed.
    """
    tz = check_tz(tz, source=source)
    ser = pd.Series(values)
    if ser.dtype.kind == "b":
        raise DataError("column holds booleans, not timestamps", source=source, column=column)
    if ser.dtype.kind in "iuf":
        idx = _epoch(ser, source=source, column=column)
        if tz not in (None, "UTC"):
            raise DataError(f"epoch timestamps are UTC by definition; tz={tz!r} does not apply",
                            source=source, column=column)
        return idx
    if ser.dtype.kind == "M" and getattr(ser.dt, "tz", None) is not None:
        return _in_range(pd.DatetimeIndex(ser).tz_convert("UTC"), ser, source=source, column=column)
    if format is not None:
        parsed = pd.to_datetime(ser, format=format, errors="coerce", utc=False)
        bad = parsed.isna().to_numpy() & ser.notna().to_numpy()
        if bad.any():
            i = _first_bad(bad)
            raise DataError(f"value '{ser.iloc[i]}' does not match format {format!r}", source=source,
                            column=column, row=i + 1)
    else:
        if ser.dtype.kind != "M":
            _day_month(ser, source=source, column=column, dayfirst=dayfirst)
        parsed = _parse_mixed(ser, source=source, column=column, dayfirst=bool(dayfirst))
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
        idx = _localize(idx, ser, tz, source=source, column=column)
    return _in_range(idx.tz_convert("UTC"), ser, source=source, column=column)


def _parse_mixed(ser: pd.Series, *, source: str, column: str, dayfirst: bool) -> pd.Series:
    if ser.dtype.kind == "M":
        return ser
    try:
        return pd.to_datetime(ser, utc=False, format="mixed", dayfirst=dayfirst)
    except (ValueError, TypeError, OverflowError):
        coerced = pd.to_datetime(ser, errors="coerce", format="mixed", utc=True, dayfirst=dayfirst)
        bad = coerced.isna().to_numpy() & ser.notna().to_numpy()
        if bad.any():
            i = _first_bad(bad)
            raise DataError(f"value '{ser.iloc[i]}' is not a timestamp (or is outside what pandas can represent)",
                            source=source, column=column, row=i + 1) from None
        # every value parses, but with different UTC offsets: fine when each carries its own offset
        text = ser.astype(str)
        has_zone = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})\s*$", regex=True).to_numpy()
        if not has_zone.all():
            i = _first_bad(~has_zone)
            raise DataError(f"value '{ser.iloc[i]}' has no UTC offset while others do", source=source,
                            column=column, row=i + 1) from None
        return coerced


def _in_range(idx: pd.DatetimeIndex, ser: pd.Series, *, source: str, column: str) -> pd.DatetimeIndex:
    """The index in nanoseconds (as every later step uses), or DataError at the first time it cannot hold."""
    if idx.unit == "ns":
        return idx
    bad = np.asarray((idx < _FIRST) | (idx > _LAST))
    if bad.any():
        i = _first_bad(bad)
        raise DataError(f"time '{ser.iloc[i]}' is outside what pandas can represent ({_FIRST:%Y-%m-%d} → "
                        f"{_LAST:%Y-%m-%d})", source=source, column=column, row=i + 1)
    return idx.as_unit("ns")


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
