"""The strategy contract, written down once.

A *strategy* is any object with ``targets(market, costs)``: the directions to hold after each bar's open
(+1 carry, −1 reverse carry, 0 flat), bars × symbols, already shifted so that row t uses rows ≤ t−1 only
(DESIGN §2). A *portfolio strategy* also has ``weights(market, costs)``: the fraction of the one account's
equity per symbol, shifted the same way. An optional ``engine_options()`` returns keyword arguments of
:func:`fundarb.backtest` (leverage, margin mode, …).

``costs`` are the :class:`~fundarb.engine.config.Costs` the simulation will charge: a strategy whose decisions
depend on trading costs (the switching rule of :class:`~fundarb.signals.portfolio.TopNRotation`) must use these,
so ``backtest``, ``run_strategy``, ``sweep`` and ``walk_forward`` all call it with the costs they simulate. A
strategy whose decisions do not depend on costs may accept and ignore them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from fundarb.data.market import MarketData
from fundarb.engine.config import Costs

__all__ = ["PortfolioStrategy", "Strategy"]


@runtime_checkable
class Strategy(Protocol):
    """Anything with ``targets(market, costs)`` (see the module docstring)."""

    def targets(self, market: MarketData, costs: Costs) -> Any:
        """Directions after each bar's open, bars × symbols, shifted by one bar."""
        ...


@runtime_checkable
class PortfolioStrategy(Strategy, Protocol):
    """A strategy run as one account over all symbols: it also has ``weights(market, costs)``."""

    def weights(self, market: MarketData, costs: Costs) -> Any:
        """Fraction of the account's equity per symbol after each bar's open (rows sum ≤ 1), shifted by one bar."""
        ...
