"""Frozen configuration objects of the engine: trading costs and margin rules (DESIGN.md §3–§5)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from fundarb.durations import parse_duration
from fundarb.errors import ConfigError, did_you_mean, is_real

__all__ = ["AFTER_LIQUIDATION", "LIQUIDATION_LOSS", "MARGIN_MODES", "MAX_SPOT_LEVERAGE", "STRATEGY_OPTIONS", "Costs",
           "EngineOptions", "check_choice_option", "check_keys", "check_rebalance_at", "check_spot_rebalance_level"]

AFTER_LIQUIDATION = ("close", "hold", "reenter")
LIQUIDATION_LOSS = ("fee", "margin")
MARGIN_MODES = ("isolated", "cross")


def _is_number(v: Any) -> bool:
    """A real number: int, float or a numpy integer/float scalar, never a bool (``True`` is not a fee of 1)."""
    return is_real(v)


def check_choice_option(name: str, value: Any, choices: tuple[str, ...], where: str = "") -> str:
    """``value`` if it is one of ``choices``, else a ConfigError naming the option, with "did you mean …?"."""
    if not isinstance(value, str) or value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(f"{where}{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}{hint}")
    return value


def check_rebalance_at(value: Any, where: str = "") -> float | None:
    """``rebalance_at``: None (off) or the share of the perp's cushion used, ``0 < x < 1`` (DESIGN §5)."""
    if value is None:
        return None
    if not _is_number(value) or not 0.0 < value < 1.0:
        raise ConfigError(f"{where}rebalance_at must be a share of the perp's margin cushion, 0 < rebalance_at < 1 "
                          f"(None: off), got {value!r}")
    return float(value)


def check_spot_rebalance_level(value: Any, spot_liquidation_level: float, where: str = "") -> float | None:
    """``spot_rebalance_level``: None (off) or a finite spot margin level above ``spot_liquidation_level``."""
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or not value > spot_liquidation_level:
        raise ConfigError(f"{where}spot_rebalance_level must be a finite margin level > spot_liquidation_level "
                          f"({spot_liquidation_level!r}) (None: off), got {value!r}")
    return float(value)


def check_keys(cls: type, given: dict[str, Any], where: str = "") -> None:
    """Raise ConfigError for a key that is not a field of ``cls``, with "did you mean …?"."""
    names = [f.name for f in fields(cls)]
    for k in given:
        if k not in names:
            raise ConfigError(f"{where}unknown option {k!r}{did_you_mean(k, names)}; allowed: {', '.join(names)}")


#: Upper bounds (exclusive) of the cost fields: a value this large is a unit mistake (percent for a fraction,
#: a yearly rate for an hourly one), not a market.
COST_LIMITS = {
    "spot_fee": (0.1, "a fraction of notional: 0.001 is 0.1 %"),
    "perp_fee": (0.1, "a fraction of notional: 0.0005 is 0.05 %"),
    "liquidation_fee": (0.1, "a fraction of notional: 0.005 is 0.5 %"),
    "half_spread_bps": (1000.0, "basis points: 1000 bps is 10 %"),
    "slippage_bps": (1000.0, "basis points: 1000 bps is 10 %"),
    "borrow_rate": (0.01, "an hourly rate: 0.0000042 is about 3.7 % a year"),
}


@dataclass(frozen=True)
class Costs:
    """Trading costs, as fractions of traded notional unless named ``_bps``.

    Parameters
    ----------
    spot_fee, perp_fee
        Fee per leg (default Binance VIP 0 taker: 0.10% spot, 0.05% USDT-M).
    half_spread_bps
        Half the bid-ask spread paid per leg per trade, in basis points of notional.
    slippage_bps
        Fixed slippage per leg per trade, in basis points.
    slippage_k
        Participation model: slippage fraction ``k * sqrt(traded_qty / previous_bar_volume)``; 0 disables it.
    borrow_rate
        Hourly interest on borrowed base asset where the data has no ``borrow_rate`` (default 0.0000042/h,
        about 3.7% a year).
    liquidation_fee
        Charged on the notional of a liquidated leg (Binance: 0.5%).
    """

    spot_fee: float = 0.001
    perp_fee: float = 0.0005
    half_spread_bps: float = 0.0
    slippage_bps: float = 0.0
    slippage_k: float = 0.0
    borrow_rate: float = 0.0000042
    liquidation_fee: float = 0.005

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not _is_number(v) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"costs.{f.name} must be a finite number ≥ 0, got {v!r}")
            limit, what = COST_LIMITS.get(f.name, (math.inf, ""))
            if v >= limit:
                raise ConfigError(f"costs.{f.name} must be ≥ 0 and < {limit:g} ({what}), got {v!r}")
            object.__setattr__(self, f.name, float(v))

    @classmethod
    def taker(cls, **overrides: float) -> Costs:
        """Binance VIP 0 taker fees (the default)."""
        return cls(**overrides)

    @classmethod
    def maker(cls, **overrides: float) -> Costs:
        """Binance VIP 0 maker fees: 0.10% spot, 0.02% USDT-M."""
        return cls(**{"spot_fee": 0.001, "perp_fee": 0.0002, **overrides})

    @classmethod
    def zero(cls, **overrides: float) -> Costs:
        """No fees, spread, slippage, borrow or liquidation fee."""
        base = {f.name: 0.0 for f in fields(cls)}
        return cls(**{**base, **overrides})

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "") -> Costs:
        """Build from a mapping, rejecting unknown keys with "did you mean …?"."""
        check_keys(cls, d, where)
        return cls(**d)


