"""Small Numba rules the kernels compose: sizing with its cost reserve, trade costs, and margin management.

Each function is one rule of docs/engine.md, named after it, so that ``nb._group`` reads as the order of
events of a bar and the reference simulator can be checked rule by rule.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fundarb.engine.layout import TIER_CUM, TIER_MMR
from fundarb.engine.tiers import tier_of

__all__ = ["cost_reserved_qty_nb", "cushion_nb", "maintenance_nb", "rebalance_due_nb", "sizing_qty_nb",
           "slippage_frac_nb", "spot_level_due_nb", "tier_maintenance_nb", "trade_costs_nb"]

#: Iterations allowed to the cost-reserve fixed point (it settles in a handful; the cap only guards a
#: two-float oscillation at machine precision).
MAX_RESERVE_ITER = 64


@nb.njit(cache=True, inline="always")
def slippage_frac_nb(frac: float, k: float, qty: float, vol: float) -> float:  # pragma: no cover
    """Slippage as a fraction of notional: ``k·sqrt(qty/vol)`` when the model is on and the volume known."""
    if k > 0.0 and vol > 0.0 and np.isfinite(vol):
        return k * np.sqrt(qty / vol)
    return frac


@nb.njit(cache=True)
def trade_costs_nb(da, db, so, po, vs, vp, spot_fee, perp_fee, half_spread, slip, slip_k):  # pragma: no cover
    """Costs of trading ``da`` spot at ``so`` and ``db`` perp at ``po`` (engine.md rule 2, Costs).

    Returns ``(fee_s, fee_p, spread_s, spread_p, slip_s, slip_p)`` in quote currency.
    """
    sn = abs(da) * so
    pn = abs(db) * po
    return (spot_fee * sn, perp_fee * pn, half_spread * sn, half_spread * pn,
            slippage_frac_nb(slip, slip_k, abs(da), vs) * sn, slippage_frac_nb(slip, slip_k, abs(db), vp) * pn)


@nb.njit(cache=True, inline="always")
def sizing_qty_nb(direction: int, equity: float, so: float, L: float, Ls: float) -> float:  # pragma: no cover
    """DESIGN §3 sizing: carry ``N = E·L/(L+1)``, reverse ``N = E/(1/L + 1/Ls)``; returns ``N / so`` (0 if E ≤ 0)."""
    if direction == 0 or not equity > 0.0:
        return 0.0
    if direction == 1:
        return equity * L / (L + 1.0) / so
    return equity / (1.0 / L + 1.0 / Ls) / so


@nb.njit(cache=True)
def cost_reserved_qty_nb(direction, equity, a, b, so, po, vs, vp, L, Ls, spot_fee, perp_fee, half_spread, slip,
                         slip_k):  # pragma: no cover
    """Quantity ``q'`` with ``q' = sizing(E − cost(q'))``: sizing that leaves room for its own trade's costs.

    ``cost(q')`` is the fees, spread and slippage of trading from ``(a, b)`` to ``(d·q', −d·q')``. Iterated
    from ``sizing(E)`` until it stops changing (engine.md rule 2).
    """
    top = sizing_qty_nb(direction, equity, so, L, Ls)
    if top == 0.0:
        return 0.0
    q = top
    for _ in range(MAX_RESERVE_ITER):
        q2 = _reserved_sizing_nb(q, direction, equity, a, b, so, po, vs, vp, L, Ls, spot_fee, perp_fee, half_spread,
                                 slip, slip_k)
        if q2 == q:
            return q
        q = q2
    # no convergence (e.g. steep participation slippage makes the iteration oscillate): bisect for the fixed
    # point on [0, sizing(E)], keeping the lower end where sizing(E − cost(q)) ≥ q
    lo, hi = 0.0, top
    while True:
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            return lo
        if _reserved_sizing_nb(mid, direction, equity, a, b, so, po, vs, vp, L, Ls, spot_fee, perp_fee,
                               half_spread, slip, slip_k) >= mid:
            lo = mid
        else:
            hi = mid


@nb.njit(cache=True)
def _reserved_sizing_nb(q, direction, equity, a, b, so, po, vs, vp, L, Ls, spot_fee, perp_fee, half_spread, slip,
                        slip_k):  # pragma: no cover
    """``sizing(E − cost(q))``: the quantity the equity left after trading to ``q`` would size."""
    c = trade_costs_nb(direction * q - a, -direction * q - b, so, po, vs, vp, spot_fee, perp_fee, half_spread,
                       slip, slip_k)
    return sizing_qty_nb(direction, equity - (c[0] + c[1] + c[2] + c[3] + c[4] + c[5]), so, L, Ls)


@nb.njit(cache=True, inline="always")
def tier_maintenance_nb(tiers: np.ndarray, k: int, notional: float) -> float:  # pragma: no cover
    """DESIGN §5 maintenance margin ``MM = n·mmr − cum`` of notional ``n`` in tier row ``k``."""
    return notional * tiers[k, TIER_MMR] - tiers[k, TIER_CUM]


@nb.njit(cache=True, inline="always")
def maintenance_nb(tiers: np.ndarray, qty: float, mark: float) -> float:  # pragma: no cover
    """Maintenance margin of ``qty`` at ``mark`` in the tier holding ``n = qty·mark``."""
    k = tier_of(tiers, qty * mark)
    return tier_maintenance_nb(tiers, k, qty * mark)


@nb.njit(cache=True, inline="always")
def cushion_nb(mb: float, b: float, entry: float, mark: float, tiers: np.ndarray) -> float:  # pragma: no cover
    """One perp's part of the cushion ``C = MB + b·(m − entry) − MM(|b|·m)`` (DESIGN §5 margin management)."""
    return mb + b * (mark - entry) - maintenance_nb(tiers, abs(b), mark)


@nb.njit(cache=True, inline="always")
def rebalance_due_nb(cushion: float, cushion0: float, share: float) -> bool:  # pragma: no cover
    """``rebalance_at = x``: the perp has used a share ``x`` of its cushion, ``C ≤ (1 − x)·C0`` (off unless 0<x<1)."""
    return 0.0 < share < 1.0 and cushion <= (1.0 - share) * cushion0


@nb.njit(cache=True, inline="always")
def spot_level_due_nb(assets: float, borrowed: float, level: float) -> bool:  # pragma: no cover
    """``spot_rebalance_level = y``: the spot margin level ``assets / borrowed ≤ y`` (off unless y finite, a loan)."""
    return np.isfinite(level) and borrowed > 0.0 and assets <= level * borrowed
