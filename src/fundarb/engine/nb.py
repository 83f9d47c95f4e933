"""Numba kernels of the two-leg simulation (DESIGN.md §2–§6, docs/engine.md).

Pure functions over 2-D float64 arrays, time on axis 0, no pandas, no I/O.

Market arrays are ``(T, S)``, one column per symbol. The simulation runs ``G`` *groups* (accounts), each with
one capital, one spot wallet and — in cross margin — one futures wallet. A group holds ``members``
``m0 … m1-1`` (``grp_start[g]:grp_start[g+1]``); member ``m`` trades market column ``mem_sym[m]`` following
column ``mem_tgt[m]`` of ``target`` (direction) and ``weight`` (fraction of the group's equity). A plain
backtest is ``G`` groups of one member each (symbol × parameter set); a portfolio is one group of many.
Per-group parameters are the columns of ``params`` (``N_PARAMS × G``); broadcast views are fine.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fundarb.engine.tiers import liq_price_mark, tier_of

# -- member series (detail mode): rows of series[k, t, m] --------------------------------------------------
FUNDING, SPOT_PNL, PERP_PNL, FEES, SPREAD, SLIPPAGE, BORROW, LIQ_FEES, INSURANCE, SPOT_QTY, PERP_QTY, MARGIN = \
    range(12)
SERIES = ("funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
          "insurance_fund_loss", "spot_qty", "perp_qty", "margin_balance")
N_SERIES = len(SERIES)
N_COMP = 9  # the first nine series are the PnL components of DESIGN §6

# -- group series (detail mode): rows of gseries[k, t, g] --------------------------------------------------
G_EQUITY, G_CASH, G_MARGIN = range(3)
GSERIES = ("equity", "cash", "margin_balance")
N_GSERIES = len(GSERIES)

# -- member totals: rows 0..8 are the components' final values ---------------------------------------------
M_TRADES, M_LIQ, M_BARS_IN_MARKET, M_FIRST_BAR, M_LAST_BAR = range(9, 14)
MTOTALS = (*SERIES[:9], "n_trades", "n_liquidations", "bars_in_market", "first_bar", "last_bar")
N_MTOTALS = len(MTOTALS)

# -- group totals (streaming statistics of the group's equity) ---------------------------------------------
(T_EQUITY, T_SUM_R, T_SUM_R2, T_SUM_DOWN2, T_N_R, T_MAX_DD, T_MAX_DD_BARS, T_PEAK, T_FIRST_BAR, T_LAST_BAR,
 T_BARS_IN_MARKET) = range(11)
GTOTALS = ("final_equity", "sum_r", "sum_r2", "sum_down2", "n_r", "max_drawdown", "max_drawdown_bars", "peak",
           "first_bar", "last_bar", "bars_in_market")
N_GTOTALS = len(GTOTALS)

# -- trade log records (detail mode) -----------------------------------------------------------------------
REC_FIELDS = ("member", "bar", "kind", "spot_qty", "perp_qty", "spot_price", "perp_price", "spot_traded",
              "perp_traded", "fees", "spread", "slippage", "liquidation_fee", "equity_before")
N_REC = len(REC_FIELDS)
KIND_ENTRY, KIND_EXIT, KIND_FLIP, KIND_REBALANCE, KIND_LIQ_PERP, KIND_LIQ_SPOT, KIND_CLOSE_LEG, KIND_RESIZE = \
    range(8)
KINDS = ("entry", "exit", "flip", "rebalance", "liquidation_perp", "liquidation_spot", "close_leg", "resize")

# -- per-group parameters: rows of params[k, g] ------------------------------------------------------------
(P_CAPITAL, P_LEVERAGE, P_SPOT_LEVERAGE, P_SPOT_FEE, P_PERP_FEE, P_HALF_SPREAD, P_SLIP, P_SLIP_K, P_BORROW,
 P_LIQ_FEE, P_REBALANCE_AT, P_REBALANCE_EVERY, P_HOLD, P_SPOT_LIQ_LEVEL, P_CROSS) = range(15)
PARAMS = ("capital", "leverage", "spot_leverage", "spot_fee", "perp_fee", "half_spread", "slippage", "slippage_k",
          "borrow_rate", "liquidation_fee", "rebalance_at", "rebalance_every", "hold_after_liquidation",
          "spot_liquidation_level", "cross_margin")
N_PARAMS = len(PARAMS)


@nb.njit(cache=True, inline="always")
def _slip(frac: float, k: float, qty: float, vol: float) -> float:
    if k > 0.0 and vol > 0.0 and np.isfinite(vol):
        return k * np.sqrt(qty / vol)
    return frac


@nb.njit(cache=True, inline="always")
def _record(rec, n, member, t, kind, a, b, sp, pp, da, db, fees, spread, slip, lf, eq):  # pragma: no cover
    if n < rec.shape[0]:
        rec[n, 0] = member
        rec[n, 1] = t
        rec[n, 2] = kind
        rec[n, 3] = a
        rec[n, 4] = b
        rec[n, 5] = sp
        rec[n, 6] = pp
        rec[n, 7] = da
        rec[n, 8] = db
        rec[n, 9] = fees
        rec[n, 10] = spread
        rec[n, 11] = slip
        rec[n, 12] = lf
        rec[n, 13] = eq
    return n + 1


@nb.njit(cache=True)
def _cross_lambda(mb, b, entry, mo, adv, act, tiers, tier_start, tier_len, m0):  # pragma: no cover
    """Fraction λ of the way from the open to the adverse extremes at which a cross account hits maintenance.

    Every open perp's mark moves linearly ``m_i(λ) = mo_i + λ·(adv_i − mo_i)``; the equity of the futures
    wallet minus the maintenance margin is then linear in λ for fixed tiers. Tiers are taken at the adverse
    notional, λ solved, tiers re-taken at ``m_i(λ)`` and λ solved once more. Returns −1 if not liquidated.
    """
    n = b.shape[0]
    lam = 1.0
    for it in range(3):
        a0 = mb
        slope = 0.0
        for i in range(n):
            if b[i] == 0.0 or not act[i]:
                continue
            tl = tiers[tier_start[m0 + i]:tier_start[m0 + i] + tier_len[m0 + i]]
            q = abs(b[i])
            m_at = mo[i] + lam * (adv[i] - mo[i])
            k = tier_of(tl, q * m_at)
            mmr = tl[k, 2]
            a0 += b[i] * (mo[i] - entry[i]) - (q * mo[i] * mmr - tl[k, 3])
            slope += (b[i] - q * mmr) * (adv[i] - mo[i])
        if it == 0:
            if a0 + slope > 0.0:
                return -1.0  # still above maintenance at the adverse extremes
        if a0 <= 0.0:
            return 0.0
        lam = -a0 / slope if slope < 0.0 else 0.0
        lam = min(max(lam, 0.0), 1.0)
        if it == 2:
            break
    return lam


@nb.njit(cache=True)
def _group(
    g, m0, m1, mem_sym, mem_tgt, tier_start, tier_len,
    spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, weight, p, tiers, bar_hours,
    detail, series, gseries, mtotals, gtotals, rec, rec_n,
):  # pragma: no cover - compiled
    """Simulate group ``g`` (members ``m0 … m1-1``). Returns the new trade-log record count."""
    T = spot_open.shape[0]
    n = m1 - m0
    capital = p[P_CAPITAL]
    L = p[P_LEVERAGE]
    Ls = p[P_SPOT_LEVERAGE]
    hold = p[P_HOLD] > 0.5
    cross = p[P_CROSS] > 0.5
    reb_at = p[P_REBALANCE_AT]
    reb_every = p[P_REBALANCE_EVERY]
    lvl = p[P_SPOT_LIQ_LEVEL]

    a = np.zeros(n)          # signed spot quantity per member
    b = np.zeros(n)          # signed perp quantity per member
    entry = np.zeros(n)      # perp entry price
    mbi = np.zeros(n)        # isolated margin balance per member
    alloc = np.zeros(n)      # margin allotted at the last sizing (cross wallet target)
    w_held = np.zeros(n)     # weight the position was sized with
    lock = np.zeros(n, np.int64)
    since = np.zeros(n, np.int64)
    reb_due = np.zeros(n, np.bool_)
    last_s = np.full(n, np.nan)
    last_m = np.full(n, np.nan)
    gap = np.zeros(n, np.bool_)
    so_ = np.zeros(n)
    mo_ = np.zeros(n)
    adv = np.zeros(n)
    act = np.zeros(n, np.bool_)
    comp = np.zeros((n, N_COMP))
    n_tr = np.zeros(n)
    n_lq = np.zeros(n)
    in_mkt = np.zeros(n)
    first = np.full(n, -1.0)
    last = np.full(n, -1.0)
    cash = capital
    mbx = 0.0                # cross margin balance
    prev_eq = capital
    sum_r = sum_r2 = sum_d2 = 0.0
    n_r = 0
    peak = capital
    max_dd = 0.0
    dd_bars = 0
    max_dd_bars = 0
    g_first = -1
    g_last = -1
    g_in_mkt = 0

    for t in range(T):
        # ---- prices at the open; the move from the last close is PnL of what is held
        any_open = False
        for i in range(n):
            s = mem_sym[m0 + i]
            so = spot_open[t, s]
            po = perp_open[t, s]
            mo = mark_open[t, s]
            gap[i] = not (np.isfinite(so) and np.isfinite(po) and np.isfinite(mo))
            if not gap[i]:
                any_open = True
                if first[i] < 0.0:
                    first[i] = t
                last[i] = t
                if a[i] != 0.0:
                    comp[i, SPOT_PNL] += a[i] * (so - last_s[i])
                if b[i] != 0.0:
                    comp[i, PERP_PNL] += b[i] * (mo - last_m[i])
                last_s[i] = so
                last_m[i] = mo
        if any_open:
            if g_first < 0:
                g_first = t
            g_last = t

        # ---- (1) funding on the position held coming into the bar
        for i in range(n):
            r = funding[t, mem_sym[m0 + i]]
            if b[i] != 0.0 and np.isfinite(r):
                fm = mark_open[t, mem_sym[m0 + i]]
                if not np.isfinite(fm):
                    fm = last_m[i]
                f = -b[i] * fm * r
                if cross:
                    mbx += f
                else:
                    mbi[i] += f
                comp[i, FUNDING] += f

        # ---- (2) execution at the open
        eq_open = np.nan
        traded = False
        pending_perp_cost = 0.0
        for i in range(n):
            tg = target[t, mem_tgt[m0 + i]]
            wt = weight[t, mem_tgt[m0 + i]]
            if lock[i] != 0 and tg != lock[i]:
                lock[i] = 0
            d = 0
            if a[i] > 0.0:
                d = 1
            elif a[i] < 0.0:
                d = -1
            elif b[i] < 0.0:
                d = 1
            elif b[i] > 0.0:
                d = -1
            eff = tg
            if lock[i] != 0:
                eff = d if hold else 0
            if eff != 0 and not wt > 0.0:
                eff = 0
            if gap[i]:
                continue
            reb = False
            if d != 0 and a[i] != 0.0 and b[i] != 0.0 and eff == d:
                if reb_due[i]:
                    reb = True
                if reb_every > 0.0 and since[i] >= reb_every:
                    reb = True
                if lock[i] == 0 and wt != w_held[i]:
                    reb = True
            if eff == d and not reb:
                continue
            if eff == 0:
                kind = KIND_CLOSE_LEG if lock[i] != 0 else KIND_EXIT
            elif d == 0:
                kind = KIND_ENTRY
            elif eff != d:
                kind = KIND_FLIP
            elif reb_due[i] or (reb_every > 0.0 and since[i] >= reb_every):
                kind = KIND_REBALANCE
            else:
                kind = KIND_RESIZE
            if np.isnan(eq_open):
                eq_open = cash + mbx
                for j in range(n):
                    if a[j] != 0.0:
                        eq_open += a[j] * last_s[j]
                    if b[j] != 0.0:
                        eq_open += b[j] * (last_m[j] - entry[j])
                    eq_open += mbi[j]
            s = mem_sym[m0 + i]
            so = spot_open[t, s]
            po = perp_open[t, s]
            mo = mark_open[t, s]
            q = 0.0
            if eff != 0 and eq_open > 0.0:
                e_i = wt * eq_open
                if eff == 1:
                    notional = e_i * L / (L + 1.0)
                else:
                    notional = e_i / (1.0 / L + 1.0 / Ls)
                q = notional / so
            a2 = eff * q
            b2 = -eff * q
            da = a2 - a[i]
            db = b2 - b[i]
            if da == 0.0 and db == 0.0:
                since[i] = 0  # sized again, to the same quantities
                continue
            if db != 0.0:
                if cross:
                    mbx += b[i] * (po - entry[i])
                else:
                    mbi[i] += b[i] * (po - entry[i])
                comp[i, PERP_PNL] += db * (mo - po)
                b[i] = b2
                entry[i] = po if b2 != 0.0 else 0.0
            if da != 0.0:
                cash -= da * so
                a[i] = a2
            alloc[i] = q * so / L if b[i] != 0.0 else 0.0
            sn = abs(da) * so
            pn = abs(db) * po
            fee_s = p[P_SPOT_FEE] * sn
            fee_p = p[P_PERP_FEE] * pn
            spr_s = p[P_HALF_SPREAD] * sn
            spr_p = p[P_HALF_SPREAD] * pn
            vs = spot_vol[t - 1, s] if t > 0 else np.nan
            vp = perp_vol[t - 1, s] if t > 0 else np.nan
            slp_s = _slip(p[P_SLIP], p[P_SLIP_K], abs(da), vs) * sn
            slp_p = _slip(p[P_SLIP], p[P_SLIP_K], abs(db), vp) * pn
            cash -= fee_s + spr_s + slp_s
            if cross:
                pending_perp_cost += fee_p + spr_p + slp_p
            elif b[i] != 0.0:
                # the wallet is set to its margin N/L, then pays the perp's costs
                cash += mbi[i] - alloc[i]
                mbi[i] = alloc[i] - (fee_p + spr_p + slp_p)
            else:
                # a closed perp pays its costs, then its whole wallet moves to cash
                cash += mbi[i] - (fee_p + spr_p + slp_p)
                mbi[i] = 0.0
            comp[i, FEES] += fee_s + fee_p
            comp[i, SPREAD] += spr_s + spr_p
            comp[i, SLIPPAGE] += slp_s + slp_p
            n_tr[i] += 1.0
            since[i] = 0
            w_held[i] = wt if eff != 0 else 0.0
            traded = True
            if detail:
                rec_n = _record(rec, rec_n, m0 + i, t, kind, a[i], b[i], so, po, da, db, fee_s + fee_p,
                                spr_s + spr_p, slp_s + slp_p, 0.0, eq_open)
        if cross and traded:
            want = 0.0
            for i in range(n):
                want += alloc[i]
            if want > 0.0:
                cash += mbx - want
                mbx = want - pending_perp_cost
            else:
                cash += mbx - pending_perp_cost
                mbx = 0.0

        # ---- (3) liquidation at the adverse intrabar extremes
        for i in range(n):
            s = mem_sym[m0 + i]
            act[i] = not gap[i]
            mc = mark_close[t, s]
            if not np.isfinite(mc):
                mc = last_m[i]
            if b[i] != 0.0:
                x = mark_high[t, s] if b[i] < 0.0 else mark_low[t, s]
                adv[i] = x if np.isfinite(x) else mc
            mo_[i] = mark_open[t, s] if act[i] else last_m[i]
            if not act[i]:
                adv[i] = last_m[i]
        if cross:
            any_perp = False
            for i in range(n):
                if b[i] != 0.0 and act[i]:
                    any_perp = True
            if any_perp:
                lam = _cross_lambda(mbx, b, entry, mo_, adv, act, tiers, tier_start, tier_len, m0)
                if lam >= 0.0:
                    tot_not = 0.0
                    for i in range(n):
                        if b[i] != 0.0:
                            px = mo_[i] + lam * (adv[i] - mo_[i])
                            tot_not += abs(b[i]) * px
                    pxs = np.zeros(n)
                    fees_i = np.zeros(n)
                    for i in range(n):
                        if b[i] != 0.0:
                            px = mo_[i] + lam * (adv[i] - mo_[i])
                            pxs[i] = px
                            comp[i, PERP_PNL] += b[i] * (px - last_m[i])
                            mbx += b[i] * (px - entry[i])
                            fees_i[i] = p[P_LIQ_FEE] * abs(b[i]) * px
                            mbx -= fees_i[i]
                            comp[i, LIQ_FEES] += fees_i[i]
                    short = -mbx if mbx < 0.0 else 0.0
                    if mbx < 0.0:
                        mbx = 0.0
                    for i in range(n):
                        if b[i] != 0.0:
                            share = abs(b[i]) * pxs[i] / tot_not if tot_not > 0.0 else 1.0 / n
                            comp[i, INSURANCE] += short * share
                            b_before = b[i]
                            lock[i] = 1 if b[i] < 0.0 else -1
                            b[i] = 0.0
                            entry[i] = 0.0
                            alloc[i] = 0.0
                            n_lq[i] += 1.0
                            if detail:
                                rec_n = _record(rec, rec_n, m0 + i, t, KIND_LIQ_PERP, a[i], 0.0, np.nan, pxs[i],
                                                0.0, -b_before, 0.0, 0.0, 0.0, fees_i[i], np.nan)
                    cash += mbx
                    mbx = 0.0
        else:
            for i in range(n):
                if b[i] == 0.0 or not act[i]:
                    continue
                tl = tiers[tier_start[m0 + i]:tier_start[m0 + i] + tier_len[m0 + i]]
                q = abs(b[i])
                k = tier_of(tl, q * adv[i])
                if mbi[i] + b[i] * (adv[i] - entry[i]) <= q * adv[i] * tl[k, 2] - tl[k, 3]:
                    px = liq_price_mark(tl, b[i], entry[i], mbi[i])
                    if (b[i] < 0.0 and mo_[i] >= px) or (b[i] > 0.0 and mo_[i] <= px):
                        px = mo_[i]
                    comp[i, PERP_PNL] += b[i] * (px - last_m[i])
                    mbi[i] += b[i] * (px - entry[i])
                    lf = p[P_LIQ_FEE] * q * px
                    mbi[i] -= lf
                    comp[i, LIQ_FEES] += lf
                    if mbi[i] < 0.0:
                        comp[i, INSURANCE] += -mbi[i]
                        mbi[i] = 0.0
                    b_before = b[i]
                    lock[i] = 1 if b[i] < 0.0 else -1
                    b[i] = 0.0
                    entry[i] = 0.0
                    alloc[i] = 0.0
                    cash += mbi[i]
                    mbi[i] = 0.0
                    n_lq[i] += 1.0
                    if detail:
                        rec_n = _record(rec, rec_n, m0 + i, t, KIND_LIQ_PERP, a[i], 0.0, np.nan, px, 0.0,
                                        -b_before, 0.0, 0.0, 0.0, lf, np.nan)

        # spot margin of the group's one spot wallet: assets / borrowed ≤ level ⇒ every loan force-repaid
        borrowed = False
        for i in range(n):
            if a[i] < 0.0 and act[i]:
                borrowed = True
        if borrowed:
            a0 = cash
            slope = 0.0
            for i in range(n):
                if a[i] == 0.0:
                    continue
                s = mem_sym[m0 + i]
                so_[i] = spot_open[t, s] if act[i] else last_s[i]
                sc = spot_close[t, s]
                if not np.isfinite(sc):
                    sc = last_s[i]
                x = spot_high[t, s] if a[i] < 0.0 else spot_low[t, s]
                adv[i] = x if (np.isfinite(x) and act[i]) else (sc if act[i] else last_s[i])
                if a[i] > 0.0:
                    a0 += a[i] * so_[i]
                    slope += a[i] * (adv[i] - so_[i])
                else:
                    a0 -= lvl * (-a[i]) * so_[i]
                    slope -= lvl * (-a[i]) * (adv[i] - so_[i])
            if a0 + slope <= 0.0:
                lam = 0.0
                if a0 > 0.0 and slope < 0.0:
                    lam = min(-a0 / slope, 1.0)
                tot_not = 0.0
                for i in range(n):
                    if a[i] < 0.0:
                        tot_not += -a[i] * (so_[i] + lam * (adv[i] - so_[i]))
                lfs = np.zeros(n)
                pxs = np.zeros(n)
                for i in range(n):
                    if a[i] < 0.0:
                        px = so_[i] + lam * (adv[i] - so_[i])
                        pxs[i] = px
                        comp[i, SPOT_PNL] += a[i] * (px - last_s[i])
                        cash -= -a[i] * px
                        lfs[i] = p[P_LIQ_FEE] * (-a[i]) * px
                        cash -= lfs[i]
                        comp[i, LIQ_FEES] += lfs[i]
                short = -cash if cash < 0.0 else 0.0
                if cash < 0.0:
                    cash = 0.0
                for i in range(n):
                    if a[i] < 0.0:
                        comp[i, INSURANCE] += short * ((-a[i]) * pxs[i] / tot_not if tot_not > 0.0 else 1.0)
                        q = -a[i]
                        a[i] = 0.0
                        if lock[i] == 0:
                            lock[i] = -1
                        n_lq[i] += 1.0
                        if detail:
                            rec_n = _record(rec, rec_n, m0 + i, t, KIND_LIQ_SPOT, 0.0, b[i], pxs[i], np.nan, q,
                                            0.0, 0.0, 0.0, 0.0, lfs[i], np.nan)

        # ---- (4) borrow interest, (5) mark at the close
        eq = cash + mbx
        held_any = False
        for i in range(n):
            s = mem_sym[m0 + i]
            sc = spot_close[t, s]
            if not np.isfinite(sc):
                sc = last_s[i]
            mc = mark_close[t, s]
            if not np.isfinite(mc):
                mc = last_m[i]
            if a[i] < 0.0:
                br = borrow_rate[t, s]
                if not np.isfinite(br):
                    br = p[P_BORROW]
                cost = -a[i] * sc * br * bar_hours
                cash -= cost
                eq -= cost
                comp[i, BORROW] += cost
            if a[i] != 0.0:
                comp[i, SPOT_PNL] += a[i] * (sc - last_s[i])
                eq += a[i] * sc
            if b[i] != 0.0:
                comp[i, PERP_PNL] += b[i] * (mc - last_m[i])
                eq += b[i] * (mc - entry[i])
            eq += mbi[i]
            if np.isfinite(sc):
                last_s[i] = sc
            if np.isfinite(mc):
                last_m[i] = mc
            if a[i] != 0.0 or b[i] != 0.0:
                in_mkt[i] += 1.0
                since[i] += 1
                held_any = True
        if held_any:
            g_in_mkt += 1

        # ---- margin-ratio rebalance trigger, seen at this close, acted on at the next open
        if np.isfinite(reb_at):
            if cross:
                num = 0.0
                den = mbx
                for i in range(n):
                    if b[i] != 0.0:
                        tl = tiers[tier_start[m0 + i]:tier_start[m0 + i] + tier_len[m0 + i]]
                        q = abs(b[i])
                        k = tier_of(tl, q * last_m[i])
                        num += q * last_m[i] * tl[k, 2] - tl[k, 3]
                        den += b[i] * (last_m[i] - entry[i])
                due = den <= 0.0 or num / den >= reb_at
                for i in range(n):
                    reb_due[i] = due and b[i] != 0.0
            else:
                for i in range(n):
                    reb_due[i] = False
                    if b[i] != 0.0:
                        tl = tiers[tier_start[m0 + i]:tier_start[m0 + i] + tier_len[m0 + i]]
                        q = abs(b[i])
                        k = tier_of(tl, q * last_m[i])
                        den = mbi[i] + b[i] * (last_m[i] - entry[i])
                        mm = q * last_m[i] * tl[k, 2] - tl[k, 3]
                        reb_due[i] = den <= 0.0 or mm / den >= reb_at

        # ---- streaming statistics of the group's equity
        if g_first >= 0:
            rr = eq / prev_eq - 1.0 if prev_eq != 0.0 else 0.0
            sum_r += rr
            sum_r2 += rr * rr
            if rr < 0.0:
                sum_d2 += rr * rr
            n_r += 1
            prev_eq = eq
            if eq >= peak:
                peak = eq
                dd_bars = 0
            else:
                dd_bars += 1
                if dd_bars > max_dd_bars:
                    max_dd_bars = dd_bars
            dd = eq / peak - 1.0 if peak > 0.0 else 0.0
            if dd < max_dd:
                max_dd = dd

        if detail:
            gseries[G_EQUITY, t, g] = eq
            gseries[G_CASH, t, g] = cash
            mtot = mbx
            for i in range(n):
                mtot += mbi[i]
            gseries[G_MARGIN, t, g] = mtot
            for i in range(n):
                for k in range(N_COMP):
                    series[k, t, m0 + i] = comp[i, k]
                series[SPOT_QTY, t, m0 + i] = a[i]
                series[PERP_QTY, t, m0 + i] = b[i]
                series[MARGIN, t, m0 + i] = np.nan if cross else mbi[i]

    for i in range(n):
        for k in range(N_COMP):
            mtotals[k, m0 + i] = comp[i, k]
        mtotals[M_TRADES, m0 + i] = n_tr[i]
        mtotals[M_LIQ, m0 + i] = n_lq[i]
        mtotals[M_BARS_IN_MARKET, m0 + i] = in_mkt[i]
        mtotals[M_FIRST_BAR, m0 + i] = first[i]
        mtotals[M_LAST_BAR, m0 + i] = last[i]
    gtotals[T_EQUITY, g] = prev_eq
    gtotals[T_SUM_R, g] = sum_r
    gtotals[T_SUM_R2, g] = sum_r2
    gtotals[T_SUM_DOWN2, g] = sum_d2
    gtotals[T_N_R, g] = n_r
    gtotals[T_MAX_DD, g] = max_dd
    gtotals[T_MAX_DD_BARS, g] = max_dd_bars
    gtotals[T_PEAK, g] = peak
    gtotals[T_FIRST_BAR, g] = g_first
    gtotals[T_LAST_BAR, g] = g_last
    gtotals[T_BARS_IN_MARKET, g] = g_in_mkt
    return rec_n


@nb.njit(cache=True)
def simulate_detail_nb(
    spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, weight, grp_start, mem_sym, mem_tgt, params, tiers,
    tier_start, tier_len, bar_hours, series, gseries, mtotals, gtotals, rec,
):  # pragma: no cover - compiled
    """Detail mode: member and group series per bar, totals, and the trade log.

    Returns the number of trade-log records; if it exceeds ``rec.shape[0]`` the log was truncated and the
    caller runs again with room for that many.
    """
    n = 0
    for g in range(grp_start.shape[0] - 1):
        n = _group(g, grp_start[g], grp_start[g + 1], mem_sym, mem_tgt, tier_start, tier_len,
                   spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low,
                   mark_close, funding, borrow_rate, spot_vol, perp_vol, target, weight, params[:, g], tiers,
                   bar_hours, True, series, gseries, mtotals, gtotals, rec, n)
    return n


@nb.njit(cache=True, parallel=True)
def simulate_sweep_nb(
    spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, weight, grp_start, mem_sym, mem_tgt, params, tiers,
    tier_start, tier_len, bar_hours, mtotals, gtotals,
):  # pragma: no cover - compiled
    """Sweep mode: totals and streaming statistics only; memory O(groups + members), not O(bars × columns)."""
    series = np.empty((N_SERIES, 1, 1))
    gseries = np.empty((N_GSERIES, 1, 1))
    rec = np.empty((0, N_REC))
    for g in nb.prange(grp_start.shape[0] - 1):
        _group(g, grp_start[g], grp_start[g + 1], mem_sym, mem_tgt, tier_start, tier_len,
               spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
               funding, borrow_rate, spot_vol, perp_vol, target, weight, params[:, g], tiers, bar_hours,
               False, series, gseries, mtotals, gtotals, rec, 0)
