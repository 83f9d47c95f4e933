"""Numba kernels of the two-leg simulation (DESIGN.md §2–§6, docs/engine.md).

Pure functions over 2-D arrays, time on axis 0, no pandas, no I/O.

Market arrays are ``(T, S)``, one column per symbol. The simulation runs ``G`` *groups* (accounts), each with
one capital, one spot wallet and — in cross margin — one futures wallet. A group holds ``members``
``m0 … m1-1`` (``grp_start[g]:grp_start[g+1]``); member ``m`` trades market column ``mem_sym[m]`` following
column ``mem_tgt[m]`` of ``target`` (direction) and ``weight`` (fraction of the group's equity). A plain
backtest is ``G`` groups of one member each (symbol × parameter set); a portfolio is one group of many.
Per-group parameters are the records of ``params`` (:data:`~fundarb.engine.layout.PARAMS_DTYPE`, one per group);
the layout of every array is :mod:`fundarb.engine.layout`. The rules live in :mod:`~fundarb.engine.rules`
(sizing, costs, margin-management triggers), :mod:`~fundarb.engine.steps` (the bar's steps, execution) and
:mod:`~fundarb.engine.liquidation`; :func:`_group` composes them in DESIGN §2's order of events.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fundarb.engine.layout import (
    G_EQUITY,
    G_HELD,
    KIND_EXIT,
    KIND_REENTRY,
    LEVEL_BOOK,
    LEVEL_DETAIL,
    M_BARS_IN_MARKET,
    M_FIRST_BAR,
    M_LAST_BAR,
    M_LIQ,
    M_LOCK_BAR,
    M_TRADES,
    N_COMP,
    T_BARS_IN_MARKET,
    T_EQUITY,
    T_FIRST_BAR,
    T_FIRST_LIQ,
    T_LAST_BAR,
    T_MAX_DD,
    T_MAX_DD_BARS,
    T_N_LIQ,
    T_N_R,
    T_PEAK,
    T_SUM_DOWN2,
    T_SUM_R,
    T_SUM_R2,
)
from fundarb.engine.liquidation import (
    count_liquidation_nb,
    cross_liquidation_lambda_nb,
    isolated_breached_nb,
    liquidate_cross_nb,
    liquidate_isolated_nb,
    liquidate_spot_nb,
    perp_extremes_nb,
    spot_extremes_nb,
    spot_margin_lambda_nb,
)
from fundarb.engine.rules import (
    cost_reserved_qty_nb,
    cushion_nb,
)
from fundarb.engine.steps import (
    account_cushion_nb,
    effective_target_nb,
    equity_at_open_nb,
    flex_nb,
    held_direction_nb,
    margin_triggers_nb,
    mark_to_close_nb,
    mark_to_open_nb,
    order_kind_nb,
    record_nb,
    settle_funding_nb,
    target_nb,
    tier_table_nb,
    trade_to_target_nb,
    update_streaming_stats_nb,
    write_bar_nb,
)


@nb.njit(cache=True)
def _group(
    g, m0, m1, mem_sym, mem_tgt, tier_start, tier_len,
    spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, weight, p, tiers, bar_hours,
    level, series, gseries, mtotals, gtotals, rec, rec_n,
):  # pragma: no cover - compiled
    """Simulate group ``g`` (members ``m0 … m1-1``) bar by bar in DESIGN §2's order. Returns the record count.

    ``mbi[i]`` is member ``i``'s margin: its isolated wallet, or in cross margin its share of the one futures
    wallet (the wallet is the sum of the shares, engine.md rule 2).
    """
    T = spot_open.shape[0]
    n = m1 - m0
    detail = level == LEVEL_DETAIL  # member series and the trade log
    book = level == LEVEL_BOOK      # the group's equity and held flag only
    after = p.after_liquidation
    cross = p.cross_margin
    managed = 0.0 < p.rebalance_at < 1.0 or np.isfinite(p.spot_rebalance_level)  # a §5 trigger is on
    L = p.leverage
    Ls = p.spot_leverage
    reb_every = p.rebalance_every
    loss_margin = p.liquidation_loss_margin

    a = np.zeros(n)          # signed spot quantity per member
    b = np.zeros(n)          # signed perp quantity per member
    entry = np.zeros(n)      # perp entry price
    mbi = np.zeros(n)        # margin per member (isolated wallet, or share of the cross wallet)
    c0 = np.zeros(n)         # cushion just after the last sizing (isolated)
    c0g = 0.0                # the account's cushion just after its last perp trade (cross)
    w_held = np.zeros(n)     # weight the position was sized with
    lock = np.zeros(n, np.int64)
    lock_bar = np.full(n, -1.0)
    reent = np.zeros(n, np.int64)  # direction liquidated, to re-enter at the next open ("reenter")
    since = np.zeros(n, np.int64)
    reb_due = np.zeros(n, np.bool_)
    last_s = np.full(n, np.nan)
    last_m = np.full(n, np.nan)
    gap = np.zeros(n, np.bool_)
    act_p = np.zeros(n, np.bool_)
    act_s = np.zeros(n, np.bool_)
    so_ = np.zeros(n)
    mo_ = np.zeros(n)
    adv = np.zeros(n)
    comp = np.zeros((n, N_COMP))
    n_tr = np.zeros(n)
    n_lq = np.zeros(n)
    in_mkt = np.zeros(n)
    first = np.full(n, -1.0)
    last = np.full(n, -1.0)
    cash = p.capital
    prev_eq = peak = cash
    g_first = g_last = g_first_lq = -1.0
    g_in_mkt = g_nlq = 0.0
    sum_r = sum_r2 = sum_d2 = n_r = dd_bars = max_dd_bars = max_dd = 0.0

    for t in range(T):
        if mark_to_open_nb(t, m0, mem_sym, spot_open, perp_open, mark_open, a, b, last_s, last_m, gap, act_s,
                           act_p, comp, first, last):
            if g_first < 0.0:
                g_first = t
            g_last = t

        # (1) funding
        settle_funding_nb(t, m0, mem_sym, funding, mark_open, b, last_m, mbi, comp)

        # (2) execution at the open
        eq_open = np.nan
        perp_traded = False
        for i in range(n):
            wt = flex_nb(weight, t, mem_tgt[m0 + i])
            tg = target_nb(target[t, mem_tgt[m0 + i]], wt)
            if lock[i] != 0 and tg != lock[i]:
                lock[i] = 0  # the target left the liquidated direction: the lock ends
                lock_bar[i] = -1.0
            if gap[i]:
                continue
            d = held_direction_nb(a[i], b[i])
            eff = effective_target_nb(tg, wt, lock[i], d, after)
            kind = order_kind_nb(eff, d, reent[i], lock[i], a[i], b[i], reb_due[i],
                                 reb_every > 0.0 and since[i] >= reb_every, wt != w_held[i])
            reenter = kind == KIND_REENTRY
            reent[i] = 0
            if kind < 0:
                continue
            if np.isnan(eq_open):
                eq_open = equity_at_open_nb(cash, a, b, entry, mbi, last_s, last_m)
            s = mem_sym[m0 + i]
            so = spot_open[t, s]
            po = perp_open[t, s]
            mo = mark_open[t, s]
            vs = spot_vol[t - 1, s] if t > 0 else np.nan
            vp = perp_vol[t - 1, s] if t > 0 else np.nan
            q = cost_reserved_qty_nb(eff, wt * eq_open, a[i], b[i], so, po, vs, vp, L, Ls, p.spot_fee,
                                     p.perp_fee, p.half_spread, p.slippage, p.slippage_k)
            if eff * q == a[i] and -eff * q == b[i]:
                since[i] = 0  # sized again, to the same quantities: the clock and C0 restart
                if b[i] != 0.0:
                    perp_traded = True
                    c0[i] = cushion_nb(mbi[i], b[i], entry[i], mo, tier_table_nb(tiers, tier_start, tier_len, m0 + i))
                continue
            if reenter and q == 0.0:
                kind = KIND_EXIT
            cash, da, db, fees, spread, slip = trade_to_target_nb(i, q, eff, so, po, mo, vs, vp, a, b, entry, mbi,
                                                                   comp, cash, L, p)
            if db != 0.0:
                perp_traded = True
            if b[i] != 0.0 and not cross:
                c0[i] = cushion_nb(mbi[i], b[i], entry[i], mo, tier_table_nb(tiers, tier_start, tier_len, m0 + i))
            n_tr[i] += 1.0
            since[i] = 0
            w_held[i] = wt if eff != 0 else 0.0
            if detail:
                rec_n = record_nb(rec, rec_n, m0 + i, t, kind, a[i], b[i], so, po, da, db, fees, spread, slip, 0.0,
                                eq_open)
        if cross and perp_traded:
            c0g = account_cushion_nb(mbi, b, entry, last_m, tiers, tier_start, tier_len, m0)

        # (3) liquidation at the adverse intrabar extremes: a perp needs only its own mark
        perp_extremes_nb(t, m0, mem_sym, mark_open, mark_high, mark_low, mark_close, b, act_p, last_m, mo_, adv)
        if cross:
            any_perp = False
            for i in range(n):
                if b[i] != 0.0 and act_p[i]:
                    any_perp = True
            if any_perp:
                mbx = 0.0
                for i in range(n):
                    mbx += mbi[i]
                lam = cross_liquidation_lambda_nb(mbx, b, entry, mo_, adv, tiers, tier_start, tier_len, m0)
                if lam >= 0.0:
                    rec_n = liquidate_cross_nb(lam, mbi, b, entry, a, mo_, adv, last_m, lock, lock_bar, reent,
                                             n_lq, comp, after, loss_margin, p.liquidation_fee, t, m0, detail, rec,
                                             rec_n)
                    for i in range(n):
                        cash += mbi[i]
                        mbi[i] = 0.0
                    g_nlq, g_first_lq = count_liquidation_nb(g_nlq, g_first_lq, t)
        else:
            for i in range(n):
                if b[i] != 0.0 and act_p[i] and isolated_breached_nb(
                        mbi[i], b[i], entry[i], adv[i], tier_table_nb(tiers, tier_start, tier_len, m0 + i)):
                    freed, rec_n = liquidate_isolated_nb(
                        i, t, tier_table_nb(tiers, tier_start, tier_len, m0 + i), b, entry, mbi, a, mo_, adv,
                        last_m, comp, lock, lock_bar, reent, n_lq, after, loss_margin, p.liquidation_fee, m0, detail,
                        rec, rec_n)
                    if freed >= 0.0:
                        cash += freed
                        g_nlq, g_first_lq = count_liquidation_nb(g_nlq, g_first_lq, t)
        # the group's one spot wallet: assets / borrowed ≤ level ⇒ every loan force-repaid
        borrowed = False
        for i in range(n):
            if a[i] < 0.0 and act_s[i]:
                borrowed = True
        if borrowed:
            spot_extremes_nb(t, m0, mem_sym, spot_open, spot_high, spot_low, spot_close, a, act_s, last_s, so_, adv)
            lam = spot_margin_lambda_nb(cash, a, so_, adv, p.spot_liquidation_level)
            if lam >= 0.0:
                cash, rec_n = liquidate_spot_nb(lam, a, b, so_, adv, last_s, cash, comp, lock, lock_bar, reent,
                                                n_lq, after, p.liquidation_fee, t, m0, detail, rec, rec_n)
                g_nlq, g_first_lq = count_liquidation_nb(g_nlq, g_first_lq, t)

        # (4) borrow interest, (5) mark at the close
        cash, eq, held_any = mark_to_close_nb(t, m0, mem_sym, spot_close, mark_close, borrow_rate, p.borrow_rate,
                                              bar_hours, a, b, entry, mbi, last_s, last_m, comp, in_mkt, since,
                                              cash)
        if held_any:
            g_in_mkt += 1.0

        # margin-management triggers seen at this close, acted on at the next open (DESIGN §5)
        if managed:
            margin_triggers_nb(reb_due, c0, c0g, cash, a, b, entry, mbi, last_s, last_m, tiers, tier_start,
                               tier_len, m0, cross, p.rebalance_at, p.spot_rebalance_level)

        if g_first >= 0.0:
            prev_eq, sum_r, sum_r2, sum_d2, n_r, peak, dd_bars, max_dd_bars, max_dd = update_streaming_stats_nb(
                eq, prev_eq, sum_r, sum_r2, sum_d2, n_r, peak, dd_bars, max_dd_bars, max_dd)
        if detail:
            write_bar_nb(t, g, m0, eq, cash, held_any, cross, a, b, mbi, comp, series, gseries)
        elif book:
            gseries[G_EQUITY, t, g] = eq
            gseries[G_HELD, t, g] = 1.0 if held_any else 0.0

    for i in range(n):
        for k in range(N_COMP):
            mtotals[k, m0 + i] = comp[i, k]
        mtotals[M_TRADES, m0 + i] = n_tr[i]
        mtotals[M_LIQ, m0 + i] = n_lq[i]
        mtotals[M_BARS_IN_MARKET, m0 + i] = in_mkt[i]
        mtotals[M_FIRST_BAR, m0 + i] = first[i]
        mtotals[M_LAST_BAR, m0 + i] = last[i]
        mtotals[M_LOCK_BAR, m0 + i] = lock_bar[i] if lock[i] != 0 else -1.0
    gtotals[T_EQUITY, g] = prev_eq
    gtotals[T_FIRST_BAR, g] = g_first
    gtotals[T_LAST_BAR, g] = g_last
    gtotals[T_BARS_IN_MARKET, g] = g_in_mkt
    gtotals[T_N_LIQ, g] = g_nlq
    gtotals[T_FIRST_LIQ, g] = g_first_lq
    gtotals[T_SUM_R, g] = sum_r
    gtotals[T_SUM_R2, g] = sum_r2
    gtotals[T_SUM_DOWN2, g] = sum_d2
    gtotals[T_N_R, g] = n_r
    gtotals[T_PEAK, g] = peak
    gtotals[T_MAX_DD_BARS, g] = max_dd_bars
    gtotals[T_MAX_DD, g] = max_dd
    return rec_n


@nb.njit(cache=True, nogil=True)
def simulate_nb(
    g0, g1, spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, weight, grp_start, mem_sym, mem_tgt, params, tiers,
    tier_start, tier_len, bar_hours, level, series, gseries, mtotals, gtotals, rec,
):  # pragma: no cover - compiled
    """Simulate groups ``g0 … g1-1``; the one entry point of every mode.

    Every level writes the totals and streaming statistics (``mtotals``, ``gtotals``). ``level`` (see
    :mod:`~fundarb.engine.layout`) adds per bar: ``LEVEL_BOOK`` the groups' equity and held flag in ``gseries``
    (what a sweep needs to combine independent accounts into a book); ``LEVEL_DETAIL`` every member and group
    series and the trade log. Returns the number of trade-log records: if it exceeds ``rec.shape[0]`` the log
    was truncated and the caller runs again with room for that many. Arrays a level does not write may be
    ``(k, 1, 1)``. Groups write disjoint columns of the outputs and the function releases the GIL, so callers
    run ranges of groups on threads.
    """
    n = np.int64(0)  # an int64, not a literal 0: _group keeps one compiled signature
    for g in range(g0, g1):
        n = _group(g, grp_start[g], grp_start[g + 1], mem_sym, mem_tgt, tier_start, tier_len,
                   spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low,
                   mark_close, funding, borrow_rate, spot_vol, perp_vol, target, weight, params[g], tiers,
                   bar_hours, level, series, gseries, mtotals, gtotals, rec, n)
    return n
