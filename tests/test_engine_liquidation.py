"""Liquidation rules (engine/liquidation.py) one by one: extremes, cross and spot liquidation (DESIGN.md §5).

The isolated rules are in tests/test_engine_rules.py next to DESIGN's worked liquidation prices.
"""

from __future__ import annotations

import numpy as np
import pytest

from fundarb.engine import layout, liquidation
from fundarb.engine.rules import maintenance_nb
from fundarb.engine.tiers import liq_price_mark

FLAT = np.array([[0.0, np.inf, 0.005, 0.0]])
TIERED = np.array([[0.0, 50_000.0, 0.004, 0.0], [50_000.0, 250_000.0, 0.005, 50.0], [250_000.0, np.inf, 0.01, 1_300.0]])
TWO = np.vstack([FLAT, FLAT])
START, LEN = np.array([0, 1]), np.array([1, 1])


def _state(n):
    return np.zeros(n, np.int64), np.full(n, -1.0), np.zeros(n, np.int64), np.zeros(n)  # lock, lock_bar, reent, n_lq


def test_after_liquidation_lock_or_reentry():
    lock, lock_bar, reent, _ = _state(2)
    liquidation.after_liquidation_nb(1, -1, 12, layout.AFTER_CLOSE, lock, lock_bar, reent)
    assert (list(lock), list(lock_bar), list(reent)) == ([0, -1], [-1.0, 12.0], [0, 0])
    liquidation.after_liquidation_nb(0, 1, 13, layout.AFTER_REENTER, lock, lock_bar, reent)
    assert (list(lock), list(lock_bar), list(reent)) == ([0, -1], [-1.0, 12.0], [1, 0])  # no lock on "reenter"


def test_count_liquidation_keeps_the_first_bar():
    assert liquidation.count_liquidation_nb(0.0, -1.0, 5) == (1.0, 5)
    assert liquidation.count_liquidation_nb(1.0, 5.0, 9) == (2.0, 5.0)


def test_perp_extremes_adverse_side_and_fallbacks():
    # members: short, long, short without a high, short without high or close, short in a gap, flat
    nan = np.nan
    b = np.array([-1.0, 1.0, -1.0, -1.0, -1.0, 0.0])
    act = np.array([True, True, True, True, False, True])
    mo_, adv = np.zeros(6), np.zeros(6)
    row = lambda *v: np.array([v])  # noqa: E731
    liquidation.perp_extremes_nb(0, 0, np.arange(6), row(100.0, 100.0, 100.0, 100.0, nan, 100.0),
                                 row(110.0, 110.0, nan, nan, 120.0, 110.0), row(90.0, 90.0, 90.0, 90.0, 80.0, 90.0),
                                 row(105.0, 105.0, 105.0, nan, nan, 105.0), b, act, np.full(6, 99.0), mo_, adv)
    assert list(mo_) == [100.0, 100.0, 100.0, 100.0, 99.0, 100.0]  # a gap keeps the last known mark
    assert list(adv) == [110.0, 90.0, 105.0, 99.0, 99.0, 100.0]


def test_spot_extremes_adverse_side_and_fallbacks():
    # members: loan (reverse), long (carry), loan without a high, loan in a gap, flat (left untouched)
    nan = np.nan
    a = np.array([-1.0, 1.0, -1.0, -1.0, 0.0])
    act = np.array([True, True, True, False, True])
    so_, adv = np.full(5, -7.0), np.full(5, -7.0)
    row = lambda *v: np.array([v])  # noqa: E731
    liquidation.spot_extremes_nb(0, 0, np.arange(5), row(100.0, 100.0, 100.0, nan, 100.0),
                                 row(110.0, 110.0, nan, 120.0, 110.0), row(90.0, 90.0, 90.0, 80.0, 90.0),
                                 row(105.0, 105.0, 105.0, nan, 105.0), a, act, np.full(5, 99.0), so_, adv)
    assert list(so_) == [100.0, 100.0, 100.0, 99.0, -7.0]
    assert list(adv) == [110.0, 90.0, 105.0, 99.0, -7.0]


