"""Portfolios (one capital over several symbols) and cross margin (DESIGN §5)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData
from toy import ohlc, random_market, random_targets


def _two(a: pd.DataFrame, b: pd.DataFrame) -> MarketData:
    ev = pd.Series(0.0, index=a.index[[0, -1]])
    return MarketData.from_frames([SymbolFrames("A", a, a, ev, mark=a), SymbolFrames("B", b, b, ev, mark=b)])


def test_single_symbol_cross_equals_isolated():
    rng = np.random.default_rng(2)
    m = random_market(rng, 300, symbols=1, vol=0.03, wick=0.05)
    pos = pd.DataFrame(random_targets(rng, 300, 1), index=m.index, columns=list(m.symbols))
    kw = dict(leverage=8.0, costs=fa.Costs(), rebalance_at=0.5)
    iso = fa.backtest(m, pos, **kw)
    cross = fa.backtest(m, pos, margin_mode="cross", **kw)
    assert iso.stats()["n_liquidations"].iloc[0] > 0
    np.testing.assert_allclose(cross.equity.to_numpy(), iso.equity.to_numpy(), rtol=1e-12)
    assert cross.portfolio and not iso.portfolio


def test_portfolio_sizes_each_symbol_by_weight():
    a = ohlc([100.0] * 6)
    b = ohlc([50.0] * 6)
    m = _two(a, b)
    r = fa.backtest(m, 1, weights=pd.Series({"A": 0.25, "B": 0.75}), capital=1000.0, leverage=1.0,
                    costs=fa.Costs.zero())
    assert list(r.groups) == ["portfolio"] and list(r.members) == ["A", "B"]
    # carry: N = w·E·L/(L+1) → A: 0.25·1000/2 = 125 → 1.25 units; B: 375 → 7.5 units
    assert r.spot_qty.iloc[0].tolist() == pytest.approx([1.25, 7.5])
    assert r.margin_balance.iloc[0, 0] == pytest.approx(500.0)
    assert r.equity.iloc[-1, 0] == pytest.approx(1000.0)


def test_cross_margin_lets_a_winning_perp_carry_a_losing_one():
    n = 6
    up = ohlc([100, 100, 120, 135, 140, 140], close=[100, 120, 135, 140, 140, 140])
    down = ohlc([100, 100, 80, 65, 60, 60], close=[100, 80, 65, 60, 60, 60])
    m = _two(up, down)
    kw = dict(weights="equal", capital=1000.0, leverage=3.0, costs=fa.Costs.zero())
    iso = fa.backtest(m, 1, **kw)
    cross = fa.backtest(m, 1, margin_mode="cross", **kw)
    # isolated: A's short perp has margin N/3 = 125 on 375 notional → gone near +33%
    assert iso.symbol_totals().loc["A", "n_liquidations"] == 1
    assert cross.stats()["n_liquidations"].iloc[0] == 0
    assert cross.equity.iloc[-1, 0] == pytest.approx(1000.0)
    assert iso.identity_error() < 1e-12 and cross.identity_error() < 1e-12
    assert n == len(m)


def test_cross_liquidation_hand_computed():
    # both perps rise together; one futures wallet of 2·125 backs 2·375 short notional
    o = [100, 100, 100, 100]
    h = [100, 100, 150, 100]
    a = ohlc(o, h, None, [100, 100, 100, 100])
    m = _two(a, a.copy())
    r = fa.backtest(m, 1, margin_mode="cross", capital=1000.0, leverage=3.0, mmr=0.005,
                    costs=fa.Costs.zero(liquidation_fee=0.0))
    # MB + Σ b(m − e) = Σ|b|·m·mmr with b = −3.75 each, MB = 250, e = 100:
    # 250 − 7.5(m − 100) = 7.5·m·0.005 → m = 1000 / 7.5375
    p = 1000 / 7.5375
    liq = r.liquidations
    assert len(liq) == 2
    assert liq["perp_price"].tolist() == pytest.approx([p, p], rel=1e-12)
    assert r.identity_error() < 1e-12


def test_portfolio_sweep_matches_detail_and_identity():
    rng = np.random.default_rng(9)
    m = random_market(rng, 250, symbols=3, vol=0.02, wick=0.03)
    pos = pd.DataFrame(random_targets(rng, 250, 3), index=m.index, columns=list(m.symbols))
    w = pd.DataFrame(rng.dirichlet(np.ones(3), 250) * 0.9, index=m.index, columns=list(m.symbols))
    w.iloc[:] = w.iloc[::24].reindex(w.index, method="ffill").to_numpy()
    for mode in ("isolated", "cross"):
        kw = dict(weights=w, margin_mode=mode, leverage=[2.0, 10.0], costs=fa.Costs(borrow_rate=1e-5),
                  rebalance_at=0.7)
        d = fa.backtest(m, pos, **kw)
        s = fa.backtest(m, pos, mode="sweep", **kw)
        assert d.identity_error() < 1e-9
        pd.testing.assert_frame_equal(d.stats(), s.stats())
        pd.testing.assert_frame_equal(d.symbol_totals(), s.symbol_totals())
        assert list(d.groups) == [2.0, 10.0]
        assert (d.trades["kind"] == "resize").any()


def test_streaming_statistics_match_numpy_recomputation_and_combined_book():
    from fundarb.engine import layout
    from fundarb.results.result import streaming_totals

    rng = np.random.default_rng(4)
    m = random_market(rng, 300, symbols=2, vol=0.02, wick=0.03)
    pos = pd.DataFrame(random_targets(rng, 300, 2), index=m.index, columns=list(m.symbols))
    r = fa.backtest(m, pos, leverage=[2.0, 5.0])
    for g in range(len(r.groups)):
        held = ((r.series[layout.SPOT_QTY][:, g] != 0) | (r.series[layout.PERP_QTY][:, g] != 0))
        got = streaming_totals(r.gseries[layout.G_EQUITY][:, g], r.params["capital"][g],
                               int(r.gtotals[layout.T_FIRST_BAR, g]), held)
        np.testing.assert_allclose(got[:layout.N_STREAM], r.gtotals[:layout.N_STREAM, g], rtol=1e-10, atol=1e-12)
    book = r.combined()
    assert book.capital.iloc[0] == pytest.approx(4 * 10_000.0)
    assert book.stats()["final_equity"].iloc[0] == pytest.approx(r.stats()["final_equity"].sum())
    assert book.stats()["n_trades"].iloc[0] == r.stats()["n_trades"].sum()
    assert book.identity_error() < 1e-9


@pytest.mark.parametrize("threads", [1, 3])
def test_results_do_not_depend_on_the_number_of_threads(monkeypatch, threads):
    """Ranges of accounts run on threads: any split gives the same series, totals and trade log, in order."""
    from fundarb.engine import run

    rng = np.random.default_rng(4)
    m = random_market(rng, 300, symbols=3, vol=0.03, wick=0.04)
    pos = pd.DataFrame(random_targets(rng, 300, 3), index=m.index, columns=list(m.symbols))
    kw = dict(leverage=[1.0, 3.0, 8.0, 20.0], costs=fa.Costs(borrow_rate=1e-5), rebalance_at=0.5)
    monkeypatch.setattr(run, "kernel_threads", lambda: 2)
    ref = fa.backtest(m, pos, **kw)
    ref_sweep = fa.backtest(m, pos, mode="sweep", **kw)
    monkeypatch.setattr(run, "kernel_threads", lambda: threads)
    got = fa.backtest(m, pos, **kw)
    assert len(run.group_ranges(12, threads)) == (1 if threads == 1 else 12)
    assert ref.trades["kind"].str.startswith("liquidation").any()  # the split crosses accounts with events
    pd.testing.assert_frame_equal(got.trades, ref.trades)
    pd.testing.assert_frame_equal(got.equity, ref.equity)
    pd.testing.assert_frame_equal(got.stats(), ref.stats())
    pd.testing.assert_frame_equal(fa.backtest(m, pos, mode="sweep", **kw).stats(), ref_sweep.stats())


def test_group_ranges_cover_every_account_once():
    from fundarb.engine.run import group_ranges

    for n in (0, 1, 5, 8, 9, 1000):
        for threads in (1, 2, 7):
            r = group_ranges(n, threads)
            assert [g for a, b in r for g in range(a, b)] == list(range(n))
            assert len(r) <= max(1, 4 * threads)
