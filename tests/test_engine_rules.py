"""The kernels' rule functions one by one, against DESIGN.md's worked numbers (§3 sizing, §4 cash flows, §5 margin)."""

from __future__ import annotations

import numpy as np
import pytest

from fundarb.engine import layout, liquidation, steps
from fundarb.engine.rules import (
    cost_reserved_qty_nb,
    cushion_nb,
    maintenance_nb,
    rebalance_due_nb,
    sizing_qty_nb,
    slippage_frac_nb,
    spot_level_due_nb,
    tier_maintenance_nb,
    trade_costs_nb,
)
from fundarb.engine.tiers import liq_price_mark, liquidation_price, tier_of

FLAT = np.array([[0.0, np.inf, 0.005, 0.0]])  # DESIGN §5 worked examples: flat mmr 0.5%, no fees
TIERED = np.array([[0.0, 50_000.0, 0.004, 0.0], [50_000.0, 250_000.0, 0.005, 50.0], [250_000.0, np.inf, 0.01, 1_300.0]])


@pytest.mark.parametrize(("L", "spot", "margin"), [(1.0, 500.0, 500.0), (9.0, 900.0, 100.0)])
def test_sizing_carry_worked_example(L, spot, margin):
    q = sizing_qty_nb(1, 1000.0, 100.0, L, 3.0)
    assert q * 100.0 == pytest.approx(spot, rel=1e-12)
    assert q * 100.0 / L == pytest.approx(margin, rel=1e-12)


def test_sizing_reverse_and_flat():
    # reverse: N = E / (1/L + 1/Ls); E = 1000, L = 2, Ls = 2 → N = 1000, margin 500, collateral 500
    assert sizing_qty_nb(-1, 1000.0, 50.0, 2.0, 2.0) * 50.0 == pytest.approx(1000.0, rel=1e-12)
    assert sizing_qty_nb(0, 1000.0, 50.0, 2.0, 2.0) == 0.0
    assert sizing_qty_nb(1, -5.0, 50.0, 2.0, 2.0) == 0.0


@pytest.mark.parametrize("L", [1.0, 9.0])
def test_trade_to_target_moves_cash_into_the_two_wallets(L):
    p = layout.empty_params(1)[0]
    a, b, entry, mbi = np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1)
    comp = np.zeros((1, layout.N_COMP))
    q = sizing_qty_nb(1, 1000.0, 100.0, L, 3.0)
    cash, da, db, fees, spread, slip = steps.trade_to_target_nb(0, q, 1, 100.0, 100.0, 100.0, np.nan, np.nan, a, b,
                                                             entry, mbi, comp, 1000.0, L, p)
    assert (a[0], b[0], entry[0]) == (q, -q, 100.0)
    assert (da, db) == (q, -q)
    assert mbi[0] == pytest.approx(1000.0 / (L + 1.0), rel=1e-12)  # perp margin N/L
    assert cash == pytest.approx(0.0, abs=1e-9)  # all of E is spot notional + margin
    assert fees == spread == slip == 0.0


def test_trade_to_target_charges_fees_on_each_leg():
    p = layout.empty_params(1)[0]
    p["spot_fee"], p["perp_fee"] = 0.001, 0.0005
    a, b, entry, mbi = np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1)
    comp = np.zeros((1, layout.N_COMP))
    cash, *_ = steps.trade_to_target_nb(0, 5.0, 1, 100.0, 100.0, 100.0, np.nan, np.nan, a, b, entry, mbi, comp,
                                     1000.0, 1.0, p)
    assert comp[0, layout.FEES] == pytest.approx(500.0 * 0.001 + 500.0 * 0.0005, rel=1e-12)
    assert cash == pytest.approx(1000.0 - 500.0 - 0.5 - 500.0, rel=1e-12)  # spot fee out of cash
    assert mbi[0] == pytest.approx(500.0 - 0.25, rel=1e-12)  # perp fee out of the perp's margin


def test_held_direction():
    assert steps.held_direction_nb(1.0, -1.0) == 1
    assert steps.held_direction_nb(-1.0, 1.0) == -1
    assert steps.held_direction_nb(0.0, -1.0) == 1  # a lone perp still names its pair
    assert steps.held_direction_nb(0.0, 0.0) == 0


@pytest.mark.parametrize(("b", "cash"), [(-0.1, 0.3), (0.1, -0.3)])
def test_funding_cash_is_minus_s_q_m_r(b, cash):
    assert steps.funding_cash_nb(b, 30_000.0, 0.0001) == pytest.approx(cash, rel=1e-12)


