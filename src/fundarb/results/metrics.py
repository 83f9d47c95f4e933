"""Pure metric functions (DESIGN.md §8), empyrical-style, with an explicit ``periods_per_year``.

Inputs are simple per-period returns (or, where named, an equity curve or a position) as a 1-D ndarray, a
Series, a 2-D ndarray (time on axis 0, one column each) or a DataFrame. The output follows the input's kind:

- 1-D ndarray or Series → a Python ``float``;
- 2-D ndarray → a 1-D ndarray, one value per column;
- DataFrame → a Series indexed by its columns.

NaN returns are ignored (dropped) by every statistic; a column of only NaN gives NaN. Annualisation never
assumes 252: pass ``periods_per_year`` (8,760 for 1h bars, 1,095 for 8h bars; ``MarketData.periods_per_year``).
A zero volatility (or zero downside deviation) gives a NaN Sharpe (Sortino), not an infinity.

Each ratio has a second, streaming form beside it (``*_from_sums``): the same definition written on the sums
the kernels accumulate bar by bar (``n``, ``Σr``, ``Σr²``, ``Σmin(r, 0)²``, final wealth, maximum drawdown).
They take scalars or arrays (one value per account) and are what ``fundarb.Result.stats()`` calls, so each
metric is defined once here; the tests check both forms equal, and equal to vectorbt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "annualised_funding_on_notional",
    "annualized_return",
    "annualized_return_from_wealth",
    "annualized_volatility",
    "annualized_volatility_from_sums",
    "binance_apr_on_capital",
    "break_even_days",
    "calmar_from",
    "calmar_ratio",
    "funding_kept_share",
    "max_drawdown",
    "max_drawdown_duration",
    "realised_apr_on_capital",
    "returns_from_equity",
    "sharpe_from_sums",
    "sharpe_ratio",
    "sortino_from_sums",
    "sortino_ratio",
    "streaming_sums",
    "summary",
    "time_in_market",
    "total_return",
    "total_return_from_wealth",
]


def _apply(x: Any, fn: Callable[[np.ndarray], float]) -> Any:
    """Apply a 1-D statistic to each column, returning the input kind's output type."""
    if isinstance(x, pd.DataFrame):
        return pd.Series([fn(x[c].to_numpy(dtype=np.float64)) for c in x.columns], index=x.columns, dtype=float)
    if isinstance(x, pd.Series):
        return float(fn(x.to_numpy(dtype=np.float64)))
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return float(fn(arr))
    if arr.ndim == 2:
        return np.array([fn(arr[:, j]) for j in range(arr.shape[1])])
    raise ValueError(f"expected 1-D or 2-D input, got {arr.ndim}-D")


def _clean(r: np.ndarray) -> np.ndarray:
    return r[~np.isnan(r)]


def returns_from_equity(equity: Any, capital: float | None = None) -> Any:
    """Simple returns of an equity curve; with ``capital``, the first return is against it (as ``Result.stats``).

    Returns the same kind as the input (ndarray, Series or DataFrame), one row per period.
    """
    if isinstance(equity, pd.DataFrame | pd.Series):
        prev = equity.shift(1)
        if capital is not None:
            prev.iloc[0] = capital
        return equity / prev - 1.0
    eq = np.asarray(equity, dtype=np.float64)
    prev = np.empty_like(eq)
    prev[1:] = eq[:-1]
    prev[0] = np.nan if capital is None else capital
    return eq / prev - 1.0


