"""The bar's steps (engine/steps.py) one by one, against hand-computed numbers (DESIGN.md §2–§5)."""

from __future__ import annotations

import numpy as np
import pytest

from fundarb.engine import layout, steps

FLAT = np.array([[0.0, np.inf, 0.005, 0.0]])  # DESIGN §5 worked examples: flat mmr 0.5%
TIERED = np.array([[0.0, 50_000.0, 0.004, 0.0], [50_000.0, 250_000.0, 0.005, 50.0], [250_000.0, np.inf, 0.01, 1_300.0]])
P_SHORT = 3300.0 / 0.1005  # short 0.1 at 30,000 with margin 300: the exchange-rule liquidation price


def test_flex_nb_broadcasts_an_axis_of_length_one():
    one = np.array([[0.7]])  # the (1, 1) weight run.simulate passes when every weight is 1
    assert steps.flex_nb(one, 5, 3) == 0.7
    col = np.array([[1.0], [2.0], [3.0]])  # (T, 1): every column reads its bar
    assert steps.flex_nb(col, 2, 9) == 3.0
    row = np.array([[1.0, 2.0, 3.0]])  # (1, C): every bar reads its column
    assert steps.flex_nb(row, 9, 1) == 2.0
    full = np.arange(6.0).reshape(2, 3)
    assert steps.flex_nb(full, 1, 2) == 5.0


def test_tier_table_nb_slices_the_stacked_tables():
    stacked = np.vstack([FLAT, TIERED])
    start, length = np.array([0, 1]), np.array([1, 3])
    assert np.array_equal(steps.tier_table_nb(stacked, start, length, 1), TIERED)
    assert np.array_equal(steps.tier_table_nb(stacked, start, length, 0), FLAT)


def test_record_nb_writes_named_fields_and_counts_past_capacity():
    rec = layout.empty_trades(1)
    n = steps.record_nb(rec, 0, 3, 17, layout.KIND_FLIP, 0.5, -0.5, 100.0, 101.0, 1.0, -1.0, 0.2, 0.1, 0.05, 0.0,
                        990.0)
    assert n == 1
    r = rec[0]
    assert (r["member"], r["bar"], r["kind"]) == (3, 17, layout.KIND_FLIP)
    assert (r["spot_qty"], r["perp_qty"], r["spot_price"], r["perp_price"]) == (0.5, -0.5, 100.0, 101.0)
    assert (r["spot_traded"], r["perp_traded"], r["fees"], r["spread"], r["slippage"]) == (1.0, -1.0, 0.2, 0.1, 0.05)
    assert (r["liquidation_fee"], r["equity_before"]) == (0.0, 990.0)
    # a full log still counts (the caller sizes the next one from the count) but writes nothing
    assert steps.record_nb(rec, 1, 9, 99, layout.KIND_EXIT, *([0.0] * 10), 1.0) == 2
    assert rec[0]["member"] == 3


def _open(spot_open, perp_open, mark_open, t=0):
    n = len(spot_open)
    a, b = np.array([0.1, 0.2, 0.3])[:n], np.array([-0.1, -0.2, -0.3])[:n]
    last_s, last_m = np.full(n, 100.0), np.full(n, 100.0)
    gap, act_s, act_p = np.zeros(n, np.bool_), np.zeros(n, np.bool_), np.zeros(n, np.bool_)
    comp = np.zeros((n, layout.N_COMP))
    first, last = np.full(n, -1.0), np.full(n, -1.0)
    any_open = steps.mark_to_open_nb(t, 0, np.arange(n), np.array([spot_open]), np.array([perp_open]),
                                     np.array([mark_open]), a, b, last_s, last_m, gap, act_s, act_p, comp, first,
                                     last)
    return any_open, last_s, last_m, gap, act_s, act_p, comp, first, last


def test_mark_to_open_moves_each_leg_and_keeps_the_last_price_in_a_gap():
    # member 0 trades; member 1 has no spot open (a spot-only gap: its mark still moves); member 2 no prices
    any_open, last_s, last_m, gap, act_s, act_p, comp, first, last = _open(
        [110.0, np.nan, np.nan], [109.0, 105.0, np.nan], [108.0, 104.0, np.nan])
    assert any_open
    assert list(gap) == [False, True, True]
    assert list(act_s) == [True, False, False] and list(act_p) == [True, True, False]
    assert list(last_s) == [110.0, 100.0, 100.0]  # NaN opens keep the last known price
    assert list(last_m) == [108.0, 104.0, 100.0]
    assert comp[0, layout.SPOT_PNL] == pytest.approx(0.1 * 10.0, rel=1e-12)
    assert comp[0, layout.PERP_PNL] == pytest.approx(-0.1 * 8.0, rel=1e-12)  # the perp moves with its mark
    assert comp[1, layout.SPOT_PNL] == 0.0 and comp[1, layout.PERP_PNL] == pytest.approx(-0.2 * 4.0, rel=1e-12)
    assert not comp[2].any()
    assert list(first) == [0.0, -1.0, -1.0] and list(last) == [0.0, -1.0, -1.0]


