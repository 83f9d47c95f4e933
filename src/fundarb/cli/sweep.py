"""``fundarb sweep``: a parameter grid in one run, grid points ranked by their book."""

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
    check_choice,
    check_count,
    describe_market,
    open_market,
)

GridOpt = Annotated[list[str] | None, typer.Option(
    "--grid", help="FIELD=v1,v2,… (repeat for each field swept; 1 is an int, 1.5 a float, 3d a duration, inf).")]
GridFileOpt = Annotated[str | None, typer.Option(
    "--grid-file", help="A TOML file of FIELD = [values] under [grid] (see strategies/grids/).")]
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", help="Run the grid's chunks on a Dask cluster: tcp://host:8786 (default: this process).")]


@app.command()
def sweep(
    strategy: Annotated[str, typer.Argument(help="A strategy TOML file: the base the grid varies.")],
    grid: GridOpt = None,
    grid_file: GridFileOpt = None,
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    fmt: FormatOpt = "freqtrade",
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    metric: Annotated[str, typer.Option("--metric", help="Book statistic to rank and draw.")] = "sharpe",
    top: Annotated[int, typer.Option("--top", help="Rows of the best grid points to print.")] = 10,
    per_symbol: Annotated[bool, typer.Option("--per-symbol", help="Rank every account (grid point × symbol).")]
    = False,
    csv: Annotated[str | None, typer.Option("--csv", help="Write every grid point's book statistics here.")] = None,
    heatmap: Annotated[str | None, typer.Option("--heatmap", help="Save a heatmap of --metric (needs --x, --y).")]
    = None,
    x: Annotated[str | None, typer.Option("--x", help="Grid field on the heatmap's x axis.")] = None,
    y: Annotated[str | None, typer.Option("--y", help="Grid field on the heatmap's y axis.")] = None,
    agg: Annotated[str, typer.Option("--agg", help="How the heatmap aggregates other swept fields: max|mean|…")]
    = "max",
    scheduler: SchedulerOpt = None,
    report: Annotated[str | None, typer.Option("--report", help="Write a self-contained HTML report (heatmaps of "
                                               "every pair of swept fields, top points) here.")] = None,
) -> None:
    """Backtest every point of a parameter grid and rank the points by their book (default: the demo dataset)."""
    check_args(symbols=symbols, start=start, end=end, inputs={"strategy file": strategy, "--grid-file": grid_file},
               outputs={"--csv": csv, "--report": report}, figures={"--heatmap": heatmap})
    check_count(top, "--top")
    from fundarb.results.result import STAT_NAMES

    check_choice(metric, STAT_NAMES, "--metric")
    import pandas as pd

    from fundarb.errors import ConfigError
    from fundarb.signals.toml import load_strategy
    from fundarb.sweeps.grid import AGGS
    from fundarb.sweeps.grid import sweep as run_sweep
    from fundarb.sweeps.spec import grid_from_args

    if top < 1:
        raise ConfigError(f"--top must be ≥ 1, got {top}")
    fields = grid_from_args(grid, grid_file)
    if heatmap:
        if not (x and y):
            raise ConfigError("--heatmap needs --x FIELD and --y FIELD (two of the swept fields)")
        if x == y:
            raise ConfigError(f"--x and --y are both {x!r}; give two different swept fields")
        for name in (x, y):
            if name not in fields:
                raise ConfigError(f"--x/--y {name!r} is not a swept field; swept: {', '.join(fields)}")
        if agg not in AGGS:
            raise ConfigError(f"--agg must be one of {', '.join(AGGS)}, got {agg!r}")
    spec = load_strategy(strategy)
    market = open_market(dataset, data, fmt, symbols, start, end)
    res = run_sweep(market, spec.strategy, fields, costs=spec.costs, capital=spec.capital or 10_000.0,
                    scheduler=scheduler)
    res.best(metric, 1)  # an unknown metric is an error before anything is printed or written
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    what = "accounts (grid point × symbol)" if per_symbol else "grid points, each scored by its book (all symbols)"
    typer.echo(f"{len(res.table)} grid points ({len(res.skipped)} skipped as invalid) on {describe_market(market)}; "
               f"ranked: {what}")
    cols = [*fields, *(["symbol"] if per_symbol else []), metric, "final_equity", "cagr", "max_drawdown",
            "n_trades", "n_liquidations"]
    table = res.best(metric, top, per_symbol=per_symbol)
    cols = list(dict.fromkeys(c for c in cols if c in table.columns))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(table[cols].to_string(index=False))
    if csv:
        (res.per_symbol if per_symbol else res.table).to_csv(csv, index=False)
        typer.echo(f"wrote {csv}")
    if heatmap:
        from fundarb.results.plots import figure_heatmap, save_figure

        assert x is not None and y is not None
        pivot = res.heatmap(x, y, metric, agg=agg)
        save_figure(figure_heatmap(pivot, metric=pivot.attrs["label"],
                                   title=f"{spec.strategy.name or strategy}: {pivot.attrs['title']}"), heatmap)
        typer.echo(f"wrote {heatmap}")
    if report:
        from fundarb.results.report_sweep import write_sweep_report

        write_sweep_report(res, report, market=market, metric=metric, name=spec.strategy.name or strategy,
                           market_words=describe_market(market))
        typer.echo(f"wrote {report}")