def test_settle_funding_into_the_margin_uses_last_mark_in_a_gap():
    funding = np.array([[0.0001]])
    b, mbi, comp = np.array([-0.1]), np.array([300.0]), np.zeros((1, layout.N_COMP))
    steps.settle_funding_nb(0, 0, np.array([0]), funding, np.array([[np.nan]]), b, np.array([20_000.0]), mbi, comp)
    assert mbi[0] == pytest.approx(300.2, rel=1e-12)
    assert comp[0, layout.FUNDING] == pytest.approx(0.2, rel=1e-12)


def test_accrue_borrow():
    assert steps.accrue_borrow_nb(-0.1, 30_000.0, 1e-5, 8.0) == pytest.approx(0.1 * 30_000.0 * 1e-5 * 8.0, rel=1e-12)


def test_maintenance_flat_and_tiered():
    assert maintenance_nb(FLAT, 0.1, 30_000.0) == pytest.approx(15.0, rel=1e-12)
    assert maintenance_nb(TIERED, 1.0, 40_000.0) == pytest.approx(160.0, rel=1e-12)
    assert maintenance_nb(TIERED, 2.0, 40_000.0) == pytest.approx(80_000.0 * 0.005 - 50.0, rel=1e-12)
    assert maintenance_nb(TIERED, 10.0, 40_000.0) == pytest.approx(400_000.0 * 0.01 - 1_300.0, rel=1e-12)


def _isolated(b0, adv, mo, fee=0.0, loss_margin=False):
    b, entry, mbi = np.array([b0]), np.array([30_000.0]), np.array([300.0])
    comp = np.zeros((1, layout.N_COMP))
    lock, lock_bar, reent, n_lq = np.zeros(1, np.int64), np.full(1, -1.0), np.zeros(1, np.int64), np.zeros(1)
    rec = layout.empty_trades(4)
    freed, n = liquidation.liquidate_isolated_nb(0, 7, FLAT, b, entry, mbi, np.array([-b0]), np.array([mo]),
                                        np.array([adv]), np.array([30_000.0]), comp, lock, lock_bar, reent, n_lq,
                                        layout.AFTER_CLOSE, loss_margin, fee, 0, True, rec, 0)
    return freed, n, b, mbi, comp, lock, lock_bar, rec


@pytest.mark.parametrize(("b0", "price"), [(-0.1, 3300.0 / 0.1005), (0.1, 2700.0 / 0.0995)])
def test_isolated_liquidation_fills_at_the_exchange_price(b0, price):
    adv = 34_000.0 if b0 < 0 else 26_000.0
    freed, n, b, mbi, comp, lock, lock_bar, rec = _isolated(b0, adv, 30_000.0)
    px = rec[0]["perp_price"]
    assert px == pytest.approx(price, rel=1e-12)
    assert round(px, 3) == (32_835.821 if b0 < 0 else 27_135.678)
    assert freed == pytest.approx(abs(b0) * px * 0.005, rel=1e-9)  # at P the margin left is exactly MM
    assert (n, b[0], mbi[0], lock[0], lock_bar[0]) == (1, 0.0, 0.0, 1 if b0 < 0 else -1, 7.0)
    assert rec[0]["kind"] == layout.KIND_LIQ_PERP
    assert comp[0, layout.INSURANCE] == 0.0


def test_isolated_not_liquidated_above_maintenance():
    freed, n, b, mbi, *_ = _isolated(-0.1, 32_800.0, 30_000.0)
    assert (freed, n, b[0], mbi[0]) == (-1.0, 0, -0.1, 300.0)


def test_isolated_gap_through_fills_at_the_open_and_insurance_takes_the_rest():
    freed, _, _, _, comp, *_ = _isolated(-0.1, 35_000.0, 34_000.0, fee=0.005)
    assert freed == 0.0
    assert comp[0, layout.PERP_PNL] == pytest.approx(-400.0, rel=1e-12)
    assert comp[0, layout.LIQ_FEES] == pytest.approx(0.005 * 3_400.0, rel=1e-12)
    assert comp[0, layout.INSURANCE] == pytest.approx(100.0 + 17.0, rel=1e-12)


def test_isolated_liquidation_loss_margin_hands_the_rest_to_the_fund():
    freed, _, _, _, comp, *_ = _isolated(-0.1, 34_000.0, 30_000.0, fee=0.005, loss_margin=True)
    assert freed == 0.0
    px = 3300.0 / 0.1005
    assert comp[0, layout.LIQ_FEES] == pytest.approx(300.0 - 0.1 * (px - 30_000.0), rel=1e-9)


