"""The synthetic demo dataset: deterministic, seeded, generated in a few tens of milliseconds.

**SYNTHETIC — not market data.** Three symbols named so they cannot be mistaken for real ones (``DEMOBTC``,
``DEMOETH``, ``DEMOXTZ``), two years (730 days from 2023-01-01 by default) of hourly spot, perp and mark OHLCV,
volumes and settled funding, with no gaps. The same seed gives the same arrays on every machine.

How it is made, per symbol:

- **Regimes.** A chain of episodes — calm, bull, bear, spike — each lasting a geometric number of days and
  carrying its own premium level (calm: inside the interest band; bull: above it, lognormal; bear: below it,
  lognormal; spike: near the cap). A few episodes are placed on fixed dates (below) so the events the tests
  and tutorials rely on exist for every seed.
- **Prices.** Spot follows a regime-switching random walk (drift and volatility depend on the regime: bull
  drifts up, bear and crash down, volatility rises in bear and spike episodes). Bar opens continue the previous
  close; intrabar highs and lows are drawn around the bar, so ``low ≤ open, close ≤ high`` always.
- **Basis.** The perp trades at ``spot × (1 + basis)``; the basis is the regime's premium level (smoothed over a
  few hours) plus mean-reverting AR(1) noise, so it is positive when funding is positive and negative when
  funding is negative.
- **Funding** is Binance's formula on the premium: for an ``h``-hour interval,
  ``F = (h/8) · [P + clamp(0.01% − P, −0.05%, +0.05%)]``, capped at the symbol's cap (±0.3% for DEMOBTC and
  DEMOETH, ±0.75% for DEMOXTZ), where ``P`` is the time-weighted average basis over the hours of the interval
  (later hours weigh more, as Binance's premium index average does). So calm stretches settle at exactly
  0.0001 per 8h (the interest rate alone), bull episodes pay longs' funding to shorts, bear episodes charge
  it, and spikes hit the cap. Rates are rounded to 8 decimals, as the exchange publishes them.
- **Mark** follows the perp within a few basis points (the exchange's mark is index + smoothed basis), with
  deep intrabar wicks on fixed dates.

Events on fixed dates (hours from ``start``; dates below are for the default ``start="2023-01-01"``):

==================  =========================================================================================
date (UTC)          event
==================  =========================================================================================
2023-04-06 → 04-07  DEMOBTC and DEMOETH: a bull spike; funding capped at +0.003 per 8h
2023-07-20 13:00    DEMOBTC: mark high 12% above the bar's mark open (perp high +14%, spot +3%) — liquidates a
                    10× short perp (a carry position), whose liquidation price is about 9.5% above entry
2023-10-17 → 10-23  DEMOXTZ: a crash; funding hits the −0.0075 cap at 2023-10-21 08:00, after which the interval
                    changes from 8h to 1h (48 hourly events, 09:00 on the 21st → 08:00 on the 23rd), then to 4h
                    (first 4h spacing ends 2023-10-23 12:00) — as real XTZ did on 2025-07-20
2024-04-23 → 04-26  DEMOETH: a crash; funding capped at −0.003 per 8h, and on 2024-04-25 05:00 the mark low is 13%
                    below the bar's mark open — liquidates a 10× long perp (a reverse-carry position)
==================  =========================================================================================

Each fixed event is placed only when ``days`` reaches past it. :func:`calibration_table` compares the funding
statistics with the real Binance data when the shared data folder is present; ``datasets/README.md`` has the
numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fundarb.data.frames import SymbolFrames
from fundarb.data.funding import annualised_funding
from fundarb.data.market import MarketData

__all__ = [
    "DEMO_SYMBOLS",
    "WICKS",
    "WICK_BAR",
    "XTZ_CHANGE_BAR",
    "calibration_table",
    "demo_frames",
    "demo_market",
    "funding_stats",
]

INTEREST_8H = 0.0001
"""Binance's interest component per 8h (0.03% a day)."""
CLAMP_8H = 0.0005
"""Half-width of the clamp around the interest rate per 8h."""

