"""Loading BTC 1h 2019–2026 (four freqtrade feather files) into MarketData, against reading them raw.

Baseline (same run): ``pandas.read_feather`` of the four files, no validation or alignment.
Candidate: ``fundarb.load_freqtrade`` — read, validate every value, align onto the bar grid, assign funding.

Run: python benchmarks/bench_load.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from _data import data_dir, require_data

import fundarb as fa

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(data_dir()))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    require_data(args.data, ("BTC",))
    d = Path(args.data)
    files = [d / "BTC_USDT-1h.feather", d / "futures" / "BTC_USDT_USDT-1h-futures.feather",
             d / "futures" / "BTC_USDT_USDT-1h-mark.feather", d / "futures" / "BTC_USDT_USDT-1h-funding_rate.feather"]
    fa.load_freqtrade(d, "BTC")  # warm the imports
    raw = best_of(lambda: [pd.read_feather(f) for f in files], args.repeat)
    full = best_of(lambda: fa.load_freqtrade(d, "BTC"), args.repeat)
    m = fa.load_freqtrade(d, "BTC")
    print(f"BTC 1h: {sum(len(pd.read_feather(f)) for f in files):,} rows in 4 files → {m}")
    print(f"pandas.read_feather ×4 (baseline): {raw * 1000:7.1f} ms   1.0x")
    print(f"fundarb.load_freqtrade:            {full * 1000:7.1f} ms   {full / raw:.1f}x the raw read "
          f"({'under' if full < 1 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