@pytest.mark.parametrize("prices", [([np.nan], [100.0], [100.0]), ([100.0], [np.nan], [100.0]),
                                    ([100.0], [100.0], [np.nan])])
def test_mark_to_open_any_missing_open_is_a_gap(prices):
    any_open, _, _, gap, *_ = _open(*prices)
    assert not any_open and gap[0]


def test_equity_at_open():
    # cash 0 + spot 5·100 + perp −5·(102 − 100) + margin 500 = 990
    eq = steps.equity_at_open_nb(0.0, np.array([5.0]), np.array([-5.0]), np.array([100.0]), np.array([500.0]),
                                 np.array([100.0]), np.array([102.0]))
    assert eq == pytest.approx(990.0, rel=1e-12)
    # a flat member adds only the margin it still holds (none here)
    eq = steps.equity_at_open_nb(7.0, np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1), np.full(1, np.nan),
                                 np.full(1, np.nan))
    assert eq == 7.0


def test_trade_to_target_exit_moves_the_margin_to_cash():
    p = layout.empty_params(1)[0]
    p["perp_fee"] = 0.001
    a, b, entry, mbi = np.array([5.0]), np.array([-5.0]), np.array([100.0]), np.array([500.0])
    comp = np.zeros((1, layout.N_COMP))
    cash, da, db, fees, *_ = steps.trade_to_target_nb(0, 0.0, 0, 110.0, 110.0, 110.0, np.nan, np.nan, a, b, entry,
                                                      mbi, comp, 0.0, 1.0, p)
    # spot sold 550; margin 500 − perp loss 5·10 − perp fee 0.001·550 comes back to cash
    assert cash == pytest.approx(550.0 + 500.0 - 50.0 - 0.55, rel=1e-12)
    assert (a[0], b[0], entry[0], mbi[0], da, db) == (0.0, 0.0, 0.0, 0.0, -5.0, 5.0)
    assert fees == pytest.approx(0.55, rel=1e-12)


@pytest.mark.parametrize(("rate", "used"), [(2e-5, 2e-5), (np.nan, 1e-5)])
def test_mark_to_close_borrow_then_marks(rate, used):
    # member 0 reverse carry: 0.1 borrowed, long 0.1 perp from 30,000, closes at 31,000
    # member 1 carry in a gap (NaN closes): marked at its last known prices, no PnL
    a, b = np.array([-0.1, 0.2]), np.array([0.1, -0.2])
    entry, mbi = np.array([30_000.0, 50.0]), np.array([1_000.0, 5.0])
    last_s, last_m = np.array([30_000.0, 50.0]), np.array([30_000.0, 52.0])
    comp = np.zeros((2, layout.N_COMP))
    in_mkt, since = np.zeros(2), np.zeros(2, np.int64)
    cash, eq, held = steps.mark_to_close_nb(0, 0, np.arange(2), np.array([[31_000.0, np.nan]]),
                                            np.array([[31_000.0, np.nan]]), np.array([[rate, rate]]), 1e-5, 1.0,
                                            a, b, entry, mbi, last_s, last_m, comp, in_mkt, since, 5_000.0)
    borrow = 0.1 * 31_000.0 * used  # |a|·price·rate·hours, at the close price
    assert comp[0, layout.BORROW] == pytest.approx(borrow, rel=1e-12)
    assert cash == pytest.approx(5_000.0 - borrow, rel=1e-12)
    # eq = cash + a·s + b·(m − entry) + MB for each member
    m0 = -0.1 * 31_000.0 + 0.1 * 1_000.0 + 1_000.0
    m1 = 0.2 * 50.0 - 0.2 * 2.0 + 5.0
    assert eq == pytest.approx(5_000.0 - borrow + m0 + m1, rel=1e-12)
    assert comp[0, layout.SPOT_PNL] == pytest.approx(-100.0) and comp[0, layout.PERP_PNL] == pytest.approx(100.0)
    assert not comp[1].any()
    assert list(last_s) == [31_000.0, 50.0] and list(last_m) == [31_000.0, 52.0]
    assert held and list(in_mkt) == [1.0, 1.0] and list(since) == [1, 1]


