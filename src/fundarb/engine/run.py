"""`run_accounts`: MarketData and a strategy in, the kernels' arrays out (:class:`EngineRun`).

This module turns pandas objects and keyword options into the kernels' arrays (parameters broadcast over
columns without copies, a Cartesian grid when several values are given) and runs the kernels. It never imports
``fundarb.results``: :func:`fundarb.backtest` (in :mod:`fundarb.results.backtest`) wraps an :class:`EngineRun`
into a ``Result``.
"""

from __future__ import annotations

import inspect
import itertools
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.durations import parse_duration
from fundarb.engine import layout
from fundarb.engine import nb as k
from fundarb.engine.config import AFTER_LIQUIDATION, Costs, EngineOptions
from fundarb.engine.tiers import flat_tiers, load_tiers, tiers_from_ccxt
from fundarb.errors import ConfigError, did_you_mean, is_real

__all__ = ["MARKET_ARRAYS", "MODES", "EngineRun", "account_layout", "account_params", "check_leverage",
           "clean_targets", "flex_2d", "kernel_input", "period_bars", "run_accounts", "simulate", "strategy_frames",
           "targets_from_positions", "tier_table", "weights_frame"]

MODES = ("detail", "sweep")
_D = EngineOptions()  # run_accounts' defaults (and so backtest's) are EngineOptions' own


