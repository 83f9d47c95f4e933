"""A self-contained HTML report of a walk-forward run (``fundarb walk-forward --report``): the stitched
out-of-sample equity, the overfitting gap, every fold (windows, chosen parameters, in- and out-of-sample
figures) and how often each value was chosen."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from fundarb.results.formatting import fmt_stat
from fundarb.results.report import escape_html, page
from fundarb.results.report_charts import figure_uri

__all__ = ["html_walkforward_report", "write_walkforward_report"]



def _when(v: Any) -> str:
    return f"{pd.Timestamp(v):%Y-%m-%d %H:%M}" if pd.notna(v) else "—"


def html_walkforward_report(res: Any, *, name: str = "walk-forward", market_words: str = "",
                            synthetic: bool = False, train: str = "", test: str = "") -> str:
    """Render a :class:`fundarb.sweeps.walkforward.WalkForwardResult` as one HTML page (no network)."""
    title = f"fundarb walk-forward: {name}"
    m = res.metric
    body = [f"<h1>{escape_html(title)}</h1>"]
    if synthetic:
        body.append("<p class='synthetic'>SYNTHETIC data — generated for demonstration, not market history.</p>")
    grid = "; ".join(f"{k} ∈ {{{', '.join(map(str, v))}}}" for k, v in res.grid.items())
    facts = [("data", market_words), ("windows", f"train {train}, test {test}; {len(res.folds)} folds"),
             ("grid", grid), ("chosen by", f"the book's {m} on each train window"),
             ("starting capital", f"{res.capital:,.2f} USDT (the book)"),
             ("overfitting gap", f"mean in-sample {m} {res.in_sample_mean:.2f} − mean out-of-sample "
                                 f"{res.out_of_sample_mean:.2f} = {res.overfitting_gap:.2f}")]
    body.append("<table class='facts'>" + "".join(f"<tr><th>{escape_html(a)}</th><td>{escape_html(b)}</td></tr>"
                                                  for a, b in facts if b) + "</table>")
    body.append("<h2>Stitched out-of-sample equity</h2>")
    body.append(f"<figure class='chart' id='chart-oos-equity'><img alt='out-of-sample equity' "
                f"src='{figure_uri(res.figure())}'></figure>")
    keys = [k for k in ("final_equity", "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
                        "calmar") if k in res.stats]
    body.append("<table class='stats'>"
                + "".join(f"<tr><th>{escape_html(k.replace('_', ' '))}</th>"
                          f"<td>{escape_html(fmt_stat(k, res.stats[k]))}</td></tr>" for k in keys)
                + "</table>")
    body.append("<h2>Folds</h2><table class='folds'><tr><th>train</th><th>test</th>"
                + "".join(f"<th>{escape_html(f)}</th>" for f in res.grid)
                + f"<th>{escape_html(m)} in sample</th><th>{escape_html(m)} out of sample</th>"
                "<th>equity at test end</th></tr>")
    for _, r in res.folds.iterrows():
        body.append(f"<tr><td>{_when(r['train_start'])} → {_when(r['train_end'])}</td>"
                    f"<td>{_when(r['test_start'])} → {_when(r['test_end'])}</td>"
                    + "".join(f"<td>{escape_html(r[f])}</td>" for f in res.grid)
                    + f"<td>{escape_html(fmt_stat(m, r[f'is_{m}']))}</td>"
                    f"<td>{escape_html(fmt_stat(m, r[f'oos_{m}']))}</td>"
                    f"<td>{escape_html(fmt_stat('final_equity', r['oos_final_equity']))}</td></tr>")
    body.append("</table>")
    body.append("<h2>How often each value was chosen</h2><ul>" + "".join(
        f"<li>{escape_html(f)}: " + ", ".join(f"{escape_html(v)} ×{n}" for v, n in counts.items()) + "</li>"
        for f, counts in res.choices.items()) + "</ul>")
    body.append(f"<p class='note'>fundarb — generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC</p>")
    return page(title, body)


def write_walkforward_report(res: Any, path: str | os.PathLike[str], **kwargs: Any) -> str:
    """Write :func:`html_walkforward_report` to ``path``; returns the path."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(html_walkforward_report(res, **kwargs))
    return os.fspath(path)
