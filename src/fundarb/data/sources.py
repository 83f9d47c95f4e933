"""One entry point that opens market data by name or path, for the CLI and notebooks."""

from __future__ import annotations

import os
from collections.abc import Sequence

from fundarb.data.market import MarketData
from fundarb.errors import ConfigError, did_you_mean

__all__ = ["DATASETS", "FORMATS", "open_market"]

FORMATS = ("freqtrade", "binance-vision", "fundarb")
DATASETS = ("demo",)


def open_market(
    *,
    dataset: str | None = None,
    data: str | os.PathLike[str] | None = None,
    format: str = "freqtrade",
    symbols: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    timeframe: str = "1h",
    exchange: str = "binance",
) -> MarketData:
    """Open the built-in ``dataset`` (``"demo"``, synthetic) or the data at ``data`` in ``format``.

    Parameters
    ----------
    dataset
        Name of a built-in dataset; exclusive with ``data``.
    data
        A directory: freqtrade ``user_data/data/<exchange>``, Binance's download tree, or a fundarb store.
    format
        One of :data:`FORMATS`.
    symbols
        Symbols to keep (default: all).
    start, end
        Time range to keep (inclusive, UTC).
    timeframe
        Bar size.
    exchange
        Exchange sub-directory of a fundarb store.
    """
    if (dataset is None) == (data is None):
        raise ConfigError("give either a dataset name (--dataset demo) or a data path (--data PATH)")
    if dataset is not None:
        if dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {dataset!r}{did_you_mean(dataset, DATASETS)}; "
                              f"built-in datasets: {', '.join(DATASETS)}")
        from fundarb.data.synthetic import demo_market

        market = demo_market()
        if symbols:
            market = market.select(list(symbols))
    else:
        if format not in FORMATS:
            raise ConfigError(
                f"unknown format {format!r}{did_you_mean(format, FORMATS)}; formats: {', '.join(FORMATS)}")
        syms = list(symbols) if symbols else None
        if format == "freqtrade":
            from fundarb.data.freqtrade import load_freqtrade

            market = load_freqtrade(data, syms, bar=timeframe)  # type: ignore[arg-type]
        elif format == "binance-vision":
            from fundarb.data.binance_vision import load_binance_vision

            market = load_binance_vision(data, syms, bar=timeframe)  # type: ignore[arg-type]
        else:
            from fundarb.data.store import load_store

            market = load_store(data, syms, exchange=exchange, bar=timeframe)  # type: ignore[arg-type]
    if start is not None or end is not None:
        market = market.slice(start, end)
    return market
