"""Parameter sweeps: every combination of a grid of strategy fields, scored by its book.

A grid point is a strategy configuration (:func:`dataclasses.replace` of the base strategy, so every value is
validated as usual). Each point is run exactly as :func:`fundarb.run_strategy` runs it — the strategy called with
the simulated costs (:class:`fundarb.signals.protocol.Strategy`), its engine options, independent accounts per
symbol or one portfolio account (a ``weights`` strategy, or ``margin_mode = "cross"``) — and scored by its *book*:
the independent accounts combined (equity summed, as ``fundarb backtest`` reports it) or the one account. Points
are run in chunks, many accounts per kernel call, locally or on a Dask cluster (:mod:`fundarb.sweeps.distributed`).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.engine import layout as k
from fundarb.engine.config import Costs, EngineOptions
from fundarb.engine.run import (
    account_params,
    check_leverage,
    clean_targets,
    period_bars,
    simulate,
    strategy_frames,
    tier_table,
    weights_frame,
)
from fundarb.errors import ConfigError, did_you_mean
from fundarb.results.result import Result, combined_totals
from fundarb.sweeps.spec import normalise_grid

__all__ = ["SweepResult", "expand_grid", "run_points", "sweep"]

AGGS = ("mean", "median", "max", "min")
MEMORY_BUDGET = 256e6  # bytes of per-bar series a chunk may hold (detail runs of independent accounts)


def _label(v: Any) -> Any:
    """A grid value as a table label (numbers and strings as they are, anything else as text)."""
    return v if isinstance(v, int | float | str) else str(v)


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Outcome of :func:`sweep`.

    Attributes
    ----------
    table
        One row per grid point: the grid's fields and every statistic of :meth:`Result.stats` of the point's
        book (all symbols: independent accounts combined, or the one portfolio account). Equal to
        ``run_strategy(market, point).combined().stats()`` (or ``.stats()`` for one account).
    per_symbol
        One row per account: the grid's fields, ``symbol`` (``"portfolio"`` for a one-account point) and the
        account's statistics.
    grid
        The grid swept (plain Python values).
    skipped
        Grid points the strategy refused (e.g. ``exit > entry``), with the reason.
    result
        With ``mode="detail"``: the :class:`Result` of every account (one kernel run); otherwise None.
    """

    table: pd.DataFrame
    per_symbol: pd.DataFrame
    grid: Mapping[str, Sequence[Any]]
    skipped: tuple[tuple[dict[str, Any], str], ...] = ()
    result: Result | None = None

    def _check_metric(self, metric: str) -> None:
        if metric not in self.table.columns or metric in self.grid:
            stats = [c for c in self.table.columns if c not in self.grid]
            raise ConfigError(f"unknown metric {metric!r}{did_you_mean(metric, stats)}")

    def heatmap(self, x: str, y: str, metric: str = "sharpe", *, agg: str = "max",
                fixed: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Pivot the book ``metric`` over two grid fields.

        Fields in ``fixed`` are held at the given value; any other swept field is aggregated with ``agg``
        (``"max"``: the best the other fields reach). ``attrs["title"]`` and ``attrs["label"]`` say what a cell is.
        """
        for name in (x, y, *(fixed or {})):
            if name not in self.grid:
                raise ConfigError(f"{name!r} is not a swept field{did_you_mean(name, self.grid)}; "
                                  f"swept: {', '.join(self.grid)}")
        if x == y:
            raise ConfigError(f"the heatmap's x and y are both {x!r}; give two different swept fields")
        if agg not in AGGS:
            raise ConfigError(f"agg must be one of {AGGS}, got {agg!r}{did_you_mean(agg, AGGS)}")
        self._check_metric(metric)
        t = self.table
        for name, val in (fixed or {}).items():
            if name in (x, y):
                raise ConfigError(f"{name!r} is an axis of the heatmap; it cannot also be fixed")
            t = t[t[name] == _label(val)]
            if t.empty:
                raise ConfigError(f"{name}={val!r} is not a value of the grid: {list(self.grid[name])}")
        pivot = t.pivot_table(index=y, columns=x, values=metric, aggfunc=agg, dropna=False)
        # keep the grid's own order (pivot_table sorts labels: "14d" would come before "3d")
        rows = [v for v in map(_label, self.grid[y]) if v in pivot.index]
        cols = [v for v in map(_label, self.grid[x]) if v in pivot.columns]
        out = pivot.reindex(index=list(dict.fromkeys(rows)), columns=list(dict.fromkeys(cols)))
        others = [f for f in self.grid if f not in (x, y) and f not in (fixed or {}) and len(self.grid[f]) > 1]
        how = [f"{n}={v}" for n, v in (fixed or {}).items()]
        if others:
            how.append(f"{agg} over {', '.join(others)}")
        out.attrs["label"] = f"book {metric}" + (f" ({agg} over {', '.join(others)})" if others else "")
        out.attrs["title"] = f"book {metric} per grid point (all symbols)" + (f"; {'; '.join(how)}" if how else "")
        return out

    def best(self, metric: str = "sharpe", n: int = 10, *, ascending: bool = False,
             per_symbol: bool = False) -> pd.DataFrame:
        """The ``n`` best grid points by their book ``metric`` (``per_symbol=True``: the best accounts)."""
        self._check_metric(metric)
        t = self.per_symbol if per_symbol else self.table
        return t.sort_values(metric, ascending=ascending, kind="stable").head(n)


# ---------------------------------------------------------------------------------------------- grid points
def expand_grid(strategy: Any, grid: Mapping[str, Sequence[Any]], *, skip_invalid: bool = True
                ) -> tuple[dict[str, list[Any]], list[dict[str, Any]], list[Any], list[tuple[dict[str, Any], str]]]:
    """Check ``grid`` against ``strategy``'s fields and build one strategy per point.

    Returns the normalised grid, the points, their strategies and the points the strategy rejected.
    """
    if not dataclasses.is_dataclass(strategy) or isinstance(strategy, type):
        raise ConfigError("a sweep needs a strategy instance that is a dataclass (e.g. FundingCarry())")
    grid = normalise_grid(grid)
    fields = [f.name for f in dataclasses.fields(strategy)]
    for key in grid:
        if key not in fields:
            raise ConfigError(f"unknown strategy field {key!r}{did_you_mean(key, fields)}; fields: {', '.join(fields)}")
    keys = list(grid)
    points: list[dict[str, Any]] = []
    strategies: list[Any] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    for combo in itertools.product(*(grid[f] for f in keys)):
        pt = dict(zip(keys, combo, strict=True))
        try:
            strategies.append(dataclasses.replace(strategy, **pt))
            points.append(pt)
        except ConfigError as exc:
            if not skip_invalid:
                raise ConfigError(f"grid point {pt}: {exc}") from None
            skipped.append((pt, str(exc)))
        except TypeError as exc:  # a value of the wrong kind that the dataclass could not take
            raise ConfigError(f"grid point {pt}: {exc}") from None
    if not points:
        raise ConfigError(f"every grid point was rejected; first: {skipped[0][1]}")
    return grid, points, strategies, skipped


#: The options of :func:`fundarb.backtest` a strategy may carry (their defaults are EngineOptions', as backtest's).
ENGINE_OPTIONS = ("leverage", "spot_leverage", "rebalance_at", "spot_rebalance_level", "rebalance_every",
                  "after_liquidation", "liquidation_loss", "margin_mode", "spot_liquidation_level")


def engine_options(strategy: Any) -> dict[str, Any]:
    """The :func:`fundarb.backtest` options a strategy carries, with backtest's defaults for the others."""
    opts: dict[str, Any] = EngineOptions().as_dict(ENGINE_OPTIONS)
    if hasattr(strategy, "engine_options"):
        opts.update(strategy.engine_options())
    return opts


@dataclass(frozen=True)
class _Point:
    target: np.ndarray
    weight: np.ndarray | None  # None: independent accounts
    param: np.ndarray


def _engine_rejects(market: MarketData, strategies: Sequence[Any], *, capital: float, mmr: float, tiers: Any
                    ) -> list[str | None]:
    """Why :func:`fundarb.backtest` would refuse each strategy's engine options on ``market`` (None: it would not).

    The checks are backtest's own, made before any work: :class:`EngineOptions`' ranges, then
    :func:`~fundarb.engine.run.check_leverage`.
    """
    tables = [tier_table(tiers, s, mmr) for s in market.symbols]
    reasons: dict[str, str | None] = {}
    out: list[str | None] = []
    for s in strategies:
        opts = engine_options(s)
        key = repr(sorted(opts.items()))
        if key not in reasons:
            try:
                o = EngineOptions(**opts, capital=capital, mmr=mmr)
                check_leverage([o.leverage], [capital], tables, list(market.symbols), flat=tiers is None)
                reasons[key] = None
            except ConfigError as exc:
                reasons[key] = str(exc)
        out.append(reasons[key])
    return out


def _prepare(market: MarketData, strategy: Any, costs: Costs, capital: float) -> _Point:
    """One grid point as :func:`fundarb.run_strategy` → :func:`fundarb.backtest` would run it."""
    tgt, weights = strategy_frames(market, strategy, costs)
    o = engine_options(strategy)
    if weights is None and o["margin_mode"] == "cross":
        weights = "equal"
    target = clean_targets(market, tgt.to_numpy(dtype=np.int8))
    weight = weights_frame(market, weights).to_numpy() if weights is not None else None
    col = account_params(costs, capital=capital, leverage=float(o["leverage"]),
                         spot_leverage=float(o["spot_leverage"]), rebalance_at=o["rebalance_at"],
                         rebalance_every=period_bars("rebalance_every", o["rebalance_every"], market),
                         after_liquidation=o["after_liquidation"],
                         spot_liquidation_level=float(o["spot_liquidation_level"]), margin_mode=o["margin_mode"],
                         spot_rebalance_level=o["spot_rebalance_level"], liquidation_loss=o["liquidation_loss"])
    return _Point(target, weight, col)


def run_points(
    market: MarketData,
    strategies: Sequence[Any],
    *,
    costs: Costs,
    capital: float,
    mmr: float = 0.005,
    tiers: Any = None,
    keep: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, Result | None]:
    """Run grid points in one kernel call; return their book statistics, their accounts' statistics.

    Returns
    -------
    book, accounts, result
        ``book``: one row per strategy (index 0 … n−1). ``accounts``: one row per account, with ``point`` (the
        strategy's position) and ``symbol`` (``"portfolio"`` for one account over all symbols). ``result``: the
        accounts' :class:`Result` in detail mode when ``keep``, else None.
    """
    n_sym = len(market.symbols)
    prepared = [_prepare(market, s, costs, capital) for s in strategies]
    blocks: dict[bytes, int] = {}
    tgt_cols: list[np.ndarray] = []
    wgt_cols: list[np.ndarray] = []
    grp_start = [0]
    mem_tgt: list[np.ndarray] = []
    params: list[np.ndarray] = []
    acct_point: list[int] = []
    acct_symbol: list[str] = []
    point_groups: list[tuple[int, int]] = []  # group range of each point
    weighted = any(pt.weight is not None for pt in prepared)
    for p, pt in enumerate(prepared):
        # without any portfolio weights the kernels get one weight for all (flexible indexing): no T × columns copy
        w = pt.weight if pt.weight is not None else np.ones((pt.target.shape[0], n_sym) if weighted else (1, 0))
        key = pt.target.tobytes() + w.tobytes()
        if key not in blocks:
            blocks[key] = len(tgt_cols)
            tgt_cols.append(pt.target)
            wgt_cols.append(w)
        mem_tgt.append(np.arange(n_sym, dtype=np.int64) + blocks[key] * n_sym)
        g0 = len(grp_start) - 1
        if pt.weight is not None:
            grp_start.append(grp_start[-1] + n_sym)
            params.append(pt.param)
            acct_point.append(p)
            acct_symbol.append("portfolio")
        else:
            for s in market.symbols:
                grp_start.append(grp_start[-1] + 1)
                params.append(pt.param)
                acct_point.append(p)
                acct_symbol.append(s)
        point_groups.append((g0, len(grp_start) - 1))
    target = np.ascontiguousarray(np.concatenate(tgt_cols, axis=1))
    weight = np.concatenate(wgt_cols, axis=1) if weighted else np.ones((1, 1))
    gs = np.asarray(grp_start, dtype=np.int64)
    mem_sym = np.tile(np.arange(n_sym, dtype=np.int64), len(prepared))
    par = np.concatenate(params)
    # a point of independent accounts needs their equity per bar to score its book
    need_book = any(pt.weight is None for pt in prepared) and n_sym > 1
    member_target = np.concatenate(mem_tgt)
    out = simulate(market, target, weight, grp_start=gs, mem_sym=mem_sym, mem_tgt=member_target,
                   params=par, tier_tables=[tier_table(tiers, s, mmr) for s in market.symbols],
                   mode="detail" if keep else "book" if need_book else "sweep")
    members = pd.MultiIndex.from_arrays([np.repeat(np.arange(len(prepared)), n_sym),
                                         np.tile(np.asarray(market.symbols, dtype=object), len(prepared))],
                                        names=["point", "symbol"])
    groups = pd.MultiIndex.from_arrays([acct_point, acct_symbol], names=["point", "symbol"])
    res = Result(market=market, groups=groups, members=members, grp_start=gs, mem_sym=mem_sym, params=par,
                 target=target, mem_tgt=member_target, mode="detail" if keep else "sweep",
                 portfolio=all(pt.weight is not None for pt in prepared),
                 **{**out, "gseries": out["gseries"] if keep else None})
    accounts = res.stats().reset_index()

    # the book of each point: its one account, or its independent accounts combined (Result.combined)
    gt = out["gtotals"]
    book_gt = np.empty((k.N_GTOTALS, len(prepared)))
    book_par = par[[g0 for g0, _ in point_groups]].copy()
    for p, (g0, g1) in enumerate(point_groups):
        book_par["capital"][p] = par["capital"][g0:g1].sum()
        if g1 - g0 == 1:
            book_gt[:, p] = gt[:, g0]
            continue
        assert out["gseries"] is not None
        book_gt[:, p] = combined_totals(out["gseries"][:, :, g0:g1], gt[:, g0:g1], float(book_par["capital"][p]))
    book_start = np.arange(0, n_sym * len(prepared) + 1, n_sym, dtype=np.int64)
    book = Result(market=market, groups=pd.RangeIndex(len(prepared), name="point"), members=members,
                  grp_start=book_start, mem_sym=mem_sym, params=book_par, series=None, gseries=None,
                  mtotals=out["mtotals"], gtotals=book_gt, records=k.empty_trades(), target=target,
                  mem_tgt=member_target, mode="sweep", portfolio=True)
    return book.stats().reset_index(drop=True), accounts, (res if keep else None)


def chunk_size_for(market: MarketData, n_points: int) -> int:
    """Grid points per kernel call so that a chunk's per-bar series stay within :data:`MEMORY_BUDGET`."""
    per_point = len(market.index) * len(market.symbols) * 8.0 * (k.N_SERIES + k.N_GSERIES + 2)
    return int(max(1, min(n_points, MEMORY_BUDGET // max(per_point, 1.0))))


def _assemble(grid: Mapping[str, list[Any]], points: list[dict[str, Any]],
              parts: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    keys = list(grid)
    labels = pd.DataFrame([[_label(pt[f]) for f in keys] for pt in points], columns=keys)
    book = pd.concat([b for b, _ in parts], ignore_index=True)
    accts = []
    offset = 0
    for b, a in parts:
        a = a.copy()
        a["point"] = a["point"] + offset
        offset += len(b)
        accts.append(a)
    acc = pd.concat(accts, ignore_index=True)
    table = pd.concat([labels, book], axis=1)
    per_symbol = pd.concat([labels.iloc[acc["point"].to_numpy()].reset_index(drop=True),
                            acc.drop(columns=["point"])], axis=1)
    return table, per_symbol


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
    scheduler: Any = None,
    chunk_size: int | None = None,
    progress: bool | None = None,
) -> SweepResult:
    """Simulate ``strategy`` at every point of ``grid`` and score each point by its book.

    Parameters
    ----------
    market
        Aligned market data.
    strategy
        A frozen-dataclass strategy (:class:`fundarb.signals.protocol.Strategy`); the grid's keys are its fields.
    grid
        Field → values, e.g. ``{"window": ["3d", "7d"], "entry": [0.05, 0.1, 0.2], "leverage": [1, 3]}``.
        numpy scalars are accepted.
    costs, capital, mmr, tiers
        As in :func:`fundarb.backtest`; the strategy is called with the same ``costs``.
    mode
        ``"sweep"`` (statistics only) or ``"detail"`` (also keep every account's :class:`Result`, one run).
    skip_invalid
        Leave out grid points the strategy rejects, or whose leverage the engine refuses as
        :func:`fundarb.backtest` does (listed in ``SweepResult.skipped``), instead of raising.
    scheduler
        None (this process), a Dask scheduler address ``"tcp://host:port"`` or a ``dask.distributed.Client``:
        chunks of the grid run on the cluster's workers (see :mod:`fundarb.sweeps.distributed`).
    chunk_size
        Grid points per kernel call (default: as many as :data:`MEMORY_BUDGET` allows).
    progress
        A progress bar over chunks; None: only on a terminal, not under CI, and only for several chunks.
    """
    from fundarb.sweeps.distributed import map_chunks

    costs = Costs() if costs is None else costs
    if not isinstance(costs, Costs):
        raise ConfigError(f"costs must be a fundarb.Costs, got {type(costs).__name__}")
    if mode not in ("sweep", "detail"):
        raise ConfigError(f"mode must be 'sweep' or 'detail', got {mode!r}{did_you_mean(mode, ['sweep', 'detail'])}")
    if isinstance(capital, bool) or not isinstance(capital, int | float) or not (
            capital > 0 and math.isfinite(capital)):
        raise ConfigError(f"capital must be a positive finite number, got {capital!r}")
    grid, points, strategies, skipped = expand_grid(strategy, grid, skip_invalid=skip_invalid)
    # a leverage the engine refuses (run_strategy raises) is an invalid point, as one the strategy refuses
    kept = []
    for i, why in enumerate(_engine_rejects(market, strategies, capital=float(capital), mmr=mmr, tiers=tiers)):
        if why is None:
            kept.append(i)
        elif not skip_invalid:
            raise ConfigError(f"grid point {points[i]}: {why}")
        else:
            skipped.append((points[i], why))
    if not kept:
        raise ConfigError(f"every grid point was rejected; first: {skipped[0][1]}")
    points, strategies = [points[i] for i in kept], [strategies[i] for i in kept]
    if mode == "detail":
        if scheduler is not None:
            raise ConfigError("mode='detail' keeps every account in this process; use it without a scheduler")
        book, accts, res = run_points(market, strategies, costs=costs, capital=float(capital), mmr=mmr, tiers=tiers,
                                      keep=True)
        table, per_symbol = _assemble(grid, points, [(book, accts)])
        return SweepResult(table=table, per_symbol=per_symbol, grid=grid, skipped=tuple(skipped), result=res)
    size = chunk_size or chunk_size_for(market, len(strategies))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"chunk_size must be a whole number ≥ 1, got {chunk_size!r}")
    chunks = [strategies[i:i + size] for i in range(0, len(strategies), size)]
    parts = map_chunks(market, chunks, dict(costs=costs, capital=float(capital), mmr=mmr, tiers=tiers),
                       scheduler=scheduler, progress=progress, desc="sweep")
    table, per_symbol = _assemble(grid, points, parts)
    return SweepResult(table=table, per_symbol=per_symbol, grid=grid, skipped=tuple(skipped))
