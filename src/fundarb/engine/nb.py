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

from fundarb.engine.layout import (
    AFTER_HOLD,
    AFTER_REENTER,
    BORROW,
    FEES,
    FUNDING,
    G_CASH,
    G_EQUITY,
    G_MARGIN,
    INSURANCE,
    KIND_CLOSE_LEG,
    KIND_ENTRY,
    KIND_EXIT,
    KIND_FLIP,
    KIND_LIQ_PERP,
    KIND_LIQ_SPOT,
    KIND_REBALANCE,
    KIND_REENTRY,
    KIND_RESIZE,
    LIQ_FEES,
    M_BARS_IN_MARKET,
    M_FIRST_BAR,
    M_LAST_BAR,
    M_LIQ,
    M_LOCK_BAR,
    M_TRADES,
    MARGIN,
    N_COMP,
    N_GSERIES,
    N_SERIES,
    PERP_PNL,
    PERP_QTY,
    SLIPPAGE,
    SPOT_PNL,
    SPOT_QTY,
    SPREAD,
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
    TIER_MMR,
    TRADE_DTYPE,
)
from fundarb.engine.rules import (
    cost_reserved_qty_nb,
    cushion_nb,
    maintenance_nb,
    rebalance_due_nb,
    spot_level_due_nb,
    tier_maintenance_nb,
    trade_costs_nb,
)
from fundarb.engine.tiers import liq_price_mark, tier_of


@nb.njit(cache=True, inline="always")
def _record(rec, n, member, t, kind, a, b, sp, pp, da, db, fees, spread, slip, lf, eq):  # pragma: no cover
    if n < rec.shape[0]:
        r = rec[n]
        r.member = member
        r.bar = t
        r.kind = kind
        r.spot_qty = a
        r.perp_qty = b
        r.spot_price = sp
        r.perp_price = pp
        r.spot_traded = da
        r.perp_traded = db
        r.fees = fees
        r.spread = spread
        r.slippage = slip
        r.liquidation_fee = lf
        r.equity_before = eq
    return n + 1


@nb.njit(cache=True, inline="always")
def flex_nb(a, t, c):  # pragma: no cover
    """``a[t, c]`` with vectorbt-style flexible broadcasting: an axis of length 1 serves every row (column)."""
    return a[t if a.shape[0] > 1 else 0, c if a.shape[1] > 1 else 0]


@nb.njit(cache=True, inline="always")
def tier_table_nb(tiers, tier_start, tier_len, m):  # pragma: no cover
    """Member ``m``'s tier table, a slice of the stacked ``tiers``."""
    return tiers[tier_start[m]:tier_start[m] + tier_len[m]]


@nb.njit(cache=True)
def _cross_lambda(mb, b, entry, mo, adv, tiers, tier_start, tier_len, m0):  # pragma: no cover
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
            if b[i] == 0.0:
                continue  # a member in a gap has adv == mo: constant at its last known mark
            tl = tier_table_nb(tiers, tier_start, tier_len, m0 + i)
            q = abs(b[i])
            m_at = mo[i] + lam * (adv[i] - mo[i])
            k = tier_of(tl, q * m_at)
            a0 += b[i] * (mo[i] - entry[i]) - tier_maintenance_nb(tl, k, q * mo[i])
            slope += (b[i] - q * tl[k, TIER_MMR]) * (adv[i] - mo[i])  # d/dλ of uPnL − MM within tier k
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


@nb.njit(cache=True, inline="always")
def _after_liquidation(i, direction, t, after, lock, lock_bar, reent):  # pragma: no cover
    """Start the lock of ``after_liquidation = "close" | "hold"``, or mark the pair for ``"reenter"``."""
    if after == AFTER_REENTER:
        reent[i] = direction
    else:
        lock[i] = direction
        lock_bar[i] = t


