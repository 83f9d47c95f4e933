"""Hand a backtest to vectorbt: its returns accessor (statistics, drawdowns, plots) on fundarb's equity.

vectorbt is imported only when this is used, so the CLI and plain backtests never pay for it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["returns_accessor"]


def returns_accessor(equity: pd.DataFrame, capital: pd.Series, start: pd.Series, *, freq: pd.Timedelta,
                     benchmark: pd.DataFrame | None = None) -> Any:
    """vectorbt's ``ReturnsAccessor`` over the per-bar returns of each account.

    Parameters
    ----------
    equity
        Equity per bar, one column per account.
    capital
        Starting capital per account (the first return of each account is measured against it).
    start
        First tradable bar of each account; returns before it are NaN, as in ``Result.stats()``.
    benchmark
        Benchmark returns per account (same shape as ``equity``), e.g. holding the accounts' spot; vectorbt's
        ``stats()`` uses them for benchmark return, alpha and beta.
    freq
        The bar size. Years are 365 days (crypto trades every day), so annualised figures match ``stats()``.

    Returns
    -------
    vectorbt.returns.accessors.ReturnsAccessor
        ``.sharpe_ratio()``, ``.max_drawdown()``, ``.stats()``, ``.drawdowns.plot()`` …
    """
    import vectorbt as vbt  # noqa: F401  (registers the .vbt accessor)

    rets = pd.DataFrame(index=equity.index, columns=equity.columns, dtype="float64")
    for col in equity.columns:
        first = start[col]
        if pd.isna(first):
            continue
        eq = equity.loc[first:, col]
        prev = eq.shift(1)
        prev.iloc[0] = capital[col]
        rets.loc[first:, col] = eq / prev - 1.0
    return rets.vbt.returns(freq=freq, year_freq="365 days", benchmark_rets=benchmark)
