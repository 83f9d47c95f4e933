"""The traders' calculators behind ``fundarb calc``: position sizing (DESIGN §3), margins and liquidation prices
(§5, both the guides' and the exchange's rule), the spot-margin risk ratio, the maximum borrow and the APR the
funding-rate bot quotes.

Every function checks its inputs first (finite real numbers in range, no booleans) and raises
:class:`~fundarb.errors.ConfigError` naming the parameter and its allowed range; results are frozen dataclasses
whose :meth:`to_dict` is JSON-ready. The exchange's liquidation rule comes from :mod:`fundarb.engine.tiers`,
imported only when a margin or liquidation is computed, so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fundarb.errors import ConfigError, did_you_mean

__all__ = [
    "MAX_LEVERAGE", "MAX_MARGIN_LEVERAGE", "MAX_SPOT_LEVERAGE", "RISK_LIQUIDATION", "RISK_WARNING",
    "RISK_WITHDRAW", "FundingApr", "Liquidation", "Margin", "MaxBorrow", "RiskRatio", "Sizing", "apr",
    "cli_option_names", "liquidation", "liquidation_price", "margin", "max_borrow", "risk_ratio", "size",
]

MAX_LEVERAGE = 125.0
"""Highest perp leverage accepted with a flat maintenance rate (with tiers: initial above maintenance margin)."""
MAX_SPOT_LEVERAGE = 10.0
"""Spot margin leverage ``Ls`` of a reverse carry must be below this: at 10 the starting margin level
``1 + 1/Ls`` is already the lender's liquidation level 1.10."""
MAX_MARGIN_LEVERAGE = 10.0
"""Highest margin-account leverage for :func:`max_borrow` (Binance margin accounts offer 3×, 5× and 10×)."""
RISK_WITHDRAW, RISK_WARNING, RISK_LIQUIDATION = 1.5, 1.3, 1.1
"""Risk-ratio bands of the guides: ≥ 150% may withdraw, 130–150% warning, ≤ 110% liquidation."""

_CLI_NAMES: ContextVar[bool] = ContextVar("fundarb_calc_cli_names", default=False)


@contextmanager
def cli_option_names() -> Iterator[None]:
    """Within this block, error messages name parameters as ``fundarb calc`` options (``--qty``, not ``qty``)."""
    token = _CLI_NAMES.set(True)
    try:
        yield
    finally:
        _CLI_NAMES.reset(token)


def _name(param: str) -> str:
    return "--" + param.replace("_", "-") if _CLI_NAMES.get() else param


def _num(param: str, value: Any, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
         high_open: bool = False, what: str = "") -> float:
    """``value`` as a float if it is a finite real number (not a bool) in range; ConfigError otherwise."""
    parts = []
    if math.isfinite(low):
        parts.append(f"{'>' if low_open else '≥'} {low:g}")
    if math.isfinite(high):
        parts.append(f"{'<' if high_open else '≤'} {high:g}")
    rng = (" " + " and ".join(parts)) if parts else ""
    msg = f"{_name(param)} must be a finite number{rng}{what}; got {value!r}"
    if isinstance(value, bool) or type(value).__name__ == "bool_" or not isinstance(value, numbers.Real):
        raise ConfigError(msg)
    v = float(value)
    if not math.isfinite(v) or (v <= low if low_open else v < low) or (v >= high if high_open else v > high):
        raise ConfigError(msg)
    return v


def _choice(param: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        opts = " or ".join(repr(a) for a in allowed)
        hint = did_you_mean(str(value).strip().lower(), allowed)
        raise ConfigError(f"{_name(param)} must be {opts}; got {value!r}{hint}")
    return value


def _finite(what: str, value: float) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"the inputs are too large or too small to compute {what} in floating point "
                          f"(got {value}); scale them")
    return value


class _Result:
    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, float):
                _finite(f.name, v)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (numbers stay numbers, absent values are None)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]


# ----------------------------------------------------------------------------------------------- sizing (§3)
@dataclass(frozen=True)
class Sizing(_Result):
    """The legs of one hedged pair sized from equity (DESIGN §3); see :func:`size`."""

    direction: str
    capital: float
    leverage: float
    spot_leverage: float | None
    spot_notional: float
    perp_notional: float
    perp_margin: float
    spot_collateral: float | None
    spot_margin_level: float | None
    price: float | None
    qty: float | None


