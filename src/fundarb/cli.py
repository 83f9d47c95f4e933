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


@app.command()
def backtest(
    strategy: Annotated[str, typer.Argument(help="A strategy TOML file, e.g. strategies/binance_bot.toml.")],
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    fmt: FormatOpt = "freqtrade",
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    capital: Annotated[float | None, typer.Option("--capital", help="Starting capital (overrides the file).")] = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Write the statistics as JSON here.")] = None,
    plot: Annotated[str | None, typer.Option("--plot", help="Save the equity/PnL figure here (.png/.svg).")] = None,
    report: Annotated[str | None, typer.Option("--report", help="Write a self-contained HTML report here.")] = None,
) -> None:
    """Backtest a strategy file on a dataset (default: the synthetic demo) and print its statistics."""
    import json

    import pandas as pd

    from fundarb.errors import ConfigError
    from fundarb.results.summary import summary_dict
    from fundarb.signals.run import run_strategy
    from fundarb.signals.toml import load_strategy

    if capital is not None and not capital > 0:
        raise ConfigError(f"--capital must be > 0, got {capital}")
    spec = load_strategy(strategy)
    market = _open(dataset, data, fmt, symbols, start, end)
    result = run_strategy(market, spec, capital=capital)
    summary = summary_dict(result)
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    typer.echo(f"{spec.strategy.name or strategy} on {market!r}")
    book = result.combined() if len(result.groups) > 1 and not result.portfolio else result
    table = result.stats().T if book is result else pd.concat([result.stats().T, book.stats().T], axis=1)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format",
                           lambda v: f"{v:,.4f}"):
        typer.echo(table.to_string())
    typer.echo(f"accounting identity: max relative error {summary['identity_error']:.1e}")
    for w in summary["warnings"]:
        typer.echo(f"warning: {w}")
    if json_out:
        with open(json_out, "w") as fh:
            json.dump({"strategy": strategy, **summary}, fh, indent=1, default=str)
        typer.echo(f"wrote {json_out}")
    if plot:
        from fundarb.results.plots import figure_result, save_figure

        save_figure(figure_result(book), plot)
        typer.echo(f"wrote {plot}")
    if report:
        from fundarb.results.report import write_report

        with open(strategy) as fh:
            text = fh.read()
        write_report(result, report, title=f"fundarb: {spec.strategy.name or strategy}", strategy=text)
        typer.echo(f"wrote {report}")


def _grid_values(text: str) -> list[object]:
    out: list[object] = []
    for item in text.split(","):
        item = item.strip()
        try:
            out.append(float(item) if item.lower() != "inf" else float("inf"))
        except ValueError:
            out.append(item)
    return out


@app.command()
def sweep(
    strategy: Annotated[str, typer.Argument(help="A strategy TOML file: the base the grid varies.")],
    grid: Annotated[list[str], typer.Option("--grid", help="FIELD=v1,v2,… (repeat for each field swept).")],
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    fmt: FormatOpt = "freqtrade",
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    metric: Annotated[str, typer.Option("--metric", help="Statistic to rank and draw.")] = "sharpe",
    top: Annotated[int, typer.Option("--top", help="Rows of the best grid points to print.")] = 10,
    csv: Annotated[str | None, typer.Option("--csv", help="Write every grid point's statistics here.")] = None,
    heatmap: Annotated[str | None, typer.Option("--heatmap", help="Save a heatmap of --metric (needs --x, --y).")]
    = None,
    x: Annotated[str | None, typer.Option("--x", help="Grid field on the heatmap's x axis.")] = None,
    y: Annotated[str | None, typer.Option("--y", help="Grid field on the heatmap's y axis.")] = None,
) -> None:
    """Backtest every point of a parameter grid in one run and rank the points (default: the demo dataset)."""
    import pandas as pd

    from fundarb.errors import ConfigError
    from fundarb.signals.toml import load_strategy
    from fundarb.sweeps.grid import sweep as run_sweep

    spec = load_strategy(strategy)
    fields: dict[str, list[object]] = {}
    for g in grid:
        key, sep, vals = g.partition("=")
        if not sep or not vals:
            raise ConfigError(f"--grid takes FIELD=v1,v2,…, got {g!r}")
        fields[key.strip()] = _grid_values(vals)
    market = _open(dataset, data, fmt, symbols, start, end)
    res = run_sweep(market, spec.strategy, fields, costs=spec.costs, capital=spec.capital or 10_000.0)
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    typer.echo(f"{len(res.table)} accounts ({len(res.skipped)} grid points skipped as invalid) on {market!r}")
    cols = [*fields, *(["symbol"] if "symbol" in res.table.columns else []), metric, "cagr", "max_drawdown",
            "n_trades", "n_liquidations"]
    cols = list(dict.fromkeys(c for c in cols if c in res.table.columns))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(res.best(metric, top)[cols].to_string(index=False))
    if csv:
        res.table.to_csv(csv, index=False)
        typer.echo(f"wrote {csv}")
    if heatmap:
        if not (x and y):
            raise ConfigError("--heatmap needs --x FIELD and --y FIELD (two of the swept fields)")
        from fundarb.results.plots import figure_heatmap, save_figure

        save_figure(figure_heatmap(res.heatmap(x, y, metric), metric=metric,
                                   title=f"{metric} — {spec.strategy.name or strategy}"), heatmap)
        typer.echo(f"wrote {heatmap}")


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
