"""Validation of one page of exchange rows before anything is kept: types, finite positive prices, times strictly
increasing, on the timeframe's grid and inside the requested window. A page that fails is re-requested
(:class:`~fundarb.data.exchange_api.MalformedResponse`), never stored."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fundarb.data.exchange_api import MalformedResponse
from fundarb.data.fetch_args import DAY_MS, MAX_FUNDING_RATE, OHLCV
from fundarb.data.fetch_report import iso_ms

__all__ = ["validate_funding", "validate_klines"]


def validate_klines(rows: Any, *, where: str, kind: str, s: int, e: int, limit: int, tf_ms: int,
                    timeframe: str) -> tuple[np.ndarray, np.ndarray]:
    """ccxt OHLCV rows of the window ``[s, e)`` → ``(times ms, values (n, 5))``, rows at or after ``e`` dropped."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: expected a list, got {type(rows).__name__}")
    if len(rows) > limit:
        raise MalformedResponse(f"{where}: {len(rows)} rows for a limit of {limit}")
    times = np.empty(len(rows), dtype=np.int64)
    vals = np.empty((len(rows), 5), dtype=np.float64)
    for i, r in enumerate(rows):
        if not isinstance(r, list | tuple) or len(r) < 6:
            raise MalformedResponse(f"{where}: row {i} is not [time, open, high, low, close, volume]: {r!r}")
        ts = r[0]
        if isinstance(ts, bool) or not isinstance(ts, int | np.integer | float) or ts != int(ts):
            raise MalformedResponse(f"{where}: row {i} has no integer time: {r!r}")
        times[i] = int(ts)
        for j in range(5):
            x = r[j + 1]
            if x is None and j == 4 and kind == "mark":
                x = math.nan
            if isinstance(x, bool) or not isinstance(x, int | float | np.floating | np.integer):
                raise MalformedResponse(f"{where}: row {i} ({iso_ms(times[i])}) has a non-numeric "
                                        f"{OHLCV[j]}: {r[j + 1]!r}")
            vals[i, j] = float(x)
    if len(rows):
        if not np.isfinite(vals[:, :4]).all() or (vals[:, :4] <= 0).any():
            raise MalformedResponse(f"{where}: a price is not a finite positive number")
        if (vals[:, 1] < vals[:, 2]).any():
            raise MalformedResponse(f"{where}: a bar has high < low")
        if kind != "mark" and (~np.isfinite(vals[:, 4]) | (vals[:, 4] < 0)).any():
            raise MalformedResponse(f"{where}: a volume is negative or not finite")
        if (np.diff(times) <= 0).any():
            raise MalformedResponse(f"{where}: times are not strictly increasing")
        if times[0] < s:
            raise MalformedResponse(f"{where}: a row opens before the requested start")
        if tf_ms <= DAY_MS and (times % tf_ms).any():  # bars of a day or less open on the UTC grid
            raise MalformedResponse(f"{where}: a bar time is not on the {timeframe} grid")
    if kind == "mark":
        vals[:, 4] = np.nan  # mark-price klines have no volume
    keep = times < e  # rows past the window (an exchange ignoring endTime, the bar in progress) are not kept
    return times[keep], vals[keep]


def validate_funding(rows: Any, *, where: str, market: str, s: int, e: int,
                     limit: int) -> tuple[np.ndarray, np.ndarray]:
    """ccxt funding-history records of the window ``[s, e)`` → ``(times ms, rates (n, 1))``."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: expected a list, got {type(rows).__name__}")
    if len(rows) > limit:
        raise MalformedResponse(f"{where}: {len(rows)} rows for a limit of {limit}")
    times = np.empty(len(rows), dtype=np.int64)
    vals = np.empty((len(rows), 1), dtype=np.float64)
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise MalformedResponse(f"{where}: row {i} is not a funding record: {r!r}")
        ts, rate, sym = r.get("timestamp"), r.get("fundingRate"), r.get("symbol")
        if isinstance(ts, bool) or not isinstance(ts, int | np.integer):
            raise MalformedResponse(f"{where}: row {i} has no integer timestamp: {r.get('info')!r}")
        if isinstance(rate, bool) or not isinstance(rate, int | float | np.floating) \
                or not math.isfinite(float(rate)) or abs(float(rate)) > MAX_FUNDING_RATE:
            raise MalformedResponse(f"{where}: row {i} ({iso_ms(int(ts))}) has an invalid funding rate: "
                                    f"{r.get('info')!r}")
        if sym is not None and sym != market:
            raise MalformedResponse(f"{where}: row {i} is for {sym}, not {market}")
        times[i], vals[i, 0] = int(ts), float(rate)
    if len(rows):
        if (np.diff(times) <= 0).any():
            raise MalformedResponse(f"{where}: times are not strictly increasing")
        if times[0] < s:
            raise MalformedResponse(f"{where}: an event is before the requested start")
    keep = times < e
    return times[keep], vals[keep]