def size(capital: float, leverage: float, *, reverse: bool = False, spot_leverage: float | None = None,
         price: float | None = None) -> Sizing:
    """Split equity ``E`` into the two legs of a carry or reverse carry (DESIGN §3).

    Carry: spot notional ``N = E·L/(L+1)`` bought with cash, perp margin ``N/L``. Reverse carry: ``N = E /
    (1/L + 1/Ls)`` of borrowed base sold spot against collateral ``N/Ls``, perp margin ``N/L``. The perp's
    notional is ``N`` on both; the legs use the whole of ``E``.

    Parameters
    ----------
    capital
        Equity ``E`` (> 0).
    leverage
        Perp leverage ``L``, in (0, 125].
    reverse
        Size a reverse carry (needs ``spot_leverage``).
    spot_leverage
        Spot margin leverage ``Ls`` of the reverse carry's loan, in (0, 10): the loan starts at margin level
        ``1 + 1/Ls``, which must stay above the lender's liquidation level 1.10.
    price
        Optional price ``P`` (> 0): adds the base quantity ``N/P`` held on each leg.

    Returns
    -------
    Sizing

    Examples
    --------
    >>> s = size(1000, 1)
    >>> s.spot_notional, s.perp_margin
    (500.0, 500.0)
    >>> s = size(1000, 9, price=30_000)
    >>> s.spot_notional, s.perp_margin, round(s.qty, 6)
    (900.0, 100.0, 0.03)
    >>> s = size(1000, 2, reverse=True, spot_leverage=3)
    >>> s.spot_notional, s.perp_margin, s.spot_collateral, round(s.spot_margin_level, 6)
    (1200.0, 600.0, 400.0, 1.333333)
    """
    e = _num("capital", capital, low=0, low_open=True)
    lev = _num("leverage", leverage, low=0, low_open=True, high=MAX_LEVERAGE)
    if not isinstance(reverse, bool):
        raise ConfigError(f"{_name('reverse')} must be True or False; got {reverse!r}")
    p = None if price is None else _num("price", price, low=0, low_open=True)
    ls: float | None = None
    coll: float | None = None
    level: float | None = None
    if reverse:
        if spot_leverage is None:
            raise ConfigError(f"a reverse carry needs {_name('spot_leverage')} (spot margin leverage Ls, in (0, "
                              f"{MAX_SPOT_LEVERAGE:g}))")
        ls = _num("spot_leverage", spot_leverage, low=0, low_open=True, high=MAX_SPOT_LEVERAGE, high_open=True,
                  what=" (at 10 the loan starts at the liquidation margin level 1.10)")
        n = e / (1 / lev + 1 / ls)
        coll, level = n / ls, 1 + 1 / ls
    else:
        if spot_leverage is not None:
            raise ConfigError(f"{_name('spot_leverage')} applies to a reverse carry only "
                              f"(add {_name('reverse')})")
        n = e * lev / (lev + 1)
    return Sizing(direction="reverse" if reverse else "carry", capital=e, leverage=lev,
                  spot_leverage=ls, spot_notional=n, perp_notional=n, perp_margin=n / lev,
                  spot_collateral=coll, spot_margin_level=level, price=p, qty=None if p is None else n / p)


# ------------------------------------------------------------------------------------------ margins (§5)
def _tier_table(mmr: Any, tiers: Any) -> tuple[Any, bool]:
    """The tier table of a flat ``mmr`` (default 0.005) or of ``tiers``; True when flat."""
    from fundarb.engine.tiers import check_tiers, flat_tiers, tiers_from_ccxt
    from fundarb.errors import DataError

    if tiers is not None:
        if mmr is not None:
            raise ConfigError(f"give {_name('mmr')} (a flat maintenance margin rate) or {_name('tiers')}, not both")
        if isinstance(tiers, str | bytes | os.PathLike):
            raise ConfigError("tiers is a file path: read one market's tiers with "
                              "fundarb.engine.tiers.load_tiers(path, symbol) and pass the table")
        if isinstance(tiers, Mapping):
            raise ConfigError("tiers must be one market's tiers (a list of ccxt rows or a tier table), not a mapping "
                              "symbol → tiers: pass tiers['BTC/USDT:USDT'] or load_tiers(path, symbol)")
        if isinstance(tiers, Sequence) and not isinstance(tiers, str) and tiers and isinstance(tiers[0], Mapping):
            try:
                return tiers_from_ccxt(tiers), False
            except DataError as exc:
                raise ConfigError(str(exc)) from exc
        return check_tiers(tiers), False
    rate = 0.005 if mmr is None else _num("mmr", mmr, low=0, high=1, high_open=True)
    return flat_tiers(rate), True


