"""A self-contained HTML report of a backtest: statistics, the figure (embedded PNG), trades, warnings."""

from __future__ import annotations

import base64
import html
import io
import os
from typing import Any

import pandas as pd

__all__ = ["html_report", "write_report"]

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}.warn{color:#9b2226}.synthetic{background:#fff3cd;padding:.5em;border:1px solid #e9c46a}"""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.6g}"
    return html.escape(str(v))


def html_report(result: Any, *, title: str = "fundarb backtest", strategy: str | None = None) -> str:
    """Render ``result`` (detail mode) as one HTML page with everything inline."""
    from fundarb.results.plots import figure_result

    stats = result.stats().T
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if result.market.synthetic:
        parts.append("<p class='synthetic'>SYNTHETIC data — generated for demonstration, not market history.</p>")
    parts.append(f"<p>{html.escape(repr(result.market))}</p>")
    if strategy:
        parts.append(f"<h2>Strategy</h2><pre>{html.escape(strategy)}</pre>")
    parts.append("<h2>Statistics</h2><table><tr><th>metric</th>"
                 + "".join(f"<th>{html.escape(str(c))}</th>" for c in stats.columns) + "</tr>")
    for name, row in stats.iterrows():
        parts.append(f"<tr><th>{html.escape(str(name))}</th>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>")
    parts.append("</table>")
    for col in result.groups[:8]:
        buf = io.BytesIO()
        figure_result(result, column=col).savefig(buf, format="png", dpi=90)
        img = base64.b64encode(buf.getvalue()).decode()
        parts.append(f"<h2>{html.escape(str(col))}</h2><img alt='equity and PnL' src='data:image/png;base64,{img}'>")
    trades = result.trades
    parts.append(f"<h2>Trades ({len(trades)})</h2>")
    if len(trades):
        summary = trades.groupby("kind").agg(count=("kind", "size"), fees=("fees", "sum"),
                                             liquidation_fee=("liquidation_fee", "sum"))
        parts.append(summary.to_html(float_format=lambda v: f"{v:,.2f}"))
        parts.append(trades.tail(50).to_html(index=False, float_format=lambda v: f"{v:,.6g}"))
    if result.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li class='warn'>{html.escape(w)}</li>"
                                                      for w in result.warnings) + "</ul>")
    parts.append(f"<p><small>fundarb — generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC</small></p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_report(result: Any, path: str | os.PathLike[str], **kwargs: Any) -> str:
    """Write :func:`html_report` to ``path``; returns the path."""
    p = os.fspath(path)
    with open(p, "w", encoding="utf-8") as fh:
        fh.write(html_report(result, **kwargs))
    return p