def test_mark_to_close_flat_holds_nothing():
    in_mkt = np.zeros(1)
    cash, eq, held = steps.mark_to_close_nb(0, 0, np.arange(1), np.array([[1.0]]), np.array([[1.0]]),
                                            np.array([[1e-3]]), 1e-3, 1.0, np.zeros(1), np.zeros(1), np.zeros(1),
                                            np.zeros(1), np.ones(1), np.ones(1), np.zeros((1, layout.N_COMP)),
                                            in_mkt, np.zeros(1, np.int64), 42.0)
    assert (cash, eq, held, in_mkt[0]) == (42.0, 42.0, False, 0.0)


STACKED = np.vstack([FLAT, FLAT, TIERED])
T_START, T_LEN = np.array([0, 1, 2]), np.array([1, 1, 3])


def test_account_cushion_sums_the_wallet_upnl_and_maintenance():
    # C = ΣMB + ΣuPnL − ΣMM = (300 + 200 + 10) + (−0.1·1,000 + 1·(−100)) − (0.005·3,100 + 0.005·1,900) = 285
    c = steps.account_cushion_nb(np.array([300.0, 200.0, 10.0]), np.array([-0.1, 1.0, 0.0]),
                                 np.array([30_000.0, 2_000.0, 0.0]), np.array([31_000.0, 1_900.0, np.nan]), STACKED,
                                 T_START, T_LEN, 0)
    assert c == pytest.approx(285.0, rel=1e-12)  # the flat member adds its margin only (no MM, NaN mark unused)


def _triggers(last_m, reb_at, spot_reb=np.nan, cross=False, c0g=0.0, cash=0.0, a=0.1, b=-0.1):
    reb_due = np.ones(1, np.bool_)  # stale flags from the last close must be cleared
    steps.margin_triggers_nb(reb_due, np.array([285.0]), c0g, cash, np.array([a]), np.array([b]),
                             np.array([30_000.0]), np.array([300.0]), np.array([30_000.0]), np.array([last_m]),
                             FLAT, np.array([0]), np.array([1]), 0, cross, reb_at, spot_reb)
    return bool(reb_due[0])


def test_margin_triggers_cushion_half_way_to_liquidation():
    # C0 = 300 − 15 = 285 at 30,000; C is linear in the mark: half the way to P leaves C0/2 (rebalance_at 0.5)
    half = 30_000.0 + 0.5 * (P_SHORT - 30_000.0)
    assert _triggers(half + 1.0, 0.5) and not _triggers(half - 1.0, 0.5)
    assert _triggers(half + 1.0, 0.5, cross=True, c0g=285.0)
    assert not _triggers(half - 1.0, 0.5, cross=True, c0g=285.0)
    assert not _triggers(P_SHORT, 0.0) and not _triggers(P_SHORT, 1.0)  # off unless 0 < x < 1


def test_margin_triggers_spot_level():
    # reverse carry: 0.1 borrowed at 30,000 (3,000), assets 3,900 ⇒ level 1.3
    assert _triggers(30_000.0, 0.0, spot_reb=1.3, cash=3_900.0, a=-0.1, b=0.1)
    assert not _triggers(30_000.0, 0.0, spot_reb=1.3, cash=3_901.0, a=-0.1, b=0.1)
    assert not _triggers(30_000.0, 0.0, spot_reb=np.nan, cash=3_900.0, a=-0.1, b=0.1)  # NaN: off


@pytest.mark.parametrize("cross", [False, True])
def test_write_bar(cross):
    series = np.zeros((layout.N_SERIES, 2, 3))
    gseries = np.zeros((layout.N_GSERIES, 2, 2))
    comp = np.arange(2.0 * layout.N_COMP).reshape(2, layout.N_COMP)
    steps.write_bar_nb(1, 1, 1, 1_000.0, 400.0, True, cross, np.array([0.5, 0.0]), np.array([-0.5, 0.0]),
                       np.array([250.0, 50.0]), comp, series, gseries)
    # equity, cash, the account's total margin, held
    assert list(gseries[:, 1, 1]) == [1_000.0, 400.0, 300.0, 1.0]
    assert not gseries[:, :, 0].any() and not gseries[:, 0, :].any()
    assert np.array_equal(series[: layout.N_COMP, 1, 1:].T, comp)
    assert (series[layout.SPOT_QTY, 1, 1], series[layout.PERP_QTY, 1, 1]) == (0.5, -0.5)
    margin = series[layout.MARGIN, 1, 1:]
    if cross:  # one wallet backs every perp: no per-member margin
        assert np.isnan(margin).all()
    else:
        assert list(margin) == [250.0, 50.0]
    assert not series[:, :, 0].any() and not series[:, 0, :].any()
