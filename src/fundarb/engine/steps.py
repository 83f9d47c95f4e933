"""Per-bar steps of the simulation (DESIGN.md §2's order of events) and the execution rules (§3, §4).

Each ``@njit`` function is one rule, named after it; :func:`fundarb.engine.nb._group` composes them. Functions
the bar loop calls on every bar are ``inline="always"``: Numba inlines them into the loop, which keeps the
member arrays in one frame (a call per bar with array arguments costs more than the rule itself).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fundarb.engine.layout import (
    AFTER_HOLD,
    BORROW,
    FEES,
    FUNDING,
    G_CASH,
    G_EQUITY,
    G_HELD,
    G_MARGIN,
    KIND_CLOSE_LEG,
    KIND_ENTRY,
    KIND_EXIT,
    KIND_FLIP,
    KIND_REBALANCE,
    KIND_REENTRY,
    KIND_RESIZE,
    MARGIN,
    N_COMP,
    PERP_PNL,
    PERP_QTY,
    SLIPPAGE,
    SPOT_PNL,
    SPOT_QTY,
    SPREAD,
)
from fundarb.engine.rules import (
    cushion_nb,
    rebalance_due_nb,
    spot_level_due_nb,
    trade_costs_nb,
)

__all__ = ["account_cushion_nb", "accrue_borrow_nb", "effective_target_nb", "equity_at_open_nb", "flex_nb",
           "funding_cash_nb", "held_direction_nb", "margin_triggers_nb", "mark_to_close_nb", "mark_to_open_nb",
           "order_kind_nb", "record_nb", "settle_funding_nb", "target_nb", "tier_table_nb", "trade_to_target_nb",
           "update_streaming_stats_nb", "write_bar_nb"]


@nb.njit(cache=True, inline="always")
def flex_nb(a, t, c):  # pragma: no cover
    """``a[t, c]`` with vectorbt-style flexible broadcasting: an axis of length 1 serves every row (column)."""
    return a[t if a.shape[0] > 1 else 0, c if a.shape[1] > 1 else 0]


@nb.njit(cache=True, inline="always")
def tier_table_nb(tiers, tier_start, tier_len, m):  # pragma: no cover
    """Member ``m``'s tier table, a slice of the stacked ``tiers``."""
    return tiers[tier_start[m]:tier_start[m] + tier_len[m]]


@nb.njit(cache=True, inline="always")
def record_nb(rec, n, member, t, kind, a, b, sp, pp, da, db, fees, spread, slip, lf, eq):  # pragma: no cover
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
def account_cushion_nb(mbi, b, entry, mark, tiers, tier_start, tier_len, m0):  # pragma: no cover
    """Cross account's cushion ``MB + Σ b_i·(m_i − entry_i) − Σ MM_i`` at the marks ``mark``."""
    c = 0.0
    for i in range(b.shape[0]):
        c += mbi[i]
        if b[i] != 0.0:
            tl = tier_table_nb(tiers, tier_start, tier_len, m0 + i)
            c += cushion_nb(0.0, b[i], entry[i], mark[i], tl)
    return c


@nb.njit(cache=True, inline="always")
def margin_triggers_nb(reb_due, c0, c0g, cash, a, b, entry, mbi, last_s, last_m, tiers, tier_start, tier_len, m0,
                     cross, reb_at, spot_reb):  # pragma: no cover
    """Set ``reb_due`` from the cushion (``rebalance_at``) and spot-level (``spot_rebalance_level``) triggers at
    this close; ``c0`` holds each isolated perp's cushion after its last sizing, ``c0g`` the cross account's."""
    n = b.shape[0]
    for i in range(n):
        reb_due[i] = False
    if 0.0 < reb_at < 1.0:
        if cross:
            c = account_cushion_nb(mbi, b, entry, last_m, tiers, tier_start, tier_len, m0)
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


@nb.njit(cache=True, inline="always")
def write_bar_nb(t, g, m0, eq, cash, held, cross, a, b, mbi, comp, series, gseries):  # pragma: no cover
    """Detail mode: this bar's group and member series."""
    gseries[G_EQUITY, t, g] = eq
    gseries[G_HELD, t, g] = 1.0 if held else 0.0
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