CALM, BULL, BEAR, SPIKE = 0, 1, 2, 3

WICK_BAR = 24 * 200 + 13
"""Hour (from ``start``) of DEMOBTC's 12% upward mark wick: 2023-07-20 13:00 UTC with the default start."""
ETH_WICK_BAR = 24 * 480 + 5
"""Hour of DEMOETH's 13% downward mark wick: 2024-04-25 05:00 UTC with the default start."""
XTZ_CHANGE_BAR = 24 * 293 + 8
"""Hour of DEMOXTZ's last 8h event, capped at −0.0075: 2023-10-21 08:00 UTC; hourly events follow."""
WICKS = {
    "DEMOBTC": (WICK_BAR, "high", 1.12),
    "DEMOETH": (ETH_WICK_BAR, "low", 0.87),
}
"""Symbol → (hour from start, side of the bar, mark extreme ÷ mark open)."""


@dataclass(frozen=True)
class _Profile:
    name: str
    price: float                                     # first spot price
    vol: float                                       # hourly log-return volatility in calm episodes
    cap: float                                       # funding cap per event (±)
    weights: tuple[float, float, float, float]       # how often each regime is drawn (calm, bull, bear, spike)
    mean_days: tuple[float, float, float, float]     # mean episode length, days
    calm: tuple[float, float]                        # premium range of calm episodes (uniform)
    bull: tuple[float, float]                        # bull premium above +0.06%: lognormal (median, sigma)
    bear: tuple[float, float]                        # bear premium below −0.04%: lognormal (median, sigma)
    spike: float                                     # premium of a spike episode (its sign: its direction)
    noise: float                                     # hourly AR(1) innovation of the basis
    tilt: float                                      # how strongly the market mood tilts bull vs bear
    fixed: tuple[tuple[int, int, int, float], ...]   # (first day, regime, days, premium) placed on fixed dates


_BAND_HI = INTEREST_8H + CLAMP_8H    # +0.06%: above, F = P − 0.05%
_BAND_LO = INTEREST_8H - CLAMP_8H    # −0.04%: below, F = P + 0.05%

PROFILES = (
    _Profile("DEMOBTC", 16_500.0, 0.0050, 0.003,
             weights=(0.33, 0.33, 0.33, 0.01), mean_days=(2.5, 5.0, 4.0, 1.0),
             calm=(-0.0004, 0.0005), bull=(0.00013, 0.8), bear=(0.00004, 0.6), spike=0.0025, noise=0.00005, tilt=1.0,
             fixed=((95, BULL, 2, 0.0012), (96, SPIKE, 1, 0.0045), (199, CALM, 3, 0.0001))),
    _Profile("DEMOETH", 1_200.0, 0.0062, 0.003,
             weights=(0.33, 0.33, 0.33, 0.01), mean_days=(2.5, 5.0, 4.0, 1.0),
             calm=(-0.0004, 0.0005), bull=(0.00012, 0.8), bear=(0.00004, 0.6), spike=0.0030, noise=0.00006, tilt=1.0,
             fixed=((95, BULL, 2, 0.0012), (96, SPIKE, 1, 0.0045), (478, BEAR, 2, -0.0015),
                    (480, SPIKE, 1, -0.0045), (481, BEAR, 1, -0.0010))),
    _Profile("DEMOXTZ", 0.85, 0.0085, 0.0075,
             weights=(0.45, 0.0, 0.53, 0.02), mean_days=(6.0, 2.0, 7.0, 1.0),
             calm=(-0.00045, 0.0002), bull=(0.00005, 0.5), bear=(0.00012, 0.9), spike=-0.0040, noise=0.00010, tilt=1.0,
             fixed=((289, BEAR, 3, -0.0015), (292, SPIKE, 2, -0.0110), (294, BEAR, 2, -0.0020))),
)
DEMO_SYMBOLS = tuple(p.name for p in PROFILES)

# regime → (hourly drift, volatility multiplier); a spike's drift takes the sign of its premium
_DRIFT = np.array([0.0, 0.00012, -0.00010, 0.0008])
_VOLX = np.array([1.0, 1.15, 1.35, 2.2])
_MOOD_PHI = 0.98


