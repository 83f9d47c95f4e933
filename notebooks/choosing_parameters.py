# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Choosing parameters — a sweep, its heatmaps, and whether the best point survives out of sample
#
# `fa.sweep` runs every combination of a grid of strategy fields in one kernel call. The best cell of an
# in-sample heatmap is an optimistic estimate; the second half of this notebook re-runs the sweep on a later
# period to see how much of the ranking holds.
#
# Runs on the **synthetic** demo dataset by default; set `DATA` (or `FUNDARB_DATA`) to a folder with `binance/`
# (freqtrade layout), e.g. `../shared/data`, for real data. Keep the grid small when trying things out.
#
# The outputs stored with this notebook were made on real Binance data (`FUNDARB_DATA=../shared/data` from the
# project root); without it the notebook runs on the demo dataset.

# %% tags=["parameters"]
DATA = None  # None: $FUNDARB_DATA if set, else the demo dataset ("demo" forces it)
SYMBOLS = None  # e.g. ["BTC", "ETH"]; None: every symbol
GRID = {"window": ["3d", "7d", "30d"], "entry": [0.05, 0.10, 0.20], "leverage": [1, 3]}
METRIC = "sharpe"
TRAIN, TEST = "180d", "90d"  # walk-forward windows

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import fundarb as fa

DATA = DATA or os.environ.get("FUNDARB_DATA") or "demo"
if DATA == "demo":
    market, DATA_NAME = fa.demo_market(), "demo (synthetic)"
else:
    ROOT = next((b / DATA for b in (Path.cwd(), Path.cwd().parent) if (b / DATA).is_dir()), Path(DATA))
    FOLDER = ROOT / "binance" if (ROOT / "binance").is_dir() else ROOT
    market, DATA_NAME = fa.load_freqtrade(FOLDER), f"{FOLDER.name} data"
if SYMBOLS:
    market = market.select(SYMBOLS)
plt.rcParams.update({"figure.dpi": 80, "axes.grid": False})
COSTS = fa.Costs.taker()
STRATEGY = fa.FundingCarry(direction="auto", exit=0.0)
print(market)
print("SYNTHETIC data — not market history." if market.synthetic else "Real data.")
print(f"grid: {GRID} → {int(np.prod([len(v) for v in GRID.values()]))} points × {len(market.symbols)} symbols")

# %% [markdown]
# ## The sweep (whole period)

# %%
sw = fa.sweep(market, STRATEGY, GRID, costs=COSTS)
# one row per grid point, scored by its book (all symbols); sw.per_symbol has one row per account
cols = [*GRID, "cagr", "sharpe", "max_drawdown", "n_trades", "n_liquidations", "funding_kept_share"]
sw.best(METRIC, 10)[cols].style.format({"cagr": "{:.2%}", "sharpe": "{:.2f}", "max_drawdown": "{:.2%}",
                                        "funding_kept_share": "{:.0%}"})


# %%
def heatmap(ax, pivot: pd.DataFrame, title: str, fmt: str) -> None:
    """One annotated heatmap; text colour follows the cell's brightness so it stays readable."""
    vals = pivot.to_numpy(dtype=float)
    im = ax.imshow(vals, cmap="viridis", aspect="auto")
    ax.set_xticks(range(pivot.shape[1]), [str(c) for c in pivot.columns])
    ax.set_yticks(range(pivot.shape[0]), [str(i) for i in pivot.index])
    ax.set(xlabel=pivot.columns.name, ylabel=pivot.index.name, title=title)
    lo, hi = np.nanmin(vals), np.nanmax(vals)
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            dark = (vals[i, j] - lo) / (hi - lo or 1) < 0.5
            text = "n/a" if np.isnan(vals[i, j]) else format(vals[i, j], fmt)  # n/a: never traded
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    plt.colorbar(im, ax=ax, fraction=0.046)


x, y = list(GRID)[:2]
metrics = [(METRIC, ".2f"), ("cagr", ".1%"), ("max_drawdown", ".1%"), ("n_trades", ".0f")]
fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6))
for ax, (m, fmt) in zip(axes, metrics, strict=True):
    pivot = sw.heatmap(x, y, m)  # the book's metric; other swept fields: the best they reach
    heatmap(ax, pivot, pivot.attrs["label"], fmt)
