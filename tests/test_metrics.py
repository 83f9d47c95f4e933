"""Metric functions: ndarray / Series / 2-D / DataFrame inputs, plain-Python re-derivations, vectorbt, Result."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.results import metrics as M
from toy import random_market, random_targets

PPY = 8760.0


def _series(seed: int, n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0002, 0.004, n)
    r[rng.random(n) < 0.02] = np.nan
    return r


# -------- slow, obvious re-derivations (plain Python over lists) --------
def ref_clean(r):
    return [x for x in r if not math.isnan(x)]


def ref_total(r):
    w = 1.0
    for x in ref_clean(r):
        w *= 1 + x
    return w - 1


def ref_cagr(r):
    c = ref_clean(r)
    return (1 + ref_total(r)) ** (PPY / len(c)) - 1


def ref_std(c):
    m = sum(c) / len(c)
    return math.sqrt(sum((x - m) ** 2 for x in c) / (len(c) - 1))


def ref_vol(r):
    return ref_std(ref_clean(r)) * math.sqrt(PPY)


def ref_sharpe(r):
    c = ref_clean(r)
    return sum(c) / len(c) / ref_std(c) * math.sqrt(PPY)


def ref_sortino(r):
    c = ref_clean(r)
    down = math.sqrt(sum(min(x, 0) ** 2 for x in c) / len(c))
    return sum(c) / len(c) / down * math.sqrt(PPY)


def ref_mdd(r):
    w, peak, worst = 1.0, 1.0, 0.0
    for x in ref_clean(r):
        w *= 1 + x
        peak = max(peak, w)
        worst = min(worst, w / peak - 1)
    return worst


def ref_mdd_duration(r):
    w, peak, run, longest = 1.0, 1.0, 0, 0
    for x in ref_clean(r):
        w *= 1 + x
        if w < peak:
            run += 1
        else:
            run = 0
            peak = w
        longest = max(longest, run)
    return longest


CASES = [
    ("total_return", lambda r: M.total_return(r), ref_total),
    ("annualized_return", lambda r: M.annualized_return(r, periods_per_year=PPY), ref_cagr),
    ("annualized_volatility", lambda r: M.annualized_volatility(r, periods_per_year=PPY), ref_vol),
    ("sharpe_ratio", lambda r: M.sharpe_ratio(r, periods_per_year=PPY), ref_sharpe),
    ("sortino_ratio", lambda r: M.sortino_ratio(r, periods_per_year=PPY), ref_sortino),
    ("max_drawdown", lambda r: M.max_drawdown(r), ref_mdd),
    ("max_drawdown_duration", lambda r: M.max_drawdown_duration(r), ref_mdd_duration),
    ("calmar_ratio", lambda r: M.calmar_ratio(r, periods_per_year=PPY), lambda r: ref_cagr(r) / abs(ref_mdd(r))),
]


@pytest.mark.parametrize(("name", "fn", "ref"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["ndarray", "series", "ndarray2d", "dataframe"])
def test_every_input_kind_against_plain_python(name, fn, ref, kind):
    cols = [_series(1), _series(2), _series(3)]
    want = [ref(list(c)) for c in cols]
    idx = pd.date_range("2024-01-01", periods=len(cols[0]), freq="h", tz="UTC")
    if kind == "ndarray":
        got = fn(cols[0])
        assert isinstance(got, float) and got == pytest.approx(want[0], rel=1e-10)
    elif kind == "series":
        got = fn(pd.Series(cols[0], index=idx))
        assert isinstance(got, float) and got == pytest.approx(want[0], rel=1e-10)
    elif kind == "ndarray2d":
        got = fn(np.column_stack(cols))
        assert isinstance(got, np.ndarray) and got.shape == (3,)
        np.testing.assert_allclose(got, want, rtol=1e-10)
    else:
        df = pd.DataFrame(np.column_stack(cols), index=idx, columns=["a", "b", "c"])
        got = fn(df)
        assert isinstance(got, pd.Series) and list(got.index) == ["a", "b", "c"]
        np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-10)


def test_edge_cases():
    assert math.isnan(M.sharpe_ratio(np.zeros(10), periods_per_year=PPY))
    assert math.isnan(M.sortino_ratio(np.full(10, 0.001), periods_per_year=PPY))
    assert M.max_drawdown(np.full(10, 0.001)) == 0.0
    assert math.isnan(M.calmar_ratio(np.full(10, 0.001), periods_per_year=PPY))
    assert M.annualized_return(np.array([-1.0, 0.1]), periods_per_year=PPY) == -1.0
    assert M.time_in_market(np.array([0, 1, -1, 0])) == 0.5
    assert M.funding_kept_share(50.0, 100.0) == 0.5 and math.isnan(M.funding_kept_share(5.0, 0.0))
    assert M.break_even_days(10.0, 2.0) == 5.0 and M.break_even_days(10.0, 0.0) == math.inf
    assert M.annualised_funding_on_notional(0.003, 3) == pytest.approx(0.365)
    assert M.binance_apr_on_capital(-0.003) == pytest.approx(0.1825)
    assert M.realised_apr_on_capital(100.0, 1000.0, periods=4380, periods_per_year=PPY) == pytest.approx(0.2)


@pytest.fixture(scope="module")
def vbt():
    return pytest.importorskip("vectorbt")


def test_against_vectorbt_returns_statistics(vbt):
    idx = pd.date_range("2024-01-01", periods=2000, freq="h")
    r = pd.Series(np.random.default_rng(9).normal(0.0001, 0.003, 2000), index=idx)
    acc = r.vbt.returns(freq="1h", year_freq="365 days")
    assert M.total_return(r) == pytest.approx(acc.total(), rel=1e-10)
    assert M.annualized_return(r, periods_per_year=PPY) == pytest.approx(acc.annualized(), rel=1e-10)
    assert M.annualized_volatility(r, periods_per_year=PPY) == pytest.approx(acc.annualized_volatility(), rel=1e-10)
    assert M.sharpe_ratio(r, periods_per_year=PPY) == pytest.approx(acc.sharpe_ratio(), rel=1e-10)
    assert M.sortino_ratio(r, periods_per_year=PPY) == pytest.approx(acc.sortino_ratio(), rel=1e-10)
    assert M.max_drawdown(r) == pytest.approx(acc.max_drawdown(), rel=1e-10)
    assert M.calmar_ratio(r, periods_per_year=PPY) == pytest.approx(acc.calmar_ratio(), rel=1e-10)


def test_result_stats_equal_the_metric_functions():
    rng = np.random.default_rng(12)
    m = random_market(rng, 400, symbols=2, vol=0.02, wick=0.03)
    pos = pd.DataFrame(random_targets(rng, 400, 2), index=m.index, columns=list(m.symbols))
    r = fa.backtest(m, pos, leverage=3.0)
    st = r.stats()
    for j, col in enumerate(r.columns):
        eq = r.equity.iloc[:, j].to_numpy()
        first = m.index.get_loc(st.loc[col, "start"])
        s = M.summary(eq[first:], periods_per_year=m.periods_per_year, capital=10_000.0)
        for key in ("total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar"):
            assert st.loc[col, key] == pytest.approx(s[key], rel=1e-9), key
        assert st.loc[col, "max_drawdown_days"] * 24 == s["max_drawdown_periods"]


# -------- streaming forms (what Result.stats calls) equal the full-series forms --------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_streaming_forms_equal_full_series_forms(seed):
    r = _series(seed)
    r2 = np.column_stack([r, _series(seed + 10), np.abs(_series(seed + 20))])  # the 3rd has no downside
    for x in (r, r2):
        s = M.streaming_sums(x)
        kw = {"periods_per_year": PPY}
        np.testing.assert_allclose(M.total_return_from_wealth(s["wealth"]), M.total_return(x), rtol=1e-12)
        cagr = M.annualized_return_from_wealth(s["wealth"], s["n"], **kw)
        np.testing.assert_allclose(cagr, M.annualized_return(x, **kw), rtol=1e-12)
        np.testing.assert_allclose(M.annualized_volatility_from_sums(s["sum_r"], s["sum_r2"], s["n"], **kw),
                                   M.annualized_volatility(x, **kw), rtol=1e-9)
        np.testing.assert_allclose(M.sharpe_from_sums(s["sum_r"], s["sum_r2"], s["n"], **kw),
                                   M.sharpe_ratio(x, **kw), rtol=1e-9)
        np.testing.assert_allclose(M.sortino_from_sums(s["sum_r"], s["sum_down2"], s["n"], **kw),
                                   M.sortino_ratio(x, **kw), rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(M.calmar_from(cagr, M.max_drawdown(x)), M.calmar_ratio(x, **kw), rtol=1e-12,
                                   equal_nan=True)
    assert isinstance(M.sharpe_from_sums(1.0, 2.0, 10, periods_per_year=PPY), float)
    assert math.isnan(M.sortino_from_sums(np.array([0.5]), np.array([0.0]), np.array([10]), periods_per_year=PPY)[0])


def test_streaming_edge_cases_match_full_forms():
    kw = {"periods_per_year": PPY}
    # (a constant non-zero series is left out: np.std leaves ~1e-19 there, a Sharpe of 4e17 vs the sums' NaN)
    for x in (np.zeros(10), np.array([-1.0, 0.1]), np.array([0.01, -0.02, 0.005])):
        s = M.streaming_sums(x)
        for full, stream in (
            (M.sharpe_ratio(x, **kw), M.sharpe_from_sums(s["sum_r"], s["sum_r2"], s["n"], **kw)),
            (M.sortino_ratio(x, **kw), M.sortino_from_sums(s["sum_r"], s["sum_down2"], s["n"], **kw)),
            (M.annualized_return(x, **kw), M.annualized_return_from_wealth(s["wealth"], s["n"], **kw)),
        ):
            assert (math.isnan(full) and math.isnan(stream)) or stream == pytest.approx(full, rel=1e-12, abs=1e-15)
    arr = M.funding_kept_share(np.array([50.0, 5.0]), np.array([100.0, 0.0]))
    assert arr[0] == 0.5 and math.isnan(arr[1])
    assert M.break_even_days(np.array([10.0, 10.0]), np.array([2.0, 0.0])).tolist() == [5.0, math.inf]
    assert math.isnan(M.realised_apr_on_capital(1.0, 1000.0, periods=0, periods_per_year=PPY))


def test_result_stats_are_the_streaming_forms_on_the_kernel_sums():
    from fundarb.engine import nb as k

    rng = np.random.default_rng(5)
    m = random_market(rng, 300, symbols=2, vol=0.02, wick=0.03)
    pos = pd.DataFrame(random_targets(rng, 300, 2), index=m.index, columns=list(m.symbols))
    r = fa.backtest(m, pos, leverage=2.0)
    st, t, ppy = r.stats(), r.gtotals, m.periods_per_year
    np.testing.assert_array_equal(st["sharpe"].to_numpy(),
                                  M.sharpe_from_sums(t[k.T_SUM_R], t[k.T_SUM_R2], t[k.T_N_R], periods_per_year=ppy))
    np.testing.assert_array_equal(st["sortino"].to_numpy(), M.sortino_from_sums(
        t[k.T_SUM_R], t[k.T_SUM_DOWN2], t[k.T_N_R], periods_per_year=ppy))
    sweep = fa.backtest(m, pos, leverage=2.0, mode="sweep").stats()
    for key in ("total_return", "cagr", "volatility", "sharpe", "sortino", "calmar", "realised_apr_on_capital"):
        np.testing.assert_allclose(sweep[key].to_numpy(), st[key].to_numpy(), rtol=1e-12, err_msg=key)
