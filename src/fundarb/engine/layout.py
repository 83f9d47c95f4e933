"""The engine's data layout: names of the kernels' output rows, trade records, account parameters and tier fields.

One place, like vectorbt's ``portfolio/enums.py``: kernels, :class:`~fundarb.results.result.Result`, sweeps and
tests index by these names, never by bare row numbers.

- ``series[k, t, m]`` — member series per bar (detail mode), ``k`` in :data:`SERIES`;
- ``gseries[k, t, g]`` — group (account) series per bar (detail mode), ``k`` in :data:`GSERIES`;
- ``mtotals[k, m]`` — member totals, ``k`` in :data:`MTOTALS`;
- ``gtotals[k, g]`` — group totals and streaming statistics, ``k`` in :data:`GTOTALS`;
- trade records — a structured array of :data:`TRADE_DTYPE` (integer member, bar and kind);
- account parameters — a structured array of :data:`PARAMS_DTYPE`, one record per group;
- tier tables — float64 ``(n, 4)`` arrays whose columns are :data:`TIER_FIELDS`.
"""

from __future__ import annotations

import numpy as np

# -- member series (detail mode): rows of series[k, t, m] --------------------------------------------------
FUNDING, SPOT_PNL, PERP_PNL, FEES, SPREAD, SLIPPAGE, BORROW, LIQ_FEES, INSURANCE, SPOT_QTY, PERP_QTY, MARGIN = \
    range(12)
SERIES = ("funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
          "insurance_fund_loss", "spot_qty", "perp_qty", "margin_balance")
N_SERIES = len(SERIES)
N_COMP = 9  # the first nine series are the PnL components of DESIGN §6

# -- group series (detail mode): rows of gseries[k, t, g] --------------------------------------------------
G_EQUITY, G_CASH, G_MARGIN, G_HELD = range(4)
GSERIES = ("equity", "cash", "margin_balance", "held")  # held: 1.0 when the account holds a leg at the close
N_GSERIES = len(GSERIES)

# -- what the kernels write per bar (their ``level`` argument) -----------------------------------------------
LEVEL_TOTALS, LEVEL_BOOK, LEVEL_DETAIL = range(3)  # totals only; + group equity and held; + everything and trades

# -- member totals: rows 0..8 are the components' final values ---------------------------------------------
M_TRADES, M_LIQ, M_BARS_IN_MARKET, M_FIRST_BAR, M_LAST_BAR, M_LOCK_BAR = range(9, 15)
MTOTALS = (*SERIES[:9], "n_trades", "n_liquidations", "bars_in_market", "first_bar", "last_bar",
           "lock_bar")  # lock_bar: bar of the liquidation whose lock still holds at the end (−1: none)
N_MTOTALS = len(MTOTALS)

# -- group totals (streaming statistics of the group's equity) ---------------------------------------------
(T_EQUITY, T_SUM_R, T_SUM_R2, T_SUM_DOWN2, T_N_R, T_MAX_DD, T_MAX_DD_BARS, T_PEAK, T_FIRST_BAR, T_LAST_BAR,
 T_BARS_IN_MARKET, T_N_LIQ, T_FIRST_LIQ) = range(13)
GTOTALS = ("final_equity", "sum_r", "sum_r2", "sum_down2", "n_r", "max_drawdown", "max_drawdown_bars", "peak",
           "first_bar", "last_bar", "bars_in_market", "n_liquidations", "first_liquidation_bar")
N_STREAM = T_N_LIQ  # rows 0..N_STREAM-1 are statistics of the equity curve alone
N_GTOTALS = len(GTOTALS)

# -- trade log (detail mode): one record per fill or liquidation -------------------------------------------
TRADE_DTYPE = np.dtype([
    ("member", np.int64), ("bar", np.int64), ("kind", np.int64),
    ("spot_qty", np.float64), ("perp_qty", np.float64),          # held after the event
    ("spot_price", np.float64), ("perp_price", np.float64),      # fill prices (NaN: that leg did not trade)
    ("spot_traded", np.float64), ("perp_traded", np.float64),    # signed quantities traded
    ("fees", np.float64), ("spread", np.float64), ("slippage", np.float64), ("liquidation_fee", np.float64),
    ("equity_before", np.float64),                                # the group's equity at the open (sizing's E)
])
REC_FIELDS: tuple[str, ...] = tuple(TRADE_DTYPE.names or ())
(KIND_ENTRY, KIND_EXIT, KIND_FLIP, KIND_REBALANCE, KIND_LIQ_PERP, KIND_LIQ_SPOT, KIND_CLOSE_LEG, KIND_RESIZE,
 KIND_REENTRY) = range(9)
KINDS = ("entry", "exit", "flip", "rebalance", "liquidation_perp", "liquidation_spot", "close_leg", "resize",
         "reentry")

# -- account parameters: one record per group -------------------------------------------------------------
AFTER_CLOSE, AFTER_HOLD, AFTER_REENTER = range(3)
PARAMS_DTYPE = np.dtype([
    ("capital", np.float64), ("leverage", np.float64), ("spot_leverage", np.float64),
    ("spot_fee", np.float64), ("perp_fee", np.float64),
    ("half_spread", np.float64), ("slippage", np.float64), ("slippage_k", np.float64),  # fractions of notional
    ("borrow_rate", np.float64), ("liquidation_fee", np.float64),
    ("rebalance_at", np.float64),            # share of the cushion; off unless 0 < x < 1
    ("rebalance_every", np.float64),         # bars; off when 0
    ("after_liquidation", np.int64),         # AFTER_CLOSE / AFTER_HOLD / AFTER_REENTER
    ("spot_liquidation_level", np.float64),
    ("cross_margin", np.bool_),
    ("spot_rebalance_level", np.float64),    # off when NaN
    ("liquidation_loss_margin", np.bool_),   # liquidation_loss = "margin"
])
PARAMS: tuple[str, ...] = tuple(PARAMS_DTYPE.names or ())

# -- tier tables: columns of a (n, 4) float64 array, rows sorted by notional --------------------------------
TIER_MIN, TIER_MAX, TIER_MMR, TIER_CUM = range(4)
TIER_FIELDS = ("min_notional", "max_notional", "mmr", "cum")


def empty_trades(n: int = 0) -> np.ndarray:
    """A zeroed trade log with room for ``n`` records."""
    return np.zeros(n, TRADE_DTYPE)


def empty_params(n: int) -> np.ndarray:
    """``n`` account parameter records, zeroed (NaN-free; the caller fills every field)."""
    return np.zeros(n, PARAMS_DTYPE)