# cross account: short 0.1 BTC and long 1 ETH from 30,000 / 2,000, wallet 400, flat mmr 0.5%
B2, ENTRY2, MO2 = np.array([-0.1, 1.0]), np.array([30_000.0, 2_000.0]), np.array([30_000.0, 2_000.0])
# value at the open a0 = 400 − 0.005·(3,000 + 2,000) = 375; slope to (34,000, 1,800):
# (−0.1 − 0.0005)·4,000 + (1 − 0.005)·(−200) = −402 − 199 = −601 ⇒ λ = 375 / 601
LAM2 = 375.0 / 601.0


def test_cross_lambda_two_perps_hand_computed():
    lam = liquidation.cross_liquidation_lambda_nb(400.0, B2, ENTRY2, MO2, np.array([34_000.0, 1_800.0]), TWO, START,
                                                  LEN, 0)
    assert lam == pytest.approx(LAM2, rel=1e-12)
    px = MO2 + lam * (np.array([34_000.0, 1_800.0]) - MO2)
    wallet = 400.0 + (B2 * (px - ENTRY2)).sum()
    assert wallet == pytest.approx(0.005 * (np.abs(B2) * px).sum(), rel=1e-9)  # MB + ΣuPnL = ΣMM there


def test_cross_lambda_edges():
    adv = np.array([31_000.0, 1_950.0])
    assert liquidation.cross_liquidation_lambda_nb(400.0, B2, ENTRY2, MO2, adv, TWO, START, LEN, 0) == -1.0
    # already at or below maintenance at the open (wallet 20 < ΣMM 25): λ = 0
    assert liquidation.cross_liquidation_lambda_nb(20.0, B2, ENTRY2, MO2, np.array([34_000.0, 1_800.0]), TWO, START,
                                                   LEN, 0) == 0.0
    # a flat member is ignored (its NaN marks never enter)
    lam = liquidation.cross_liquidation_lambda_nb(300.0, np.array([-0.1, 0.0]), ENTRY2, np.array([30_000.0, np.nan]),
                                                  np.array([34_000.0, np.nan]), TWO, START, LEN, 0)
    assert 30_000.0 + lam * 4_000.0 == pytest.approx(3300.0 / 0.1005, rel=1e-12)  # the isolated price, 32,835.82


@pytest.mark.parametrize(("mb", "price"), [(1_000.0, 49_000.0 / 2.008), (3_000.0, 51_050.0 / 2.01)])
def test_cross_lambda_retakes_the_tier(mb, price):
    # one short of 2 from 24,000 (notional 48,000, tier 0), adverse extreme 30,000 (60,000, tier 1). With 1,000
    # it is liquidated in tier 0: (1,000 + 48,000) / (2·0.004 + 2); with 3,000 in tier 1 (notional 50,796):
    # (3,000 + 50 + 48,000) / (2·0.005 + 2). λ lands on the exchange-rule price of that single perp.
    lam = liquidation.cross_liquidation_lambda_nb(mb, np.array([-2.0]), np.array([24_000.0]), np.array([24_000.0]),
                                                  np.array([30_000.0]), TIERED, np.array([0]), np.array([3]), 0)
    px = 24_000.0 + lam * 6_000.0
    assert px == pytest.approx(price, rel=1e-12)
    assert px == pytest.approx(liq_price_mark(TIERED, -2.0, 24_000.0, mb), rel=1e-12)
    assert mb - 2.0 * (px - 24_000.0) == pytest.approx(maintenance_nb(TIERED, 2.0, px), rel=1e-9)


