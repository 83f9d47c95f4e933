"""The synthetic demo dataset: deterministic, complete, with the events it promises."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.data.synthetic import WICK_BAR, calibration_table, demo_frames, demo_market


@pytest.fixture(scope="module")
def demo():
    return demo_market()


def test_deterministic_and_seeded(demo):
    again = demo_market()
    for k in demo.arrays:
        np.testing.assert_array_equal(demo.arrays[k], again.arrays[k])
    other = demo_frames(seed=8)[0]
    assert not np.array_equal(other.spot["close"].to_numpy(), demo.arrays["spot_close"][:, 0])


def test_shape_labels_and_consistency(demo):
    assert demo.symbols == ("DEMOBTC", "DEMOETH", "DEMOXTZ")
    assert demo.synthetic and "synthetic" in demo.label
    assert len(demo) > 700 * 24 and demo.timeframe == pd.Timedelta("1h")
    d = demo.describe()
    assert (d[["spot_gap_bars", "perp_gap_bars", "mark_gap_bars", "missing_events"]] == 0).all().all()
    for leg in ("spot", "perp", "mark"):
        o, h, lo, c = (demo.arrays[f"{leg}_{p}"] for p in ("open", "high", "low", "close"))
        ok = ~np.isnan(o)
        assert (lo[ok] <= np.minimum(o, c)[ok] + 1e-12).all() and (h[ok] >= np.maximum(o, c)[ok] - 1e-12).all()


def test_funding_regimes(demo):
    btc = demo.events["DEMOBTC"]
    assert (btc == 0.0001).mean() == pytest.approx(0.36, abs=0.15)  # calm stretches at the interest rate
    assert btc.mean() * 1095 == pytest.approx(0.153, abs=0.03)       # calibrated to BTC 2020-2024
    assert btc.max() == pytest.approx(0.003)                          # a capped spike
    assert (btc < 0).mean() > 0.05                                    # negative episodes
    # positive bursts: three days with every event above the interest rate, averaging over 0.05% per 8h
    burst = (btc.rolling(9).min() > 0.0001) & (btc.rolling(9).mean() > 0.0005)
    assert burst.any()
    xtz = demo.events["DEMOXTZ"]
    assert xtz.min() == pytest.approx(-0.0075) and xtz.mean() < 0


def test_interval_change_detected(demo):
    segs = demo.funding_intervals("DEMOXTZ")
    assert [s.hours for s in segs] == [8.0, 1.0, 4.0]
    assert segs[1].events == 48


def test_wick_liquidates_ten_x_short(demo):
    i = WICK_BAR
    assert demo.arrays["mark_high"][i, 0] / demo.arrays["mark_open"][i, 0] - 1 > 0.10
    m = demo.select("DEMOBTC").slice(demo.index[i - 48], demo.index[i + 48])
    r = fa.backtest(m, 1, leverage=10.0, costs=fa.Costs.zero())
    liq = r.liquidations
    assert len(liq) == 1 and liq["time"][0] == demo.index[i]


def test_fast_and_calibration_table(demo):
    t0 = time.perf_counter()
    demo_market()
    assert time.perf_counter() - t0 < 10  # about 0.7 s here; the bound only guards against a blow-up
    table = calibration_table()
    assert {"DEMOBTC (synthetic)", "DEMOETH (synthetic)"} <= set(table.columns)
