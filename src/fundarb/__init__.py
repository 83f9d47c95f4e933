"""fundarb — backtest crypto funding-rate arbitrage (spot + perpetual) bar by bar.

The public API is small and imported lazily, so ``import fundarb`` (and the CLI) start fast:

- data: :func:`load_freqtrade`, :func:`load_binance_vision`, :func:`load_table`, :func:`load_venue_funding`,
  :func:`load_store`, :func:`demo_market`, :class:`MarketData`;
- engine: :func:`backtest`, :class:`Costs`, :func:`liquidation_price`; results: :class:`Result`;
- strategies: :class:`FundingCarry`, :class:`TopNRotation`, :func:`load_strategy`, :func:`run_strategy`,
  :func:`sweep`, :func:`walk_forward`;
- errors: :class:`DataError`, :class:`ConfigError`, :class:`DataWarning`.
"""

from __future__ import annotations

import importlib
from typing import Any

from fundarb import calc as calc  # the traders' calculators (`fundarb calc`); light, imported eagerly
from fundarb.errors import ConfigError, DataError, DataWarning, FundarbError

__version__ = "0.1.0"

_LAZY = {
    "MarketData": "fundarb.data.market",
    "SymbolFrames": "fundarb.data.frames",
    "load_freqtrade": "fundarb.data.freqtrade",
    "load_binance_vision": "fundarb.data.binance_vision",
    "load_table": "fundarb.data.table",
    "load_venue_funding": "fundarb.data.table",
    "load_store": "fundarb.data.store",
    "demo_market": "fundarb.data.synthetic",
    "backtest": "fundarb.results.backtest",
    "liquidation_price": "fundarb.engine.tiers",
    "Costs": "fundarb.engine.config",
    "Result": "fundarb.results.result",
    "fetch": "fundarb.data.fetch",
    "FundingCarry": "fundarb.signals.carry",
    "TopNRotation": "fundarb.signals.portfolio",
    "load_strategy": "fundarb.signals.toml",
    "run_strategy": "fundarb.signals.run",
    "sweep": "fundarb.sweeps.grid",
    "walk_forward": "fundarb.sweeps.walkforward",
}

__all__ = ["ConfigError", "DataError", "DataWarning", "FundarbError", "__version__", "calc", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fundarb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