def _out(x: Any) -> Any:
    """A 0-d result as a Python float, an array as an array."""
    arr = np.asarray(x, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def streaming_sums(returns: Any) -> dict[str, Any]:
    """The sums the streaming forms take, computed from a return series (NaN dropped): ``n``, ``sum_r``,
    ``sum_r2``, ``sum_down2`` (``Σ min(r, 0)²``) and ``wealth`` (``Π(1 + r)``); one value per column."""
    def col(fn: Callable[[np.ndarray], float]) -> Any:
        return _apply(returns, lambda r: fn(_clean(r)))

    return {"n": col(lambda r: float(r.size)), "sum_r": col(lambda r: float(np.sum(r))),
            "sum_r2": col(lambda r: float(np.sum(r * r))),
            "sum_down2": col(lambda r: float(np.sum(np.minimum(r, 0.0) ** 2))),
            "wealth": col(lambda r: float(np.prod(1.0 + r)) if r.size else np.nan)}


def total_return(returns: Any) -> Any:
    """Compounded return over the whole series: ``Π(1 + r) − 1``."""
    return _apply(returns, lambda r: float(np.prod(1.0 + _clean(r)) - 1.0) if _clean(r).size else np.nan)


def total_return_from_wealth(wealth: Any) -> Any:
    """Streaming form of :func:`total_return`: final wealth per unit of starting wealth, minus 1."""
    return _out(np.asarray(wealth, dtype=np.float64) - 1.0)


def annualized_return(returns: Any, *, periods_per_year: float) -> Any:
    """Geometric annual growth (CAGR): ``(Π(1 + r))^(periods_per_year / n) − 1``; −1 if wealth went to ≤ 0."""

    def f(r: np.ndarray) -> float:
        r = _clean(r)
        if not r.size:
            return np.nan
        wealth = float(np.prod(1.0 + r))
        return wealth ** (periods_per_year / r.size) - 1.0 if wealth > 0 else -1.0

    return _apply(returns, f)


def annualized_return_from_wealth(wealth: Any, n: Any, *, periods_per_year: float) -> Any:
    """Streaming form of :func:`annualized_return`: ``wealth^(periods_per_year / n) − 1`` (−1 if wealth ≤ 0)."""
    w, n = np.asarray(wealth, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(w > 0, np.power(np.maximum(w, 1e-300), periods_per_year / n) - 1.0, -1.0))


def annualized_volatility(returns: Any, *, periods_per_year: float, ddof: int = 1) -> Any:
    """Standard deviation of returns (``ddof=1``) × ``sqrt(periods_per_year)``."""

    def f(r: np.ndarray) -> float:
        r = _clean(r)
        return float(np.std(r, ddof=ddof) * np.sqrt(periods_per_year)) if r.size > ddof else np.nan

    return _apply(returns, f)


def _std_from_sums(sum_r: Any, sum_r2: Any, n: Any) -> np.ndarray:
    """Sample standard deviation (``ddof=1``) from ``n``, ``Σr`` and ``Σr²``."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.asarray(sum_r, dtype=np.float64) / n
        return np.sqrt(np.maximum(np.asarray(sum_r2, dtype=np.float64) - n * mean * mean, 0.0) / (n - 1))


def annualized_volatility_from_sums(sum_r: Any, sum_r2: Any, n: Any, *, periods_per_year: float) -> Any:
    """Streaming form of :func:`annualized_volatility` (``ddof=1``) from ``Σr``, ``Σr²`` and ``n``."""
    return _out(_std_from_sums(sum_r, sum_r2, n) * np.sqrt(periods_per_year))


def sharpe_ratio(returns: Any, *, periods_per_year: float, risk_free: float = 0.0) -> Any:
    """``mean(r − rf) / std(r − rf, ddof=1) × sqrt(periods_per_year)``; ``risk_free`` is per period. NaN if std is 0."""

    def f(r: np.ndarray) -> float:
        r = _clean(r) - risk_free
        if r.size < 2:
            return np.nan
        sd = float(np.std(r, ddof=1))
        return float(np.mean(r) / sd * np.sqrt(periods_per_year)) if sd > 0 else np.nan

    return _apply(returns, f)


def sharpe_from_sums(sum_r: Any, sum_r2: Any, n: Any, *, periods_per_year: float) -> Any:
    """Streaming form of :func:`sharpe_ratio` (``risk_free=0``) from ``Σr``, ``Σr²`` and ``n``; NaN if std is 0."""
    std = _std_from_sums(sum_r, sum_r2, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.asarray(sum_r, dtype=np.float64) / np.asarray(n, dtype=np.float64)
        return _out(np.where(std > 0, mean / std * np.sqrt(periods_per_year), np.nan))


def sortino_ratio(returns: Any, *, periods_per_year: float, required_return: float = 0.0) -> Any:
    """``mean(r − req) / sqrt(mean(min(r − req, 0)²)) × sqrt(periods_per_year)``; NaN without downside."""

    def f(r: np.ndarray) -> float:
        r = _clean(r) - required_return
        if not r.size:
            return np.nan
        down = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
        return float(np.mean(r) / down * np.sqrt(periods_per_year)) if down > 0 else np.nan

    return _apply(returns, f)


def sortino_from_sums(sum_r: Any, sum_down2: Any, n: Any, *, periods_per_year: float) -> Any:
    """Streaming form of :func:`sortino_ratio` (``required_return=0``) from ``Σr``, ``Σmin(r, 0)²`` and ``n``."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.asarray(sum_r, dtype=np.float64) / n
        down = np.sqrt(np.asarray(sum_down2, dtype=np.float64) / n)
        return _out(np.where(down > 0, mean / down * np.sqrt(periods_per_year), np.nan))


def _wealth(r: np.ndarray) -> np.ndarray:
    """Wealth after each period, starting from 1 before the first."""
    return np.cumprod(1.0 + _clean(r))


def max_drawdown(returns: Any) -> Any:
    """Largest fall from a running peak of wealth (the starting wealth counts as a peak), as a fraction ≤ 0."""

    def f(r: np.ndarray) -> float:
        w = _wealth(r)
        if not w.size:
            return np.nan
        peak = np.maximum.accumulate(np.concatenate([[1.0], w]))[1:]
        return float(min(0.0, np.min(w / peak - 1.0)))

    return _apply(returns, f)


def max_drawdown_duration(returns: Any) -> Any:
    """Longest run of periods with wealth strictly below its running peak (to recovery, or to the end)."""

    def f(r: np.ndarray) -> float:
        w = _wealth(r)
        if not w.size:
            return np.nan
        peak_before = np.maximum.accumulate(np.concatenate([[1.0], w]))[:-1]
        below = w < peak_before
        longest = run = 0
        for b in below:
            run = run + 1 if b else 0
            longest = max(longest, run)
        return float(longest)

    return _apply(returns, f)


def calmar_ratio(returns: Any, *, periods_per_year: float) -> Any:
    """Annualised return over the absolute maximum drawdown; NaN without a drawdown."""

    def f(r: np.ndarray) -> float:
        return float(calmar_from(annualized_return(r, periods_per_year=periods_per_year), max_drawdown(r)))

    return _apply(returns, f)


def calmar_from(cagr: Any, max_dd: Any) -> Any:
    """Streaming form of :func:`calmar_ratio`: ``cagr / |max_drawdown|``, NaN without a drawdown."""
    c, d = np.asarray(cagr, dtype=np.float64), np.asarray(max_dd, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(d < 0, c / np.abs(d), np.nan))


def time_in_market(position: Any) -> Any:
    """Share of periods with a non-zero position (NaN positions are ignored)."""
    return _apply(position, lambda p: float(np.mean(_clean(p) != 0)) if _clean(p).size else np.nan)


def realised_apr_on_capital(pnl: Any, capital: Any, *, periods: Any, periods_per_year: float) -> Any:
    """Total PnL over the capital, per year (simple, not compounded): ``pnl / capital / (periods / ppy)``.

    Scalars or arrays (one value per account); NaN where ``periods ≤ 0`` or ``capital ≤ 0``.
    """
    p, c, n = (np.asarray(v, dtype=np.float64) for v in (pnl, capital, periods))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where((n > 0) & (c > 0), p / c / (n / periods_per_year), np.nan))


