"""`TopNRotation`: one capital over the ``n`` symbols with the best trailing funding, rotated when it pays.

Each bar's close (rows ≤ t), per symbol, the annualised trailing funding on notional is signed in the direction the
strategy would trade it (its *score*); then, in order:

1. holdings whose score fell below ``exit`` or whose sign no longer matches their direction leave;
2. free slots (up to ``n``) are filled by the best symbols with ``score ≥ entry``;
3. while the book is full, the best outsider replaces the weakest holding if its score is higher by at least
   ``hysteresis`` AND the extra funding it is expected to earn over ``horizon`` exceeds the cost of switching
   (closing one pair and opening another: a round trip of fees, spread and slippage on both legs, per unit of
   notional — ``2·(spot_fee + perp_fee) + 4·(half_spread_bps + slippage_bps)·1e-4``).

Ties. Scores are exact functions of the window's funding rates (:func:`fundarb.signals.filters.window_sums`: no
round-off carried from earlier rows), so symbols at the same funding (e.g. all at the 0.01 %/8h floor) tie exactly,
whatever the start of the data. A tie is broken by the market's symbol order: among equal candidates the first
symbol joins; among equally weak holdings the first is the one challenged; a challenger equal to the weakest
holding never replaces it (the gain must be positive).

Weights (fractions of the account's equity) are recomputed only when the set of holdings or a direction changes,
so an unchanged book is never resized (a resize trades and pays costs). ``"equal"`` splits the capital equally
among the holdings, ``"funding"`` in proportion to their scores at that moment; either way no symbol gets more than
``max_weight`` (the excess goes to the others, or stays as cash when they are capped too). Rows sum to at most 1.

Both :meth:`TopNRotation.targets` and :meth:`TopNRotation.weights` are shifted by one bar like
:meth:`fundarb.signals.carry.FundingCarry.targets`: row t holds the decision of bar t−1's close.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.engine.config import Costs
from fundarb.errors import ConfigError
from fundarb.signals.carry import (
    DIRECTIONS,
    ENGINE_DEFAULTS,
    check_choice,
    check_duration,
    check_engine_options,
    check_number,
    engine_options_of,
    shift_decisions,
)
from fundarb.signals.filters import annualised_on_notional, trailing_funding
from fundarb.signals.nb import WEIGHT_EQUAL, WEIGHT_FUNDING, rotation_states_nb

__all__ = ["WEIGHTINGS", "TopNRotation", "switching_cost"]

WEIGHTINGS = ("equal", "funding")


def switching_cost(costs: Costs) -> float:
    """Cost of replacing one delta-neutral pair by another, per unit of notional.

    Closing the old pair and opening the new one trade each leg twice: ``2·(spot_fee + perp_fee)`` plus the
    half-spread and fixed slippage on all four trades. The participation slippage (``slippage_k``) and the
    resize of the other holdings are not included.
    """
    return 2.0 * (costs.spot_fee + costs.perp_fee) + 4.0 * (costs.half_spread_bps + costs.slippage_bps) * 1e-4


@dataclass(frozen=True, kw_only=True)
class TopNRotation:
    """Hold the ``n`` symbols with the best trailing funding in one portfolio; rotate only when it pays.

    Parameters
    ----------
    n
        Maximum number of holdings (≥ 1).
    window
        Trailing window of the funding filter (``"3d"``, ``"7d"``, …).
    entry
        Minimum annualised funding on notional (signed in the traded direction) to join the book (≥ 0).
    exit
        A holding leaves when its annualised funding falls below this (``0 ≤ exit ≤ entry``) or its sign flips.
    direction
        ``"carry"``, ``"reverse"`` or ``"auto"`` (each symbol by the sign of its filter).
    weighting
        ``"equal"`` or ``"funding"`` (proportional to the annualised funding when the book changes).
    max_weight
        Largest fraction of the account's equity in one symbol (``0 < max_weight ≤ 1``).
    hysteresis
        Annualised margin by which a challenger must beat the weakest holding (≥ 0; 0.05 = 5 points a year).
    horizon
        Period over which the challenger's extra funding must repay the switching cost (a duration, ``"7d"``).
    leverage, spot_leverage, rebalance_at, spot_rebalance_level, rebalance_every, after_liquidation, \
    liquidation_loss, margin_mode
        Engine options, as in :class:`~fundarb.signals.carry.FundingCarry`.
    name
        Label for reports.
    """

    n: int = 3
    window: str = "3d"
    entry: float = 0.10
    exit: float = 0.0
    direction: str = "auto"
    weighting: str = "equal"
    max_weight: float = 1.0
    hysteresis: float = 0.05
    horizon: str = "7d"
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
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise ConfigError(f"n must be a whole number of holdings ≥ 1; got {self.n!r}")
        check_duration("window", self.window)
        object.__setattr__(self, "entry", check_number("entry", self.entry, low=0.0,
                                                       what=" (annualised rate on notional, 0.10 = 10 %/year)"))
        object.__setattr__(self, "exit", check_number("exit", self.exit, low=0.0, high=self.entry,
                                                      what=" (at most entry: the hysteresis band)"))
        check_choice("direction", self.direction, DIRECTIONS)
        check_choice("weighting", self.weighting, WEIGHTINGS)
        object.__setattr__(self, "max_weight", check_number("max_weight", self.max_weight, low=0.0, high=1.0,
                                                            low_open=True, what=" (fraction of equity)"))
        object.__setattr__(self, "hysteresis", check_number("hysteresis", self.hysteresis, low=0.0,
                                                            what=" (annualised rate on notional)"))
        check_duration("horizon", self.horizon)
        check_engine_options(self)

    @classmethod
    def field_names(cls) -> list[str]:
        """Names of the fields, as accepted in a strategy TOML file."""
        return [f.name for f in fields(cls)]

    def filter(self, market: MarketData) -> pd.DataFrame:
        """Annualised trailing funding on notional at each bar's close (not shifted), signed."""
        return annualised_on_notional(trailing_funding(market, self.window), self.window)

    def decisions(self, market: MarketData, costs: Costs | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Directions and weights decided at each bar's close from rows ≤ t (NOT shifted).

        Parameters
        ----------
        market
            Aligned market data.
        costs
            Trading costs for the switching rule (default :meth:`Costs.taker`).

        Returns
        -------
        directions, weights
            Bars × symbols: int8 in {-1, 0, +1}, and float fractions of equity.
        """
        costs = Costs() if costs is None else costs
        if not isinstance(costs, Costs):
            raise ConfigError(f"costs must be a fundarb.Costs, got {type(costs).__name__}")
        a = self.filter(market).to_numpy(dtype=np.float64)
        if self.direction == "carry":
            sign = np.where(a > 0, 1, 0)
        elif self.direction == "reverse":
            sign = np.where(a < 0, -1, 0)
        else:
            sign = np.where(a > 0, 1, np.where(a < 0, -1, 0))
        score = np.where(sign != 0, np.abs(a), 0.0)
        years = check_duration("horizon", self.horizon) / pd.Timedelta(days=365)
        min_gain = switching_cost(costs) / years
        dirs, w = rotation_states_nb(np.ascontiguousarray(score), np.ascontiguousarray(sign.astype(np.int8)),
                                     int(self.n), float(self.entry), float(self.exit), float(self.hysteresis),
                                     float(min_gain), WEIGHT_EQUAL if self.weighting == "equal" else WEIGHT_FUNDING,
                                     float(self.max_weight))
        cols = pd.Index(market.symbols, name="symbol")
        return (pd.DataFrame(dirs, index=market.index, columns=cols),
                pd.DataFrame(w, index=market.index, columns=cols))

    def targets(self, market: MarketData, costs: Costs | None = None) -> pd.DataFrame:
        """Directions to hold after each bar's open, int8 bars × symbols, shifted by one bar (row 0 flat).

        ``costs`` (default :meth:`Costs.taker`) enter the switching rule; pass the costs you backtest with.
        """
        d, _ = self.decisions(market, costs)
        return shift_decisions(d.to_numpy(), d.index, d.columns, fill=0)

    def weights(self, market: MarketData, costs: Costs | None = None) -> pd.DataFrame:
        """Fraction of the account's equity per symbol after each bar's open (rows sum ≤ 1), shifted by one bar
        like :meth:`targets` (row 0 is all 0)."""
        _, w = self.decisions(market, costs)
        return shift_decisions(w.to_numpy(), w.index, w.columns, fill=0.0)

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments for :func:`fundarb.backtest` (as :meth:`FundingCarry.engine_options`)."""
        return engine_options_of(self)
