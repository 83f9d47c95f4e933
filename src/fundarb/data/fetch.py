"""``fundarb fetch``: download real market data with ccxt into fundarb's Parquet store.

For each perpetual symbol (``BTC/USDT:USDT``; ``BTC`` and ``BTC/USDT`` mean the same) four files are kept up to date
(see :mod:`fundarb.data.store`): spot OHLCV, perpetual OHLCV, mark-price OHLCV and the settled funding events, plus
the exchange's ``leverage_tiers.json``.

How it stays correct when interrupted
-------------------------------------
* **Coverage.** Each file records in its ``fundarb`` metadata the half-open interval ``[covered_from, covered_to)``
  whose every row it holds (``covered_from_ms``, ``covered_to_ms``). The file's rows and its coverage are written in
  one atomic replace (:func:`~fundarb.data.store.write_table`: written aside, fsynced, renamed), so after a kill, at
  any instant, the file on disk is some earlier complete state. A run fetches only what lies outside the coverage
  (a head before it, a tail after it), so a second run fetches only what is new, and a killed run resumes right
  after the last stored row. Rows are merged by time (a re-fetched row replaces the stored one), so fetching a range
  twice cannot duplicate anything.
* **Pages.** Each request asks for one window ``[s, e)`` of at most ``limit`` rows. A page is validated (types,
  finite positive prices, times strictly increasing, aligned to the timeframe, inside the window) before anything
  is kept; an invalid page is re-requested. What a valid page *proves* is conservative: rows are returned in time
  order from ``s``, so a page proves the exchange has nothing else in ``[s, last row]``; the next request starts
  right after the last row, never at the window end. A truncated page (rows missing at its end) therefore costs one
  more request and loses nothing, while a genuine gap is confirmed by the exchange itself (the next page starts
  after it). Only an empty page proves a whole window empty. A JSON body that does not parse is never handed to
  ccxt's parsers (ccxt would read it as "no rows").
* **Chunks.** Validated rows are merged into the file every ``chunk_rows`` rows (and at least every few seconds),
  so a kill loses at most the chunk in flight.
* **Closed bars only.** A kline is stored only once closed (``open + timeframe <= now``), a funding event only once
  settled, both with a settling margin of :data:`SETTLE_MS`.
* **Faults.** ccxt's own rate limiter stays on. Network errors, 429/418 (honouring ``Retry-After``), 5xx,
  timeouts, connection resets and malformed bodies are retried with exponential backoff (:class:`RetryPolicy`);
  after ``max_retries`` tries :class:`FetchError` says what is saved and the command that resumes.
* **One writer.** A lock file (``<out>/<exchange>/.fetch.lock``) keeps two fetches off the same store; stale
  temporary files of a killed writer are removed.

Usage::

    python -m fundarb.data.fetch --exchange binance --symbols BTC/USDT:USDT,ETH/USDT:USDT --since 2021-01-01
    python -m fundarb.data.fetch datasets/binance-majors.toml

A manifest is a TOML file with the keyword arguments of :func:`fetch` (top level or in a ``[fetch]`` table)::

    exchange = "binance"
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    since = "2021-01-01"
    until = "2024-01-01"        # optional, exclusive; default now
    timeframe = "1h"
    out = "data"                # relative paths are relative to the current directory
    tiers_file = "tiers.json"   # optional
    api_url = "http://127.0.0.1:8080"   # optional; or a table {fapiPublic = "...", public = "..."}
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import math
import os
import shlex
import signal
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from fundarb.data.exchange_api import (
    PROFILES,
    ExchangeProfile,
    MalformedResponse,
    RetryPolicy,
    apply_api_url,
    is_loopback,
    retry_after_seconds,
)
from fundarb.data.fetch_report import FetchError, FetchReport, FileReport, iso_ms
from fundarb.data.store import store_path, symbol_id, write_json_atomic, write_table
from fundarb.errors import ConfigError, DataError, FundarbError, did_you_mean

try:  # POSIX advisory lock; elsewhere the lock is skipped
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "PROFILES",
    "SETTLE_MS",
    "ExchangeProfile",
    "FetchError",
    "FetchReport",
    "FileReport",
    "MalformedResponse",
    "RetryPolicy",
    "apply_api_url",
    "fetch",
    "fetch_manifest",
    "main",
]

log = logging.getLogger("fundarb.fetch")

FETCH_KINDS = ("spot", "perp", "mark", "funding")
OHLCV = ("open", "high", "low", "close", "volume")
SETTLE_MS = 5 * 60_000
"""A bar or funding event is stored only once it is this old (ms): exchanges finalise them shortly after."""
DAY_MS = 86_400_000
MAX_FUNDING_RATE = 1.0  # |rate| above this is not a funding rate


def _now_ms() -> int:
    """The wall clock in ms (tests replace it)."""
    return int(time.time() * 1000)


# --------------------------------------------------------------------------------------------------- arguments
def _to_ms(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be a date, got {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    try:
        ts = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a date such as 2021-01-01 or 2021-01-01T08:00Z, got {value!r}") from exc
    if ts is pd.NaT:
        raise ConfigError(f"{name} must be a date, got {value!r}")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value) // 1_000_000  # .value is in ns whatever the unit


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


def _split_symbols(symbols: str | Sequence[str]) -> list[str]:
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    out: list[str] = []
    for s in items:
        n = normalize_symbol(str(s))
        if n not in out:
            out.append(n)
    if not out:
        raise ConfigError("no symbols given")
    return out


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    if os.environ.get("CI"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


# --------------------------------------------------------------------------------------------------- the store side
@dataclass
class _Task:
    symbol: str
    kind: str
    market: str  # ccxt symbol requested (spot: BTC/USDT)
    path: str
    step: int  # ms after the last row where the next one may be (tf for klines, 1 for funding)
    start: int
    end: int
    df: pd.DataFrame | None = None
    covered: tuple[int, int] | None = None
    report: FileReport | None = None
    meta: dict[str, str] = field(default_factory=dict)

    def segments(self) -> list[tuple[int, int, bool]]:
        """Ranges to fetch as ``(from, to, is_tail)``: a head before the coverage and a tail after it."""
        if self.end <= self.start:
            return []
        if self.covered is None:
            return [(self.start, self.end, True)]
        lo, hi = self.covered
        segs = []
        if self.start < lo:
            segs.append((self.start, lo, False))
        if self.end > hi:
            segs.append((hi, self.end, True))
        return segs


def _read_existing(path: str) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    if not os.path.exists(path):
        return None, {}
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # a file not written by fetch (writes are atomic)
        raise DataError(f"cannot read store file ({exc}); delete it to fetch it again", source=path) from exc
    meta: dict[str, Any] = {}
    raw = (table.schema.metadata or {}).get(b"fundarb")
    if raw:
        with contextlib.suppress(ValueError):
            meta = dict(json.loads(raw))
    df = table.to_pandas()
    if "time" not in df.columns:
        raise DataError("store file has no 'time' column; delete it to fetch it again", source=path)
    idx = pd.DatetimeIndex(df.pop("time"))
    idx = (idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")).as_unit("ms").rename("time")
    df.index = idx
    return df.sort_index(), meta


def _coverage(df: pd.DataFrame | None, meta: Mapping[str, Any], step: int) -> tuple[int, int] | None:
    try:
        return int(meta["covered_from_ms"]), int(meta["covered_to_ms"])
    except (KeyError, TypeError, ValueError):
        pass
    if df is None or df.empty:
        return None
    t = df.index.asi8
    return int(t[0]), int(t[-1]) + step


def _remove_stale_tmp(directory: str) -> None:
    if not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        stale = name.startswith(".") and name.endswith(".tmp") and (
            ".parquet." in name or name.startswith(".leverage_tiers.json."))
        if stale:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


@contextlib.contextmanager
def _store_lock(directory: str) -> Iterator[None]:
    os.makedirs(directory, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        yield
        return
    fh = open(os.path.join(directory, ".fetch.lock"), "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise FetchError(f"another fetch is writing to {directory}; wait for it to finish") from exc
        yield
    finally:
        fh.close()


# --------------------------------------------------------------------------------------------------- the fetcher
class _Fetcher:
    def __init__(self, *, exchange: str, symbols: list[str], since: int, until: int | None, timeframe: str,
                 out: str, api_url: str | Mapping[str, str] | None, tiers_file: str | None, retry: RetryPolicy,
                 progress: bool, timeout: float, chunk_rows: int, flush_seconds: float, resume_hint: str) -> None:
        import ccxt

        if exchange not in ccxt.exchanges:
            raise ConfigError(f"unknown exchange {exchange!r}{did_you_mean(exchange, ccxt.exchanges)}")
        self.ccxt = ccxt
        self.exchange = exchange
        self.profile = PROFILES.get(exchange, ExchangeProfile())
        self.symbols = symbols
        self.since = since
        self.until = until
        self.timeframe = timeframe
        self.out = out
        self.tiers_file = tiers_file
        self.retry = retry
        self.progress = progress
        self.chunk_rows = max(1, int(chunk_rows))
        self.flush_seconds = flush_seconds
        self.resume_hint = resume_hint
        self.report = FetchReport(exchange=exchange, out=out)
        self._markets_loaded = False

        ex = getattr(ccxt, exchange)({"enableRateLimit": True, "timeout": int(timeout * 1000)})
        opts = ex.options.get("fetchMarkets")
        ex.options["fetchMarkets"] = dict(opts if isinstance(opts, dict) else {}, types=list(self.profile.market_types))
        apply_api_url(ex, api_url)
        if is_loopback(api_url):
            ex.session.trust_env = False  # never route a loopback endpoint through an environment proxy
        ex.enableLastResponseHeaders = True
        if ex.timeframes and timeframe not in ex.timeframes:
            raise ConfigError(f"{exchange} has no timeframe {timeframe!r}{did_you_mean(timeframe, ex.timeframes)}; "
                              f"timeframes: {', '.join(ex.timeframes)}")
        self.tf_ms = int(ex.parse_timeframe(timeframe) * 1000)
        original = ex.on_rest_response

        def strict_json(code: int, reason: str, url: str, method: str, response_headers: Any, response_body: Any,
                        request_headers: Any, request_body: Any) -> Any:
            body = original(code, reason, url, method, response_headers, response_body, request_headers,
                            request_body)
            if isinstance(code, int) and 200 <= code < 300:
                try:
                    json.loads(body)
                except (TypeError, ValueError) as exc:
                    tail = body[-40:] if isinstance(body, str) else body
                    raise MalformedResponse(f"{method} {url}: HTTP {code} with a body that is not valid JSON "
                                            f"({len(body or '')} bytes, ends {tail!r})") from exc
            return body

        ex.on_rest_response = strict_json
        self.ex = ex

    # ----------------------------------------------------------------------------------------- requests
    def call(self, what: str, fn: Callable[[], Any], validate: Callable[[Any], Any] | None = None,
             task: _Task | None = None) -> Any:
        """``fn()`` with retries; ``validate`` raises MalformedResponse on a bad page (retried, never stored)."""
        ccxt = self.ccxt
        attempt = 0
        while True:
            attempt += 1
            self.report.requests += 1
            if task is not None and task.report is not None:
                task.report.requests += 1
            try:
                try:
                    result = fn()
                except ccxt.BaseError:
                    raise
                except MalformedResponse:
                    raise
                except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
                    raise MalformedResponse(f"{what}: ccxt could not parse the response: {exc!r}") from exc
                return validate(result) if validate is not None else result
            except (ccxt.NetworkError, MalformedResponse) as exc:
                retry_after = retry_after_seconds(self.ex.last_response_headers) if isinstance(
                    exc, ccxt.DDoSProtection) else None
                delay = self.retry.delay(attempt, retry_after)
                reason = f"{type(exc).__name__}: {_short(exc)}"
                if delay is None:
                    why = (f"the exchange asks to wait {retry_after:.0f} s (over the "
                           f"{self.retry.max_retry_after:.0f} s limit)") if retry_after is not None and \
                        attempt < self.retry.max_tries else f"{attempt} tries"
                    self.fail(f"{what}: gave up after {why}; last error {reason}", exc)
                log.warning("%s: %s; retry %d/%d in %.1f s", what, reason, attempt, self.retry.max_tries - 1,
                            delay)
                self.retry.sleep(delay)
            except ccxt.BaseError as exc:
                self.fail(f"{what}: {type(exc).__name__}: {_short(exc)}", exc)

    def fail(self, message: str, exc: BaseException | None = None) -> NoReturn:
        raise FetchError(message) from exc

    def load_markets(self) -> None:
        if self._markets_loaded:
            return
        self.call(f"{self.exchange} load_markets", self.ex.load_markets, self._check_markets)
        self._markets_loaded = True

    def _check_markets(self, markets: Any) -> Any:
        if not isinstance(markets, dict) or not markets:
            raise MalformedResponse("load_markets returned no markets")
        return markets

    # ----------------------------------------------------------------------------------------- planning
    def plan(self) -> list[_Task]:
        now = _now_ms()
        end_k = (now - SETTLE_MS) // self.tf_ms * self.tf_ms  # bars opening before this are closed and settled
        end_f = now - SETTLE_MS
        if self.until is not None:
            end_k, end_f = min(end_k, self.until), min(end_f, self.until)
        start_k = -(-self.since // self.tf_ms) * self.tf_ms if self.tf_ms <= DAY_MS else self.since
        tasks = []
        for sym in self.symbols:
            for kind in FETCH_KINDS:
                market = sym.split(":")[0] if kind == "spot" else sym
                path = store_path(self.out, self.exchange, sym, kind, self.timeframe)
                step = 1 if kind == "funding" else self.tf_ms
                t = _Task(sym, kind, market, path, step, self.since if kind == "funding" else start_k,
                          end_f if kind == "funding" else end_k)
                t.df, t.meta = _read_existing(path)
                t.covered = _coverage(t.df, t.meta, step)
                n = 0 if t.df is None else len(t.df)
                t.report = FileReport(sym, kind, path, rows_before=n, rows=n, target_to=t.end)
                self._fill_report(t)
                tasks.append(t)
        return tasks

    def _fill_report(self, t: _Task) -> None:
        r = t.report
        assert r is not None
        r.rows = 0 if t.df is None else len(t.df)
        if r.rows:
            assert t.df is not None
            r.first, r.last = t.df.index[0], t.df.index[-1]
        if t.covered is not None:
            r.covered_from, r.covered_to = t.covered

    def check_symbols(self, tasks: list[_Task]) -> list[_Task]:
        markets = self.ex.markets
        keep = []
        for t in tasks:
            if t.kind != "spot":
                m = markets.get(t.symbol)
                if m is None or not m.get("swap"):
                    swaps = [k for k, v in markets.items() if v.get("swap")]
                    raise FetchError(f"{self.exchange} has no perpetual {t.symbol!r}{did_you_mean(t.symbol, swaps)}")
            elif t.market not in markets:
                self.report.notes.append(f"{self.exchange} has no spot market {t.market}: spot not fetched for "
                                         f"{t.symbol}")
                continue
            keep.append(t)
        return keep

    # ----------------------------------------------------------------------------------------- pages
    def kline_limit(self, kind: str) -> int:
        if kind in self.profile.kline_limits:
            return int(self.profile.kline_limits[kind])
        feats = self.ex.features or {}
        node = feats.get("spot") if kind == "spot" else (feats.get("swap") or {}).get("linear")
        ohlcv = (node or {}).get("fetchOHLCV") or {}
        limit = ohlcv.get("mark") if kind == "mark" else None
        return int(limit or ohlcv.get("limit") or 500)

    def page(self, t: _Task, s: int, e: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        what = f"{self.exchange} {t.symbol} {t.kind} from {iso_ms(s)}"
        if t.kind == "funding":
            def get() -> Any:
                return self.ex.fetch_funding_rate_history(t.market, since=s, limit=limit, params={"until": e - 1})

            return self.call(what, get, lambda rows: self.validate_funding(t, rows, s, e, limit), t)

        params: dict[str, Any] = {"until": e - 1}
        if t.kind == "mark":
            params["price"] = "mark"

        def get_k() -> Any:
            return self.ex.fetch_ohlcv(t.market, self.timeframe, since=s, limit=limit, params=params)

        return self.call(what, get_k, lambda rows: self.validate_klines(t, rows, s, e, limit), t)

    def validate_klines(self, t: _Task, rows: Any, s: int, e: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        where = f"{self.exchange} {t.kind} klines of {t.market} from {iso_ms(s)}"
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
                if x is None and j == 4 and t.kind == "mark":
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
            if t.kind != "mark" and (~np.isfinite(vals[:, 4]) | (vals[:, 4] < 0)).any():
                raise MalformedResponse(f"{where}: a volume is negative or not finite")
            if (np.diff(times) <= 0).any():
                raise MalformedResponse(f"{where}: times are not strictly increasing")
            if times[0] < s:
                raise MalformedResponse(f"{where}: a row opens before the requested start")
            if self.tf_ms <= DAY_MS and ((times - s) % self.tf_ms).any():
                raise MalformedResponse(f"{where}: a bar time is not on the {self.timeframe} grid")
        if t.kind == "mark":
            vals[:, 4] = np.nan  # mark-price klines have no volume
        keep = times < e  # rows past the window (an exchange ignoring endTime, the bar in progress) are not kept
        return times[keep], vals[keep]

    def validate_funding(self, t: _Task, rows: Any, s: int, e: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        where = f"{self.exchange} funding history of {t.market} from {iso_ms(s)}"
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
            if sym is not None and sym != t.market:
                raise MalformedResponse(f"{where}: row {i} is for {sym}, not {t.market}")
            times[i], vals[i, 0] = int(ts), float(rate)
        if len(rows):
            if (np.diff(times) <= 0).any():
                raise MalformedResponse(f"{where}: times are not strictly increasing")
            if times[0] < s:
                raise MalformedResponse(f"{where}: an event is before the requested start")
        keep = times < e
        return times[keep], vals[keep]

    # ----------------------------------------------------------------------------------------- walking
    def run(self) -> FetchReport:
        tasks = self.plan()
        todo = [t for t in tasks if t.segments()]
        for t in tasks:
            if t.end <= t.start:
                self.report.notes.append(f"{t.symbol} {t.kind}: nothing to fetch, the range ends before it starts "
                                         f"({iso_ms(t.start)} → {iso_ms(t.end)})")
        if todo:
            self.load_markets()
            tasks = self.check_symbols(tasks)
        self.tasks = tasks
        for t in tasks:
            if t.segments():
                self.walk(t)
            assert t.report is not None
            self.report.files.append(t.report)
            if t.report.rows == 0 and t.report.note:
                self.report.notes.append(f"{t.symbol} {t.kind}: {t.report.note}")
        self.fetch_tiers()
        return self.report

    def walk(self, t: _Task) -> None:
        from tqdm import tqdm

        if t.kind == "funding":
            limit = self.profile.funding_limit
            window = None if self.profile.funding_window_hours is None else self.profile.funding_window_hours * 3600_000
        else:
            limit = self.kline_limit(t.kind)
            window = limit * self.tf_ms
        segs = t.segments()
        unit = 3600_000 if t.kind == "funding" else self.tf_ms
        total = sum(b - a for a, b, _ in segs) // unit
        bar = tqdm(total=total, desc=f"{t.symbol} {t.kind}", unit="h" if t.kind == "funding" else "bar",
                   disable=not self.progress, leave=False, dynamic_ncols=True)
        pending_t: list[np.ndarray] = []
        pending_v: list[np.ndarray] = []
        state = {"n": 0, "flushed": time.monotonic()}

        def flush() -> None:
            self.flush(t, pending_t, pending_v)
            pending_t.clear()
            pending_v.clear()
            state["n"], state["flushed"] = 0, time.monotonic()

        try:
            for a, b, is_tail in segs:
                if t.covered is None:
                    t.covered = (a, a)
                s = a
                while s < b:
                    e = b if window is None else min(b, s + window)
                    times, vals = self.page(t, s, e, limit)
                    proven = int(times[-1]) + t.step if len(times) else e
                    if len(times):
                        pending_t.append(times)
                        pending_v.append(vals)
                        state["n"] += len(times)
                    bar.update((proven - s) // unit)
                    s = proven
                    if is_tail:
                        t.covered = (t.covered[0], max(t.covered[1], s))
                    if state["n"] >= self.chunk_rows or time.monotonic() - state["flushed"] >= self.flush_seconds:
                        flush()
                if not is_tail:
                    t.covered = (a, t.covered[1])
                flush()
        finally:
            bar.close()
            if pending_t or (t.report is not None and t.covered != (t.report.covered_from, t.report.covered_to)):
                flush()
        if t.df is None or t.df.empty:
            assert t.report is not None
            t.report.note = (f"the exchange has no data from {iso_ms(t.start)} to {iso_ms(t.end)}; "
                             "no file written")

    def flush(self, t: _Task, times: list[np.ndarray], vals: list[np.ndarray]) -> None:
        cols = ["funding_rate"] if t.kind == "funding" else list(OHLCV)
        df = t.df
        if times:
            tt = np.concatenate(times)
            new = pd.DataFrame(np.concatenate(vals), columns=cols,
                               index=pd.DatetimeIndex(pd.to_datetime(tt, unit="ms", utc=True), name="time").as_unit(
                                   "ms"))
            df = new if df is None or df.empty else pd.concat([df[cols], new])
            df = df[~df.index.duplicated(keep="last")].sort_index()
        if df is None or df.empty:
            return  # no rows: no file (an empty table would not be a valid store file)
        assert t.covered is not None
        meta = {"symbol": t.symbol, "exchange": self.exchange, "kind": t.kind, "market": t.market,
                "covered_from_ms": str(t.covered[0]), "covered_to_ms": str(t.covered[1])}
        if t.kind != "funding":
            meta["timeframe"] = self.timeframe
        write_table(t.path, df, metadata=meta)
        t.df = df
        self._fill_report(t)

    # ----------------------------------------------------------------------------------------- tiers
    def fetch_tiers(self) -> None:
        path = os.path.join(self.out, self.exchange, "leverage_tiers.json")
        stored: dict[str, Any] = {}
        if os.path.exists(path):
            with contextlib.suppress(OSError, ValueError), open(path) as fh:
                stored = dict(json.load(fh))
        if self.tiers_file is not None:
            try:
                with open(self.tiers_file) as fh:
                    data = json.load(fh)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read leverage tiers file {self.tiers_file}: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"{self.tiers_file}: expected ccxt's fetch_leverage_tiers format, "
                                  "an object {symbol: [tier, ...]}")
            got = {s: data[s] for s in self.symbols if s in data}
            missing = [s for s in self.symbols if s not in data]
            if missing:
                self.report.notes.append(f"{self.tiers_file} has no leverage tiers for {', '.join(missing)}")
        elif self.profile.tiers is None:
            missing = [s for s in self.symbols if s not in stored]
            if missing:
                self.report.notes.append(
                    f"leverage tiers not fetched for {', '.join(missing)}: {self.exchange} serves them only to "
                    "authenticated accounts; pass --tiers-file with tiers in ccxt's fetch_leverage_tiers format")
            got = {}
        else:
            got = {}
            try:
                self.load_markets()
                if self.profile.tiers == "all":
                    res = self.call(f"{self.exchange} leverage tiers",
                                    lambda: self.ex.fetch_leverage_tiers(self.symbols))
                    got = {s: res[s] for s in self.symbols if s in (res or {})}
                else:
                    for sym in self.symbols:
                        got[sym] = self.call(f"{self.exchange} leverage tiers of {sym}",
                                             functools.partial(self.ex.fetch_market_leverage_tiers, sym))
            except FetchError as exc:
                self.report.notes.append(f"leverage tiers not fetched: {exc}")
        if got:
            merged = dict(stored)
            merged.update(json.loads(json.dumps(got, default=str)))
            if merged != stored:
                write_json_atomic(path, merged)
        if os.path.exists(path):
            self.report.tiers_path = path


def _short(exc: BaseException, n: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= n else text[: n - 1] + "…"


# --------------------------------------------------------------------------------------------------- public API
def fetch(
    *,
    exchange: str = "binance",
    symbols: str | Sequence[str],
    since: object,
    until: object = None,
    timeframe: str = "1h",
    out: str | os.PathLike[str] = "data",
    api_url: str | Mapping[str, str] | None = None,
    tiers_file: str | os.PathLike[str] | None = None,
    max_retries: int = 6,
    progress: bool | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    chunk_rows: int = 5000,
    flush_seconds: float = 10.0,
    resume_command: str | None = None,
) -> FetchReport:
    """Download or update spot, perpetual, mark-price OHLCV and funding history into the Parquet store.

    Parameters
    ----------
    exchange
        ccxt exchange id: ``binance``, ``bybit``, ``okx`` (others with generic settings).
    symbols
        Perpetuals, comma-separated or a list: ``BTC/USDT:USDT``, or ``BTC`` for the USDT-margined one.
    since, until
        UTC range ``[since, until)`` (dates, ISO strings, ms). ``until`` defaults to now: only closed bars and
        settled funding are stored.
    timeframe
        Kline timeframe (``1h``).
    out
        Store root: files go to ``<out>/<exchange>/<SYMBOL_ID>/``.
    api_url
        Another base URL for the exchange's REST API (see :func:`apply_api_url`).
    tiers_file
        Leverage tiers in ccxt's ``fetch_leverage_tiers`` format, for exchanges that do not serve them publicly.
    max_retries
        Retries of a failed request before giving up, so ``max_retries + 1`` tries (ignored when ``retry`` is
        given).
    progress
        Progress bars; None: only on a terminal and not when ``CI`` is set.
    timeout
        Seconds per HTTP request.
    retry
        The retry policy (tests inject one with a recording ``sleep``).
    chunk_rows
        Rows fetched between two writes of a file; a kill loses at most these.
    flush_seconds
        A file is also written at least this often while being fetched.
    resume_command
        The command line shown in error messages to resume (default: the ``fundarb fetch`` equivalent).

    Raises
    ------
    FetchError
        A request failed for good; the message lists what is saved and how to resume.
    """
    sym_list = _split_symbols(symbols)
    since_ms = _to_ms(since, "since")
    until_ms = None if until is None else _to_ms(until, "until")
    if until_ms is not None and until_ms <= since_ms:
        raise ConfigError(f"until ({iso_ms(until_ms)}) must be after since ({iso_ms(since_ms)})")
    out_s = os.fspath(out)
    if retry is None and int(max_retries) < 0:
        raise ConfigError(f"max_retries must be at least 0, got {max_retries}")
    policy = retry if retry is not None else RetryPolicy(max_tries=int(max_retries) + 1)
    hint = resume_command or _command_line(exchange, sym_list, since, until, timeframe, out_s, api_url, tiers_file)
    fetcher = _Fetcher(exchange=exchange, symbols=sym_list, since=since_ms, until=until_ms, timeframe=timeframe,
                       out=out_s, api_url=api_url, tiers_file=None if tiers_file is None else os.fspath(tiers_file),
                       retry=policy, progress=_progress_enabled(progress), timeout=timeout, chunk_rows=chunk_rows,
                       flush_seconds=flush_seconds, resume_hint=hint)
    base = os.path.join(out_s, exchange)
    with _store_lock(base):
        for sym in sym_list:
            _remove_stale_tmp(os.path.join(base, symbol_id(sym)))
        _remove_stale_tmp(base)
        try:
            return fetcher.run()
        except FetchError as exc:
            raise _with_saved(exc, fetcher) from exc
        except KeyboardInterrupt:
            log.warning("interrupted; %s", _saved_text(fetcher))
            raise


def _saved_text(fetcher: _Fetcher) -> str:
    tasks: list[_Task] = getattr(fetcher, "tasks", None) or []
    lines = [t.report.describe() for t in tasks if t.report is not None and t.report.rows]
    return ("Saved so far (every file is complete and valid up to the time shown):\n  " + "\n  ".join(lines)
            if lines else "Nothing is saved yet.")


def _with_saved(exc: FetchError, fetcher: _Fetcher) -> FetchError:
    tasks: list[_Task] = getattr(fetcher, "tasks", None) or []
    todo = [f"{t.symbol} {t.kind}" for t in tasks if t.report is not None and not t.report.complete]
    text = [str(exc), _saved_text(fetcher)]
    if todo:
        text.append("Still to fetch: " + ", ".join(todo) + ".")
    text.append("To resume, run the same command again; it continues after the last stored row of each file:\n  "
                + fetcher.resume_hint)
    return FetchError("\n".join(text), saved=[t.report for t in tasks if t.report is not None],
                      resume=fetcher.resume_hint)


def _command_line(exchange: str, symbols: list[str], since: object, until: object, timeframe: str, out: str,
                  api_url: str | Mapping[str, str] | None, tiers_file: str | os.PathLike[str] | None) -> str:
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


_MANIFEST_KEYS = ("exchange", "symbols", "since", "until", "timeframe", "out", "api_url", "tiers_file",
                  "max_retries", "timeout", "chunk_rows")


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The :func:`fetch` arguments of a TOML manifest (top level or a ``[fetch]`` table)."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"manifest not found: {p}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {p}: {exc}") from exc
    if isinstance(doc.get("fetch"), dict):
        doc = doc["fetch"]
    unknown = [k for k in doc if k not in _MANIFEST_KEYS]
    if unknown:
        raise ConfigError(f"{p}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], _MANIFEST_KEYS)}; "
                          f"keys: {', '.join(_MANIFEST_KEYS)}")
    for key in ("symbols", "since"):
        if key not in doc:
            raise ConfigError(f"{p}: '{key}' is required")
    return dict(doc)


def fetch_manifest(path: str | os.PathLike[str], **overrides: Any) -> FetchReport:
    """:func:`fetch` with the arguments of a TOML manifest; ``overrides`` that are not None win."""
    args = read_manifest(path)
    args.update({k: v for k, v in overrides.items() if v is not None})
    args.setdefault("resume_command", shlex.join(["fundarb", "fetch", os.fspath(path)]))
    return fetch(**args)


# --------------------------------------------------------------------------------------------------- command line
def _api_url_arg(values: list[str] | None) -> str | dict[str, str] | None:
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        key, sep, url = v.partition("=")
        if sep and "://" not in key:
            out[key] = url
        else:
            out["*"] = v
    return out["*"] if list(out) == ["*"] else out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fundarb fetch", description="Download spot, perpetual, mark-price OHLCV and "
                                "funding history with ccxt into fundarb's Parquet store (incremental, resumable).")
    p.add_argument("manifest", nargs="?", help="a datasets/<name>.toml manifest instead of the options")
    p.add_argument("--exchange", help="ccxt exchange id (default binance)")
    p.add_argument("--symbols", help="comma-separated perpetuals, e.g. BTC/USDT:USDT,ETH/USDT:USDT")
    p.add_argument("--since", help="first time (UTC), e.g. 2021-01-01")
    p.add_argument("--until", help="end time (UTC, exclusive); default now")
    p.add_argument("--timeframe", help="kline timeframe (default 1h)")
    p.add_argument("--out", help="store directory (default data)")
    p.add_argument("--api-url", action="append", metavar="URL|KEY=URL",
                   help="another base URL for the exchange API; KEY=URL sets one entry of ccxt's urls['api']")
    p.add_argument("--tiers-file", help="leverage tiers in ccxt's fetch_leverage_tiers format")
    p.add_argument("--max-retries", type=int, help="retries of a failed request before giving up (default 6)")
    p.add_argument("--timeout", type=float, help="seconds per HTTP request (default 30)")
    p.add_argument("--chunk-rows", type=int, help="rows between two writes of a file (default 5000)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None, help="force progress bars")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log every retry")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fundarb.data.fetch``; returns the exit status (0 ok, 1 failed, 2 bad arguments)."""
    parser = build_parser()
    a = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if a.verbose else logging.WARNING, format="%(message)s",
                        stream=sys.stderr)
    with contextlib.suppress(ValueError):  # SIGTERM: unwind, so the chunk in flight is written (not in a thread)
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    kw: dict[str, Any] = {"exchange": a.exchange, "symbols": a.symbols, "since": a.since, "until": a.until,
                          "timeframe": a.timeframe, "out": a.out, "api_url": _api_url_arg(a.api_url),
                          "tiers_file": a.tiers_file, "max_retries": a.max_retries, "timeout": a.timeout,
                          "chunk_rows": a.chunk_rows, "progress": a.progress}
    try:
        if a.manifest:
            report = fetch_manifest(a.manifest, **kw)
        else:
            if not a.symbols or not a.since:
                parser.error("--symbols and --since are required (or give a manifest)")
            report = fetch(**{k: v for k, v in kw.items() if v is not None or k in ("progress",)})
    except FundarbError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