def test_spot_margin_lambda_and_liquidation():
    # reverse carry: 0.1 borrowed at 30,000 (3,000), spot wallet assets 4,000; level 1.1 ⇒ P = 4000/0.11
    a, so_, adv = np.array([-0.1]), np.array([30_000.0]), np.array([40_000.0])
    lam = liquidation.spot_margin_lambda_nb(4_000.0, a, so_, adv, 1.1)
    px = 30_000.0 + lam * 10_000.0
    assert px == pytest.approx(4_000.0 / 0.11, rel=1e-12)
    assert liquidation.spot_margin_lambda_nb(4_000.0, a, so_, np.array([36_000.0]), 1.1) == -1.0
    comp = np.zeros((1, layout.N_COMP))
    lock, lock_bar, reent, n_lq = np.zeros(1, np.int64), np.full(1, -1.0), np.zeros(1, np.int64), np.zeros(1)
    cash, _ = liquidation.liquidate_spot_nb(lam, a, np.array([0.1]), so_, adv, np.array([30_000.0]), 4_000.0,
                                            comp, lock, lock_bar, reent, n_lq, layout.AFTER_CLOSE, 0.0, 3, 0, False,
                                            layout.empty_trades(), 0)
    assert cash == pytest.approx(4_000.0 - 0.1 * px, rel=1e-12)
    assert cash / 0.1 / px == pytest.approx(0.1, rel=1e-9)  # 1.1 − 1: what is left after repaying
    assert (a[0], lock[0], n_lq[0]) == (0.0, -1, 1.0)


def test_cushion_and_triggers():
    c0 = cushion_nb(300.0, -0.1, 30_000.0, 30_000.0, FLAT)
    assert c0 == pytest.approx(285.0, rel=1e-12)
    # half the way from 30,000 to the flat-mmr liquidation price: C = C0/2 ⇒ rebalance_at = 0.5 fires
    half = 30_000.0 + 0.5 * (3300.0 / 0.1005 - 30_000.0)
    c = cushion_nb(300.0, -0.1, 30_000.0, half, FLAT)
    assert c == pytest.approx(c0 / 2, rel=1e-9)
    assert rebalance_due_nb(c - 1e-9, c0, 0.5) and not rebalance_due_nb(c + 1e-6, c0, 0.5)
    assert not rebalance_due_nb(-1.0, c0, 1.0)  # off unless 0 < x < 1
    assert spot_level_due_nb(1.3, 1.0, 1.3) and not spot_level_due_nb(1.31, 1.0, 1.3)
    assert not spot_level_due_nb(1.0, 1.0, np.nan)
    assert not spot_level_due_nb(1.0, 1.0, np.inf)  # off unless y is finite
    assert not spot_level_due_nb(1.0, 0.0, 1.3)  # no loan, no level


def test_streaming_stats():
    state = (100.0, 0.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0)  # prev_eq, sums, n, peak, dd bars, max dd bars, max dd
    for eq in (110.0, 99.0, 104.5, 121.0):
        state = steps.update_streaming_stats_nb(eq, *state)
    prev_eq, sum_r, sum_r2, sum_d2, n_r, peak, dd_bars, max_dd_bars, max_dd = state
    r = np.array([110.0 / 100.0, 99.0 / 110.0, 104.5 / 99.0, 121.0 / 104.5]) - 1.0
    assert sum_r == pytest.approx(r.sum(), rel=1e-12)
    assert sum_r2 == pytest.approx((r * r).sum(), rel=1e-12)
    assert sum_d2 == pytest.approx(0.01, rel=1e-12)
    assert (n_r, prev_eq, peak, dd_bars) == (4.0, 121.0, 121.0, 0.0)
    assert max_dd == pytest.approx(-0.1, rel=1e-12)
    assert max_dd_bars == 2.0


def test_target_and_lock_rules():
    assert steps.target_nb(1, 0.5) == 1 and steps.target_nb(1, 0.0) == 0 and steps.target_nb(-1, np.nan) == 0
    # while a lock holds, "hold" keeps the held direction, "close" stays flat
    assert steps.effective_target_nb(1, 1.0, 1, 1, layout.AFTER_HOLD) == 1
    assert steps.effective_target_nb(1, 1.0, 1, 1, layout.AFTER_CLOSE) == 0
    assert steps.effective_target_nb(-1, 1.0, 0, 1, layout.AFTER_CLOSE) == -1


