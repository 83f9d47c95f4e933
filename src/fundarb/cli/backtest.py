"""``fundarb backtest``: one strategy file on one dataset."""

from __future__ import annotations

from typing import Annotated

import typer

from fundarb.cli.app import (
    DataOpt,
    DatasetOpt,
    EndOpt,
    FormatOpt,
    StartOpt,
    SymbolsOpt,
    app,
    check_args,
    describe_market,
    open_market,
)


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
    json_series: Annotated[bool, typer.Option("--json-series", help="Add the book's equity curve and the trade "
                                              "log to --json.")] = False,
    plot: Annotated[str | None, typer.Option("--plot", help="Save the equity/PnL figure here (.png/.svg).")] = None,
    report: Annotated[str | None, typer.Option("--report", help="Write a self-contained HTML report here.")] = None,
) -> None:
    """Backtest a strategy file on a dataset (default: the synthetic demo) and print its statistics."""
    check_args(symbols=symbols, start=start, end=end, inputs={"strategy file": strategy},
               outputs={"--json": json_out, "--report": report}, figures={"--plot": plot})
    import json

    import pandas as pd

    from fundarb.errors import ConfigError
    from fundarb.results.formatting import fmt_stat
    from fundarb.results.summary import book_of, series_dict, stats_table, summary_dict
    from fundarb.signals.run import run_strategy
    from fundarb.signals.toml import load_strategy

    if capital is not None and not capital > 0:
        raise ConfigError(f"--capital must be > 0, got {capital}")
    spec = load_strategy(strategy)
    market = open_market(dataset, data, fmt, symbols, start, end)
    result = run_strategy(market, spec, capital=capital)
    summary = summary_dict(result)
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    typer.echo(f"{spec.strategy.name or strategy} on {describe_market(market)}")
    table = stats_table(summary)
    shown = table.apply(lambda col: [fmt_stat(str(key), v) for key, v in col.items()])
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_rows", 100):
        typer.echo(shown.to_string())
    typer.echo(f"accounting identity: max relative error {summary['identity_error']:.1e}")
    for w in summary["warnings"]:
        typer.echo(f"warning: {w}")
    if json_series and not json_out:
        raise ConfigError("--json-series needs --json PATH")
    if json_out:
        doc = {"strategy": strategy, "strategy_name": spec.strategy.name, **summary}
        if json_series:
            doc.update(series_dict(result))
        with open(json_out, "w") as fh:
            json.dump(doc, fh, indent=1, default=str)
        typer.echo(f"wrote {json_out}")
    if plot:
        from fundarb.results.plots import figure_result, save_figure

        save_figure(figure_result(book_of(result), title=f"{spec.strategy.name or strategy}: the book"), plot)
        typer.echo(f"wrote {plot}")
    if report:
        from fundarb.results.report import write_report

        write_report(result, report, strategy=spec)
        typer.echo(f"wrote {report}")