def _tier_at(table: Any, notional: float) -> tuple[float, float]:
    from fundarb.engine.tiers import tier_of

    i = tier_of(table, notional)
    return float(table[i, 2]), float(table[i, 3])


@dataclass(frozen=True)
class Margin(_Result):
    """Position value, initial and maintenance margin of a perp position; see :func:`margin`."""

    price: float
    qty: float
    leverage: float
    position_value: float
    initial_margin: float
    maintenance_margin: float
    mmr: float
    cum: float


def margin(price: float, qty: float, leverage: float, *, mmr: float | None = None,
           tiers: Any = None) -> Margin:
    """Position value ``P·Q``, initial margin ``P·Q/L`` and maintenance margin ``P·Q·mmr − cum`` (DESIGN §5).

    Parameters
    ----------
    price, qty
        Price and base quantity (> 0).
    leverage
        Leverage ``L`` (> 0; ≤ 125 with a flat ``mmr``); the initial margin must exceed the maintenance margin.
    mmr
        Flat maintenance margin rate in [0, 1), ``cum = 0`` (default 0.005 when ``tiers`` is None).
    tiers
        ccxt leverage tiers of the market (``fetch_leverage_tiers`` rows) or a tier table from
        :func:`fundarb.engine.tiers.load_tiers`; the tier holding ``P·Q`` gives ``(mmr, cum)``.

    Returns
    -------
    Margin

    Examples
    --------
    0.1 BTC at 30,000 with 10× leverage and a 0.5% maintenance rate:

    >>> m = margin(30_000, 0.1, 10, mmr=0.005)
    >>> m.position_value, m.initial_margin, m.maintenance_margin
    (3000.0, 300.0, 15.0)
    """
    p = _num("price", price, low=0, low_open=True)
    q = _num("qty", qty, low=0, low_open=True)
    table, flat = _tier_table(mmr, tiers)
    lev = _num("leverage", leverage, low=0, low_open=True, high=MAX_LEVERAGE if flat else math.inf)
    value = _finite("the position value", p * q)
    rate, cum = _tier_at(table, value)
    im, mm = value / lev, value * rate - cum
    if im <= mm:
        raise ConfigError(f"{_name('leverage')} {lev:g} gives an initial margin {im:g} at or below the maintenance "
                          f"margin {mm:g} (mmr {rate:g}, cum {cum:g}): leverage must be below {value / mm:g}")
    return Margin(price=p, qty=q, leverage=lev, position_value=value, initial_margin=im, maintenance_margin=mm,
                  mmr=rate, cum=cum)


# ------------------------------------------------------------------------------------- liquidation (§5)
@dataclass(frozen=True)
class Liquidation(_Result):
    """Liquidation prices of an isolated perp position by both rules; see :func:`liquidation`."""

    side: str
    entry: float
    qty: float
    margin: float
    notional: float
    leverage: float
    maintenance_margin: float
    mmr: float
    cum: float
    rule: str
    liquidation_price: float
    distance: float
    exchange: float
    guide: float


_RULES = {"exchange": "mark", "guide": "entry"}