@pytest.mark.parametrize(("args", "kind"), [
    ((1, 0, 0, 0, 0.0, 0.0, False, False, False), layout.KIND_ENTRY),
    ((0, 1, 0, 0, 1.0, -1.0, False, False, False), layout.KIND_EXIT),
    ((0, 1, 0, 1, 0.0, -1.0, False, False, False), layout.KIND_CLOSE_LEG),
    ((-1, 1, 0, 0, 1.0, -1.0, False, False, False), layout.KIND_FLIP),
    ((1, 1, 0, 0, 1.0, -1.0, False, False, False), -1),            # at its target: nothing
    ((1, 1, 0, 0, 1.0, -1.0, True, False, False), layout.KIND_REBALANCE),  # a §5 trigger fired at the last close
    ((1, 1, 0, 0, 1.0, -1.0, False, True, False), layout.KIND_REBALANCE),  # rebalance_every is due
    ((1, 1, 0, 0, 1.0, -1.0, False, False, True), layout.KIND_RESIZE),     # its weight moved
    ((1, 1, 0, 1, 1.0, -1.0, False, False, True), -1),             # ... but a lock holds it
    ((1, 1, 0, 0, 1.0, 0.0, True, False, False), -1),              # one leg left: no margin rebalance
    ((1, 0, 1, 0, 0.0, 0.0, False, False, False), layout.KIND_REENTRY),
    ((1, 1, 1, 0, 1.0, 0.0, False, False, False), layout.KIND_REENTRY),
    ((-1, 0, 1, 0, 0.0, 0.0, False, False, False), layout.KIND_ENTRY),  # re-entry only into the liquidated direction
])
def test_order_kind(args, kind):
    assert steps.order_kind_nb(*args) == kind


def test_isolated_breach_at_the_liquidation_price():
    px = 3300.0 / 0.1005
    assert liquidation.isolated_breached_nb(300.0, -0.1, 30_000.0, px * (1 + 1e-12), FLAT)
    assert not liquidation.isolated_breached_nb(300.0, -0.1, 30_000.0, px * (1 - 1e-9), FLAT)
    # the trigger is "≤": with mmr 0 a short of 1 from 100 with margin 10 is liquidated exactly at 110
    zero = np.array([[0.0, np.inf, 0.0, 0.0]])
    assert liquidation.isolated_breached_nb(10.0, -1.0, 100.0, 110.0, zero)
    assert not liquidation.isolated_breached_nb(10.0, -1.0, 100.0, 109.99, zero)


def test_slippage_frac_participation_model_and_fallbacks():
    # k·sqrt(qty/vol) = 0.1·sqrt(4/100) = 0.02
    assert slippage_frac_nb(0.0003, 0.1, 4.0, 100.0) == pytest.approx(0.02, rel=1e-12)
    # the fixed fraction when the model is off (k = 0) or the bar's volume is unknown or zero
    assert slippage_frac_nb(0.0003, 0.0, 4.0, 100.0) == 0.0003
    assert slippage_frac_nb(0.0003, 0.1, 4.0, np.nan) == 0.0003
    assert slippage_frac_nb(0.0003, 0.1, 4.0, 0.0) == 0.0003


def test_trade_costs_per_leg():
    # 0.5 spot at 30,000 (15,000) and −0.5 perp at 30,010 (15,005): fee, half spread, slippage × each notional
    c = trade_costs_nb(0.5, -0.5, 30_000.0, 30_010.0, np.nan, np.nan, 0.001, 0.0005, 0.0002, 0.0003, 0.0)
    expected = (15.0, 7.5025, 3.0, 3.001, 4.5, 4.5015)
    assert c == pytest.approx(expected, rel=1e-12)
    # participation slippage: |Δ| = 1 against volumes 100 and 25 → 0.1·sqrt(0.01) = 1%, 0.1·sqrt(0.04) = 2%
    c = trade_costs_nb(1.0, -1.0, 100.0, 100.0, 100.0, 25.0, 0.0, 0.0, 0.0, 0.0003, 0.1)
    assert c == pytest.approx((0.0, 0.0, 0.0, 0.0, 1.0, 2.0), rel=1e-12)
    assert trade_costs_nb(0.0, 0.0, 100.0, 100.0, np.nan, np.nan, 0.001, 0.001, 0.001, 0.001, 0.0) == (0.0,) * 6


