"""The synthetic demo dataset: deterministic, seeded, generated in well under a second.

SYNTHETIC — generated for demonstration and tests, not market history. Three symbols named so they cannot be
mistaken for real ones (``DEMOBTC``, ``DEMOETH``, ``DEMOXTZ``), two years of hourly spot, perp and mark
OHLCV and settled funding. How it is made:

- a regime chain per symbol (calm, bull, negative, spike), each regime lasting a random number of days;
- spot follows a random walk whose drift and volatility depend on the regime;
- the perp trades at ``spot × (1 + basis)``, the basis mean-reverting around a regime level with noise;
- funding follows Binance's formula on the premium (the basis averaged over the funding interval):
  ``F = P + clamp(I − P, ±0.05%)`` with the interest rate ``I = 0.01%`` per 8h (scaled to the interval), then
  capped — so calm stretches settle at exactly 0.0001 per 8h, bull regimes pay, negative regimes charge, and
  spikes hit the cap;
- ``DEMOXTZ``'s funding interval changes from 8h to 1h when its rate hits the cap, then to 4h two days later
  (as real XTZ did on 2025-07-20);
- the mark price follows the perp with small noise, plus deep intrabar wicks: ``DEMOBTC``'s mark high on
  :data:`WICK_BAR` of the series is 12% above its open — enough to liquidate a 10× short perp.

:func:`calibration_table` compares the funding statistics with the real Binance data when
``../shared/data`` is present.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData

__all__ = ["DEMO_SYMBOLS", "WICK_BAR", "calibration_table", "demo_frames", "demo_market"]

INTEREST_8H = 0.0001
CLAMP_8H = 0.0005
WICK_BAR = 24 * 200 + 13
"""Bar (hour from the start) of DEMOBTC's 12% mark wick."""


@dataclass(frozen=True)
class _Profile:
    name: str
    price: float
    vol: float           # hourly log-price volatility in calm regimes
    cap: float           # funding cap per 8h
    calm: float          # basis level of each regime (fraction of spot)
    bull: float
    negative: float
    spike: float
    weights: tuple[float, float, float, float]   # how often each regime is drawn
    mean_days: tuple[float, float, float, float]


PROFILES = (
    _Profile("DEMOBTC", 30_000.0, 0.0055, 0.003, -0.0003, 0.00075, -0.0007, 0.0035,
             (0.50, 0.30, 0.18, 0.02), (9.0, 14.0, 5.0, 1.5)),
    _Profile("DEMOETH", 2_000.0, 0.0070, 0.003, -0.0003, 0.0008625, -0.0007, 0.0040,
             (0.50, 0.30, 0.18, 0.02), (9.0, 14.0, 5.0, 1.5)),
    _Profile("DEMOXTZ", 1.0, 0.0095, 0.0075, 0.0001, 0.0007, -0.0011, -0.0110,
             (0.47, 0.20, 0.31, 0.02), (8.0, 6.0, 9.0, 1.0)),
)
DEMO_SYMBOLS = tuple(p.name for p in PROFILES)


def _regimes(rng: np.random.Generator, prof: _Profile, days: int) -> np.ndarray:
    """Regime code (0 calm, 1 bull, 2 negative, 3 spike) per day."""
    out = np.empty(days, dtype=np.int64)
    d = 0
    prev = -1
    while d < days:
        w = np.array(prof.weights)
        if prev >= 0:
            w[prev] = 0.0
        w = w / w.sum()
        r = int(rng.choice(4, p=w))
        length = max(1, int(rng.geometric(1.0 / prof.mean_days[r])))
        out[d:d + length] = r
        d += length
        prev = r
    return out


def _funding_times(start: pd.Timestamp, hours: int, change_at: int | None) -> np.ndarray:
    """Event bar positions: every 8h, or for DEMOXTZ 8h → 1h (two days) → 4h from ``change_at``."""
    if change_at is None:
        return np.arange(0, hours, 8)
    first = np.arange(0, change_at + 1, 8)
    hourly = np.arange(first[-1] + 1, first[-1] + 49)
    four = np.arange(hourly[-1] + 4, hours, 4)
    return np.concatenate([first, hourly, four])


