# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Funding regimes — how funding is distributed, how long regimes last, which symbols and venues pay
#
# Runs on the real data in `$FUNDARB_DATA` (default `../shared/data` when it is there), else on the **synthetic**
# demo dataset; `DATA` below overrides both. Real data is a folder holding `binance/` (freqtrade layout) and,
# optionally, `exchanges/` (the seven-venue BTC histories). Every number comes from `fundarb`'s public
# API; funding figures are DESIGN §8's (`fundarb.data.funding`), the same ones `fundarb describe` and
# `fundarb funding-stats` print. Rates are fractions in tables and percent on charts.
#
# The outputs stored with this notebook were made on real Binance data (`FUNDARB_DATA=../shared/data` from the
# project root); without real data the notebook runs on the demo dataset.

# %% tags=["parameters"]
DATA = None  # None: $FUNDARB_DATA, else ../shared/data if there, else the demo dataset ("demo" forces it)

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from IPython.display import display

import fundarb as fa
from fundarb.data.funding import funding_summary, funding_table, symbol_events
from fundarb.results.funding_stats import funding_stats
from fundarb.signals.filters import annualised_on_notional, trailing_funding

SHARED = "../shared/data"  # beside the project: the tests' and benchmarks' default too
DATA = DATA or os.environ.get("FUNDARB_DATA") or next(
    (SHARED for b in (Path.cwd(), Path.cwd().parent) if (b / SHARED).is_dir()), "demo")
ROOT = None
if DATA == "demo":
    market = fa.demo_market()
else:
    ROOT = next((b / DATA for b in (Path.cwd(), Path.cwd().parent) if (b / DATA).is_dir()), Path(DATA))
    market = fa.load_freqtrade(ROOT / "binance" if (ROOT / "binance").is_dir() else ROOT)
plt.rcParams.update({"figure.dpi": 80, "figure.figsize": (10, 3.6), "axes.grid": True, "grid.alpha": 0.3})
pct = plt.FuncFormatter(lambda v, _: f"{v:.0%}")
print(market)
print("SYNTHETIC data — not market history." if market.synthetic else "Real data.")


def annualised_per_event(ev: pd.Series) -> pd.Series:
    """Each event as the yearly rate it would pay if it repeated every interval (comparable across 1h/4h/8h)."""
    f = funding_summary(ev)
    hours = np.repeat([s.hours for s in f.segments], [s.events for s in f.segments])
    return ev * (8760.0 / np.where(np.isfinite(hours), hours, 8.0))


EVENTS = {s: symbol_events(market, s) for s in market.symbols}  # each symbol's own span: no 0 before listing

# %% [markdown]
# ## Per-symbol statistics (DESIGN §8)
# *Annualised funding* = Σ settled rates ÷ span in years (span: first event → last event + one interval). The
# per-event mean is shown with its interval.

# %%
stats = funding_stats(market)
table = stats[["events", "first", "last", "intervals", "annualised_funding", "mean_per_event", "share_positive",
               "share_interest_only", "longest_positive_streak", "longest_negative_streak"]]
table.style.format({"annualised_funding": "{:.2%}", "share_positive": "{:.1%}", "share_interest_only": "{:.1%}",
                    "first": "{:%Y-%m-%d}", "last": "{:%Y-%m-%d}"})

# %%
ax = funding_table(market)["annualised_funding"].plot.bar(color="tab:blue", rot=0)
ax.yaxis.set_major_formatter(pct)
ax.set(title="Annualised funding per symbol over its own span (DESIGN §8)", ylabel="per year, on notional",
       xlabel="")
plt.show()

# %% [markdown]
# ## Distributions by year and symbol
# Each event annualised at its own interval (rate × 8,760 / interval hours), so 1h, 4h and 8h events compare.
# Only the years a symbol has events appear — a symbol listed later simply starts later, nothing is filled.

# %%
rows = []
for s, ev in EVENTS.items():
    a = annualised_per_event(ev)
    rows.append(pd.DataFrame({"symbol": s, "year": a.index.year, "annualised": a.to_numpy()}))
per_event = pd.concat(rows, ignore_index=True)
quartiles = per_event.groupby(["symbol", "year"])["annualised"].describe(percentiles=[0.05, 0.25, 0.5, 0.75, 0.95])
quartiles[["count", "5%", "25%", "50%", "75%", "95%"]].style.format("{:.1%}").format("{:,.0f}", subset=["count"])

# %%
yearly = {s: {y: funding_summary(ev[ev.index.year == y]).annualised for y in sorted(set(ev.index.year))}
          for s, ev in EVENTS.items()}