MAX_SPOT_LEVERAGE = 10.0  # Binance's largest spot margin leverage


#: Largest starting capital: float64 keeps cents exact up to about 1e13; beyond, the accounting identity loses them.
MAX_CAPITAL = 1e12


def _positive(name: str, v: Any, high: float = math.inf, what: str = "") -> float:
    rng = "> 0" + (f" and ≤ {high:g}" if math.isfinite(high) else "")
    if not _is_number(v) or not math.isfinite(v) or not 0 < v <= high:
        raise ConfigError(f"{name} must be {rng}{what} (a finite number), got {v!r}")
    return float(v)


def _rebalance_every(v: Any) -> float | str | None:
    if v is None:
        return None
    if isinstance(v, str):
        parse_duration(v, name="rebalance_every")
        return v
    if _is_number(v) and math.isfinite(v) and v >= 0:
        return int(v) if float(v).is_integer() else float(v)
    raise ConfigError(f"rebalance_every must be a duration like '7d', a number of bars ≥ 0 (0: never), or None "
                      f"(never), got {v!r}")


@dataclass(frozen=True, kw_only=True)
class EngineOptions:
    """The engine options of :func:`fundarb.backtest` that are not costs, with their defaults and ranges.

    This is the one place where they are declared: ``backtest``, the strategies' ``engine_options()`` and
    :func:`fundarb.sweeps.grid.engine_options` take their defaults from here. Numbers may be Python or numpy
    scalars; booleans are refused. Values are normalised (floats; ``rebalance_every`` an int, a duration string
    or None).

    Parameters
    ----------
    capital
        Starting capital of each account, ``> 0`` and at most :data:`MAX_CAPITAL` (1e12).
    leverage
        Perp leverage ``L``, ``> 0`` (the tier-dependent maximum is checked by ``backtest`` against the tiers).
    spot_leverage
        Spot margin leverage ``Ls`` of reverse carry, ``0 < Ls ≤ 10``.
    mmr
        Flat maintenance margin rate, ``0 ≤ mmr < 1`` (used when no tiers are given).
    rebalance_at
        Share of the perp's margin cushion used that triggers a re-size, ``0 < x < 1``; None: off (DESIGN §5).
    spot_rebalance_level
        Spot margin level at or below which a reverse carry is re-sized, finite and ``> spot_liquidation_level``;
        None: off.
    rebalance_every
        Periodic re-size: a number of bars ``≥ 0`` or a duration (``"7d"``); None or 0: never.
    after_liquidation
        ``"close"``, ``"hold"`` or ``"reenter"``.
    liquidation_loss
        ``"fee"`` or ``"margin"``.
    spot_liquidation_level
        Spot margin level at which loans are force-repaid, finite and ``> 1``.
    margin_mode
        ``"isolated"`` or ``"cross"``.
    """

    capital: float = 10_000.0
    leverage: float = 1.0
    spot_leverage: float = 3.0
    mmr: float = 0.005
    rebalance_at: float | None = None
    spot_rebalance_level: float | None = None
    rebalance_every: float | str | None = None
    after_liquidation: str = "close"
    liquidation_loss: str = "fee"
    spot_liquidation_level: float = 1.10
    margin_mode: str = "isolated"

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "capital", _positive("capital", self.capital, MAX_CAPITAL,
                                       " (larger amounts lose the cent in float64 arithmetic)"))
        put(self, "leverage", _positive("leverage", self.leverage))
        put(self, "spot_leverage", _positive("spot_leverage", self.spot_leverage, MAX_SPOT_LEVERAGE,
                                             " (spot margin leverage)"))
        if not _is_number(self.mmr) or not 0 <= self.mmr < 1:
            raise ConfigError(f"mmr must be in [0, 1), got {self.mmr!r}")
        put(self, "mmr", float(self.mmr))
        put(self, "rebalance_at", check_rebalance_at(self.rebalance_at))
        lvl = self.spot_liquidation_level
        if not _is_number(lvl) or not math.isfinite(lvl) or not lvl > 1:
            raise ConfigError(f"spot_liquidation_level must be a finite margin level > 1, got {lvl!r}")
        put(self, "spot_liquidation_level", float(lvl))
        put(self, "spot_rebalance_level", check_spot_rebalance_level(self.spot_rebalance_level, float(lvl)))
        put(self, "rebalance_every", _rebalance_every(self.rebalance_every))
        check_choice_option("after_liquidation", self.after_liquidation, AFTER_LIQUIDATION)
        check_choice_option("liquidation_loss", self.liquidation_loss, LIQUIDATION_LOSS)
        check_choice_option("margin_mode", self.margin_mode, MARGIN_MODES)

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of option ``name``."""
        return next(f.default for f in fields(cls) if f.name == name)

    def as_dict(self, names: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The options (or those in ``names``) as keyword arguments of :func:`fundarb.backtest`."""
        return {f.name: getattr(self, f.name) for f in fields(self) if names is None or f.name in names}


#: The engine options a strategy dataclass carries (the others are the run's: capital, mmr/tiers, the spot
#: liquidation level).
STRATEGY_OPTIONS = ("leverage", "spot_leverage", "rebalance_at", "spot_rebalance_level", "rebalance_every",
                    "after_liquidation", "liquidation_loss", "margin_mode")
