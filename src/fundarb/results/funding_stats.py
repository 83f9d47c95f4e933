"""Funding-regime research: per-symbol statistics of settled funding events (``fundarb funding-stats``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData

__all__ = ["INTEREST_RATE_8H", "funding_stats", "streaks"]

INTEREST_RATE_8H = 0.0001
"""Binance's interest component: 0.01% per 8 hours (scaled to the interval for other intervals)."""


def streaks(rates: pd.Series) -> dict[str, object]:
    """Longest runs of strictly positive and strictly negative consecutive events.

    Returns the length in events and the first and last event time of each longest run.
    """
    out: dict[str, object] = {}
    vals = rates.to_numpy()
    for name, mask in (("positive", vals > 0), ("negative", vals < 0)):
        best, best_end, run = 0, -1, 0
        for i, m in enumerate(mask):
            run = run + 1 if m else 0
            if run > best:
                best, best_end = run, i
        out[f"longest_{name}_streak"] = best
        out[f"longest_{name}_from"] = rates.index[best_end - best + 1] if best else pd.NaT
        out[f"longest_{name}_to"] = rates.index[best_end] if best else pd.NaT
    return out


def funding_stats(market: MarketData) -> pd.DataFrame:
    """One row per symbol: events, intervals and their changes, annualised mean and std, shares, extremes, streaks.

    Annualisation uses the events actually settled: mean per event × events per year implied by the interval
    in force at each event (1,095 for 8h, 2,190 for 4h, 8,760 for 1h), so a symbol whose interval changes is
    annualised correctly; ``std_annualised`` is the std of the events annualised the same way (ddof=1).
    ``share_interest_only`` is the share of events at exactly the interest rate for their interval (0.01%/8h).
    """
    rows = []
    for s in market.symbols:
        ev = market.events[s]
        ev = ev[(ev.index >= market.index[0]) & (ev.index < market.index[-1] + market.timeframe)]
        segs = market.coverage[s].intervals
        hours = pd.Series(np.nan, index=ev.index)
        for seg in segs:
            hours[(hours.index >= seg.first) & (hours.index <= seg.last)] = seg.hours
        hours = hours.bfill().ffill()
        per_year = 8760.0 / hours
        interest = INTEREST_RATE_8H * hours / 8.0
        row: dict[str, object] = {
            "symbol": s,
            "events": len(ev),
            "first": ev.index[0] if len(ev) else pd.NaT,
            "last": ev.index[-1] if len(ev) else pd.NaT,
            "intervals": " → ".join(
                f"{g.hours:g}h" + ("" if i == 0 else f" (from {g.first:%Y-%m-%d %H:%M})") for i, g in enumerate(segs)),
            "missing_events": len(market.coverage[s].missing_events),
            "mean_annualised": float((ev * per_year).mean()) if len(ev) else np.nan,
            "std_annualised": float((ev * per_year).std()) if len(ev) > 1 else np.nan,
            "share_positive": float((ev > 0).mean()) if len(ev) else np.nan,
            "share_negative": float((ev < 0).mean()) if len(ev) else np.nan,
            "share_interest_only": float(np.isclose(ev, interest, rtol=0, atol=1e-12).mean()) if len(ev) else np.nan,
            "min": float(ev.min()) if len(ev) else np.nan,
            "min_at": ev.idxmin() if len(ev) else pd.NaT,
            "max": float(ev.max()) if len(ev) else np.nan,
            "max_at": ev.idxmax() if len(ev) else pd.NaT,
        }
        row.update(streaks(ev))
        rows.append(row)
    return pd.DataFrame(rows).set_index("symbol")
