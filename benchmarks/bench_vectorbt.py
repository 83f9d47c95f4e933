"""fundarb's sweep mode against vectorbt's ``Portfolio.from_orders`` on the same hedged orders.

Both run ``--sets`` parameter sets (perp leverage 1…10) of an always-on carry on BTC 1h (real data from
``$FUNDARB_DATA/binance``, default ``../shared/data/binance``), re-sized weekly, taker fees:

- fundarb: ``fa.backtest(..., mode="sweep")`` — the full model (funding, margin, liquidation checks);
- vectorbt: two columns per set (spot long, perp short) with cash shared per set, the same target amounts at
  the same bars and the same fees; it does not model funding, margin or liquidation, so it does less work.

Prints bar-sets per second of each and the ratio fundarb / vectorbt measured in this run (compilation of
both is excluded by a warm-up on a short slice).

Run: python benchmarks/bench_vectorbt.py [--sets 500]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _data import data_dir, require_data


def _vectorbt_orders(market, leverages: np.ndarray, every: int, costs):
    """Close prices, target amounts and fees of the hedged orders, two columns per set."""
    arr = market.arrays
    spot, perp = arr["spot_open"][:, 0], arr["perp_open"][:, 0]
    n_bars, n_sets = len(spot), len(leverages)
    first = int(np.flatnonzero(np.isfinite(spot) & np.isfinite(perp))[0])
    rebal = np.zeros(n_bars, dtype=bool)
    rebal[first::every] = True
    rebal &= np.isfinite(spot) & np.isfinite(perp)
    notional = 10_000.0 * leverages / (leverages + 1.0)          # carry sizing, DESIGN §3
    price = np.empty((n_bars, 2 * n_sets))
    price[:, 0::2] = spot[:, None]
    price[:, 1::2] = perp[:, None]
    size = np.full((n_bars, 2 * n_sets), np.nan)
    q = notional[None, :] / spot[rebal][:, None]
    size[rebal, 0::2] = q
    size[rebal, 1::2] = -q
    fees = np.empty(2 * n_sets)
    fees[0::2] = costs.spot_fee
    fees[1::2] = costs.perp_fee
    groups = np.repeat(np.arange(n_sets), 2)
    return price, size, fees, groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(data_dir()))
    ap.add_argument("--sets", type=int, default=500, help="parameter sets (vectorbt gets two columns per set)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs of each side; the best counts")
    args = ap.parse_args()
    require_data(args.data, ("BTC",))

    import pandas as pd
    import vectorbt as vbt

    import fundarb as fa

    market = fa.load_freqtrade(args.data, ["BTC"])
    bars = len(market)
    costs = fa.Costs.zero(spot_fee=0.001, perp_fee=0.0005)
    levs = np.linspace(1.0, 10.0, args.sets)
    every = int(pd.Timedelta(days=7) / market.timeframe)

    def run_fundarb(m, lv):
        return fa.backtest(m, 1, costs=costs, leverage=list(lv), rebalance_every=every, mode="sweep")

    def run_vbt(m, lv):
        price, size, fees, groups = _vectorbt_orders(m, lv, every, costs)
        return vbt.Portfolio.from_orders(price, size, size_type="targetamount", fees=fees, group_by=groups,
                                         cash_sharing=True, init_cash=10_000.0, freq="1h")

    short = market.slice(None, market.index[500])
    run_fundarb(short, levs[:2])
    run_vbt(short, levs[:2]).final_value()

    def best(fn) -> float:
        times = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    fa_s = best(lambda: run_fundarb(market, levs))
    vbt_s = best(lambda: run_vbt(market, levs).final_value())
    fa_rate = bars * args.sets / fa_s
    vbt_rate = bars * args.sets / vbt_s
    print(f"BTC 1h {market.index[0]:%Y-%m-%d} → {market.index[-1]:%Y-%m-%d}: {bars} bars × {args.sets} sets, "
          f"weekly re-size, taker fees; best of {max(1, args.repeat)} runs each")
    print(f"vectorbt {vbt.__version__} from_orders (2 cols/set, cash shared): {vbt_rate:>14,.0f} bar-sets/s   "
          f"1.0x (baseline, {vbt_s:.2f} s)")
    print(f"fundarb sweep mode (full model):                {fa_rate:>14,.0f} bar-sets/s "
          f"{fa_rate / vbt_rate:>6.1f}x ({fa_s:.2f} s)")


if __name__ == "__main__":
    main()
