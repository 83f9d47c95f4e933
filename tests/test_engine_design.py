"""The engine against DESIGN.md's worked numbers and hand-computed markets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.engine.layout import TIER_CUM, TIER_MAX, TIER_MMR
from fundarb.errors import ConfigError
from toy import ohlc, toy_market

FLAT_5 = dict(mmr=0.005, costs=fa.Costs.zero())


@pytest.mark.parametrize(
    ("side", "entry", "qty", "margin", "guides", "exchange"),
    [
        ("long", 30_000, 0.1, 300, 27_150.0, 27_135.678391959798),
        ("long", 30_000, 20_000 / 30_000, 1_000, 28_650.0, 28_643.216080402010),
        ("short", 30_000, 0.1, 300, 32_850.0, 32_835.820895522388),
    ],
)
def test_liquidation_price_design_table(side, entry, qty, margin, guides, exchange):
    got_entry = fa.liquidation_price(side, entry, qty, margin, mmr=0.005, mm_basis="entry")
    got_mark = fa.liquidation_price(side, entry, qty, margin, mmr=0.005)
    assert got_entry == pytest.approx(guides, rel=1e-9)
    assert got_mark == pytest.approx(exchange, rel=1e-9)


def test_liquidation_price_rejects_bad_side():
    with pytest.raises(ConfigError, match="did you mean 'short'"):
        fa.liquidation_price("shrt", 30_000, 0.1, 300)


def test_liquidation_price_with_binance_tiers(shared_data):
    from fundarb.engine.tiers import load_tiers

    tiers = load_tiers(shared_data / "binance" / "leverage_tiers.json", "BTC/USDT:USDT")
    # a 2,000,000 notional long at 10x: tier with cum > 0; the price must satisfy the exchange rule exactly
    qty, entry, margin = 2_000_000 / 30_000, 30_000.0, 200_000.0
    p = fa.liquidation_price("long", entry, qty, margin, tiers=tiers)
    i = int(np.searchsorted(tiers[:, TIER_MAX], qty * p, side="right"))
    mm = qty * p * tiers[i, TIER_MMR] - tiers[i, TIER_CUM]
    assert tiers[i, TIER_CUM] > 0
    assert margin + qty * (p - entry) == pytest.approx(mm, rel=1e-9)


@pytest.mark.parametrize(("lev", "spot_notional", "margin"), [(1.0, 500.0, 500.0), (9.0, 900.0, 100.0)])
def test_carry_sizing_design(lev, spot_notional, margin):
    m = toy_market(ohlc([100.0] * 5))
    r = fa.backtest(m, 1, capital=1000.0, leverage=lev, **FLAT_5)
    assert r.spot_qty.iloc[0, 0] * 100.0 == pytest.approx(spot_notional, rel=1e-12)
    assert r.perp_qty.iloc[0, 0] == pytest.approx(-r.spot_qty.iloc[0, 0], rel=1e-12)
    assert r.margin_balance.iloc[0, 0] == pytest.approx(margin, rel=1e-12)


def test_reverse_sizing_design():
    m = toy_market(ohlc([100.0] * 5))
    r = fa.backtest(m, -1, capital=1000.0, leverage=2.0, spot_leverage=3.0, **FLAT_5)
    n = 1000.0 / (1 / 2 + 1 / 3)
    assert -r.spot_qty.iloc[0, 0] * 100.0 == pytest.approx(n, rel=1e-12)
    assert r.margin_balance.iloc[0, 0] == pytest.approx(n / 2, rel=1e-12)


def test_hand_computed_liquidation_ten_bars():
    # carry, capital 1000, L=4: N = 800 → q = 8 at 100, perp margin 200, flat mmr 0.5%, liquidation fee 1%
    o = [100, 100, 100, 100, 105, 110, 112, 112, 112, 112]
    h = [100, 101, 100, 106, 111, 130, 112, 112, 112, 112]
    lo = [100, 99, 100, 100, 105, 110, 112, 112, 112, 112]
    c = [100, 100, 100, 105, 110, 112, 112, 112, 112, 112]
    m = toy_market(ohlc(o, h, lo, c), funding={2: 0.001})
    r = fa.backtest(m, 1, capital=1000.0, leverage=4.0, mmr=0.005,
                    costs=fa.Costs.zero(liquidation_fee=0.01))
    eq = r.equity.iloc[:, 0].to_numpy()
    # funding at bar 2: −b·m·r = 8·100·0.001 = 0.8 into the futures wallet
    assert eq[:5] == pytest.approx([1000, 1000, 1000.8, 1000.8, 1000.8], rel=1e-12)
    # bar 5: mark high 130; P = (MB + cum − b·entry)/(|b|·mmr − b) = (200.8 + 800)/(0.04 + 8)
    p = 1000.8 / 8.04
    liq = r.liquidations
    assert len(liq) == 1 and liq["kind"][0] == "liquidation_perp"
    assert liq["perp_price"][0] == pytest.approx(p, rel=1e-12)
    fee = 0.01 * 8 * p
    assert liq["liquidation_fee"][0] == pytest.approx(fee, rel=1e-12)
    # MB after = 200.8 − 8·(P − 100) − fee < 0 → the insurance fund takes the rest
    ins = -(200.8 - 8 * (p - 100) - fee)
    assert ins > 0
    tot = r.totals_frame().iloc[0]
    assert tot["insurance_fund_loss"] == pytest.approx(ins, rel=1e-12)
    # the spot leg is marked at 112 at bar 5, then closed at the open of bar 6 (after_liquidation="close")
    assert eq[5] == pytest.approx(8 * 112, rel=1e-12)
    assert r.spot_qty.iloc[6, 0] == 0.0
    assert eq[6:] == pytest.approx([896.0] * 4, rel=1e-12)
    assert tot["funding"] == pytest.approx(0.8, rel=1e-12)
    assert tot["spot_pnl"] == pytest.approx(96.0, rel=1e-12)
    assert tot["perp_pnl"] == pytest.approx(-8 * (p - 100), rel=1e-12)
    assert r.identity_error() < 1e-12
    assert r.stats()["n_liquidations"].iloc[0] == 1


def test_hold_after_liquidation_keeps_spot_until_target_changes():
    o = [100, 100, 100, 100, 105, 110, 112, 112, 112, 112]
    h = [100, 101, 100, 106, 111, 130, 112, 112, 112, 112]
    m = toy_market(ohlc(o, h, None, o))
    pos = pd.Series([1, 1, 1, 1, 1, 1, 1, 1, 0, 0], index=m.index)
    r = fa.backtest(m, pos, capital=1000.0, leverage=4.0, after_liquidation="hold", **FLAT_5)
    q = r.spot_qty.iloc[:, 0].to_numpy()
    assert (q[5:8] == 8).all() and (r.perp_qty.iloc[5:8, 0] == 0).all()
    assert q[8] == 0  # closed when the target went to 0


def test_funding_bar_timing():
    """Opened at the open of a funding bar: no funding; closed there: funding received (DESIGN §2)."""
    m = toy_market(ohlc([100.0] * 6), funding={1: 0.01, 4: 0.01})
    pos = pd.Series([0, 1, 1, 1, 0, 0], index=m.index)
    r = fa.backtest(m, pos, capital=1000.0, **FLAT_5)
    # only the event at bar 4 is paid: q = 5, m = 100 → 5·100·0.01 = 5
    assert r.totals_frame()["funding"].iloc[0] == pytest.approx(5.0, rel=1e-12)


def test_misspelt_options_say_did_you_mean():
    m = toy_market(ohlc([100.0] * 3))
    with pytest.raises(ConfigError, match="did you mean 'hold'"):
        fa.backtest(m, 1, after_liquidation="hodl")
    with pytest.raises(ConfigError, match="did you mean 'sweep'"):
        fa.backtest(m, 1, mode="swep")
    with pytest.raises(ConfigError, match="-1, 0 or \\+1"):
        fa.backtest(m, 2)


def test_sweep_mode_matches_detail_totals():
    rng = np.random.default_rng(3)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    m = toy_market(ohlc(px, px * 1.01, px * 0.99, px * (1 + rng.normal(0, 0.002, 300))),
                   funding={i: 0.0003 for i in range(0, 300, 8)})
    kw = dict(leverage=[1.0, 3.0], capital=[1000.0, 5000.0], rebalance_every="1d")
    d = fa.backtest(m, 1, mode="detail", **kw)
    s = fa.backtest(m, 1, mode="sweep", **kw)
    pd.testing.assert_frame_equal(d.stats(), s.stats())
    assert list(d.columns.names) == ["capital", "leverage", "symbol"]
    assert math.isfinite(d.stats()["sharpe"].iloc[0])


def test_hand_computed_spot_margin_liquidation_of_reverse_carry():
    # reverse, capital 1000, L = 1, Ls = 3: N = 1000 / (1 + 1/3) = 750 → 7.5 borrowed and sold at 100,
    # perp margin 750, spot wallet 1000 against a 750 loan: margin level 1.333…
    o = [100, 100, 100, 110, 112, 112]
    h = [100, 100, 100, 130, 112, 112]
    c = [100, 100, 100, 112, 112, 112]
    m = toy_market(ohlc(o, h, None, c))
    r = fa.backtest(m, -1, capital=1000.0, leverage=1.0, spot_leverage=3.0, mmr=0.005,
                    costs=fa.Costs.zero(liquidation_fee=0.005))
    assert r.spot_qty.iloc[0, 0] == pytest.approx(-7.5)
    liq = r.liquidations
    assert liq["kind"].tolist() == ["liquidation_spot"]
    # level 1000 / (7.5·S) hits 1.10 at S = 1000 / 8.25 (the bar opened below it, at 110)
    px = 1000 / 8.25
    assert liq["spot_price"][0] == pytest.approx(px, rel=1e-12)
    fee = 0.005 * 7.5 * px
    eq = r.equity.iloc[:, 0]
    assert eq.iloc[3] == pytest.approx(1000 - 7.5 * px - fee + 750 + 7.5 * 12, rel=1e-12)
    # the unhedged long perp is closed at the next open (after_liquidation="close")
    assert r.perp_qty.iloc[4, 0] == 0
    assert eq.iloc[4] == pytest.approx(eq.iloc[3], rel=1e-12)
    assert r.identity_error() < 1e-12


def test_gap_bar_keeps_position_defers_orders_and_warns():
    o = np.array([100.0, 100, 100, np.nan, 100, 100, 100])
    px = ohlc(o, close=o)
    perp = ohlc(np.full(7, 100.0))
    m = toy_market(px, perp=perp, mark=perp, funding={3: 0.01})
    pos = pd.Series([1, 1, 1, 0, 0, 0, 0], index=m.index)
    r = fa.backtest(m, pos, capital=1000.0, **FLAT_5)
    q = r.spot_qty.iloc[:, 0].to_numpy()
    assert q[3] == 5.0 and q[4] == 0.0  # the exit decided for bar 3 executes at bar 4's open
    assert r.totals_frame()["funding"].iloc[0] == pytest.approx(5 * 100 * 0.01)  # the data has that event
    assert r.equity.iloc[3, 0] == pytest.approx(1005.0)
    assert any("held across 1 data gap" in w for w in r.warnings)
