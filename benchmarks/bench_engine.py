"""Kernel speed against the reference simulator, on real BTC 1h 2019–2026 (../shared/data).

Prints bar-columns per second of:
- the reference simulator (tests/reference/simulator.py, pure Python, one column) — the baseline;
- the Numba kernel in detail mode (one column) and in sweep mode (many columns, both cores);
and the ratios against the baseline measured in this same run.

Run: python benchmarks/bench_engine.py [--columns 2000] [--reference-bars 20000]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _data import data_dir, require_data  # noqa: E402

import fundarb as fa  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(data_dir()))
    ap.add_argument("--columns", type=int, default=2000, help="parameter sets in the sweep run")
    ap.add_argument("--reference-bars", type=int, default=20000, help="bars given to the slow reference")
    args = ap.parse_args()
    require_data(args.data, ("BTC",))

    t0 = time.perf_counter()
    market = fa.load_freqtrade(args.data, ["BTC"])
    load_s = time.perf_counter() - t0
    bars = len(market)
    print(f"data: BTC 1h {market.index[0]:%Y-%m-%d} → {market.index[-1]:%Y-%m-%d}, {bars} bars "
          f"(load_freqtrade, 4 files: {load_s:.3f} s)")
    costs = fa.Costs()
    kw = dict(costs=costs, leverage=3.0, rebalance_at=0.5)

    # warm-up (compilation) is excluded from the timings
    fa.backtest(market.slice(None, market.index[100]), 1, **kw)
    fa.backtest(market.slice(None, market.index[100]), 1, mode="sweep", **{**kw, "leverage": [2.0, 3.0]})

    t0 = time.perf_counter()
    r = fa.backtest(market, 1, **kw)
    detail_s = time.perf_counter() - t0
    detail_rate = bars / detail_s

    levs = list(np.linspace(1.0, 10.0, args.columns))
    t0 = time.perf_counter()
    fa.backtest(market, 1, mode="sweep", **{**kw, "leverage": levs})
    sweep_s = time.perf_counter() - t0
    sweep_rate = bars * args.columns / sweep_s

    try:
        from reference.simulator import simulate
    except ImportError:
        print("reference simulator not found (tests/reference/simulator.py); kernel figures only")
        print(f"kernel detail: {detail_rate:,.0f} bar-columns/s; sweep ({args.columns} columns): "
              f"{sweep_rate:,.0f} bar-columns/s")
        return
    n = min(args.reference_bars, bars)
    A = {k: v[:n, 0].tolist() for k, v in market.arrays.items()}
    params = dict(capital=10_000.0, leverage=3.0, spot_leverage=3.0, spot_fee=costs.spot_fee,
                  perp_fee=costs.perp_fee, half_spread_bps=0.0, slippage_bps=0.0, slippage_k=0.0,
                  borrow_rate=costs.borrow_rate, mmr=0.005, liquidation_fee=costs.liquidation_fee,
                  rebalance_at=0.5, rebalance_every=0, after_liquidation="close", spot_liquidation_level=1.1,
                  tiers=None)
    t0 = time.perf_counter()
    ref = simulate(spot_open=A["spot_open"], spot_high=A["spot_high"], spot_low=A["spot_low"],
                   spot_close=A["spot_close"], perp_open=A["perp_open"], mark_open=A["mark_open"],
                   mark_high=A["mark_high"], mark_low=A["mark_low"], mark_close=A["mark_close"],
                   funding=A["funding_rate"], borrow_rate=A["borrow_rate"], spot_volume=A["spot_volume"],
                   perp_volume=A["perp_volume"], target=[1] * n, bar_hours=1.0, params=params)
    ref_s = time.perf_counter() - t0
    ref_rate = n / ref_s
    eq_kernel = r.equity.iloc[n - 1, 0]
    agree = math.isclose(ref["equity"][-1], eq_kernel, rel_tol=1e-9) if n == bars else None
    print(f"reference (pure Python, 1 column, {n} bars): {ref_rate:>14,.0f} bar-columns/s   1.0x (baseline)")
    print(f"kernel detail (1 column, {bars} bars):        {detail_rate:>14,.0f} bar-columns/s "
          f"{detail_rate / ref_rate:>8,.0f}x")
    print(f"kernel sweep ({args.columns} columns, {bars} bars):  {sweep_rate:>14,.0f} bar-columns/s "
          f"{sweep_rate / ref_rate:>8,.0f}x   ({sweep_s:.2f} s)")
    if agree is not None:
        print(f"final equity agrees with the reference to 1e-9: {agree}")


if __name__ == "__main__":
    main()