def liquidation(side: str, entry: float, qty: float, margin: float, *, mmr: float | None = None,
                tiers: Any = None, rule: str = "exchange") -> Liquidation:
    """Liquidation price of an isolated perp position by the exchange's rule and by the traders' guides' rule.

    Solves ``MB + s·q·(P − entry) = MM`` (DESIGN §5; ``s = +1`` long, ``−1`` short). The exchange takes the
    maintenance margin ``MM`` on the notional at ``P`` (``q·P·mmr − cum``, tier of ``q·P``; what the engine
    uses); the guides take it on the entry notional, which gives round numbers.

    Parameters
    ----------
    side
        ``"long"`` or ``"short"``.
    entry, qty
        Entry price and base quantity (> 0).
    margin
        Isolated margin balance ``MB`` (> 0), above the maintenance margin at entry.
    mmr, tiers
        As in :func:`margin`.
    rule
        ``"exchange"`` or ``"guide"``: which price ``liquidation_price`` and ``distance`` report.

    Returns
    -------
    Liquidation
        ``exchange`` and ``guide`` are both prices; ``distance`` is ``liquidation_price / entry − 1``;
        ``leverage`` is ``notional / margin``.

    Examples
    --------
    The table of DESIGN §5 (flat mmr 0.5%, no fees):

    >>> r = liquidation("long", 30_000, 0.1, 300, mmr=0.005)
    >>> r.guide, round(r.exchange, 3)
    (27150.0, 27135.678)
    >>> r = liquidation("long", 30_000, 20_000 / 30_000, 1_000, mmr=0.005)
    >>> round(r.guide, 9), round(r.exchange, 3)
    (28650.0, 28643.216)
    >>> r = liquidation("short", 30_000, 0.1, 300, mmr=0.005, rule="guide")
    >>> r.liquidation_price, round(r.exchange, 3), round(r.distance, 4)
    (32850.0, 32835.821, 0.095)
    """
    from fundarb.engine.tiers import liquidation_price as _engine_liquidation_price

    side = _choice("side", side, ("long", "short"))
    rule = _choice("rule", rule, tuple(_RULES))
    p = _num("entry", entry, low=0, low_open=True)
    q = _num("qty", qty, low=0, low_open=True)
    mb = _num("margin", margin, low=0, low_open=True)
    table, _ = _tier_table(mmr, tiers)
    rate, cum = _tier_at(table, _finite("the notional", p * q))
    mm = p * q * rate - cum
    if mb <= mm:
        raise ConfigError(f"{_name('margin')} {mb:g} must be above the maintenance margin at entry {mm:g} "
                          f"({q:g} × {p:g} × mmr {rate:g} − cum {cum:g}); at or below it the position is "
                          "liquidated at once")
    prices = {r: _engine_liquidation_price(side, p, q, mb, tiers=table, mm_basis=b) for r, b in _RULES.items()}
    chosen = prices[rule]
    return Liquidation(side=side, entry=p, qty=q, margin=mb, notional=p * q, leverage=p * q / mb,
                       maintenance_margin=mm, mmr=rate, cum=cum, rule=rule, liquidation_price=chosen,
                       distance=chosen / p - 1, exchange=prices["exchange"], guide=prices["guide"])


def liquidation_price(side: str, entry: float, qty: float, margin: float, *, mmr: float | None = None,
                      tiers: Any = None, mm_basis: str = "mark") -> float:
    """Liquidation price of an isolated perp position: ``mm_basis="mark"`` is the exchange's rule (the engine's),
    ``"entry"`` the guides'. See :func:`liquidation` for both at once and the parameters.

    Examples
    --------
    >>> round(liquidation_price("short", 30_000, 0.1, 300, mmr=0.005), 3)
    32835.821
    >>> liquidation_price("short", 30_000, 0.1, 300, mmr=0.005, mm_basis="entry")
    32850.0
    """
    if mm_basis in _RULES:
        raise ConfigError(f"mm_basis must be 'mark' or 'entry'; got {mm_basis!r} (the exchange's rule is "
                          "mm_basis='mark', the guides' mm_basis='entry')")
    basis = _choice("mm_basis", mm_basis, ("mark", "entry"))
    rule = "exchange" if basis == "mark" else "guide"
    return liquidation(side, entry, qty, margin, mmr=mmr, tiers=tiers, rule=rule).liquidation_price


# ------------------------------------------------------------------------------------ spot margin account
@dataclass(frozen=True)
class RiskRatio(_Result):
    """Risk ratio of a spot margin account, its band and the price at which it reaches 110%."""

    ratio: float
    percent: float
    band: str
    band_note: str
    price: float
    assets: float
    liabilities: float
    liquidation_price: float | None
    liquidation_move: float | None
    note: str


