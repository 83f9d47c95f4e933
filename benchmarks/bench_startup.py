"""Start-up cost of the CLI: the first demo backtest after install (cold Numba cache) against a warm one.

Every timing is a fresh child process running ``python -m fundarb.cli`` (wall clock, process start to exit):

- cold: ``fundarb backtest strategies/binance_bot.toml --dataset demo`` with ``NUMBA_CACHE_DIR`` pointed at a
  new empty folder, so every kernel compiles as on the first run after install;
- warm: the same command again with that now-filled cache (best of ``--repeat``) — the baseline;
- ``fundarb --help`` (best of ``--repeat``): imports and typer only.

Prints each time (and its CPU seconds, steadier than wall clock on a loaded machine), cold / warm, and the
issue 10 targets (cold ≤ 10 s, warm ≤ 2 s). The demo dataset is
synthetic and built in, so no data folder is needed.

Run: python benchmarks/bench_startup.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKTEST = ["backtest", str(ROOT / "strategies" / "binance_bot.toml"), "--dataset", "demo"]


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fundarb.cli", *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        sys.exit(f"error: `fundarb {' '.join(args)}` exited {out.returncode}:\n{(out.stderr or out.stdout)[-2000:]}")
    return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the warm and --help timings (best is kept)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="fundarb-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        cold, cold_cpu = _run(BACKTEST, env)
        warm, warm_cpu = min(_run(BACKTEST, env) for _ in range(args.repeat))
        help_s, help_cpu = min(_run(["--help"], env) for _ in range(args.repeat))
    print("fundarb backtest strategies/binance_bot.toml --dataset demo (child processes, wall clock; CPU s in [])")
    print(f"warm Numba cache (baseline, best of {args.repeat}): {warm:6.2f} s [{warm_cpu:5.1f}]   1.0x   target ≤ 2 s: "
          + ("met" if warm <= 2 else f"MISSED by {warm - 2:.2f} s"))
    print(f"cold, fresh NUMBA_CACHE_DIR (first run):  {cold:6.2f} s [{cold_cpu:5.1f}] {cold / warm:5.1f}x   "
          "target ≤ 10 s: "
          + ("met" if cold <= 10 else f"MISSED by {cold - 10:.2f} s"))
    print(f"fundarb --help (best of {args.repeat}):               {help_s:6.2f} s [{help_cpu:5.1f}] "
          f"{help_s / warm:5.2f}x")


if __name__ == "__main__":
    main()
