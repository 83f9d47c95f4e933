"""`backtest`: MarketData and a strategy in, :class:`~fundarb.results.result.Result` out.

The engine (:func:`fundarb.engine.run.run_accounts`) checks the options, prepares the arrays and runs the kernels;
this module wraps what comes back into a :class:`Result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fundarb.data.market import MarketData
from fundarb.engine.config import Costs, EngineOptions
from fundarb.engine.run import EngineRun, run_accounts
from fundarb.results.result import Result

__all__ = ["backtest", "result_of"]

_D = EngineOptions()  # backtest's defaults are EngineOptions' own


def backtest(
    market: MarketData,
    strategy: Any,
    *,
    costs: Costs | None = None,
    capital: float | Sequence[float] = _D.capital,
    leverage: float | Sequence[float] = _D.leverage,
    spot_leverage: float | Sequence[float] = _D.spot_leverage,
    mmr: float = _D.mmr,
    tiers: Any = None,
    rebalance_at: float | Sequence[float | None] | None = _D.rebalance_at,
    spot_rebalance_level: float | None = _D.spot_rebalance_level,
    rebalance_every: float | str | None = _D.rebalance_every,
    after_liquidation: str = _D.after_liquidation,
    liquidation_loss: str = _D.liquidation_loss,
    spot_liquidation_level: float = _D.spot_liquidation_level,
    margin_mode: str = _D.margin_mode,
    weights: Any = None,
    mode: str = "detail",
) -> Result:
    """Simulate delta-neutral funding carry on ``market`` (DESIGN.md §2–§6).

    Parameters
    ----------
    market
        Aligned market data.
    strategy
        Directions to hold after each bar's open (+1 carry, −1 reverse carry, 0 flat): an int, a Series or
        DataFrame of positions (executed at that bar's open as given), or a strategy object whose
        ``targets(market, costs)`` returns such a DataFrame already shifted so bar t uses rows ≤ t−1 only (and,
        for a portfolio strategy, ``weights(market, costs)``), called with ``costs`` below
        (:class:`fundarb.signals.protocol.Strategy`).
    costs
        Fees, spread, slippage, borrow and liquidation fee (default :meth:`Costs.taker`).
    capital, leverage, spot_leverage, rebalance_at
        Starting capital; perp leverage ``L``; spot margin leverage ``Ls`` (reverse carry); margin management:
        re-size both legs when the perp has used this share ``x`` (``0 < x < 1``) of its margin cushion
        ``C = MB + uPnL − MM``, i.e. ``C ≤ (1 − x)·C0`` with ``C0`` the cushion just after the last sizing (cross
        margin: the account's cushion; None: off). A list of values sweeps them: the result has one column per
        element of the Cartesian product of the lists (× symbol, unless a portfolio).
    mmr, tiers
        Flat maintenance margin rate, or leverage tiers: a ccxt-format JSON file path, a mapping symbol →
        ccxt tiers, or one tier table for every symbol.
    spot_rebalance_level
        Reverse carry: re-size when the account's spot margin level (assets / borrowed) is at or below this
        level; must be finite and above ``spot_liquidation_level`` (the guides act below 1.30). None: off.
    rebalance_every
        Re-size both legs every this many bars (int) or this long (``"7d"``); None: never.
    after_liquidation
        ``"close"`` (close the other leg at the next open and stay flat until the target changes), ``"hold"``
        (keep it unhedged until the target changes) or ``"reenter"`` (close it and open a fresh hedged pair at
        the next open, sized from equity then, while the target still asks for one).
    liquidation_loss
        ``"fee"`` (the liquidation fee is lost, the rest of the margin returns) or ``"margin"`` (the whole
        margin of the liquidated perp is lost — cross margin: the whole futures wallet).
    spot_liquidation_level
        Margin level at which spot loans are force-repaid.
    margin_mode
        ``"isolated"`` (one margin per perp) or ``"cross"`` (one futures wallet for the portfolio's perps;
        implies a portfolio).
    weights
        Run the symbols as ONE portfolio (one capital) with these weights: ``"equal"``, a Series by symbol, or
        a DataFrame (bars × symbols, executed at that bar's open). Default: each symbol is its own account
        with the full capital, unless the strategy has ``weights(market, costs)`` or margin is cross.
    mode
        ``"detail"`` (series, trade log) or ``"sweep"`` (totals and statistics only, memory O(columns)).

    Returns
    -------
    Result
    """
    run = run_accounts(market, strategy, costs=costs, capital=capital, leverage=leverage, spot_leverage=spot_leverage,
                       mmr=mmr, tiers=tiers, rebalance_at=rebalance_at, spot_rebalance_level=spot_rebalance_level,
                       rebalance_every=rebalance_every, after_liquidation=after_liquidation,
                       liquidation_loss=liquidation_loss, spot_liquidation_level=spot_liquidation_level,
                       margin_mode=margin_mode, weights=weights, mode=mode)
    return result_of(run)


def result_of(run: EngineRun) -> Result:
    """The :class:`Result` viewing an engine run's arrays (no copies)."""
    return Result(market=run.market, groups=run.groups, members=run.members, grp_start=run.grp_start,
                  mem_sym=run.mem_sym, params=run.params, series=run.series, gseries=run.gseries,
                  mtotals=run.mtotals, gtotals=run.gtotals, records=run.records, target=run.target, mode=run.mode,
                  portfolio=run.portfolio, config=run.config)