@nb.njit(cache=True)
def _account_cushion(mbi, b, entry, mark, tiers, tier_start, tier_len, m0):  # pragma: no cover
    """Cross account's cushion ``MB + Σ b_i·(m_i − entry_i) − Σ MM_i`` at the marks ``mark``."""
    c = 0.0
    for i in range(b.shape[0]):
        c += mbi[i]
        if b[i] != 0.0:
            tl = tier_table_nb(tiers, tier_start, tier_len, m0 + i)
            c += cushion_nb(0.0, b[i], entry[i], mark[i], tl)
    return c


@nb.njit(cache=True)
def _margin_triggers(reb_due, c0, c0g, cash, a, b, entry, mbi, last_s, last_m, tiers, tier_start, tier_len, m0,
                     cross, reb_at, spot_reb):  # pragma: no cover
    """Set ``reb_due`` from the cushion (``rebalance_at``) and spot-level (``spot_rebalance_level``) triggers at
    this close; ``c0`` holds each isolated perp's cushion after its last sizing, ``c0g`` the cross account's."""
    n = b.shape[0]
    for i in range(n):
        reb_due[i] = False
    if 0.0 < reb_at < 1.0:
        if cross:
            c = _account_cushion(mbi, b, entry, last_m, tiers, tier_start, tier_len, m0)
            due = rebalance_due_nb(c, c0g, reb_at)
            for i in range(n):
                reb_due[i] = due and b[i] != 0.0
        else:
            for i in range(n):
                if b[i] != 0.0:
                    tl = tier_table_nb(tiers, tier_start, tier_len, m0 + i)
                    reb_due[i] = rebalance_due_nb(cushion_nb(mbi[i], b[i], entry[i], last_m[i], tl), c0[i], reb_at)
    if np.isfinite(spot_reb):
        assets = cash
        borrowed = 0.0
        for i in range(n):
            if a[i] > 0.0:
                assets += a[i] * last_s[i]
            elif a[i] < 0.0:
                borrowed += -a[i] * last_s[i]
        if spot_level_due_nb(assets, borrowed, spot_reb):
            for i in range(n):
                if b[i] != 0.0:
                    reb_due[i] = True


@nb.njit(cache=True)
def _liquidate_cross(lam, mbi, b, entry, a, mo, adv, last_m, lock, lock_bar, reent, n_lq, comp, after, loss_margin,
                     liq_fee, t, m0, detail, rec, rec_n):  # pragma: no cover
    """Liquidate every perp of a cross account at ``m_i(λ)``: fills, fees, insurance share, ``"margin"`` loss.

    Leaves what is left of the wallet in ``mbi`` (the caller moves it to cash) and returns the record count.
    """
    n = b.shape[0]
    pxs = np.zeros(n)
    fees_i = np.zeros(n)
    tot_not = 0.0
    mbx = 0.0
    for i in range(n):
        mbx += mbi[i]
        mbi[i] = 0.0
    for i in range(n):
        if b[i] != 0.0:
            px = mo[i] + lam * (adv[i] - mo[i])
            pxs[i] = px
            tot_not += abs(b[i]) * px
            comp[i, PERP_PNL] += b[i] * (px - last_m[i])
            mbx += b[i] * (px - entry[i])
            fees_i[i] = liq_fee * abs(b[i]) * px
            mbx -= fees_i[i]
    short = -mbx if mbx < 0.0 else 0.0
    if mbx < 0.0:
        mbx = 0.0
    kept = 0.0 if loss_margin else mbx
    lost = mbx - kept
    for i in range(n):
        if b[i] != 0.0:
            share = abs(b[i]) * pxs[i] / tot_not if tot_not > 0.0 else 1.0 / n
            comp[i, INSURANCE] += short * share
            fees_i[i] += lost * share
            comp[i, LIQ_FEES] += fees_i[i]
            b_before = b[i]
            _after_liquidation(i, 1 if b[i] < 0.0 else -1, t, after, lock, lock_bar, reent)
            b[i] = 0.0
            entry[i] = 0.0
            n_lq[i] += 1.0
            if detail:
                rec_n = _record(rec, rec_n, m0 + i, t, KIND_LIQ_PERP, a[i], 0.0, np.nan, pxs[i],
                                0.0, -b_before, 0.0, 0.0, 0.0, fees_i[i], np.nan)
    mbi[0] = kept
    return rec_n


