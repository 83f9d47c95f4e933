"""Figures of a backtest: equity, PnL split into components, positions. Matplotlib's object API only (no pyplot
state, no global backend change), so it is safe in scripts, servers and notebooks alike."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["figure_heatmap", "figure_result", "save_figure"]

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
        Figure title; name the strategy here (default: the account and the market label).
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
    ax1.set_ylabel("equity (USDT)")
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
    ax2.set_ylabel("cumulative PnL (USDT)")
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
    fig.suptitle((title or f"{col} on {label}") + synth)
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 110) -> str:
    """Save ``fig`` (PNG, SVG or PDF by the file's extension); returns the path."""
    p = os.fspath(path)
    fig.savefig(p, dpi=dpi)
    return p


def _text_colour(rgba: Any) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba`` (WCAG relative luminance)."""
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return "black" if lum > 0.179 else "white"


def figure_heatmap(pivot: Any, *, metric: str, title: str | None = None) -> Any:
    """A heatmap of one metric over two swept parameters (``SweepResult.heatmap(...)``'s pivot table).

    The figure is sized to the grid (about 0.9 × 0.5 inch a cell, never narrower than its title), each cell
    labelled in black or white by the cell's luminance.
    """
    import textwrap

    from matplotlib.figure import Figure

    vals = pivot.to_numpy(dtype=float)
    nrow, ncol = vals.shape
    width = max(6.5, 2.6 + 0.9 * ncol)
    height = max(3.8, 1.9 + 0.5 * nrow)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    finite = vals[np.isfinite(vals)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    diverging = bool(finite.size and finite.min() < 0 < finite.max())
    im = ax.imshow(vals, cmap="RdYlGn" if diverging else "viridis", aspect="auto",
                   vmin=-lim if diverging else None, vmax=lim if diverging else None)
    ax.set_xticks(range(ncol), [str(c) for c in pivot.columns], rotation=45 if ncol > 6 else 0,
                  ha="right" if ncol > 6 else "center")
    ax.set_yticks(range(nrow), [str(i) for i in pivot.index])
    ax.set_xlabel(str(pivot.columns.name))
    ax.set_ylabel(str(pivot.index.name))
    for i in range(nrow):
        for j in range(ncol):
            if np.isfinite(vals[i, j]):
                ax.text(j, i, f"{vals[i, j]:.3g}", ha="center", va="center", fontsize=9,
                        color=_text_colour(im.cmap(im.norm(vals[i, j]))))
    fig.colorbar(im, ax=ax, label=metric)
    fig.suptitle("\n".join(textwrap.wrap(title or metric, width=int(width * 9))), fontsize=11)
    return fig
