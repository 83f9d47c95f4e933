"""Pure metric functions (DESIGN.md §8), empyrical-style, with an explicit ``periods_per_year``.

Inputs are simple per-period returns (or, where named, an equity curve or a position) as a 1-D ndarray, a
Series, a 2-D ndarray (time on axis 0, one column each) or a DataFrame. The output follows the input's kind:

- 1-D ndarray or Series → a Python ``float``;
- 2-D ndarray → a 1-D ndarray, one value per column;
- DataFrame → a Series indexed by its columns.

NaN returns are ignored (dropped) by every statistic; a column of only NaN gives NaN. Annualisation never
assumes 252: pass ``periods_per_year`` (8,760 for 1h bars, 1,095 for 8h bars; ``MarketData.periods_per_year``).
A zero volatility (or zero downside deviation) gives a NaN Sharpe (Sortino), not an infinity.

``fundarb.Result.stats()`` computes the same numbers from the kernel's streaming sums; the tests check both
against each other, against plain-Python re-derivations and against vectorbt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "annualised_funding_on_notional",
    "annualized_return",
    "annualized_volatility",
    "binance_apr_on_capital",
    "break_even_days",
    "calmar_ratio",
    "funding_kept_share",
    "max_drawdown",
    "max_drawdown_duration",
    "realised_apr_on_capital",
    "returns_from_equity",
    "sharpe_ratio",
    "sortino_ratio",
    "summary",
    "time_in_market",
    "total_return",
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


def total_return(returns: Any) -> Any:
    """Compounded return over the whole series: ``Π(1 + r) − 1``."""
    return _apply(returns, lambda r: float(np.prod(1.0 + _clean(r)) - 1.0) if _clean(r).size else np.nan)


def annualized_return(returns: Any, *, periods_per_year: float) -> Any:
    """Geometric annual growth (CAGR): ``(Π(1 + r))^(periods_per_year / n) − 1``; −1 if wealth went to ≤ 0."""

    def f(r: np.ndarray) -> float:
        r = _clean(r)
        if not r.size:
            return np.nan
        wealth = float(np.prod(1.0 + r))
        return wealth ** (periods_per_year / r.size) - 1.0 if wealth > 0 else -1.0

    return _apply(returns, f)


def annualized_volatility(returns: Any, *, periods_per_year: float, ddof: int = 1) -> Any:
    """Standard deviation of returns (``ddof=1``) × ``sqrt(periods_per_year)``."""

    def f(r: np.ndarray) -> float:
        r = _clean(r)
        return float(np.std(r, ddof=ddof) * np.sqrt(periods_per_year)) if r.size > ddof else np.nan

    return _apply(returns, f)


def sharpe_ratio(returns: Any, *, periods_per_year: float, risk_free: float = 0.0) -> Any:
    """``mean(r − rf) / std(r − rf, ddof=1) × sqrt(periods_per_year)``; ``risk_free`` is per period. NaN if std is 0."""

    def f(r: np.ndarray) -> float:
        r = _clean(r) - risk_free
        if r.size < 2:
            return np.nan
        sd = float(np.std(r, ddof=1))
        return float(np.mean(r) / sd * np.sqrt(periods_per_year)) if sd > 0 else np.nan

    return _apply(returns, f)


def sortino_ratio(returns: Any, *, periods_per_year: float, required_return: float = 0.0) -> Any:
    """``mean(r − req) / sqrt(mean(min(r − req, 0)²)) × sqrt(periods_per_year)``; NaN without downside."""

    def f(r: np.ndarray) -> float:
        r = _clean(r) - required_return
        if not r.size:
            return np.nan
        down = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
        return float(np.mean(r) / down * np.sqrt(periods_per_year)) if down > 0 else np.nan

    return _apply(returns, f)


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
        mdd = max_drawdown(r)
        return float(annualized_return(r, periods_per_year=periods_per_year) / abs(mdd)) if mdd < 0 else np.nan

    return _apply(returns, f)


def time_in_market(position: Any) -> Any:
    """Share of periods with a non-zero position (NaN positions are ignored)."""
    return _apply(position, lambda p: float(np.mean(_clean(p) != 0)) if _clean(p).size else np.nan)


def realised_apr_on_capital(pnl: float, capital: float, *, periods: int, periods_per_year: float) -> float:
    """Total PnL over the capital, per year (simple, not compounded): ``pnl / capital / (periods / ppy)``."""
    if periods <= 0 or capital <= 0:
        return float("nan")
    return float(pnl / capital / (periods / periods_per_year))


def funding_kept_share(net_pnl: float, gross_funding: float) -> float:
    """Share of the gross funding collected that is kept after costs and basis: ``net_pnl / gross_funding``.

    NaN when no funding was collected (``gross_funding ≤ 0``).
    """
    return float(net_pnl / gross_funding) if gross_funding > 0 else float("nan")


def break_even_days(entry_cost: float, daily_funding_income: float) -> float:
    """Days of funding income needed to pay for an entry (and exit) cost; inf when the income is ≤ 0."""
    return float(entry_cost / daily_funding_income) if daily_funding_income > 0 else float("inf")


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
