"""Funding-regime research: per-symbol statistics of settled funding events (``fundarb funding-stats``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fundarb.data.funding import funding_summary, symbol_events
from fundarb.data.market import MarketData, funding_intervals

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
    """One row per symbol: events, intervals and their changes, annualised funding, shares, extremes, streaks.

    ``events`` and ``annualised_funding`` (a fraction) are DESIGN §8's, from
    :func:`fundarb.data.funding.funding_summary` on the symbol's own events inside its active span — the same
    figures ``describe`` shows, whichever other symbols are loaded. ``mean_per_event`` is the mean rate per event
    in percent with its interval (one per interval segment). ``std_annualised`` is the std (ddof=1) of the events
    each scaled by the events per year of its interval (1,095 for 8h, 8,760 for 1h).
    ``share_interest_only`` is the share of events at exactly the interest rate for their interval (0.01%/8h).
    """
    rows = []
    for s in market.symbols:
        ev = symbol_events(market, s)
        fs = funding_summary(ev)
        hours = np.repeat([g.hours for g in fs.segments], [g.events for g in fs.segments])
        if len(hours) and not np.isfinite(hours).all():
            hours = np.full(len(hours), 8.0)  # a single event: its interval is unknown
        per_year = 8760.0 / hours
        interest = INTEREST_RATE_8H * hours / 8.0
        vals = ev.to_numpy()
        row: dict[str, object] = {
            "symbol": s,
            "events": fs.events,
            "first": fs.first,
            "last": fs.last,
            "intervals": " → ".join(
                f"{g.hours:g}h" + ("" if i == 0 else f" (from {g.first:%Y-%m-%d %H:%M})")
                for i, g in enumerate(fs.segments)),
            "missing_events": len(funding_intervals(ev.index)[1]) if len(ev) else 0,
            "annualised_funding": fs.annualised,
            "mean_per_event": fs.per_event,
            "std_annualised": float(np.std(vals * per_year, ddof=1)) if len(ev) > 1 else np.nan,
            "share_positive": float((vals > 0).mean()) if len(ev) else np.nan,
            "share_negative": float((vals < 0).mean()) if len(ev) else np.nan,
            "share_interest_only": float(np.isclose(vals, interest, rtol=0, atol=1e-12).mean()) if len(ev) else np.nan,
            "min": float(ev.min()) if len(ev) else np.nan,
            "min_at": ev.idxmin() if len(ev) else pd.NaT,
            "max": float(ev.max()) if len(ev) else np.nan,
            "max_at": ev.idxmax() if len(ev) else pd.NaT,
        }
        row.update(streaks(ev))
        rows.append(row)
    return pd.DataFrame(rows).set_index("symbol")
