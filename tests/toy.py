"""Small hand-made markets for engine tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData


def ohlc(open_: Sequence[float], high: Sequence[float] | None = None, low: Sequence[float] | None = None,
         close: Sequence[float] | None = None, index: pd.DatetimeIndex | None = None,
         volume: Sequence[float] | None = None) -> pd.DataFrame:
    o = np.asarray(open_, dtype=float)
    c = o if close is None else np.asarray(close, dtype=float)
    h = np.maximum(o, c) if high is None else np.asarray(high, dtype=float)
    lo = np.minimum(o, c) if low is None else np.asarray(low, dtype=float)
    v = np.full(len(o), 1e6) if volume is None else np.asarray(volume, dtype=float)
    idx = index if index is not None else pd.date_range("2024-01-01", periods=len(o), freq="h", tz="UTC", name="time")
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": v}, index=idx)


def toy_market(
    spot: pd.DataFrame,
    *,
    perp: pd.DataFrame | None = None,
    mark: pd.DataFrame | None = None,
    funding: dict[int, float] | None = None,
    symbol: str = "TOY",
    borrow: pd.Series | None = None,
) -> MarketData:
    """One symbol; ``funding`` maps bar position → rate of an event at that bar's open.

    A funding event is always added at bar 0 and at the last bar (rate 0 unless given) so the whole
    range is active (DESIGN §1: coverage needs funding data).
    """
    idx = spot.index
    f = {0: 0.0, len(idx) - 1: 0.0, **(funding or {})}
    ev = pd.Series({idx[i]: r for i, r in sorted(f.items())}, dtype=float)
    ev.index = pd.DatetimeIndex(ev.index, name="time")
    fr = SymbolFrames(symbol=symbol, spot=spot, perp=spot if perp is None else perp,
                      mark=(spot if perp is None else perp) if mark is None else mark, funding=ev, borrow=borrow)
    return MarketData.from_frames([fr], timeframe="1h", label="toy")


def random_walk_ohlc(rng: np.random.Generator, n: int, *, start: float = 100.0, vol: float = 0.01,
                     wick: float = 0.005, index: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """A random walk with intrabar highs and lows (``wick`` = typical wick size as a fraction)."""
    close = start * np.exp(np.cumsum(rng.normal(0, vol, n)))
    open_ = np.concatenate([[start], close[:-1]]) * np.exp(rng.normal(0, vol / 10, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, wick, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, wick, n)))
    return ohlc(open_, high, low, close, index=index, volume=rng.uniform(10, 1000, n))


def random_market(rng: np.random.Generator, n: int = 200, *, symbols: int = 1, vol: float = 0.01,
                  wick: float = 0.005, basis: float = 0.001, interval_change: bool = True,
                  funding_scale: float = 3e-4) -> MarketData:
    """Several symbols of random walks: perp = spot × (1 + noise), mark near perp, 8h funding turning 1h."""
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="time")
    frames = []
    for j in range(symbols):
        spot = random_walk_ohlc(rng, n, start=100.0 * (j + 1), vol=vol, wick=wick, index=idx)
        k = 1 + rng.normal(0, basis, n)
        perp = spot.copy()
        for c in ("open", "high", "low", "close"):
            perp[c] = spot[c] * k
        mark = perp.copy()
        km = 1 + rng.normal(0, basis / 3, n)
        for c in ("open", "close"):
            mark[c] = perp[c] * km
        mark["high"] = np.maximum(perp["high"], mark[["open", "close"]].max(axis=1))
        mark["low"] = np.minimum(perp["low"], mark[["open", "close"]].min(axis=1))
        times = list(idx[::8])
        if interval_change:
            cut = n // 2
            times = [t for t in times if t < idx[cut]] + list(idx[cut::1])
        ev = pd.Series(rng.normal(funding_scale / 3, funding_scale, len(times)),
                       index=pd.DatetimeIndex(times, name="time"))
        frames.append(SymbolFrames(symbol=f"R{j}", spot=spot, perp=perp, mark=mark, funding=ev))
    return MarketData.from_frames(frames, timeframe="1h", label="random")


def random_targets(rng: np.random.Generator, n: int, cols: int, *, p_change: float = 0.05) -> np.ndarray:
    """Piecewise-constant directions in {-1, 0, 1} that change with probability ``p_change`` per bar."""
    out = np.zeros((n, cols), dtype=np.int8)
    cur = rng.integers(-1, 2, cols)
    for t in range(n):
        flip = rng.random(cols) < p_change
        cur = np.where(flip, rng.integers(-1, 2, cols), cur)
        out[t] = cur
    return out
