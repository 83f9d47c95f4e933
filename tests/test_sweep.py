"""Parameter sweeps: one kernel call, equal to running each grid point on its own."""

from __future__ import annotations

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
    sw = sweep(m, Threshold(), grid, costs=fa.Costs())
    assert len(sw.table) == 3 * 2 * 2
    for _, row in sw.table.iterrows():
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
    assert detail.result.identity_error() < 1e-9


def test_sweep_rejects_unknown_fields():
    m = random_market(np.random.default_rng(1), 50)
    with pytest.raises(ConfigError, match="did you mean 'entry'"):
        sweep(m, Threshold(), {"entri": [1e-4]})
    sw = sweep(m, Threshold(), {"entry": [1e-4, 2e-4]})
    with pytest.raises(ConfigError, match="did you mean 'sharpe'"):
        sw.heatmap("entry", "entry", "sharp")


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
    assert png.stat().st_size > 5_000 and len(pd.read_csv(csv)) == 2 * 2 * 3
    assert "SYNTHETIC" in capsys.readouterr().out
    assert main(["sweep", str(root / "strategies" / "carry_7d.toml"), "--grid", "windw=3d"]) == 2
    assert "did you mean 'window'" in capsys.readouterr().err
