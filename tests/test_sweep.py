"""Parameter sweeps: one kernel call, equal to running each grid point on its own."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.errors import ConfigError
from fundarb.sweeps.grid import sweep
from toy import random_market


@dataclass(frozen=True)
class Threshold:
    """Carry when the last settled rate exceeds ``entry``, reverse below −entry (a test strategy)."""

    entry: float = 1e-4
    leverage: float = 1.0
    rebalance_every: str | None = None

    def targets(self, market):
        f = market["funding_rate"].ffill().fillna(0.0)
        d = np.where(f > self.entry, 1, np.where(f < -self.entry, -1, 0))
        return pd.DataFrame(d, index=market.index, columns=market["funding_rate"].columns).shift(1).fillna(0)

    def engine_options(self):
        return {"leverage": self.leverage, "rebalance_every": self.rebalance_every}


def test_sweep_equals_individual_backtests():
    rng = np.random.default_rng(8)
    m = random_market(rng, 400, symbols=2, vol=0.015, wick=0.02)
    grid = {"entry": [0.0, 1e-4, 3e-4], "leverage": [1.0, 4.0]}
    sw = sweep(m, Threshold(), grid, costs=fa.Costs(), chunk_size=4)
    assert len(sw.per_symbol) == 3 * 2 * 2 and len(sw.table) == 3 * 2
    for _, row in sw.per_symbol.iterrows():
        s = Threshold(entry=row["entry"], leverage=row["leverage"])
        single = fa.backtest(m.select(row["symbol"]), s, leverage=row["leverage"], costs=fa.Costs(),
                             mode="sweep").stats().iloc[0]
        for key in ("final_equity", "sharpe", "n_trades", "funding_pnl", "max_drawdown"):
            assert row[key] == pytest.approx(single[key], rel=1e-12, nan_ok=True), key
    heat = sw.heatmap("entry", "leverage", "final_equity")
    assert heat.shape == (2, 3)
    assert sw.best("final_equity", 1)["final_equity"].iloc[0] == sw.table["final_equity"].max()
    detail = sweep(m, Threshold(), grid, costs=fa.Costs(), mode="detail")
    pd.testing.assert_frame_equal(detail.table, sw.table)
    pd.testing.assert_frame_equal(detail.per_symbol, sw.per_symbol)
    assert detail.result is not None and detail.result.identity_error() < 1e-9


def test_sweep_rejects_unknown_fields():
    m = random_market(np.random.default_rng(1), 50)
    with pytest.raises(ConfigError, match="did you mean 'entry'"):
        sweep(m, Threshold(), {"entri": [1e-4]})
    sw = sweep(m, Threshold(), {"entry": [1e-4, 2e-4]})
    with pytest.raises(ConfigError, match="did you mean 'sharpe'"):
        sw.best("sharp")
    with pytest.raises(ConfigError, match="both 'entry'"):
        sw.heatmap("entry", "entry", "sharpe")
    with pytest.raises(ConfigError, match="empty grid"):
        sweep(m, Threshold(), {})
    with pytest.raises(ConfigError, match="non-empty list"):
        sweep(m, Threshold(), {"entry": []})


def test_public_sweep_is_the_function_even_after_the_package_is_imported():
    import fundarb.sweeps.grid  # noqa: F401

    assert callable(fa.sweep)


def test_invalid_grid_points_are_skipped_and_listed():
    m = random_market(np.random.default_rng(2), 100)
    sw = sweep(m, fa.FundingCarry(), {"entry": [0.05, 0.2], "exit": [0.0, 0.1]})
    assert len(sw.table) == 3 and len(sw.skipped) == 1
    assert sw.skipped[0][0] == {"entry": 0.05, "exit": 0.1} and "exit" in sw.skipped[0][1]
    with pytest.raises(ConfigError):
        sweep(m, fa.FundingCarry(), {"entry": [0.05], "exit": [0.1]}, skip_invalid=True)


def test_heatmap_keeps_grid_order_and_cli_sweep(tmp_path, capsys):
    from fundarb.cli import main

    m = random_market(np.random.default_rng(3), 300)
    sw = sweep(m, fa.FundingCarry(), {"window": ["14d", "3d", "7d"], "entry": [0.2, 0.05]})
    heat = sw.heatmap("entry", "window", "cagr")
    assert list(heat.index) == ["14d", "3d", "7d"] and list(heat.columns) == [0.2, 0.05]
    root = Path(__file__).resolve().parents[1]
    png, csv = tmp_path / "h.png", tmp_path / "s.csv"
    assert main(["sweep", str(root / "strategies" / "carry_7d.toml"), "--grid", "window=3d,7d",
                 "--grid", "entry=0.05,0.1", "--heatmap", str(png), "--x", "entry", "--y", "window",
                 "--csv", str(csv)]) == 0
    assert png.stat().st_size > 5_000 and len(pd.read_csv(csv)) == 2 * 2
    assert "SYNTHETIC" in capsys.readouterr().out
    assert main(["sweep", str(root / "strategies" / "carry_7d.toml"), "--grid", "windw=3d"]) == 2
    assert "did you mean 'window'" in capsys.readouterr().err


# ------------------------------------------------------------------ grid values keep their type
def test_cli_grid_values_keep_their_type():
    from fundarb.sweeps.spec import grid_from_args, parse_grid_value

    assert [parse_grid_value(v) for v in ("1", "-2", "1.5", "1e-4", "inf", "3d", "none", "auto")] == [
        1, -2, 1.5, 1e-4, math.inf, "3d", None, "auto"]
    assert type(parse_grid_value("1")) is int and type(parse_grid_value("1.0")) is float
    g = grid_from_args(["n=1,2", "rebalance_every=24,168", "rebalance_at=1.5,inf"])
    assert g == {"n": [1, 2], "rebalance_every": [24, 168], "rebalance_at": [1.5, math.inf]}
    with pytest.raises(ConfigError, match="two --grid flags"):
        grid_from_args(["n=1,2", "n=3"])
    with pytest.raises(ConfigError, match="FIELD=v1"):
        grid_from_args(["n"])
    with pytest.raises(ConfigError, match="twice"):
        grid_from_args(["n=1,1"])


def test_numpy_scalars_are_accepted():
    m = random_market(np.random.default_rng(4), 200, symbols=2)
    a = sweep(m, fa.TopNRotation(), {"n": np.array([1, 2]), "entry": np.array([0.05, 0.1])})
    b = sweep(m, fa.TopNRotation(), {"n": [1, 2], "entry": [0.05, 0.1]})
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.table["n"].tolist() == [1, 1, 2, 2]


def test_cli_bad_grids_exit_2(capsys, tmp_path):
    from fundarb.cli import main

    root = Path(__file__).resolve().parents[1]
    rot = str(root / "strategies" / "top3_rotation.toml")
    cases = [
        (["--grid", "n=1,2", "--grid", "n=3"], "two --grid flags"),
        (["--grid", "n=1,2", "--grid", "entry=0.1,0.2", "--heatmap", str(tmp_path / "h.png"), "--x", "n",
          "--y", "n"], "both 'n'"),
        (["--grid", "nn=1,2"], "did you mean 'n'"),
        ([], "empty grid"),
        (["--grid", "n=1", "--grid-file", str(tmp_path / "missing.toml")], "not found"),
        (["--grid", "n=1", "--metric", "sharp"], "did you mean 'sharpe'"),
    ]
    for args, msg in cases:
        assert main(["sweep", rot, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error:") and msg in err and "Traceback" not in err, (args, err)
    assert not (tmp_path / "h.png").exists()


def test_cli_sweeps_integer_fields(capsys, tmp_path):
    from fundarb.cli import main

    root = Path(__file__).resolve().parents[1]
    csv = tmp_path / "s.csv"
    assert main(["sweep", str(root / "strategies" / "top3_rotation.toml"), "--grid", "n=1,2",
                 "--grid", "rebalance_every=24,168", "--csv", str(csv), "--start", "2024-01-01"]) == 0
    t = pd.read_csv(csv)
    assert len(t) == 4 and t["n"].tolist() == [1, 1, 2, 2] and t["rebalance_every"].tolist() == [24, 168, 24, 168]


# ------------------------------------------------------------------ book-level sweeps
def _book(result):
    return (result.combined() if len(result.groups) > 1 and not result.portfolio else result).stats().iloc[0]


KEYS = ("final_equity", "sharpe", "sortino", "max_drawdown", "n_trades", "funding_pnl", "fees", "time_in_market")


def _assert_row(row, ref):
    for key in KEYS:
        assert row[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-9, nan_ok=True), key


def test_book_row_equals_run_strategy_carry_cross_and_rotation():
    m = fa.demo_market(days=120)
    costs = fa.Costs(spot_fee=0.002, perp_fee=0.002)
    cases = [
        (fa.FundingCarry(), {"window": ["3d", "7d"], "entry": [0.05, 0.1], "margin_mode": ["isolated", "cross"]}),
        (fa.TopNRotation(n=2), {"n": [1, 2], "hysteresis": [0.0, 0.05]}),
    ]
    for base, grid in cases:
        sw = sweep(m, base, grid, costs=costs, capital=5_000.0, chunk_size=3)
        assert len(sw.table) == np.prod([len(v) for v in grid.values()])
        for _, row in sw.table.iterrows():
            strat = dataclass_replace(base, **{f: row[f] for f in grid})
            _assert_row(row, _book(fa.run_strategy(m, strat, costs=costs, capital=5_000.0)))
    # the ranking is by the book: the best row is the best book, not the best single symbol
    assert sw.best("sharpe", 1)["sharpe"].iloc[0] == sw.table["sharpe"].max()


def test_book_row_equals_cli_backtest(tmp_path):
    import json

    from fundarb.cli import main

    root = Path(__file__).resolve().parents[1]
    toml = root / "strategies" / "carry_7d.toml"
    m_args = ["--start", "2024-06-01"]
    csv = tmp_path / "s.csv"
    assert main(["sweep", str(toml), "--grid", "entry=0.05,0.1", *m_args, "--csv", str(csv)]) == 0
    table = pd.read_csv(csv)
    spec = fa.load_strategy(toml)
    for _, row in table.iterrows():
        text = toml.read_text().replace(f"entry = {spec.strategy.entry}", f"entry = {row['entry']}")
        f = tmp_path / "s.toml"
        f.write_text(text)
        out = tmp_path / "b.json"
        assert main(["backtest", str(f), *m_args, "--json", str(out)]) == 0
        ref = _book(fa.run_strategy(fa.demo_market().slice("2024-06-01"), fa.load_strategy(f)))
        assert row["final_equity"] == pytest.approx(ref["final_equity"], rel=1e-9)
        assert row["sharpe"] == pytest.approx(ref["sharpe"], rel=1e-9)
        assert json.loads(out.read_text())


def dataclass_replace(obj, **kw):
    import dataclasses

    return dataclasses.replace(obj, **{k: (v.item() if isinstance(v, np.generic) else v) for k, v in kw.items()})


def test_heatmap_says_what_a_cell_is():
    m = random_market(np.random.default_rng(6), 300, symbols=2)
    sw = sweep(m, fa.FundingCarry(), {"window": ["1d", "2d"], "entry": [0.05, 0.1], "leverage": [1, 2]})
    h = sw.heatmap("entry", "window", "sharpe")
    assert "book sharpe" in h.attrs["title"] and "max over leverage" in h.attrs["title"]
    sel = sw.table[(sw.table["window"] == "1d") & (sw.table["entry"] == 0.05)]["sharpe"].max()
    assert h.loc["1d", 0.05] == sel
    fixed = sw.heatmap("entry", "window", "sharpe", fixed={"leverage": 2})
    assert "leverage=2" in fixed.attrs["title"] and "max over" not in fixed.attrs["title"]
    row = sw.table[(sw.table["window"] == "2d") & (sw.table["entry"] == 0.1) & (sw.table["leverage"] == 2)]
    assert fixed.loc["2d", 0.1] == row["sharpe"].iloc[0]


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    given = None


if given is not None:
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 10_000), kind=st.sampled_from(["carry", "rotation"]),
           windows=st.lists(st.sampled_from(["1d", "2d", "3d"]), min_size=1, max_size=2, unique=True),
           entries=st.lists(st.sampled_from([0.0, 0.05, 0.2]), min_size=1, max_size=2, unique=True),
           leverage=st.sampled_from([1, 2.5]), margin_mode=st.sampled_from(["isolated", "cross"]),
           fee=st.sampled_from([0.0, 0.001, 0.004]), chunk=st.integers(1, 3))
    def test_sweep_equals_run_strategy_property(seed, kind, windows, entries, leverage, margin_mode, fee, chunk):
        m = random_market(np.random.default_rng(seed), 240, symbols=2, interval_change=False)
        base = (fa.FundingCarry(leverage=leverage, margin_mode=margin_mode) if kind == "carry"
                else fa.TopNRotation(n=1, leverage=leverage, margin_mode=margin_mode, hysteresis=0.0))
        costs = fa.Costs(spot_fee=fee, perp_fee=fee)
        grid = {"window": windows, "entry": entries}
        sw = sweep(m, base, grid, costs=costs, chunk_size=chunk)
        for _, row in sw.table.iterrows():
            strat = dataclass_replace(base, window=row["window"], entry=row["entry"])
            _assert_row(row, _book(fa.run_strategy(m, strat, costs=costs)))


@pytest.mark.parametrize(("grid_file", "toml"), [("carry_window_entry.toml", "binance_bot.toml"),
                                                  ("carry_leverage.toml", "carry_7d.toml"),
                                                  ("rotation.toml", "top3_rotation.toml")])
def test_example_grid_files(grid_file, toml, tmp_path):
    from fundarb.cli import main
    from fundarb.sweeps.spec import grid_from_args

    root = Path(__file__).resolve().parents[1]
    path = str(root / "strategies" / "grids" / grid_file)
    grid = grid_from_args([], path)
    strategy = fa.load_strategy(root / "strategies" / toml).strategy
    fields = set(strategy.field_names())
    assert set(grid) <= fields and all(len(v) >= 2 for v in grid.values())
    csv = tmp_path / "s.csv"
    assert main(["sweep", str(root / "strategies" / toml), "--grid-file", path, "--start", "2024-10-01",
                 "--csv", str(csv)]) == 0
    assert len(pd.read_csv(csv)) == np.prod([len(v) for v in grid.values()]) - len(
        fa.sweep(fa.demo_market().slice("2024-10-01"), strategy, grid).skipped)
    with pytest.raises(ConfigError, match=r"in .* and in --grid"):
        grid_from_args([f"{next(iter(grid))}=1"], path)


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys, monkeypatch):
    from fundarb.sweeps.distributed import progress_enabled

    m = random_market(np.random.default_rng(9), 120, symbols=2)
    sweep(m, fa.FundingCarry(), {"entry": [0.05, 0.1, 0.2]}, chunk_size=1, progress=True)
    err = capsys.readouterr().err
    assert "sweep: 100%" in err and "3/3" in err
    sweep(m, fa.FundingCarry(), {"entry": [0.05, 0.1, 0.2]}, chunk_size=1)  # not a terminal here
    assert capsys.readouterr().err == ""
    assert not progress_enabled(True, 1)  # one chunk: no bar
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled(None, 5)
