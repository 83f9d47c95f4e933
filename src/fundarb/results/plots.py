"""Figures of a backtest: equity, PnL split into components, positions. Matplotlib's object API only (no pyplot
state, no global backend change), so it is safe in scripts, servers and notebooks alike."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["figure_result", "save_figure"]

_COLOURS = {"funding": "#2a9d8f", "basis": "#e9c46a", "costs": "#e76f51", "borrow": "#8d6e63",
            "liquidation": "#9b2226"}


def figure_result(result: Any, *, column: object = None, title: str | None = None) -> Any:
    """A three-panel figure for one account of ``result`` (detail mode): equity, components, positions.

    Parameters
    ----------
    result
        A :class:`fundarb.results.result.Result` run in detail mode.
    column
        The account to draw (default: the first).
    title
        Figure title (default: the market label and the account).
    """
    from matplotlib.figure import Figure

    col = result.groups[0] if column is None else column
    j = list(result.groups).index(col)
    idx = result.market.index
    eq = result.equity.iloc[:, j]
    comps = {k: v.iloc[:, j] for k, v in result.components.items()}
    fig = Figure(figsize=(11, 8), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(3, 1, sharex=True, height_ratios=[3, 3, 1])
    ax1.plot(idx, eq.to_numpy(), color="#264653", lw=1.2, label="equity")
    ax1.axhline(result.capital.iloc[j], color="grey", lw=0.6, ls="--")
    ax1.set_ylabel("equity")
    ax1.legend(loc="upper left")
    costs = comps["fees"] + comps["spread"] + comps["slippage"]
    lines = {
        "funding": comps["funding"],
        "basis": comps["basis_pnl"],
        "costs": -costs,
        "borrow": -comps["borrow"],
        "liquidation": comps["insurance_fund_loss"] - comps["liquidation_fees"],
    }
    drawn = 0
    for name, ser in lines.items():
        if np.any(ser.to_numpy() != 0):
            ax2.plot(idx, ser.to_numpy(), lw=1.0, color=_COLOURS[name], label=name)
            drawn += 1
    ax2.axhline(0, color="grey", lw=0.6)
    ax2.set_ylabel("cumulative PnL")
    if drawn:
        ax2.legend(loc="upper left", ncol=5)
    grp = result.grp_start
    pos = result.positions.iloc[:, grp[j]:grp[j + 1]]
    for c in pos.columns:
        ax3.step(idx, pos[c].to_numpy(), where="post", lw=0.8, label=str(c))
    ax3.set_yticks([-1, 0, 1], ["reverse", "flat", "carry"])
    ax3.set_ylabel("position")
    if pos.shape[1] > 1:
        ax3.legend(loc="upper left", ncol=min(pos.shape[1], 6), fontsize="small")
    label = result.market.label or "market data"
    synth = " — SYNTHETIC DATA" if result.market.synthetic else ""
    fig.suptitle(title or f"{label}: {col}{synth}")
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 110) -> str:
    """Save ``fig`` (PNG, SVG or PDF by the file's extension); returns the path."""
    p = os.fspath(path)
    fig.savefig(p, dpi=dpi)
    return p


def figure_heatmap(pivot: Any, *, metric: str, title: str | None = None) -> Any:
    """A heatmap of one metric over two swept parameters (``SweepResult.heatmap(...)``'s pivot table)."""
    from matplotlib.figure import Figure

    vals = pivot.to_numpy(dtype=float)
    fig = Figure(figsize=(1.2 + 0.9 * max(vals.shape[1], 3), 1.2 + 0.6 * max(vals.shape[0], 3)), layout="constrained")
    ax = fig.subplots()
    finite = vals[np.isfinite(vals)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    diverging = finite.size and finite.min() < 0 < finite.max()
    im = ax.imshow(vals, cmap="RdYlGn" if diverging else "viridis", aspect="auto",
                   vmin=-lim if diverging else None, vmax=lim if diverging else None)
    ax.set_xticks(range(vals.shape[1]), [str(c) for c in pivot.columns], rotation=45, ha="right")
    ax.set_yticks(range(vals.shape[0]), [str(i) for i in pivot.index])
    ax.set_xlabel(str(pivot.columns.name))
    ax.set_ylabel(str(pivot.index.name))
    for i in range(vals.shape[0]):
        for j in range(vals.shape[1]):
            if np.isfinite(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.3g}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(title or metric)
    return fig
