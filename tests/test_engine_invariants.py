"""Invariants of the engine on random markets: identity, flat equity, sign symmetry, no look-ahead, vectorbt."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fundarb as fa
from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData
from toy import ohlc, random_market, random_targets, toy_market

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _positions(m: MarketData, arr: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(arr, index=m.index, columns=list(m.symbols))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), lev=st.sampled_from([1.0, 2.0, 5.0, 10.0, 20.0]),
       hold=st.booleans(), reb=st.sampled_from([None, 0.3, 0.6, 0.9]), every=st.sampled_from([None, 24, "2d"]),
       slip_k=st.sampled_from([0.0, 0.05]), spot_reb=st.sampled_from([None, 1.3]),
       loss=st.sampled_from(["fee", "margin"]))
def test_accounting_identity_every_bar(seed, lev, hold, reb, every, slip_k, spot_reb, loss):
    rng = np.random.default_rng(seed)
    m = random_market(rng, 240, symbols=2, vol=0.02, wick=0.03)
    pos = _positions(m, random_targets(rng, len(m), 2))
    costs = fa.Costs(spot_fee=0.001, perp_fee=0.0005, half_spread_bps=2.0, slippage_bps=1.0, slippage_k=slip_k,
                     borrow_rate=1e-5, liquidation_fee=0.005)
    r = fa.backtest(m, pos, costs=costs, leverage=lev, spot_leverage=2.0, rebalance_at=reb, rebalance_every=every,
                    after_liquidation="hold" if hold else "reenter", spot_rebalance_level=spot_reb,
                    liquidation_loss=loss)
    assert r.identity_error() < 1e-9
    comps = r.components
    for name in ("fees", "spread", "slippage", "borrow", "liquidation_fees", "insurance_fund_loss"):
        assert (np.diff(comps[name].to_numpy(), axis=0) >= -1e-12).all(), f"{name} must only grow"


def _flat_market(px: pd.DataFrame, funding: dict[int, float] | None = None) -> MarketData:
    return toy_market(px, funding=funding)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_zero_funding_zero_costs_identical_prices_flat_equity(seed):
    rng = np.random.default_rng(seed)
    n = 200
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    px = ohlc(close * np.exp(rng.normal(0, 0.001, n)), close=close)
    m = _flat_market(px)  # perp ≡ mark ≡ spot, funding 0
    pos = pd.Series(random_targets(rng, n, 1)[:, 0], index=m.index)
    r = fa.backtest(m, pos, costs=fa.Costs.zero(), leverage=1.0, spot_leverage=1.0)
    eq = r.equity.iloc[:, 0].to_numpy()
    assert np.allclose(eq, 10_000.0, rtol=1e-12, atol=0)


def test_swapping_legs_or_negating_funding_flips_funding_sign():
    rng = np.random.default_rng(11)
    n = 300
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.005, n)))
    px = ohlc(close, close=close)
    rates = {i: float(rng.normal(1e-4, 3e-4)) for i in range(0, n, 8)}
    m = _flat_market(px, rates)
    m_neg = _flat_market(px, {i: -r for i, r in rates.items()})
    kw = dict(costs=fa.Costs.zero(), leverage=3.0, spot_leverage=1.0)  # equal q on both sides (DESIGN §3)
    carry = fa.backtest(m, 1, **kw).components["funding"].iloc[:, 0]
    reverse = fa.backtest(m, -1, **kw).components["funding"].iloc[:, 0]
    carry_neg = fa.backtest(m_neg, 1, **kw).components["funding"].iloc[:, 0]
    both = fa.backtest(m_neg, -1, **kw).components["funding"].iloc[:, 0]
    assert abs(carry.iloc[-1]) > 1.0
    np.testing.assert_allclose(reverse, -carry, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(carry_neg, -carry, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(both, carry, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(5, 190))
def test_perturbing_data_after_t_changes_nothing_before_t(seed, cut):
    rng = np.random.default_rng(seed)
    m = random_market(rng, 200, symbols=1, vol=0.02, wick=0.02)
    pos = _positions(m, random_targets(rng, len(m), 1))
    arrays = {k: v.copy() for k, v in m.arrays.items()}
    for k in arrays:
        if k.endswith(("open", "high", "low", "close", "volume")) or k == "funding_rate":
            arrays[k][cut:] *= rng.uniform(0.5, 1.5, arrays[k][cut:].shape)
    m2 = MarketData(index=m.index, symbols=m.symbols, arrays=arrays, timeframe=m.timeframe, events=m.events)
    kw = dict(costs=fa.Costs(slippage_k=0.1), leverage=5.0, rebalance_at=0.5)
    a = fa.backtest(m, pos, **kw)
    b = fa.backtest(m2, pos, **kw)
    for name in ("equity", "spot_qty", "perp_qty"):
        np.testing.assert_array_equal(getattr(a, name).iloc[:cut], getattr(b, name).iloc[:cut])
    # the volume of bar t itself is not seen by the order executed at its open
    arrays3 = {k: v.copy() for k, v in m.arrays.items()}
    arrays3["spot_volume"][cut] *= 10
    arrays3["perp_volume"][cut] *= 10
    m3 = MarketData(index=m.index, symbols=m.symbols, arrays=arrays3, timeframe=m.timeframe, events=m.events)
    c = fa.backtest(m3, pos, **kw)
    np.testing.assert_array_equal(a.equity.iloc[: cut + 1], c.equity.iloc[: cut + 1])


def test_same_orders_in_vectorbt_give_same_price_pnl_and_fees():
    vbt = pytest.importorskip("vectorbt")
    rng = np.random.default_rng(5)
    m = random_market(rng, 400, symbols=1, vol=0.004, wick=0.002, interval_change=False, funding_scale=0.0)
    pos = _positions(m, random_targets(rng, len(m), 1, p_change=0.03))
    costs = fa.Costs.zero(spot_fee=0.001, perp_fee=0.0005)
    r = fa.backtest(m, pos, costs=costs, leverage=1.0, spot_leverage=3.0)
    assert r.stats()["n_liquidations"].iloc[0] == 0
    assert r.stats()["n_trades"].iloc[0] > 5
    a = r.spot_qty.iloc[:, 0].to_numpy()
    b = r.perp_qty.iloc[:, 0].to_numpy()
    da = np.diff(np.concatenate([[0.0], a]))
    db = np.diff(np.concatenate([[0.0], b]))
    init = 1e9
    idx = m.index
    spot = vbt.Portfolio.from_orders(
        close=pd.Series(m.arrays["spot_close"][:, 0], index=idx), size=pd.Series(da, index=idx),
        price=pd.Series(m.arrays["spot_open"][:, 0], index=idx), fees=0.001, size_type="amount",
        direction="both", init_cash=init, freq="1h")
    perp = vbt.Portfolio.from_orders(
        close=pd.Series(m.arrays["mark_close"][:, 0], index=idx), size=pd.Series(db, index=idx),
        price=pd.Series(m.arrays["perp_open"][:, 0], index=idx), fees=0.0005, size_type="amount",
        direction="both", init_cash=init, freq="1h")
    vbt_pnl = (spot.value() - init) + (perp.value() - init)
    ours = (r.components["spot_pnl"] + r.components["perp_pnl"] - r.components["fees"]).iloc[:, 0]
    np.testing.assert_allclose(ours.to_numpy(), vbt_pnl.to_numpy(), rtol=1e-9, atol=1e-6)
    vbt_fees = spot.orders.fees.sum() + perp.orders.fees.sum()
    assert r.totals_frame()["fees"].iloc[0] == pytest.approx(vbt_fees, rel=1e-9)
    assert r.totals_frame()["funding"].iloc[0] == 0.0


def test_funding_settles_at_mark_into_futures_wallet():
    px = ohlc([100.0] * 10)
    mark = ohlc([101.0] * 10)
    m = toy_market(px, mark=mark, funding={3: 0.001})
    r = fa.backtest(m, 1, capital=1000.0, costs=fa.Costs.zero())
    q = 500.0 / 100.0
    assert r.totals_frame()["funding"].iloc[0] == pytest.approx(q * 101.0 * 0.001, rel=1e-12)


def test_reverse_pays_borrow_per_hour():
    px = ohlc([100.0] * 11)
    m = toy_market(px)
    r = fa.backtest(m, -1, capital=1000.0, leverage=1.0, spot_leverage=1.0,
                    costs=fa.Costs.zero(borrow_rate=1e-5))
    q = 500.0 / 100.0
    # held through the close of every bar: 11 bars × q·S·rate
    assert r.totals_frame()["borrow"].iloc[0] == pytest.approx(11 * q * 100.0 * 1e-5, rel=1e-12)


def test_data_borrow_rate_overrides_constant():
    px = ohlc([100.0] * 4)
    idx = px.index
    m = toy_market(px, borrow=pd.Series([2e-5, 2e-5, 4e-5, 4e-5], index=idx))
    r = fa.backtest(m, -1, capital=1000.0, spot_leverage=1.0, costs=fa.Costs.zero(borrow_rate=0.005))
    assert r.totals_frame()["borrow"].iloc[0] == pytest.approx(5 * 100 * (2e-5 * 2 + 4e-5 * 2), rel=1e-12)


def test_symbol_listed_later_starts_later_and_ending_symbol_closes():
    idx = pd.date_range("2024-01-01", periods=40, freq="h", tz="UTC", name="time")
    a = ohlc(np.full(40, 100.0), index=idx)
    b = ohlc(np.full(20, 50.0), index=idx[10:30])
    ev_a = pd.Series(1e-4, index=idx[::8])
    ev_b = pd.Series(1e-4, index=idx[10:30:4])
    m = MarketData.from_frames([SymbolFrames("A", a, a, ev_a, mark=a), SymbolFrames("B", b, b, ev_b, mark=b)])
    r = fa.backtest(m, 1, costs=fa.Costs.zero())
    qb = r.spot_qty["B"]
    assert (qb.iloc[:10] == 0).all() and (qb.iloc[10:29] > 0).all()
    # funding is known until the event after the last one (26 + 4h): prices end first, at bar 29, the last
    # active bar, where the position is closed at the open
    assert (qb.iloc[29:] == 0).all()
    assert r.stats().loc["B", "start"] == idx[10]
