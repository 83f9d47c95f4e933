"""What differs between exchanges beyond ccxt's unified API, pointing ccxt at another base URL, and the retry
policy of :mod:`fundarb.data.fetch` (backoff with jitter, ``Retry-After``)."""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fundarb.errors import ConfigError, did_you_mean

__all__ = ["PROFILES", "ExchangeProfile", "MalformedResponse", "RetryPolicy", "TransientResponse", "apply_api_url",
           "is_loopback", "retry_after_seconds", "transient_reason"]


# --------------------------------------------------------------------------------------------------- exchanges
@dataclass(frozen=True)
class ExchangeProfile:
    """What differs between exchanges beyond ccxt's unified API.

    Attributes
    ----------
    market_types
        ``options["fetchMarkets"]["types"]``: load only spot and linear perpetual markets.
    funding_limit
        Rows per funding-history request.
    funding_window_hours
        Width of a funding-history request window; None when the exchange pages forward from ``startTime``
        (Binance), so the window can be the whole range. Exchanges that return the *latest* rows of a window need a
        window that cannot hold more than ``funding_limit`` events (funding is at most hourly).
    kline_limits
        Rows per kline request by kind, overriding ccxt's ``features`` (``None``: ccxt's).
    tiers
        How leverage tiers are served publicly: ``"all"`` (``fetch_leverage_tiers``), ``"market"``
        (``fetch_market_leverage_tiers`` per symbol) or None (private: read from ``tiers_file``).
    transient_codes
        Error codes of the exchange's JSON body (``{"code": ..., "msg": ...}``) that mean "try again", whatever
        the HTTP status. Any 5xx, 429 and 418 are retried on every exchange.
    """

    market_types: tuple[str, ...] = ("spot", "linear")
    funding_limit: int = 100
    funding_window_hours: int | None = 100
    kline_limits: Mapping[str, int] = field(default_factory=dict)
    tiers: str | None = None
    transient_codes: frozenset[int] = frozenset()


PROFILES: dict[str, ExchangeProfile] = {
    # klines: ccxt's features (spot 1000, USDT-M 500); funding: 1000 per request, ascending from startTime;
    # leverage brackets are a signed (private) endpoint
    # -1000 unknown error, -1001 internal error/disconnected, -1003 too many requests, -1007 backend timeout
    "binance": ExchangeProfile(("spot", "linear"), funding_limit=1000, funding_window_hours=None, tiers=None,
                               transient_codes=frozenset({-1000, -1001, -1003, -1007})),
    # v5 market endpoints return the newest rows of a window; 200 funding rows at most; risk limits are public
    "bybit": ExchangeProfile(("spot", "linear"), funding_limit=200, funding_window_hours=200, tiers="all"),
    # history-candles serve 100 rows at most; funding history 100; position tiers are public, per instrument
    "okx": ExchangeProfile(("spot", "swap"), funding_limit=100, funding_window_hours=100,
                           kline_limits={"spot": 100, "perp": 100, "mark": 100}, tiers="market"),
}


def apply_api_url(ex: Any, api_url: str | Mapping[str, str] | None) -> None:
    """Point a ccxt exchange at another base URL (testnet, proxy, loopback test server).

    A string replaces the scheme and host of every entry of ``ex.urls["api"]`` and keeps its path, so Binance's
    ``https://api.binance.com/api/v3`` becomes ``<api_url>/api/v3`` and ``https://fapi.binance.com/fapi/v1``
    becomes ``<api_url>/fapi/v1`` (Bybit's ``https://api.{hostname}`` becomes ``<api_url>``). A mapping sets
    entries by key (``{"public": ..., "fapiPublic": ...}``) with full URLs; its ``"*"`` key rewrites the rest.
    """
    if api_url is None:
        return
    api = ex.urls.get("api")
    mapping = {"*": api_url} if isinstance(api_url, str) else dict(api_url)
    base = mapping.pop("*", None)
    for key, url in mapping.items():
        _check_url(url)
        if not isinstance(api, dict) or key not in api:
            keys = list(api) if isinstance(api, dict) else []
            raise ConfigError(f"api_url: {ex.id} has no API entry {key!r}{did_you_mean(key, keys)}; "
                              f"entries: {', '.join(keys)}")
    if base is not None:
        _check_url(base)
        root = base.rstrip("/")

        def rewrite(node: Any) -> Any:
            if isinstance(node, str):
                parts = urlsplit(node)
                return root + parts.path + (f"?{parts.query}" if parts.query else "")
            if isinstance(node, dict):
                return {k: rewrite(v) for k, v in node.items()}
            if isinstance(node, list):
                return [rewrite(v) for v in node]
            return node

        api = rewrite(api)
    if isinstance(api, dict):
        api = dict(api)
        api.update(mapping)
    ex.urls["api"] = api


