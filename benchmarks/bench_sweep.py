"""Sweeping a strategy grid in one kernel call against backtesting each grid point on its own.

Baseline (measured in this run): ``fundarb.run_strategy`` once per grid point, timed on a sample of points and
scaled to the grid. Candidate: ``fundarb.sweep`` over the whole grid. Data: real BTC + ETH 1h 2019–2026.

Run: python benchmarks/bench_sweep.py [--points 5000] [--sample 20]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from _data import data_dir, require_data

import fundarb as fa

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(data_dir()))
    ap.add_argument("--points", type=int, default=5000, help="grid points (accounts = points × 2 symbols)")
    ap.add_argument("--sample", type=int, default=20, help="points backtested one by one for the baseline")
    args = ap.parse_args()
    require_data(args.data, ("BTC", "ETH"))
    market = fa.load_freqtrade(args.data, ["BTC", "ETH"])
    windows = ["1d", "2d", "3d", "5d", "7d", "10d", "14d", "21d", "30d", "45d"]
    leverages = [1.0, 2.0, 3.0, 5.0]
    n_entry = max(1, args.points // (len(windows) * len(leverages) * 5))
    grid = {"window": windows, "entry": list(np.round(np.linspace(0.05, 0.6, n_entry), 4)),
            "exit": [0.0, 0.01, 0.02, 0.03, 0.04], "leverage": leverages}
    points = int(np.prod([len(v) for v in grid.values()]))
    base = fa.FundingCarry()
    fa.sweep(market.slice(None, market.index[500]), base, {"entry": [0.1, 0.2]})  # compile
    fa.run_strategy(market.slice(None, market.index[500]), base, mode="sweep")

    rng = np.random.default_rng(0)
    combos = list(itertools.product(*grid.values()))
    pick = rng.choice(len(combos), size=min(args.sample, len(combos)), replace=False)
    t0 = time.perf_counter()
    for i in pick:
        s = fa.FundingCarry(**dict(zip(grid, combos[i], strict=True)))
        fa.run_strategy(market, s, mode="sweep")
    one_by_one = (time.perf_counter() - t0) / len(pick) * points

    t0 = time.perf_counter()
    res = fa.sweep(market, base, grid)
    swept = time.perf_counter() - t0
    accounts = len(res.per_symbol)
    print(f"data: BTC+ETH 1h, {len(market)} bars; grid: {points} points × 2 symbols = {accounts} accounts "
          f"({len(res.skipped)} points skipped as invalid)")
    print(f"one backtest per point (baseline, from {len(pick)} timed): {one_by_one:8.1f} s   1.0x")
    print(f"fundarb.sweep, one kernel call:                      {swept:8.1f} s "
          f"{one_by_one / swept:6.1f}x   ({accounts * len(market) / swept:,.0f} bar-accounts/s)")


if __name__ == "__main__":
    main()