def funding_kept_share(net_pnl: Any, gross_funding: Any) -> Any:
    """Share of the gross funding collected that is kept after costs and basis: ``net_pnl / gross_funding``.

    NaN when no funding was collected (``gross_funding ≤ 0``). Scalars or arrays.
    """
    p, f = np.asarray(net_pnl, dtype=np.float64), np.asarray(gross_funding, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(f > 0, p / f, np.nan))


def break_even_days(entry_cost: Any, daily_funding_income: Any) -> Any:
    """Days of funding income needed to pay for an entry (and exit) cost; inf when the income is ≤ 0.

    Scalars or arrays."""
    c, d = np.asarray(entry_cost, dtype=np.float64), np.asarray(daily_funding_income, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _out(np.where(d > 0, c / d, np.inf))


def annualised_funding_on_notional(rates_sum: Any, days: float) -> Any:
    """A trailing sum of funding rates over ``days``, annualised on notional: ``sum · 365 / days`` (DESIGN §7)."""
    return rates_sum * (365.0 / days)


def binance_apr_on_capital(rates_3d_sum: Any) -> Any:
    """Binance's bot quote: ``|F_3d| / 3 · 365 / 2`` — APR on capital when half the capital is spot (DESIGN §7)."""
    return np.abs(rates_3d_sum) / 3.0 * 365.0 / 2.0


def summary(equity: Any, *, periods_per_year: float, capital: float | None = None,
            position: Any = None) -> dict[str, float]:
    """The scalar statistics of one equity curve (1-D), first return against ``capital`` when given."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.ndim != 1:
        raise ValueError("summary takes one equity curve (1-D)")
    r = returns_from_equity(eq, capital)
    out = {
        "total_return": total_return(r),
        "cagr": annualized_return(r, periods_per_year=periods_per_year),
        "volatility": annualized_volatility(r, periods_per_year=periods_per_year),
        "sharpe": sharpe_ratio(r, periods_per_year=periods_per_year),
        "sortino": sortino_ratio(r, periods_per_year=periods_per_year),
        "max_drawdown": max_drawdown(r),
        "max_drawdown_periods": max_drawdown_duration(r),
        "calmar": calmar_ratio(r, periods_per_year=periods_per_year),
    }
    if position is not None:
        out["time_in_market"] = time_in_market(position)
    return out