def _check_url(url: object) -> None:
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"api_url must be an http(s) URL such as http://127.0.0.1:8080, got {url!r}")


def is_loopback(api_url: str | Mapping[str, str] | None) -> bool:
    urls = [api_url] if isinstance(api_url, str) else list((api_url or {}).values())
    hosts = {urlsplit(str(u)).hostname for u in urls}
    return bool(hosts) and hosts <= {"127.0.0.1", "localhost", "::1"}


# --------------------------------------------------------------------------------------------------- retries
class MalformedResponse(Exception):
    """A response that is not valid JSON or whose content fails validation; it is retried, never stored."""


class TransientResponse(Exception):
    """An HTTP answer by which the exchange means "try again" (see :func:`transient_reason`); it is retried.

    Attributes
    ----------
    status
        The HTTP status.
    retry_after
        Seconds asked by a ``Retry-After`` header, if any.
    """

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


RETRY_STATUSES = frozenset({418, 429})


def transient_reason(status: int, body: object, codes: frozenset[int] = frozenset()) -> str | None:
    """Why an HTTP answer is worth retrying, or None: any 5xx, 429 or 418 whatever the body, or an error code of
    ``codes`` in a JSON body ``{"code": ..., "msg": ...}``. Other 4xx are the request's own fault: never retried.
    """
    if status >= 500 or status in RETRY_STATUSES:
        return f"HTTP {status}"
    code = _body_code(body)
    if code is not None and code in codes:
        return f"HTTP {status} with error code {code}"
    return None


def _body_code(body: object) -> int | None:
    if not isinstance(body, str | bytes) or not body:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    code = doc.get("code") if isinstance(doc, dict) else None
    if isinstance(code, bool):
        return None
    try:
        return int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter; ``Retry-After`` wins when the server sends it.

    Attributes
    ----------
    max_tries
        Tries of one request before giving up (the first try included).
    base_delay, factor, max_delay
        Backoff ``base_delay · factor^(try-1)`` seconds, at most ``max_delay``, times ``1 + jitter·U(0,1)``.
    max_retry_after
        A ``Retry-After`` longer than this (an IP ban) is not waited for: the fetch gives up at once.
    sleep
        Called with the delay in seconds (tests inject a recorder).
    """

    max_tries: int = 6
    base_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.25
    max_retry_after: float = 600.0
    sleep: Callable[[float], None] = time.sleep

    def __post_init__(self) -> None:
        if self.max_tries < 1:
            raise ConfigError(f"max_retries must be at least 1, got {self.max_tries}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed try number ``attempt`` (1-based); None: do not retry."""
        if attempt >= self.max_tries:
            return None
        if retry_after is not None:
            return None if retry_after > self.max_retry_after else max(float(retry_after), 0.0)
        backoff = min(self.max_delay, self.base_delay * self.factor ** (attempt - 1))
        return backoff * (1.0 + self.jitter * random.random())


def retry_after_seconds(headers: Any) -> float | None:
    if not headers:
        return None
    value = None
    for k, v in dict(headers).items():
        if str(k).lower() == "retry-after":
            value = str(v).strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