@nb.njit(cache=True, inline="always")
def count_liquidation_nb(n_liq, first_liq, t):  # pragma: no cover
    """Count one liquidation event of the group at bar ``t``: returns the new ``(n_liquidations, first bar)``."""
    return n_liq + 1.0, (t if first_liq < 0.0 else first_liq)


@nb.njit(cache=True, inline="always")
def mark_to_open_nb(t, m0, mem_sym, spot_open, perp_open, mark_open, a, b, last_s, last_m, gap, act_s, act_p,
                    comp, first, last):  # pragma: no cover
    """Prices at the open: the move from the last close is PnL of what is held. Returns whether any pair trades."""
    any_open = False
    for i in range(b.shape[0]):
        s = mem_sym[m0 + i]
        so = spot_open[t, s]
        po = perp_open[t, s]
        mo = mark_open[t, s]
        act_s[i] = np.isfinite(so)
        act_p[i] = np.isfinite(mo)
        gap[i] = not (act_s[i] and np.isfinite(po) and act_p[i])
        if not gap[i]:
            any_open = True
            if first[i] < 0.0:
                first[i] = t
            last[i] = t
        # each leg's last known price moves to its own open when that exists (a spot-only gap still moves
        # the mark, which sizing, funding and the cross check then use)
        if act_s[i]:
            if a[i] != 0.0:
                comp[i, SPOT_PNL] += a[i] * (so - last_s[i])
            last_s[i] = so
        if act_p[i]:
            if b[i] != 0.0:
                comp[i, PERP_PNL] += b[i] * (mo - last_m[i])
            last_m[i] = mo
    return any_open


@nb.njit(cache=True, inline="always")
def funding_cash_nb(b, mark, rate):  # pragma: no cover
    """DESIGN §4 funding: the perp ``b = s·q`` receives ``−s·q·m·r`` (shorts are paid when ``r > 0``)."""
    return -b * mark * rate


@nb.njit(cache=True, inline="always")
def settle_funding_nb(t, m0, mem_sym, funding, mark_open, b, last_m, mbi, comp):  # pragma: no cover
    """DESIGN §2 step 1: funding on the position held coming into the bar, into that perp's margin."""
    for i in range(b.shape[0]):
        r = funding[t, mem_sym[m0 + i]]
        if b[i] != 0.0 and np.isfinite(r):
            fm = mark_open[t, mem_sym[m0 + i]]
            if not np.isfinite(fm):
                fm = last_m[i]
            f = funding_cash_nb(b[i], fm, r)
            mbi[i] += f
            comp[i, FUNDING] += f


@nb.njit(cache=True, inline="always")
def held_direction_nb(a, b):  # pragma: no cover
    """Direction of a held pair: +1 carry (long spot / short perp), −1 reverse, 0 flat (from either leg)."""
    if a > 0.0:
        return 1
    if a < 0.0:
        return -1
    if b < 0.0:
        return 1
    if b > 0.0:
        return -1
    return 0


@nb.njit(cache=True, inline="always")
def equity_at_open_nb(cash, a, b, entry, mbi, last_s, last_m):  # pragma: no cover
    """The group's equity at the open prices, ``E`` of DESIGN §3 sizing."""
    eq = cash
    for j in range(b.shape[0]):
        if a[j] != 0.0:
            eq += a[j] * last_s[j]
        if b[j] != 0.0:
            eq += b[j] * (last_m[j] - entry[j])
        eq += mbi[j]
    return eq


