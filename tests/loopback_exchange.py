"""A loopback Binance: a threaded HTTP server on 127.0.0.1 that speaks the REST endpoints ccxt's ``binance`` calls
for ``load_markets``, ``fetch_ohlcv`` (spot, USDT-M, ``price="mark"``) and ``fetch_funding_rate_history``, serving
slices of the real data in ``$FUNDARB_DATA/binance`` (default ``../shared/data``), with a fault-injection plan.

Endpoints (Binance semantics: ``startTime``/``endTime`` inclusive, rows ascending from ``startTime``, at most
``limit`` rows; without ``startTime`` the *last* ``limit`` rows up to ``endTime``; limits out of range → HTTP 400
with Binance's error body)::

    GET /api/v3/exchangeInfo                 spot markets (the served bases, quoted in USDT)
    GET /api/v3/klines                       spot klines         limit default 500, max 1000
    GET /fapi/v1/exchangeInfo                USDT-M perpetuals
    GET /fapi/v1/klines                      perp klines         limit default 500, max 1500
    GET /fapi/v1/markPriceKlines             mark-price klines   limit default 500, max 1500
    GET /fapi/v1/fundingRate                 funding history     limit default 100, max 1000

Leverage brackets are private on Binance (``/fapi/v1/leverageBracket`` needs a signed request), so they are not
served here: the fetcher reads them from a user-supplied file.

Only the ``1h`` interval is served (the source data's). Rows with an open time after :attr:`now_ms` are hidden, except
the bar in progress, which is served like Binance does (the client must drop it).

Faults (:class:`Fault`) sit in a queue; each request consumes the first fault whose ``path`` (a substring) matches and
whose ``after`` count of matching requests has passed. Kinds: ``"429"`` and ``"418"`` (with ``Retry-After``),
``"500"``, ``"502"``, ``"503"`` (an HTML body), ``"error"`` (HTTP :attr:`Fault.status` with Binance's JSON error
body for :attr:`Fault.code`, e.g. 503 with ``{"code": -1001, "msg": "Internal error; ..."}``, or an HTML body when
``code`` is None), ``"timeout"`` (the response is held ``delay`` seconds), ``"truncate"`` (a 200 whose
JSON body is cut in half, with a matching Content-Length), ``"reset"`` (status line and half the body, then a TCP
reset), ``"malformed"`` (a 200 with a valid JSON body whose content is wrong: a price that is not a number),
``"unordered"`` (rows out of order), ``"duplicate"`` (one time twice, with different values), ``"short"`` (a valid
page missing its last rows, as a buggy proxy could produce). A content fault that meets an answer with too few rows
to spoil waits for the next matching request.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd

from conftest import real_data_dir

__all__ = ["BINANCE_MESSAGES", "SHARED_DATA", "Fault", "LoopbackExchange", "source_frame"]

SHARED_DATA = real_data_dir()  # $FUNDARB_DATA, default ../shared/data, as the tests' shared_data fixture
HOUR_MS = 3_600_000

_FILES = {
    "spot": "binance/{base}_USDT-1h.feather",
    "perp": "binance/futures/{base}_USDT_USDT-1h-futures.feather",
    "mark": "binance/futures/{base}_USDT_USDT-1h-mark.feather",
    "funding": "binance/futures/{base}_USDT_USDT-1h-funding_rate.feather",
}
_CACHE: dict[tuple[str, str, str], pd.DataFrame] = {}
_CACHE_LOCK = threading.Lock()


def source_frame(base: str, kind: str, data_dir: Path = SHARED_DATA) -> pd.DataFrame:
    """The whole source table of ``base`` and ``kind`` (cached), indexed by UTC time."""
    key = (str(data_dir), base, kind)
    with _CACHE_LOCK:
        if key not in _CACHE:
            df = pd.read_feather(data_dir / _FILES[kind].format(base=base))
            df = df.set_index(pd.DatetimeIndex(df.pop("date")).tz_convert("UTC").as_unit("ms").rename("time"))
            _CACHE[key] = df.sort_index()
        return _CACHE[key]


@dataclass
class Fault:
    """One injected fault.

    Attributes
    ----------
    kind
        See the module docstring.
    path
        Substring of the request path (and query) the fault applies to; ``""`` matches every request.
    after
        Number of matching requests to let through before the fault fires.
    times
        How many consecutive matching requests it hits.
    retry_after
        ``Retry-After`` header (seconds) for 429/418.
    delay
        Seconds the response is held for ``"timeout"``.
    status, code
        HTTP status and Binance error code of an ``"error"`` answer (code None: an HTML body).
    """

    kind: str
    path: str = ""
    after: int = 0
    times: int = 1
    retry_after: int | None = 1
    delay: float = 2.0
    status: int = 503
    code: int | None = None
    seen: int = field(default=0, repr=False)


@dataclass
class _Series:
    time: np.ndarray  # int64 ms
    values: np.ndarray  # float64 (n, 5): open high low close volume


def _fmt(x: float) -> str:
    return repr(float(x))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        ex = self.server.exchange
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        ex._log(url.path, query)
        fault = ex._take_fault(self.path)
        if fault is not None and fault.kind in ("429", "418"):
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            code = -1003
            return self._json(int(fault.kind), {"code": code, "msg": "Too many requests; please use the websocket."},
                              headers)
        if fault is not None and fault.kind in ("500", "502", "503"):
            return self._raw(int(fault.kind), b"<html><body>upstream error</body></html>", "text/html")
        if fault is not None and fault.kind == "error":
            headers = {"Retry-After": str(fault.retry_after)} if fault.status in (418, 429) and \
                fault.retry_after is not None else {}
            if fault.code is None:
                return self._raw(fault.status, b"<html><body>error</body></html>", "text/html", headers)
            msg = BINANCE_MESSAGES.get(fault.code, "An unknown error occurred while processing the request.")
            return self._json(fault.status, {"code": fault.code, "msg": msg}, headers)
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)
        try:
            status, body = ex._route(url.path, query)
        except _ApiError as err:
            return self._json(err.status, {"code": err.code, "msg": err.msg})
        if fault is not None and status == 200:
            if fault.kind == "truncate":
                raw = json.dumps(body).encode()
                return self._raw(200, raw[: len(raw) // 2], "application/json")
            if fault.kind == "reset":
                raw = json.dumps(body).encode()
                return self._reset(raw)
            if fault.kind in _CONTENT_FAULTS:
                if isinstance(body, list) and len(body) >= 3:
                    body = _corrupt(body, fault.kind)
                else:  # nothing to corrupt in this answer: keep the fault for the next one
                    ex._give_back(fault)
        self._json(status, body)

    def _json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(body).encode(), "application/json", headers)

    def _raw(self, status: int, raw: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _reset(self, raw: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw[: len(raw) // 2])
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()


BINANCE_MESSAGES = {
    -1000: "An unknown error occurred while processing the request.",
    -1001: "Internal error; unable to process your request. Please try again.",
    -1003: "Too many requests; current limit is 2400 request weight per 1 MINUTE.",
    -1007: "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
    -1121: "Invalid symbol.",
    -1130: "Data sent for parameter 'limit' is not valid.",
}
"""Binance's own texts for the error codes the loopback sends."""

