"""`FundingCarry`: enter a delta-neutral carry when trailing funding pays enough, leave when it stops (DESIGN §7).

This is the logic of Binance's Funding Rate Arbitrage Bot (``direction="auto"``, 3-day window), with hysteresis
and an optional minimum holding time. Timing (DESIGN §2): the decision is made at bar t's close from the filter
value at bar t (rows ≤ t), then shifted by one bar, so ``targets(market)`` at bar t+1 is executed by the engine
at bar t+1's open and has seen rows ≤ t only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.durations import parse_duration
from fundarb.engine.config import STRATEGY_OPTIONS, Costs, EngineOptions
from fundarb.errors import ConfigError, did_you_mean, is_real
from fundarb.signals.filters import annualised_on_notional, trailing_funding
from fundarb.signals.nb import carry_states_nb

__all__ = ["DIRECTIONS", "FundingCarry", "shift_decisions"]

DIRECTIONS = ("carry", "reverse", "auto")
"""``carry``: long spot / short perp, entered on positive funding; ``reverse``: borrowed spot sold / long perp, entered
on negative funding; ``auto``: whichever the sign of the filter says (Binance's bot)."""

#: The engine's defaults (one declaration, :class:`fundarb.engine.config.EngineOptions`), for the strategies' fields.
ENGINE_DEFAULTS = EngineOptions()

_ZERO = re.compile(r"\s*0+(?:\.0*)?\s*([a-zA-Z]*)\s*")


# ---------------------------------------------------------------------------------------------- validation helpers
def check_choice(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        opts = ", ".join(repr(a) for a in allowed)
        raise ConfigError(f"{key} must be one of {opts}; got {value!r}{did_you_mean(str(value), allowed)}")


def check_number(key: str, value: Any, *, low: float = -math.inf, high: float = math.inf, low_open: bool = False,
                 allow_inf: bool = False, what: str = "") -> float:
    """Return ``value`` as a float if it is a real number in range; raise ConfigError naming ``key`` otherwise."""
    rng = f"{'>' if low_open else '≥'} {low:g}" + (f" and ≤ {high:g}" if math.isfinite(high) else "")
    if not is_real(value) or math.isnan(value):  # NumPy number scalars are numbers; booleans are not
        raise ConfigError(f"{key} must be a number {rng}{what}; got {value!r}")
    v = float(value)
    if math.isinf(v) and not (allow_inf and v > 0):
        raise ConfigError(f"{key} must be a finite number {rng}{what}; got {value!r}")
    if (v <= low if low_open else v < low) or v > high:
        raise ConfigError(f"{key} must be {rng}{what}; got {value!r}")
    return v


def check_duration(key: str, value: Any, *, allow_zero: bool = False) -> pd.Timedelta:
    """Read a duration such as ``"3d"``; ``allow_zero`` also accepts ``"0h"``/``"0"``."""
    if isinstance(value, pd.Timedelta):
        td = value
        if td < pd.Timedelta(0) or (td == pd.Timedelta(0) and not allow_zero):
            raise ConfigError(f"{key} must be a positive duration like '3d'; got {value!r}")
        return td
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a duration string like '3d', '8h', '30d' or '1w'; got {value!r}")
    zero = _ZERO.fullmatch(value) if allow_zero else None
    if zero is not None:
        if zero.group(1):
            parse_duration("1" + zero.group(1), name=key)  # the unit must still be one we read
        return pd.Timedelta(0)
    return parse_duration(value, name=key)


def check_engine_options(obj: Any) -> None:
    """Validate (and normalise) the engine options shared by every strategy dataclass, by
    :class:`~fundarb.engine.config.EngineOptions`' own ranges (``spot_rebalance_level`` against the default spot
    liquidation level; ``backtest()`` checks again against the level it is given)."""
    opts = EngineOptions(**{k: getattr(obj, k) for k in STRATEGY_OPTIONS})
    for k in STRATEGY_OPTIONS:
        object.__setattr__(obj, k, getattr(opts, k))
    if not isinstance(obj.name, str):
        raise ConfigError(f"name must be a string; got {obj.name!r}")


def engine_options_of(obj: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`fundarb.backtest` a strategy dataclass carries."""
    return {k: getattr(obj, k) for k in STRATEGY_OPTIONS}


def shift_decisions(decided: np.ndarray, index: pd.Index, columns: pd.Index, fill: float = 0) -> pd.DataFrame:
    """Shift decisions made at each bar's close by one bar: row t of the result is the decision of row t−1
    (row 0 gets ``fill``), so the engine executes it at bar t's open having seen rows ≤ t−1 only."""
    out = np.empty_like(decided)
    out[0] = fill
    out[1:] = decided[:-1]
    return pd.DataFrame(out, index=index, columns=columns)


# ---------------------------------------------------------------------------------------------- the strategy
@dataclass(frozen=True, kw_only=True)
class FundingCarry:
    """Funding carry on trailing funding, one independent position per symbol.

    Parameters
    ----------
    window
        Trailing window of the funding filter, a duration (``"3d"``: Binance's bot; ``"7d"``, ``"30d"``, …).
        The filter is the annualised rate on notional ``F_w · 365 / days(w)`` (see :mod:`fundarb.signals.filters`).
    entry
        Enter when the filter reaches this annualised rate on notional in an allowed direction
        (0.10 = 10 %/year; for reverse carry ``|filter| ≥ entry`` with a negative filter). ``≥ 0``.
    exit
        Leave when the filter, signed in the position's direction, falls below this (``0 ≤ exit ≤ entry``;
        ``exit < entry`` is the hysteresis band), or when its sign no longer matches the position.
    direction
        ``"carry"`` (positive funding only), ``"reverse"`` (negative only) or ``"auto"`` (by the filter's sign,
        like Binance's bot; a sign flip past ``entry`` turns the position over in one execution).
    min_hold
        Minimum time a position is held before the strategy may leave it (``"0h"``: none), rounded up to whole
        bars. It does not prevent a liquidation, which the engine applies regardless.
    leverage, spot_leverage, rebalance_at, spot_rebalance_level, rebalance_every, after_liquidation, \
    liquidation_loss, margin_mode
        Engine options passed to :func:`fundarb.backtest` by :meth:`engine_options`: perp leverage ``L``
        (> 0), spot margin leverage ``Ls`` of reverse carry (> 0), margin management (DESIGN §5: the share
        ``0 < rebalance_at < 1`` of the perp's margin cushion used that triggers a re-size; the spot margin level
        ``spot_rebalance_level`` (> 1.10, the spot liquidation level) that re-sizes a reverse carry; a periodic
        re-size; None: off), ``"close"``/``"hold"``/``"reenter"`` after a liquidation, ``"fee"``/``"margin"``
        lost in a liquidation, ``"isolated"``/``"cross"`` margin.
    name
        Label for reports.

    Notes
    -----
    A NaN filter (a symbol with less than one window of history, or outside its active span) keeps the current
    state. After a liquidation the engine does not re-enter the same direction until the target has changed,
    so a position liquidated while the filter still says "in" stays flat until the signal exits and re-enters.
    """

    window: str = "3d"
    entry: float = 0.10
    exit: float = 0.0
    direction: str = "auto"
    min_hold: str = "0h"
    leverage: float = ENGINE_DEFAULTS.leverage
    spot_leverage: float = ENGINE_DEFAULTS.spot_leverage
    rebalance_at: float | None = ENGINE_DEFAULTS.rebalance_at
    spot_rebalance_level: float | None = ENGINE_DEFAULTS.spot_rebalance_level
    rebalance_every: str | float | None = ENGINE_DEFAULTS.rebalance_every
    after_liquidation: str = ENGINE_DEFAULTS.after_liquidation
    liquidation_loss: str = ENGINE_DEFAULTS.liquidation_loss
    margin_mode: str = ENGINE_DEFAULTS.margin_mode
    name: str = ""

    def __post_init__(self) -> None:
        check_duration("window", self.window)
        object.__setattr__(self, "entry", check_number("entry", self.entry, low=0.0,
                                                       what=" (annualised rate on notional, 0.10 = 10 %/year)"))
        object.__setattr__(self, "exit", check_number("exit", self.exit, low=0.0, high=self.entry,
                                                      what=" (at most entry: the hysteresis band)"))
        check_choice("direction", self.direction, DIRECTIONS)
        check_duration("min_hold", self.min_hold, allow_zero=True)
        check_engine_options(self)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the fields, as accepted in a strategy TOML file."""
        return [f.name for f in fields(cls)]

    def filter(self, market: MarketData) -> pd.DataFrame:
        """The filter value at each bar's close (not shifted): annualised trailing funding on notional."""
        return annualised_on_notional(trailing_funding(market, self.window), self.window)

    def decisions(self, market: MarketData) -> pd.DataFrame:
        """Direction decided at each bar's close from rows ≤ t (NOT shifted; see :meth:`targets`)."""
        value = self.filter(market).to_numpy(dtype=np.float64)
        hold = check_duration("min_hold", self.min_hold, allow_zero=True)
        min_bars = math.ceil(hold / market.timeframe)
        out = carry_states_nb(np.ascontiguousarray(value), self.direction in ("carry", "auto"),
                              self.direction in ("reverse", "auto"), float(self.entry), float(self.exit), min_bars)
        return pd.DataFrame(out, index=market.index, columns=pd.Index(market.symbols, name="symbol"))

    def targets(self, market: MarketData, costs: Costs | None = None) -> pd.DataFrame:
        """Directions to hold after each bar's open (+1 carry, −1 reverse, 0 flat), int8, bars × symbols.

        ``costs`` is part of the strategy contract (:class:`fundarb.signals.protocol.Strategy`); the carry's
        decisions do not depend on it.

        Row t is the decision of bar t−1's close (row 0 is flat): the engine executes it at bar t's open having
        seen rows ≤ t−1 only (DESIGN §2).
        """
        d = self.decisions(market)
        return shift_decisions(d.to_numpy(), d.index, d.columns, fill=0)

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`fundarb.backtest`: leverage, spot_leverage, rebalance_at,
        spot_rebalance_level, rebalance_every, after_liquidation, liquidation_loss, margin_mode."""
        return engine_options_of(self)