def targets_from_positions(market: MarketData, positions: Any) -> pd.DataFrame:
    """Directions to hold after each bar's open, as an int8 DataFrame aligned to ``market``.

    ``positions`` is an int (every symbol, every bar), a Series (one symbol by bar time, or a constant per symbol
    when indexed by symbol), or a DataFrame (bars × symbols). Values must be −1, 0 or +1 (booleans are refused);
    NaN means 0. A time index must be exactly ``market.index`` and the symbols exactly ``market.symbols``:
    anything else (naive, shifted, partial, a RangeIndex, a symbol missing) is a ConfigError saying how it
    differs, never a silent reindex to flat.
    """
    idx, cols = market.index, list(market.symbols)
    if isinstance(positions, bool | np.bool_):
        raise ConfigError(f"positions must be -1, 0 or +1, got the boolean {positions!r}")
    if isinstance(positions, int | np.integer):
        frame = pd.DataFrame(int(positions), index=idx, columns=cols)
    elif isinstance(positions, pd.Series):
        if isinstance(positions.index, pd.DatetimeIndex) or not _by_symbol(positions.index):
            if len(cols) != 1:
                raise ConfigError(f"a position Series by time is for one symbol; the market has {cols}: pass a "
                                  "DataFrame (bars × symbols) or a Series indexed by symbol")
            _same_bars("positions", positions.index, idx)
            frame = positions.to_frame(cols[0])
            frame.index = idx
        else:
            _same_symbols("positions", positions.index, cols)
            frame = pd.DataFrame({c: positions[c] for c in cols}, index=idx)
    elif isinstance(positions, pd.DataFrame):
        _same_symbols("positions", positions.columns, cols)
        _same_bars("positions", positions.index, idx)
        if (positions.shape == (len(idx), len(cols)) and all(dt == np.int8 for dt in positions.dtypes)
                and list(positions.columns) == cols and positions.index.equals(idx)):
            vals8 = positions.to_numpy()
            if ((vals8 < -1) | (vals8 > 1)).any():
                i, j = np.argwhere((vals8 < -1) | (vals8 > 1))[0]
                raise ConfigError(f"positions must be -1, 0 or +1; got {vals8[i, j]!r} at {idx[i]}, "
                                  f"column {cols[j]!r}")
            return positions
        frame = positions[cols].set_axis(idx, axis=0)
    else:
        raise ConfigError("strategy must be a position int/Series/DataFrame or an object with "
                          ".targets(market, costs), "
                          f"got {type(positions).__name__}")
    vals = _numbers("positions", frame, idx, cols)
    vals = np.where(np.isnan(vals), 0.0, vals)
    bad = ~np.isin(vals, (-1.0, 0.0, 1.0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ConfigError(f"positions must be -1, 0 or +1; got {vals[i, j]!r} at {idx[i]}, column {cols[j]!r}")
    return pd.DataFrame(vals.astype(np.int8), index=idx, columns=cols)


def _by_symbol(index: pd.Index) -> bool:
    return len(index) > 0 and all(isinstance(v, str) for v in index)


def _same_symbols(what: str, got: pd.Index, cols: list[str]) -> None:
    missing = [c for c in cols if c not in got]
    if missing:
        raise ConfigError(f"{what} have no column for {missing}{did_you_mean(missing[0], map(str, got))}; the market's "
                          f"symbols are {cols}")
    extra = [c for c in got if c not in cols]
    if extra:
        raise ConfigError(f"{what} have column(s) {extra} that are not symbols of the market ({cols})")
    if got.has_duplicates:
        raise ConfigError(f"{what} name a symbol twice: {list(got[got.duplicated()])}")


def _same_bars(what: str, got: pd.Index, idx: pd.DatetimeIndex) -> None:
    """ConfigError saying how ``got`` differs from the market's bar times, unless it is the same."""
    if not isinstance(got, pd.DatetimeIndex):
        raise ConfigError(f"{what} are indexed by a {type(got).__name__} ({list(got[:3])}…), not by the market's "
                          "bar times; build them on market.index")
    if got.tz is None:
        raise ConfigError(f"{what} have a naive index (no time zone); the market's bars are UTC: use "
                          ".tz_localize('UTC') if the times are UTC")
    g = got.tz_convert("UTC").as_unit("ns").asi8
    w = idx.as_unit("ns").asi8
    if len(g) == len(w) and (g == w).all():
        return
    if len(g) == len(w) and len(g) and (g - w == g[0] - w[0]).all():
        raise ConfigError(f"{what} are shifted by {pd.Timedelta(int(g[0] - w[0]))} from the market's bars "
                          f"(first {got[0]} vs {idx[0]})")
    if pd.Index(g).has_duplicates:
        raise ConfigError(f"{what} have duplicate times, e.g. {got[pd.Index(g).duplicated()][0]}")
    outside = ~np.isin(g, w)
    if outside.any():
        raise ConfigError(f"{what} have {int(outside.sum())} time(s) that are not bars of the market (first "
                          f"{got[np.flatnonzero(outside)[0]]}; the market is {idx[0]} → {idx[-1]} every "
                          f"{pd.Timedelta(int(w[1] - w[0])) if len(w) > 1 else 'bar'}): select them with "
                          ".loc[market.index]")
    absent = ~np.isin(w, g)
    if absent.any():
        raise ConfigError(f"{what} cover {len(w) - int(absent.sum())} of the market's {len(w)} bars (first missing "
                          f"{idx[np.flatnonzero(absent)[0]]}); give every bar (0 for flat)")
    raise ConfigError(f"{what} are not in the market's bar order; sort them (.sort_index())")


def _numbers(what: str, frame: pd.DataFrame, idx: pd.DatetimeIndex, cols: list[str]) -> np.ndarray:
    """The frame as float64; booleans and text are ConfigErrors naming the first such cell."""
    for j, c in enumerate(cols):
        col = frame[c]
        if col.dtype.kind == "b" or (col.dtype.kind == "O" and col.map(lambda v: isinstance(v, bool | np.bool_)).any()):
            raise ConfigError(f"{what} must be numbers; column {c!r} holds booleans (True/False)")
        if col.dtype.kind not in "iuf":
            num = pd.to_numeric(col, errors="coerce")
            bad = num.isna().to_numpy() & col.notna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ConfigError(f"{what} must be numbers; got {col.iloc[i]!r} at {idx[i]}, column {cols[j]!r}")
    return frame.to_numpy(dtype=np.float64)


def _as_values(name: str, v: Any) -> list[Any]:
    if isinstance(v, str | bytes) or not isinstance(v, Sequence | np.ndarray):
        return [v]
    vals = list(v)
    if not vals:
        raise ConfigError(f"{name}: empty list of values")
    return vals


def _bars(name: str, v: Any, market: MarketData) -> float:
    """A period given as bars (int) or a duration string ("7d") → number of bars (0: off)."""
    if v is None or v == 0:
        return 0.0
    if isinstance(v, str):
        return float(parse_duration(v, name=name) / market.timeframe)
    if is_real(v) and v >= 0:
        return float(v)
    raise ConfigError(f"{name} must be a number of bars ≥ 0 or a duration like '7d', got {v!r}")


MAX_LEVERAGE = 125.0  # Binance's largest perp leverage: the bound when only a flat mmr is given


def check_leverage(leverages: Sequence[float], capitals: Sequence[float], tier_tables: Sequence[np.ndarray],
                   symbols: Sequence[str], *, flat: bool) -> None:
    """Refuse leverage no exchange gives, for each account's ``(leverage, capital)`` pair (DESIGN §3, §5): above
    125 with a flat mmr, and an initial margin ``1/L`` at or below the maintenance rate of the tier the entry's
    notional falls in (such a position would be liquidated as it opens). The tier-free ranges are
    :class:`EngineOptions`' own."""
    lev = np.asarray(leverages, dtype=np.float64)
    cap = np.asarray(capitals, dtype=np.float64)
    if flat and (lev > MAX_LEVERAGE).any():
        bad = float(lev[np.argmax(lev > MAX_LEVERAGE)])
        raise ConfigError(f"leverage must be > 0 and ≤ {MAX_LEVERAGE:g} (the exchange's maximum), got {bad!r}")
    notional = cap * lev / (lev + 1.0)  # a carry of the whole capital: the largest one-symbol entry
    for sym, tl in zip(symbols, tier_tables, strict=True):
        row = np.minimum(np.searchsorted(tl[:, layout.TIER_MAX], notional, side="right"), len(tl) - 1)
        mmr = tl[row, layout.TIER_MMR]
        hit = 1.0 / lev <= mmr
        if hit.any():
            k = int(np.argmax(hit))
            raise ConfigError(
                f"leverage {float(lev[k])!r}: the initial margin 1/L = {1.0 / lev[k]:.4g} is at or below the "
                f"maintenance margin rate {mmr[k]:g} of {sym}'s tier for a {notional[k]:,.0f} notional; "
                f"leverage must be below {1.0 / mmr[k]:g} there")


def _tiers_for(tiers: Any, symbol: str, mmr: float) -> np.ndarray:
    if tiers is None:
        return flat_tiers(mmr)
    if isinstance(tiers, np.ndarray):
        return tiers
    if isinstance(tiers, str | os.PathLike):
        return load_tiers(tiers, symbol)
    if isinstance(tiers, Mapping):
        key = symbol if symbol in tiers else f"{symbol.split('/')[0].upper()}/USDT:USDT"
        if key not in tiers:
            raise ConfigError(f"no tiers for {symbol!r}{did_you_mean(key, tiers)}")
        val = tiers[key]
        return val if isinstance(val, np.ndarray) else tiers_from_ccxt(val, source=f"tiers[{key}]")
    return tiers_from_ccxt(tiers)


def _weights_frame(market: MarketData, weights: Any) -> pd.DataFrame:
    idx, cols = market.index, list(market.symbols)
    if isinstance(weights, str):
        if weights != "equal":
            raise ConfigError(f"weights must be 'equal', a Series or a DataFrame, got {weights!r}"
                              f"{did_you_mean(weights, ['equal'])}")
        return pd.DataFrame(1.0 / len(cols), index=idx, columns=cols)
    if isinstance(weights, pd.Series) and not isinstance(weights.index, pd.DatetimeIndex):
        _same_symbols("weights", weights.index, cols)
        frame = pd.DataFrame({c: weights[c] for c in cols}, index=idx)
    elif isinstance(weights, pd.DataFrame):
        _same_symbols("weights", weights.columns, cols)
        _same_bars("weights", weights.index, idx)
        frame = weights[cols].set_axis(idx, axis=0)
    else:
        raise ConfigError("weights must be 'equal', a Series indexed by symbol, or a DataFrame (bars × symbols)")
    vals = _numbers("weights", frame, idx, cols)
    if not np.isfinite(vals).all():
        i, j = np.argwhere(~np.isfinite(vals))[0]
        raise ConfigError(f"weights must be finite numbers (write 0 for none); got {vals[i, j]!r} at {idx[i]}, "
                          f"column {cols[j]!r}")
    if (vals < 0).any() or (vals.sum(axis=1) > 1 + 1e-9).any():
        i = int(np.flatnonzero((vals < 0).any(axis=1) | (vals.sum(axis=1) > 1 + 1e-9))[0])
        raise ConfigError(f"weights must be ≥ 0 and sum to at most 1 per bar; at {idx[i]} they are {vals[i].tolist()}")
    return pd.DataFrame(vals, index=idx, columns=cols)


def period_bars(name: str, v: Any, market: MarketData) -> float:
    """A period given as bars (int) or a duration string (``"7d"``) → number of bars on ``market`` (0: off)."""
    return _bars(name, v, market)


def tier_table(tiers: Any, symbol: str, mmr: float) -> np.ndarray:
    """The leverage-tier table :func:`backtest` uses for ``symbol`` given its ``tiers`` and ``mmr`` arguments."""
    return _tiers_for(tiers, symbol, mmr)


def weights_frame(market: MarketData, weights: Any) -> pd.DataFrame:
    """Portfolio weights (``"equal"``, a Series by symbol or a DataFrame) checked and aligned to ``market``."""
    return _weights_frame(market, weights)


def _call_with_costs(method: Any, market: MarketData, costs: Costs) -> Any:
    """``method(market, costs)`` — or ``method(market)`` for a strategy whose decisions ignore costs."""
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):
        return method(market, costs)
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in positional):
        return method(market, costs)
    return method(market)


