"""``fundarb describe`` and ``fundarb funding-stats``: what a dataset holds."""

from __future__ import annotations

from typing import Annotated

import typer

from fundarb.cli.app import DataOpt, DatasetOpt, EndOpt, FormatOpt, StartOpt, SymbolsOpt, app, check_args, open_market


@app.command()
def describe(
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    fmt: FormatOpt = "freqtrade",
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
) -> None:
    """Coverage, gaps and funding intervals of a dataset, one row per symbol (default: the demo dataset)."""
    check_args(symbols=symbols, start=start, end=end)
    import pandas as pd

    from fundarb.data.funding import format_percent

    market = open_market(dataset, data, fmt, symbols, start, end)
    typer.echo(repr(market))
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    shown = market.describe()
    shown["annualised_funding"] = shown["annualised_funding"].map(format_percent)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 80):
        typer.echo(shown.T.to_string())
    for note in market.warnings:
        typer.echo(f"note: {note}")


@app.command("funding-stats")
def funding_stats_cmd(
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    fmt: FormatOpt = "freqtrade",
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    csv: Annotated[str | None, typer.Option("--csv", help="Also write the table to this CSV file.")] = None,
) -> None:
    """Funding statistics per symbol: intervals, annualised mean/std, shares, extremes, streaks."""
    check_args(symbols=symbols, start=start, end=end, outputs={"--csv": csv})
    import pandas as pd

    from fundarb.data.funding import format_percent
    from fundarb.results.funding_stats import funding_stats

    market = open_market(dataset, data, fmt, symbols, start, end)
    table = funding_stats(market)
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    shown = table.copy()
    for c in ("annualised_funding", "std_annualised", "share_positive", "share_negative", "share_interest_only"):
        shown[c] = shown[c].map(format_percent)
    for c in ("min", "max"):
        shown[c] = shown[c].map(lambda v: format_percent(v, 4))
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 80):
        typer.echo(shown.T.to_string())
    if csv:
        table.to_csv(csv)
        typer.echo(f"wrote {csv}")