@pytest.mark.parametrize(("fee", "loss_margin"), [(0.01, False), (0.0, False), (0.0, True)])
def test_liquidate_cross(fee, loss_margin):
    adv = np.array([34_000.0, 1_800.0])
    b, entry, mbi = B2.copy(), ENTRY2.copy(), np.array([300.0, 100.0])
    comp = np.zeros((2, layout.N_COMP))
    lock, lock_bar, reent, n_lq = _state(2)
    rec = layout.empty_trades(2)
    n = liquidation.liquidate_cross_nb(LAM2, mbi, b, entry, np.array([0.1, -1.0]), MO2, adv, MO2.copy(), lock,
                                       lock_bar, reent, n_lq, comp, layout.AFTER_CLOSE, loss_margin, fee, 4, 0, True,
                                       rec, 0)
    px = MO2 + LAM2 * (adv - MO2)
    notional = np.abs(B2) * px
    # at λ the wallet equals ΣMM = 0.005·Σnotional; a fee of 1% leaves a shortfall of 0.005·notional per perp,
    # shared by notional; with no fee the 0.5% left is kept ("fee") or lost as a liquidation fee ("margin")
    assert n == 2 and list(rec["perp_price"]) == pytest.approx(list(px), rel=1e-12)
    assert list(rec["kind"]) == [layout.KIND_LIQ_PERP] * 2 and list(rec["perp_traded"]) == [0.1, -1.0]
    assert comp[:, layout.PERP_PNL] == pytest.approx(B2 * (px - MO2), rel=1e-12)
    kept = 0.0 if fee or loss_margin else 0.005 * notional.sum()
    lost_fee = fee * notional + (0.005 * notional if loss_margin else 0.0)
    assert comp[:, layout.LIQ_FEES] == pytest.approx(lost_fee, rel=1e-9, abs=1e-9)
    assert comp[:, layout.INSURANCE] == pytest.approx(0.005 * notional if fee else 0.0, rel=1e-9, abs=1e-9)
    assert mbi[0] == pytest.approx(kept, rel=1e-9, abs=1e-9) and mbi[1] == 0.0
    assert (list(b), list(entry), list(lock), list(n_lq)) == ([0.0, 0.0], [0.0, 0.0], [1, -1], [1.0, 1.0])


def test_liquidate_spot_shortfall_and_an_existing_lock():
    # λ = 1: the loan of 0.1 is repaid at 50,000 from a wallet of 4,000: −1,000, then a 0.5% fee of 25
    a, comp = np.array([-0.1]), np.zeros((1, layout.N_COMP))
    lock, lock_bar, reent, n_lq = _state(1)
    lock[0], lock_bar[0] = 1, 2.0  # the perp was liquidated earlier: that lock stays
    rec = layout.empty_trades(1)
    cash, n = liquidation.liquidate_spot_nb(1.0, a, np.array([0.1]), np.array([30_000.0]), np.array([50_000.0]),
                                            np.array([30_000.0]), 4_000.0, comp, lock, lock_bar, reent, n_lq,
                                            layout.AFTER_CLOSE, 0.005, 3, 0, True, rec, 0)
    assert cash == 0.0 and n == 1
    assert comp[0, layout.SPOT_PNL] == pytest.approx(-2_000.0, rel=1e-12)
    assert comp[0, layout.LIQ_FEES] == pytest.approx(25.0, rel=1e-12)
    assert comp[0, layout.INSURANCE] == pytest.approx(1_025.0, rel=1e-12)
    assert (a[0], lock[0], lock_bar[0], n_lq[0]) == (0.0, 1, 2.0, 1.0)
    assert (rec[0]["kind"], rec[0]["spot_price"], rec[0]["spot_traded"]) == (layout.KIND_LIQ_SPOT, 50_000.0, 0.1)


def test_spot_margin_lambda_below_the_level_at_the_open():
    # assets 3,200 against 3,000 borrowed: 1.067 ≤ 1.1 already at the open ⇒ λ = 0
    assert liquidation.spot_margin_lambda_nb(3_200.0, np.array([-0.1]), np.array([30_000.0]), np.array([31_000.0]),
                                             1.1) == 0.0
