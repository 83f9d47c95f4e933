"""``fundarb fetch``: download exchange history into the Parquet store.

ccxt and the fetcher load only when the command runs, so ``fundarb --help`` stays fast. Bad arguments raise
:class:`~fundarb.errors.ConfigError` before any request (one ``error:`` line, exit 2); a fetch that fails on the
exchange's side prints what is saved and how to resume, and exits 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fundarb.cli.app import app

__all__ = ["api_url_arg", "fetch"]


def api_url_arg(values: list[str] | None) -> str | dict[str, str] | None:
    """``--api-url`` values: one URL for every endpoint, or ``KEY=URL`` entries of ccxt's ``urls['api']``."""
    if not values:
        return None
    out: dict[str, str] = {}
    for v in values:
        key, sep, url = v.partition("=")
        if sep and "://" not in key:
            out[key] = url
        else:
            out["*"] = v
    return out["*"] if list(out) == ["*"] else out


@app.command()
def fetch(
    manifest: Annotated[str | None, typer.Argument(
        help="A datasets/<name>.toml manifest instead of the options (options given too override it).")] = None,
    exchange: Annotated[str | None, typer.Option("--exchange", help="ccxt exchange id (default binance).")] = None,
    symbols: Annotated[str | None, typer.Option(
        "--symbols", help="Comma-separated perpetuals, e.g. BTC/USDT:USDT,ETH/USDT:USDT (or BTC,ETH).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="First time (UTC), e.g. 2021-01-01.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="End time (UTC, exclusive); default now.")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", help="Kline timeframe (default 1h).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Store directory (default data).")] = None,
    api_url: Annotated[list[str] | None, typer.Option(
        "--api-url", metavar="URL|KEY=URL",
        help="Another base URL for the exchange API; KEY=URL sets one entry of ccxt's urls['api'].")] = None,
    tiers_file: Annotated[str | None, typer.Option(
        "--tiers-file", help="Leverage tiers in ccxt's fetch_leverage_tiers format.")] = None,
    max_retries: Annotated[int | None, typer.Option(
        "--max-retries", help="Retries of a failed request before giving up (default 6).")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", help="Seconds per HTTP request, > 0 (default 30).")] = None,
    chunk_rows: Annotated[int | None, typer.Option(
        "--chunk-rows", help="Rows between two writes of a file, >= 1 (default 5000).")] = None,
    progress: Annotated[bool | None, typer.Option(
        "--progress/--no-progress", help="Progress bars (default: only on a terminal).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every retry.")] = False,
) -> None:
    """Download spot, perpetual, mark-price OHLCV and funding history with ccxt into the Parquet store
    (incremental and resumable: run it again to update or to resume after an interruption)."""
    import contextlib
    import logging
    import signal
    import sys

    from fundarb.data.fetch import FetchError, fetch_manifest
    from fundarb.data.fetch import fetch as fetch_data
    from fundarb.errors import ConfigError

    kw: dict[str, Any] = {
        "exchange": exchange, "symbols": symbols, "since": since, "until": until, "timeframe": timeframe, "out": out,
        "api_url": api_url_arg(api_url), "tiers_file": tiers_file, "max_retries": max_retries, "timeout": timeout,
        "chunk_rows": chunk_rows}
    if tiers_file is not None:
        from fundarb.cli.app import check_input_file

        check_input_file(tiers_file, "--tiers-file")  # refused before any request (a FIFO would hang)
    if manifest is None and (symbols is None or since is None):
        raise ConfigError("fetch needs --symbols and --since, or a manifest such as datasets/binance_btc_eth.toml")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s", stream=sys.stderr)
    previous = None
    with contextlib.suppress(ValueError):  # SIGTERM: unwind, so the chunk in flight is written (not in a thread)
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if manifest is not None:
            report = fetch_manifest(manifest, progress=progress, **kw)
        else:
            report = fetch_data(progress=progress, **{k: v for k, v in kw.items() if v is not None})
    except FetchError as exc:  # the exchange failed us, not the arguments: say what is saved, exit 1
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    typer.echo(report.summary())
