"""Parameter sweeps: every combination of a grid of strategy fields, simulated in one kernel call.

A strategy is a frozen dataclass with ``targets(market)`` (and optionally ``weights(market)`` and
``engine_options()``); :func:`sweep` builds one strategy per grid point with :func:`dataclasses.replace`
(so every value is validated as usual), computes each point's directions, shares identical ones, and runs all
accounts — grid point × symbol, or grid point for a portfolio strategy — in parallel in sweep mode (memory
O(accounts)) or detail mode.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.engine.config import AFTER_LIQUIDATION, MARGIN_MODES, Costs
from fundarb.engine.run import (
    _bars,
    _tiers_for,
    _weights_frame,
    account_layout,
    clean_targets,
    param_column,
    simulate,
    targets_from_positions,
)
from fundarb.errors import ConfigError, did_you_mean
from fundarb.results.result import Result

__all__ = ["SweepResult", "sweep"]


def _label(v: Any) -> Any:
    """A grid value as a table label (numbers and strings as they are, anything else as text)."""
    return v if isinstance(v, int | float | str) else str(v)


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Outcome of :func:`sweep`.

    Attributes
    ----------
    table
        One row per account: the grid's fields, ``symbol`` (independent accounts) and every statistic of
        :meth:`Result.stats`.
    result
        The underlying :class:`Result` (its accounts in the order of ``table``).
    grid
        The grid swept.
    skipped
        Grid points the strategy refused (e.g. ``exit > entry``), with the reason.
    """

    table: pd.DataFrame
    result: Result
    grid: Mapping[str, Sequence[Any]]
    skipped: tuple[tuple[dict[str, Any], str], ...] = ()

    def heatmap(self, x: str, y: str, metric: str = "sharpe", *, symbol: str | None = None,
                agg: str = "mean") -> pd.DataFrame:
        """Pivot ``metric`` over two grid fields (other fields and symbols aggregated with ``agg``)."""
        for name in (x, y):
            if name not in self.grid:
                raise ConfigError(f"{name!r} is not a swept field{did_you_mean(name, self.grid)}; "
                                  f"swept: {', '.join(self.grid)}")
        if metric not in self.table.columns:
            raise ConfigError(f"unknown metric {metric!r}{did_you_mean(metric, self.table.columns)}")
        t = self.table
        if symbol is not None:
            if "symbol" not in t.columns or symbol not in set(t["symbol"]):
                raise ConfigError(f"no symbol {symbol!r} in this sweep")
            t = t[t["symbol"] == symbol]
        pivot = t.pivot_table(index=y, columns=x, values=metric, aggfunc=agg)
        # keep the grid's own order (pivot_table sorts labels: "14d" would come before "3d")
        rows = [v for v in map(_label, self.grid[y]) if v in pivot.index]
        cols = [v for v in map(_label, self.grid[x]) if v in pivot.columns]
        return pivot.reindex(index=list(dict.fromkeys(rows)), columns=list(dict.fromkeys(cols)))

    def best(self, metric: str = "sharpe", n: int = 10, *, ascending: bool = False) -> pd.DataFrame:
        """The ``n`` best accounts by ``metric``."""
        if metric not in self.table.columns:
            raise ConfigError(f"unknown metric {metric!r}{did_you_mean(metric, self.table.columns)}")
        return self.table.sort_values(metric, ascending=ascending).head(n)


def _engine_options(strategy: Any) -> dict[str, Any]:
    opts = {"leverage": 1.0, "spot_leverage": 3.0, "rebalance_at": None, "spot_rebalance_level": None,
            "rebalance_every": None, "after_liquidation": "close", "liquidation_loss": "fee",
            "margin_mode": "isolated", "spot_liquidation_level": 1.10}
    if hasattr(strategy, "engine_options"):
        opts.update(strategy.engine_options())
    return opts