_BANDS = (
    (RISK_WITHDRAW, "may withdraw", "≥ 150%: assets above what the loan needs may be transferred out"),
    (RISK_WARNING, "warning", "130–150%: no withdrawal; watch the price"),
    (RISK_LIQUIDATION, "danger", "110–130%: below the 130% level at which the guides act (add collateral or "
                                 "repay); liquidation at 110%"),
    (-math.inf, "liquidation", "≤ 110%: the lender liquidates the loan"),
)


def risk_ratio(quote_assets: float, base_assets: float, price: float, borrowed_quote: float, borrowed_base: float,
               *, interest_quote: float = 0.0, interest_base: float = 0.0) -> RiskRatio:
    """Risk ratio ``R = [(A − i)/P + (B − j)] ÷ [X/P + Y]`` of a spot margin account, in base units.

    ``A``/``B``: quote/base assets held; ``X``/``Y``: quote/base borrowed; ``i``/``j``: unpaid interest in quote
    /base; ``P``: price of the base in quote. Bands of the guides: ``R ≥ 150%`` may withdraw, 130–150% warning,
    110–130% danger (the guides act below 130%), ``R ≤ 110%`` liquidation. Multiplying through by ``P``, ``R``
    reaches 110% at ``P* = (1.1·X − (A − i)) / ((B − j) − 1.1·Y)``, when that is a positive price; otherwise no
    price takes the ratio to 110% (for instance a loan and its collateral in the same asset).

    Parameters
    ----------
    quote_assets, base_assets, borrowed_quote, borrowed_base, interest_quote, interest_base
        ``A, B, X, Y, i, j`` (≥ 0); something must be borrowed (``X + Y > 0``).
    price
        ``P`` (> 0).

    Returns
    -------
    RiskRatio
        ``ratio`` as a fraction and ``percent``; ``assets``/``liabilities`` in quote at ``P``;
        ``liquidation_price`` ``P*`` (None when there is none, ``note`` says why) and ``liquidation_move``
        ``P*/P − 1``.

    Examples
    --------
    A reverse carry: 1 BTC borrowed and sold at 30,000 next to 10,000 USDT of collateral, 400 USDT interest owed:

    >>> r = risk_ratio(40_000, 0, 30_000, 0, 1, interest_quote=400)
    >>> round(r.percent, 9), r.band, round(r.liquidation_price, 6)
    (132.0, 'warning', 36000.0)

    A long on margin: 1.5 BTC held against 30,000 USDT borrowed at 30,000:

    >>> r = risk_ratio(0, 1.5, 30_000, 30_000, 0)
    >>> r.percent, r.band, round(r.liquidation_price, 6), round(r.liquidation_move, 6)
    (150.0, 'may withdraw', 22000.0, -0.266667)
    """
    a = _num("quote_assets", quote_assets, low=0)
    b = _num("base_assets", base_assets, low=0)
    p = _num("price", price, low=0, low_open=True)
    x = _num("borrowed_quote", borrowed_quote, low=0)
    y = _num("borrowed_base", borrowed_base, low=0)
    i = _num("interest_quote", interest_quote, low=0)
    j = _num("interest_base", interest_base, low=0)
    if x == 0 and y == 0:
        raise ConfigError(f"nothing borrowed: {_name('borrowed_quote')} or {_name('borrowed_base')} must be > 0 "
                          "(the risk ratio of an account without a loan is undefined)")
    ratio = _finite("the risk ratio", ((a - i) / p + (b - j)) / (x / p + y))
    level = round(ratio, 12)
    band, band_note = next((n, t) for lo, n, t in _BANDS if (level > lo if lo == RISK_LIQUIDATION else level >= lo))
    num, den = RISK_LIQUIDATION * x - (a - i), (b - j) - RISK_LIQUIDATION * y
    p_star = num / den if den != 0 else math.nan
    if den == 0 or not (p_star > 0 and math.isfinite(p_star)):
        trend = ("it is 110% at every price" if den == 0 and num == 0 else
                 f"it stays {'above' if ratio > RISK_LIQUIDATION else 'below'} 110% at every price")
        liq, move, note = None, None, f"no price takes the ratio to 110%: {trend}"
    else:
        liq, move = p_star, p_star / p - 1
        way = "rises" if p_star > p else "falls"
        note = (f"the ratio reaches 110% if the price {way} to {p_star:,.6g} ({move:+.2%})" if ratio > RISK_LIQUIDATION
                else f"the ratio is at or below 110% now; it is back above 110% past {p_star:,.6g}")
    return RiskRatio(ratio=ratio, percent=ratio * 100, band=band, band_note=band_note, price=p,
                     assets=(a - i) + (b - j) * p, liabilities=x + y * p, liquidation_price=liq,
                     liquidation_move=move, note=note)


