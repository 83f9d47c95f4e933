"""Frozen configuration objects of the engine: trading costs and margin rules (DESIGN.md §3–§5)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from fundarb.errors import ConfigError, did_you_mean

__all__ = ["AFTER_LIQUIDATION", "LIQUIDATION_LOSS", "MARGIN_MODES", "Costs", "check_choice_option", "check_keys",
           "check_rebalance_at", "check_spot_rebalance_level"]

AFTER_LIQUIDATION = ("close", "hold", "reenter")
LIQUIDATION_LOSS = ("fee", "margin")
MARGIN_MODES = ("isolated", "cross")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


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