def test_cost_reserved_qty_is_the_fixed_point():
    # carry from flat, L = 1, prices 100, fees 0.1% + 0.05%: q·100·(L+1)/L = E − q·100·0.0015
    # ⇒ q = E / (100·(2 + 0.0015)) = 1000 / 200.15
    args = (100.0, 100.0, np.nan, np.nan, 1.0, 3.0, 0.001, 0.0005, 0.0, 0.0, 0.0)
    q = cost_reserved_qty_nb(1, 1000.0, 0.0, 0.0, *args)
    assert q == pytest.approx(1000.0 / 200.15, rel=1e-12)
    assert q < sizing_qty_nb(1, 1000.0, 100.0, 1.0, 3.0)
    # already held at that size: nothing to trade, nothing reserved
    assert cost_reserved_qty_nb(1, 1000.0, 5.0, -5.0, *args) == sizing_qty_nb(1, 1000.0, 100.0, 1.0, 3.0)
    assert cost_reserved_qty_nb(0, 1000.0, 0.0, 0.0, *args) == 0.0
    assert cost_reserved_qty_nb(1, 0.0, 0.0, 0.0, *args) == 0.0


def test_cost_reserved_qty_with_steep_participation_slippage_never_overspends():
    # k = 50 against a volume of 1: the slippage fraction grows with sqrt(q); whichever way the fixed point is
    # found, the equity left after the trade's costs must still size at least the quantity returned
    args = (100.0, 100.0, 1.0, 1.0, 1.0, 3.0, 0.0, 0.0, 0.0, 0.0, 50.0)
    q = cost_reserved_qty_nb(1, 1000.0, 0.0, 0.0, *args)
    c = trade_costs_nb(q, -q, 100.0, 100.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 50.0)
    assert 0.0 < q < 5.0
    assert sizing_qty_nb(1, 1000.0 - sum(c), 100.0, 1.0, 3.0) == pytest.approx(q, rel=1e-9)


def test_tier_maintenance_and_tier_of():
    # MM = n·mmr − cum in the given row: 80,000·0.005 − 50 = 350; cum keeps MM continuous at 50,000
    assert tier_maintenance_nb(TIERED, 1, 80_000.0) == pytest.approx(350.0, rel=1e-12)
    assert tier_maintenance_nb(TIERED, 0, 50_000.0) == tier_maintenance_nb(TIERED, 1, 50_000.0) == 200.0
    # [min, max): a boundary belongs to the upper tier; the last tier covers everything above
    assert [tier_of(TIERED, n) for n in (0.0, 49_999.99, 50_000.0, 250_000.0, 1e12)] == [0, 0, 1, 2, 2]
    capped = TIERED.copy()
    capped[-1, layout.TIER_MAX] = 1e6
    assert tier_of(capped, 5e6) == 2


@pytest.mark.parametrize(("b", "margin", "price"), [
    (0.1, 300.0, 27_135.678),             # long 0.1 BTC at 30,000, 10×: (300 − 3,000) / (0.0005 − 0.1)
    (20_000.0 / 30_000.0, 1_000.0, 28_643.216),  # long 20,000 notional, 20×: (1,000 − 20,000) / (−0.995·q)
    (-0.1, 300.0, 32_835.821),            # short 0.1 BTC, 10×: (300 + 3,000) / (0.0005 + 0.1)
])
def test_liq_price_mark_design_worked_examples(b, margin, price):
    assert round(liq_price_mark(FLAT, b, 30_000.0, margin), 3) == price


def test_liq_price_mark_tiers_and_floor():
    # short 2 at 24,000 with margin 1,000: tier 1 would give 49,050/2.01 = 24,402.99 (notional 48,806 < 50,000,
    # inconsistent); tier 0: (1,000 + 48,000) / (2·0.004 + 2) = 24,402.39, notional in tier 0
    assert liq_price_mark(TIERED, -2.0, 24_000.0, 1_000.0) == pytest.approx(49_000.0 / 2.008, rel=1e-12)
    # short 10 at 30,000 with margin 10,000: tier 2, (10,000 + 1,300 + 300,000) / (0.1 + 10)
    assert liq_price_mark(TIERED, -10.0, 30_000.0, 10_000.0) == pytest.approx(311_300.0 / 10.1, rel=1e-12)
    # a long with more margin than notional is never liquidated: the price floors at 0
    assert liq_price_mark(FLAT, 0.1, 30_000.0, 5_000.0) == 0.0


@pytest.mark.parametrize(("side", "qty", "margin", "price"), [
    ("long", 0.1, 300.0, 27_150.0), ("long", 20_000.0 / 30_000.0, 1_000.0, 28_650.0),
    ("short", 0.1, 300.0, 32_850.0)])
def test_liquidation_price_entry_basis_guides(side, qty, margin, price):
    assert liquidation_price(side, 30_000.0, qty, margin, mmr=0.005, mm_basis="entry") == pytest.approx(price,
                                                                                                          rel=1e-12)
