"""The typer application and the options every data command shares. Heavy modules (numba kernels, vectorbt,
matplotlib) load only inside the command that needs them, so ``fundarb --help`` starts fast."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from fundarb.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from fundarb.data.market import MarketData

app = typer.Typer(
    name="fundarb",
    help="Backtest crypto funding-rate arbitrage (spot + perpetual): funding, costs, borrow, liquidation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from fundarb import __version__

        typer.echo(f"fundarb {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Backtest crypto funding-rate arbitrage (spot + perpetual)."""


DatasetOpt = Annotated[str | None, typer.Option("--dataset", help="Built-in dataset: 'demo' (synthetic).")]
DataOpt = Annotated[str | None, typer.Option("--data", help="Data directory (see --format).")]
FormatOpt = Annotated[str, typer.Option("--format", help="freqtrade | binance-vision | fundarb (the fetch store).")]
SymbolsOpt = Annotated[str | None, typer.Option("--symbols", help="Comma-separated symbols, e.g. BTC,ETH.")]
StartOpt = Annotated[str | None, typer.Option("--start", help="First bar (UTC), e.g. 2021-01-01.")]
EndOpt = Annotated[str | None, typer.Option("--end", help="Last bar (UTC), inclusive.")]


def parse_symbols(text: str | None, option: str = "--symbols") -> list[str] | None:
    """``"BTC, ETH"`` → ``["BTC", "ETH"]``; None → None (every symbol); a text naming no symbol is an error."""
    if text is None:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise ConfigError(f"{option} names no symbol (got {text!r}); write e.g. {option} BTC,ETH, or leave it out "
                          "for every symbol")
    return names


def check_dates(start: str | None, end: str | None) -> None:
    """Read ``--start`` and ``--end`` before any work; the start must not be after the end.

    A date-only ``--end`` (``2023-12-31``) includes that whole day.
    """
    from fundarb.durations import parse_date

    t0 = parse_date(start, name="--start")[0] if start is not None else None
    if end is not None:
        t1, after = parse_date(end, name="--end")
        last = t1 if after is None else after
        if t0 is not None and (t0 > last or (after is not None and t0 == after)):
            raise ConfigError(f"--start {start} is after --end {end}")


def check_count(value: int, option: str, *, minimum: int = 1) -> None:
    """An integer option must be at least ``minimum``."""
    if value < minimum:
        raise ConfigError(f"{option} must be ≥ {minimum}, got {value}")


def check_choice(value: str, choices: Sequence[str], option: str) -> None:
    """A named option must be one of ``choices`` (did-you-mean on a near miss)."""
    if value not in choices:
        raise ConfigError(f"{option}: unknown {value!r}{did_you_mean(value, choices)}; one of {', '.join(choices)}")


def check_input_file(path: str, what: str = "file") -> None:
    """The path must be an existing regular file: a FIFO would block the read forever, a folder cannot be read."""
    if not os.path.exists(path):
        raise ConfigError(f"{what} {path} not found")
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                else "a device or socket")
        raise ConfigError(f"{what} {path} is {kind}, not a regular file")


def _figure_suffixes() -> list[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_output(path: str | None, option: str, *, figure: bool = False) -> None:
    """An output path must be writable before the work that fills it starts.

    Refused: an empty path, a folder, an existing non-regular file, a missing folder, a parent that is a file,
    a folder we cannot write in; with ``figure``, a suffix matplotlib cannot write.
    """
    if path is None:
        return
    if not path.strip():
        raise ConfigError(f"{option}: empty path")
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if os.path.exists(full) and not os.path.isfile(full):
        raise ConfigError(f"{option} {path} exists and is not a regular file")
    parent = os.path.dirname(full)
    probe = parent
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise ConfigError(f"{option} {path}: {probe} is a file, not a folder")
    if probe != parent:
        raise ConfigError(f"{option} {path}: folder {parent} does not exist")
    if os.path.exists(full) and not os.access(full, os.W_OK):
        raise ConfigError(f"{option} {path} is not writable")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot write in folder {parent} ({exc.strerror or exc})") from None
    if figure:
        suffix = os.path.splitext(full)[1].lstrip(".").lower()
        kinds = _figure_suffixes()
        if suffix not in kinds:
            what = f"'.{suffix}'" if suffix else "a file without suffix"
            raise ConfigError(f"{option} {path}: cannot write a figure as {what}; use one of "
                              f"{', '.join('.' + k for k in kinds)}")


def check_args(
    *,
    symbols: str | None = None,
    start: str | None = None,
    end: str | None = None,
    inputs: Mapping[str, str | None] | None = None,
    outputs: Mapping[str, str | None] | None = None,
    figures: Mapping[str, str | None] | None = None,
) -> None:
    """Every check a command runs before any work: symbols, dates, input files, output paths (ConfigError)."""
    for what, path in (inputs or {}).items():
        if path is not None:
            check_input_file(path, what)
    parse_symbols(symbols)
    check_dates(start, end)
    for option, path in (outputs or {}).items():
        check_output(path, option)
    for option, path in (figures or {}).items():
        check_output(path, option, figure=True)


def open_market(dataset: str | None, data: str | None, fmt: str, symbols: str | None, start: str | None,
          end: str | None):
    from fundarb.data import sources

    if dataset is None and data is None:
        dataset = "demo"
    check_dates(start, end)
    return sources.open_market(dataset=dataset, data=data, format=fmt, symbols=parse_symbols(symbols),
                               start=start, end=end)


def describe_market(market: MarketData) -> str:
    """The data in words: ``demo (synthetic): DEMOBTC, DEMOETH — 17,520 bars of 1h, 2023-01-01 00:00 → … UTC``."""
    idx = market.index
    span = (f"{idx[0]:%Y-%m-%d %H:%M} → {idx[-1] + market.timeframe:%Y-%m-%d %H:%M} UTC" if len(idx)
            else "no bars")
    return (f"{market.label or 'market data'}: {', '.join(market.symbols)} — {len(idx):,} bars of "
            f"{market.timeframe_label}, {span}")