def _episodes(rng: np.random.Generator, prof: _Profile, days: int) -> tuple[np.ndarray, np.ndarray]:
    """Regime code and premium level per day.

    A slow market mood (daily AR(1), half-life about a month) tilts which regime comes next and how far its
    premium goes, so bull and bear episodes cluster into phases of weeks to months, as on real exchanges.
    """
    mood = _ar1(np.sqrt(1.0 - _MOOD_PHI**2) * rng.standard_normal(days), _MOOD_PHI)
    reg = np.empty(days, dtype=np.int64)
    lvl = np.empty(days)
    w_all = np.array(prof.weights)
    d, prev = 0, -1
    while d < days:
        m = mood[d]
        w = w_all * np.exp(prof.tilt * m * np.array([0.0, 1.0, -1.0, 0.0]))
        if prev >= 0:
            w[prev] = 0.0
        r = int(rng.choice(4, p=w / w.sum()))
        length = int(rng.geometric(1.0 / prof.mean_days[r]))
        z = 0.4 * m + np.sqrt(0.84) * rng.standard_normal()
        if r == CALM:
            level = rng.uniform(*prof.calm)
        elif r == BULL:
            level = _BAND_HI + min(prof.bull[0] * np.exp(prof.bull[1] * z), 0.5 * prof.cap)
        elif r == BEAR:
            level = _BAND_LO - prof.bear[0] * np.exp(-prof.bear[1] * z)
        else:
            level = prof.spike * (1.0 + 0.25 * rng.standard_normal())
        reg[d:d + length] = r
        lvl[d:d + length] = level
        d += length
        prev = r
    for first, r, n, level in prof.fixed:
        if first + n <= days:
            reg[first:first + n] = r
            lvl[first:first + n] = level
    return reg, lvl


def _ar1(e: np.ndarray, phi: float) -> np.ndarray:
    """``x[t] = phi·x[t−1] + e[t]`` (vectorised through pandas' exponentially weighted mean)."""
    alpha = 1.0 - phi
    return pd.Series(e / alpha).ewm(alpha=alpha, adjust=False).mean().to_numpy() if len(e) else e


def _event_hours(n: int, change_at: int | None) -> np.ndarray:
    """Funding event bars: every 8h; with ``change_at`` 8h up to it, then 48 hourly events, then every 4h."""
    if change_at is None or change_at >= n:
        return np.arange(0, n, 8)
    eight = np.arange(0, change_at + 1, 8)
    hourly = np.arange(eight[-1] + 1, eight[-1] + 49)
    four = np.arange(hourly[-1] + 4, n, 4)
    ev = np.concatenate([eight, hourly, four])
    return ev[ev < n]


def _funding(basis: np.ndarray, ev: np.ndarray, cap: float) -> np.ndarray:
    """Binance's funding at each event bar from the hourly basis of the interval before it."""
    interval = np.diff(np.concatenate([[ev[0] - 8], ev]))
    lo = np.maximum(ev - interval, 0)
    k = np.arange(len(basis), dtype=np.float64)
    s0 = np.concatenate([[0.0], np.cumsum(basis)])
    s1 = np.concatenate([[0.0], np.cumsum(k * basis)])
    # time-weighted average over bars lo … ev−1 with weights 1, 2, …, (later hours weigh more)
    num = (s1[ev] - s1[lo]) - (lo - 1) * (s0[ev] - s0[lo])
    m = ev - lo
    den = np.maximum(m * (m + 1) / 2.0, 1.0)
    premium = num / den
    scale = interval / 8.0
    rate = scale * (premium + np.clip(INTEREST_8H - premium, -CLAMP_8H, CLAMP_8H))
    return np.round(np.clip(rate, -cap, cap), 8)