@nb.njit(cache=True, inline="always")
def trade_to_target_nb(i, q, eff, so, po, mo, vs, vp, a, b, entry, mbi, comp, cash, L, p):  # pragma: no cover
    """Fill member ``i`` to ``(eff·q, −eff·q)`` at the open (DESIGN §3 execution, §4 costs).

    The perp's margin is set to ``N/L`` (a free transfer from cash) and then pays the perp's costs; a closed
    perp pays its costs and its whole margin moves to cash. Returns ``(cash, da, db, fees, spread, slippage)``.
    """
    a2 = eff * q
    b2 = -eff * q
    da = a2 - a[i]
    db = b2 - b[i]
    if db != 0.0:
        mbi[i] += b[i] * (po - entry[i])
        comp[i, PERP_PNL] += db * (mo - po)
        b[i] = b2
        entry[i] = po if b2 != 0.0 else 0.0
    if da != 0.0:
        cash -= da * so
        a[i] = a2
    fee_s, fee_p, spr_s, spr_p, slp_s, slp_p = trade_costs_nb(
        da, db, so, po, vs, vp, p.spot_fee, p.perp_fee, p.half_spread, p.slippage, p.slippage_k)
    cash -= fee_s + spr_s + slp_s
    if b[i] != 0.0:
        alloc = q * so / L
        cash += mbi[i] - alloc
        mbi[i] = alloc - (fee_p + spr_p + slp_p)
    else:
        cash += mbi[i] - (fee_p + spr_p + slp_p)
        mbi[i] = 0.0
    comp[i, FEES] += fee_s + fee_p
    comp[i, SPREAD] += spr_s + spr_p
    comp[i, SLIPPAGE] += slp_s + slp_p
    return cash, da, db, fee_s + fee_p, spr_s + spr_p, slp_s + slp_p


@nb.njit(cache=True, inline="always")
def target_nb(target, weight):  # pragma: no cover
    """The target direction at this open: a zero (or NaN) weight is a flat target (it also releases a lock)."""
    return target if weight > 0.0 else 0


@nb.njit(cache=True, inline="always")
def effective_target_nb(target, weight, lock, held, after):  # pragma: no cover
    """DESIGN §5 after a liquidation: while the lock holds, ``"hold"`` keeps what is held, ``"close"`` stays flat."""
    eff = target
    if lock != 0:
        eff = held if after == AFTER_HOLD else 0
    if eff != 0 and not weight > 0.0:
        eff = 0
    return eff


@nb.njit(cache=True, inline="always")
def order_kind_nb(eff, held, reentry, lock, a, b, margin_due, periodic, weight_moved):  # pragma: no cover
    """What the open does to one pair (DESIGN §2 step 2, §5 triggers): a ``KIND_*`` or −1 for nothing.

    A held pair at its target is sized again when a margin-management trigger fired at the last close
    (``margin_due``), the periodic rebalance is due, its weight moved, or it re-enters after a liquidation.
    """
    reenter = reentry != 0 and eff == reentry
    if held != 0 and a != 0.0 and b != 0.0 and eff == held:
        if margin_due or periodic:
            return KIND_REENTRY if reenter else KIND_REBALANCE
        if lock == 0 and weight_moved:
            return KIND_REENTRY if reenter else KIND_RESIZE
    if reenter:
        return KIND_REENTRY
    if eff == held:
        return -1
    if eff == 0:
        return KIND_CLOSE_LEG if lock != 0 else KIND_EXIT
    if held == 0:
        return KIND_ENTRY
    return KIND_FLIP


