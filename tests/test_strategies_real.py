"""Every shipped strategy file manages margin: no liquidation on BTC and ETH 2020-01-01 → 2026-05-01.

The values in the files come from research/margin_management.py; the stress file keeps margin management
off on purpose and is liquidated on the same data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import fundarb as fa

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"
MANAGED = ("binance_bot", "carry_7d", "reverse_only", "top3_rotation")


@pytest.fixture(scope="module")
def majors(shared_data: Path) -> fa.MarketData:
    return fa.load_freqtrade(shared_data / "binance", ["BTC", "ETH"]).slice("2020-01-01", "2026-05-01")


def test_every_strategy_file_is_listed() -> None:
    assert {p.stem for p in STRATEGIES.glob("*.toml")} == {*MANAGED, "stress_no_rebalance"}


@pytest.mark.parametrize("name", MANAGED)
def test_shipped_file_manages_margin_without_liquidation(majors: fa.MarketData, name: str) -> None:
    spec = fa.load_strategy(STRATEGIES / f"{name}.toml")
    s = spec.strategy
    assert s.rebalance_at is not None and 0 < s.rebalance_at < 1
    if s.direction != "carry":
        assert s.spot_rebalance_level is not None and s.spot_rebalance_level > 1.10
    res = fa.run_strategy(majors, spec, mode="sweep")
    st = res.stats()
    assert (st["n_trades"] >= 4).all()  # it trades: a file that never enters proves nothing
    assert st["n_liquidations"].tolist() == [0] * len(st)
    assert not any("margin management off" in w for w in res.warnings)


def test_stress_file_has_margin_management_off_and_is_liquidated(majors: fa.MarketData) -> None:
    spec = fa.load_strategy(STRATEGIES / "stress_no_rebalance.toml")
    s = spec.strategy
    assert s.rebalance_at is None and s.spot_rebalance_level is None and not s.rebalance_every
    res = fa.run_strategy(majors, spec)
    assert res.stats()["n_liquidations"].sum() > 0
    assert any("margin management off" in w for w in res.warnings)