def _symbol(rng: np.random.Generator, prof: _Profile, idx: pd.DatetimeIndex) -> SymbolFrames:
    n = len(idx)
    days = -(-n // 24)
    reg_day, lvl_day = _episodes(rng, prof, days)
    reg = np.repeat(reg_day, 24)[:n]
    level = np.repeat(lvl_day, 24)[:n]

    # spot: regime-switching random walk
    vol = prof.vol * _VOLX[reg]
    drift = _DRIFT[reg] * np.where(reg == SPIKE, np.sign(level), 1.0) + 0.5 * vol**2  # median drift: _DRIFT
    ret = drift + vol * rng.standard_normal(n)
    close = prof.price * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[prof.price], close[:-1]]) * np.exp(0.0002 * rng.standard_normal(n))
    high = np.maximum(open_, close) * np.exp(0.5 * vol * np.abs(rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-0.5 * vol * np.abs(rng.standard_normal(n)))

    # basis: the regime's premium (smoothed over a few hours) + mean-reverting noise
    smooth = pd.Series(level).ewm(halflife=3.0).mean().to_numpy()
    basis = smooth + _ar1(prof.noise * rng.standard_normal(n), 0.9)
    perp_o, perp_h, perp_l, perp_c = (x * (1.0 + basis) for x in (open_, high, low, close))

    # mark: the perp within a few basis points
    mn = 1.0 + 0.00005 * rng.standard_normal((4, n))
    mark_o, mark_c = perp_o * mn[0], perp_c * mn[1]
    mark_h = np.maximum(perp_h * mn[2], np.maximum(mark_o, mark_c))
    mark_l = np.minimum(perp_l * mn[3], np.minimum(mark_o, mark_c))
    if prof.name in WICKS:
        at, side, ratio = WICKS[prof.name]
        if at < n:
            if side == "high":
                mark_h[at] = mark_o[at] * ratio
                perp_h[at] = max(perp_h[at], perp_o[at] * (ratio + 0.02))
                high[at] = max(high[at], open_[at] * 1.03)
            else:
                mark_l[at] = mark_o[at] * ratio
                perp_l[at] = min(perp_l[at], perp_o[at] * (ratio - 0.02))
                low[at] = min(low[at], open_[at] * 0.97)

    ev = _event_hours(n, XTZ_CHANGE_BAR if prof.name == "DEMOXTZ" else None)
    funding = pd.Series(_funding(basis, ev, prof.cap), index=idx[ev], name="funding_rate")

    volume = (2e7 / prof.price) * np.exp(0.45 * rng.standard_normal(n)) * (1.0 + 0.5 * np.abs(ret) / prof.vol)

    def frame(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": v}, index=idx)

    return SymbolFrames(
        symbol=prof.name,
        spot=frame(open_, high, low, close, volume),
        perp=frame(perp_o, perp_h, perp_l, perp_c, volume * 4.0),
        mark=frame(mark_o, mark_h, mark_l, mark_c, np.full(n, np.nan)),
        funding=funding,
        sources={k: f"synthetic:{prof.name}:{k}" for k in ("spot", "perp", "mark", "funding")},
    )


def demo_frames(*, seed: int = 7, start: str = "2023-01-01", days: int = 730) -> list[SymbolFrames]:
    """The demo dataset's raw tables, one per symbol (see the module docstring). SYNTHETIC, not market data."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    idx = pd.date_range(pd.Timestamp(start, tz="UTC").floor("h"), periods=days * 24, freq="h", name="time")
    seeds = np.random.SeedSequence(seed).spawn(len(PROFILES))
    return [_symbol(np.random.default_rng(s), p, idx) for s, p in zip(seeds, PROFILES, strict=True)]


def demo_market(*, seed: int = 7, start: str = "2023-01-01", days: int = 730) -> MarketData:
    """The synthetic demo dataset as MarketData (label ``"demo (synthetic)"``, ``synthetic=True``)."""
    return MarketData.from_frames(demo_frames(seed=seed, start=start, days=days), timeframe="1h",
                                  label="demo (synthetic)", synthetic=True)


# ---------------------------------------------------------------------------------------------------- calibration
def funding_stats(ev: pd.Series) -> dict[str, float]:
    """Summary statistics of one symbol's settled funding events (any interval, even changing).

    ``mean annualised`` is DESIGN §8's annualised funding (:func:`fundarb.data.funding.annualised_funding`:
    Σ rates ÷ span in years). For the std and autocorrelation, rates are first summed into 8h buckets
    (00:00, 08:00, 16:00 UTC), so 1h and 4h events count like 8h ones; ``std annualised`` is those buckets
    × 1,095. ``share at interest`` counts events settled at exactly the interest rate of their interval
    (0.0001 per 8h, 0.00005 per 4h, 0.0000125 per 1h).
    """
    ev = ev.sort_index()
    t = pd.DatetimeIndex(ev.index)
    hours = np.diff(t.as_unit("ns").asi8) / 3.6e12
    hours = np.concatenate([[hours[0] if len(hours) else 8.0], hours])
    b8 = ev.groupby(t.floor("8h")).sum()
    interest = np.isclose(ev.to_numpy(), INTEREST_8H * hours / 8.0, rtol=0, atol=1e-9)
    neg = (ev.to_numpy() < 0).astype(np.int8)
    d = np.diff(np.concatenate([[0], neg, [0]]))
    runs = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
    return {
        "events": float(len(ev)),
        "mean annualised": annualised_funding(ev),
        "std annualised": float(b8.std() * 1095),
        "share at interest": float(interest.mean()),
        "share positive": float((ev > 0).mean()),
        "share negative": float((ev < 0).mean()),
        "lag-1 autocorrelation": float(b8.autocorr(1)),
        "longest negative run (events)": float(runs.max()) if len(runs) else 0.0,
        "min": float(ev.min()),
        "max": float(ev.max()),
    }


def _shared_data() -> str | None:
    """The real data folder: $FUNDARB_DATA, else ../shared/data (from here or beside the project)."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("FUNDARB_DATA", ""), os.path.join("..", "shared", "data"),
                  os.path.join(here, "..", "..", "..", "..", "shared", "data")]
    for c in candidates:
        if c and os.path.isdir(os.path.join(c, "binance", "futures")):
            return c
    return None


