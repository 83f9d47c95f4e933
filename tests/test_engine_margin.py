"""Margin management (DESIGN §5: cushion and spot-level triggers, reenter, liquidation_loss) and cost-reserved
sizing, on bars computed by hand from DESIGN's formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData
from fundarb.engine import layout
from fundarb.errors import ConfigError
from toy import ohlc, toy_market

ZERO = fa.Costs.zero()
MMR = 0.005


def _two(a: pd.DataFrame, b: pd.DataFrame, funding_b: dict[int, float] | None = None) -> MarketData:
    ev = pd.Series(0.0, index=a.index[[0, -1]])
    evb = ev.copy()
    for i, r in (funding_b or {}).items():
        evb[a.index[i]] = r
    evb = evb.sort_index()
    return MarketData.from_frames([SymbolFrames("A", a, a, ev, mark=a), SymbolFrames("B", b, b, evb, mark=b)])


# --------------------------------------------------------------------------------------------- isolated cushion
def _carry_cushion(m: float, q: float = 8.0, mb: float = 200.0, entry: float = 100.0) -> float:
    """C = MB + b·(m − entry) − q·m·mmr for a short perp b = −q (DESIGN §5)."""
    return mb - q * (m - entry) - q * m * MMR


def test_cushion_trigger_one_perp_isolated():
    # carry, E = 1000, L = 4: N = 800 → q = 8 at 100, MB = 200; C0 = 200 − 8·100·0.005 = 196
    o = [100, 100, 105, 110, 113, 113, 113, 113]
    h = [100, 105, 110, 113, 113, 130, 113, 113]
    c = [100, 105, 110, 113, 113, 113, 113, 113]
    m = toy_market(ohlc(o, h, None, c))
    c0 = _carry_cushion(100.0)
    assert c0 == pytest.approx(196.0)
    # x = 0.5 → due when C ≤ 98: C(110) = 115.6 (not yet), C(113) = 91.48 (due, acted on at bar 4's open)
    assert _carry_cushion(110.0) > 0.5 * c0 >= _carry_cushion(113.0)
    r = fa.backtest(m, 1, capital=1000.0, leverage=4.0, rebalance_at=0.5, mmr=MMR, costs=ZERO)
    tr = r.trades
    assert tr["kind"].tolist() == ["entry", "rebalance"]
    assert m.index.get_loc(tr["time"][1]) == 4
    # equity at bar 4's open: 8·113 + 200 − 8·13 = 1000 → q' = 800/113, MB = 200 again
    q2 = 800.0 / 113.0
    assert r.spot_qty.iloc[4, 0] == pytest.approx(q2, rel=1e-12)
    assert r.margin_balance.iloc[4, 0] == pytest.approx(200.0, rel=1e-12)
    # liquidation price after the re-size: (MB + q'·113)/(q'·(1 + mmr)) = 1000/(q'·1.005) ≈ 140.5 > 130
    assert r.stats()["n_liquidations"].iloc[0] == 0
    # without margin management the bar-5 high of 130 passes P = 1000/8.04 ≈ 124.4: liquidated, and it says so
    off = fa.backtest(m, 1, capital=1000.0, leverage=4.0, mmr=MMR, costs=ZERO)
    assert off.stats()["n_liquidations"].iloc[0] == 1
    assert off.liquidations["perp_price"][0] == pytest.approx(1000.0 / 8.04, rel=1e-12)
    assert any("liquidated with margin management off" in w for w in off.warnings)
    assert not any("margin management off" in w for w in r.warnings)


def test_cushion_share_is_the_way_to_the_liquidation_price():
    """With one perp and a flat mmr, x is the share of the way from the sizing price to the liquidation price."""
    p_liq = 1000.0 / 8.04
    for x in (0.25, 0.5, 0.75):
        m_star = 100.0 + x * (p_liq - 100.0)
        assert _carry_cushion(m_star) == pytest.approx((1 - x) * _carry_cushion(100.0), rel=1e-12)


def test_funding_received_raises_the_cushion():
    # same path to 113 as above, but 20 of funding received at bar 2: C(113) = 91.48 + 20 > 98 → no rebalance
    o = [100, 100, 105, 110, 113, 113]
    m = toy_market(ohlc(o), funding={2: 20.0 / (8 * 105)})
    r = fa.backtest(m, 1, capital=1000.0, leverage=4.0, rebalance_at=0.5, mmr=MMR, costs=ZERO)
    assert r.trades["kind"].tolist() == ["entry"]
    m2 = toy_market(ohlc(o))
    r2 = fa.backtest(m2, 1, capital=1000.0, leverage=4.0, rebalance_at=0.5, mmr=MMR, costs=ZERO)
    assert r2.trades["kind"].tolist() == ["entry", "rebalance"]


# --------------------------------------------------------------------------------------------- cross book
def test_cushion_trigger_cross_book_uses_the_account_cushion():
    # two symbols, equal weights, E = 2000, L = 4: each q = 8 at 100 with a share of 200; wallet 400
    # account C0 = 400 − 2·(8·100·0.005) = 392; x = 0.5 → due when C ≤ 196
    up = ohlc([100, 100, 110, 120, 125, 125], close=[100, 110, 120, 125, 125, 125])
    flat = ohlc([100.0] * 6)
    m = _two(up, flat)
    kw = dict(weights="equal", capital=2000.0, leverage=4.0, rebalance_at=0.5, mmr=MMR, costs=ZERO)

    def c_acc(ma: float) -> float:
        return 400.0 - 8 * (ma - 100) - 8 * ma * MMR - 8 * 100 * MMR

    assert c_acc(100.0) == pytest.approx(392.0)
    assert c_acc(120.0) > 196.0 >= c_acc(125.0)
    cross = fa.backtest(m, 1, margin_mode="cross", **kw)
    tr = cross.trades
    assert tr["kind"].tolist() == ["entry", "entry", "rebalance"]  # B's re-size lands on q = 8: no trade
    assert [m.index.get_loc(t) for t in tr["time"]] == [0, 0, 4]
    assert cross.spot_qty.iloc[4].tolist() == pytest.approx([800.0 / 125.0, 8.0], rel=1e-12)
    # isolated, A's own cushion 1000 − 8.04·m crosses 98 at m ≈ 112.2: re-sized at bar 3 already
    iso = fa.backtest(m, 1, **kw)
    assert [m.index.get_loc(t) for t in iso.trades["time"]][2] == 3


def test_cross_trade_moves_only_its_pair_margin():
    # B receives 8 of funding at bar 1 (8·100·0.01) into its share; A's weight then drops 0.5 → 0.4 at bar 3
    px = ohlc([100.0] * 6)
    m = _two(px, px, funding_b={1: 0.01})
    w = pd.DataFrame({"A": [0.5] * 6, "B": [0.5] * 6}, index=m.index)
    w.iloc[3:, 0] = 0.4
    r = fa.backtest(m, 1, weights=w, margin_mode="cross", capital=2000.0, leverage=4.0, mmr=MMR, costs=ZERO)
    mb = r.margin_balance.iloc[:, 0].to_numpy()
    assert mb[:3] == pytest.approx([400.0, 408.0, 408.0])
    # bar 3: E = 2008; A re-sized to 0.4·2008·0.8/100 → share N_A/4; B keeps 200 + 8
    n_a = 0.4 * 2008.0 * 0.8
    assert r.spot_qty.iloc[3, 0] == pytest.approx(n_a / 100.0, rel=1e-12)
    assert mb[3] == pytest.approx(n_a / 4.0 + 208.0, rel=1e-12)
    assert r.identity_error() < 1e-12


def test_one_cross_liquidation_is_one_account_event():
    up = ohlc([100, 100, 100, 100], high=[100, 100, 200, 100], close=[100, 100, 100, 100])
    m = _two(up, up)
    r = fa.backtest(m, 1, weights="equal", margin_mode="cross", capital=2000.0, leverage=4.0, mmr=MMR, costs=ZERO)
    assert len(r.liquidations) == 2
    assert r.stats()["n_liquidations"].iloc[0] == 1
    assert r.symbol_totals()["n_liquidations"].tolist() == [1, 1]


def test_gap_symbol_stays_in_the_cross_check_at_its_last_mark():
    # A is up 20 % at its last known mark, then its data stops for two bars; B's mark alone reaches a level
    # that liquidates the account only when A's loss is counted.
    a = ohlc([100, 100, 120, np.nan, np.nan, 120], close=[100, 120, 120, np.nan, np.nan, 120])
    b = ohlc([100, 100, 100, 100, 100, 100], high=[100, 100, 100, 100, 108, 100])
    m = _two(a, b)
    # shares 200 + 200, q = 8 each. At bar 4, A at 120 (−160), B's high 108: C = 400 − 160 − 64 − 8·120·0.005
    # − 8·108·0.005 = 400 − 224 − 4.8 − 4.32 = 166.88 > 0 → still alive; B at 130 would not be.
    c4 = 400 - 8 * 20 - 8 * 8 - 8 * 120 * MMR - 8 * 108 * MMR
    assert c4 > 0
    b2 = ohlc([100, 100, 100, 100, 100, 100], high=[100, 100, 100, 100, 130, 100])
    m2 = _two(a, b2)
    c4b = 400 - 8 * 20 - 8 * 30 - 8 * 120 * MMR - 8 * 130 * MMR
    assert c4b < 0 < 400 - 8 * 30 - 8 * 100 * MMR - 8 * 130 * MMR  # without A's loss it would survive
    kw = dict(weights="equal", margin_mode="cross", capital=2000.0, leverage=4.0, mmr=MMR, costs=ZERO)
    assert fa.backtest(m, 1, **kw).stats()["n_liquidations"].iloc[0] == 0
    r = fa.backtest(m2, 1, **kw)
    assert r.stats()["n_liquidations"].iloc[0] == 1
    liq = r.liquidations.set_index("symbol")
    assert liq.loc["A", "perp_price"] == pytest.approx(120.0)  # A fills at its last known mark
    # λ on B alone: 400 − 160 − 4.8 − 8·(m − 100) − 0.04·m = 0 → m = (400 − 160 − 4.8 + 800)/8.04
    assert liq.loc["B", "perp_price"] == pytest.approx((400 - 160 - 4.8 + 800) / 8.04, rel=1e-12)
    assert r.identity_error() < 1e-12


def test_perp_liquidation_checked_when_only_spot_has_a_gap():
    o = [100, 100, 100, 100, 100]
    spot = ohlc([100, 100, np.nan, 100, 100], close=[100, 100, np.nan, 100, 100])
    perp = ohlc(o, high=[100, 100, 130, 100, 100], close=o)
    m = toy_market(spot, perp=perp, mark=perp)
    r = fa.backtest(m, 1, capital=1000.0, leverage=4.0, mmr=MMR, costs=ZERO)
    liq = r.liquidations
    assert len(liq) == 1 and m.index.get_loc(liq["time"][0]) == 2
    assert liq["perp_price"][0] == pytest.approx(1000.0 / 8.04, rel=1e-12)


# --------------------------------------------------------------------------------------------- reverse carry
def test_spot_rebalance_level_of_a_reverse_carry():
    # reverse, E = 1000, L = 1, Ls = 3: N = 750 → 7.5 borrowed and sold at 100, MB = 750, cash 1000
    # level = 1000 / (7.5·S) ≤ 1.3 ⇔ S ≥ 102.56…: close 103 at bar 2 → re-sized at bar 3's open (103)
    o = [100, 100, 102, 103, 103, 103]
    h = [100, 102, 103, 103, 121.5, 103]
    c = [100, 102, 103, 103, 103, 103]
    m = toy_market(ohlc(o, h, None, c))
    assert 1000 / (7.5 * 102) > 1.3 >= 1000 / (7.5 * 103)
    kw = dict(capital=1000.0, leverage=1.0, spot_leverage=3.0, mmr=MMR, costs=ZERO)
    r = fa.backtest(m, -1, spot_rebalance_level=1.3, **kw)
    assert r.trades["kind"].tolist() == ["entry", "rebalance"]
    assert m.index.get_loc(r.trades["time"][1]) == 3
    # equity at the open: 1000 − 7.5·103 + 750 + 7.5·3 = 1000 → q' = 750/103; cash back to 1000
    assert r.spot_qty.iloc[3, 0] == pytest.approx(-750.0 / 103.0, rel=1e-12)
    assert r.gseries[layout.G_CASH][3, 0] == pytest.approx(1000.0, rel=1e-12)
    # bar 4's high 121.5: level 1000/(750/103·121.5) ≈ 1.130 survives; unmanaged 1000/(7.5·121.5) ≈ 1.097 does not
    assert r.stats()["n_liquidations"].iloc[0] == 0
    off = fa.backtest(m, -1, **kw)
    assert off.liquidations["kind"].tolist() == ["liquidation_spot"]


# --------------------------------------------------------------------------------------------- after liquidation
def _liq_market() -> MarketData:
    o = [100, 100, 100, 100, 105, 110, 112, 112, 112, 112]
    h = [100, 101, 100, 106, 111, 130, 112, 112, 112, 112]
    lo = [100, 99, 100, 100, 105, 110, 112, 112, 112, 112]
    c = [100, 100, 100, 105, 110, 112, 112, 112, 112, 112]
    return toy_market(ohlc(o, h, lo, c))


def test_reenter_opens_a_fresh_pair_at_the_next_open():
    m = _liq_market()
    r = fa.backtest(m, 1, capital=1000.0, leverage=4.0, mmr=MMR, after_liquidation="reenter",
                    costs=fa.Costs.zero(liquidation_fee=0.01))
    # bar 5: liquidated (the insurance fund takes MB's deficit) → equity = the spot leg 8·112 = 896, cash 0
    assert r.equity.iloc[5, 0] == pytest.approx(896.0, rel=1e-12)
    # bar 6: re-entered from 896 at 112: q = 896·0.8/112 = 6.4 (sells 1.6 of the 8 held), MB = 179.2
    assert r.trades["kind"].tolist() == ["entry", "liquidation_perp", "reentry"]
    assert r.spot_qty.iloc[6, 0] == pytest.approx(6.4, rel=1e-12)
    assert r.perp_qty.iloc[6, 0] == pytest.approx(-6.4, rel=1e-12)
    assert r.margin_balance.iloc[6, 0] == pytest.approx(179.2, rel=1e-12)
    assert r.equity.iloc[-1, 0] == pytest.approx(896.0, rel=1e-12)
    assert not any("stayed flat" in w for w in r.warnings)


def test_close_warns_when_the_target_stays_unfilled_to_the_end():
    m = _liq_market()
    r = fa.backtest(m, 1, capital=1000.0, leverage=4.0, mmr=MMR, costs=fa.Costs.zero(liquidation_fee=0.01))
    assert (r.spot_qty.iloc[6:, 0] == 0).all()
    w = [x for x in r.warnings if "stayed flat" in x]
    assert len(w) == 1 and "2024-01-01 05:00" in w[0] and "4 bars unfilled" in w[0]
    # a target that went flat after the liquidation is not "unfilled"
    pos = pd.Series([1] * 7 + [0] * 3, index=m.index)
    r2 = fa.backtest(m, pos, capital=1000.0, leverage=4.0, mmr=MMR, costs=fa.Costs.zero(liquidation_fee=0.01))
    assert not any("stayed flat" in x for x in r2.warnings)


def test_liquidation_loss_margin_forfeits_the_rest_of_the_margin():
    # q = 8, MB = 200, fill at P = 1000/8.04 (the bar opened below it): MB after the fill = 200 − 8·(P − 100)
    # = 8·P·mmr; fee 0.2 % of 8·P; "fee" returns the rest, "margin" books it as liquidation fees
    o = [100, 100, 110, 110]
    m = toy_market(ohlc(o, high=[100, 100, 130, 110], close=o))
    p = 1000.0 / 8.04
    left = 200 - 8 * (p - 100)
    fee = 0.002 * 8 * p
    assert left == pytest.approx(8 * p * MMR, rel=1e-12)
    kw = dict(capital=1000.0, leverage=4.0, mmr=MMR, costs=fa.Costs.zero(liquidation_fee=0.002))
    r_fee = fa.backtest(m, 1, **kw)
    r_mar = fa.backtest(m, 1, liquidation_loss="margin", **kw)
    assert r_fee.totals_frame()["liquidation_fees"].iloc[0] == pytest.approx(fee, rel=1e-12)
    assert r_mar.totals_frame()["liquidation_fees"].iloc[0] == pytest.approx(left, rel=1e-12)
    # equity at bar 2's close: spot 8·110 plus what came back of the margin
    assert r_fee.equity.iloc[2, 0] == pytest.approx(880 + left - fee, rel=1e-12)
    assert r_mar.equity.iloc[2, 0] == pytest.approx(880.0, rel=1e-12)
    assert r_mar.identity_error() < 1e-12


# --------------------------------------------------------------------------------------------- sizing
@pytest.mark.parametrize(("lev", "spot_notional", "margin"), [(1.0, 500.0, 500.0), (9.0, 900.0, 100.0)])
def test_design_sizing_holds_with_zero_costs(lev, spot_notional, margin):
    m = toy_market(ohlc([100.0] * 3))
    r = fa.backtest(m, 1, capital=1000.0, leverage=lev, mmr=MMR, costs=ZERO)
    assert r.spot_qty.iloc[0, 0] * 100 == pytest.approx(spot_notional, rel=1e-12)
    assert r.margin_balance.iloc[0, 0] == pytest.approx(margin, rel=1e-12)


def test_cost_reserved_sizing_carry():
    # N = (E − (fs + fp)·N)·L/(L+1) → N = 500 / (1 + 0.0015·0.5); the spot wallet keeps the perp fee
    m = toy_market(ohlc([100.0] * 3))
    r = fa.backtest(m, 1, capital=1000.0, leverage=1.0, mmr=MMR, costs=fa.Costs.zero(spot_fee=0.001,
                                                                                      perp_fee=0.0005))
    n = 500.0 / (1 + 0.0015 * 0.5)
    assert r.spot_qty.iloc[0, 0] * 100 == pytest.approx(n, rel=1e-12)
    cash = r.gseries[layout.G_CASH][0, 0]
    assert cash == pytest.approx(0.0005 * n, rel=1e-9)
    assert r.margin_balance.iloc[0, 0] == pytest.approx(n - 0.0005 * n, rel=1e-12)


@pytest.mark.parametrize("direction", [1, -1])
def test_spot_wallet_never_negative_by_fees(direction):
    rng = np.random.default_rng(4)
    px = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    m = toy_market(ohlc(px))
    pos = pd.Series(np.where(rng.random(200) < 0.5, direction, 0), index=m.index)
    costs = fa.Costs(spot_fee=0.001, perp_fee=0.0005, half_spread_bps=5.0, slippage_bps=3.0)

    for lev in (1.0, 3.0, 10.0):
        r = fa.backtest(m, pos, capital=1000.0, leverage=lev, costs=costs, rebalance_every=5)
        assert (r.gseries[layout.G_CASH][:, 0] >= -1e-9).all()
        assert r.identity_error() < 1e-9


# --------------------------------------------------------------------------------------------- bad options
@pytest.mark.parametrize(("kw", "match"), [
    ({"rebalance_at": 1.0}, "0 < rebalance_at < 1"),
    ({"rebalance_at": 0.0}, "0 < rebalance_at < 1"),
    ({"rebalance_at": float("inf")}, "0 < rebalance_at < 1"),
    ({"spot_rebalance_level": 1.05}, "spot_rebalance_level must be .*> spot_liquidation_level"),
    ({"spot_rebalance_level": float("inf")}, "spot_rebalance_level"),
    ({"liquidation_loss": "marg"}, "did you mean 'margin'"),
    ({"after_liquidation": "renter"}, "did you mean 'reenter'"),
    ({"spot_liquidation_level": float("inf")}, "spot_liquidation_level"),
])
def test_new_options_are_range_checked(kw, match):
    m = toy_market(ohlc([100.0] * 3))
    with pytest.raises(ConfigError, match=match):
        fa.backtest(m, 1, **kw)


# --------------------------------------------------------------------------------------------- issue 12: ranges
@pytest.mark.parametrize(("kw", "match"), [
    ({"leverage": 150.0}, r"leverage must be > 0 and ≤ 125"),
    ({"leverage": 100.0, "mmr": 0.02}, r"initial margin 1/L = 0.01 is at or below the maintenance margin rate 0.02"),
    ({"spot_leverage": 11.0}, r"spot_leverage must be > 0 and ≤ 10"),
    ({"spot_liquidation_level": float("nan")}, r"spot_liquidation_level must be a finite margin level > 1"),
])
def test_engine_option_ranges(kw, match):
    m = toy_market(ohlc([100.0] * 3))
    with pytest.raises(ConfigError, match=match):
        fa.backtest(m, 1, **kw)


def test_leverage_above_the_tier_for_the_entry_notional():
    # a tier table whose second tier (notional ≥ 50,000) keeps 2 %: 60× is fine for 1,000, not for 1,000,000
    tiers = np.array([[0.0, 50_000.0, 0.004, 0.0], [50_000.0, np.inf, 0.02, 50_000.0 * 0.016]])
    m = toy_market(ohlc([100.0] * 3))
    fa.backtest(m, 1, leverage=60.0, capital=1_000.0, tiers=tiers, costs=ZERO)
    with pytest.raises(ConfigError, match="TOY's tier"):
        fa.backtest(m, 1, leverage=60.0, capital=1_000_000.0, tiers=tiers, costs=ZERO)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("spot_fee", 0.1, r"costs.spot_fee must be ≥ 0 and < 0.1"),
    ("perp_fee", 0.5, r"costs.perp_fee must be ≥ 0 and < 0.1"),
    ("liquidation_fee", 0.2, r"costs.liquidation_fee"),
    ("borrow_rate", 0.01, r"costs.borrow_rate must be ≥ 0 and < 0.01 \(an hourly rate"),
    ("half_spread_bps", 5000.0, r"costs.half_spread_bps"),
    ("spot_fee", True, r"costs.spot_fee must be a finite number"),
])
def test_cost_ranges(field, value, match):
    with pytest.raises(ConfigError, match=match):
        fa.Costs(**{field: value})


# --------------------------------------------------------------------------------------------- break-even
def test_break_even_days_uses_the_entry_directions_sizing():
    # 10 bars, 1 funding event of rate r on q at 100; round trip = 2·N·(spot_fee + perp_fee)
    o = [100.0] * 25
    costs = fa.Costs.zero(spot_fee=0.001, perp_fee=0.0005)
    for direction, rate, share in ((1, 0.001, 2.0 / 3.0), (-1, -0.001, 1.0 / (1 / 2 + 1 / 3))):
        m = toy_market(ohlc(o), funding={12: rate})
        r = fa.backtest(m, direction, capital=1000.0, leverage=2.0, spot_leverage=3.0, costs=costs)
        s = r.stats().iloc[0]
        days = r.stats()["time_in_market"].iloc[0] * 25 / 24
        daily = s["funding_pnl"] / days
        assert s["break_even_days"] == pytest.approx(2 * 1000.0 * share * 0.0015 / daily, rel=1e-12)