@nb.njit(cache=True, inline="always")
def perp_extremes_nb(t, m0, mem_sym, mark_open, mark_high, mark_low, mark_close, b, act_p, last_m, mo_,
                     adv):  # pragma: no cover
    """Each perp's mark at the open ``mo_`` and at its adverse intrabar extreme ``adv`` (high for a short)."""
    for i in range(b.shape[0]):
        s = mem_sym[m0 + i]
        mo_[i] = mark_open[t, s] if act_p[i] else last_m[i]
        adv[i] = mo_[i]
        if b[i] != 0.0 and act_p[i]:
            mc = mark_close[t, s]
            if not np.isfinite(mc):
                mc = last_m[i]
            x = mark_high[t, s] if b[i] < 0.0 else mark_low[t, s]
            adv[i] = x if np.isfinite(x) else mc


@nb.njit(cache=True, inline="always")
def isolated_breached_nb(mb, b, entry, adv, tl):  # pragma: no cover
    """DESIGN §5 isolated trigger: ``MB + s·q·(m − entry) ≤ MM`` at the adverse mark ``adv``."""
    return mb + b * (adv - entry) <= maintenance_nb(tl, abs(b), adv)


@nb.njit(cache=True)
def liquidate_isolated_nb(i, t, tl, b, entry, mbi, a, mo_, adv, last_m, comp, lock, lock_bar, reent, n_lq, after,
                          loss_margin, liq_fee, m0, detail, rec, rec_n):  # pragma: no cover
    """DESIGN §5 isolated liquidation of member ``i``'s perp if its margin falls to maintenance at ``adv``.

    Fills at the liquidation price (or the open if it gapped through), pays the liquidation fee, sends any
    shortfall to the insurance fund and (``"margin"``) the rest of the margin too. Returns ``(freed, rec_n)``:
    the margin left to move to cash, ``−1`` if not liquidated.
    """
    if not isolated_breached_nb(mbi[i], b[i], entry[i], adv[i], tl):
        return -1.0, rec_n
    q = abs(b[i])
    px = liq_price_mark(tl, b[i], entry[i], mbi[i])
    if (b[i] < 0.0 and mo_[i] >= px) or (b[i] > 0.0 and mo_[i] <= px):
        px = mo_[i]
    comp[i, PERP_PNL] += b[i] * (px - last_m[i])
    mbi[i] += b[i] * (px - entry[i])
    lf = liq_fee * q * px
    mbi[i] -= lf
    if mbi[i] < 0.0:
        comp[i, INSURANCE] += -mbi[i]
        mbi[i] = 0.0
    if loss_margin:
        lf += mbi[i]  # the rest of the isolated margin goes to the insurance fund
        mbi[i] = 0.0
    comp[i, LIQ_FEES] += lf
    b_before = b[i]
    _after_liquidation(i, 1 if b[i] < 0.0 else -1, t, after, lock, lock_bar, reent)
    b[i] = 0.0
    entry[i] = 0.0
    freed = mbi[i]
    mbi[i] = 0.0
    n_lq[i] += 1.0
    if detail:
        rec_n = _record(rec, rec_n, m0 + i, t, KIND_LIQ_PERP, a[i], 0.0, np.nan, px, 0.0, -b_before, 0.0, 0.0,
                        0.0, lf, np.nan)
    return freed, rec_n


@nb.njit(cache=True)
def spot_extremes_nb(t, m0, mem_sym, spot_open, spot_high, spot_low, spot_close, a, act_s, last_s, so_,
                     adv):  # pragma: no cover
    """Each spot leg's price at the open ``so_`` and at its adverse intrabar extreme ``adv`` (high for a loan)."""
    for i in range(a.shape[0]):
        if a[i] == 0.0:
            continue
        s = mem_sym[m0 + i]
        so_[i] = spot_open[t, s] if act_s[i] else last_s[i]
        sc = spot_close[t, s]
        if not np.isfinite(sc):
            sc = last_s[i]
        x = spot_high[t, s] if a[i] < 0.0 else spot_low[t, s]
        adv[i] = x if (np.isfinite(x) and act_s[i]) else (sc if act_s[i] else last_s[i])


