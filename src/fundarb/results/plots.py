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
