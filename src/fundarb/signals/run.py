"""`run_strategy`: backtest a strategy object, or a strategy file, with the engine options it carries."""

from __future__ import annotations

import os
from typing import Any

from fundarb.data.market import MarketData
from fundarb.engine.config import Costs
from fundarb.errors import ConfigError
from fundarb.results.backtest import backtest
from fundarb.signals.carry import FundingCarry
from fundarb.signals.portfolio import TopNRotation
from fundarb.signals.toml import StrategySpec, load_strategy

__all__ = ["run_strategy"]

DEFAULT_CAPITAL = 10_000.0


def run_strategy(
    market: MarketData,
    spec_or_strategy: StrategySpec | FundingCarry | TopNRotation | str | os.PathLike[str],
    *,
    costs: Costs | None = None,
    capital: float | None = None,
    mode: str = "detail",
) -> Any:
    """Backtest a strategy with the engine options it carries (:meth:`engine_options`).

    Parameters
    ----------
    market
        Aligned market data.
    spec_or_strategy
        A :class:`StrategySpec` (from :func:`load_strategy`), a path to a strategy TOML file, or a strategy object.
    costs
        Overrides the file's ``[costs]``; default :meth:`Costs.taker`.
    capital
        Overrides the file's ``[backtest] capital``; default 10,000.
    mode
        ``"detail"`` or ``"sweep"``, as in :func:`fundarb.backtest`.

    Returns
    -------
    Result
        A :class:`FundingCarry` gives one independent account per symbol (each with the full capital); a
        :class:`TopNRotation` gives ONE portfolio account over all symbols, sized by its weights.
    """
    if isinstance(spec_or_strategy, str | os.PathLike):
        spec_or_strategy = load_strategy(spec_or_strategy)
    if isinstance(spec_or_strategy, StrategySpec):
        strategy = spec_or_strategy.strategy
        costs = costs if costs is not None else spec_or_strategy.costs
        capital = capital if capital is not None else spec_or_strategy.capital
    else:
        strategy = spec_or_strategy
    costs = Costs() if costs is None else costs
    capital = DEFAULT_CAPITAL if capital is None else capital
    if not isinstance(costs, Costs):
        raise ConfigError(f"costs must be a fundarb.Costs, got {type(costs).__name__}")
    if isinstance(strategy, TopNRotation | FundingCarry):
        # the strategy is called with the costs the simulation charges (signals.protocol); a TopNRotation runs
        # as one portfolio account (docs/engine.md, "Accounts")
        return backtest(market, strategy, costs=costs, capital=capital, mode=mode, **strategy.engine_options())
    raise ConfigError(f"run_strategy needs a FundingCarry, a TopNRotation, a StrategySpec or a strategy file; "
                      f"got {type(strategy).__name__}")
