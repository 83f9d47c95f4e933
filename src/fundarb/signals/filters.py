"""Funding filters (DESIGN.md §7), vectorised over the bar grid: trailing funding by time and its annualisations.

Timing. Every filter value at bar ``t`` is known at bar t's *close* and uses rows ≤ t only: it is the sum of the
settled rates assigned to rows ``t−k+1 … t`` (DESIGN §1 assigns an event to the bar whose ``[open, open + bar)``
holds its timestamp). In event time that is every event with a timestamp in ``(τ − w, τ]`` where ``τ`` is the last
instant of bar t (``close − 1 ns``), i.e. ``[close − w, close)``: an event stamped exactly at ``close`` belongs to
the next bar and is not seen. A strategy that trades on the value at bar t must execute at bar t+1's open.

Window rounding. The grid is regular, so a window ``w`` is ``k = floor(w / bar)`` bars. When ``w`` is a whole number
of bars (``"3d"`` on 1h, 4h or 8h bars) the sum is exact for any event times. Otherwise the window is shortened to
``k`` bars: it never reaches further back than ``w``; it is still exact when the events fall on bar opens (funding on
the hour, bars of at most the funding interval), and can miss the events of less than one bar at its far end when
several events share a bar. A window shorter than one bar is an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.durations import parse_duration
from fundarb.errors import ConfigError
from fundarb.signals.nb import window_sums_nb

__all__ = [
    "annualised_on_notional",
    "binance_apr_on_capital",
    "funding_filters",
    "trailing_funding",
    "window_bars",
    "window_days",
    "window_sums",
]


def window_days(window: str | pd.Timedelta) -> float:
    """The length of a duration such as ``"3d"`` in days (float)."""
    return parse_duration(window, name="window") / pd.Timedelta(days=1)


def window_bars(market: MarketData, window: str | pd.Timedelta) -> int:
    """Number of bars ``k = floor(window / bar)`` the trailing window spans on ``market``'s grid.

    Raises
    ------
    ConfigError
        If the window is shorter than one bar.
    """
    td = parse_duration(window, name="window")
    k = int(td // market.timeframe)
    if k < 1:
        raise ConfigError(f"window {window!r} is shorter than one bar ({market.timeframe}); use at least one bar")
    return k


_SCALE = 1e12  # funding rates are quoted with at most 8–10 decimals


def window_sums(x: np.ndarray, k: int) -> np.ndarray:
    """Trailing sums over ``k`` rows that depend only on the values inside each window (no drift).

    A running sum (pandas' ``rolling().sum()``) carries round-off from rows that left the window, so equal
    windows can differ in the last digit (``0.10950000000000004``) depending on where the data starts, and
    ranking ties between symbols at the funding floor would be broken by noise. Here, when every value is a
    whole number of ``1e-12`` (true of quoted funding rates), the sums are exact integer sums of the scaled values,
    divided once: the double nearest the exact decimal sum. Otherwise each window is re-summed on its own
    (compensated). Rows ``t < k−1`` hold partial sums (the caller masks them).
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    q = np.rint(x * _SCALE)
    if len(x) and np.abs(q).max(initial=0.0) * len(x) < 2.0**53 and np.array_equal(q / _SCALE, x):
        c = np.cumsum(q.astype(np.int64), axis=0)
        c[k:] -= c[:-k].copy()
        return c / _SCALE
    return window_sums_nb(x, k)


def trailing_funding(market: MarketData, window: str | pd.Timedelta = "3d") -> pd.DataFrame:
    """Trailing funding ``F_w``: the sum of settled rates over the last ``window`` of time, at each bar's close.

    The sum is by time, not by a count of events: a symbol whose funding interval changes from 8h to 1h sums
    eight times as many events per window afterwards. It is evaluated at each bar's close with rows ≤ t: events
    stamped in ``[close_t − w, close_t)`` (see the module docstring for the exact boundaries and the rounding of a
    window that is not a whole number of bars).

    Parameters
    ----------
    market
        Aligned market data; its ``funding_rate`` field (per-bar sums of settled rates) is summed.
    window
        Duration such as ``"3d"``, ``"7d"``, ``"30d"`` or ``"36h"``.

    Returns
    -------
    DataFrame
        Bars × symbols, a fraction of notional (not annualised). NaN before a symbol has a whole ``window`` of
        history (its first ``k − 1`` active bars — never a partial sum) and outside its active span (DESIGN §1).
        Bars inside the span without an event count as 0; a data gap inside the span therefore lowers the sum.
        ``attrs["name"]`` is ``"trailing_funding_<window>"``.
    """
    k = window_bars(market, window)
    memo = market._extra  # per-MarketData memo of derived arrays: a sweep asks for the same window many times
    key = ("trailing_funding", k)
    if key in memo:
        cached = memo[key]
        assert isinstance(cached, pd.DataFrame)
        frame = cached.copy()
        frame.attrs["name"] = f"trailing_funding_{window}"
        return frame
    rates = market["funding_rate"]
    out = window_sums(rates.fillna(0.0).to_numpy(dtype=np.float64), k)
    active = market.active()
    first = np.array([market.coverage[s].first_bar for s in market.symbols])
    rows = np.arange(len(market.index))[:, None]
    out[~active | (rows < first[None, :] + k - 1)] = np.nan
    frame = pd.DataFrame(out, index=market.index, columns=rates.columns)
    memo[key] = frame.copy()
    frame.attrs["name"] = f"trailing_funding_{window}"
    return frame


def annualised_on_notional(f_w: pd.DataFrame, window: str | pd.Timedelta) -> pd.DataFrame:
    """Annualised funding rate on notional: ``F_w · 365 / days(w)`` (DESIGN §7).

    Parameters
    ----------
    f_w
        Trailing funding over ``window`` (from :func:`trailing_funding`).
    window
        The window ``f_w`` was summed over (its nominal length is used, e.g. 3 days for ``"3d"``).

    Returns
    -------
    DataFrame
        The rate a position of that perp notional would earn per year at that funding (0.10 = 10 %/year), signed:
        positive pays carry (short perp), negative pays reverse carry. ``attrs["name"]`` is
        ``"apr_on_notional_<window>"``.
    """
    out = f_w * (365.0 / window_days(window))
    out.attrs["name"] = f"apr_on_notional_{window}"
    return out


def binance_apr_on_capital(f_3d: pd.DataFrame) -> pd.DataFrame:
    """Binance's Funding Rate Arbitrage Bot APR *on capital*: ``|F_3d| / 3 · 365 / 2`` (DESIGN §7).

    Half the capital is the spot leg (1× perp leverage), so the APR on capital is half the APR on notional.
    It is unsigned, as the bot quotes it.

    Parameters
    ----------
    f_3d
        Trailing funding over 3 days (``trailing_funding(market, "3d")``).

    Returns
    -------
    DataFrame
        ``attrs["name"]`` is ``"binance_apr_on_capital"``.
    """
    out = f_3d.abs() / 3.0 * 365.0 / 2.0
    out.attrs["name"] = "binance_apr_on_capital"
    return out


def funding_filters(market: MarketData, window: str | pd.Timedelta = "3d") -> pd.DataFrame:
    """Every filter side by side, for reports: columns ``(measure, symbol)``.

    Measures: ``trailing_funding_<window>``, ``apr_on_notional_<window>`` and ``binance_apr_on_capital`` (always on
    the 3-day window, as Binance quotes it).

    Parameters
    ----------
    market
        Aligned market data.
    window
        Window of the first two measures.

    Returns
    -------
    DataFrame
        Bars × (measure, symbol).
    """
    f_w = trailing_funding(market, window)
    f_3d = f_w if parse_duration(window, name="window") == pd.Timedelta(days=3) else trailing_funding(market, "3d")
    parts = {
        f"trailing_funding_{window}": f_w,
        f"apr_on_notional_{window}": annualised_on_notional(f_w, window),
        "binance_apr_on_capital": binance_apr_on_capital(f_3d),
    }
    return pd.concat(parts, axis=1, names=["measure", "symbol"])
