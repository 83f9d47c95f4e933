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
# # Liquidation risk — leverage × margin management vs liquidations and returns
#
# A hedged carry position is delta-neutral, but its perp leg sits on margin: with perp leverage `L` the perp is
# liquidated when the mark moves roughly `1/L` against it, and the spot leg's gain does not top up that margin
# unless the position is rebalanced. This notebook runs the same strategy at several leverages under each
# margin-management setting and counts liquidations, their cost and what is left of the return.
#
# Runs on the real data in `$FUNDARB_DATA` (a folder with `binance/`, freqtrade layout; default `../shared/data`
# when it is there), else on the **synthetic** demo dataset (it holds two engineered mark wicks that liquidate
# 10× positions); `DATA` below overrides both.
#
# The outputs stored with this notebook were made on real Binance data (`FUNDARB_DATA=../shared/data` from the
# project root); without real data the notebook runs on the demo dataset.

# %% tags=["parameters"]
DATA = None  # None: $FUNDARB_DATA, else ../shared/data if there, else the demo dataset ("demo" forces it)
SYMBOLS = None  # e.g. ["BTC", "ETH"]; None: every symbol
LEVERAGE = [1, 2, 3, 5, 10]
# Margin-management settings to compare: a label → keyword arguments of fa.backtest. To compare another
# option, add an entry here, e.g. "rebalance at 80% of cushion": {"rebalance_at": 0.8} once that option exists
# with that meaning in your version (see `help(fa.backtest)`).
MARGIN = {
    "none": {},
    "rebalance weekly": {"rebalance_every": "7d"},
    "rebalance daily": {"rebalance_every": "1d"},
}

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import fundarb as fa

SHARED = "../shared/data"  # beside the project: the tests' and benchmarks' default too
DATA = DATA or os.environ.get("FUNDARB_DATA") or next(
    (SHARED for b in (Path.cwd(), Path.cwd().parent) if (b / SHARED).is_dir()), "demo")
if DATA == "demo":
    market, DATA_NAME = fa.demo_market(), "demo (synthetic)"
else:
    ROOT = next((b / DATA for b in (Path.cwd(), Path.cwd().parent) if (b / DATA).is_dir()), Path(DATA))
    FOLDER = ROOT / "binance" if (ROOT / "binance").is_dir() else ROOT
    market, DATA_NAME = fa.load_freqtrade(FOLDER), f"{FOLDER.name} data"
if SYMBOLS:
    market = market.select(SYMBOLS)
plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
pct = plt.FuncFormatter(lambda v, _: f"{v:.0%}")
COSTS = fa.Costs.taker()
STRATEGY = fa.FundingCarry(window="7d", entry=0.10, direction="auto")
print(market)
print("SYNTHETIC data — not market history." if market.synthetic else "Real data.")

# %% [markdown]
# ## The grid
# One `fa.backtest` call per margin setting; the leverage list is swept inside it (one account per leverage ×
# symbol, each with the full capital).

# %%
rows = []
for label, options in MARGIN.items():
    res = fa.backtest(market, STRATEGY, costs=COSTS, leverage=LEVERAGE, mode="sweep", **options)
    st = res.stats().reset_index()
    st.insert(0, "margin", label)
    rows.append(st)
grid = pd.concat(rows, ignore_index=True)
cols = ["margin", "leverage", "symbol", "cagr", "sharpe", "max_drawdown", "n_liquidations", "liquidation_fees",
        "insurance_fund_loss", "n_trades", "fees", "funding_pnl"]
grid[cols].style.format({"cagr": "{:.2%}", "sharpe": "{:.2f}", "max_drawdown": "{:.2%}",
                         "liquidation_fees": "{:,.0f}", "insurance_fund_loss": "{:,.0f}", "fees": "{:,.0f}",
                         "funding_pnl": "{:,.0f}"}).hide(axis="index")

# %% [markdown]
# ## Liquidations and returns by leverage
# Summed (liquidations) or averaged (returns, drawdown) over symbols.

# %%
by = grid.groupby(["margin", "leverage"])
summary = pd.DataFrame({"liquidations": by["n_liquidations"].sum(), "cagr": by["cagr"].mean(),
                        "max_drawdown": by["max_drawdown"].mean(), "sharpe": by["sharpe"].mean()})
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
for label in MARGIN:
    s = summary.loc[label]
    axes[0].plot(s.index, s["liquidations"], marker="o", label=label)
    axes[1].plot(s.index, s["cagr"], marker="o", label=label)
    axes[2].plot(s.index, s["max_drawdown"], marker="o", label=label)
axes[0].set(title="Liquidations (all symbols)", xlabel="perp leverage", ylabel="count")
axes[1].set(title="CAGR on capital (mean over symbols)", xlabel="perp leverage")
axes[2].set(title="Max drawdown (mean over symbols)", xlabel="perp leverage")
for ax in axes[1:]:
    ax.yaxis.set_major_formatter(pct)
for ax in axes:
    ax.set_xscale("log")
    ax.set_xticks(LEVERAGE, [f"{v:g}×" for v in LEVERAGE])
axes[0].legend(fontsize=8)
fig.suptitle(f"{STRATEGY.__class__.__name__} (window {STRATEGY.window}, entry {STRATEGY.entry:.0%}), "
             f"{DATA_NAME}", y=1.02)
fig.tight_layout()
plt.show()
summary.style.format({"cagr": "{:.2%}", "max_drawdown": "{:.2%}", "sharpe": "{:.2f}"})

# %% [markdown]
# ## Per symbol: where the liquidations happen

# %%
piv = grid.pivot_table(index=["symbol", "leverage"], columns="margin", values="n_liquidations", aggfunc="sum")
fig, axes = plt.subplots(1, len(market.symbols), figsize=(4.5 * len(market.symbols), 3.2), squeeze=False,
                         sharey=True)
for ax, s in zip(axes[0], market.symbols, strict=True):
    piv.loc[s][list(MARGIN)].plot.bar(ax=ax, rot=0, legend=ax is axes[0, 0])
    ax.set(title=s, xlabel="perp leverage", ylabel="liquidations")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## One run in detail: the highest leverage without management
# The liquidations of the riskiest setting, and its equity against the 1× run.

# %%
hi = max(LEVERAGE)
detail = fa.backtest(market, STRATEGY, costs=COSTS, leverage=hi, **MARGIN["none"])
base = fa.backtest(market, STRATEGY, costs=COSTS, leverage=min(LEVERAGE), **MARGIN["none"])
kinds = pd.concat({f"{min(LEVERAGE):g}×": base.liquidations.groupby(["symbol", "kind"]).size(),
                   f"{hi:g}×": detail.liquidations.groupby(["symbol", "kind"]).size()}, axis=1).fillna(0).astype(int)
print("liquidations by leg (liquidation_spot: the reverse-carry spot margin loan, at its own spot leverage)")
print(kinds.to_string())
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), sharey=True)
for ax, (res, name) in zip(axes, ((base, f"{min(LEVERAGE):g}×"), (detail, f"{hi:g}×")), strict=True):
    eq = res.equity
    for s in eq.columns:
        ax.plot(eq.index, eq[s].to_numpy(), lw=0.9, label=s)
    ax.set(title=f"Equity at {name} perp leverage, no margin management", ylabel="equity (quote currency)")
    for t in res.liquidations["time"]:
        ax.axvline(t, color="k", lw=0.6, ls=":", alpha=0.6)
axes[0].legend(fontsize=8)
fig.text(0.5, -0.02, "dotted lines: liquidations", ha="center", fontsize=8)
fig.tight_layout()
plt.show()