def strategy_frames(market: MarketData, strategy: Any, costs: Costs) -> tuple[pd.DataFrame, Any]:
    """The targets (int8 frame) and weights (or None) of a strategy object, called with the simulated ``costs``.

    The strategy contract is :class:`fundarb.signals.protocol.Strategy`: ``targets(market, costs)`` and, for a
    portfolio, ``weights(market, costs)``.
    """
    tgt = targets_from_positions(market, _call_with_costs(strategy.targets, market, costs))
    w = strategy.weights if hasattr(strategy, "weights") and callable(strategy.weights) else None
    return tgt, (_call_with_costs(w, market, costs) if w is not None else None)


def clean_targets(market: MarketData, target: np.ndarray) -> np.ndarray:
    """Directions the engine may hold: 0 outside each symbol's active span (DESIGN §1), and 0 at the last active
    bar of a symbol whose data ends before the index does (closed at that bar's open).

    ``target`` has one column per symbol, or a multiple of that (symbol-major blocks, one per parameter set).
    """
    out = np.array(target, dtype=np.int8, copy=True)
    n_sym = len(market.symbols)
    active = np.tile(market.active(), (1, out.shape[1] // n_sym))
    out[~active] = 0
    for j, s in enumerate(market.symbols):
        last = market.coverage[s].last_bar
        if 0 <= last < len(market.index) - 1:
            out[last, j::n_sym] = 0
    return out


def account_params(
    costs: Costs,
    *,
    capital: float,
    leverage: float,
    spot_leverage: float,
    rebalance_at: float | None,
    rebalance_every: float,
    after_liquidation: str,
    spot_liquidation_level: float,
    margin_mode: str,
    spot_rebalance_level: float | None = None,
    liquidation_loss: str = "fee",
) -> np.ndarray:
    """One account's parameters for the kernels: a 1-record array of ``layout.PARAMS_DTYPE``; ``rebalance_every`` in
    bars.

    ``rebalance_at`` and ``spot_rebalance_level`` are off when None (``rebalance_at`` also outside ``(0, 1)``).
    """
    rec = layout.empty_params(1)
    r = rec[0]
    r["capital"] = capital
    r["leverage"] = leverage
    r["spot_leverage"] = spot_leverage
    r["spot_fee"] = costs.spot_fee
    r["perp_fee"] = costs.perp_fee
    r["half_spread"] = costs.half_spread_bps * 1e-4
    r["slippage"] = costs.slippage_bps * 1e-4
    r["slippage_k"] = costs.slippage_k
    r["borrow_rate"] = costs.borrow_rate
    r["liquidation_fee"] = costs.liquidation_fee
    r["rebalance_at"] = np.nan if rebalance_at is None else rebalance_at
    r["rebalance_every"] = rebalance_every
    r["after_liquidation"] = AFTER_LIQUIDATION.index(after_liquidation)
    r["spot_liquidation_level"] = spot_liquidation_level
    r["cross_margin"] = margin_mode == "cross"
    r["spot_rebalance_level"] = np.nan if spot_rebalance_level is None else spot_rebalance_level
    r["liquidation_loss_margin"] = liquidation_loss == "margin"
    return rec


def account_layout(n_sym: int, n_sets: int, *, portfolio: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accounts and members for ``n_sets`` parameter sets over ``n_sym`` symbols (symbol-major blocks).

    Returns ``grp_start`` (member offsets of each account), ``mem_sym`` (market column of each member) and the
    parameter set of each account: one account per set (a portfolio) or one per set × symbol.
    """
    mem_sym = np.tile(np.arange(n_sym, dtype=np.int64), n_sets)
    if portfolio:
        return np.arange(0, n_sym * n_sets + 1, n_sym, dtype=np.int64), mem_sym, np.arange(n_sets)
    return np.arange(n_sym * n_sets + 1, dtype=np.int64), mem_sym, np.repeat(np.arange(n_sets), n_sym)


#: Market arrays the kernels read, in their argument order.
MARKET_ARRAYS = ("spot_open", "spot_high", "spot_low", "spot_close", "perp_open", "mark_open", "mark_high",
                 "mark_low", "mark_close", "funding_rate", "borrow_rate", "spot_volume", "perp_volume")


def kernel_input(a: np.ndarray, dtype: Any) -> np.ndarray:
    """``a`` as the kernels take every input: C-ordered, of ``dtype``, read-only (a view; copied only if needed).

    One layout for every input keeps the kernels at one compiled specialisation.
    """
    v = np.ascontiguousarray(a, dtype=dtype).view()
    v.flags.writeable = False
    return v


def flex_2d(a: np.ndarray) -> np.ndarray:
    """A 2-D array with every broadcast (zero-stride) axis collapsed to length 1, for the kernels' flexible
    indexing: a ``(1, 1)`` weight is one value for every bar and column, a ``(T, 1)`` one per bar."""
    if a.ndim != 2:
        raise ValueError(f"expected a 2-D array, got {a.ndim}-D")
    return a[tuple(slice(0, 1) if st == 0 else slice(None) for st in a.strides)]


def simulate(
    market: MarketData,
    target: np.ndarray,
    weight: np.ndarray,
    *,
    grp_start: np.ndarray,
    mem_sym: np.ndarray,
    mem_tgt: np.ndarray,
    params: np.ndarray,
    tier_tables: list[np.ndarray],
    mode: str = "detail",
    trades: bool = True,
) -> dict[str, Any]:
    """Run the kernels on prepared arrays; returns the raw outputs that :class:`Result` wraps.

    ``tier_tables`` holds one tier table per market symbol; members use their symbol's. Ranges of groups run on
    threads (the kernel releases the GIL). ``mode``: ``"detail"`` (every series and the trade log; ``trades=False``
    skips the log), ``"book"`` (the groups' equity and held flag per bar, in ``gseries``) or ``"sweep"`` (totals
    only).
    """
    tier_arr = np.concatenate(tier_tables)
    starts = np.cumsum([0] + [len(t) for t in tier_tables[:-1]]).astype(np.int64)
    lens = np.array([len(t) for t in tier_tables], dtype=np.int64)
    A = market.arrays
    args: tuple[Any, ...] = (
        *(kernel_input(A[name], np.float64) for name in MARKET_ARRAYS),
        kernel_input(target, np.int8), kernel_input(flex_2d(weight), np.float64),
        kernel_input(grp_start, np.int64), kernel_input(mem_sym, np.int64), kernel_input(mem_tgt, np.int64),
        kernel_input(params, layout.PARAMS_DTYPE), kernel_input(tier_arr, np.float64),
        kernel_input(starts[mem_sym], np.int64), kernel_input(lens[mem_sym], np.int64), float(market.bar_hours))
    n_mem, n_grp = len(mem_sym), len(grp_start) - 1
    mtotals = np.zeros((layout.N_MTOTALS, n_mem))
    gtotals = np.zeros((layout.N_GTOTALS, n_grp))
    ranges = group_ranges(n_grp, kernel_threads())
    T = len(market.index)
    level = {"sweep": layout.LEVEL_TOTALS, "book": layout.LEVEL_BOOK, "detail": layout.LEVEL_DETAIL}[mode]
    series = np.zeros((layout.N_SERIES, T, n_mem) if mode == "detail" else (layout.N_SERIES, 1, 1))
    gseries = np.zeros((layout.N_GSERIES, T, n_grp) if mode != "sweep" else (layout.N_GSERIES, 1, 1))
    trades = trades and mode == "detail"

    def run_range(bounds: tuple[int, int]) -> np.ndarray:
        g0, g1 = bounds
        cap = max(64, 4 * int(grp_start[g1] - grp_start[g0])) if trades else 0
        while True:  # a range whose trade log overflowed runs again with room for all of it
            rec = layout.empty_trades(cap)
            n = k.simulate_nb(*(g0, g1, *args, level, series, gseries, mtotals, gtotals, rec))
            if n <= cap or not trades:
                return rec[:n]
            cap = n

    logs = run_on_threads(run_range, ranges)
    return {"series": series if mode == "detail" else None, "gseries": gseries if mode != "sweep" else None,
            "mtotals": mtotals, "gtotals": gtotals,
            "records": np.concatenate(logs) if logs else layout.empty_trades()}


def run_on_threads(fn: Any, ranges: list[tuple[int, int]]) -> list[Any]:
    """``fn`` over each range of groups, in order; on :func:`kernel_threads` threads when there are several."""
    if len(ranges) <= 1:
        return [fn(r) for r in ranges]
    with ThreadPoolExecutor(max_workers=kernel_threads()) as pool:
        return list(pool.map(fn, ranges))


def kernel_threads() -> int:
    """Threads the kernel runs on: ``NUMBA_NUM_THREADS`` (default: the machine's cores)."""
    return max(1, int(numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


def group_ranges(n_groups: int, threads: int) -> list[tuple[int, int]]:
    """Split ``n_groups`` into contiguous ranges, about four per thread so that uneven groups even out."""
    if n_groups == 0:
        return []
    n = min(n_groups, 1 if threads <= 1 else 4 * threads)
    edges = np.linspace(0, n_groups, n + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


@dataclass(frozen=True, eq=False)
class EngineRun:
    """What :func:`run_accounts` returns: the kernels' outputs with the layout and labels that read them.

    Attributes
    ----------
    market
        The market simulated.
    groups, members
        Labels of the accounts (groups) and of their members (one symbol each).
    grp_start, mem_sym
        Member offsets of each account; market column of each member (:func:`account_layout`).
    params
        Account parameters, one record per account (``layout.PARAMS_DTYPE``).
    target
        Directions simulated (after :func:`clean_targets`), one column per market symbol.
    series, gseries, mtotals, gtotals, records
        The kernels' outputs (:func:`simulate`); ``series``/``gseries`` are None in sweep mode.
    mode, portfolio, config
        ``"detail"`` or ``"sweep"``; whether the accounts are portfolios; the run's options as ``Result.config``.
    """

    market: MarketData
    groups: pd.Index
    members: pd.Index
    grp_start: np.ndarray
    mem_sym: np.ndarray
    params: np.ndarray
    target: np.ndarray
    series: np.ndarray | None
    gseries: np.ndarray | None
    mtotals: np.ndarray
    gtotals: np.ndarray
    records: np.ndarray
    mode: str
    portfolio: bool
    config: dict[str, Any]


def run_accounts(
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
) -> EngineRun:
    """Check the options, prepare the kernels' arrays and run them: everything :func:`fundarb.backtest` does
    except wrapping the outcome into a ``Result``.

    Parameters
    ----------
    market, strategy, costs, capital, leverage, spot_leverage, mmr, tiers, rebalance_at, spot_rebalance_level
        As in :func:`fundarb.backtest`.
    rebalance_every, after_liquidation, liquidation_loss, spot_liquidation_level, margin_mode, weights, mode
        As in :func:`fundarb.backtest`; every option is checked (ranges from :class:`EngineOptions`) before any
        work is done, with the same :class:`~fundarb.errors.ConfigError`.

    Returns
    -------
    EngineRun
        The arrays and labels of the run.
    """
    if not isinstance(market, MarketData):
        raise ConfigError(f"market must be a fundarb.MarketData (from a loader or fa.demo_market()), "
                          f"got {type(market).__name__}")
    costs = Costs() if costs is None else costs
    if not isinstance(costs, Costs):
        raise ConfigError(f"costs must be a fundarb.Costs, got {type(costs).__name__}")
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}{did_you_mean(mode, MODES)}")
    grid_spec = {
        "capital": _as_values("capital", capital),
        "leverage": _as_values("leverage", leverage),
        "spot_leverage": _as_values("spot_leverage", spot_leverage),
        "rebalance_at": _as_values("rebalance_at", rebalance_at),
    }
    combos = list(itertools.product(*grid_spec.values()))
    # every option checked (ranges declared once, in EngineOptions) before any work is done
    options = [EngineOptions(capital=c[0], leverage=c[1], spot_leverage=c[2], rebalance_at=c[3], mmr=mmr,
                             spot_rebalance_level=spot_rebalance_level, rebalance_every=rebalance_every,
                             after_liquidation=after_liquidation, liquidation_loss=liquidation_loss,
                             spot_liquidation_level=spot_liquidation_level, margin_mode=margin_mode)
               for c in combos]
    o = options[0]
    spot_rebalance_level, spot_liquidation_level = o.spot_rebalance_level, o.spot_liquidation_level

    if hasattr(strategy, "targets") and callable(strategy.targets):
        tgt_frame, own_weights = strategy_frames(market, strategy, costs)
        if weights is None:
            weights = own_weights
    else:
        tgt_frame = targets_from_positions(market, strategy)
    if weights is None and margin_mode == "cross":
        weights = "equal"
    portfolio = weights is not None
    target = clean_targets(market, tgt_frame.to_numpy(dtype=np.int8))
    if portfolio:
        weight = _weights_frame(market, weights).to_numpy()
    else:
        weight = np.ones((1, 1))  # one weight for every bar and column (the kernels index it flexibly)

    tier_tables = [_tiers_for(tiers, s, o.mmr) for s in market.symbols]
    check_leverage([x.leverage for x in options], [x.capital for x in options], tier_tables, list(market.symbols),
                   flat=tiers is None)
    every = _bars("rebalance_every", o.rebalance_every, market)
    swept = [n for n, v in grid_spec.items() if len(v) > 1]
    n_sym = len(market.symbols)
    grp_start, mem_sym, grp_combo = account_layout(n_sym, len(combos), portfolio=portfolio)
    mem_tgt = mem_sym
    params = np.concatenate([
        account_params(costs, capital=x.capital, leverage=x.leverage, spot_leverage=x.spot_leverage,
                       rebalance_at=x.rebalance_at, rebalance_every=every, after_liquidation=x.after_liquidation,
                       spot_liquidation_level=x.spot_liquidation_level, margin_mode=x.margin_mode,
                       spot_rebalance_level=x.spot_rebalance_level, liquidation_loss=x.liquidation_loss)
        for x in (options[i] for i in grp_combo)])
    out = simulate(market, target, weight, grp_start=grp_start, mem_sym=mem_sym, mem_tgt=mem_tgt, params=params,
                   tier_tables=tier_tables, mode=mode)

    names = list(grid_spec)
    keep = [i for i, n in enumerate(names) if n in swept]
    mem_tuples = [(*(combo[i] for i in keep), s) for combo in combos for s in market.symbols]
    members = pd.MultiIndex.from_tuples(mem_tuples, names=[*[names[i] for i in keep], "symbol"])
    if not keep:
        members = members.get_level_values("symbol")
    if portfolio:
        if keep:
            groups = pd.MultiIndex.from_tuples([tuple(c[i] for i in keep) for c in combos],
                                               names=[names[i] for i in keep])
            if len(keep) == 1:
                groups = groups.get_level_values(0)
        else:
            groups = pd.Index(["portfolio"], name="portfolio")
    else:
        groups = members
    return EngineRun(
        market=market,
        groups=groups,
        members=members,
        grp_start=grp_start,
        mem_sym=mem_sym,
        params=params,
        target=target,
        **out,
        mode=mode,
        portfolio=portfolio,
        config={"costs": costs, "mmr": mmr, "after_liquidation": after_liquidation,
                "liquidation_loss": liquidation_loss, "spot_rebalance_level": spot_rebalance_level,
                "spot_liquidation_level": spot_liquidation_level, "rebalance_every": o.rebalance_every,
                "margin_mode": margin_mode, "tiers": "flat" if tiers is None else "tiers"},
    )
