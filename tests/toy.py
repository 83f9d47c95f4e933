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
