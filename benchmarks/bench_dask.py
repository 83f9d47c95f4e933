"""A 2,000-point sweep on a two-worker Dask cluster against the same sweep in this process.

Both runs go through ``fundarb.sweep`` with the same chunks; the cluster is a ``LocalCluster`` of two worker
processes (one thread each) on 127.0.0.1, started before timing (its workers compile or load the cached kernels
on a warm-up sweep). Prints both times and their ratio; the tables are checked to be identical.

Run: python benchmarks/bench_dask.py [--days 365] [--chunk 50]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import fundarb as fa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365, help="days of the synthetic demo market (3 symbols, 1h)")
    ap.add_argument("--chunk", type=int, default=50, help="grid points per chunk (kernel call)")
    args = ap.parse_args()
    from distributed import Client, LocalCluster

    market = fa.demo_market(days=args.days)
    grid = {"window": ["1d", "2d", "3d", "4d", "5d", "7d", "10d", "14d", "21d", "30d"],
            "entry": [float(v) for v in np.round(np.linspace(0.05, 0.6, 20), 4)],
            "exit": [0.0, 0.01, 0.02, 0.03, 0.04], "leverage": [1, 2]}
    base = fa.FundingCarry()
    warm = {"window": ["1d", "3d"], "entry": [0.05, 0.1]}
    fa.sweep(market, base, warm, chunk_size=2)  # compile in this process

    t0 = time.perf_counter()
    local = fa.sweep(market, base, grid, chunk_size=args.chunk, progress=False)
    t_local = time.perf_counter() - t0

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        fa.sweep(market, base, warm, chunk_size=1, scheduler=client)  # workers load the kernels
        t0 = time.perf_counter()
        remote = fa.sweep(market, base, grid, chunk_size=args.chunk, scheduler=client, progress=False)
        t_dask = time.perf_counter() - t0
    pd.testing.assert_frame_equal(remote.table, local.table)
    print(f"data: {market!r}; grid: {len(local.table)} points ({len(local.per_symbol)} accounts), "
          f"chunks of {args.chunk}")
    print(f"local (this process):        {t_local:8.1f} s   1.00x")
    print(f"Dask, 2 worker processes:    {t_dask:8.1f} s   {t_local / t_dask:5.2f}x  (tables identical)")


if __name__ == "__main__":
    main()
