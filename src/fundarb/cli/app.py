"""The typer application and the options every data command shares. Heavy modules (numba kernels, vectorbt,
matplotlib) load only inside the command that needs them, so ``fundarb --help`` starts fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fundarb.data.market import MarketData

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


def parse_symbols(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def open_market(dataset: str | None, data: str | None, fmt: str, symbols: str | None, start: str | None,
          end: str | None):
    from fundarb.data import sources

    if dataset is None and data is None:
        dataset = "demo"
    return sources.open_market(dataset=dataset, data=data, format=fmt, symbols=parse_symbols(symbols),
                               start=start, end=end)


def describe_market(market: MarketData) -> str:
    """The data in words: ``demo (synthetic): DEMOBTC, DEMOETH — 17,520 bars of 1h, 2023-01-01 00:00 → … UTC``."""
    idx = market.index
    span = (f"{idx[0]:%Y-%m-%d %H:%M} → {idx[-1] + market.timeframe:%Y-%m-%d %H:%M} UTC" if len(idx)
            else "no bars")
    return (f"{market.label or 'market data'}: {', '.join(market.symbols)} — {len(idx):,} bars of "
            f"{market.timeframe_label}, {span}")
