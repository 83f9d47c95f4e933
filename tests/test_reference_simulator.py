"""Tests of the reference simulator (tests/reference/simulator.py) on its own.

The expected numbers are worked out by hand in the comments, from ../shared/DESIGN.md and
docs/engine.md; nothing here imports fundarb.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from reference.portfolio import COMPONENTS, simulate_portfolio
from reference.simulator import liquidation_price, maintenance_margin, simulate

NAN = float("nan")
INF = float("inf")
TOL = 1e-9

# Params with every cost switched off; tests switch on what they need.
NO_COSTS = {
    "spot_fee": 0.0,
    "perp_fee": 0.0,
    "half_spread_bps": 0.0,
    "slippage_bps": 0.0,
    "slippage_k": 0.0,
    "borrow_rate": 0.0,
    "liquidation_fee": 0.0,
}


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------


def market(spot, mark=None, perp_open=None, funding=None, borrow=None, spot_volume=None, perp_volume=None, target=None):
    """Build the input series. `spot` / `mark`: per bar a price (o = h = l = c) or an (o, h, l, c)
    tuple; `mark` defaults to spot; `perp_open` to the mark open; the rest to NaN / 0."""
    n = len(spot)

    def ohlc(x):
        return (x, x, x, x) if not isinstance(x, tuple) else x

    s = [ohlc(x) for x in spot]
    m = [ohlc(x) for x in (mark if mark is not None else spot)]
    return {
        "spot_open": [x[0] for x in s],
        "spot_high": [x[1] for x in s],
        "spot_low": [x[2] for x in s],
        "spot_close": [x[3] for x in s],
        "perp_open": list(perp_open) if perp_open is not None else [x[0] for x in m],
        "mark_open": [x[0] for x in m],
        "mark_high": [x[1] for x in m],
        "mark_low": [x[2] for x in m],
        "mark_close": [x[3] for x in m],
        "funding": list(funding) if funding is not None else [NAN] * n,
        "borrow_rate": list(borrow) if borrow is not None else [NAN] * n,
        "spot_volume": list(spot_volume) if spot_volume is not None else [NAN] * n,
        "perp_volume": list(perp_volume) if perp_volume is not None else [NAN] * n,
        "target": list(target) if target is not None else [0] * n,
    }


def run(mkt, bar_hours=1.0, **params):
    return simulate(**mkt, bar_hours=bar_hours, params=params)


def identity_rhs(res, capital, t):
    return (
        capital
        + res["funding"][t]
        + res["spot_pnl"][t]
        + res["perp_pnl"][t]
        - res["fees"][t]
        - res["spread"][t]
        - res["slippage"][t]
        - res["borrow"][t]
        - res["liquidation_fees"][t]
        + res["insurance_fund_loss"][t]
    )


def assert_identity(res, capital):
    """engine.md: Components — the identity at every bar, to 1e-9 relative."""
    for t, equity in enumerate(res["equity"]):
        rhs = identity_rhs(res, capital, t)
        assert math.isfinite(equity), (t, equity)
        assert abs(equity - rhs) <= TOL * max(capital, abs(equity)), (t, equity, rhs)


def close(x, y, tol=TOL):
    return abs(x - y) <= tol * max(1.0, abs(x), abs(y))


def kinds(res):
    return [(e["bar"], e["kind"]) for e in res["events"]]


# ---------------------------------------------------------------------------------------------------
# DESIGN §5 — the liquidation-price table
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "side, entry, qty, margin, guides, exchange",
    [
        # long 0.1 BTC at 30,000, 10x, margin 300
        ("long", 30_000.0, 0.1, 300.0, 27_150.0, 27_135.678391959798),
        # long 20,000 notional at 30,000, 20x, margin 1,000
        ("long", 30_000.0, 20_000.0 / 30_000.0, 1_000.0, 28_650.0, 28_643.216080402010),
        # short 0.1 BTC at 30,000, 10x, margin 300
        ("short", 30_000.0, 0.1, 300.0, 32_850.0, 32_835.820895522388),
    ],
)
def test_design_liquidation_table(side, entry, qty, margin, guides, exchange):
    # guides: MB + b·(P − entry) = qty·entry·mmr, e.g. long: 30000 − (300 − 15)/0.1 = 27150
    # exchange: P = (MB + cum − b·entry)/(|b|·mmr − b), e.g. long: (300 − 3000)/(0.0005 − 0.1)
    got_guides = liquidation_price(side, entry, qty, margin, mmr=0.005, mm_basis="entry")
    got_exchange = liquidation_price(side, entry, qty, margin, mmr=0.005, mm_basis="mark")
    assert close(got_guides, guides)
    assert close(got_exchange, exchange)
    # the table's "…" digits
    assert f"{got_exchange:.3f}"[:-1] == f"{exchange:.3f}"[:-1]
    # flat mmr given as a one-tier table gives the same
    assert close(liquidation_price(side, entry, qty, margin, tiers=[(0.0, INF, 0.005, 0.0)]), exchange)


def test_liquidation_price_default_mmr_is_binance():
    assert close(liquidation_price("short", 30_000.0, 0.1, 300.0), 32_835.820895522388)


TIERS = [(0.0, 2_000.0, 0.004, 0.0), (2_000.0, 8_000.0, 0.01, 12.0), (8_000.0, INF, 0.05, 332.0)]


@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("qty, margin", [(10.0, 100.0), (50.0, 600.0), (90.0, 1_500.0), (200.0, 9_000.0)])
def test_liquidation_price_is_self_consistent_across_tiers(side, qty, margin):
    # at the exchange-rule price the equity of the position equals its maintenance margin,
    # with the tier of the notional at that price
    entry = 100.0
    b = qty if side == "long" else -qty
    price = liquidation_price(side, entry, qty, margin, tiers=TIERS)
    assert close(margin + b * (price - entry), maintenance_margin(qty * price, TIERS))


def test_maintenance_margin_tiers():
    assert close(maintenance_margin(1_000.0, TIERS), 4.0)
    assert close(maintenance_margin(2_000.0, TIERS), 8.0)  # continuous at the boundary: 20 − 12
    assert close(maintenance_margin(5_000.0, TIERS), 38.0)
    assert close(maintenance_margin(100_000.0, TIERS), 5_000.0 - 332.0)  # last tier above


# ---------------------------------------------------------------------------------------------------
# DESIGN §3 — sizing
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lev, spot_notional, margin", [(1.0, 500.0, 500.0), (9.0, 900.0, 100.0)])
def test_carry_sizing(lev, spot_notional, margin):
    # carry: N = E·L/(L+1), perp margin N/L (E = 1000)
    res = run(market([100.0] * 3, target=[1, 1, 1]), capital=1000.0, leverage=lev, **NO_COSTS)
    assert close(res["spot_qty"][0] * 100.0, spot_notional)
    assert close(-res["perp_qty"][0] * 100.0, spot_notional)
    assert close(res["margin_balance"][0], margin)
    assert close(res["cash"][0], 1000.0 - spot_notional - margin)  # 0
    assert res["equity"] == [1000.0] * 3
    assert kinds(res) == [(0, "entry")]


def test_reverse_sizing():
    # reverse: N = E/(1/L + 1/Ls) = 1000/(1 + 1/3) = 750; MB = N/L = 750;
    # spot wallet: 1000 − 750 (to the futures wallet) + 750 (sale proceeds) = 1000 = N/Ls + N
    res = run(market([100.0] * 2, target=[-1, -1]), capital=1000.0, leverage=1.0, spot_leverage=3.0, **NO_COSTS)
    assert close(res["spot_qty"][0], -7.5)
    assert close(res["perp_qty"][0], 7.5)
    assert close(res["margin_balance"][0], 750.0)
    assert close(res["cash"][0], 1000.0)


def test_cost_reserved_carry_entry_leaves_the_spot_wallet_at_zero():
    # carry L = 1, E = 1000, spot fee 0.001 only: cost(q) = 0.1q at 100, q = 0.5·(1000 − 0.1q)/100
    #   -> q = 500/100.05. Spot buy 100q, MB = N/L = 100q, spot fee 0.1q from cash:
    #   cash = 1000 − 200.1q = 1000 − 200.1·500/100.05 = 0 (to rounding).
    res = run(market([100.0] * 2, target=[1, 1]), capital=1000.0, leverage=1.0, **{**NO_COSTS, "spot_fee": 0.001})
    q = 500.0 / 100.05
    assert close(res["spot_qty"][0], q)
    assert abs(res["cash"][0]) < 1e-12
    assert close(res["margin_balance"][0], 100.0 * q)
    assert close(res["equity"][0], 1000.0 - 0.1 * q)
    # with the perp fee too (0.0005·100q = 0.05q, taken from MB after MB = N/L): cost 0.15q,
    # q = 500/100.075, and the spot wallet keeps exactly the perp leg's cost 0.05q ≥ 0
    res = run(
        market([100.0] * 2, target=[1, 1]),
        capital=1000.0,
        leverage=1.0,
        **{**NO_COSTS, "spot_fee": 0.001, "perp_fee": 0.0005},
    )
    q = 500.0 / 100.075
    assert close(res["spot_qty"][0], q)
    assert close(res["cash"][0], 0.05 * q)
    assert close(res["margin_balance"][0], 100.0 * q - 0.05 * q)
    # the old sizing on E_open, N = 500, would have left cash at −0.5 − 0.25 + 0.25 = −0.5
    assert res["cash"][0] > 0.0


def test_cost_reserved_reverse_entry():
    # reverse L = 1, Ls = 3, E = 1000, fees 0.001 + 0.0005: cost 0.15q, factor 0.75:
    #   q = 0.75·(1000 − 0.15q)/100 -> q = 750/100.1125. cash = 1000 + 100q (sale) − 100q (to MB)
    #   − 0.1q (spot fee) = 1000 − 0.1q = N + N/Ls + 0.05q: proceeds, collateral and the perp's cost
    #   (with N/L + N/Ls = 1000 − 0.15q).
    res = run(
        market([100.0] * 2, target=[-1, -1]),
        capital=1000.0,
        leverage=1.0,
        spot_leverage=3.0,
        **{**NO_COSTS, "spot_fee": 0.001, "perp_fee": 0.0005},
    )
    q = 750.0 / 100.1125
    assert close(res["spot_qty"][0], -q) and close(res["perp_qty"][0], q)
    assert close(res["cash"][0], 1000.0 - 0.1 * q)
    assert close(res["cash"][0], 100.0 * q + 100.0 * q / 3.0 + 0.05 * q)
    assert close(res["margin_balance"][0], 100.0 * q - 0.05 * q)


def test_cost_reserved_rebalance_with_participation_slippage():
    # a rebalance that shrinks the position: the cost falls as q' rises towards q_old. Whatever the
    # cost model, q' is a fixed point of q' = sizing(E_open − cost(q')), checked here from the outside
    # with the cost recomputed from the traded quantities.
    prices = [100.0, 100.0, 150.0, 150.0]
    spot = [(p, p, p, p) for p in prices]
    res = run(
        market(spot, target=[1] * 4, spot_volume=[50.0] * 4, perp_volume=[20.0] * 4),
        capital=1000.0,
        leverage=2.0,
        rebalance_every=2,
        **{**NO_COSTS, "spot_fee": 0.001, "perp_fee": 0.0005, "half_spread_bps": 2.0, "slippage_k": 0.05},
    )
    assert kinds(res) == [(0, "entry"), (2, "rebalance")]
    q_old, q = res["spot_qty"][1], res["spot_qty"][2]
    d = q_old - q
    cost = 150.0 * d * (0.001 + 0.0005 + 2 * 2e-4 + 0.05 * math.sqrt(d / 50.0) + 0.05 * math.sqrt(d / 20.0))
    E = res["equity"][1]
    assert 0.0 < q < q_old
    assert close(res["events"][1]["cost"], cost)
    assert close(q, (2.0 / 3.0) * (E - cost) / 150.0, 1e-12)
    assert_identity(res, 1000.0)


# ---------------------------------------------------------------------------------------------------
# The hand-computed 10-bar market: funding events, fees, a perp liquidation, the lock, a re-entry
# ---------------------------------------------------------------------------------------------------


def ten_bar_market():
    # bar:      0      1      2      3      4      5      6      7      8      9
    s_o = [100.0, 100.0, 102.0, 104.0, 111.0, 118.0, 122.0, 124.0, 127.0, 130.0]
    s_c = [100.0, 101.0, 103.0, 110.0, 115.0, 120.0, 125.0, 126.0, 127.0, 131.0]
    p_o = [100.0, 100.0, 102.0, 104.0, 112.0, 118.0, 122.0, 124.0, 127.0, 130.5]
    m_o = [100.0, 100.0, 102.0, 104.0, 112.0, 118.0, 122.0, 124.0, 127.0, 130.0]
    m_h = [100.0, 101.0, 103.0, 112.0, 116.0, 121.0, 130.0, 126.0, 127.0, 131.0]
    m_c = [100.0, 101.0, 103.0, 111.0, 115.0, 120.0, 128.0, 126.0, 127.0, 131.0]
    fund = [NAN, 0.0001, 0.001, NAN, -0.0005, NAN, 0.0002, 0.0001, NAN, NAN]
    tgt = [0, 1, 1, 1, 1, 1, 1, 1, 0, 1]
    spot = [(o, max(o, c), min(o, c), c) for o, c in zip(s_o, s_c, strict=True)]
    mark = [(o, h, min(o, c), c) for o, h, c in zip(m_o, m_h, m_c, strict=True)]
    return market(spot, mark=mark, perp_open=p_o, funding=fund, target=tgt)


TEN_BAR_PARAMS = dict(
    capital=1000.0,
    leverage=4.0,
    spot_fee=0.001,
    perp_fee=0.0005,
    half_spread_bps=0.0,
    slippage_bps=0.0,
    slippage_k=0.0,
    mmr=0.01,
    liquidation_fee=0.005,
    after_liquidation="close",
    rebalance_at=INF,
    rebalance_every=0,
)


def test_ten_bar_hand_computed():
    res = run(ten_bar_market(), **TEN_BAR_PARAMS)
    eq = res["equity"]
    assert_identity(res, 1000.0)

    # t0: target 0, flat.
    assert eq[0] == 1000.0

    # t1: funding 0.0001 but no position coming in -> nothing. Entry at 100, sized net of its own
    #   costs (engine.md): cost(q) = q·(100·0.001 + 100·0.0005) = 0.15·q, q = 0.8·(1000 − 0.15·q)/100
    #   -> q = 800/(100 + 0.8·0.15) = 800/100.12. a = q, b = −q, entry 100.
    #   Spot buy 100q, transfer MB = N/4 = 25q, spot fee 0.1q from cash: cash = 1000 − 125.1q
    #   (= the perp fee 0.05q: the spot wallet keeps exactly the perp leg's cost); MB = 25q − 0.05q.
    #   Close S = M = 101: equity = 1000 − 125.1q + 101q + 24.95q − q = 1000 − 0.15q.
    q = 800.0 / 100.12
    assert close(q, 7.990411506192569)
    assert close(res["spot_qty"][1], q) and close(res["perp_qty"][1], -q)
    assert close(res["cash"][1], 1000.0 - 125.1 * q) and close(res["cash"][1], 0.05 * q)
    assert close(res["margin_balance"][1], 24.95 * q)
    assert close(res["fees"][1], 0.15 * q)
    assert close(res["funding"][1], 0.0)
    assert close(eq[1], 1000.0 - 0.15 * q) and close(eq[1], 998.8014382740711)

    # t2: funding 0.001 at mark open 102: f = −b·m·r = 0.102q -> MB 25.052q.
    #   Close 103 both: equity 1000 − 0.15q + 0.102q.
    assert close(res["funding"][2], 0.102 * q)
    assert close(res["margin_balance"][2], 25.052 * q)
    assert close(eq[2], 1000.0 - 0.048 * q)

    # t3: no funding. Close S = 110, M = 111 (basis widens): spot_pnl 10q, perp_pnl −11q,
    #   equity 1000 − 1.048q. Adverse mark 112: 25.052q − 12q > 0.01·112q.
    assert close(res["spot_pnl"][3], 10.0 * q) and close(res["perp_pnl"][3], -11.0 * q)
    assert close(eq[3], 1000.0 - 1.048 * q)

    # t4: funding −0.0005 at mark open 112: f = q·112·(−0.0005) = −0.056q -> MB 24.996q.
    #   Close 115 both: equity 1000 − 125.1q + 115q + 24.996q − 15q = 1000 − 0.104q.
    assert close(res["funding"][4], 0.046 * q)
    assert close(eq[4], 1000.0 - 0.104 * q) and close(eq[4], 999.168997203356)

    # t5: close 120 both: same equity (hedged). Adverse 121: 24.996q − 21q > 1.21q, no liquidation.
    assert close(eq[5], 1000.0 - 0.104 * q)
    assert res["liquidation_fees"][5] == 0.0 and close(res["perp_qty"][5], -q)

    # t6: funding 0.0002 at mark open 122: 0.0244q -> MB 25.0204q.
    #   Adverse mark 130: 25.0204q − 30q ≤ MM = 1.3q -> liquidated.
    #   P = (MB + cum − b·entry)/(|b|·mmr − b) = (25.0204q + 100q)/(1.01q) = 125.0204/1.01
    #     = 123.78257425742574 (q cancels) > mark open 122 -> fills at P.
    #   MB += −q·(P − 100) − 0.005·q·P = q·(125.0204 − 1.005·P) = 0.005·q·P (≥ 0, no insurance);
    #   liquidation fee 0.005·q·P; MB -> cash. Close S = 125: equity = cash + 125q.
    P = 125.0204 / 1.01
    assert close(P, 123.78257425742574)
    assert close(res["perp_qty"][6], 0.0) and close(res["spot_qty"][6], q)
    assert close(res["margin_balance"][6], 0.0)
    assert close(res["cash"][6], 1000.0 - 125.1 * q + 0.005 * q * P)
    assert close(res["liquidation_fees"][6], 0.005 * q * P)
    assert res["insurance_fund_loss"][6] == 0.0
    assert close(res["perp_pnl"][6], -22.0 * q - q * (P - 122.0))
    assert close(res["spot_pnl"][6], 25.0 * q)
    assert close(eq[6], 1000.0 - 0.1 * q + 0.005 * q * P) and close(eq[6], 1004.1463273774441)
    assert close(P, liquidation_price("short", 100.0, q, 25.0204 * q, mmr=0.01))
    liq = res["events"][1]
    assert liq["kind"] == "liquidation_perp" and liq["bar"] == 6
    assert close(liq["perp_price"], P) and close(liq["cost"], 0.005 * q * P)
    assert res["n_liquidations"] == 1
    # margin management is off: the run says so
    assert res["warnings"] == [{"kind": "liquidated_without_margin_management", "count": 1, "first_bar": 6}]

    # t7: funding 0.0001 but the perp is gone -> nothing. target 1 = the liquidated direction ->
    #   locked, after_liquidation="close": the spot leg is sold at the open 124 (spot_pnl 24q),
    #   cash += 124q − fee 0.124q. Equity 1000 − 1.224q + 0.005qP.
    E9 = 1000.0 - 1.224 * q + 0.005 * q * P
    assert close(res["funding"][7], 0.0704 * q)
    assert close(res["spot_qty"][7], 0.0)
    assert close(res["fees"][7], 0.15 * q + 0.124 * q)
    assert close(eq[7], E9) and close(eq[7], 995.1651048444836)

    # t8: target 0 -> the lock is released; flat, no trade.
    assert close(eq[8], eq[7])

    # t9: target 1 -> re-entry (allowed: the target differed from +1 at bar 8), E_open = E9, flat:
    #   cost(q9) = q9·(130·0.001 + 130.5·0.0005) = 0.19525·q9 -> q9 = 0.8·E9/(130 + 0.8·0.19525).
    #   The perp sells at perp_open 130.5 with mark 130: perp_pnl += (b' − b)·(mark_open − perp_open)
    #   = 0.5·q9; entry 130.5. cash = E9 − 130q9 − 32.5q9 − 0.13q9, MB = 32.5q9 − 0.06525q9.
    #   Close 131 both: equity = cash + 131q9 + MB − 0.5q9 = E9 + 0.30475·q9.
    q9 = 0.8 * E9 / 130.1562
    assert close(res["spot_qty"][9], q9) and close(res["perp_qty"][9], -q9)
    assert close(res["cash"][9], E9 - 162.63 * q9)
    assert close(res["margin_balance"][9], 32.43475 * q9)
    assert close(res["fees"][9], 0.274 * q + 0.19525 * q9)
    assert close(res["perp_pnl"][9], -22.0 * q - q * (P - 122.0) + 0.5 * q9 - q9)
    assert close(res["spot_pnl"][9], 24.0 * q + q9)
    assert close(eq[9], E9 + 0.30475 * q9) and close(eq[9], 997.0291824109851)

    assert res["n_trades"] == 3
    assert kinds(res) == [(1, "entry"), (6, "liquidation_perp"), (7, "exit"), (9, "entry")]
    entry_event = res["events"][0]
    assert close(entry_event["cost"], 0.15 * q)
    assert entry_event["spot_price"] == 100.0 and entry_event["perp_price"] == 100.0
    assert close(entry_event["spot_qty"], q) and close(entry_event["perp_qty"], -q)
    assert close(res["events"][3]["cost"], 0.19525 * q9)


# ---------------------------------------------------------------------------------------------------
# Funding timing (DESIGN §2): not received on the opening bar, received on the closing bar
# ---------------------------------------------------------------------------------------------------


def test_funding_on_opening_and_closing_bars():
    # L = 1, E = 1000 -> q = 5 at 100. Events of 0.001 on every bar.
    #   t1 entry: not received; t2 held: 5·100·0.001 = 0.5; t3 exit at the open: received 0.5; t4 flat.
    res = run(market([100.0] * 5, funding=[0.001] * 5, target=[0, 1, 1, 0, 0]), capital=1000.0, **NO_COSTS)
    assert [round(x, 12) for x in res["funding"]] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert close(res["equity"][-1], 1001.0)
    assert_identity(res, 1000.0)


def test_reverse_carry_collects_negative_funding():
    # reverse: b = +7.5 (long perp); f = −b·m·r = −7.5·100·(−0.001) = +0.75
    res = run(market([100.0] * 3, funding=[NAN, -0.001, 0.001], target=[-1, -1, -1]), capital=1000.0, **NO_COSTS)
    assert close(res["funding"][1], 0.75)
    assert close(res["funding"][2], 0.0)  # then pays 0.75 back
    assert_identity(res, 1000.0)


# ---------------------------------------------------------------------------------------------------
# Accounting identity and constant equity
# ---------------------------------------------------------------------------------------------------


def test_constant_equity_without_funding_costs_or_basis():
    # perp ≡ spot ≡ mark, no funding, no costs, no borrow: every position is delta-neutral by
    # quantity, so equity stays at capital through entries, flips, exits and rebalances.
    prices = [100.0, 103.0, 98.0, 105.0, 110.0, 104.0, 97.0, 95.0, 101.0, 108.0, 112.0, 106.0]
    spot = []
    for t, c in enumerate(prices):
        o = prices[t - 1] * 1.01 if t else c
        spot.append((o, max(o, c) * 1.01, min(o, c) * 0.99, c))
    tgt = [1, 1, 1, -1, -1, 0, 1, 1, -1, -1, 0, 0]
    for lev in (1.0, 3.0):
        for every in (0, 2):
            res = run(
                market(spot, target=tgt),
                capital=1000.0,
                leverage=lev,
                spot_leverage=3.0,
                rebalance_every=every,
                **NO_COSTS,
            )
            assert res["n_liquidations"] == 0
            for e in res["equity"]:
                assert close(e, 1000.0)
            assert_identity(res, 1000.0)
            if every:
                assert any(ev["kind"] == "rebalance" for ev in res["events"])


def test_identity_on_hand_made_markets():
    # a few small hand-made markets touching every component
    mk = [
        ten_bar_market(),
        market(
            [
                (100.0, 101.0, 99.0, 100.5),
                (101.0, 104.0, 100.0, 103.0),
                (102.0, 102.0, 95.0, 96.0),
                (96.0, 99.0, 96.0, 98.0),
                (NAN, NAN, NAN, 99.0),
                (97.0, 98.0, 90.0, 91.0),
            ],
            mark=[
                (100.2, 101.0, 99.0, 100.4),
                (101.3, 105.0, 100.0, 103.1),
                (101.8, 102.0, 94.0, 96.2),
                (96.1, 99.5, 96.0, 98.3),
                (NAN, NAN, NAN, 99.1),
                (97.2, 98.0, 89.0, 91.3),
            ],
            perp_open=[100.1, 101.4, 101.7, 96.3, NAN, 97.1],
            funding=[0.0003, NAN, -0.0004, 0.001, 0.0002, -0.002],
            borrow=[NAN, 0.0002, NAN, 0.00001, NAN, 0.0001],
            spot_volume=[50.0, NAN, 80.0, 10.0, NAN, 30.0],
            perp_volume=[500.0, 400.0, NAN, 100.0, 1.0, 2.0],
            target=[1, -1, -1, 0, 1, 1],
        ),
    ]
    for m in mk:
        for lev in (1.0, 5.0, 30.0):
            res = run(
                m,
                bar_hours=8.0,
                capital=1000.0,
                leverage=lev,
                spot_fee=0.001,
                perp_fee=0.0005,
                half_spread_bps=1.5,
                slippage_bps=2.0,
                slippage_k=0.05,
                mmr=0.01,
                liquidation_fee=0.005,
                borrow_rate=0.00001,
                tiers=None,
            )
            assert_identity(res, 1000.0)
            assert res["spread"][-1] > 0.0 and res["slippage"][-1] > 0.0


# ---------------------------------------------------------------------------------------------------
# Reverse carry: borrow interest
# ---------------------------------------------------------------------------------------------------


def test_reverse_carry_pays_borrow():
    # 8h bars, L = 1, Ls = 3, E = 1000: a = −7.5, b = +7.5 at 100, cash 1000, MB 750.
    # t0: borrow from the data 0.0001/h: 7.5·100·0.0001·8 = 0.6.
    # t1: funding −0.0002 at mark open 105: f = −7.5·105·(−0.0002) = 0.1575;
    #     borrow NaN -> parameter 0.00005/h on the close 110: 7.5·110·0.00005·8 = 0.33.
    # t2: exit at the open (target 0): no borrow afterwards though the data says 0.001.
    spot = [100.0, (105.0, 110.0, 105.0, 110.0), 110.0]
    res = run(
        market(spot, funding=[NAN, -0.0002, NAN], borrow=[0.0001, NAN, 0.001], target=[-1, -1, 0]),
        bar_hours=8.0,
        capital=1000.0,
        leverage=1.0,
        spot_leverage=3.0,
        **{**NO_COSTS, "borrow_rate": 0.00005},
    )
    assert close(res["borrow"][0], 0.6)
    assert close(res["borrow"][1], 0.93)
    assert close(res["borrow"][2], 0.93)
    assert close(res["funding"][2], 0.1575)
    assert close(res["equity"][0], 999.4)
    assert close(res["equity"][1], 1000.0 - 0.93 + 0.1575)
    assert close(res["equity"][2], 1000.0 - 0.93 + 0.1575)
    assert close(res["cash"][1], 1000.0 - 0.93)  # borrow from the spot wallet
    assert close(res["margin_balance"][1], 750.0 + 0.1575)  # funding into the futures wallet
    assert kinds(res) == [(0, "entry"), (2, "exit")]
    assert_identity(res, 1000.0)


# ---------------------------------------------------------------------------------------------------
# Spot-margin liquidation (reverse carry)
# ---------------------------------------------------------------------------------------------------


def test_spot_margin_liquidation_fills_at_R_then_closes_the_perp():
    # Reverse, E = 1000, L = 1, Ls = 3: a = −7.5, b = 7.5, cash 1000, MB 750, entry 100.
    # t1: spot high 125: margin level 1000/(7.5·125) = 1.0667 ≤ 1.1 -> repaid at
    #     R = cash/(1.1·7.5) = 1000/8.25 = 121.2121…, the open 105 is below R -> at R.
    #     cash −= 7.5·R·(1 + 0.005) -> 1000 − 7.5375·R = 86.3636…; liquidation fee 0.0375·R.
    #     spot_pnl = −7.5·(R − 100). Perp (long, adverse mark low 105) survives.
    #     Close 120: equity = cash + 750 + 7.5·(120 − 100).
    # t2: target −1 is locked, "close": the perp is sold at 120 -> MB 750 + 150 -> cash.
    spot = [100.0, (105.0, 125.0, 105.0, 120.0), 120.0, 120.0]
    mark = [100.0, (105.0, 121.0, 105.0, 120.0), 120.0, 120.0]
    res = run(
        market(spot, mark=mark, target=[-1, -1, -1, -1]),
        capital=1000.0,
        leverage=1.0,
        spot_leverage=3.0,
        **{**NO_COSTS, "liquidation_fee": 0.005},
    )
    R = 1000.0 / 8.25
    assert close(res["spot_qty"][1], 0.0) and close(res["perp_qty"][1], 7.5)
    assert close(res["cash"][1], 1000.0 - 7.5375 * R)
    assert close(res["liquidation_fees"][1], 0.0375 * R)
    assert close(res["spot_pnl"][1], -7.5 * (R - 100.0))
    assert close(res["equity"][1], 1000.0 - 7.5375 * R + 750.0 + 150.0)
    assert close(res["equity"][1], 986.3636363636364)
    assert res["insurance_fund_loss"][1] == 0.0
    assert kinds(res) == [(0, "entry"), (1, "liquidation_spot"), (2, "exit")]
    assert close(res["events"][1]["spot_price"], R)
    assert close(res["perp_qty"][2], 0.0)
    assert close(res["cash"][2], res["equity"][1])
    assert close(res["equity"][3], 986.3636363636364)
    assert res["n_liquidations"] == 1 and res["n_trades"] == 2
    assert_identity(res, 1000.0)


@pytest.mark.parametrize(
    "spot_open, cash_after, insurance",
    [
        (130.0, 1000.0 - 7.5 * 130.0 * 1.005, 0.0),  # 20.125
        (140.0, 0.0, 7.5 * 140.0 * 1.005 - 1000.0),  # 1055.25 − 1000 = 55.25 to the insurance fund
    ],
)
def test_spot_margin_liquidation_opened_beyond_R(spot_open, cash_after, insurance):
    # the bar opens at or beyond R = 121.21… -> the loan is repaid at the open
    spot = [100.0, (spot_open, spot_open, spot_open, spot_open)]
    res = run(
        market(spot, target=[-1, -1]),
        capital=1000.0,
        leverage=1.0,
        spot_leverage=3.0,
        **{**NO_COSTS, "liquidation_fee": 0.005},
    )
    assert close(res["events"][1]["spot_price"], spot_open)
    assert close(res["cash"][1], cash_after)
    assert close(res["insurance_fund_loss"][1], insurance)
    assert_identity(res, 1000.0)


# ---------------------------------------------------------------------------------------------------
# Perp liquidation opened beyond P; after_liquidation close vs hold
# ---------------------------------------------------------------------------------------------------


def gap_up_market(targets):
    # t0 100; t1 gaps up to 130 (mark high 131); t2 135; t3 137 -> 140; t4 138; t5 138
    spot = [100.0, (130.0, 131.0, 130.0, 130.0), 135.0, (137.0, 140.0, 137.0, 140.0), 138.0, 138.0]
    return market(spot, target=targets)


LIQ_PARAMS = dict(capital=1000.0, leverage=4.0, mmr=0.01, **{**NO_COSTS, "liquidation_fee": 0.005})


def test_perp_liquidation_opened_beyond_P_insurance_fund():
    # carry L = 4: q = 8, MB = 200, entry 100. t1 opens at 130 beyond P = (200 + 800)/8.08 = 123.76
    #   -> fills at the mark open 130: MB = 200 − 8·30 − 0.005·8·130 = −45.2 -> insurance 45.2, MB 0.
    #   equity = 8·130 = 1040 = 1000 + 240 − 240 − 5.2 + 45.2.
    res = run(gap_up_market([1, 1, 0, 0, 0, 0]), **LIQ_PARAMS)
    ev = res["events"][1]
    assert ev["kind"] == "liquidation_perp" and ev["bar"] == 1 and ev["perp_price"] == 130.0
    assert close(res["insurance_fund_loss"][1], 45.2)
    assert close(res["liquidation_fees"][1], 5.2)
    assert close(res["perp_pnl"][1], -240.0)
    assert close(res["equity"][1], 1040.0)
    assert_identity(res, 1000.0)


def test_after_liquidation_close_vs_hold():
    tgt = [1, 1, 1, 1, 0, 1]
    closed = run(gap_up_market(tgt), **{**LIQ_PARAMS, "after_liquidation": "close"})
    held = run(gap_up_market(tgt), **{**LIQ_PARAMS, "after_liquidation": "hold"})
    # close: the spot leg is sold at the next open (t2, 135): equity 8·135 = 1080 from then on;
    #   t4 target 0 releases the lock; t5 re-enters with E = 1080: q = 0.8·1080/138.
    assert kinds(closed) == [(0, "entry"), (1, "liquidation_perp"), (2, "exit"), (5, "entry")]
    assert [round(x, 9) for x in closed["spot_qty"][:5]] == [8.0, 8.0, 0.0, 0.0, 0.0]
    assert close(closed["equity"][2], 1080.0) and close(closed["equity"][4], 1080.0)
    assert close(closed["spot_qty"][5], 0.8 * 1080.0 / 138.0)
    # hold: the spot leg is kept unhedged while target stays +1 (t2, t3: 1080, 1120), sold when the
    #   target differs (t4 at 138: 1104), re-entry at t5 with q = 0.8·1104/138 = 6.4.
    assert kinds(held) == [(0, "entry"), (1, "liquidation_perp"), (4, "exit"), (5, "entry")]
    assert [round(x, 9) for x in held["spot_qty"][:4]] == [8.0, 8.0, 8.0, 8.0]
    assert [round(x, 9) for x in held["perp_qty"][:4]] == [-8.0, 0.0, 0.0, 0.0]
    assert close(held["equity"][2], 1080.0) and close(held["equity"][3], 1120.0)
    assert close(held["equity"][4], 1104.0)
    assert close(held["spot_qty"][5], 6.4)
    for res in (closed, held):
        assert res["n_liquidations"] == 1 and res["n_trades"] == 3
        assert_identity(res, 1000.0)


def test_reenter_sizes_a_full_pair_at_the_next_open():
    # carry L = 4, q = 8, MB 200, cash 0. t1 opens at 130 beyond P -> perp filled at 130, MB −45.2 to
    # the insurance fund; the spot leg (8) stays. after_liquidation="reenter", target still +1:
    # t2 (open 135): E_open = 8·135 = 1080, q' = 0.8·1080/135 = 6.4 (no costs); netted against the
    # remaining leg: sell 1.6 spot (+216 cash), short 6.4 perp, MB = 6.4·135/4 = 216 -> cash 0.
    # One trade, kind "reentry"; hedged afterwards: equity 1080 to the end, no lock.
    res = run(gap_up_market([1] * 6), **{**LIQ_PARAMS, "after_liquidation": "reenter"})
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (2, "reentry")]
    assert close(res["spot_qty"][2], 6.4) and close(res["perp_qty"][2], -6.4)
    assert close(res["margin_balance"][2], 216.0) and close(res["cash"][2], 0.0)
    assert close(res["equity"][1], 1040.0)
    assert all(close(e, 1080.0) for e in res["equity"][2:])
    assert res["n_trades"] == 2 and res["n_liquidations"] == 1
    ev = res["events"][2]
    assert ev["spot_price"] == 135.0 and ev["perp_price"] == 135.0
    assert_identity(res, 1000.0)
    # the same with "close": flat from t2 to the end although the target is +1 -> the warning
    closed = run(gap_up_market([1] * 6), **LIQ_PARAMS)
    assert kinds(closed) == [(0, "entry"), (1, "liquidation_perp"), (2, "exit")]
    assert closed["warnings"] == [
        {"kind": "liquidated_without_margin_management", "count": 1, "first_bar": 1},
        {"kind": "target_unfilled_after_liquidation", "liquidation_bar": 1, "direction": 1, "unfilled_bars": 4},
    ]
    # released lock (target 0 at t4) or "hold": no unfilled warning
    assert len(run(gap_up_market([1, 1, 1, 1, 0, 1]), **LIQ_PARAMS)["warnings"]) == 1
    assert len(run(gap_up_market([1] * 6), **{**LIQ_PARAMS, "after_liquidation": "hold"})["warnings"]) == 1
    # with margin management on, the first warning goes
    managed = run(gap_up_market([1] * 6), rebalance_every=100, **LIQ_PARAMS)
    assert [w["kind"] for w in managed["warnings"]] == ["target_unfilled_after_liquidation"]


def test_reenter_with_costs_nets_the_trade_against_the_remaining_leg():
    # as above with fees 0.001 (spot) + 0.0005 (perp): entry q0 = 800/(100 + 0.8·0.15) = 800/100.12,
    # cash 0.05·q0 (the perp fee), MB 25q0 − 0.05q0. t1: filled at 130, MB = 24.95q0 − 30q0 < 0 -> 0.
    # t2 (135): E = 0.05q0 + 135q0; the re-entry sells q0 − q spot and shorts q perp:
    #   cost(q) = 0.135·(q0 − q) + 0.0675·q -> q = 0.8·(E − 0.135·q0 + 0.0675·q)/135
    #   -> q = 0.8·(E − 0.135·q0)/(135 − 0.054).
    q0 = 800.0 / 100.12
    fees = {"spot_fee": 0.001, "perp_fee": 0.0005}
    res = run(gap_up_market([1] * 6), **{**LIQ_PARAMS, **fees, "after_liquidation": "reenter"})
    E = 135.05 * q0
    q = 0.8 * (E - 0.135 * q0) / 134.946
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (2, "reentry")]
    assert close(res["spot_qty"][2], q) and close(res["perp_qty"][2], -q)
    assert close(res["events"][2]["cost"], 0.135 * (q0 - q) + 0.0675 * q)
    assert_identity(res, 1000.0)


def test_reenter_waits_for_a_non_gap_bar_and_follows_a_changed_target():
    # t2 is a gap bar (spot opens missing): nothing executes; the re-entry comes at t3 (open 137):
    #   E = 8·137 = 1096, q' = 0.8·1096/137 = 6.4.
    mkt = gap_up_market([1] * 6)
    for key in ("spot_open", "spot_high", "spot_low", "spot_close"):
        mkt[key][2] = NAN
    res = run(mkt, **{**LIQ_PARAMS, "after_liquidation": "reenter"})
    assert res["gap_bars"] == [2]
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (3, "reentry")]
    assert close(res["spot_qty"][3], 6.4)
    assert_identity(res, 1000.0)
    # target 0 at the first bar after the liquidation: the remaining leg is closed ("exit"), the
    # re-entry is disarmed, and a later +1 is a plain entry
    res = run(gap_up_market([1, 1, 0, 1, 1, 1]), **{**LIQ_PARAMS, "after_liquidation": "reenter"})
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (2, "exit"), (3, "entry")]
    # the opposite target: a flip from the remaining spot leg
    res = run(gap_up_market([1, 1, -1, -1, -1, -1]), **{**LIQ_PARAMS, "after_liquidation": "reenter"})
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (2, "flip")]
    assert close(res["spot_qty"][2], -(1080.0 / (0.25 + 1.0 / 3.0)) / 135.0)


def test_reenter_after_a_spot_margin_liquidation():
    # reverse L = 1, Ls = 3 (a = −7.5, b = 7.5, cash 1000, MB 750); t1: spot high 125 -> loan repaid at
    # R = 1000/8.25 (no fee here): cash 1000 − 7.5·R = 90.909…; the long perp stays (MB 750).
    # t2 opens at 120 (target −1): E = cash + 750 + 7.5·(120 − 100) = 990.909…;
    #   q' = E/(1 + 1/3)/120; re-borrow and sell q', perp netted from 7.5 to q'; kind "reentry".
    spot = [100.0, (105.0, 125.0, 105.0, 120.0), 120.0, 120.0]
    mark = [100.0, (105.0, 121.0, 105.0, 120.0), 120.0, 120.0]
    res = run(
        market(spot, mark=mark, target=[-1] * 4),
        capital=1000.0,
        leverage=1.0,
        spot_leverage=3.0,
        after_liquidation="reenter",
        **NO_COSTS,
    )
    R = 1000.0 / 8.25
    E = 1000.0 - 7.5 * R + 750.0 + 150.0
    assert kinds(res) == [(0, "entry"), (1, "liquidation_spot"), (2, "reentry")]
    assert close(res["equity"][1], E)
    assert close(res["spot_qty"][2], -0.75 * E / 120.0) and close(res["perp_qty"][2], 0.75 * E / 120.0)
    assert all(close(e, E) for e in res["equity"][1:])
    assert_identity(res, 1000.0)


@pytest.mark.parametrize("after", ["close", "reenter"])
def test_liquidation_loss_margin(after):
    # carry L = 4, mmr 0.01, liquidation fee 0.005: q = 8, MB = 200, entry 100.
    # t1: open 110, mark high 125 > P = 1000/8.08 = 123.76 -> filled at P (the open is below it):
    #   MB after the fill and the fee = 200 − 8·(P − 100) − 0.04·P = 1000 − 8.04·P = 0.04·P ≥ 0.
    #   "fee": 0.04·P back to cash, liquidation_fees 0.04·P; "margin": it is forfeited too,
    #   liquidation_fees 0.08·P, cash 0. Close 120: equity 960 + 0.04·P vs 960.
    P = 1000.0 / 8.08
    spot = [100.0, (110.0, 125.0, 110.0, 120.0)]
    params = {**LIQ_PARAMS, "after_liquidation": after}
    fee = run(market(spot, target=[1, 1]), **params)
    margin = run(market(spot, target=[1, 1]), **params, liquidation_loss="margin")
    assert close(fee["liquidation_fees"][1], 0.04 * P) and close(fee["cash"][1], 0.04 * P)
    assert close(margin["liquidation_fees"][1], 0.08 * P) and close(margin["cash"][1], 0.0)
    assert close(fee["equity"][1], 960.0 + 0.04 * P) and close(margin["equity"][1], 960.0)
    assert close(margin["events"][1]["cost"], 0.08 * P)
    assert margin["insurance_fund_loss"][1] == 0.0
    for res in (fee, margin):
        assert res["events"][1]["kind"] == "liquidation_perp" and close(res["events"][1]["perp_price"], P)
        assert_identity(res, 1000.0)
    # opened beyond P (gap up to 130): MB < 0 goes to the insurance fund, nothing is left to forfeit
    a = run(gap_up_market([1, 1, 0, 0, 0, 0]), **LIQ_PARAMS)
    b = run(gap_up_market([1, 1, 0, 0, 0, 0]), **{**LIQ_PARAMS, "liquidation_loss": "margin"})
    for key in ("equity", "liquidation_fees", "insurance_fund_loss", "cash"):
        assert a[key] == b[key]


def test_liquidation_loss_does_not_touch_the_spot_margin_liquidation():
    spot = [100.0, (105.0, 125.0, 105.0, 120.0), 120.0]
    mkt = market(spot, target=[-1, -1, 0])
    params = dict(capital=1000.0, leverage=1.0, spot_leverage=3.0, **{**NO_COSTS, "liquidation_fee": 0.005})
    a = run(mkt, **params)
    b = run(mkt, liquidation_loss="margin", **params)
    assert kinds(a) == kinds(b) == [(0, "entry"), (1, "liquidation_spot"), (2, "exit")]
    assert a["equity"] == b["equity"] and a["liquidation_fees"] == b["liquidation_fees"]


def test_lock_never_re_enters_the_liquidated_direction_but_may_flip():
    # target stays +1 forever: no re-entry after the liquidation
    res = run(gap_up_market([1] * 6), **LIQ_PARAMS)
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (2, "exit")]
    assert res["spot_qty"][-1] == 0.0
    # the opposite direction is allowed at once: reverse carry entered at t2 with E = 1080:
    #   N = 1080/(1/4 + 1/3), q = N/135
    res = run(gap_up_market([1, 1, -1, -1, -1, -1]), **LIQ_PARAMS)
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (2, "flip")]
    assert close(res["spot_qty"][2], -(1080.0 / (0.25 + 1.0 / 3.0)) / 135.0)
    assert_identity(res, 1000.0)


def test_flip_is_one_netted_trade():
    # carry L = 1 at 100 with fees 0.001 + 0.0005: q0 = 0.5·(1000 − 0.15·q0)/100 -> q0 = 500/100.075;
    # equity after it E1 = 1000 − 0.15·q0. Reverse at 100 (factor 1/(1 + 1/3) = 0.75), netted:
    #   Δa = −(q + q0), Δb = q + q0, cost 0.15·(q + q0): q = 0.75·(E1 − 0.15·(q + q0))/100
    #   -> q = 0.75·(E1 − 0.15·q0)/100.1125. One trade.
    res = run(
        market([100.0] * 3, target=[1, -1, -1]), capital=1000.0, **{**NO_COSTS, "spot_fee": 0.001, "perp_fee": 0.0005}
    )
    assert kinds(res) == [(0, "entry"), (1, "flip")]
    q0 = 500.0 / 100.075
    E1 = 1000.0 - 0.15 * q0
    q = 0.75 * (E1 - 0.15 * q0) / 100.1125
    assert close(res["spot_qty"][0], q0)
    assert close(res["spot_qty"][1], -q) and close(res["perp_qty"][1], q)
    assert close(res["events"][1]["cost"], 0.15 * (q + q0))
    assert res["n_trades"] == 2
    assert_identity(res, 1000.0)


def test_tiered_perp_liquidation():
    # carry L = 10, E = 10,000: N = 10,000·10/11, q = N/100, MB = N/10: notional 9,090.9 in the
    # third tier (mmr 0.05, cum 332). The fill is the tiered liquidation price, at which
    # MB + b·(P − entry) = MM(|b|·P).
    N = 10_000.0 * 10.0 / 11.0
    q = N / 100.0
    spot = [100.0, (100.0, 110.0, 100.0, 109.0)]
    res = run(
        market(spot, target=[1, 1]),
        capital=10_000.0,
        leverage=10.0,
        tiers=TIERS,
        **{**NO_COSTS, "liquidation_fee": 0.005},
    )
    P = liquidation_price("short", 100.0, q, N / 10.0, tiers=TIERS)
    assert 100.0 < P < 110.0
    assert close(N / 10.0 - q * (P - 100.0), maintenance_margin(q * P, TIERS))
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp")]
    assert close(res["events"][1]["perp_price"], P)
    assert_identity(res, 10_000.0)


def test_nan_mark_high_uses_the_close():
    # short perp, L = 4, P = 123.76: the high is NaN and the close (125) is beyond P -> liquidated
    spot = [100.0, (110.0, 126.0, 110.0, 125.0)]
    mark = [100.0, (110.0, NAN, 110.0, 125.0)]
    res = run(market(spot, mark=mark, target=[1, 1]), **LIQ_PARAMS)
    assert res["n_liquidations"] == 1
    assert close(res["events"][1]["perp_price"], 1000.0 / 8.08)
    assert_identity(res, 1000.0)


# ---------------------------------------------------------------------------------------------------
# Rebalancing
# ---------------------------------------------------------------------------------------------------


def cushion_market(closes, funding=None, perp_open=None):
    # spot ≡ mark; bar t opens at the close of t−1 (t0 at 100) and moves straight to its close
    bars, prev = [], 100.0
    for c in closes:
        bars.append((prev, max(prev, c), min(prev, c), c))
        prev = c
    return market(bars, funding=funding, perp_open=perp_open, target=[1] * len(closes))


CUSHION_PARAMS = dict(capital=1000.0, leverage=4.0, mmr=0.01, **NO_COSTS)


def test_rebalance_at_fires_half_way_to_the_liquidation_price():
    # carry L = 4, mmr 0.01, no costs: q = 8, MB = 200, entry 100 at the open of t0.
    # C(M) = MB − 8·(M − 100) − 0.01·8·M = 1000 − 8.08·M, linear in the mark; C0 = C(100) = 192;
    # P = 1000/8.08 = 123.762…, where C = 0. rebalance_at = 0.5: C ≤ 96 <=> M ≥ 904/8.08 = 111.881…,
    # the midpoint of [100, P].
    P = 1000.0 / 8.08
    threshold = 904.0 / 8.08
    assert close(threshold, 0.5 * (100.0 + P))
    assert close(P, liquidation_price("short", 100.0, 8.0, 200.0, mmr=0.01))
    # closes: t0 100 (C 192), t1 110 (C 111.2), t2 111.8 (C 96.656 > 96), t3 112 (C 95.04 ≤ 96)
    # -> re-sized at the open of t4 (112): E = 1000, q' = 800/112, MB = 200, entry 112;
    #    C0' = 200 − 0.01·800 = 192 and C stays there (closes 112): no further rebalance.
    closes = [100.0, 110.0, 111.8, 112.0, 112.0, 112.0]
    res = run(cushion_market(closes), rebalance_at=0.5, **CUSHION_PARAMS)
    assert kinds(res) == [(0, "entry"), (4, "rebalance")]
    assert close(res["spot_qty"][3], 8.0)
    assert close(res["spot_qty"][4], 800.0 / 112.0) and close(res["perp_qty"][4], -800.0 / 112.0)
    assert close(res["margin_balance"][4], 200.0) and close(res["cash"][4], 0.0)
    assert all(close(e, 1000.0) for e in res["equity"])
    assert res["n_trades"] == 2 and res["warnings"] == []
    assert_identity(res, 1000.0)
    # x = 0.6 waits for C ≤ 76.8 (M ≥ 114.26…): never here; off (None or inf): never.
    for x in (0.6, None, INF):
        assert kinds(run(cushion_market(closes), rebalance_at=x, **CUSHION_PARAMS)) == [(0, "entry")]
    # x = 0.3: C ≤ 134.4 <=> M ≥ 107.128…: the close of t1 (110) already -> re-sized at t2's open (110)
    res = run(cushion_market(closes), rebalance_at=0.3, **CUSHION_PARAMS)
    assert kinds(res) == [(0, "entry"), (2, "rebalance")]


def test_rebalance_at_funding_moves_the_cushion():
    # As above (x = 0.5, trigger at C ≤ 96). Funding received raises C, paid lowers it:
    # - t3 opens at 111.8 with a rate +0.002: f = −b·m·r = 8·111.8·0.002 = 1.7888 into MB, so at the
    #   close of t3 (112) C = 95.04 + 1.7888 = 96.8288 > 96: no rebalance at t4.
    closes = [100.0, 110.0, 111.8, 112.0, 112.0, 112.0]
    res = run(cushion_market(closes, funding=[NAN, NAN, NAN, 0.002, NAN, NAN]), rebalance_at=0.5, **CUSHION_PARAMS)
    assert kinds(res) == [(0, "entry")]
    assert close(res["funding"][-1], 1.7888)
    # - t2 opens at 110 with a rate −0.001: f = −0.88, so at the close of t2 (111.8)
    #   C = 96.656 − 0.88 = 95.776 ≤ 96: re-sized one bar earlier, at t3's open (111.8).
    res = run(cushion_market(closes, funding=[NAN, NAN, -0.001, NAN, NAN, NAN]), rebalance_at=0.5, **CUSHION_PARAMS)
    assert kinds(res) == [(0, "entry"), (3, "rebalance")]
    assert close(res["spot_qty"][3], 0.8 * (1000.0 - 0.88) / 111.8)


def test_rebalance_at_c0_is_taken_after_the_costs_at_the_mark_open():
    # carry L = 4, mmr 0.01, perp fee 0.0005 only; t0: spot = mark open 100, the perp sells at 100.5.
    #   cost(q) = 0.0005·100.5·q = 0.05025q -> q = 0.8·(1000 − 0.05025q)/100 = 800/100.0402.
    #   MB = N/L − fee = 25q − 0.05025q = 24.94975q, entry 100.5.
    #   C0 = MB + b·(mark_open − entry) − MM(q·mark_open) = 24.94975q + 0.5q − q = 24.44975q.
    #   C(M) = 24.94975q − q·(M − 100.5) − 0.01·q·M = q·(125.44975 − 1.01·M).
    #   x = 0.5: C ≤ 12.224875q <=> M ≥ 113.224875/1.01 = 112.1038…
    #   close 112.1 -> C = 12.22875q: no; close 112.11 -> C = 12.21865q: re-sized at the next open.
    #   (C0 without the fee, 24.5q, would fire at 112.1; C0 at the perp price, 23.94475q, or without
    #   the basis, 23.94975q, would not fire at 112.11.)
    q = 800.0 / 100.0402
    params = {**CUSHION_PARAMS, "perp_fee": 0.0005}
    closes = [100.0, 112.1, 112.1, 112.1]
    res = run(cushion_market(closes, perp_open=[100.5, 100.0, 112.1, 112.1]), rebalance_at=0.5, **params)
    assert close(res["perp_qty"][0], -q) and close(res["margin_balance"][0], 24.94975 * q)
    assert kinds(res) == [(0, "entry")]
    closes = [100.0, 112.11, 112.11, 112.11]
    res = run(cushion_market(closes, perp_open=[100.5, 100.0, 112.11, 112.11]), rebalance_at=0.5, **params)
    assert kinds(res) == [(0, "entry"), (2, "rebalance")]
    assert_identity(res, 1000.0)


def test_rebalance_at_is_validated():
    for bad in (0.0, 1.0, 1.5, -0.2):
        with pytest.raises(ValueError, match="rebalance_at"):
            run(market([100.0]), rebalance_at=bad)
    with pytest.raises(ValueError, match="spot_rebalance_level"):
        run(market([100.0]), spot_rebalance_level=1.1, spot_liquidation_level=1.1)
    with pytest.raises(ValueError, match="liquidation_loss"):
        run(market([100.0]), liquidation_loss="all")
    with pytest.raises(ValueError, match="after_liquidation"):
        run(market([100.0]), after_liquidation="reopen")


def test_spot_rebalance_level():
    # reverse, L = 1, Ls = 3, E = 1000, no costs: a = −7.5, b = 7.5, cash 1000, MB 750 at 100.
    # Spot margin level at the close = cash/(7.5·S) = 133.33…/S (1.333… at entry).
    # y = 1.3 fires when S ≥ 102.564…: close t1 102.5 -> 1.30081 (no), close t2 102.6 -> 1.29955 (yes)
    # -> re-sized at the open of t3 (102.6): E = 1000 (hedged), q' = 750/102.6;
    #    spot: buy back 7.5 − q', cash 1000 − (7.5 − q')·102.6 = 230.5 + 750; perp: MB 750 + 7.5·2.6 =
    #    769.5 -> transfer 19.5 back to cash so MB = 750: cash 1000, level 1000/750 again.
    closes = [100.0, 102.5, 102.6, 102.6, 102.6]
    bars, prev = [], 100.0
    for c in closes:
        bars.append((prev, c, prev, c))
        prev = c
    mkt = market(bars, target=[-1] * 5)
    params = dict(capital=1000.0, leverage=1.0, spot_leverage=3.0, **NO_COSTS)
    res = run(mkt, spot_rebalance_level=1.3, **params)
    assert kinds(res) == [(0, "entry"), (3, "rebalance")]
    assert close(res["spot_qty"][3], -750.0 / 102.6) and close(res["perp_qty"][3], 750.0 / 102.6)
    assert close(res["cash"][3], 1000.0) and close(res["margin_balance"][3], 750.0)
    assert all(close(e, 1000.0) for e in res["equity"])
    assert_identity(res, 1000.0)
    # the guides' 1.30 versus a lower level: 1.25 needs S ≥ 106.67, never here
    assert kinds(run(mkt, spot_rebalance_level=1.25, **params)) == [(0, "entry")]
    # a carry has no loan: the spot level never fires
    res = run(market(bars, target=[1] * 5), spot_rebalance_level=1.3, **params)
    assert kinds(res) == [(0, "entry")]


def test_rebalance_every():
    # prices trend up 5 per bar (S = M = perp), L = 1, fees 0.001 + 0.0005; re-sized every 3 bars:
    # sizings at 0, 3, 6, 9. Entry: q0 = 0.5·(1000 − 0.15·q0)/100 -> q0 = 500/100.075. At a rebalance
    # at price S with E_open = equity of the previous close (hedged, no funding: the open move changes
    # nothing) the position shrinks (S rises, E does not), costs 0.0015·(q_old − q)·S, so
    # q = 0.5·(E − 0.0015·(q_old − q)·S)/S -> q = (0.5·E − 0.00075·q_old·S)/(0.99925·S).
    prices = [100.0 + 5.0 * t for t in range(11)]
    spot = [(p, p + 2.0, p, p + 5.0) for p in prices]
    res = run(
        market(spot, target=[1] * 11),
        capital=1000.0,
        leverage=1.0,
        rebalance_every=3,
        **{**NO_COSTS, "spot_fee": 0.001, "perp_fee": 0.0005},
    )
    assert kinds(res) == [(0, "entry"), (3, "rebalance"), (6, "rebalance"), (9, "rebalance")]
    assert close(res["spot_qty"][0], 500.0 / 100.075)
    for ev in res["events"][1:]:
        t = ev["bar"]
        S = prices[t]
        E = res["equity"][t - 1]
        q_old = res["spot_qty"][t - 1]
        q_new = (0.5 * E - 0.00075 * q_old * S) / (0.99925 * S)
        assert q_new < q_old
        assert close(ev["spot_qty"], q_new) and close(ev["perp_qty"], -q_new)
        assert close(ev["cost"], 0.0015 * (q_old - q_new) * S)
    assert close(res["fees"][-1], sum(ev["cost"] for ev in res["events"]))
    assert res["n_trades"] == 4
    assert res["warnings"] == []
    assert_identity(res, 1000.0)


# ---------------------------------------------------------------------------------------------------
# Gaps
# ---------------------------------------------------------------------------------------------------


def test_gap_bar():
    # carry L = 1: q = 5 at 100, MB 500, cash 0.
    # t1 is a gap bar (NaN opens): its target 0 is not executed, its mark high 1000 liquidates
    #   nothing; its funding 0.001 settles at the last known mark 100: f = 5·100·0.001 = 0.5;
    #   it is marked at the last known prices (closes NaN too).
    # t2: exit at the open 102, target 0.
    spot = [100.0, (NAN, NAN, NAN, NAN), (102.0, 104.0, 102.0, 104.0), 104.0]
    mark = [100.0, (NAN, 1000.0, 1.0, NAN), (102.0, 104.0, 102.0, 104.0), 104.0]
    res = run(
        market(
            spot, mark=mark, perp_open=[100.0, NAN, 102.0, 104.0], funding=[NAN, 0.001, NAN, NAN], target=[1, 0, 0, 0]
        ),
        capital=1000.0,
        leverage=1.0,
        **NO_COSTS,
    )
    assert res["gap_bars"] == [1]
    assert close(res["spot_qty"][1], 5.0) and close(res["perp_qty"][1], -5.0)
    assert close(res["funding"][1], 0.5)
    assert close(res["equity"][1], 1000.5)
    assert res["spot_pnl"][1] == 0.0 and res["perp_pnl"][1] == 0.0
    assert res["n_liquidations"] == 0
    assert kinds(res) == [(0, "entry"), (2, "exit")]
    assert res["events"][1]["spot_price"] == 102.0
    assert close(res["equity"][3], 1000.5)
    assert_identity(res, 1000.0)


def test_gap_bar_with_known_closes_and_nan_close_on_a_traded_bar():
    # t1: gap (NaN opens) but the closes are known (101): the legs are marked there.
    # t2: opens at 103, close NaN -> marked at the last known price, the bar's open 103.
    spot = [100.0, (NAN, NAN, NAN, 101.0), (103.0, NAN, NAN, NAN), 103.0]
    res = run(
        market(spot, perp_open=[100.0, NAN, 103.0, 103.0], target=[1, 1, 1, 1]),
        capital=1000.0,
        leverage=1.0,
        **NO_COSTS,
    )
    assert res["gap_bars"] == [1]
    assert close(res["spot_pnl"][1], 5.0) and close(res["perp_pnl"][1], -5.0)
    assert close(res["spot_pnl"][2], 15.0) and close(res["spot_pnl"][3], 15.0)
    assert all(close(e, 1000.0) for e in res["equity"])
    assert_identity(res, 1000.0)


def test_perp_is_liquidated_on_a_spot_only_gap():
    # gap_up_market with the spot data missing on t1: no execution there, but the perp's mark exists,
    # so its liquidation is checked (engine.md: Liquidation): filled at the mark open 130 as before.
    mkt = gap_up_market([1, 1, 0, 0, 0, 0])
    for key in ("spot_open", "spot_high", "spot_low", "spot_close"):
        mkt[key][1] = NAN
    res = run(mkt, **LIQ_PARAMS)
    assert res["gap_bars"] == [1]
    assert kinds(res) == [(0, "entry"), (1, "liquidation_perp"), (2, "exit")]
    assert res["events"][1]["perp_price"] == 130.0
    assert close(res["insurance_fund_loss"][1], 45.2)
    # the spot leg is marked at its last known price (100) on t1: equity 8·100 + 0
    assert close(res["equity"][1], 800.0)
    assert close(res["equity"][2], 8.0 * 135.0)
    assert_identity(res, 1000.0)


def test_spot_margin_is_checked_on_a_mark_only_gap():
    # the reverse carry of test_spot_margin_liquidation_fills_at_R_then_closes_the_perp with the mark
    # (and perp) data missing on t1: the loan is still force-repaid at R = 1000/8.25 on t1; the perp
    # is marked at its last known mark (100) there.
    spot = [100.0, (105.0, 125.0, 105.0, 120.0), 120.0, 120.0]
    mark = [100.0, (NAN, NAN, NAN, NAN), 120.0, 120.0]
    res = run(
        market(spot, mark=mark, perp_open=[100.0, NAN, 120.0, 120.0], target=[-1] * 4),
        capital=1000.0,
        leverage=1.0,
        spot_leverage=3.0,
        **{**NO_COSTS, "liquidation_fee": 0.005},
    )
    R = 1000.0 / 8.25
    assert res["gap_bars"] == [1]
    assert kinds(res) == [(0, "entry"), (1, "liquidation_spot"), (2, "exit")]
    assert close(res["events"][1]["spot_price"], R)
    assert close(res["equity"][1], 1000.0 - 7.5375 * R + 750.0)
    assert close(res["equity"][3], 986.3636363636364)
    assert_identity(res, 1000.0)


# ---------------------------------------------------------------------------------------------------
# Costs: spread, slippage in bps and the participation model (volume of bar t−1)
# ---------------------------------------------------------------------------------------------------


def test_spread_and_slippage():
    # carry L = 1 at 100, entry sized net of its costs.
    # entry at t0: no volume of bar −1 -> slippage_bps 2 and spread 1.5 bps on each leg:
    #   cost(q) = 2·100q·(2e-4 + 1.5e-4) = 0.07q, q = 0.5·(1000 − 0.07q)/100 -> q = 500/100.035;
    #   slippage 2·100q·2e-4 = 0.04q, spread 0.03q.
    res0 = run(
        market([100.0] * 3, target=[1, 1, 1], spot_volume=[100.0] * 3, perp_volume=[400.0] * 3),
        capital=1000.0,
        **{**NO_COSTS, "half_spread_bps": 1.5, "slippage_bps": 2.0, "slippage_k": 0.1},
    )
    q = 500.0 / 100.035
    assert close(res0["spot_qty"][0], q)
    assert close(res0["slippage"][0], 0.04 * q)
    assert close(res0["spread"][0], 0.03 * q)
    # entry at t1 with volume[t0] (100 spot, 400 perp), k = 0.1: slippage
    #   0.1·sqrt(q/100)·100q + 0.1·sqrt(q/400)·100q, spread 0.03q, and q is the fixed point of
    #   q = 0.5·(1000 − cost(q))/100 (checked to 1e-12 relative, with the cost taken at that q).
    res1 = run(
        market([100.0] * 3, target=[0, 1, 1], spot_volume=[100.0, 1.0, 1.0], perp_volume=[400.0, 1.0, 1.0]),
        capital=1000.0,
        **{**NO_COSTS, "half_spread_bps": 1.5, "slippage_bps": 2.0, "slippage_k": 0.1},
    )
    q = res1["spot_qty"][1]
    slip = 10.0 * q * (math.sqrt(q / 100.0) + math.sqrt(q / 400.0))
    assert close(res1["slippage"][1], slip)
    assert close(res1["spread"][1], 0.03 * q)
    assert close(q, 0.5 * (1000.0 - slip - 0.03 * q) / 100.0, 1e-12)
    assert 4.0 < q < 5.0  # about 1.8% of the notional goes to slippage
    # a missing volume of bar t−1 falls back to slippage_bps, per leg: 100q·2e-4 + 10q·sqrt(q/400)
    res2 = run(
        market([100.0] * 3, target=[0, 1, 1], spot_volume=[NAN, 1.0, 1.0], perp_volume=[400.0, 1.0, 1.0]),
        capital=1000.0,
        **{**NO_COSTS, "slippage_bps": 2.0, "slippage_k": 0.1},
    )
    q = res2["spot_qty"][1]
    slip = 0.02 * q + 10.0 * q * math.sqrt(q / 400.0)
    assert close(res2["slippage"][1], slip)
    assert close(q, 0.5 * (1000.0 - slip) / 100.0, 1e-12)
    for res in (res0, res1, res2):
        assert_identity(res, 1000.0)


def test_unknown_parameter_is_rejected():
    with pytest.raises(KeyError):
        run(market([100.0]), capitol=1.0)


# ---------------------------------------------------------------------------------------------------
# Random markets: identity and bookkeeping invariants
# ---------------------------------------------------------------------------------------------------


def random_case(seed):
    rng = random.Random(seed)
    n = rng.randint(20, 80)
    vol = rng.choice([0.003, 0.02, 0.06, 0.15])
    price = 100.0
    spot, mark, perp_open, funding, borrow, svol, pvol, target = [], [], [], [], [], [], [], []
    d = 0
    for t in range(n):
        o = price * math.exp(rng.gauss(0.0, vol / 3))
        c = o * math.exp(rng.gauss(0.0, vol))
        h = max(o, c) * (1 + abs(rng.gauss(0.0, vol / 2)))
        lo = min(o, c) * (1 - min(0.5, abs(rng.gauss(0.0, vol / 2))))
        basis = rng.gauss(0.0, 0.002)
        mo, mh, ml, mc = (x * (1 + basis + rng.gauss(0.0, 0.0005)) for x in (o, h, lo, c))
        mh, ml = max(mh, mo, mc), min(ml, mo, mc)
        po = mo * (1 + rng.gauss(0.0, 0.0005))
        u = rng.random()
        if t > 0 and u < 0.05:  # gap bar
            o = mo = po = NAN
            if rng.random() < 0.5:
                c = mc = NAN
        elif t > 0 and u < 0.08:  # only the spot data missing
            o = h = lo = NAN
            if rng.random() < 0.5:
                c = NAN
        elif t > 0 and u < 0.10:  # only the perp and mark data missing
            mo = po = mh = ml = NAN
            if rng.random() < 0.5:
                mc = NAN
        if rng.random() < 0.05:
            h = NAN
        if rng.random() < 0.05:
            mh = NAN
        if rng.random() < 0.03:
            ml = NAN
        spot.append((o, h, lo, c))
        mark.append((mo, mh, ml, mc))
        perp_open.append(po)
        funding.append(rng.gauss(0.0001, 0.0005) if rng.random() < 0.4 else NAN)
        borrow.append(rng.uniform(0.0, 0.0002) if rng.random() < 0.5 else NAN)
        svol.append(rng.uniform(1.0, 1000.0) if rng.random() < 0.8 else NAN)
        pvol.append(rng.uniform(1.0, 5000.0) if rng.random() < 0.8 else NAN)
        if rng.random() < 0.15:
            d = rng.choice([-1, 0, 1])
        target.append(d)
        if not math.isnan(c):
            price = c
    params = dict(
        capital=rng.choice([1000.0, 10_000.0]),
        leverage=rng.choice([1.0, 2.0, 5.0, 10.0, 25.0]),
        spot_leverage=rng.choice([2.0, 3.0, 5.0]),
        spot_fee=rng.choice([0.0, 0.001]),
        perp_fee=rng.choice([0.0, 0.0005]),
        half_spread_bps=rng.choice([0.0, 1.0]),
        slippage_bps=rng.choice([0.0, 3.0]),
        slippage_k=rng.choice([0.0, 0.02]),
        borrow_rate=0.0000042,
        mmr=rng.choice([0.005, 0.01]),
        liquidation_fee=rng.choice([0.0, 0.005, 0.0125]),
        rebalance_at=rng.choice([None, INF, 0.3, 0.5, 0.8]),
        spot_rebalance_level=rng.choice([None, 1.2, 1.3]),
        rebalance_every=rng.choice([0, 4]),
        after_liquidation=rng.choice(["close", "hold", "reenter"]),
        liquidation_loss=rng.choice(["fee", "margin"]),
        spot_liquidation_level=1.10,
        tiers=rng.choice([None, TIERS]),
    )
    return (
        market(
            spot,
            mark=mark,
            perp_open=perp_open,
            funding=funding,
            borrow=borrow,
            spot_volume=svol,
            perp_volume=pvol,
            target=target,
        ),
        params,
        rng.choice([1.0, 8.0]),
    )


def check_random_case(seed):
    mkt, params, bar_hours = random_case(seed)
    res = run(mkt, bar_hours=bar_hours, **params)
    capital = params["capital"]
    assert_identity(res, capital)
    n = len(mkt["spot_open"])
    for key in (
        "equity",
        "funding",
        "spot_pnl",
        "perp_pnl",
        "fees",
        "spread",
        "slippage",
        "borrow",
        "liquidation_fees",
        "insurance_fund_loss",
        "spot_qty",
        "perp_qty",
        "cash",
        "margin_balance",
    ):
        assert len(res[key]) == n
    # costs and the insurance fund only ever grow
    for key in ("fees", "spread", "slippage", "borrow", "liquidation_fees", "insurance_fund_loss"):
        series = res[key]
        assert series[0] >= 0.0
        assert all(b >= a for a, b in itertools.pairwise(series)), key
    events = res["events"]
    assert res["n_trades"] == sum(e["kind"] in ("entry", "exit", "flip", "rebalance", "reentry") for e in events)
    assert res["n_liquidations"] == sum(e["kind"].startswith("liquidation") for e in events)
    for t in range(n):
        a, b = res["spot_qty"][t], res["perp_qty"][t]
        if a != 0.0 and b != 0.0:
            assert close(a, -b)  # delta-neutral by quantity when both legs are open
        if b == 0.0:
            assert res["margin_balance"][t] == 0.0
    # nothing executes on a gap bar
    assert not any(e["bar"] in res["gap_bars"] for e in events if not e["kind"].startswith("liquidation"))
    # an entry from flat is sized net of its own costs: q = factor·(E_open − cost)/S_open exactly, and it
    # leaves the spot wallet at the perp leg's costs, never below 0
    lev, ls = params["leverage"], params["spot_leverage"]
    for e in events:
        t = e["bar"]
        if e["kind"] != "entry" or (t > 0 and res["spot_qty"][t - 1] != 0.0):
            continue
        E = capital if t == 0 else res["equity"][t - 1]
        d = 1 if e["spot_qty"] > 0 else -1
        factor = lev / (lev + 1.0) if d == 1 else 1.0 / (1.0 / lev + 1.0 / ls)
        assert close(abs(e["spot_qty"]), factor * (E - e["cost"]) / mkt["spot_open"][t], 1e-12)
        if not any(x["bar"] == t and x["kind"].startswith("liquidation") for x in events):
            assert res["cash"][t] >= -1e-9 * capital
    # the warning of a run without margin management
    managed = (params["rebalance_at"] not in (None, INF) or params["spot_rebalance_level"] is not None) or params[
        "rebalance_every"
    ] > 0
    warned = [w for w in res["warnings"] if w["kind"] == "liquidated_without_margin_management"]
    assert bool(warned) == (res["n_liquidations"] > 0 and not managed)
    return res


@pytest.mark.parametrize("seed", range(40))
def test_random_markets_identity(seed):
    check_random_case(seed)


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_random_markets_identity_hypothesis(seed):
    check_random_case(seed)


def test_random_markets_reach_liquidations_and_flips():
    # the random cases above do exercise the interesting paths
    seen = set()
    for seed in range(40):
        res = check_random_case(seed)
        seen.update(e["kind"] for e in res["events"])
    assert {"entry", "exit", "flip", "rebalance", "reentry", "liquidation_perp", "liquidation_spot"} <= seen


# ---------------------------------------------------------------------------------------------------
# Portfolios: one account over several symbols (tests/reference/portfolio.py)
# ---------------------------------------------------------------------------------------------------

SERIES = ("spot_open", "spot_high", "spot_low", "spot_close", "perp_open", "mark_open", "mark_high", "mark_low")
SERIES += ("mark_close", "funding", "borrow_rate", "spot_volume", "perp_volume")
ACCOUNT_SERIES = ("equity", "funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow")
ACCOUNT_SERIES += ("liquidation_fees", "insurance_fund_loss", "cash", "margin_balance")


def data_of(mkt):
    return {k: mkt[k] for k in SERIES}


def run_portfolio(mkts, weights=None, bar_hours=1.0, **params):
    return simulate_portfolio(
        symbols=[data_of(m) for m in mkts],
        targets=[m["target"] for m in mkts],
        weights=weights,
        bar_hours=bar_hours,
        params=params,
    )


def pkinds(res):
    return [(e["bar"], e["symbol"], e["kind"]) for e in res["events"]]


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from(["isolated", "cross"]))
def test_portfolio_of_one_symbol_is_the_single_column_hypothesis(seed, mode):
    test_portfolio_of_one_symbol_is_the_single_column(mode, seed)


@pytest.mark.parametrize("mode", ["isolated", "cross"])
@pytest.mark.parametrize("seed", range(30))
def test_portfolio_of_one_symbol_is_the_single_column(mode, seed):
    # engine.md: "With one symbol this is exactly the isolated rule" (liquidation on the λ path in
    # cross, the account cushion and spot level): every series, count, event and warning agree.
    mkt, params, bar_hours = random_case(seed)
    single = run(mkt, bar_hours=bar_hours, **params)
    n = len(mkt["target"])
    pf = run_portfolio([mkt], weights=[[1.0] * n], bar_hours=bar_hours, margin_mode=mode, **params)
    scale = params["capital"]
    for key in ACCOUNT_SERIES:
        for t in range(n):
            assert abs(single[key][t] - pf[key][t]) <= 1e-9 * scale, (key, t, single[key][t], pf[key][t])
    for key in ("spot_qty", "perp_qty"):
        for t in range(n):
            assert close(single[key][t], pf["symbols"][0][key][t]), (key, t)
    assert single["n_trades"] == pf["n_trades"] and single["n_liquidations"] == pf["n_liquidations"]
    assert kinds(single) == [(b, k) for b, _, k in pkinds(pf)]
    assert single["warnings"] == [{k: v for k, v in w.items() if k != "symbol"} for w in pf["warnings"]]


TWO_PARAMS = dict(capital=1000.0, leverage=4.0, mmr=0.01, **NO_COSTS)


@pytest.mark.parametrize("mode", ["isolated", "cross"])
def test_portfolio_weights_and_a_resize_move_only_that_pair(mode):
    # A at 100, B at 50, carry L = 4, weights 0.5 / 0.3, no costs. t0, E = 1000:
    #   A: E_A = 500, N = 400, q = 4, MB_A = 100; B: E_B = 300, N = 240, q = 4.8, MB_B = 60;
    #   cash = 1000 − 400 − 100 − 240 − 60 = 200.
    # t1: A's funding 0.001 at mark open 100: 0.4 into A's share (100.4); A closes at 110.
    # t2: B's weight 0.3 -> 0.2, A opens at 110: E = 1000.4 (hedged), E_B = 200.08, N_B = 160.064,
    #   q_B = 3.20128, MB_B = 40.016: B sells 1.59872 at 50 (+79.936 cash) and 19.984 of margin comes
    #   back: cash 299.92. A's share keeps its funding and its unrealised loss: 100.4; Σ = 140.416.
    a = market([100.0, (100.0, 110.0, 100.0, 110.0), 110.0], funding=[NAN, 0.001, NAN], target=[1, 1, 1])
    b = market([50.0, 50.0, 50.0], target=[1, 1, 1])
    res = run_portfolio([a, b], weights=[[0.5] * 3, [0.3, 0.3, 0.2]], margin_mode=mode, **TWO_PARAMS)
    A, B = res["symbols"]
    assert close(A["spot_qty"][0], 4.0) and close(B["spot_qty"][0], 4.8)
    assert close(A["margin_share"][0], 100.0) and close(B["margin_share"][0], 60.0)
    assert close(res["cash"][0], 200.0)
    assert close(A["margin_share"][1], 100.4)
    assert pkinds(res) == [(0, 0, "entry"), (0, 1, "entry"), (2, 1, "resize")]
    assert close(B["spot_qty"][2], 3.20128) and close(B["perp_qty"][2], -3.20128)
    assert close(B["margin_share"][2], 40.016)
    assert close(A["margin_share"][2], 100.4) and close(A["spot_qty"][2], 4.0)
    assert close(res["margin_balance"][2], 140.416)
    assert close(res["cash"][2], 299.92)
    assert all(close(e, x) for e, x in zip(res["equity"], [1000.0, 1000.4, 1000.4], strict=True))
    assert res["n_trades"] == 3 and A["n_trades"] == 1 and B["n_trades"] == 2
    assert_identity(res, 1000.0)


def test_portfolio_equity_is_taken_once_before_the_bars_trades():
    # both symbols enter at t0 with fees 0.001 + 0.0005, each sized from w_i·1000 net of its own costs,
    # not of the other's: A (100): q = 0.8·(500 − 0.15q)/100 -> 400/100.12;
    # B (50): cost 0.075q, q = 0.8·(300 − 0.075q)/50 -> 240/50.06.
    a = market([100.0] * 2, target=[1, 1])
    b = market([50.0] * 2, target=[1, 1])
    fees = {"spot_fee": 0.001, "perp_fee": 0.0005}
    for order in ((a, b), (b, a)):
        w = [[0.5] * 2, [0.3] * 2] if order[0] is a else [[0.3] * 2, [0.5] * 2]
        res = run_portfolio(list(order), weights=w, **{**TWO_PARAMS, **fees})
        qa = res["symbols"][0 if order[0] is a else 1]["spot_qty"][0]
        qb = res["symbols"][1 if order[0] is a else 0]["spot_qty"][0]
        assert close(qa, 400.0 / 100.12) and close(qb, 240.0 / 50.06)
        assert_identity(res, 1000.0)


def test_cross_c0_is_retaken_after_a_member_exits():
    # cross, x = 0.5, A and B carry at 100 (q = 4, shares 100 each, C0 = 192). t1: A exits at its open
    # (100) -> C0 is retaken on B alone: 100 − 0.04·100 = 96, trigger at C ≤ 48, i.e. B's mark at
    # 452/4.04 = 111.88…; B stays at 100 (C = 96): no rebalance. (Had C0 stayed 192, C = 96 ≤ 96 would
    # re-size B at t2.) B then rises to 112 at t2's close (C = 100 − 48 − 4.48 = 47.52 ≤ 48) -> t3.
    a = market([100.0] * 4, target=[1, 0, 0, 0])
    b = market([100.0, 100.0, (100.0, 112.0, 100.0, 112.0), 112.0], target=[1] * 4)
    res = run_portfolio([a, b], weights=[[0.5] * 4, [0.5] * 4], margin_mode="cross", rebalance_at=0.5, **TWO_PARAMS)
    assert pkinds(res) == [(0, 0, "entry"), (0, 1, "entry"), (1, 0, "exit"), (3, 1, "rebalance")]
    assert close(res["symbols"][1]["spot_qty"][3], 0.8 * 500.0 / 112.0)
    assert close(res["symbols"][0]["margin_share"][1], 0.0) and close(res["cash"][1], 500.0)
    assert_identity(res, 1000.0)


def two_carries(a_bar1, b_bar1, a_rest=130.0):
    # A and B both enter at 100 (t0), bar 1 as given (spot ≡ mark), then flat; target +1 throughout
    a = market([100.0, a_bar1, a_rest, a_rest], target=[1, 1, 1, 1])
    b = market([100.0, b_bar1, 100.0, 100.0], target=[1, 1, 1, 1])
    return a, b


def test_cross_margin_shares_the_wallet_where_isolated_liquidates():
    # weights 0.5 / 0.5, L = 4: q = 4 and MB_i = 100 each, cash 0. t1: A's mark high 130, B flat at 100.
    # isolated A: 100 − 4·30 ≤ 0.04·130 -> liquidated at P_A = (100 + 400)/4.04 = 123.76…
    # cross: MB + ΣuPnL − ΣMM at λ = 1 = 200 − 120 − 5.2 − 4 = 70.8 > 0 -> nothing.
    a, b = two_carries((100.0, 130.0, 100.0, 128.0), 100.0)
    weights = [[0.5] * 4, [0.5] * 4]
    iso = run_portfolio([a, b], weights=weights, margin_mode="isolated", **TWO_PARAMS)
    assert pkinds(iso)[:3] == [(0, 0, "entry"), (0, 1, "entry"), (1, 0, "liquidation_perp")]
    assert close(iso["events"][2]["perp_price"], 500.0 / 4.04)
    cross = run_portfolio([a, b], weights=weights, margin_mode="cross", **TWO_PARAMS)
    assert pkinds(cross) == [(0, 0, "entry"), (0, 1, "entry")]
    assert cross["n_liquidations"] == 0
    for res in (iso, cross):
        assert_identity(res, 1000.0)


@pytest.mark.parametrize("b_gap", [False, True])
def test_cross_liquidation_on_the_lambda_path_is_one_event(b_gap):
    # as above with A's mark high 160 (open 100, close 150): at λ = 1, 200 − 240 − 6.4 − 4 ≤ 0.
    # m_A(λ) = 100 + 60λ, m_B = 100: G(λ) = 200 − 4·60λ − 0.04·(100 + 60λ) − 4 = 192 − 242.4λ
    # -> λ* = 192/242.4; A fills at 100 + 60λ* = 596/4.04 = 147.52…, B at 100.
    # Liquidation fee 0.005: 0.02·F_A + 2; MB = 200 − 4·(F_A − 100) − 0.02·F_A − 2 ≥ 0 -> cash.
    # One event for the account, a log row and a count per perp.
    # With B's bar a gap (its data missing), B stays in the check at its last known mark 100 and the
    # result is the same (engine.md: a gap member is held at its last known mark).
    a, b = two_carries((100.0, 160.0, 100.0, 150.0), 100.0, a_rest=150.0)
    if b_gap:
        for key in ("spot_open", "spot_high", "spot_low", "spot_close", "perp_open"):
            b[key][1] = NAN
        for key in ("mark_open", "mark_high", "mark_low", "mark_close"):
            b[key][1] = NAN
    params = {**TWO_PARAMS, "liquidation_fee": 0.005}
    res = run_portfolio([a, b], weights=[[0.5] * 4, [0.5] * 4], margin_mode="cross", **params)
    F = 596.0 / 4.04
    assert close(100.0 + 60.0 * 192.0 / 242.4, F)
    assert pkinds(res)[:4] == [(0, 0, "entry"), (0, 1, "entry"), (1, 0, "liquidation_perp"), (1, 1, "liquidation_perp")]
    assert close(res["events"][2]["perp_price"], F) and close(res["events"][3]["perp_price"], 100.0)
    assert res["n_liquidations"] == 1
    assert res["symbols"][0]["n_liquidations"] == 1 and res["symbols"][1]["n_liquidations"] == 1
    left = 200.0 - 4.0 * (F - 100.0) - 0.02 * F - 2.0
    assert left > 0.0
    assert close(res["liquidation_fees"][1], 0.02 * F + 2.0)
    assert close(res["cash"][1], left) and res["margin_balance"][1] == 0.0
    assert close(res["equity"][1], left + 4.0 * 150.0 + 4.0 * 100.0)
    # "close": both spot legs sold at t2 (B's only if its bar is not a gap: it is not)
    assert pkinds(res)[4:] == [(2, 0, "exit"), (2, 1, "exit")]
    assert [w["kind"] for w in res["warnings"]] == ["liquidated_without_margin_management"] + [
        "target_unfilled_after_liquidation"
    ] * 2
    assert_identity(res, 1000.0)
    # liquidation_loss="margin": the whole futures wallet is lost, split by notional at the fill
    lost = run_portfolio(
        [a, b], weights=[[0.5] * 4, [0.5] * 4], margin_mode="cross", liquidation_loss="margin", **params
    )
    assert close(lost["liquidation_fees"][1], 0.02 * F + 2.0 + left) and close(lost["cash"][1], 0.0)
    share_a = 4.0 * F / (4.0 * F + 400.0)
    assert close(lost["symbols"][0]["liquidation_fees"][1], 0.02 * F + left * share_a)
    assert_identity(lost, 1000.0)


def test_cross_liquidation_opened_beyond_shares_the_insurance_loss_by_notional():
    # A opens at 150 (high 160): G(0) = 200 − 200 − 0.04·150 − 4 ≤ 0 -> λ* = 0: A fills at 150,
    # B at 100; fees 3 + 2; MB = 200 − 200 − 5 = −5 -> insurance 5, split 600 : 400 -> 3 and 2.
    a, b = two_carries((150.0, 160.0, 150.0, 150.0), 100.0, a_rest=150.0)
    params = {**TWO_PARAMS, "liquidation_fee": 0.005}
    res = run_portfolio([a, b], weights=[[0.5] * 4, [0.5] * 4], margin_mode="cross", **params)
    assert res["events"][2]["perp_price"] == 150.0 and res["events"][3]["perp_price"] == 100.0
    assert close(res["insurance_fund_loss"][1], 5.0)
    assert close(res["symbols"][0]["insurance_fund_loss"][1], 3.0)
    assert close(res["symbols"][1]["insurance_fund_loss"][1], 2.0)
    assert res["cash"][1] == 0.0 and res["n_liquidations"] == 1
    assert_identity(res, 1000.0)


def test_cross_cushion_trigger_re_sizes_every_pair():
    # L = 4, weights 0.5 / 0.5, q = 4 each, MB 200, C0 = 200 − 0.04·100 − 0.04·100 = 192.
    # t1: A closes at 115, B at 95: account C = 200 − 60 + 20 − 4.6 − 3.8 = 151.6 ≤ 0.8·192 = 153.6
    # (x = 0.2) -> at t2 both pairs are re-sized at their opens (A 115, B 95): E = 1000, E_i = 500,
    # N = 400: q_A = 400/115, q_B = 400/95; each share back to 100, cash 0; C0' = 192.
    # Isolated: A's own C = 100 − 60 − 4.6 = 35.4 ≤ 0.8·96 re-sizes A only; B's 116.2 does not.
    a = market([100.0, (100.0, 115.0, 100.0, 115.0), 115.0, 115.0], target=[1] * 4)
    b = market([100.0, (100.0, 100.0, 95.0, 95.0), 95.0, 95.0], target=[1] * 4)
    weights = [[0.5] * 4, [0.5] * 4]
    cross = run_portfolio([a, b], weights=weights, margin_mode="cross", rebalance_at=0.2, **TWO_PARAMS)
    assert pkinds(cross) == [(0, 0, "entry"), (0, 1, "entry"), (2, 0, "rebalance"), (2, 1, "rebalance")]
    A, B = cross["symbols"]
    assert close(A["spot_qty"][2], 400.0 / 115.0) and close(B["spot_qty"][2], 400.0 / 95.0)
    assert close(A["margin_share"][2], 100.0) and close(B["margin_share"][2], 100.0)
    assert close(cross["cash"][2], 0.0)
    iso = run_portfolio([a, b], weights=weights, margin_mode="isolated", rebalance_at=0.2, **TWO_PARAMS)
    assert pkinds(iso) == [(0, 0, "entry"), (0, 1, "entry"), (2, 0, "rebalance")]
    # a looser x = 0.25 (C ≤ 144): the account is not there yet, A alone is
    assert (
        len(run_portfolio([a, b], weights=weights, margin_mode="cross", rebalance_at=0.25, **TWO_PARAMS)["events"]) == 2
    )
    for res in (cross, iso):
        assert all(close(e, 1000.0) for e in res["equity"])
        assert_identity(res, 1000.0)


def test_account_spot_margin_of_two_reverse_carries():
    # reverse L = 1, Ls = 3, weights 0.5 / 0.5, both at 100: N_i = 500/(1 + 1/3) = 375, q = 3.75 each;
    # cash 1000 (sale proceeds 750 went to the futures wallet). Level 1000/750 = 1.333.
    # t1: A's spot high 145, B flat: h(λ) = 1000 − 1.1·3.75·((100 + 45λ) + 100) = 175 − 185.625λ
    # -> λ* = 175/185.625; A's loan repaid at 100 + 45λ* = 1000/4.125 − 100 = 142.42…, B's at 100.
    # cash 1000 − 3.75·(S_A + 100) = 1000 − 1000/1.1 = 90.90…; one account liquidation, two rows.
    # (A high of 140 leaves h(1) = 10 > 0: nothing.)
    a = market([100.0, (100.0, 145.0, 100.0, 120.0), 120.0], target=[-1] * 3)
    b = market([100.0, 100.0, 100.0], target=[-1] * 3)
    params = dict(capital=1000.0, leverage=1.0, spot_leverage=3.0, **NO_COSTS)
    res = run_portfolio([a, b], weights=[[0.5] * 3, [0.5] * 3], **params)
    S_A = 1000.0 / 4.125 - 100.0
    assert close(100.0 + 45.0 * 175.0 / 185.625, S_A)
    assert pkinds(res)[:4] == [(0, 0, "entry"), (0, 1, "entry"), (1, 0, "liquidation_spot"), (1, 1, "liquidation_spot")]
    assert close(res["events"][2]["spot_price"], S_A) and close(res["events"][3]["spot_price"], 100.0)
    assert close(res["cash"][1], 1000.0 - 1000.0 / 1.1)
    assert res["n_liquidations"] == 1
    assert_identity(res, 1000.0)
    a_ok = market([100.0, (100.0, 140.0, 100.0, 120.0), 120.0], target=[-1] * 3)
    assert run_portfolio([a_ok, b], weights=[[0.5] * 3, [0.5] * 3], **params)["n_liquidations"] == 0
    # the account's spot level 1000/(3.75·120 + 375) = 1.2121 at t1's close ≤ 1.3 re-sizes every
    # pair at t2 (spot_rebalance_level): E = 1000 (hedged), E_i = 500, N_i = 375: A to 375/120 = 3.125;
    # B, still at 100, lands on the very same 3.75 and trades nothing (a sizing without a trade)
    res = run_portfolio([a_ok, b], weights=[[0.5] * 3, [0.5] * 3], spot_rebalance_level=1.3, **params)
    assert pkinds(res) == [(0, 0, "entry"), (0, 1, "entry"), (2, 0, "rebalance")]
    assert close(res["symbols"][0]["spot_qty"][2], -3.125) and close(res["symbols"][1]["spot_qty"][2], -3.75)
    # without the trigger: nothing at t2
    assert len(run_portfolio([a_ok, b], weights=[[0.5] * 3, [0.5] * 3], **params)["events"]) == 2


def random_portfolio(seed):
    rng = random.Random(seed)
    k = rng.choice([2, 3])
    cases = [random_case(seed * 7 + j) for j in range(k)]
    n = min(len(c[0]["spot_open"]) for c in cases)
    mkts = [{key: list(v[:n]) for key, v in c[0].items()} for c in cases]
    params = dict(cases[0][1])
    params["margin_mode"] = rng.choice(["isolated", "cross"])
    weights = []
    for _ in range(k):
        w, series = 1.0 / k, []
        for _t in range(n):
            if rng.random() < 0.04:
                w = rng.choice([1.0 / k, rng.uniform(0.0, 1.0 / k)])
            series.append(w)
        weights.append(series)
    return mkts, weights, params, cases[0][2]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_random_portfolios_identity_hypothesis(seed):
    test_random_portfolios_identity(seed)


@pytest.mark.parametrize("seed", range(40))
def test_random_portfolios_identity(seed):
    mkts, weights, params, bar_hours = random_portfolio(seed)
    res = run_portfolio(mkts, weights=weights, bar_hours=bar_hours, **params)
    assert_identity(res, params["capital"])
    n = len(mkts[0]["spot_open"])
    for t in range(n):
        assert close(res["margin_balance"][t], sum(s["margin_share"][t] for s in res["symbols"]))
        for s in res["symbols"]:
            if s["perp_qty"][t] == 0.0:
                assert s["margin_share"][t] == 0.0
    for key in COMPONENTS:
        for t in range(n):
            assert close(res[key][t], sum(s[key][t] for s in res["symbols"]))
    # a cross liquidation and a spot-margin liquidation are one event of the account each; isolated
    # perps count one each; every symbol counts its own legs
    perp_rows = [e["bar"] for e in res["events"] if e["kind"] == "liquidation_perp"]
    spot_rows = [e["bar"] for e in res["events"] if e["kind"] == "liquidation_spot"]
    perp_events = len(set(perp_rows)) if params["margin_mode"] == "cross" else len(perp_rows)
    assert res["n_liquidations"] == perp_events + len(set(spot_rows))
    assert sum(s["n_liquidations"] for s in res["symbols"]) == len(perp_rows) + len(spot_rows)
    if params["margin_mode"] == "cross":
        for t in set(perp_rows):  # every open perp of the account goes at once
            assert all(s["perp_qty"][t] == 0.0 for s in res["symbols"])
    assert res["n_trades"] == sum(s["n_trades"] for s in res["symbols"])


def test_random_portfolios_reach_every_path():
    seen = set()
    multi_perp_cross_liquidations = 0
    for seed in range(40):
        mkts, weights, params, bar_hours = random_portfolio(seed)
        res = run_portfolio(mkts, weights=weights, bar_hours=bar_hours, **params)
        seen |= {(params["margin_mode"], e["kind"]) for e in res["events"]}
        bars = [e["bar"] for e in res["events"] if e["kind"] == "liquidation_perp"]
        if params["margin_mode"] == "cross":
            multi_perp_cross_liquidations += sum(bars.count(t) > 1 for t in set(bars))
    for mode in ("isolated", "cross"):
        assert {"entry", "exit", "flip", "resize", "rebalance", "reentry", "liquidation_perp"} <= {
            k for m, k in seen if m == mode
        }
    assert ("cross", "liquidation_spot") in seen
    assert multi_perp_cross_liquidations > 0