def _symbol(rng: np.random.Generator, prof: _Profile, idx: pd.DatetimeIndex, xtz: bool) -> SymbolFrames:
    n = len(idx)
    days = n // 24 + 1
    reg_day = _regimes(rng, prof, days)
    if xtz:
        # a capped negative spike at about 40% of the span, where the interval then changes
        at = int(days * 0.4)
        reg_day[at - 4:at] = 2
        reg_day[at:at + 2] = 3
        reg_day[at + 2:at + 6] = 2
    reg = np.repeat(reg_day, 24)[:n]
    level = np.array([prof.calm, prof.bull, prof.negative, prof.spike])[reg]
    drift = np.array([0.0, 0.00012, -0.00012, 0.0006 * np.sign(prof.spike)])[reg]
    vol = prof.vol * np.array([1.0, 1.15, 1.35, 2.0])[reg]

    ret = drift + vol * rng.standard_normal(n)
    close = prof.price * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[prof.price], close[:-1]]) * np.exp(0.0002 * rng.standard_normal(n))
    wick_hi = np.abs(rng.standard_normal(n)) * vol * 0.6
    wick_lo = np.abs(rng.standard_normal(n)) * vol * 0.6
    high = np.maximum(open_, close) * np.exp(wick_hi)
    low = np.minimum(open_, close) * np.exp(-wick_lo)

    # basis: AR(1) around the regime level, smoothed so regime changes are not instant
    smooth = pd.Series(level).ewm(halflife=12).mean().to_numpy()
    noise = np.empty(n)
    e = rng.standard_normal(n) * 0.00015
    acc = 0.0
    for t in range(n):
        acc = 0.9 * acc + e[t]
        noise[t] = acc
    basis = smooth + noise
    perp_o, perp_h, perp_l, perp_c = (x * (1 + basis) for x in (open_, high, low, close))
    mark_noise = 1 + 0.00005 * rng.standard_normal((4, n))
    mark_o, mark_c = perp_o * mark_noise[0], perp_c * mark_noise[1]
    mark_h = np.maximum(perp_h * mark_noise[2], np.maximum(mark_o, mark_c))
    mark_l = np.minimum(perp_l * mark_noise[3], np.minimum(mark_o, mark_c))
    if prof.name == "DEMOBTC" and WICK_BAR < n:
        mark_h[WICK_BAR] = mark_o[WICK_BAR] * 1.12
        perp_h[WICK_BAR] = perp_o[WICK_BAR] * 1.115
    if prof.name == "DEMOETH" and n > 24 * 500:
        w = 24 * 480 + 5
        mark_l[w] = mark_o[w] * 0.87   # a downward wick: liquidates a 10× long perp (reverse carry)
        perp_l[w] = perp_o[w] * 0.875

    change_at = None
    if xtz:
        change_at = int(days * 0.4) * 24 + 24 + 8
    ev = _funding_times(idx[0], n, change_at)
    interval = np.diff(np.concatenate([[ev[0] - 8], ev])).astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(basis)])
    lo = np.maximum(ev - interval.astype(np.int64), 0)
    premium = (csum[ev] - csum[lo]) / np.maximum(ev - lo, 1)
    scale = interval / 8.0
    interest = INTEREST_8H * scale
    rate = premium * scale + np.clip(interest - premium * scale, -CLAMP_8H * scale, CLAMP_8H * scale)
    rate = np.clip(rate, -prof.cap, prof.cap)
    rate = np.round(rate, 8)
    funding = pd.Series(rate, index=idx[ev], name="funding_rate")

    vol_base = 1e6 / prof.price
    volume = vol_base * np.exp(0.5 * rng.standard_normal(n)) * (1 + 3 * np.abs(ret) / prof.vol * 0.1)

    def frame(o: np.ndarray, h: np.ndarray, lo_: np.ndarray, c: np.ndarray, v: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"open": o, "high": h, "low": lo_, "close": c, "volume": v}, index=idx)

    return SymbolFrames(
        symbol=prof.name,
        spot=frame(open_, high, low, close, volume),
        perp=frame(perp_o, perp_h, perp_l, perp_c, volume * 4),
        mark=frame(mark_o, mark_h, mark_l, mark_c, np.full(n, np.nan)),
        funding=funding,
        sources={k: f"synthetic:{prof.name}:{k}" for k in ("spot", "perp", "mark", "funding")},
    )


def demo_frames(*, seed: int = 7, start: str = "2023-01-01", days: int = 730) -> list[SymbolFrames]:
    """The demo dataset's raw tables (see the module docstring)."""
    idx = pd.date_range(start, periods=days * 24, freq="h", tz="UTC", name="time")
    rng = np.random.default_rng(seed)
    return [_symbol(np.random.default_rng(rng.integers(2**63)), p, idx, p.name == "DEMOXTZ") for p in PROFILES]


def demo_market(*, seed: int = 7, start: str = "2023-01-01", days: int = 730) -> MarketData:
    """The synthetic demo dataset as MarketData (label ``"demo (synthetic)"``, ``synthetic=True``)."""
    return MarketData.from_frames(demo_frames(seed=seed, start=start, days=days), timeframe="1h",
                                  label="demo (synthetic)", synthetic=True)


def _stats(ev: pd.Series, per_year: float = 1095.0) -> dict[str, float]:
    return {
        "events": float(len(ev)),
        "mean_annualised": float(ev.mean() * per_year),
        "std_annualised": float(ev.std() * per_year),
        "share_at_0.0001": float((ev == 0.0001).mean()),
        "share_positive": float((ev > 0).mean()),
        "min": float(ev.min()),
        "max": float(ev.max()),
    }


def calibration_table(shared_data: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Funding statistics of the demo symbols beside the real BTC/ETH/XTZ ones (8h events, ×1095).

    ``shared_data`` is the real data folder (default ``../shared/data`` from the working directory); the real
    columns are left out when it is absent.
    """
    m = demo_market()
    rows = {}
    for s in m.symbols:
        ev = m.events[s]
        rows[f"{s} (synthetic)"] = _stats(ev[ev.index.hour % 8 == 0] if s != "DEMOXTZ" else ev)
    base = os.fspath(shared_data) if shared_data is not None else os.path.join("..", "shared", "data")
    for real in ("BTC", "ETH", "XTZ"):
        path = os.path.join(base, "binance", "futures", f"{real}_USDT_USDT-1h-funding_rate.feather")
        if os.path.exists(path):
            ev = pd.read_feather(path).set_index("date")["open"]
            rows[f"{real} (Binance)"] = _stats(ev)
    return pd.DataFrame(rows)
