"""Peak memory of a strategy sweep of distinct-window FundingCarry points on real BTC + ETH 1h data.

Each measurement runs in a fresh child process (its own ``ru_maxrss``), so one cannot inflate another:

- baseline: load BTC + ETH (``fa.load_freqtrade``) and run one FundingCarry backtest;
- sweep: load the same data and ``fa.sweep`` a grid of ``--points`` points, ``points / 100`` distinct windows
  × 100 entry thresholds (the window changes the filter, so every window is a distinct target matrix).

Prints each peak RSS, the sweep / baseline ratio measured in this run, the memory the sweep adds per point,
and the issue 10 target (10,000 points under 1.5 GB). The sweep runs in chunks under
``fundarb.sweeps.grid.MEMORY_BUDGET``.

Run: python benchmarks/bench_memory.py [--points 2000 10000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from _data import data_dir, require_data

SYMBOLS = ("BTC", "ETH")
TARGET_BYTES = 1.5e9


def _grid(points: int) -> dict[str, list]:
    n_windows = max(1, points // 100)
    n_entries = max(1, points // n_windows)
    windows = [f"{24 + 6 * i}h" for i in range(n_windows)]             # 1 d, 1.25 d, … distinct windows
    entries = [round(0.02 + 0.005 * j, 4) for j in range(n_entries)]
    return {"window": windows, "entry": entries}


def _child(kind: str, points: int, data: str) -> None:
    import fundarb as fa

    t0 = time.perf_counter()
    market = fa.load_freqtrade(data, list(SYMBOLS))
    if kind == "baseline":
        fa.run_strategy(market, fa.FundingCarry())
        n = 1
    else:
        res = fa.sweep(market, fa.FundingCarry(), _grid(points), progress=False)
        n = len(res.table)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # kB on Linux
    print(json.dumps({"peak": peak, "points": n, "bars": len(market), "seconds": time.perf_counter() - t0}))


def _measure(kind: str, points: int, data: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--points", str(points), "--data", data]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"error: {kind} child ({points} points) failed with exit code {out.returncode}:\n"
                 f"{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(data_dir()))
    ap.add_argument("--points", type=int, nargs="+", default=[2000, 10000], help="grid sizes to measure")
    ap.add_argument("--child", choices=["baseline", "sweep"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    require_data(args.data, SYMBOLS)
    if args.child:
        _child(args.child, args.points[0], args.data)
        return

    base = _measure("baseline", 1, args.data)
    mb = 1e6
    print(f"data: BTC+ETH 1h, {base['bars']} bars; one child process per line, peak RSS (ru_maxrss)")
    print(f"{'load + one backtest (baseline)':<34} {base['peak'] / mb:8.0f} MB   1.00x  {base['seconds']:6.1f} s")
    for n in args.points:
        r = _measure("sweep", n, args.data)
        extra = (r["peak"] - base["peak"]) / r["points"]
        verdict = ""
        if r["points"] >= 10_000:
            verdict = "  target < 1.5 GB: " + ("met" if r["peak"] < TARGET_BYTES else
                                               f"MISSED by {(r['peak'] - TARGET_BYTES) / mb:,.0f} MB")
        label = f"sweep, {r['points']:,} points"
        print(f"{label:<34} {r['peak'] / mb:8.0f} MB {r['peak'] / base['peak']:6.2f}x  "
              f"{r['seconds']:6.1f} s  ({extra / mb:.3f} MB/point above baseline){verdict}")


if __name__ == "__main__":
    main()
