"""`Result.to_vectorbt()`: vectorbt's returns accessor on fundarb's equity gives the same statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from toy import random_market, random_targets

pytest.importorskip("vectorbt")


@pytest.fixture(scope="module")
def result():
    rng = np.random.default_rng(21)
    m = random_market(rng, 600, symbols=2, vol=0.02, wick=0.03)
    pos = pd.DataFrame(random_targets(rng, 600, 2), index=m.index, columns=list(m.symbols))
    return fa.backtest(m, pos, leverage=2.0)


def test_per_account_statistics_equal_stats(result):
    acc = result.to_vectorbt(book=False)
    st = result.stats()
    assert list(acc.obj.columns) == list(result.groups)
    np.testing.assert_allclose(acc.total().to_numpy(), st["total_return"].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(acc.sharpe_ratio().to_numpy(), st["sharpe"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(acc.sortino_ratio().to_numpy(), st["sortino"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(acc.annualized_volatility().to_numpy(), st["volatility"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(acc.max_drawdown().to_numpy(), st["max_drawdown"].to_numpy(), rtol=1e-9)


def test_book_is_the_combined_account(result):
    acc = result.to_vectorbt()
    book = result.combined().stats().iloc[0]
    assert acc.obj.shape[1] == 1
    assert acc.total().iloc[0] == pytest.approx(book["total_return"], rel=1e-10)
    assert acc.sharpe_ratio().iloc[0] == pytest.approx(book["sharpe"], rel=1e-9)
    # vectorbt's own report runs on it
    stats = acc.stats(column=acc.obj.columns[0])
    assert "Sharpe Ratio" in stats.index and np.isfinite(stats["Beta"])


def test_sweep_mode_has_no_series():
    m = random_market(np.random.default_rng(3), 100, symbols=1)
    with pytest.raises(fa.ConfigError):
        fa.backtest(m, 1, mode="sweep").to_vectorbt()
