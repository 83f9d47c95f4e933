"""The fetcher behind :func:`fundarb.data.fetch.fetch`: a ccxt exchange with retries, the plan of what each store
file lacks, and the walk that pages through it and writes it in chunks."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from fundarb.data import fetch_args
from fundarb.data.exchange_api import (
    PROFILES,
    ExchangeProfile,
    MalformedResponse,
    RetryPolicy,
    TransientResponse,
    apply_api_url,
    is_loopback,
    retry_after_seconds,
    transient_reason,
)
from fundarb.data.fetch_args import DAY_MS, FETCH_KINDS, OHLCV, SETTLE_MS, short
from fundarb.data.fetch_pages import validate_funding, validate_klines
from fundarb.data.fetch_ranges import Range, complement, dumps, empty_cells, merge
from fundarb.data.fetch_report import FetchError, FetchReport, FileReport, iso_ms
from fundarb.data.fetch_store import file_state, spans_metadata
from fundarb.data.fetch_tiers import fetch_tiers
from fundarb.data.store import store_path, write_table
from fundarb.errors import ConfigError, did_you_mean

__all__ = ["Fetcher", "Task"]

log = logging.getLogger("fundarb.fetch")


@dataclass
class Task:
    """One store file: what it holds and what is left to fetch."""

    symbol: str
    kind: str
    market: str  # ccxt symbol requested (spot: BTC/USDT)
    path: str
    step: int  # ms after the last row where the next one may be (tf for klines, 1 for funding)
    start: int
    end: int
    df: pd.DataFrame | None = None
    spans: list[Range] = field(default_factory=list)  # what the file covers: every row of these is stored
    gaps: list[Range] = field(default_factory=list)  # klines: what the exchange proved empty
    written: tuple[list[Range], list[Range]] = ([], [])  # spans and gaps as last written
    dirty: bool = False
    report: FileReport | None = None

    def segments(self) -> list[Range]:
        """Ranges of ``[start, end)`` the file does not cover: a head, holes, a tail."""
        return complement(self.spans, self.start, self.end) if self.end > self.start else []


class Fetcher:
    """Fetch the files of ``symbols`` from one exchange (see :func:`fundarb.data.fetch.fetch`)."""

    def __init__(self, *, exchange: str, symbols: list[str], since: int, until: int | None, timeframe: str,
                 out: str, api_url: str | Mapping[str, str] | None, tiers_file: str | None, retry: RetryPolicy,
                 progress: bool, timeout: float, chunk_rows: int, flush_seconds: float, resume_hint: str,
                 rate_limit: bool = True) -> None:
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
        self.last_status: int | None = None  # HTTP status of the last answer of the call in flight
        self.tasks: list[Task] = []

        ex = getattr(ccxt, exchange)({"enableRateLimit": bool(rate_limit), "timeout": int(timeout * 1000)})
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
            self.last_status = code if isinstance(code, int) else None
            why = None if self.last_status is None or 200 <= code < 300 else transient_reason(
                code, body, self.profile.transient_codes)
            if why is not None:
                text = " ".join(str(body or "").split())[:200]
                raise TransientResponse(f"{method} {url}: {why}: {text}", status=code,
                                        retry_after=retry_after_seconds(response_headers))
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
             task: Task | None = None) -> Any:
        """``fn()`` with retries; ``validate`` raises MalformedResponse on a bad page (retried, never stored).

        Retried: network errors and timeouts, malformed bodies, and every answer :func:`transient_reason` calls
        transient (any 5xx, 429/418, the exchange's "try again" codes). Any other 4xx ends the fetch at once.
        """
        ccxt = self.ccxt
        attempt = 0
        while True:
            attempt += 1
            self.report.requests += 1
            if task is not None and task.report is not None:
                task.report.requests += 1
            self.last_status = None
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
            except (ccxt.NetworkError, MalformedResponse, TransientResponse) as exc:
                if isinstance(exc, ccxt.NetworkError) and self.last_status is not None \
                        and 400 <= self.last_status < 500:  # ccxt reads some 4xx as network errors: not retried
                    self.fail(f"{what}: HTTP {self.last_status}, {type(exc).__name__}: {short(exc)}", exc)
                if isinstance(exc, TransientResponse):
                    retry_after = exc.retry_after
                elif isinstance(exc, ccxt.DDoSProtection):
                    retry_after = retry_after_seconds(self.ex.last_response_headers)
                else:
                    retry_after = None
                delay = self.retry.delay(attempt, retry_after)
                reason = f"{type(exc).__name__}: {short(exc)}"
                if delay is None:
                    why = (f"the exchange asks to wait {retry_after:.0f} s (over the "
                           f"{self.retry.max_retry_after:.0f} s limit)") if retry_after is not None and \
                        attempt < self.retry.max_tries else f"{attempt} tries"
                    self.fail(f"{what}: gave up after {why}; last error {reason}", exc)
                log.warning("%s: %s; retry %d/%d in %.1f s", what, reason, attempt, self.retry.max_tries - 1,
                            delay)
                self.retry.sleep(delay)
            except ccxt.BaseError as exc:
                status = "" if self.last_status is None else f"HTTP {self.last_status}, "
                self.fail(f"{what}: {status}{type(exc).__name__}: {short(exc)}", exc)

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
    def plan(self) -> list[Task]:
        now = fetch_args.now_ms()
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
                t = Task(sym, kind, market, path, step, self.since if kind == "funding" else start_k,
                          end_f if kind == "funding" else end_k)
                state = file_state(path, kind=kind, step=step,
                                   grid_ms=self.tf_ms if kind != "funding" and self.tf_ms <= DAY_MS else None)
                t.df, t.spans, t.gaps, t.dirty = state.df, state.spans, state.gaps, state.dirty
                t.written = (list(t.spans), list(t.gaps))
                self.report.notes.extend(state.notes)
                n = 0 if t.df is None else len(t.df)
                t.report = FileReport(sym, kind, path, rows_before=n, rows=n, target_from=t.start, target_to=t.end)
                self._fill_report(t)
                tasks.append(t)
        return tasks

    def _fill_report(self, t: Task) -> None:
        r = t.report
        assert r is not None
        r.rows = 0 if t.df is None else len(t.df)
        if r.rows:
            assert t.df is not None
            r.first, r.last = t.df.index[0], t.df.index[-1]
        if t.spans:  # the span from which the file is complete (the one holding the start, if any)
            r.covered_from, r.covered_to = next((sp for sp in t.spans if sp[1] > t.start), t.spans[-1])

    def check_symbols(self, tasks: list[Task]) -> list[Task]:
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

    def page(self, t: Task, s: int, e: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        what = f"{self.exchange} {t.symbol} {t.kind} from {iso_ms(s)}"
        if t.kind == "funding":
            def get() -> Any:
                return self.ex.fetch_funding_rate_history(t.market, since=s, limit=limit, params={"until": e - 1})

            where = f"{self.exchange} funding history of {t.market} from {iso_ms(s)}"
            return self.call(what, get, lambda rows: validate_funding(rows, where=where, market=t.market, s=s, e=e,
                                                                      limit=limit), t)

        params: dict[str, Any] = {"until": e - 1}
        if t.kind == "mark":
            params["price"] = "mark"

        def get_k() -> Any:
            return self.ex.fetch_ohlcv(t.market, self.timeframe, since=s, limit=limit, params=params)

        where_k = f"{self.exchange} {t.kind} klines of {t.market} from {iso_ms(s)}"
        return self.call(what, get_k, lambda rows: validate_klines(rows, where=where_k, kind=t.kind, s=s, e=e,
                                                                   limit=limit, tf_ms=self.tf_ms,
                                                                   timeframe=self.timeframe), t)

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
            elif t.dirty:
                self.flush(t, [], [])
            assert t.report is not None
            self.report.files.append(t.report)
            if t.report.rows == 0 and t.report.note:
                self.report.notes.append(f"{t.symbol} {t.kind}: {t.report.note}")
        self.fetch_tiers()
        return self.report

    def walk(self, t: Task) -> None:
        from tqdm import tqdm

        if t.kind == "funding":
            limit = self.profile.funding_limit
            window = None if self.profile.funding_window_hours is None else self.profile.funding_window_hours * 3600_000
        else:
            limit = self.kline_limit(t.kind)
            window = limit * self.tf_ms
        segs = t.segments()
        unit = 3600_000 if t.kind == "funding" else self.tf_ms
        total = sum(b - a for a, b in segs) // unit
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

        grid = t.kind != "funding" and self.tf_ms <= DAY_MS
        try:
            for a, b in segs:
                s = a
                while s < b:
                    e = b if window is None else min(b, s + window)
                    times, vals = self.page(t, s, e, limit)
                    proven = int(times[-1]) + t.step if len(times) else e
                    if len(times):
                        pending_t.append(times)
                        pending_v.append(vals)
                        state["n"] += len(times)
                    if grid:
                        t.gaps = merge(t.gaps + empty_cells(times, s, proven, self.tf_ms))
                    t.spans = merge([*t.spans, (s, proven)])  # recorded as it goes: a kill loses one chunk at most
                    bar.update((proven - s) // unit)
                    s = proven
                    if state["n"] >= self.chunk_rows or time.monotonic() - state["flushed"] >= self.flush_seconds:
                        flush()
                flush()
        finally:
            bar.close()
            if pending_t or (t.spans, t.gaps) != t.written:
                flush()
        if t.df is None or t.df.empty:
            assert t.report is not None
            t.report.note = (f"the exchange has no data from {iso_ms(t.start)} to {iso_ms(t.end)}; "
                             "no file written")

    def flush(self, t: Task, times: list[np.ndarray], vals: list[np.ndarray]) -> None:
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
        meta = {"symbol": t.symbol, "exchange": self.exchange, "kind": t.kind, "market": t.market,
                **spans_metadata(t.spans), "rows": str(len(df))}
        if t.kind != "funding":
            meta["timeframe"] = self.timeframe
            if self.tf_ms <= DAY_MS:
                meta["gaps_ms"] = dumps(t.gaps)
        write_table(t.path, df, metadata=meta)
        t.df, t.written, t.dirty = df, (list(t.spans), list(t.gaps)), False
        self._fill_report(t)


    def fetch_tiers(self) -> None:
        fetch_tiers(self)
