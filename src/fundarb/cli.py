"""The ``fundarb`` command line. Heavy modules (numba kernels, vectorbt, matplotlib) load only in the command
that needs them, so ``fundarb --help`` starts fast."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from fundarb.errors import FundarbError

app = typer.Typer(
    name="fundarb",
    help="Backtest crypto funding-rate arbitrage (spot + perpetual): funding, costs, borrow, liquidation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """Backtest crypto funding-rate arbitrage (spot + perpetual)."""


DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Built-in dataset: 'demo' (synthetic).")]
DataOpt = Annotated[str | None, typer.Option("--data", help="Data directory (see --format).")]
FormatOpt = Annotated[str, typer.Option("--format", help="freqtrade | binance-vision | fundarb (the fetch store).")]
SymbolsOpt = Annotated[str | None, typer.Option("--symbols", help="Comma-separated symbols, e.g. BTC,ETH.")]
StartOpt = Annotated[str | None, typer.Option("--start", help="First bar (UTC), e.g. 2021-01-01.")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Last bar (UTC), inclusive.")]


def _symbols(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _open(dataset: str | None, data: str | None, fmt: str, symbols: str | None, start: str | None,
          end: str | None):
    from fundarb.data.sources import open_market

    if dataset is None and data is None:
        dataset = "demo"
    return open_market(dataset=dataset, data=data, format=fmt, symbols=_symbols(symbols), start=start, end=end)


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
    import pandas as pd

    market = _open(dataset, data, fmt, symbols, start, end)
    typer.echo(repr(market))
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 80):
        typer.echo(market.describe().T.to_string())
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
    import pandas as pd

    from fundarb.results.funding_stats import funding_stats

    market = _open(dataset, data, fmt, symbols, start, end)
    table = funding_stats(market)
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    shown = table.copy()
    for c in ("mean_annualised", "std_annualised", "share_positive", "share_negative", "share_interest_only"):
        shown[c] = shown[c].map(lambda v: f"{v:.2%}")
    for c in ("min", "max"):
        shown[c] = shown[c].map(lambda v: f"{v:.4%}")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.max_colwidth", 80):
        typer.echo(shown.T.to_string())
    if csv:
        table.to_csv(csv)
        typer.echo(f"wrote {csv}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def fetch(ctx: typer.Context) -> None:
    """Download spot, perp, mark and funding history with ccxt into the Parquet store (fundarb fetch --help)."""
    from fundarb.data.fetch import main as fetch_main

    code = fetch_main(list(ctx.args))
    if code:
        raise typer.Exit(code)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; fundarb's errors become one line on stderr and exit code 2 (no traceback)."""
    try:
        app(args=argv, prog_name="fundarb")
    except FundarbError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
