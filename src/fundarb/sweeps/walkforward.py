"""Walk-forward validation: choose parameters on a train window, trade them on the following test window.

Folds are cut on the bar grid. Rolling (default): train ``[s, s + train)``, test ``[s + train, s + train + test)``,
``s`` advancing by ``test``; anchored: every train window starts at the first bar. Only whole test windows are
used. On each fold the grid is swept on the train window alone and the best point by the book ``metric`` (ties:
the first in grid order) is run on the test window:

- its signals are computed on ``[train start, test end)`` and used from the test start on, so the filters have a
  warm-up of history before the window and see nothing after it (a live trader's view);
- the test account starts flat, with the previous fold's ending book equity (the first fold with ``capital`` per
  account, as :func:`fundarb.backtest`), split equally among independent accounts.

The out-of-sample equity curve is the test windows' book equity, stitched; the overfitting gap is the mean
in-sample metric minus the mean out-of-sample metric over the folds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.durations import parse_duration
from fundarb.engine.config import Costs
from fundarb.engine.run import strategy_frames
from fundarb.errors import ConfigError, did_you_mean
from fundarb.results.backtest import backtest
from fundarb.results.metrics import summary
from fundarb.sweeps.grid import engine_options, expand_grid, sweep

__all__ = ["STATS", "WalkForwardResult", "walk_forward"]

STATS = ("final_equity", "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "n_trades", "n_liquidations")
"""Statistics reported per fold (in and out of sample)."""
METRICS = (*STATS, "volatility", "calmar", "time_in_market", "funding_pnl", "realised_apr_on_capital")
"""Book statistics a walk-forward may rank train windows by."""


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else str(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """Outcome of :func:`walk_forward`.

    Attributes
    ----------
    folds
        One row per fold: ``train_start``, ``train_end``, ``test_start``, ``test_end`` (ends exclusive), the
        chosen grid values, and ``is_<stat>`` / ``oos_<stat>`` for each of :data:`STATS`.
    equity
        The stitched out-of-sample book equity (bar closes of every test window).
    stats
        Statistics of ``equity`` (first return against the starting book capital), including ``final_equity``.
    capital
        Starting book capital (``capital`` × accounts of the first fold's choice).
    metric
        The book statistic the train windows were ranked by.
    choices
        Field → {value: number of folds that chose it}.
    """

    folds: pd.DataFrame
    equity: pd.Series
    stats: dict[str, float]
    capital: float
    metric: str
    grid: Mapping[str, Sequence[Any]]
    choices: dict[str, dict[Any, int]]

    @property
    def in_sample_mean(self) -> float:
        """Mean over folds of the chosen point's in-sample ``metric``."""
        return float(np.nanmean(self.folds[f"is_{self.metric}"].to_numpy(dtype=float)))

    @property
    def out_of_sample_mean(self) -> float:
        """Mean over folds of the out-of-sample ``metric``."""
        return float(np.nanmean(self.folds[f"oos_{self.metric}"].to_numpy(dtype=float)))

    @property
    def overfitting_gap(self) -> float:
        """In-sample minus out-of-sample mean ``metric``: how much of the train result did not carry over."""
        return self.in_sample_mean - self.out_of_sample_mean

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``fundarb walk-forward --json``."""
        folds = []
        for _, r in self.folds.iterrows():
            folds.append({
                "train_start": _plain(r["train_start"]), "train_end": _plain(r["train_end"]),
                "test_start": _plain(r["test_start"]), "test_end": _plain(r["test_end"]),
                "params": {f: _plain(r[f]) for f in self.grid},
                "in_sample": {s: _plain(r[f"is_{s}"]) for s in STATS},
                "out_of_sample": {s: _plain(r[f"oos_{s}"]) for s in STATS},
            })
        return {
            "capital": self.capital, "metric": self.metric,
            "grid": {f: [_plain(v) for v in vals] for f, vals in self.grid.items()},
            "folds": folds,
            "out_of_sample": {s: _plain(v) for s, v in self.stats.items()},
            "in_sample_mean": _plain(self.in_sample_mean), "out_of_sample_mean": _plain(self.out_of_sample_mean),
            "overfitting_gap": _plain(self.overfitting_gap),
            "choices": {f: {str(v): n for v, n in c.items()} for f, c in self.choices.items()},
        }

    def figure(self) -> Any:
        """The stitched out-of-sample equity with the test windows' starts marked (a matplotlib Figure)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4), layout="constrained")
        ax = fig.subplots()
        ax.plot(self.equity.index, self.equity.to_numpy(), lw=1.0)
        for t in self.folds["test_start"]:
            ax.axvline(t, color="grey", lw=0.5, ls=":")
        ax.set_ylabel("book equity (out of sample)")
        ax.set_title(f"walk-forward, chosen by in-sample {self.metric}: out-of-sample {self.metric} "
                     f"{self.stats.get(self.metric, float('nan')):.2f} vs in-sample {self.in_sample_mean:.2f}")
        return fig


def _bars(name: str, value: Any, market: MarketData) -> int:
    td = parse_duration(value, name=name)
    n = int(td // market.timeframe)
    if n < 1:
        raise ConfigError(f"{name}={value!r} is shorter than one bar ({market.timeframe})")
    return n


def _longest_window(strategies: Sequence[Any]) -> pd.Timedelta:
    out = pd.Timedelta(0)
    for s in strategies:
        w = getattr(s, "window", None)
        if isinstance(w, str | pd.Timedelta):
            out = max(out, parse_duration(w, name="window"))
    return out


def _book(result: Any) -> Any:
    return result.combined() if len(result.groups) > 1 and not result.portfolio else result


def walk_forward(
    market: MarketData,
    strategy: Any,
    grid: Mapping[str, Sequence[Any]],
    *,
    train: str = "365d",
    test: str = "90d",
    anchored: bool = False,
    metric: str = "sharpe",
    costs: Costs | None = None,
    capital: float = 10_000.0,
    mmr: float = 0.005,
    tiers: Any = None,
    scheduler: Any = None,
    progress: bool | None = None,
) -> WalkForwardResult:
    """Walk-forward validation of ``strategy`` over ``grid`` (see the module docstring).

    Parameters
    ----------
    market
        Aligned market data.
    strategy, grid
        The base strategy and the grid of its fields, as in :func:`fundarb.sweep`.
    train, test
        Durations of the train and test windows (``"365d"``, ``"90d"``). ``train`` must be at least the longest
        filter window of the grid; ``train + test`` at most the data.
    anchored
        Train windows all start at the first bar (growing) instead of rolling.
    metric
        Book statistic maximised on each train window (a column of ``fundarb.sweep(...).table``).
    costs, capital, mmr, tiers
        As in :func:`fundarb.backtest`; the same costs reach the strategy in the train and test windows.
    scheduler
        A Dask scheduler address or Client for the train sweeps (:func:`fundarb.sweep`).
    progress
        A progress bar over folds; None: on a terminal, not under CI, with more than one fold.
    """
    from fundarb.sweeps.distributed import progress_enabled

    costs = Costs() if costs is None else costs
    if not isinstance(costs, Costs):
        raise ConfigError(f"costs must be a fundarb.Costs, got {type(costs).__name__}")
    if isinstance(capital, bool) or not isinstance(capital, int | float) or not (
            capital > 0 and math.isfinite(capital)):
        raise ConfigError(f"capital must be a positive finite number, got {capital!r}")
    if not isinstance(anchored, bool | np.bool_):
        raise ConfigError(f"anchored must be True or False, got {anchored!r}")
    grid, _, strategies, _ = expand_grid(strategy, grid)
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}{did_you_mean(metric, METRICS)}; one of {', '.join(METRICS)}")
    n = len(market.index)
    n_train, n_test = _bars("train", train, market), _bars("test", test, market)
    span = f"{market.index[0]} → {market.index[-1] + market.timeframe} ({n} bars)"
    if n_train >= n:
        raise ConfigError(f"train={train!r} is longer than the data: {span}")
    if n_test >= n:
        raise ConfigError(f"test={test!r} is longer than the data: {span}")
    if n_train + n_test > n:
        raise ConfigError(f"train + test ({train} + {test}) is longer than the data: {span}; no whole fold fits")
    longest = _longest_window(strategies)
    if n_train * market.timeframe < longest:
        raise ConfigError(f"train={train!r} is shorter than the grid's longest filter window ({longest}); "
                          "the filter would have no value in the train window")
    starts = range(0, n - n_train - n_test + 1, n_test)
    owned = None
    if isinstance(scheduler, str):  # one connection for every fold's sweep
        from fundarb.sweeps.distributed import connect

        scheduler, opened = connect(scheduler)
        owned = scheduler if opened else None
    idx = market.index
    rows: list[dict[str, Any]] = []
    curves: list[pd.Series] = []
    book_equity: float | None = None
    first_capital = math.nan
    bar = None
    if progress_enabled(progress, len(starts)):
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(starts), desc="walk-forward", unit="fold", file=sys.stderr)
    try:
        for s in starts:
            a = 0 if anchored else s
            b, c = s + n_train, s + n_train + n_test
            train_m = market.slice(idx[a], idx[b - 1])
            sw = sweep(train_m, strategy, grid, costs=costs, capital=capital, mmr=mmr, tiers=tiers,
                       scheduler=scheduler, progress=False)
            best = sw.best(metric, 1).iloc[0]
            point = {f: best[f] for f in grid}
            chosen = expand_grid(strategy, {f: [v] for f, v in point.items()}, skip_invalid=False)[2][0]
            # signals with warm-up: computed on [train start, test end), used from the test start on
            warm = market.slice(idx[a], idx[c - 1])
            test_m = market.slice(idx[b], idx[c - 1])
            tgt, w = strategy_frames(warm, chosen, costs)
            tgt = tgt.iloc[b - a:]
            tgt.index = test_m.index
            if isinstance(w, pd.DataFrame):
                w = w.iloc[b - a:]
                w.index = test_m.index
            opts = engine_options(chosen)
            portfolio = w is not None or opts["margin_mode"] == "cross"
            accounts = 1 if portfolio else len(market.symbols)
            if book_equity is None:
                book_equity = float(capital) * accounts
                first_capital = book_equity
            res = backtest(test_m, tgt, weights=w, costs=costs, capital=book_equity / accounts, mmr=mmr,
                           tiers=tiers, mode="detail", **opts)
            book = _book(res)
            oos = book.stats().iloc[0]
            curves.append(book.equity.iloc[:, 0])
            book_equity = float(oos["final_equity"])
            row: dict[str, Any] = {"train_start": idx[a], "train_end": idx[b], "test_start": idx[b],
                                   "test_end": idx[c - 1] + market.timeframe, **point,
                                   "test_capital": float(res.params["capital"].sum())}
            for st in STATS:
                row[f"is_{st}"] = best[st]
                row[f"oos_{st}"] = oos[st]
            if metric not in STATS:
                row[f"is_{metric}"] = best[metric]
                row[f"oos_{metric}"] = oos[metric]
            rows.append(row)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if owned is not None:
            owned.close()
    folds = pd.DataFrame(rows)
    equity = pd.concat(curves)
    equity.name = "equity"
    stats = summary(equity.to_numpy(), periods_per_year=market.periods_per_year, capital=first_capital)
    stats = {"final_equity": float(equity.iloc[-1]), **{k: float(v) for k, v in stats.items()}}
    choices = {f: {v: int(c) for v, c in folds[f].value_counts(sort=False).items()} for f in grid}
    return WalkForwardResult(folds=folds, equity=equity, stats=stats, capital=first_capital, metric=metric,
                             grid=grid, choices=choices)
