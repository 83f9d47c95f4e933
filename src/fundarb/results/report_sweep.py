"""A self-contained HTML report of a parameter sweep (``fundarb sweep --report``): the grid in words, a heatmap
of the ranking metric (and of CAGR and max drawdown) over every pair of swept fields, and the top points."""

from __future__ import annotations

import itertools
import os
from typing import Any

import pandas as pd

from fundarb.results.formatting import fmt_stat
from fundarb.results.plots import figure_heatmap
from fundarb.results.report import escape_html, page
from fundarb.results.report_charts import figure_uri

__all__ = ["html_sweep_report", "write_sweep_report"]

_TOP_COLS = ("symbol", "total_return", "cagr", "sharpe", "max_drawdown", "time_in_market", "n_trades",
             "n_liquidations", "funding_pnl", "realised_apr_on_capital", "funding_kept_share")



def html_sweep_report(res: Any, *, market: Any, metric: str = "sharpe", name: str = "sweep", top: int = 20,
                      market_words: str = "") -> str:
    """Render a :class:`fundarb.sweeps.grid.SweepResult` as one HTML page (inline PNG heatmaps, no network)."""
    title = f"fundarb sweep: {name}"
    grid = {k: list(v) for k, v in res.grid.items()}
    body = [f"<h1>{escape_html(title)}</h1>"]
    if market.synthetic:
        body.append("<p class='synthetic'>SYNTHETIC data — generated for demonstration, not market history.</p>")
    facts = [("data", market_words or market.label), ("bar size", market.timeframe_label),
             ("grid", "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in grid.items())),
             ("grid points", f"{len(res.table):,} run, each scored by its book (all symbols); "
                            f"{len(res.skipped):,} skipped as invalid"),
             ("ranked by", metric)]
    body.append("<table class='facts'>" + "".join(f"<tr><th>{escape_html(a)}</th><td>{escape_html(b)}</td></tr>"
                                                  for a, b in facts) + "</table>")
    numeric = [f for f, v in grid.items() if len(v) > 1]
    if len(numeric) < 2:
        body.append("<p class='note'>Fewer than two fields take more than one value: no heatmap.</p>")
    metrics = list(dict.fromkeys([metric, "cagr", "max_drawdown"]))
    body.append("<div class='heatmaps'>")
    for x, y in itertools.combinations(numeric, 2):
        for m in metrics:
            if m not in res.table.columns:
                continue
            pivot = res.heatmap(x, y, m)
            fig = figure_heatmap(pivot, metric=pivot.attrs["label"], title=f"{name}: {pivot.attrs['title']}")
            body.append(f"<figure class='chart' id='heatmap-{escape_html(x)}-{escape_html(y)}-{escape_html(m)}'>"
                        f"<img alt='{escape_html(m)} heatmap' src='{figure_uri(fig, dpi=80)}'></figure>")
    body.append("</div>")
    best = res.best(metric, top)
    cols = list(dict.fromkeys(c for c in [*grid, metric, *_TOP_COLS] if c in best.columns))
    best = best[cols]
    body.append(f"<h2>Top {len(best)} points by {escape_html(metric)}</h2><table class='top'><tr>"
                + "".join(f"<th>{escape_html(c.replace('_', ' '))}</th>" for c in cols) + "</tr>")
    for rec in best.itertuples(index=False):
        body.append("<tr>" + "".join(f"<td>{escape_html(v if c in grid or c == 'symbol' else fmt_stat(c, v))}</td>"
                                     for c, v in zip(cols, rec, strict=True)) + "</tr>")
    body.append("</table>")
    if res.skipped:
        body.append("<h2>Skipped grid points</h2><ul>" + "".join(
            f"<li>{escape_html(p)}: {escape_html(why)}</li>" for p, why in res.skipped[:50]) + "</ul>")
    body.append(f"<p class='note'>fundarb — generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC</p>")
    return page(title, body)


def write_sweep_report(res: Any, path: str | os.PathLike[str], **kwargs: Any) -> str:
    """Write :func:`html_sweep_report` to ``path``; returns the path."""
    p = os.fspath(path)
    with open(p, "w", encoding="utf-8") as fh:
        fh.write(html_sweep_report(res, **kwargs))
    return p
