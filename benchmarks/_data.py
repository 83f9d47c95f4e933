"""Where the benchmarks find real data: ``$FUNDARB_DATA/binance`` (default ``../shared/data/binance``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The Binance folder the benchmarks read: ``$FUNDARB_DATA/binance`` or ``../shared/data/binance``."""
    return Path(os.environ.get("FUNDARB_DATA", ROOT / ".." / "shared" / "data")) / "binance"


def require_data(path: str | Path, symbols: tuple[str, ...] = ("BTC",)) -> Path:
    """Exit with one clear line when ``path`` lacks the spot files of ``symbols``."""
    p = Path(path)
    missing = [s for s in symbols if not (p / f"{s}_USDT-1h.feather").is_file()]
    if not p.is_dir() or missing:
        what = "no such folder" if not p.is_dir() else f"missing {', '.join(f'{s}_USDT-1h.feather' for s in missing)}"
        sys.exit(f"error: no benchmark data at {p} ({what}); set FUNDARB_DATA to a folder holding binance/ "
                 "or pass --data")
    return p