def calibration_table(shared_data: str | os.PathLike[str] | None = None, *, seed: int = 7,
                      show: bool = False) -> pd.DataFrame:
    """Funding statistics of the demo symbols beside the real Binance BTC, ETH and XTZ ones.

    Columns pair each synthetic symbol with its model: ``DEMOBTC`` with BTC over the published window
    (2020-01-08 → 2024-03-11, He et al. Table B.1) and over its whole history, likewise ``DEMOETH`` with ETH,
    ``DEMOXTZ`` with XTZ. The real columns are read from ``shared_data`` (default: ``$FUNDARB_DATA`` or
    ``../shared/data``) and left out when it is absent. ``show=True`` also prints the table.
    """
    m = demo_market(seed=seed)
    base = os.fspath(shared_data) if shared_data is not None else _shared_data()

    def real(sym: str) -> pd.Series | None:
        if base is None:
            return None
        path = os.path.join(base, "binance", "futures", f"{sym}_USDT_USDT-1h-funding_rate.feather")
        if not os.path.exists(path):
            return None
        return pd.read_feather(path).set_index("date")["open"]

    cols: dict[str, dict[str, float]] = {}
    for demo, sym in zip(DEMO_SYMBOLS, ("BTC", "ETH", "XTZ"), strict=True):
        cols[f"{demo} (synthetic)"] = funding_stats(m.events[demo])
        ev = real(sym)
        if ev is None:
            continue
        if sym != "XTZ":
            cols[f"{sym} 2020-01-08 → 2024-03-11"] = funding_stats(ev["2020-01-08":"2024-03-11"])
        cols[f"{sym} {ev.index[0]:%Y-%m} → {ev.index[-1]:%Y-%m}"] = funding_stats(ev)
    table = pd.DataFrame(cols)
    if show:
        with pd.option_context("display.width", 250, "display.max_columns", 20):
            print(table.map(lambda v: f"{v:.4g}").to_string())
    return table


if __name__ == "__main__":  # python -m fundarb.data.synthetic
    calibration_table(show=True)
