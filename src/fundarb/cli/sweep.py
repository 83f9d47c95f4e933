"""``fundarb sweep``: a parameter grid in one run, ranked."""

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
    describe_market,
    open_market,
)


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
    report: Annotated[str | None, typer.Option("--report", help="Write a self-contained HTML report (heatmaps of "
                                               "every pair of swept fields, top points) here.")] = None,
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
    market = open_market(dataset, data, fmt, symbols, start, end)
    res = run_sweep(market, spec.strategy, fields, costs=spec.costs, capital=spec.capital or 10_000.0)
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    typer.echo(f"{len(res.table)} accounts ({len(res.skipped)} grid points skipped as invalid) on "
               f"{describe_market(market)}")
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
    if report:
        from fundarb.results.report_sweep import write_sweep_report

        write_sweep_report(res, report, metric=metric, name=spec.strategy.name or strategy,
                           market_words=describe_market(market))
        typer.echo(f"wrote {report}")