yearly_df = pd.DataFrame(yearly).sort_index()  # NaN where a symbol has no events that year
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
yearly_df.plot.bar(ax=ax1, rot=0)
ax1.yaxis.set_major_formatter(pct)
ax1.set(title="Annualised funding by year (DESIGN §8, per year's own span)", xlabel="")
groups = per_event.groupby(["symbol", "year"])["annualised"]
labels = [f"{s} {y}" for s, y in groups.groups]
ax2.boxplot([g.clip(-2, 2).to_numpy() for _, g in groups], showfliers=False)
ax2.set_xticks(range(1, len(labels) + 1), labels, fontsize=7, rotation=90)
ax2.yaxis.set_major_formatter(pct)
ax2.set(title="Per-event rate, annualised (whiskers 1.5 IQR)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Persistence and autocorrelation
# Funding is summed per UTC day (days inside the symbol's span only). High autocorrelation at lags of days to
# weeks is what makes a trailing filter work at all; how fast it decays says how stale a 30-day window is.

# %%
daily = {s: ev.groupby(ev.index.floor("D")).sum() for s, ev in EVENTS.items()}
lags = np.arange(1, 61)
acf = pd.DataFrame({s: [d.autocorr(int(k)) for k in lags] for s, d in daily.items()}, index=lags)
ax = acf.plot(title="Autocorrelation of daily funding", xlabel="lag (days)", ylabel="correlation")
ax.axhline(0, color="k", lw=0.8)
plt.show()
sign_persist = pd.DataFrame({
    s: {"P(+ next | + now)": float(((ev.shift(-1) > 0) & (ev > 0)).sum() / max((ev > 0).sum(), 1)),
        "P(− next | − now)": float(((ev.shift(-1) < 0) & (ev < 0)).sum() / max((ev < 0).sum(), 1)),
        "lag-1 (daily)": acf.loc[1, s], "lag-7 (daily)": acf.loc[7, s], "lag-30 (daily)": acf.loc[30, s]}
    for s, ev in EVENTS.items()}).T
sign_persist.style.format("{:.2f}")

# %% [markdown]
# ## Regimes by the 30-day filter
# The filter is trailing 30-day funding annualised on notional (DESIGN §7). A regime is a run of bars in which it
# stays in one band: **carry** (≥ `ENTRY`), **reverse** (≤ −`ENTRY`) or **neutral**. NaN (less than one window of
# history, or outside a symbol's span) belongs to no regime.

# %%
ENTRY = 0.10
filt = annualised_on_notional(trailing_funding(market, "30d"), "30d")
band = np.sign(filt.where(filt.abs() >= ENTRY, 0.0)).where(filt.notna())
fig, axes = plt.subplots(len(market.symbols), 1, figsize=(10, 1.9 * len(market.symbols)), sharex=True,
                         squeeze=False)
for ax, s in zip(axes[:, 0], market.symbols, strict=True):
    f = filt[s].dropna()
    ax.plot(f.index, f.to_numpy(), lw=0.8, color="k")
    ax.fill_between(f.index, 0, f.to_numpy(), where=f.to_numpy() >= ENTRY, color="tab:green", alpha=0.4)
    ax.fill_between(f.index, 0, f.to_numpy(), where=f.to_numpy() <= -ENTRY, color="tab:red", alpha=0.4)
    ax.yaxis.set_major_formatter(pct)
    ax.set_ylabel(s, rotation=0, ha="right")
axes[0, 0].set_title(f"30-day filter, annualised on notional; green ≥ {ENTRY:.0%} (carry), red ≤ −{ENTRY:.0%}")
fig.tight_layout()
plt.show()

# %%
runs = []
bar_days = market.timeframe / pd.Timedelta(days=1)
for s in market.symbols:
    b = band[s].dropna()
    rid = (b != b.shift()).cumsum()
    for _, g in b.groupby(rid):
        runs.append({"symbol": s, "regime": {1.0: "carry", -1.0: "reverse", 0.0: "neutral"}[g.iloc[0]],
                     "days": len(g) * bar_days, "start": g.index[0]})
runs_df = pd.DataFrame(runs)
regime_table = runs_df.groupby(["symbol", "regime"])["days"].agg(["count", "median", "mean", "max", "sum"])
regime_table.columns = ["regimes", "median days", "mean days", "longest days", "total days"]
regime_table.style.format("{:,.1f}").format("{:,.0f}", subset=["regimes"])

# %%
fig, ax = plt.subplots()
for reg, color in (("carry", "tab:green"), ("reverse", "tab:red"), ("neutral", "tab:gray")):
    d = runs_df.loc[runs_df["regime"] == reg, "days"]
    if len(d):
        ax.hist(d, bins=np.logspace(np.log10(bar_days), np.log10(max(runs_df["days"].max(), 2)), 30),
                alpha=0.5, label=f"{reg} ({len(d)})", color=color)
ax.set_xscale("log")
ax.set(title="How long 30-day-filter regimes last (all symbols)", xlabel="days", ylabel="regimes")
ax.legend()
plt.show()

# %% [markdown]
# ## Interval changes
# The interval is read from the event timestamps (never assumed). A change — XTZ went 8h → 1h → 4h in July 2025
# after hitting the −0.75% cap — multiplies the events per day, so per-event figures are only comparable with
# their interval.

# %%
summaries = {s: funding_summary(ev) for s, ev in EVENTS.items()}
segs = pd.DataFrame([{"symbol": s, "from": g.first, "to": g.last, "interval": f"{g.hours:g}h", "events": g.events,
                      "mean per event": f"{m:.4%} / {g.hours:g}h"}
                     for s, f in summaries.items() for g, m in zip(f.segments, f.per_event_means, strict=True)])
segs

# %%
fig, ax = plt.subplots(figsize=(10, 2.8))
for s, ev in EVENTS.items():
    gaps = pd.Series(np.diff(ev.index.asi8) / 3.6e12, index=ev.index[1:])
    ax.step(gaps.index, gaps.to_numpy(), where="post", label=s)
ax.set(title="Hours between consecutive funding events", ylabel="hours", ylim=(0, 9))
ax.set_yticks([1, 4, 8], ["1h", "4h", "8h"])
ax.legend(ncol=len(EVENTS), fontsize=8)
plt.show()

# %% [markdown]
# ## The seven venues side by side (BTC-USDT)
# Binance, Bybit, dYdX (hourly), Gate, HTX, KuCoin and MEXC, from `<DATA>/exchanges`. Their `Date` labels are
# local time: **UTC+3** for every venue except **gate** and **dydx** (UTC) — the zone is passed to the loader,
# never guessed. Compared on their common window (dYdX's, 2022–2023). Skipped on the demo dataset.
# The gate file lacks December 2020: DESIGN §8 keeps that month in the span with nothing settled, which lowers
# gate's whole-file figure; the common window has no such hole.

# %%
VENUE_TZ = {"gate": "UTC", "dydx": "UTC"}  # every other venue: UTC+3 ("Etc/GMT-3")
venue_dir = ROOT / "exchanges" if ROOT is not None else None
venues = {}
if venue_dir is not None and venue_dir.is_dir():
    for path in sorted(venue_dir.glob("BTC-USDT_*_funding_history.csv")):
        name = path.name.split("_")[1]
        venues[name] = fa.load_venue_funding(path, tz=VENUE_TZ.get(name, "Etc/GMT-3")).sort_index()
if venues:
    lo = max(v.index[0] for v in venues.values())
    hi = min(v.index[-1] for v in venues.values())
    common = {k: v[(v.index >= lo) & (v.index <= hi)] for k, v in venues.items()}
    whole = {k: funding_summary(v) for k, v in venues.items()}
    vt = pd.DataFrame({k: {"from": f"{f.first:%Y-%m-%d}", "interval": f"{f.segments[-1].hours:g}h",
                           "events": f.events, "annualised (whole file)": f.annualised,
                           "annualised (common window)": funding_summary(common[k]).annualised,
                           "share positive": float((venues[k] > 0).mean())}
                       for k, f in whole.items()}).T
    print(f"common window {lo:%Y-%m-%d %H:%M} → {hi:%Y-%m-%d %H:%M} UTC")
    display(vt.style.format({"annualised (whole file)": "{:.2%}", "annualised (common window)": "{:.2%}",
                             "share positive": "{:.1%}"}))
else:
    print("no exchanges/ folder in the data: venue comparison skipped (set DATA or FUNDARB_DATA to real data)")

# %%
if venues:
    vdaily = pd.DataFrame({k: v.groupby(v.index.floor("D")).sum() for k, v in common.items()})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [2, 1]})
    (vdaily.rolling(30, min_periods=30).sum() * 365 / 30).plot(ax=ax1, lw=1)
    ax1.legend(ncol=4, fontsize=8, loc="upper left")
    ax1.yaxis.set_major_formatter(pct)
    ax1.set(title="BTC-USDT funding by venue: trailing 30 days, annualised", xlabel="")
    corr = vdaily.corr()
    im = ax2.imshow(corr.to_numpy(), vmin=0, vmax=1, cmap="viridis")
    ax2.set_xticks(range(len(corr)), corr.columns, rotation=45, fontsize=8)
    ax2.set_yticks(range(len(corr)), corr.index, fontsize=8)
    for i in range(len(corr)):
        for j in range(len(corr)):
            ax2.text(j, i, f"{corr.iat[i, j]:.2f}", ha="center", va="center", fontsize=7,
                     color="white" if corr.iat[i, j] < 0.6 else "black")
    ax2.set_title("Correlation of daily funding")
    fig.colorbar(im, ax=ax2, fraction=0.046)
    fig.tight_layout()
    plt.show()
