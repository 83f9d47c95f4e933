"""Walk-forward validation: folds, chaining, no look-ahead, the CLI and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.errors import ConfigError
from fundarb.sweeps.walkforward import walk_forward

ROOT = Path(__file__).resolve().parents[1]
GRID = {"window": ["3d", "7d"], "entry": [0.05, 0.1]}


@pytest.fixture(scope="module")
def demo():
    return fa.demo_market(days=400)


@pytest.fixture(scope="module")
def wf(demo):
    return walk_forward(demo, fa.FundingCarry(), GRID, train="120d", test="60d", costs=fa.Costs())


def test_folds_are_cut_and_chained(demo, wf):
    f = wf.folds
    assert len(f) == (400 - 120) // 60
    day = pd.Timedelta(days=1)
    assert (f["test_start"] - f["train_start"] == 120 * day).all()
    assert (f["test_end"] - f["test_start"] == 60 * day).all()
    assert (f["train_end"] == f["test_start"]).all() and (f["test_start"].diff().dropna() == 60 * day).all()
    # each test window starts with the previous fold's ending book equity
    assert f["test_capital"].iloc[0] == wf.capital == 3 * 10_000.0
    np.testing.assert_allclose(f["test_capital"].iloc[1:].to_numpy(), f["oos_final_equity"].iloc[:-1].to_numpy(),
                               rtol=1e-12)
    assert wf.stats["final_equity"] == f["oos_final_equity"].iloc[-1] == wf.equity.iloc[-1]
    assert wf.equity.index.is_monotonic_increasing and len(wf.equity) == len(f) * 60 * 24
    assert sum(wf.choices["window"].values()) == len(f)
    assert wf.overfitting_gap == pytest.approx(f["is_sharpe"].mean() - f["oos_sharpe"].mean())


def test_in_sample_is_the_best_point_of_the_train_sweep(demo, wf):
    row = wf.folds.iloc[1]
    sw = fa.sweep(demo.slice(row["train_start"], row["train_end"] - demo.timeframe), fa.FundingCarry(), GRID)
    assert row["is_sharpe"] == sw.table["sharpe"].max()
    best = sw.best("sharpe", 1).iloc[0]
    assert (row["window"], row["entry"]) == (best["window"], best["entry"])


def test_out_of_sample_is_the_warm_signals_backtested_from_the_test_start(demo, wf):
    # signals computed with the train window as warm-up, the account opened flat at the test start
    row = wf.folds.iloc[0]
    strat = fa.FundingCarry(window=row["window"], entry=row["entry"])
    warm = demo.slice(row["train_start"], row["test_end"] - demo.timeframe)
    test = demo.slice(row["test_start"], row["test_end"] - demo.timeframe)
    tgt = strat.targets(warm, fa.Costs()).loc[test.index]
    ref = fa.backtest(test, tgt, costs=fa.Costs(), capital=10_000.0).combined().stats().iloc[0]
    assert row["oos_final_equity"] == pytest.approx(ref["final_equity"], rel=1e-12)


def test_no_look_ahead(demo, wf):
    # changing every price and funding rate after fold 1's test window leaves folds 0 and 1 unchanged
    f = wf.folds
    cut = f["test_end"].iloc[1]
    arrays = {k: v.copy() for k, v in demo.arrays.items()}
    after = demo.index >= cut
    for key in ("funding_rate",):
        arrays[key][after] = -arrays[key][after] * 3 + 1e-3
    for key in ("spot_open", "spot_high", "spot_low", "spot_close", "perp_open", "mark_open", "mark_high",
                "mark_low", "mark_close"):
        arrays[key][after] = arrays[key][after] * 1.7
    changed = fa.MarketData(index=demo.index, symbols=demo.symbols, arrays=arrays, timeframe=demo.timeframe,
                            events=demo.events, label="changed", synthetic=True)
    wf2 = walk_forward(changed, fa.FundingCarry(), GRID, train="120d", test="60d", costs=fa.Costs())
    pd.testing.assert_frame_equal(wf2.folds.iloc[:2], f.iloc[:2])
    assert not wf2.folds.iloc[2:].equals(f.iloc[2:])


def test_anchored_and_costs_reach_the_rotation(demo):
    costs = fa.Costs(spot_fee=0.002, perp_fee=0.002)
    a = walk_forward(demo, fa.TopNRotation(), {"n": [1, 2]}, train="200d", test="100d", anchored=True,
                     costs=costs, metric="final_equity")
    assert (a.folds["train_start"] == demo.index[0]).all() and len(a.folds) == 2
    assert a.capital == 10_000.0  # one portfolio account
    row = a.folds.iloc[0]
    strat = fa.TopNRotation(n=int(row["n"]))
    warm = demo.slice(row["train_start"], row["test_end"] - demo.timeframe)
    test = demo.slice(row["test_start"], row["test_end"] - demo.timeframe)
    ref = fa.backtest(test, strat.targets(warm, costs).loc[test.index],
                      weights=strat.weights(warm, costs).loc[test.index], costs=costs).stats().iloc[0]
    assert row["oos_final_equity"] == pytest.approx(ref["final_equity"], rel=1e-12)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"train": "500d"}, "train='500d' is longer than the data"),
    ({"test": "401d"}, "test='401d' is longer than the data"),
    ({"train": "300d", "test": "150d"}, "no whole fold fits"),
    ({"train": "5d", "test": "10d"}, "shorter than the grid's longest filter window"),
    ({"metric": "sharp"}, "did you mean 'sharpe'"),
    ({"train": "soon"}, "cannot read duration"),
])
def test_bad_input(demo, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        walk_forward(demo, fa.FundingCarry(), GRID, **kwargs)
    with pytest.raises(ConfigError, match="empty grid"):
        walk_forward(demo, fa.FundingCarry(), {})


def test_cli(tmp_path, capsys):
    from fundarb.cli import main

    js, png, rep = tmp_path / "wf.json", tmp_path / "wf.png", tmp_path / "wf.html"
    toml = str(ROOT / "strategies" / "binance_bot.toml")
    assert main(["walk-forward", toml, "--grid", "window=3d,7d", "--grid", "entry=0.05,0.1", "--train", "180d",
                 "--test", "90d", "--json", str(js), "--plot", str(png), "--report", str(rep)]) == 0
    out = capsys.readouterr().out
    assert "overfitting gap" in out and "SYNTHETIC" in out
    doc = json.loads(js.read_text())
    assert doc["capital"] == 30_000.0 and len(doc["folds"]) == (730 - 180) // 90
    fold = doc["folds"][0]
    assert set(fold) == {"train_start", "train_end", "test_start", "test_end", "params", "in_sample", "out_of_sample"}
    assert set(fold["params"]) == {"window", "entry"} and "sharpe" in fold["in_sample"]
    assert doc["out_of_sample"]["final_equity"] == doc["folds"][-1]["out_of_sample"]["final_equity"]
    assert png.stat().st_size > 5_000
    page = rep.read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    assert page.count("<tr><td>") == len(doc["folds"]) and "overfitting gap" in page and "data:image/png" in page
    assert f"{doc['out_of_sample']['final_equity']:,.2f}" in page
    for args, msg in [(["--train", "900d"], "longer than the data"), (["--train", "2d"], "longest filter window"),
                      (["--grid", "windw=3d"], "did you mean 'window'")]:
        base = ["walk-forward", toml, *(["--grid", "entry=0.1"] if "--grid" not in args else []), *args]
        assert main(base) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and msg in err
