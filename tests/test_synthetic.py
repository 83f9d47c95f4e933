"""The synthetic demo dataset: deterministic, complete, calibrated, with the events it promises."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.data.synthetic import (
    ETH_WICK_BAR,
    WICK_BAR,
    XTZ_CHANGE_BAR,
    calibration_table,
    demo_frames,
    demo_market,
    funding_stats,
)


@pytest.fixture(scope="module")
def demo():
    return demo_market()


def test_deterministic_and_seeded(demo):
    again = demo_market()
    for k in demo.arrays:
        np.testing.assert_array_equal(demo.arrays[k], again.arrays[k])
    for s in demo.symbols:
        pd.testing.assert_series_equal(demo.events[s], again.events[s])
    other = demo_frames(seed=8)
    for j, fr in enumerate(other):
        assert not np.array_equal(fr.spot["close"].to_numpy(), demo.arrays["spot_close"][:, j])
        assert not np.array_equal(fr.funding.to_numpy(), demo.events[fr.symbol].to_numpy())


def test_label_says_synthetic(demo):
    assert demo.synthetic is True
    assert demo.label == "demo (synthetic)"
    assert all(s.startswith("DEMO") for s in demo.symbols)
    assert demo.describe()["synthetic"].all()


def test_shape_and_coverage(demo):
    assert demo.symbols == ("DEMOBTC", "DEMOETH", "DEMOXTZ")
    assert demo.timeframe == pd.Timedelta("1h")
    assert len(demo) == 730 * 24 and demo.index[0] == pd.Timestamp("2023-01-01", tz="UTC")
    assert (np.diff(demo.index.asi8) == 3_600_000_000_000).all()
    for k in ("spot_open", "spot_close", "perp_close", "mark_close", "spot_volume", "perp_volume"):
        assert not np.isnan(demo.arrays[k]).any(), k
    assert (demo.arrays["mark_fallback"] == 0).all()
    d = demo.describe()
    assert (d[["spot_gap_bars", "perp_gap_bars", "mark_gap_bars", "missing_events"]] == 0).all().all()
    assert (d["bars"] == len(demo)).all()
    assert demo.active().all()
    assert (demo.arrays["spot_volume"] > 0).all() and (demo.arrays["perp_volume"] > 0).all()


def test_ohlc_consistent(demo):
    for leg in ("spot", "perp", "mark"):
        o, h, lo, c = (demo.arrays[f"{leg}_{p}"] for p in ("open", "high", "low", "close"))
        assert (lo > 0).all()
        assert (lo <= np.minimum(o, c)).all() and (h >= np.maximum(o, c)).all(), leg


def test_mark_follows_perp_and_basis_follows_funding(demo):
    gap = np.abs(demo.arrays["mark_close"] / demo.arrays["perp_close"] - 1)
    assert np.median(gap) < 1e-4 and gap.max() < 1e-3
    basis = demo.arrays["perp_close"] / demo.arrays["spot_close"] - 1
    assert np.abs(basis).max() < 0.02
    for j, s in enumerate(demo.symbols):
        ev = demo.events[s]
        pos = demo.index.get_indexer(ev.index)
        before = basis[pos - 1, j][pos > 0]        # the basis just before each event
        rate = ev.to_numpy()[pos > 0]
        # well above the interest rate: premium positive; negative funding: premium negative
        if s != "DEMOXTZ":  # XTZ-like: no bull episodes, as on real XTZ in 2025-26
            assert np.mean(before[rate > 0.0003] > 0) > 0.9, s
        assert np.mean(before[rate < -0.0001] < 0) > 0.9, s


def test_calibrated_to_binance_btc(demo):
    btc = funding_stats(demo.events["DEMOBTC"])
    assert btc["share at interest"] == pytest.approx(0.40, abs=0.08)     # real: 36% (2019-2026), 41% (2020-2024)
    assert btc["mean annualised"] == pytest.approx(0.153, abs=0.04)      # real: 15.3% (2020-01-08 → 2024-03-11)
    assert btc["std annualised"] == pytest.approx(0.278, abs=0.08)       # real: 27.8%
    assert btc["share positive"] == pytest.approx(0.87, abs=0.06)        # real: 85-87%
    assert (demo.events["DEMOBTC"] == 0.0001).mean() == btc["share at interest"]
    eth = funding_stats(demo.events["DEMOETH"])
    assert 0.10 < eth["mean annualised"] < 0.40 and eth["share at interest"] == pytest.approx(0.40, abs=0.08)
    xtz = funding_stats(demo.events["DEMOXTZ"])
    assert xtz["mean annualised"] == pytest.approx(-0.124, abs=0.05)     # real XTZ 2025-05 → 2026-05: −12.4%


def test_regimes_bursts_negative_episodes_and_capped_spikes(demo):
    for s in ("DEMOBTC", "DEMOETH"):
        ev = demo.events[s]
        # calm stretches: a day or more settling at exactly the interest rate
        assert ((ev == 0.0001).astype(int).rolling(3).sum() == 3).any(), s
        # positive bursts: three days with every event above the interest rate, averaging over 0.05% per 8h
        assert ((ev.rolling(9).min() > 0.0001) & (ev.rolling(9).mean() > 0.0005)).any(), s
        # negative episodes: two days of negative funding in a row
        assert (ev.rolling(6).max() < 0).any(), s
        # a spike capped at +0.3% per 8h, and nothing beyond the cap
        assert ev.max() == 0.003 and ev.min() >= -0.003, s
    assert demo.events["DEMOETH"].min() == -0.003     # the ETH crash, capped
    assert demo.events["DEMOETH"]["2024-04-23":"2024-04-26"].min() == -0.003
    assert demo.events["DEMOBTC"]["2023-04-06":"2023-04-07"].max() == 0.003
    xtz = demo.events["DEMOXTZ"]
    assert xtz.min() == -0.0075 and xtz.max() <= 0.0075
    assert xtz[demo.index[XTZ_CHANGE_BAR]] == -0.0075   # the capped event just before the interval change


def test_interval_change_detected(demo):
    segs = demo.funding_intervals("DEMOXTZ")
    assert [s.hours for s in segs] == [8.0, 1.0, 4.0]
    assert segs[0].last == pd.Timestamp("2023-10-21 08:00", tz="UTC") == demo.index[XTZ_CHANGE_BAR]
    assert segs[1].first == pd.Timestamp("2023-10-21 09:00", tz="UTC") and segs[1].events == 48
    for s in ("DEMOBTC", "DEMOETH"):
        assert [g.hours for g in demo.funding_intervals(s)] == [8.0]
    # 1h and 4h events settle the interest rate scaled to their interval
    assert (demo.events["DEMOXTZ"]["2024-06":] == 0.00005).any()


def test_wick_liquidates_ten_x_short(demo):
    wick = demo.arrays["mark_high"] / demo.arrays["mark_open"] - 1
    assert wick.max() > 0.10
    assert wick[WICK_BAR, 0] > 0.10 and demo.index[WICK_BAR] == pd.Timestamp("2023-07-20 13:00", tz="UTC")
    down = 1 - demo.arrays["mark_low"] / demo.arrays["mark_open"]
    assert down[ETH_WICK_BAR, 1] > 0.10 and demo.index[ETH_WICK_BAR] == pd.Timestamp("2024-04-25 05:00", tz="UTC")
    m = demo.select("DEMOBTC").slice(demo.index[WICK_BAR - 48], demo.index[WICK_BAR + 48])
    r = fa.backtest(m, 1, leverage=10.0, costs=fa.Costs.zero())
    liq = r.liquidations
    assert len(liq) == 1 and liq["time"][0] == demo.index[WICK_BAR]


def test_shorter_spans_and_other_starts():
    m = demo_market(days=30, start="2024-06-01")
    assert len(m) == 30 * 24 and m.index[0] == pd.Timestamp("2024-06-01", tz="UTC")
    assert [s.hours for s in m.funding_intervals("DEMOXTZ")] == [8.0]


def test_fast_and_calibration_table(demo):
    t0 = time.perf_counter()
    demo_market()
    elapsed = time.perf_counter() - t0
    assert elapsed < 10  # about 0.05 s here; the 2 s budget is checked generously to avoid flakiness
    table = calibration_table()
    assert {"DEMOBTC (synthetic)", "DEMOETH (synthetic)", "DEMOXTZ (synthetic)"} <= set(table.columns)
    assert "mean annualised" in table.index and "share at interest" in table.index
    without = calibration_table("/nonexistent")
    assert list(without.columns) == ["DEMOBTC (synthetic)", "DEMOETH (synthetic)", "DEMOXTZ (synthetic)"]