@dataclass(frozen=True)
class MaxBorrow(_Result):
    """Maximum further borrow of a margin account; see :func:`max_borrow`."""

    net_transfer: float
    max_leverage: float
    borrowed: float
    interest: float
    unreturned: float
    equity: float
    max_borrow: float
    available: float


def max_borrow(net_transfer: float, max_leverage: float, *, borrowed: float = 0.0, interest: float = 0.0,
               unreturned: float = 0.0) -> MaxBorrow:
    """Maximum amount a margin account may still borrow: ``(T − u − i)·(L − 1) − b``.

    Parameters
    ----------
    net_transfer
        ``T``: net amount transferred into the account (≥ 0), in the asset (or its value) being borrowed.
    max_leverage
        ``L``: the account's maximum leverage, in (1, 10].
    borrowed, interest, unreturned
        ``b`` already borrowed, ``i`` unpaid interest, ``u`` unreturned amount (≥ 0), in the same unit.

    Returns
    -------
    MaxBorrow
        ``max_borrow`` is the formula (negative when the account is over-borrowed); ``available`` is
        ``max(0, max_borrow)``; ``equity`` is ``T − u − i``.

    Examples
    --------
    >>> max_borrow(1_000, 3, borrowed=500, interest=10).max_borrow
    1480.0
    >>> max_borrow(5_000, 5, borrowed=12_000, interest=50, unreturned=200).max_borrow
    7000.0
    >>> r = max_borrow(1_000, 3, borrowed=2_500)
    >>> r.max_borrow, r.available
    (-500.0, 0.0)
    """
    t = _num("net_transfer", net_transfer, low=0)
    lev = _num("max_leverage", max_leverage, low=1, low_open=True, high=MAX_MARGIN_LEVERAGE)
    b = _num("borrowed", borrowed, low=0)
    i = _num("interest", interest, low=0)
    u = _num("unreturned", unreturned, low=0)
    equity = t - u - i
    value = equity * (lev - 1) - b
    return MaxBorrow(net_transfer=t, max_leverage=lev, borrowed=b, interest=i, unreturned=u, equity=equity,
                     max_borrow=value, available=max(value, 0.0))


# --------------------------------------------------------------------------------------------- funding bot
@dataclass(frozen=True)
class FundingApr(_Result):
    """APRs of a 3-day funding sum as Binance's arbitrage bot quotes them; see :func:`apr`."""

    funding_3d: float
    apr_capital: float
    apr_notional: float
    direction: str


def apr(funding_3d: float) -> FundingApr:
    """APR of the funding collected over the last 3 days, as quoted by Binance's funding-rate arbitrage bot.

    The bot holds the pair at 1×, so half of the capital is the notional: APR on capital ``|F|/3·365/2``;
    APR on notional ``F·365/3`` (signed). It trades the carry when ``F > 0``, the reverse carry when
    ``F < 0``, nothing when ``F = 0``.

    Parameters
    ----------
    funding_3d
        ``F``: the sum of the funding rates of the last 3 days as a fraction (0.003 is 0.3%), in (−1, 1).

    Returns
    -------
    FundingApr

    Examples
    --------
    >>> r = apr(0.003)
    >>> round(r.apr_capital, 12), round(r.apr_notional, 12), r.direction
    (0.1825, 0.365, 'carry')
    >>> r = apr(-0.0015)
    >>> round(r.apr_capital, 12), round(r.apr_notional, 12), r.direction
    (0.09125, -0.1825, 'reverse')
    """
    f = _num("funding_3d", funding_3d, low=-1, high=1, low_open=True, high_open=True,
             what=" (a fraction: 0.003 is 0.3% over 3 days)")
    direction = "carry" if f > 0 else "reverse" if f < 0 else "none"
    return FundingApr(funding_3d=f, apr_capital=abs(f) / 3 * 365 / 2, apr_notional=f * 365 / 3,
                      direction=direction)
