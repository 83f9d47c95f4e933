"""A self-contained HTML report of a backtest (``fundarb backtest --report``, :meth:`Result.report`).

Summary and charts first, then carry figures, monthly returns, the strategy's effective parameters and the
trade log; the strategy file last, collapsed. Everything is inline (CSS, PNG ``data:`` URIs): the page opens
without a network. Numbers print one way (:mod:`fundarb.results.formatting`).
"""

from __future__ import annotations

import dataclasses
import html
import os
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.funding import format_percent, funding_table
from fundarb.engine.config import AFTER_LIQUIDATION
from fundarb.results import report_charts as charts
from fundarb.results.formatting import fmt_number, fmt_stat, stat_label
from fundarb.results.summary import book_of, stats_table, summary_dict

__all__ = ["CSS", "escape_html", "header_facts", "html_report", "monthly_returns", "page", "table_html", "write_report"]

CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em auto;max-width:1120px;
color:#222;padding:0 1em}h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;
border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:13px;margin:.4em 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#f4f4f4}
th.row{text-align:left}td.text{text-align:left}.facts th{text-align:left;width:11em}.facts td{text-align:left;
white-space:normal}.warn{color:#9b2226}.synthetic{background:#fff3cd;padding:.5em;border:1px solid #e9c46a}
figure.chart{margin:.8em 0}figure.chart img{max-width:100%;display:block}.neg{color:#9b2226}
.pos{color:#1b7340}details pre{background:#f8f8f8;padding:.8em;overflow:auto;font-size:12px}
.note{color:#555;font-size:13px}.scroll{overflow-x:auto}
.heatmaps{display:flex;flex-wrap:wrap;gap:0 12px}"""

_STAT_ROWS = ("final_equity", "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
              "max_drawdown_days", "calmar", "time_in_market", "n_trades", "n_liquidations", "funding_pnl",
              "basis_pnl", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
              "insurance_fund_loss")
_CARRY_ROWS = ("realised_apr_on_capital", "quoted_apr_on_capital", "funding_apr_on_capital", "funding_kept_share",
               "break_even_days")
_TRADE_COLS = ("time", "symbol", "account", "kind", "spot_qty", "perp_qty", "spot_price", "perp_price",
               "spot_traded", "perp_traded", "fees", "spread", "slippage", "liquidation_fee", "equity_before")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def escape_html(v: object) -> str:
    """``str(v)`` escaped for HTML text and attribute values (``&``, ``<``, ``>`` and both quotes)."""
    return html.escape(str(v))


def page(title: str, body: list[str]) -> str:
    """A whole HTML document around ``body`` with the report's inline CSS."""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape_html(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")


def table_html(frame: pd.DataFrame, *, fmt: Any, cls: str = "", cell_attrs: Any = None) -> str:
    """A table of ``frame`` with row headers; ``fmt(row_key, value)`` prints a cell."""
    out = [f"<table class='{cls}'><tr><th></th>" + "".join(f"<th>{escape_html(c)}</th>" for c in frame.columns)
           + "</tr>"]
    for key, row in frame.iterrows():
        cells = []
        for col, v in row.items():
            attrs = cell_attrs(key, col) if cell_attrs else ""
            cells.append(f"<td{attrs}>{escape_html(fmt(key, v))}</td>")
        out.append(f"<tr><th class='row'>{escape_html(stat_label(str(key)))}</th>{''.join(cells)}</tr>")
    out.append("</table>")
    return "".join(out)


def _duration_words(td: pd.Timedelta) -> str:
    days = td / pd.Timedelta(days=1)
    return f"{days:,.0f} days ({days / 365:,.1f} years)" if days >= 60 else f"{days:,.1f} days"


def _pct(v: float, decimals: int = 2) -> str:
    return fmt_number(v, decimals, percent=True)


def header_facts(result: Any, strategy: Any = None, source: str | None = None) -> list[tuple[str, str]]:
    """The run described in words: strategy, data, symbols, span, bar size, capital, costs, margin management."""
    m = result.market
    p = result.params[0]
    facts: list[tuple[str, str]] = []
    if strategy is not None:
        name = getattr(strategy, "name", "") or type(strategy).__name__
        facts.append(("strategy", f"{name} — {type(strategy).__name__}" + (f", from {source}" if source else "")))
    facts.append(("data", (m.label or "market data") + (" — SYNTHETIC, not market history" if m.synthetic else "")))
    facts.append(("symbols", ", ".join(m.symbols)))
    if len(m.index):
        span = m.index[-1] + m.timeframe - m.index[0]
        facts.append(("span", f"{m.index[0]:%Y-%m-%d %H:%M} → {m.index[-1] + m.timeframe:%Y-%m-%d %H:%M} UTC, "
                               f"{_duration_words(span)}"))
    facts.append(("bar size", f"{m.timeframe_label} ({len(m.index):,} bars)"))
    n_acc = len(result.groups)
    acc = ("one account for the whole book" if result.portfolio
           else f"{n_acc} independent account{'s' if n_acc > 1 else ''}, one per symbol")
    facts.append(("capital", f"{fmt_number(p['capital'])} {charts.CURRENCY} per account; {acc}"))
    c = result.config.get("costs")
    if c is not None:
        borrow_year = c.borrow_rate * 8760
        facts.append(("costs", f"spot fee {_pct(c.spot_fee, 3)}, perp fee {_pct(c.perp_fee, 3)} per trade; "
                               f"half spread {c.half_spread_bps:g} bps, slippage {c.slippage_bps:g} bps"
                               + (f" + {c.slippage_k:g}·√(qty/volume)" if c.slippage_k else "")
                               + f" per leg; borrow {c.borrow_rate * 100:.5f} %/h ({_pct(borrow_year)} a year) where "
                               f"the data has none; liquidation fee {_pct(c.liquidation_fee)}"))
    reb_at = p["rebalance_at"]
    every = result.config.get("rebalance_every")
    mm = [f"perp leverage {p['leverage']:g}×, spot margin leverage {p['spot_leverage']:g}× (reverse carry)",
          f"{result.config.get('margin_mode', 'isolated')} margin, maintenance margin "
          + (f"{_pct(result.config.get('mmr', 0.005))}" if result.config.get("tiers") == "flat" else "by tiers"),
          (f"re-size when the perp has used {reb_at:.0%} of its margin cushion" if 0 < reb_at < 1
           else "no cushion trigger (rebalance_at off)"),
          (f"re-size a reverse carry when its spot margin level falls to {p['spot_rebalance_level']:g}"
           if np.isfinite(p["spot_rebalance_level"]) else "no spot-level trigger"),
          "periodic rebalance " + (f"every {every}" if every else "never"),
          f"after a liquidation: {AFTER_LIQUIDATION[int(p['after_liquidation'])]} "
          f"({'the whole margin is lost' if p['liquidation_loss_margin'] else 'the liquidation fee is charged'})",
          f"spot margin liquidated at margin level {p['spot_liquidation_level']:g}"]
    facts.append(("margin management", "; ".join(mm)))
    return facts


def monthly_returns(equity: pd.Series, capital: float) -> pd.DataFrame:
    """Book returns per calendar month (rows: years; columns Jan…Dec and the year), fractions."""
    eq = equity.copy()
    eq.index = eq.index.tz_convert("UTC").tz_localize(None) if eq.index.tz is not None else eq.index
    ends = eq.resample("ME").last().dropna()
    prev = pd.concat([pd.Series([capital]), ends.iloc[:-1].reset_index(drop=True)]).to_numpy()
    rets = pd.Series(ends.to_numpy() / prev - 1.0, index=ends.index)
    table = pd.DataFrame(index=sorted(set(rets.index.year)), columns=[*_MONTHS, "year"], dtype=float)
    for t, r in rets.items():
        table.loc[t.year, _MONTHS[t.month - 1]] = r
    for y in table.index:
        vals = rets[rets.index.year == y]
        table.loc[y, "year"] = float(np.prod(1.0 + vals.to_numpy()) - 1.0)
    return table


def _quoted_apr(result: Any) -> dict[str, float]:
    """Mean of the bot's quoted APR on capital (|F_3d|/3·365/2) over the bars each symbol was held; and the book."""
    from fundarb.signals.filters import binance_apr_on_capital, trailing_funding

    quoted = binance_apr_on_capital(trailing_funding(result.market, "3d"))
    held = result.positions.to_numpy() != 0
    out: dict[str, float] = {}
    vals_all = []
    for j, m in enumerate(result.mem_sym):
        sym = result.market.symbols[m]
        v = quoted[sym].to_numpy()[held[:, j]]
        v = v[np.isfinite(v)]
        out[str(result.members[j])] = float(v.mean()) if v.size else float("nan")
        vals_all.append(v)
    allv = np.concatenate(vals_all) if vals_all else np.array([])
    out["book"] = float(allv.mean()) if allv.size else float("nan")
    return out


def _trade_log(result: Any) -> tuple[str, pd.DataFrame]:
    t = result.trades
    liq = t["kind"].str.startswith("liquidation")
    heading = (f"Trade log — {len(t):,} rows: {int((~liq).sum()):,} executions (what the statistics count as "
               f"trades: entries, exits, flips, rebalances, resizes, legs closed) and {int(liq.sum()):,} "
               f"liquidations")
    cols = [c for c in _TRADE_COLS if c in t.columns]
    t = t[cols]
    keep = [c for c in cols if c in ("time", "kind") or t[c].astype(str).nunique(dropna=False) > 1]
    if "account" in keep and "symbol" in keep and (t["account"].astype(str) == t["symbol"].astype(str)).all():
        keep.remove("account")
    return heading, t[keep]


def _trade_cell(col: str, v: Any) -> str:
    if col == "time":
        return f"{v:%Y-%m-%d %H:%M}"
    if isinstance(v, float | np.floating):
        if col.endswith("_qty") or col.endswith("_traded"):
            return fmt_number(v, 6)
        return fmt_number(v, 2)
    return str(v)


def _carry_fmt(key: object, v: Any) -> str:
    return fmt_stat(str(key), v)


def html_report(result: Any, *, strategy: Any = None, strategy_text: str | None = None, source: str | None = None,
                title: str | None = None, max_trades: int = 500) -> str:
    """Render a detail-mode ``result`` as one self-contained HTML page.

    Parameters
    ----------
    result
        A :class:`fundarb.results.result.Result` run with ``mode="detail"``.
    strategy
        The strategy object that made it (its effective parameters are listed), or None.
    strategy_text
        The strategy file's text, shown collapsed at the end.
    source
        Where the strategy came from (a file path), for the header.
    title
        Page title (default: the strategy's name).
    max_trades
        Rows of the trade log shown (the first ones; the heading counts them all).
    """
    result._need_detail()
    name = (getattr(strategy, "name", "") or (type(strategy).__name__ if strategy is not None else "")
            or "fundarb backtest")
    title = title or f"fundarb report: {name}"
    summary = summary_dict(result)
    book = book_of(result)
    body = [f"<h1>{escape_html(title)}</h1>"]
    if result.market.synthetic:
        body.append("<p class='synthetic'>SYNTHETIC data — generated for demonstration, not market history.</p>")
    body.append("<table class='facts'>" + "".join(f"<tr><th>{escape_html(a)}</th><td>{escape_html(b)}</td></tr>"
                                                  for a, b in header_facts(result, strategy, source)) + "</table>")
    table = stats_table(summary)
    quoted = _quoted_apr(result)
    table.loc["quoted_apr_on_capital"] = [quoted.get(str(c), float("nan")) for c in table.columns]
    stats = table.reindex([r for r in _STAT_ROWS if r in table.index])
    note = ("Per symbol: that account's statistics; book: all accounts as one (equity summed)." if not result.portfolio
            else "One account holds the book; per symbol: the PnL each symbol's legs contributed (ratios are the "
                 "book's only).")
    body.append(f"<h2>Statistics</h2><p class='note'>{escape_html(note)} Money in {charts.CURRENCY}.</p>")
    body.append(table_html(stats, fmt=_carry_fmt, cls="stats",
                           cell_attrs=lambda key, col: f" data-book='{key}'" if col == "book" else ""))
    for chart_id, alt, fig in (("equity", "equity of the book vs holding spot",
                                charts.chart_equity(result, book, name=name)),
                               ("drawdown", "drawdown of the book", charts.chart_drawdown(book, name=name)),
                               ("pnl", "PnL by source over time", charts.chart_pnl_split(book, name=name))):
        body.append(f"<figure class='chart' id='chart-{chart_id}'><img alt='{alt}' "
                    f"src='{charts.figure_uri(fig)}'></figure>")
    filt = None
    window = getattr(strategy, "window", "")
    if strategy is not None and hasattr(strategy, "filter"):
        filt = strategy.filter(result.market)
    for s in list(result.market.symbols)[:8]:
        fig = charts.chart_funding(result, s, None if filt is None else filt[s], name=name,
                                   entry=getattr(strategy, "entry", None), exit_=getattr(strategy, "exit", None),
                                   window=window)
        body.append(f"<figure class='chart' id='chart-funding-{escape_html(s)}'><img alt='funding {escape_html(s)}' "
                    f"src='{charts.figure_uri(fig)}'></figure>")
    body.append("<h2>Carry</h2><p class='note'>Realised APR: the PnL over the capital per year of the run. The bot's "
                "quoted APR: Binance's |F<sub>3d</sub>|/3·365/2, averaged over the bars a position was held. Funding "
                "kept: PnL over funding earned. Break-even: days of the funding earned to pay one round trip.</p>")
    carry = table.reindex([r for r in _CARRY_ROWS if r in table.index])
    body.append(table_html(carry, fmt=_carry_fmt, cls="carry"))
    funding = funding_table(result.market)
    body.append("<h2>Funding of the data</h2><p class='note'>Annualised funding: the settled rates of each symbol's "
                "active span summed and divided by the span in years (first event to last event plus one interval); "
                "the same figure <code>fundarb describe</code> and <code>fundarb funding-stats</code> print. The mean "
                "per event is given with its interval.</p>")
    shown = pd.DataFrame({"events": funding["events"].map(lambda v: f"{int(v):,}"),
                          "annualised funding": funding["annualised_funding"].map(format_percent),
                          "mean per event": funding["mean_per_event"]}, index=funding.index)
    body.append(table_html(shown, fmt=lambda _k, v: str(v), cls="funding"))
    months = monthly_returns(book.equity.iloc[:, 0], float(book.capital.iloc[0]))
    body.append("<h2>Monthly returns of the book</h2>")
    body.append(table_html(months, fmt=lambda _k, v: fmt_number(v, 2, percent=True), cls="months"))
    if strategy is not None and dataclasses.is_dataclass(strategy):
        params = pd.DataFrame({"value": [str(getattr(strategy, f.name)) for f in dataclasses.fields(strategy)]},
                              index=[f.name for f in dataclasses.fields(strategy)])
        body.append("<h2>Strategy parameters in effect</h2>")
        body.append(table_html(params, fmt=lambda _k, v: v, cls="params"))
    heading, trades = _trade_log(result)
    body.append(f"<h2>{escape_html(heading)}</h2>")
    if len(trades):
        shown = trades.head(max_trades)
        if len(trades) > max_trades:
            body.append(f"<p class='note'>The first {max_trades:,} rows.</p>")
        rows = ["<table class='trades'><tr>"
                + "".join(f"<th>{escape_html(c.replace('_', ' '))}</th>" for c in shown.columns) + "</tr>"]
        for rec in shown.itertuples(index=False):
            rows.append("<tr>" + "".join(
                f"<td class='{'text' if c in ('time', 'kind', 'symbol', 'account') else ''}'>"
                f"{escape_html(_trade_cell(c, v))}</td>" for c, v in zip(shown.columns, rec, strict=True)) + "</tr>")
        body.append("<div class='scroll'>" + "".join(rows) + "</table></div>")
    if summary["warnings"]:
        body.append("<h2>Warnings</h2><ul>" + "".join(f"<li class='warn'>{escape_html(w)}</li>"
                                                      for w in summary["warnings"]) + "</ul>")
    if strategy_text:
        body.append(f"<details><summary>The strategy file{' ' + escape_html(source) if source else ''}</summary>"
                    f"<pre>{escape_html(strategy_text)}</pre></details>")
    err = f"{summary['identity_error']:.1e}".replace("e", " × 10^")
    body.append(f"<p class='note'>fundarb — accounting identity: max relative error {err}; "
                f"generated {pd.Timestamp.now(tz='UTC'):%Y-%m-%d %H:%M} UTC</p>")
    return page(title, body)


def write_report(result: Any, path: str | os.PathLike[str], *, strategy: Any = None, **kwargs: Any) -> str:
    """Write :func:`html_report` to ``path``; returns the path.

    ``strategy`` may be a strategy object, a :class:`~fundarb.signals.toml.StrategySpec` or a strategy file's
    path (its text is then included, collapsed).
    """
    from fundarb.signals.toml import StrategySpec, load_strategy

    if isinstance(strategy, str | os.PathLike):
        src = os.fspath(strategy)
        strategy = load_strategy(src)
        kwargs.setdefault("source", src)
    if isinstance(strategy, StrategySpec):
        kwargs.setdefault("source", strategy.source)
        if "strategy_text" not in kwargs and strategy.source and os.path.isfile(strategy.source):
            with open(strategy.source, encoding="utf-8") as fh:
                kwargs["strategy_text"] = fh.read()
        strategy = strategy.strategy
    p = os.fspath(path)
    text = html_report(result, strategy=strategy, **kwargs)
    with open(p, "w", encoding="utf-8") as fh:
        fh.write(text)
    return p
