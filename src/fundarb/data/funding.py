"""The one definition of a symbol's funding statistics (DESIGN.md §8).

Annualised funding is the sum of the settled rates in the span divided by the span in years, the span running
from the first event to the last event plus one interval (the interval in force at the last event); the events
counted are those of that span alone. A per-event mean is always given with its interval. Every figure is
computed from the symbol's own events, so it does not depend on which other symbols are loaded.

``describe``, ``funding-stats``, reports, notebooks and the datasets README all use these functions. Values are
fractions (0.153 is 15.3% a year); the CLI prints them as percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fundarb.data.market import IntervalSegment, funding_intervals

if TYPE_CHECKING:
    from fundarb.data.market import MarketData

__all__ = [
    "YEAR",
    "FundingSummary",
    "annualised_funding",
    "format_per_event",
    "format_percent",
    "funding_summary",
    "funding_table",
    "symbol_events",
]

YEAR = pd.Timedelta(days=365)
"""The year of every annualisation (8,760 hours), as in :attr:`MarketData.periods_per_year`."""


@dataclass(frozen=True)
class FundingSummary:
    """Funding statistics of one symbol's settled events (DESIGN §8). Rates are fractions.

    Attributes
    ----------
    events
        Number of settled events in the span.
    first, last
        First and last event time.
    end
        ``last`` plus the interval in force at the last event: where the span ends.
    years
        Span length in 365-day years.
    total
        Sum of the settled rates in the span.
    annualised
        ``total / years``: funding a short perp collected per unit of notional per year (fraction).
    segments
        Runs of constant interval, each with its own per-event mean (``per_event_means``).
    per_event_means
        Mean rate per event of each segment, in the segment's interval.
    """

    events: int
    first: pd.Timestamp
    last: pd.Timestamp
    end: pd.Timestamp
    years: float
    total: float
    annualised: float
    segments: tuple[IntervalSegment, ...]
    per_event_means: tuple[float, ...]

    @property
    def per_event(self) -> str:
        """Per-event means with their intervals, e.g. ``"0.0123% / 8h"`` or ``"… / 8h → … / 1h → … / 4h"``."""
        return format_per_event(self)


def funding_summary(events: pd.Series) -> FundingSummary:
    """Annualised funding, event count and per-event means of one symbol's settled events.

    Parameters
    ----------
    events
        Rates (fractions) indexed by UTC event time, one symbol only — not bars, not summed per bar.

    Returns
    -------
    FundingSummary
        With ``annualised`` NaN when there are fewer than two events (the interval is then unknown).
    """
    ev = events.sort_index()
    ev = ev[~ev.isna()]
    if len(ev) == 0:
        nat = pd.NaT
        return FundingSummary(0, nat, nat, nat, float("nan"), 0.0, float("nan"), (), ())
    segs, _ = funding_intervals(pd.DatetimeIndex(ev.index))
    t = pd.DatetimeIndex(ev.index)
    hours = segs[-1].hours
    end = t[-1] + pd.Timedelta(hours=hours) if np.isfinite(hours) else pd.NaT
    years = float((end - t[0]) / YEAR) if end is not pd.NaT else float("nan")
    total = float(ev.sum())
    annual = total / years if years > 0 else float("nan")
    vals = ev.to_numpy()
    means, k = [], 0
    for seg in segs:
        means.append(float(vals[k:k + seg.events].mean()))
        k += seg.events
    return FundingSummary(len(ev), t[0], t[-1], end, years, total, annual, tuple(segs), tuple(means))


def annualised_funding(events: pd.Series) -> float:
    """Σ settled rates ÷ span in years (fraction); the span runs from the first event to the last plus one interval."""
    return funding_summary(events).annualised


def format_percent(v: float, digits: int = 2) -> str:
    """A fraction as percent — the one way commands, reports and notebooks label annualised funding (``-12.39%``)."""
    return "n/a" if v != v else f"{v:.{digits}%}"


def format_per_event(summary: FundingSummary, digits: int = 4) -> str:
    """Per-event means in percent with their intervals: ``"0.0100% / 8h → -0.2500% / 1h"``."""
    return " → ".join(f"{m:.{digits}%} / {s.hours:g}h" for s, m in zip(summary.segments, summary.per_event_means,
                                                                      strict=True))


def symbol_events(market: MarketData, symbol: str) -> pd.Series:
    """The settled events of ``symbol`` inside its own active span (DESIGN §1), as loaded — not summed per bar.

    The span is the symbol's own (its first to last bar with prices and funding), so the events do not depend on
    which other symbols are loaded. Events outside it (funding history before the perp's prices, or after the
    data ends) are left out: the backtest cannot settle them either.
    """
    s = market.symbols[market.symbol_position(symbol)]
    c = market.coverage[s]
    ev = market.events[s]
    if c.last_bar < c.first_bar:
        return ev.iloc[:0]
    lo, hi = market.index[c.first_bar], market.index[c.last_bar] + market.timeframe
    return ev[(ev.index >= lo) & (ev.index < hi)]


def funding_table(market: MarketData) -> pd.DataFrame:
    """One row per symbol: ``events``, ``first_event``, ``last_event``, ``years``, ``annualised_funding``
    (fraction) and ``mean_per_event`` (percent with its interval)."""
    rows = []
    for s in market.symbols:
        f = funding_summary(symbol_events(market, s))
        rows.append({"symbol": s, "events": f.events, "first_event": f.first, "last_event": f.last,
                     "years": f.years, "annualised_funding": f.annualised, "mean_per_event": f.per_event})
    return pd.DataFrame(rows).set_index("symbol")