def sweep(
    market: MarketData,
    strategy: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    costs: Costs | None = None,
    capital: float = 10_000.0,
    mmr: float = 0.005,
    tiers: Any = None,
    mode: str = "sweep",
    skip_invalid: bool = True,
) -> SweepResult:
    """Simulate ``strategy`` at every point of ``grid`` in one run.

    Parameters
    ----------
    market
        Aligned market data.
    strategy
        A frozen-dataclass strategy; the grid's keys are its field names.
    grid
        Field → values, e.g. ``{"window": ["3d", "7d"], "entry": [0.05, 0.1, 0.2], "leverage": [1, 3]}``.
    costs, capital, mmr, tiers
        As in :func:`fundarb.backtest`.
    mode
        ``"sweep"`` (totals only) or ``"detail"``.
    skip_invalid
        Leave out grid points the strategy rejects (listed in ``SweepResult.skipped``) instead of raising.
    """
    if not dataclasses.is_dataclass(strategy) or isinstance(strategy, type):
        raise ConfigError("sweep needs a strategy instance that is a dataclass (e.g. FundingCarry())")
    fields = [f.name for f in dataclasses.fields(strategy)]
    for key, vals in grid.items():
        if key not in fields:
            raise ConfigError(f"unknown strategy field {key!r}{did_you_mean(key, fields)}; fields: {', '.join(fields)}")
        if isinstance(vals, str) or not isinstance(vals, Sequence | np.ndarray) or len(vals) == 0:
            raise ConfigError(f"grid[{key!r}] must be a non-empty list of values")
    costs = Costs() if costs is None else costs
    keys = list(grid)
    points = []
    strategies: list[Any] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        pt = dict(zip(keys, combo, strict=True))
        try:
            strategies.append(dataclasses.replace(strategy, **pt))
            points.append(pt)
        except ConfigError as exc:
            if not skip_invalid:
                raise
            skipped.append((pt, str(exc)))
    if not points:
        raise ConfigError(f"every grid point was rejected; first: {skipped[0][1]}")
    n_sym = len(market.symbols)
    portfolio = hasattr(strategy, "weights") and callable(strategy.weights)

    blocks: dict[bytes, int] = {}
    tgt_cols: list[np.ndarray] = []
    wgt_cols: list[np.ndarray] = []
    block_of: list[int] = []
    for strat in strategies:
        tg = targets_from_positions(market, strat.targets(market)).to_numpy(dtype=np.int8)
        wg = _weights_frame(market, strat.weights(market)).to_numpy() if portfolio else None
        key = tg.tobytes() + (wg.tobytes() if wg is not None else b"")
        if key not in blocks:
            blocks[key] = len(tgt_cols)
            tgt_cols.append(tg)
            if wg is not None:
                wgt_cols.append(wg)
        block_of.append(blocks[key])
    target = clean_targets(market, np.concatenate(tgt_cols, axis=1))
    weight = (np.concatenate(wgt_cols, axis=1) if portfolio
              else np.broadcast_to(np.ones((1, 1)), target.shape))

    grp_start, mem_sym, grp_point = account_layout(n_sym, len(points), portfolio=portfolio)
    mem_tgt = np.concatenate([np.arange(n_sym, dtype=np.int64) + b * n_sym for b in block_of])
    cols = []
    for strat in strategies:
        o = _engine_options(strat)
        if o["after_liquidation"] not in AFTER_LIQUIDATION or o["margin_mode"] not in MARGIN_MODES:
            raise ConfigError(f"bad engine options from the strategy: {o}")
        cols.append(param_column(costs, capital=capital, leverage=float(o["leverage"]),
                                 spot_leverage=float(o["spot_leverage"]), rebalance_at=o["rebalance_at"],
                                 rebalance_every=_bars("rebalance_every", o["rebalance_every"], market),
                                 after_liquidation=o["after_liquidation"],
                                 spot_liquidation_level=float(o["spot_liquidation_level"]),
                                 margin_mode=o["margin_mode"],
                                 spot_rebalance_level=o["spot_rebalance_level"],
                                 liquidation_loss=o["liquidation_loss"]))
    params = np.stack([cols[i] for i in grp_point], axis=1)
    out = simulate(market, target, weight, grp_start=grp_start, mem_sym=mem_sym, mem_tgt=mem_tgt, params=params,
                   tier_tables=[_tiers_for(tiers, s, mmr) for s in market.symbols], mode=mode)

    point_index = pd.MultiIndex.from_tuples([tuple(_label(pt[k]) for k in keys) for pt in points], names=keys)
    members = pd.MultiIndex.from_tuples([(*pi, s) for pi in point_index for s in market.symbols],
                                        names=[*keys, "symbol"])
    groups = point_index if portfolio else members
    result = Result(market=market, groups=groups, members=members, grp_start=grp_start, mem_sym=mem_sym,
                    params=params, target=target, mode=mode, portfolio=portfolio, **out)
    table = result.stats().reset_index()
    return SweepResult(table=table, result=result, grid=dict(grid), skipped=tuple(skipped))
