"""Parsing durations and dates written the way users write them: ``"8h"``, ``"3d"``, ``"1w"``, ``"2023-12-31"``."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from fundarb.errors import ConfigError

__all__ = ["parse_date", "parse_duration"]

_UNITS = {"s": "s", "sec": "s", "m": "min", "min": "min", "h": "h", "hr": "h", "d": "D", "day": "D", "days": "D",
          "w": "W", "wk": "W"}


_LONGEST = pd.Timedelta(days=36_500)


def parse_duration(value: str | pd.Timedelta, *, name: str = "duration") -> pd.Timedelta:
    """Read a positive duration such as ``"3d"`` or ``"8h"``; raise ConfigError naming ``name`` otherwise."""
    if isinstance(value, pd.Timedelta):
        td = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", str(value))
        unit = _UNITS.get(m.group(2).lower()) if m else None
        if m is None or unit is None:
            raise ConfigError(f"{name}: cannot read duration {value!r}; write e.g. '8h', '3d', '30d', '1w'")
        try:
            td = pd.Timedelta(float(m.group(1)), unit=unit)
        except (OverflowError, ValueError):
            td = None
        if td is None or td > _LONGEST:
            raise ConfigError(f"{name}: duration {value!r} is too long; at most {_LONGEST.days} days "
                              "(about 100 years)")
    if td <= pd.Timedelta(0):
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return td


_DATE_ONLY = re.compile(r"\s*(\d{4})(?:([-/]?)(\d{2})(?:\2(\d{2}))?)?\s*")
_YEAR_FIRST = re.compile(r"\s*\d{4}(?:[-/]?\d{2}|\s*$)")


def parse_date(value: object, *, name: str = "date") -> tuple[pd.Timestamp, pd.Timestamp | None]:
    """Read a point in time; return it in UTC and, for a whole period, the start of the next one.

    ``"2023-12-31"`` (or a ``datetime.date``) stands for the whole day: the second value is then
    ``2024-01-01 00:00``, so an end written as a date includes that day, as pandas' own string slicing does;
    ``"2023-12"`` and ``"2023"`` stand for the month and the year. A time (``"2023-12-31 08:00"``) is exact:
    the second value is None. Naive times are UTC. Relative words (``"yesterday"``, ``"now"``) and numbers
    are refused: a backtest's window must not move with the clock.

    Raises
    ------
    ConfigError
        Naming ``name``: a value that is not a date, or one outside what pandas can represent.
    """
    span: pd.DateOffset | pd.Timedelta | None = None
    if isinstance(value, bool | int | float | np.number) or value is None:
        raise ConfigError(f"{name}: cannot read date {value!r}; write e.g. '2023-12-31' or '2023-12-31 08:00'")
    if isinstance(value, str):
        text = value.strip()
        if not _YEAR_FIRST.match(text):  # words like "yesterday", and 01/02/2023 (day or month first?)
            raise ConfigError(f"{name}: cannot read date {value!r}; write e.g. '2023-12-31' or "
                              "'2023-12-31 08:00' (year first)")
        m = _DATE_ONLY.fullmatch(text)
        if m:
            span = (pd.DateOffset(years=1) if m.group(3) is None else pd.DateOffset(months=1) if m.group(4) is None
                    else pd.Timedelta(days=1))
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        span = pd.Timedelta(days=1)
    elif not isinstance(value, dt.datetime | np.datetime64):
        raise ConfigError(f"{name}: expected a date string or a Timestamp, got {type(value).__name__}")
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
        if pd.isna(ts):
            raise ValueError("NaT")
        ts = (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).as_unit("ns")
        nxt = None if span is None else (ts + span).as_unit("ns")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise ConfigError(f"{name}: date {value!r} is outside what pandas can represent "
                          f"({pd.Timestamp.min:%Y-%m-%d} → {pd.Timestamp.max:%Y-%m-%d})") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{name}: cannot read date {value!r}; write e.g. '2023-12-31' or '2023-12-31 08:00'"
                          ) from None
    return ts, nxt
