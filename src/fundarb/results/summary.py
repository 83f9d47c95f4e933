"""JSON-ready summaries of a backtest (``fundarb backtest --json``): the book and each symbol."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fundarb.results.formatting import clean_value
from fundarb.results.result import COMPONENTS, IDENTITY_SIGN

__all__ = ["SUMMARY_KEYS", "book_of", "series_dict", "stats_table", "summary_dict"]

SUMMARY_KEYS = ("final_equity", "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "calmar",
                "time_in_market", "n_trades", "n_liquidations", "funding_pnl", "spot_pnl", "perp_pnl", "fees",
                "spread", "slippage", "borrow", "liquidation_fees", "insurance_fund_loss", "realised_apr_on_capital",
                "funding_kept_share")
"""Keys present for the portfolio and for every symbol."""


_clean = clean_value


def book_of(result: Any) -> Any:
    """The whole book as one account: ``result`` itself (one account) or its accounts combined (detail mode)."""
    return result.combined() if len(result.groups) > 1 and not result.portfolio else result


def _row(stats: pd.Series) -> dict[str, Any]:
    out = {k: _clean(stats[k]) for k in SUMMARY_KEYS}
    for k in ("start", "end", "basis_pnl", "max_drawdown_days", "funding_apr_on_capital", "break_even_days"):
        if k in stats:
            out[k] = _clean(stats[k])
    return out


def summary_dict(result: Any) -> dict[str, Any]:
    """The book's statistics (``"portfolio"``) and each symbol's (``"symbols"``), with the identity check.

    A portfolio result (one account) reports its account as the portfolio and, per symbol, that symbol's PnL
    components with the statistics of the capital it was given. Independent accounts (one per symbol) report
    each account per symbol and their sum as the portfolio.
    """
    book = book_of(result) if result.series is not None else result
    port = _row(book.stats().iloc[0])
    symbols: dict[str, Any] = {}
    if result.portfolio:
        tot = result.symbol_totals()
        for member, row in tot.iterrows():
            d: dict[str, Any] = {k: None for k in SUMMARY_KEYS}
            d.update({"funding_pnl": row["funding"], "spot_pnl": row["spot_pnl"], "perp_pnl": row["perp_pnl"],
                      "fees": row["fees"], "spread": row["spread"], "slippage": row["slippage"],
                      "borrow": row["borrow"], "liquidation_fees": row["liquidation_fees"],
                      "insurance_fund_loss": row["insurance_fund_loss"], "n_trades": int(row["n_trades"]),
                      "n_liquidations": int(row["n_liquidations"]), "time_in_market": row["time_in_market"]})
            pnl = sum(row[c] * IDENTITY_SIGN[c] for c in COMPONENTS)
            d["pnl"] = pnl
            d["funding_kept_share"] = pnl / row["funding"] if row["funding"] > 0 else None
            symbols[str(member)] = {k: _clean(v) for k, v in d.items()}
    else:
        st = result.stats()
        for col, row in st.iterrows():
            symbols[str(col) if not isinstance(col, tuple) else "/".join(map(str, col))] = _row(row)
    return {
        "data": result.market.label,
        "synthetic": bool(result.market.synthetic),
        "bars": len(result.market.index),
        "timeframe": result.market.timeframe_label,
        "capital": _clean(float(result.capital.sum())),
        "capital_per_account": _clean(float(result.capital.iloc[0])),
        "accounts": len(result.groups),
        "portfolio": port,
        "symbols": symbols,
        "identity_error": result.identity_error(),
        "warnings": result.warnings,
    }


def stats_table(summary: dict[str, Any]) -> pd.DataFrame:
    """:func:`summary_dict`'s figures as one table: a row per statistic, a column per symbol and ``book``."""
    cols = {name: row for name, row in summary["symbols"].items()}
    cols["book"] = summary["portfolio"]
    keys = list(dict.fromkeys(k for row in cols.values() for k in row))
    return pd.DataFrame({c: [row.get(k) for k in keys] for c, row in cols.items()}, index=keys, dtype=object)


def series_dict(result: Any) -> dict[str, Any]:
    """The book's equity curve and the trade log, JSON-ready (``fundarb backtest --json-series``)."""
    book = book_of(result)
    eq = book.equity.iloc[:, 0]
    trades = result.trades
    return {
        "equity": {"time": [t.isoformat() for t in eq.index], "equity": [_clean(v) for v in eq.to_numpy()]},
        "trades": [{k: _clean(v) for k, v in rec.items()} for rec in trades.to_dict("records")],
    }
