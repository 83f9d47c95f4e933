"""The report's charts: the book's equity against holding spot, its drawdown, its PnL split over time, and per
symbol the strategy's funding filter with the position shaded and liquidations and rebalances marked.

Matplotlib's object API only (no pyplot state), each figure returned as a PNG ``data:`` URI so the page needs
no network and no files beside it.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["chart_drawdown", "chart_equity", "chart_funding", "chart_pnl_split", "figure_uri", "hold_spot",
           "pnl_split"]

CURRENCY = "USDT"
_WIDTH = 11.0
_COLOURS = {"funding": "#2a9d8f", "basis": "#b08900", "fees + spread + slippage": "#e76f51", "borrow": "#8d6e63",
            "liquidation": "#9b2226"}


def figure_uri(fig: Any, *, dpi: int = 80) -> str:
    """The figure as a base64 PNG ``data:`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure(height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(_WIDTH, height), layout="constrained")


def hold_spot(result: Any, book: Any) -> pd.Series:
    """What the book's capital would be worth holding spot instead: split equally over the symbols traded,
    each bought at its first price inside the run and marked at each bar's close."""
    market = result.market
    close = market["spot_close"]
    syms = sorted({market.symbols[i] for i in result.mem_sym})
    cap = float(book.capital.iloc[0])
    total = pd.Series(0.0, index=market.index)
    for s in syms:
        px = close[s].ffill()
        first = px.first_valid_index()
        if first is None:
            total += cap / len(syms)
            continue
        total += (cap / len(syms)) * (px / px.loc[first]).fillna(1.0)
    return total


def pnl_split(book: Any) -> pd.DataFrame:
    """The book's cumulative PnL by source (quote currency, signed as it adds to equity)."""
    c = {k: v.iloc[:, 0] for k, v in book.components.items()}
    return pd.DataFrame({
        "funding": c["funding"],
        "basis": c["basis_pnl"],
        "fees + spread + slippage": -(c["fees"] + c["spread"] + c["slippage"]),
        "borrow": -c["borrow"],
        "liquidation": c["insurance_fund_loss"] - c["liquidation_fees"],
    })


def chart_equity(result: Any, book: Any, *, name: str) -> Any:
    """The book's equity against holding spot with the same capital."""
    fig = _figure(3.6)
    ax = fig.subplots()
    idx = result.market.index
    eq = book.equity.iloc[:, 0]
    hold = hold_spot(result, book)
    ax.plot(idx, eq.to_numpy(), color="#264653", lw=1.3, label=f"{name} (book)")
    ax.plot(idx, hold.to_numpy(), color="#adb5bd", lw=1.0, label="holding spot, same capital")
    ax.axhline(float(book.capital.iloc[0]), color="grey", lw=0.6, ls="--")
    lo, hi = float(np.nanmin([eq.min(), hold.min()])), float(np.nanmax([eq.max(), hold.max()]))
    if lo > 0 and hi / lo > 4:
        ax.set_yscale("log")
    ax.set_ylabel(f"equity ({CURRENCY})")
    ax.set_title(f"{name}: equity vs holding spot")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def chart_drawdown(book: Any, *, name: str) -> Any:
    """The book's drawdown from its running peak (the starting capital counts as a peak), in percent."""
    fig = _figure(2.2)
    ax = fig.subplots()
    eq = book.equity.iloc[:, 0].to_numpy()
    peak = np.maximum.accumulate(np.concatenate([[float(book.capital.iloc[0])], eq]))[1:]
    dd = (eq / peak - 1.0) * 100.0
    ax.fill_between(book.market.index, dd, 0, color="#e76f51", alpha=0.6, lw=0)
    ax.set_ylabel("drawdown (%)")
    ax.set_title(f"{name}: drawdown of the book")
    ax.grid(alpha=0.3)
    return fig


def chart_pnl_split(book: Any, *, name: str) -> Any:
    """The book's cumulative PnL by source."""
    fig = _figure(3.2)
    ax = fig.subplots()
    split = pnl_split(book)
    for col in split.columns:
        ax.plot(split.index, split[col].to_numpy(), lw=1.1, color=_COLOURS[col], label=col)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_ylabel(f"cumulative PnL ({CURRENCY})")
    ax.set_title(f"{name}: where the PnL came from")
    ax.legend(loc="upper left", ncol=5, fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def chart_funding(result: Any, symbol: str, filt: pd.Series | None, *, name: str, entry: float | None = None,
                  exit_: float | None = None, window: str = "") -> Any:
    """One symbol's funding: the strategy's filter (annualised on notional, %), the position shaded (carry
    green, reverse orange), liquidations (red ×) and rebalances (blue ▲) marked."""
    fig = _figure(2.6)
    ax = fig.subplots()
    idx = result.market.index
    if filt is not None:
        ax.plot(idx, filt.to_numpy() * 100.0, color="#264653", lw=0.8,
                label=f"filter: {window} funding, annualised on notional")
    else:
        ev = result.market["funding_rate"][symbol].fillna(0.0)
        ax.plot(idx, ev.to_numpy() * 100.0, color="#264653", lw=0.8, label="funding rate per event")
    for v, ls in ((entry, "--"), (exit_, ":")):
        if v is not None and np.isfinite(v):
            for sgn in (1, -1) if v else (1,):
                ax.axhline(sgn * v * 100.0, color="grey", lw=0.7, ls=ls)
    cols = [j for j, m in enumerate(result.mem_sym) if result.market.symbols[m] == symbol]
    pos = result.positions.iloc[:, cols].to_numpy()
    direction = np.sign(pos.sum(axis=1))
    for sign, colour, label in ((1, "#2a9d8f", "carry held"), (-1, "#f4a261", "reverse held")):
        for n, (a, b) in enumerate(_runs(direction == sign)):
            ax.axvspan(idx[a], idx[min(b, len(idx) - 1)], color=colour, alpha=0.18, lw=0,
                       label=label if n == 0 else None)
    trades = result.trades
    mine = trades[trades["symbol"] == symbol]
    y = filt if filt is not None else result.market["funding_rate"][symbol].fillna(0.0)
    for kinds, marker, colour, label in ((("liquidation_perp", "liquidation_spot"), "x", "#9b2226", "liquidation"),
                                         (("rebalance",), "^", "#1d3557", "rebalance")):
        hit = mine[mine["kind"].isin(kinds)]
        if len(hit):
            ys = y.reindex(pd.DatetimeIndex(hit["time"])).to_numpy() * 100.0
            ax.scatter(hit["time"], np.nan_to_num(ys), marker=marker, color=colour, s=40, zorder=5,
                       label=f"{label} ({len(hit)})")
    ax.set_ylabel("% a year on notional")
    ax.set_title(f"{name}: {symbol} funding filter and position")
    ax.legend(loc="upper left", ncol=3, fontsize="small")
    ax.grid(alpha=0.3)
    return fig
