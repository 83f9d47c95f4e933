"""Liquidation rules (DESIGN.md §5): the adverse intrabar extremes, isolated, cross and spot-margin liquidation,
and what happens to a liquidated pair afterwards (``after_liquidation``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fundarb.engine.layout import (
    AFTER_REENTER,
    INSURANCE,
    KIND_LIQ_PERP,
    KIND_LIQ_SPOT,
    LIQ_FEES,
    PERP_PNL,
    SPOT_PNL,
    TIER_MMR,
)
from fundarb.engine.rules import (
    maintenance_nb,
    tier_maintenance_nb,
)
from fundarb.engine.steps import record_nb, tier_table_nb
from fundarb.engine.tiers import liq_price_mark, tier_of

__all__ = ["after_liquidation_nb", "count_liquidation_nb", "cross_liquidation_lambda_nb", "isolated_breached_nb",
           "liquidate_cross_nb", "liquidate_isolated_nb", "liquidate_spot_nb", "perp_extremes_nb", "spot_extremes_nb",
           "spot_margin_lambda_nb"]


@nb.njit(cache=True, inline="always")
def after_liquidation_nb(i, direction, t, after, lock, lock_bar, reent):  # pragma: no cover
    """Start the lock of ``after_liquidation = "close" | "hold"``, or mark the pair for ``"reenter"``."""
    if after == AFTER_REENTER:
        reent[i] = direction
    else:
        lock[i] = direction
        lock_bar[i] = t


@nb.njit(cache=True, inline="always")
def count_liquidation_nb(n_liq, first_liq, t):  # pragma: no cover
    """Count one liquidation event of the group at bar ``t``: returns the new ``(n_liquidations, first bar)``."""
    return n_liq + 1.0, (float(t) if first_liq < 0.0 else first_liq)


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
    after_liquidation_nb(i, 1 if b[i] < 0.0 else -1, t, after, lock, lock_bar, reent)
    b[i] = 0.0
    entry[i] = 0.0
    freed = mbi[i]
    mbi[i] = 0.0
    n_lq[i] += 1.0
    if detail:
        rec_n = record_nb(rec, rec_n, m0 + i, t, KIND_LIQ_PERP, a[i], 0.0, np.nan, px, 0.0, -b_before, 0.0, 0.0,
                        0.0, lf, np.nan)
    return freed, rec_n


@nb.njit(cache=True, inline="always")
def cross_liquidation_lambda_nb(mb, b, entry, mo, adv, tiers, tier_start, tier_len, m0):  # pragma: no cover
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


@nb.njit(cache=True)
def liquidate_cross_nb(lam, mbi, b, entry, a, mo, adv, last_m, lock, lock_bar, reent, n_lq, comp, after, loss_margin,
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
            after_liquidation_nb(i, 1 if b[i] < 0.0 else -1, t, after, lock, lock_bar, reent)
            b[i] = 0.0
            entry[i] = 0.0
            n_lq[i] += 1.0
            if detail:
                rec_n = record_nb(rec, rec_n, m0 + i, t, KIND_LIQ_PERP, a[i], 0.0, np.nan, pxs[i],
                                0.0, -b_before, 0.0, 0.0, 0.0, fees_i[i], np.nan)
    mbi[0] = kept
    return rec_n


@nb.njit(cache=True, inline="always")
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


@nb.njit(cache=True, inline="always")
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
                after_liquidation_nb(i, -1, t, after, lock, lock_bar, reent)
            n_lq[i] += 1.0
            if detail:
                rec_n = record_nb(rec, rec_n, m0 + i, t, KIND_LIQ_SPOT, 0.0, b[i], pxs[i], np.nan, q, 0.0, 0.0, 0.0,
                                0.0, lfs[i], np.nan)
    return cash, rec_n