@nb.njit(cache=True)
def spot_margin_lambda_nb(cash, a, so_, adv, level):  # pragma: no cover
    """Fraction λ of the way to the adverse extremes at which ``assets / borrowed`` reaches ``level``; −1 if never.

    ``assets − level·borrowed`` is linear in λ when every spot price moves ``so + λ·(adv − so)``.
    """
    a0 = cash
    slope = 0.0
    for i in range(a.shape[0]):
        if a[i] > 0.0:
            a0 += a[i] * so_[i]
            slope += a[i] * (adv[i] - so_[i])
        elif a[i] < 0.0:
            a0 -= level * (-a[i]) * so_[i]
            slope -= level * (-a[i]) * (adv[i] - so_[i])
    if not a0 + slope <= 0.0:
        return -1.0
    lam = 0.0
    if a0 > 0.0 and slope < 0.0:
        lam = min(-a0 / slope, 1.0)
    return lam


@nb.njit(cache=True)
def liquidate_spot_nb(lam, a, b, so_, adv, last_s, cash, comp, lock, lock_bar, reent, n_lq, after, liq_fee, t, m0,
                      detail, rec, rec_n):  # pragma: no cover
    """DESIGN §5 spot liquidation: every loan of the spot wallet force-repaid at ``so + λ·(adv − so)``.

    Each repayment pays the liquidation fee; a negative wallet is the insurance fund's, shared by notional.
    Returns ``(cash, rec_n)``.
    """
    n = a.shape[0]
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
            lfs[i] = liq_fee * (-a[i]) * px
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
            if lock[i] == 0 and reent[i] == 0:
                _after_liquidation(i, -1, t, after, lock, lock_bar, reent)
            n_lq[i] += 1.0
            if detail:
                rec_n = _record(rec, rec_n, m0 + i, t, KIND_LIQ_SPOT, 0.0, b[i], pxs[i], np.nan, q, 0.0, 0.0, 0.0,
                                0.0, lfs[i], np.nan)
    return cash, rec_n


@nb.njit(cache=True, inline="always")
def accrue_borrow_nb(a, price, rate, bar_hours):  # pragma: no cover
    """DESIGN §4 borrow: interest ``|a|·p·r·Δh`` on a borrowed spot quantity ``a < 0`` (hourly rate ``r``)."""
    return -a * price * rate * bar_hours


@nb.njit(cache=True, inline="always")
def mark_to_close_nb(t, m0, mem_sym, spot_close, mark_close, borrow_rate, default_rate, bar_hours, a, b, entry, mbi,
                     last_s, last_m, comp, in_mkt, since, cash):  # pragma: no cover
    """DESIGN §2 steps 4–5: borrow interest out of cash, then mark every leg at the close.

    Returns ``(cash, equity, held_any)``.
    """
    eq = cash
    held_any = False
    for i in range(b.shape[0]):
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
                br = default_rate
            cost = accrue_borrow_nb(a[i], sc, br, bar_hours)
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
    return cash, eq, held_any




@nb.njit(cache=True, inline="always")
def update_streaming_stats_nb(eq, prev_eq, sum_r, sum_r2, sum_d2, n_r, peak, dd_bars, max_dd_bars,
                              max_dd):  # pragma: no cover
    """Fold the close's equity into the streaming statistics (returns, drawdown; DESIGN §6)."""
    rr = eq / prev_eq - 1.0 if prev_eq != 0.0 else 0.0
    sum_r += rr
    sum_r2 += rr * rr
    if rr < 0.0:
        sum_d2 += rr * rr
    n_r += 1.0
    if eq >= peak:
        peak = eq
        dd_bars = 0.0
    else:
        dd_bars += 1.0
        if dd_bars > max_dd_bars:
            max_dd_bars = dd_bars
    dd = eq / peak - 1.0 if peak > 0.0 else 0.0
    if dd < max_dd:
        max_dd = dd
    return eq, sum_r, sum_r2, sum_d2, n_r, peak, dd_bars, max_dd_bars, max_dd