_CONTENT_FAULTS = ("malformed", "unordered", "duplicate", "short")


def _corrupt(body: list, kind: str) -> list:
    body = [list(r) if isinstance(r, list) else dict(r) for r in body]
    mid = len(body) // 2
    if kind == "malformed":
        row = body[mid]
        if isinstance(row, list):
            row[2] = "not-a-number"
        else:
            row["fundingRate"] = "not-a-number"
    elif kind == "unordered":
        body[mid], body[mid + 1] = body[mid + 1], body[mid]
    elif kind == "duplicate":  # the same time twice, with different values
        row = list(body[mid]) if isinstance(body[mid], list) else dict(body[mid])
        if isinstance(row, list):
            row[4] = repr(float(row[4]) * 1.01)
        else:
            row["fundingRate"] = "0.0009"
        body.insert(mid + 1, row)
    elif kind == "short":
        body = body[: mid]
    return body


class _ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    exchange: LoopbackExchange

    def handle_error(self, request: object, client_address: object) -> None:  # resets are intentional
        pass


class LoopbackExchange:
    """A Binance REST look-alike on 127.0.0.1 serving ``bases`` between ``start`` and ``end`` (exclusive).

    Use as a context manager; :attr:`url` is the base URL to give the fetcher (``--api-url``).
    """

    def __init__(
        self,
        bases: Iterable[str] = ("BTC", "ETH"),
        start: str = "2024-01-01",
        end: str = "2024-03-01",
        *,
        data_dir: Path = SHARED_DATA,
        now: str | int | None = None,
        latency: float = 0.0,
    ) -> None:
        self.bases = [b.upper() for b in bases]
        self.start_ms = int(pd.Timestamp(start, tz="UTC").value // 1_000_000)
        self.end_ms = int(pd.Timestamp(end, tz="UTC").value // 1_000_000)
        self.now_ms = None if now is None else (
            now if isinstance(now, int) else int(pd.Timestamp(now, tz="UTC").value // 1_000_000))
        self.latency = latency
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._series: dict[tuple[str, str], _Series] = {}
        for base in self.bases:
            for kind in _FILES:
                df = source_frame(base, kind, data_dir)
                t = (df.index.as_unit("ms").asi8).astype(np.int64)
                sel = (t >= self.start_ms) & (t < self.end_ms)
                vals = df[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)[sel]
                self._series[(base, kind)] = _Series(t[sel], vals)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> LoopbackExchange:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.exchange = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # ----------------------------------------------------------------- bookkeeping
    def add_faults(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [f for f in self.faults if f.times > 0]

    def data_requests(self) -> list[tuple[str, dict[str, str]]]:
        """Requests other than exchangeInfo."""
        with self._lock:
            return [r for r in self.requests if not r[0].endswith("exchangeInfo")]

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def _log(self, path: str, query: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((path, query))
        if self.latency:
            time.sleep(self.latency)

    def _take_fault(self, raw_path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.times <= 0 or f.path not in raw_path:
                    continue
                if f.seen < f.after:
                    f.seen += 1
                    continue
                f.times -= 1
                return f
        return None

    def _give_back(self, fault: Fault) -> None:
        with self._lock:
            fault.times += 1

    def expected(self, base: str, kind: str) -> pd.DataFrame:
        """What the server serves for ``base``/``kind`` (ignoring :attr:`now_ms`), indexed by UTC time."""
        s = self._series[(base.upper(), kind)]
        index = pd.DatetimeIndex(pd.to_datetime(s.time, unit="ms", utc=True), name="time").as_unit("ms")
        return pd.DataFrame(s.values, columns=["open", "high", "low", "close", "volume"], index=index)

    # ----------------------------------------------------------------- routing
    def _route(self, path: str, q: dict[str, str]) -> tuple[int, object]:
        if path == "/api/v3/exchangeInfo":
            return 200, self._spot_info()
        if path == "/fapi/v1/exchangeInfo":
            return 200, self._futures_info()
        if path == "/api/v3/klines":
            return 200, self._klines("spot", q, default=500, maximum=1000)
        if path == "/fapi/v1/klines":
            return 200, self._klines("perp", q, default=500, maximum=1500)
        if path == "/fapi/v1/markPriceKlines":
            return 200, self._klines("mark", q, default=500, maximum=1500)
        if path == "/fapi/v1/fundingRate":
            return 200, self._funding(q)
        raise _ApiError(404, -1000, f"loopback exchange does not serve {path}")

    def _series_for(self, q: dict[str, str], kind: str) -> tuple[str, _Series]:
        sym = q.get("symbol")
        if not sym:
            raise _ApiError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        base = sym[:-4] if sym.endswith("USDT") else ""
        if base not in self.bases:
            raise _ApiError(400, -1121, "Invalid symbol.")
        return sym, self._series[(base, kind)]

    @staticmethod
    def _int(q: dict[str, str], key: str) -> int | None:
        if key not in q:
            return None
        try:
            return int(q[key])
        except ValueError:
            raise _ApiError(400, -1100, f"Illegal characters found in parameter '{key}'.") from None

    def _select(self, t: np.ndarray, q: dict[str, str], default: int, maximum: int) -> slice:
        limit = self._int(q, "limit")
        limit = default if limit is None else limit
        if not 1 <= limit <= maximum:
            raise _ApiError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        start, end = self._int(q, "startTime"), self._int(q, "endTime")
        hi = len(t) if end is None else int(np.searchsorted(t, end, side="right"))
        if self.now_ms is not None:
            hi = min(hi, int(np.searchsorted(t, self.now_ms, side="right")))
        if start is not None:
            lo = int(np.searchsorted(t, start, side="left"))
            return slice(lo, max(lo, min(hi, lo + limit)))
        return slice(max(0, hi - limit), hi)

    def _klines(self, kind: str, q: dict[str, str], *, default: int, maximum: int) -> list:
        _, s = self._series_for(q, kind)
        if q.get("interval") != "1h":
            raise _ApiError(400, -1120, "Invalid interval (the loopback exchange serves 1h only).")
        # the bar in progress at `now` is served too (open <= now), like Binance does
        sl = self._select(s.time, q, default, maximum)
        out = []
        for t, (o, h, lo, c, v) in zip(s.time[sl], s.values[sl], strict=True):
            vol = "0" if kind == "mark" else _fmt(v)
            out.append([int(t), _fmt(o), _fmt(h), _fmt(lo), _fmt(c), vol, int(t) + HOUR_MS - 1, "0", 0, "0", "0", "0"])
        return out

    def _funding(self, q: dict[str, str]) -> list:
        sym, s = self._series_for(q, "funding")
        sl = self._select(s.time, q, 100, 1000)
        return [{"symbol": sym, "fundingTime": int(t), "fundingRate": _fmt(v[0]),
                 "markPrice": ""} for t, v in zip(s.time[sl], s.values[sl], strict=True)]

    def _spot_info(self) -> dict:
        filters = [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.0", "stepSize": "0.00001"},
            {"filterType": "NOTIONAL", "minNotional": "5.0", "maxNotional": "9000000.0"},
        ]
        return {
            "timezone": "UTC", "serverTime": int(time.time() * 1000), "rateLimits": [], "exchangeFilters": [],
            "symbols": [{
                "symbol": f"{b}USDT", "status": "TRADING", "baseAsset": b, "baseAssetPrecision": 8,
                "quoteAsset": "USDT", "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "MARKET"], "icebergAllowed": True,
                "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": True,
                "filters": filters, "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
            } for b in self.bases],
        }

    def _futures_info(self) -> dict:
        filters = [
            {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "4529764", "tickSize": "0.10"},
            {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
            {"filterType": "MIN_NOTIONAL", "notional": "100"},
        ]
        return {
            "timezone": "UTC", "serverTime": int(time.time() * 1000), "futuresType": "U_MARGINED",
            "rateLimits": [], "exchangeFilters": [], "assets": [],
            "symbols": [{
                "symbol": f"{b}USDT", "pair": f"{b}USDT", "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
                "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": b,
                "quoteAsset": "USDT", "marginAsset": "USDT", "pricePrecision": 2, "quantityPrecision": 3,
                "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
                "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
                "maxMoveOrderLimit": 10000, "filters": filters, "orderTypes": ["LIMIT", "MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            } for b in self.bases],
        }
