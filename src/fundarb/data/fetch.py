"""``fundarb fetch``: download real market data with ccxt into fundarb's Parquet store.

For each perpetual symbol (``BTC/USDT:USDT``; ``BTC`` and ``BTC/USDT`` mean the same) four files are kept up to date
(see :mod:`fundarb.data.store`): spot OHLCV, perpetual OHLCV, mark-price OHLCV and the settled funding events, plus
the exchange's ``leverage_tiers.json``.

How it stays correct when interrupted
-------------------------------------
* **Coverage.** Each file records in its ``fundarb`` metadata the half-open intervals whose every row it holds:
  ``[covered_from_ms, covered_to_ms)``, plus ``partial_ms`` while a fetch that started before that coverage (a
  head) has not reached it yet. Progress is recorded as it goes, forwards or backwards in time, in the same atomic
  replace as the rows (:func:`~fundarb.data.store.write_table`: written aside, fsynced, renamed), so after a kill,
  at any instant, the file on disk is some earlier complete state, and the next run fetches only what no interval
  covers. Rows are merged by time (a re-fetched row replaces the stored one), so fetching a range twice cannot
  duplicate anything.
* **Damage.** A kline file also records the ranges the exchange proved empty (``gaps_ms``: genuine gaps, time
  before a listing), and every file its row count (``rows``). A bar inside the coverage that is neither stored nor
  in a proven gap (a row deleted by hand, a file rewritten by another tool) is fetched again, as is a funding file
  whose row count changed; rows sharing a time are dropped and fetched again. Each repair is a note of the report.
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
* **Faults.** ccxt's own rate limiter stays on. Network errors, timeouts, connection resets, malformed bodies and
  every answer the exchange means as "try again" are retried with exponential backoff (``RetryPolicy``): any 5xx
  and 429/418 whatever the body (honouring ``Retry-After``), and the exchange's transient error codes whatever the
  status (Binance -1000, -1001, -1003, -1007). Any other 4xx ends the run at once. After ``max_retries`` tries
  :class:`FetchError` says what is saved and the command that resumes.
* **One writer.** A lock file (``<out>/<exchange>/.fetch.lock``) keeps two fetches off the same store; stale
  temporary files of a killed writer are removed.

Usage::

    fundarb fetch --exchange binance --symbols BTC/USDT:USDT,ETH/USDT:USDT --since 2021-01-01
    fundarb fetch datasets/binance-majors.toml

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

import logging
import math
import os
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from fundarb.data.exchange_api import PROFILES, ExchangeProfile, MalformedResponse, RetryPolicy, apply_api_url
from fundarb.data.fetch_args import SETTLE_MS, command_line, normalize_symbol, progress_enabled, split_symbols, to_ms
from fundarb.data.fetch_fetcher import Fetcher
from fundarb.data.fetch_report import FetchError, FetchReport, FileReport, iso_ms
from fundarb.data.fetch_store import prepare_out, remove_stale_tmp, store_lock
from fundarb.data.fetch_toml import read_manifest
from fundarb.data.store import symbol_id
from fundarb.errors import ConfigError

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
    "normalize_symbol",
    "read_manifest",
]

log = logging.getLogger("fundarb.fetch")


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
    rate_limit: bool = True,
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
    rate_limit
        ccxt's rate limiter, which spaces requests by the exchange's published limits. Keep it on against an
        exchange or anything forwarding to one; turn it off only for a local server of your own (a test double).

    Raises
    ------
    FetchError
        A request failed for good; the message lists what is saved and how to resume.
    """
    sym_list = split_symbols(symbols)
    since_ms = to_ms(since, "since")
    until_ms = None if until is None else to_ms(until, "until")
    if until_ms is not None and until_ms <= since_ms:
        raise ConfigError(f"until ({iso_ms(until_ms)}) must be after since ({iso_ms(since_ms)})")
    out_s = os.fspath(out)
    _check_number("max_retries", max_retries, 0, integer=True)
    _check_number("timeout", timeout, 0, integer=False, strict=True)
    _check_number("chunk_rows", chunk_rows, 1, integer=True)
    _check_number("flush_seconds", flush_seconds, 0, integer=False, strict=True)
    policy = retry if retry is not None else RetryPolicy(max_tries=int(max_retries) + 1)
    hint = resume_command or command_line(exchange, sym_list, since, until, timeframe, out_s, api_url, tiers_file)
    fetcher = Fetcher(exchange=exchange, symbols=sym_list, since=since_ms, until=until_ms, timeframe=timeframe,
                       out=out_s, api_url=api_url, tiers_file=None if tiers_file is None else os.fspath(tiers_file),
                       retry=policy, progress=progress_enabled(progress), timeout=timeout, chunk_rows=chunk_rows,
                       flush_seconds=flush_seconds, resume_hint=hint, rate_limit=rate_limit)
    base = prepare_out(out_s, exchange)
    with store_lock(base):
        for sym in sym_list:
            remove_stale_tmp(os.path.join(base, symbol_id(sym)))
        remove_stale_tmp(base)
        try:
            return fetcher.run()
        except FetchError as exc:
            raise _with_saved(exc, fetcher) from exc
        except KeyboardInterrupt:
            log.warning("interrupted; %s", _saved_text(fetcher))
            raise


def _check_number(name: str, value: object, low: float, *, integer: bool, strict: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int if integer else int | float)
    x = float(value) if ok else math.nan  # type: ignore[arg-type]
    if not math.isfinite(x) or x < low or (strict and x <= low):
        kind = "an integer" if integer else "a number"
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ConfigError(f"{name} must be {kind} {bound}, got {value!r}")


def _saved_text(fetcher: Fetcher) -> str:
    tasks = fetcher.tasks
    lines = [t.report.describe() for t in tasks if t.report is not None and t.report.rows]
    return ("Saved so far (every file is complete and valid up to the time shown):\n  " + "\n  ".join(lines)
            if lines else "Nothing is saved yet.")


def _with_saved(exc: FetchError, fetcher: Fetcher) -> FetchError:
    tasks = fetcher.tasks
    todo = [f"{t.symbol} {t.kind}" for t in tasks if t.report is not None and not t.report.complete]
    text = [str(exc), _saved_text(fetcher)]
    if todo:
        text.append("Still to fetch: " + ", ".join(todo) + ".")
    text.append("To resume, run the same command again; it continues after the last stored row of each file:\n  "
                + fetcher.resume_hint)
    return FetchError("\n".join(text), saved=[t.report for t in tasks if t.report is not None],
                      resume=fetcher.resume_hint)


def fetch_manifest(path: str | os.PathLike[str], **overrides: Any) -> FetchReport:
    """:func:`fetch` with the arguments of a TOML manifest; ``overrides`` that are not None win."""
    args = read_manifest(path)
    args.update({k: v for k, v in overrides.items() if v is not None})
    args.setdefault("resume_command", shlex.join(["fundarb", "fetch", os.fspath(path)]))
    return fetch(**args)