fig.suptitle(f"{STRATEGY.__class__.__name__} sweep on {DATA_NAME}", y=1.02)
fig.tight_layout()
plt.show()

# %% [markdown]
# The same metric per symbol: a parameter that only works on one symbol is a warning sign.

# %%
ncols = min(3, len(market.symbols))
nrows = -(-len(market.symbols) // ncols)
fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
for ax in axes.flat[len(market.symbols):]:
    ax.set_visible(False)
for ax, s in zip(axes.flat, market.symbols, strict=False):
    one = sw.per_symbol[sw.per_symbol["symbol"] == s]
    pivot = one.pivot_table(index=y, columns=x, values=METRIC, aggfunc="max", sort=False)
    heatmap(ax, pivot, f"{METRIC}: {s} (max over the other fields)", ".2f")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## In sample vs out of sample
# Sweep the first half of each symbol's own span, then its second half, and compare each grid point's rank.
# A rank correlation near 1 means the ranking carries over; near 0, the in-sample best was luck.

# %%
spans: dict[tuple, list[str]] = {}  # symbols sharing a span share one sweep per half
for s in market.symbols:
    c = market.coverage[s]
    spans.setdefault((market.index[c.first_bar], market.index[c.last_bar]), []).append(s)
parts, splits = [], {}
for (lo, hi), syms in spans.items():
    part = market.select(syms)
    mid = (lo + (hi - lo) / 2).floor(market.timeframe)
    splits.update(dict.fromkeys(syms, mid))
    halves = {half: fa.sweep(part.slice(a, b), STRATEGY, GRID, costs=COSTS).per_symbol.set_index([*GRID, "symbol"])
              for half, (a, b) in {"in": (lo, mid - market.timeframe), "out": (mid, hi)}.items()}
    parts.append(pd.DataFrame({f"{METRIC}_{k}": v[METRIC] for k, v in halves.items()}).reset_index("symbol"))
both = pd.concat(parts)
rank_corr = pd.DataFrame({
    "split at": {s: f"{t:%Y-%m-%d}" for s, t in splits.items()},
    "rank correlation": both.groupby("symbol").apply(
        lambda d: d[f"{METRIC}_in"].corr(d[f"{METRIC}_out"], method="spearman")),
    "best in sample": both.groupby("symbol")[f"{METRIC}_in"].max(),
    "same point out of sample": both.groupby("symbol").apply(lambda d: d.loc[d[f"{METRIC}_in"].idxmax(),
                                                                               f"{METRIC}_out"]),
    "best out of sample": both.groupby("symbol")[f"{METRIC}_out"].max(),
})
print(f"Spearman rank correlation of {METRIC} over the grid, first half vs second half of each symbol's span:")
print(rank_corr.round(2).to_string())
fig, ax = plt.subplots(figsize=(5.5, 4))
for s, d in both.groupby("symbol"):
    ax.scatter(d[f"{METRIC}_in"], d[f"{METRIC}_out"], label=s, s=18)
ax.axline((0, 0), slope=1, color="k", lw=0.8, ls="--")
ax.set(xlabel=f"{METRIC}, first half", ylabel=f"{METRIC}, second half",
       title="Every grid point: in sample vs out of sample")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Walk-forward
# On each fold the best grid point of the training window (by the book's metric) trades the following test
# window, which starts flat from the previous fold's ending equity; its signals may use history before the
# window (warm-up), never after. The gap between the in-sample and out-of-sample metric is what the in-sample
# best overstates.

# %%
wf = fa.walk_forward(market, STRATEGY, GRID, train=TRAIN, test=TEST, metric=METRIC, costs=COSTS)
folds = wf.folds[["test_start", *GRID, f"is_{METRIC}", f"oos_{METRIC}"]].rename(
    columns={f"is_{METRIC}": f"{METRIC} in sample", f"oos_{METRIC}": f"{METRIC} out of sample"})
print(folds.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
print(f"overfitting gap (mean in-sample − mean out-of-sample {METRIC}): {wf.overfitting_gap:.2f}")
fig, ax = plt.subplots(figsize=(8, 3.2))
wf.equity.plot(ax=ax, color="C0")
ax.set(title=f"Stitched out-of-sample equity, {TRAIN} train / {TEST} test", ylabel="USDT", xlabel="")
plt.show()
