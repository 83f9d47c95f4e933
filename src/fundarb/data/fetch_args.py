"""Arguments of :func:`fundarb.data.fetch.fetch`: times in ms, symbols, the resume command line, and the
constants every fetch module shares."""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fundarb.errors import ConfigError

__all__ = ["DAY_MS", "FETCH_KINDS", "MAX_FUNDING_RATE", "OHLCV", "SETTLE_MS", "command_line", "normalize_symbol",
           "now_ms", "progress_enabled", "short", "split_symbols", "to_ms"]

FETCH_KINDS = ("spot", "perp", "mark", "funding")
OHLCV = ("open", "high", "low", "close", "volume")
SETTLE_MS = 5 * 60_000
"""A bar or funding event is stored only once it is this old (ms): exchanges finalise them shortly after."""
DAY_MS = 86_400_000
MAX_FUNDING_RATE = 1.0  # |rate| above this is not a funding rate


def now_ms() -> int:
    """The wall clock in ms (tests replace it)."""
    return int(time.time() * 1000)


def to_ms(value: object, name: str) -> int:
    """A date (``2021-01-01``, ISO string, Timestamp) or ms integer (from 1970 on) as UTC ms."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a date, got {value!r}")
    if isinstance(value, int | np.integer):
        ms = int(value)
    else:
        try:
            ts = pd.Timestamp(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name}: cannot read date {value!r}; give a date such as 2021-01-01 or "
                              "2021-01-01T08:00Z") from exc
        if ts is pd.NaT:
            raise ConfigError(f"{name}: cannot read date {value!r}; give a date such as 2021-01-01")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        ms = int(ts.as_unit("ms").asm8.astype(np.int64))  # no overflow whatever the year
    if ms > _MAX_MS:
        raise ConfigError(f"{name}: date {value!r} is outside what pandas can represent (after "
                          f"{pd.Timestamp.max:%Y-%m-%d})")
    if ms < 0:
        raise ConfigError(f"{name}: date {value!r} is before 1970-01-01; exchange history starts later")
    return ms


_MAX_MS = int(pd.Timestamp.max.value) // 1_000_000


def normalize_symbol(symbol: str, quote: str = "USDT") -> str:
    """``BTC`` / ``btc/usdt`` / ``BTC/USDT:USDT`` → ``BTC/USDT:USDT`` (a linear perpetual)."""
    s = symbol.strip().upper()
    if not s:
        raise ConfigError("empty symbol")
    if "/" not in s:
        s = f"{s}/{quote}"
    if ":" not in s:
        s = f"{s}:{s.split('/')[1]}"
    return s


def split_symbols(symbols: str | Sequence[str]) -> list[str]:
    """Comma-separated text or a list → unique normalised symbols, in order (empty items skipped)."""
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    out: list[str] = []
    for s in items:
        if not str(s).strip():
            continue
        n = normalize_symbol(str(s))
        if n not in out:
            out.append(n)
    if not out:
        raise ConfigError(f"symbols {symbols!r} names no symbol; give perpetuals such as "
                          "BTC/USDT:USDT,ETH/USDT:USDT (or BTC,ETH)")
    return out


def progress_enabled(progress: bool | None) -> bool:
    """Progress bars: as asked, else only on a terminal and not when ``CI`` is set."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def command_line(exchange: str, symbols: list[str], since: object, until: object, timeframe: str, out: str,
                 api_url: str | Mapping[str, str] | None, tiers_file: str | os.PathLike[str] | None) -> str:
    """The ``fundarb fetch`` command that repeats (and so resumes) a fetch."""
    args = ["fundarb", "fetch", "--exchange", exchange, "--symbols", ",".join(symbols), "--since", str(since)]
    if until is not None:
        args += ["--until", str(until)]
    args += ["--timeframe", timeframe, "--out", out]
    if isinstance(api_url, str):
        args += ["--api-url", api_url]
    elif api_url:
        for k, v in api_url.items():
            args += ["--api-url", v if k == "*" else f"{k}={v}"]
    if tiers_file is not None:
        args += ["--tiers-file", os.fspath(tiers_file)]
    return shlex.join(args)


def short(exc: BaseException, n: int = 300) -> str:
    """An exception's text on one line, at most ``n`` characters."""
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 1] + "…"
