"""``fundarb walk-forward``: choose parameters on each train window, trade them on the next test window."""

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
    describe_market,
    open_market,
)
from fundarb.cli.sweep import GridFileOpt, GridOpt, SchedulerOpt


@app.command("walk-forward")
def walk_forward(
    strategy: Annotated[str, typer.Argument(help="A strategy TOML file: the base the grid varies.")],
    grid: GridOpt = None,
    grid_file: GridFileOpt = None,
    train: Annotated[str, typer.Option("--train", help="Train window, e.g. 365d.")] = "365d",
    test: Annotated[str, typer.Option("--test", help="Test window, e.g. 90d.")] = "90d",
    anchored: Annotated[bool, typer.Option("--anchored", help="Train windows all start at the first bar.")] = False,
    metric: Annotated[str, typer.Option("--metric", help="Book statistic maximised on each train window.")]
    = "sharpe",
    dataset: DatasetOpt = None,
    data: DataOpt = None,
    fmt: FormatOpt = "freqtrade",
    symbols: SymbolsOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    json_out: Annotated[str | None, typer.Option("--json", help="Write folds and out-of-sample stats as JSON.")]
    = None,
    plot: Annotated[str | None, typer.Option("--plot", help="Save the out-of-sample equity figure here.")] = None,
    report: Annotated[str | None, typer.Option("--report", help="Write a self-contained HTML report (folds, "
                                               "stitched out-of-sample equity, overfitting gap) here.")] = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Walk-forward validation: in-sample choice, out-of-sample result, and the gap between them."""
    check_args(symbols=symbols, start=start, end=end, inputs={"strategy file": strategy, "--grid-file": grid_file},
               outputs={"--json": json_out, "--report": report}, figures={"--plot": plot})
    from fundarb.durations import parse_duration
    from fundarb.sweeps.walkforward import METRICS

    check_choice(metric, METRICS, "--metric")
    parse_duration(train, name="--train")
    parse_duration(test, name="--test")
    import json

    import pandas as pd

    from fundarb.signals.toml import load_strategy
    from fundarb.sweeps.spec import grid_from_args
    from fundarb.sweeps.walkforward import walk_forward as run_wf

    fields = grid_from_args(grid, grid_file)
    spec = load_strategy(strategy)
    market = open_market(dataset, data, fmt, symbols, start, end)
    res = run_wf(market, spec.strategy, fields, train=train, test=test, anchored=anchored, metric=metric,
                 costs=spec.costs, capital=spec.capital or 10_000.0, scheduler=scheduler)
    if market.synthetic:
        typer.echo("SYNTHETIC data — generated for demonstration, not market history.")
    typer.echo(f"walk-forward of {spec.strategy.name or strategy} on {describe_market(market)}: "
               f"{len(res.folds)} folds, "
               f"train {train}, test {test}{' (anchored)' if anchored else ''}, chosen by book {metric}")
    cols = ["test_start", "test_end", *fields, f"is_{metric}", f"oos_{metric}", "oos_final_equity"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        typer.echo(res.folds[cols].to_string(index=False))
    typer.echo(f"in-sample mean {metric} {res.in_sample_mean:.4f}, out-of-sample mean {res.out_of_sample_mean:.4f}, "
               f"overfitting gap {res.overfitting_gap:.4f}")
    st = res.stats
    typer.echo(f"stitched out-of-sample: final equity {st['final_equity']:,.2f} from {res.capital:,.2f}, "
               f"sharpe {st['sharpe']:.4f}, cagr {st['cagr']:.4%}, max drawdown {st['max_drawdown']:.4%}")
    for f, counts in res.choices.items():
        typer.echo(f"chosen {f}: " + ", ".join(f"{v} ×{n}" for v, n in counts.items()))
    if json_out:
        with open(json_out, "w") as fh:
            json.dump({"strategy": strategy, **res.to_dict()}, fh, indent=1)
        typer.echo(f"wrote {json_out}")
    if plot:
        from fundarb.results.plots import save_figure

        save_figure(res.figure(), plot)
        typer.echo(f"wrote {plot}")
    if report:
        from fundarb.results.report_walkforward import write_walkforward_report

        write_walkforward_report(res, report, name=spec.strategy.name or strategy, market_words=describe_market(market),
                                 synthetic=market.synthetic, train=train, test=test)
        typer.echo(f"wrote {report}")
