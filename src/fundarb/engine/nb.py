"""Numba kernels of the two-leg simulation (DESIGN.md §2–§6, docs/engine.md).

Pure functions over 2-D float64 arrays, time on axis 0. Market arrays are ``(T, S)`` (one column per symbol);
the simulation has ``C`` columns (symbol × parameter set): ``col_sym[c]`` picks the market column and
``col_tgt[c]`` the column of ``target``. Per-column parameters are 1-D arrays of length ``C`` — broadcast
views (stride 0) are fine, nothing is copied. No pandas, no I/O.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from fundarb.engine.tiers import liq_price_mark, tier_of

# -- rows of the per-bar series array (detail mode) -------------------------------------------------
EQUITY, FUNDING, SPOT_PNL, PERP_PNL, FEES, SPREAD, SLIPPAGE, BORROW, LIQ_FEES, INSURANCE, SPOT_QTY, PERP_QTY, \
    CASH, MARGIN = range(14)
SERIES = ("equity", "funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
          "insurance_fund_loss", "spot_qty", "perp_qty", "cash", "margin_balance")
N_SERIES = len(SERIES)

# -- rows of the totals array (both modes) ----------------------------------------------------------
# 0..9 mirror SERIES 0..9 (final values); then counts and streaming return statistics
N_TRADES, N_LIQ, BARS_IN_MARKET, SUM_R, SUM_R2, SUM_DOWN2, N_R, MAX_DD, MAX_DD_BARS, PEAK, FIRST_BAR, LAST_BAR = \
    range(10, 22)
TOTALS = (*SERIES[:10], "n_trades", "n_liquidations", "bars_in_market", "sum_r", "sum_r2", "sum_down2", "n_r",
          "max_drawdown", "max_drawdown_bars", "peak", "first_bar", "last_bar")
N_TOTALS = len(TOTALS)

# -- trade log records (detail mode) ----------------------------------------------------------------
REC_FIELDS = ("col", "bar", "kind", "spot_qty", "perp_qty", "spot_price", "perp_price", "spot_traded",
              "perp_traded", "fees", "spread", "slippage", "liquidation_fee", "equity_before")
N_REC = len(REC_FIELDS)
KIND_ENTRY, KIND_EXIT, KIND_FLIP, KIND_REBALANCE, KIND_LIQ_PERP, KIND_LIQ_SPOT, KIND_RESIZE = range(7)
KINDS = ("entry", "exit", "flip", "rebalance", "liquidation_perp", "liquidation_spot", "close_leg")

# -- per-column parameter rows (params[k, c]) --------------------------------------------------------
P_CAPITAL, P_LEVERAGE, P_SPOT_LEVERAGE, P_SPOT_FEE, P_PERP_FEE, P_HALF_SPREAD, P_SLIP, P_SLIP_K, P_BORROW, \
    P_LIQ_FEE, P_REBALANCE_AT, P_REBALANCE_EVERY, P_HOLD, P_SPOT_LIQ_LEVEL = range(14)
PARAMS = ("capital", "leverage", "spot_leverage", "spot_fee", "perp_fee", "half_spread", "slippage", "slippage_k",
          "borrow_rate", "liquidation_fee", "rebalance_at", "rebalance_every", "hold_after_liquidation",
          "spot_liquidation_level")
N_PARAMS = len(PARAMS)


@nb.njit(cache=True, inline="always")
def _slip(frac: float, k: float, qty: float, vol: float) -> float:
    if k > 0.0 and vol > 0.0 and np.isfinite(vol):
        return k * np.sqrt(qty / vol)
    return frac


@nb.njit(cache=True)
def _column(
    c: int, s: int, g: int,
    spot_open: np.ndarray, spot_high: np.ndarray, spot_close: np.ndarray,
    perp_open: np.ndarray, mark_open: np.ndarray, mark_high: np.ndarray, mark_low: np.ndarray,
    mark_close: np.ndarray, funding: np.ndarray, borrow_rate: np.ndarray,
    spot_vol: np.ndarray, perp_vol: np.ndarray, target: np.ndarray,
    p: np.ndarray, tiers: np.ndarray, bar_hours: float,
    detail: bool, series: np.ndarray, totals: np.ndarray, rec: np.ndarray, rec_n: int,
) -> int:
    """Simulate column ``c`` (market column ``s``, target column ``g``). Returns the new record count."""
    T = spot_open.shape[0]
    capital = p[P_CAPITAL]
    L = p[P_LEVERAGE]
    Ls = p[P_SPOT_LEVERAGE]
    hold = p[P_HOLD] > 0.5
    reb_at = p[P_REBALANCE_AT]
    reb_every = p[P_REBALANCE_EVERY]
    cap_rec = rec.shape[0]

    cash = capital
    a = 0.0          # signed spot quantity
    b = 0.0          # signed perp quantity
    entry = 0.0      # perp entry price
    mb = 0.0         # futures wallet margin balance
    last_s = np.nan  # last known spot price
    last_m = np.nan  # last known mark price
    lock = 0         # direction locked out after a liquidation
    reb_due = False  # margin-ratio trigger seen at the previous close
    since_size = 0   # bars since the position was last sized
    c_fund = c_spot = c_perp = c_fees = c_spread = c_slip = c_borrow = c_liqf = c_ins = 0.0
    n_trades = 0
    n_liq = 0
    in_mkt = 0
    prev_eq = capital
    sum_r = sum_r2 = sum_d2 = 0.0
    n_r = 0
    peak = capital
    max_dd = 0.0
    dd_bars = 0
    max_dd_bars = 0
    first_bar = -1
    last_bar = -1

    for t in range(T):
        so = spot_open[t, s]
        po = perp_open[t, s]
        mo = mark_open[t, s]
        gap = not (np.isfinite(so) and np.isfinite(po) and np.isfinite(mo))
        if not gap:
            if first_bar < 0:
                first_bar = t
            last_bar = t
            if a != 0.0:
                c_spot += a * (so - last_s)
            if b != 0.0:
                c_perp += b * (mo - last_m)
            last_s = so
            last_m = mo

        # (1) funding on the position held coming into the bar
        r = funding[t, s]
        if b != 0.0 and np.isfinite(r):
            f = -b * last_m * r
            mb += f
            c_fund += f

        # (2) execution at the open
        tg = target[t, g]
        if lock != 0 and tg != lock:
            lock = 0
        d = 0
        if a > 0.0:
            d = 1
        elif a < 0.0:
            d = -1
        elif b < 0.0:
            d = 1
        elif b > 0.0:
            d = -1
        eff = tg
        if lock != 0:
            eff = d if hold else 0
        if not gap:
            reb = False
            if d != 0 and a != 0.0 and b != 0.0 and eff == d:
                if reb_due:
                    reb = True
                if reb_every > 0.0 and since_size >= reb_every:
                    reb = True
            if eff != d or reb:
                eq_before = cash + a * so + mb + b * (mo - entry)
                q = 0.0
                if eff != 0 and eq_before > 0.0:
                    if eff == 1:
                        n_not = eq_before * L / (L + 1.0)
                    else:
                        n_not = eq_before / (1.0 / L + 1.0 / Ls)
                    q = n_not / so
                a2 = eff * q
                b2 = -eff * q
                da = a2 - a
                db = b2 - b
                if db != 0.0:
                    mb += b * (po - entry)
                    c_perp += db * (mo - po)
                    b = b2
                    entry = po if b2 != 0.0 else 0.0
                if da != 0.0:
                    cash -= da * so
                    a = a2
                if b != 0.0:
                    want = q * so / L
                    cash += mb - want
                    mb = want
                else:
                    cash += mb
                    mb = 0.0
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
                mb -= fee_p + spr_p + slp_p
                c_fees += fee_s + fee_p
                c_spread += spr_s + spr_p
                c_slip += slp_s + slp_p
                if da != 0.0 or db != 0.0:
                    n_trades += 1
                    since_size = 0
                    if detail and rec_n < cap_rec:
                        if eff == 0:
                            kind = KIND_RESIZE if lock != 0 else KIND_EXIT
                        elif d == 0:
                            kind = KIND_ENTRY
                        elif eff != d:
                            kind = KIND_FLIP
                        else:
                            kind = KIND_REBALANCE
                        rec[rec_n, 0] = c
                        rec[rec_n, 1] = t
                        rec[rec_n, 2] = kind
                        rec[rec_n, 3] = a
                        rec[rec_n, 4] = b
                        rec[rec_n, 5] = so
                        rec[rec_n, 6] = po
                        rec[rec_n, 7] = da
                        rec[rec_n, 8] = db
                        rec[rec_n, 9] = fee_s + fee_p
                        rec[rec_n, 10] = spr_s + spr_p
                        rec[rec_n, 11] = slp_s + slp_p
                        rec[rec_n, 12] = 0.0
                        rec[rec_n, 13] = eq_before
                    if detail:
                        rec_n += 1

        # (3) liquidation at the adverse intrabar extreme
        mc = mark_close[t, s]
        if not np.isfinite(mc):
            mc = last_m
        sc = spot_close[t, s]
        if not np.isfinite(sc):
            sc = last_s
        if not gap and b != 0.0:
            m_adv = mark_high[t, s] if b < 0.0 else mark_low[t, s]
            if not np.isfinite(m_adv):
                m_adv = mc
            q = abs(b)
            k = tier_of(tiers, q * m_adv)
            if mb + b * (m_adv - entry) <= q * m_adv * tiers[k, 2] - tiers[k, 3]:
                px = liq_price_mark(tiers, b, entry, mb)
                if (b < 0.0 and mo >= px) or (b > 0.0 and mo <= px):
                    px = mo
                c_perp += b * (px - last_m)
                mb += b * (px - entry)
                lf = p[P_LIQ_FEE] * q * px
                mb -= lf
                c_liqf += lf
                if mb < 0.0:
                    c_ins += -mb
                    mb = 0.0
                d_liq = 1 if b < 0.0 else -1
                b_before = b
                b = 0.0
                entry = 0.0
                cash += mb
                mb = 0.0
                lock = d_liq
                n_liq += 1
                if detail:
                    if rec_n < cap_rec:
                        rec[rec_n, 0] = c
                        rec[rec_n, 1] = t
                        rec[rec_n, 2] = KIND_LIQ_PERP
                        rec[rec_n, 3] = a
                        rec[rec_n, 4] = 0.0
                        rec[rec_n, 5] = np.nan
                        rec[rec_n, 6] = px
                        rec[rec_n, 7] = 0.0
                        rec[rec_n, 8] = -b_before
                        rec[rec_n, 9] = 0.0
                        rec[rec_n, 10] = 0.0
                        rec[rec_n, 11] = 0.0
                        rec[rec_n, 12] = lf
                        rec[rec_n, 13] = np.nan
                    rec_n += 1
        if not gap and a < 0.0:
            s_adv = spot_high[t, s]
            if not np.isfinite(s_adv):
                s_adv = sc
            q = -a
            lvl = p[P_SPOT_LIQ_LEVEL]
            if cash <= lvl * q * s_adv:
                px = cash / (lvl * q)
                if so >= px:
                    px = so
                c_spot += a * (px - last_s)
                cash -= q * px
                lf = p[P_LIQ_FEE] * q * px
                cash -= lf
                c_liqf += lf
                if cash < 0.0:
                    c_ins += -cash
                    cash = 0.0
                a = 0.0
                if lock == 0:
                    lock = -1
                n_liq += 1
                if detail:
                    if rec_n < cap_rec:
                        rec[rec_n, 0] = c
                        rec[rec_n, 1] = t
                        rec[rec_n, 2] = KIND_LIQ_SPOT
                        rec[rec_n, 3] = 0.0
                        rec[rec_n, 4] = b
                        rec[rec_n, 5] = px
                        rec[rec_n, 6] = np.nan
                        rec[rec_n, 7] = q
                        rec[rec_n, 8] = 0.0
                        rec[rec_n, 9] = 0.0
                        rec[rec_n, 10] = 0.0
                        rec[rec_n, 11] = 0.0
                        rec[rec_n, 12] = lf
                        rec[rec_n, 13] = np.nan
                    rec_n += 1

        # (4) borrow interest on the borrowed base asset
        if a < 0.0:
            br = borrow_rate[t, s]
            if not np.isfinite(br):
                br = p[P_BORROW]
            cost = -a * sc * br * bar_hours
            cash -= cost
            c_borrow += cost

        # (5) mark at the close
        if a != 0.0:
            c_spot += a * (sc - last_s)
        if b != 0.0:
            c_perp += b * (mc - last_m)
        if np.isfinite(sc):
            last_s = sc
        if np.isfinite(mc):
            last_m = mc
        eq = cash
        if a != 0.0:
            eq += a * sc
        if b != 0.0:
            eq += mb + b * (mc - entry)
        else:
            eq += mb
        if a != 0.0 or b != 0.0:
            in_mkt += 1
            since_size += 1

        reb_due = False
        if b != 0.0 and np.isfinite(reb_at):
            denom = mb + b * (mc - entry)
            q = abs(b)
            k = tier_of(tiers, q * mc)
            mm = q * mc * tiers[k, 2] - tiers[k, 3]
            if denom <= 0.0 or mm / denom >= reb_at:
                reb_due = True

        # streaming statistics
        if first_bar >= 0:
            rr = eq / prev_eq - 1.0 if prev_eq != 0.0 else 0.0
            sum_r += rr
            sum_r2 += rr * rr
            if rr < 0.0:
                sum_d2 += rr * rr
            n_r += 1
            prev_eq = eq
            if eq > peak:
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
            series[EQUITY, t, c] = eq
            series[FUNDING, t, c] = c_fund
            series[SPOT_PNL, t, c] = c_spot
            series[PERP_PNL, t, c] = c_perp
            series[FEES, t, c] = c_fees
            series[SPREAD, t, c] = c_spread
            series[SLIPPAGE, t, c] = c_slip
            series[BORROW, t, c] = c_borrow
            series[LIQ_FEES, t, c] = c_liqf
            series[INSURANCE, t, c] = c_ins
            series[SPOT_QTY, t, c] = a
            series[PERP_QTY, t, c] = b
            series[CASH, t, c] = cash
            series[MARGIN, t, c] = mb

    totals[EQUITY, c] = prev_eq if first_bar >= 0 else capital
    totals[FUNDING, c] = c_fund
    totals[SPOT_PNL, c] = c_spot
    totals[PERP_PNL, c] = c_perp
    totals[FEES, c] = c_fees
    totals[SPREAD, c] = c_spread
    totals[SLIPPAGE, c] = c_slip
    totals[BORROW, c] = c_borrow
    totals[LIQ_FEES, c] = c_liqf
    totals[INSURANCE, c] = c_ins
    totals[N_TRADES, c] = n_trades
    totals[N_LIQ, c] = n_liq
    totals[BARS_IN_MARKET, c] = in_mkt
    totals[SUM_R, c] = sum_r
    totals[SUM_R2, c] = sum_r2
    totals[SUM_DOWN2, c] = sum_d2
    totals[N_R, c] = n_r
    totals[MAX_DD, c] = max_dd
    totals[MAX_DD_BARS, c] = max_dd_bars
    totals[PEAK, c] = peak
    totals[FIRST_BAR, c] = first_bar
    totals[LAST_BAR, c] = last_bar
    return rec_n


@nb.njit(cache=True)
def simulate_detail_nb(
    spot_open, spot_high, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, col_sym, col_tgt, params, tiers, tier_start, tier_len,
    bar_hours, series, totals, rec,
):  # pragma: no cover - compiled
    """Detail mode: every series of :data:`SERIES` per bar and column, totals, and the trade log.

    Returns the number of trade-log records; if it exceeds ``rec.shape[0]`` the log was truncated and the
    caller must run again with room for that many.
    """
    n = 0
    for c in range(col_sym.shape[0]):
        tl = tiers[tier_start[c]:tier_start[c] + tier_len[c]]
        n = _column(c, col_sym[c], col_tgt[c], spot_open, spot_high, spot_close, perp_open, mark_open,
                    mark_high, mark_low, mark_close, funding, borrow_rate, spot_vol, perp_vol, target,
                    params[:, c], tl, bar_hours, True, series, totals, rec, n)
    return n


@nb.njit(cache=True, parallel=True)
def simulate_sweep_nb(
    spot_open, spot_high, spot_close, perp_open, mark_open, mark_high, mark_low, mark_close,
    funding, borrow_rate, spot_vol, perp_vol, target, col_sym, col_tgt, params, tiers, tier_start, tier_len,
    bar_hours, totals,
):  # pragma: no cover - compiled
    """Sweep mode: totals and streaming statistics only; memory O(columns)."""
    dummy_series = np.empty((N_SERIES, 1, 1))
    dummy_rec = np.empty((0, N_REC))
    for c in nb.prange(col_sym.shape[0]):
        tl = tiers[tier_start[c]:tier_start[c] + tier_len[c]]
        _column(c, col_sym[c], col_tgt[c], spot_open, spot_high, spot_close, perp_open, mark_open,
                mark_high, mark_low, mark_close, funding, borrow_rate, spot_vol, perp_vol, target,
                params[:, c], tl, bar_hours, False, dummy_series, totals, dummy_rec, 0)