@nb.njit(cache=True)
def _group(
    g, m0, m1, mem_sym, mem_tgt, tier_start, tier_len,
    spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, weight, p, tiers, bar_hours,
    detail, series, gseries, mtotals, gtotals, rec, rec_n,
):  # pragma: no cover - compiled
    """Simulate group ``g`` (members ``m0 … m1-1``) bar by bar in DESIGN §2's order. Returns the record count.

    ``mbi[i]`` is member ``i``'s margin: its isolated wallet, or in cross margin its share of the one futures
    wallet (the wallet is the sum of the shares, engine.md rule 2).
    """
    T = spot_open.shape[0]
    n = m1 - m0
    after = p.after_liquidation
    cross = p.cross_margin
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
                rec_n = _record(rec, rec_n, m0 + i, t, kind, a[i], b[i], so, po, da, db, fees, spread, slip, 0.0,
                                eq_open)
        if cross and perp_traded:
            c0g = _account_cushion(mbi, b, entry, last_m, tiers, tier_start, tier_len, m0)

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
                lam = _cross_lambda(mbx, b, entry, mo_, adv, tiers, tier_start, tier_len, m0)
                if lam >= 0.0:
                    rec_n = _liquidate_cross(lam, mbi, b, entry, a, mo_, adv, last_m, lock, lock_bar, reent,
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
        _margin_triggers(reb_due, c0, c0g, cash, a, b, entry, mbi, last_s, last_m, tiers, tier_start, tier_len,
                         m0, cross, p.rebalance_at, p.spot_rebalance_level)

        if g_first >= 0.0:
            prev_eq, sum_r, sum_r2, sum_d2, n_r, peak, dd_bars, max_dd_bars, max_dd = update_streaming_stats_nb(
                eq, prev_eq, sum_r, sum_r2, sum_d2, n_r, peak, dd_bars, max_dd_bars, max_dd)
        if detail:
            _write_bar(t, g, m0, eq, cash, cross, a, b, mbi, comp, series, gseries)

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


@nb.njit(cache=True)
def _write_bar(t, g, m0, eq, cash, cross, a, b, mbi, comp, series, gseries):  # pragma: no cover
    """Detail mode: this bar's group and member series."""
    gseries[G_EQUITY, t, g] = eq
    gseries[G_CASH, t, g] = cash
    mtot = 0.0
    for i in range(b.shape[0]):
        mtot += mbi[i]
    gseries[G_MARGIN, t, g] = mtot
    for i in range(b.shape[0]):
        for k in range(N_COMP):
            series[k, t, m0 + i] = comp[i, k]
        series[SPOT_QTY, t, m0 + i] = a[i]
        series[PERP_QTY, t, m0 + i] = b[i]
        series[MARGIN, t, m0 + i] = np.nan if cross else mbi[i]


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
    n = np.int64(0)  # np.int64 and np.bool_ (not literals) keep _group at one compiled signature
    for g in range(grp_start.shape[0] - 1):
        n = _group(g, grp_start[g], grp_start[g + 1], mem_sym, mem_tgt, tier_start, tier_len,
                   spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low,
                   mark_close, funding, borrow_rate, spot_vol, perp_vol, target, weight, params[g], tiers,
                   bar_hours, np.bool_(True), series, gseries, mtotals, gtotals, rec, n)
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
    rec = np.empty(0, TRADE_DTYPE)
    for g in nb.prange(grp_start.shape[0] - 1):
        _group(g, grp_start[g], grp_start[g + 1], mem_sym, mem_tgt, tier_start, tier_len,
               spot_open, spot_high, spot_low, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
               funding, borrow_rate, spot_vol, perp_vol, target, weight, params[g], tiers, bar_hours,
               np.bool_(False), series, gseries, mtotals, gtotals, rec, np.int64(0))
