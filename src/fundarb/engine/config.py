"""Frozen configuration objects of the engine: trading costs and margin rules (DESIGN.md §3–§5)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from fundarb.errors import ConfigError, did_you_mean

__all__ = ["AFTER_LIQUIDATION", "MARGIN_MODES", "Costs", "check_keys"]

AFTER_LIQUIDATION = ("close", "hold")
MARGIN_MODES = ("isolated", "cross")


def check_keys(cls: type, given: dict[str, Any], where: str = "") -> None:
    """Raise ConfigError for a key that is not a field of ``cls``, with "did you mean …?"."""
    names = [f.name for f in fields(cls)]
    for k in given:
        if k not in names:
            raise ConfigError(f"{where}unknown option {k!r}{did_you_mean(k, names)}; allowed: {', '.join(names)}")


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
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"costs.{f.name} must be a finite number ≥ 0, got {v!r}")

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
