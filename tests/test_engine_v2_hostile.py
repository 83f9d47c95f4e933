"""Engine v2 under attack: sweeps' book rows, leverage refusals, streaming statistics, thread splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.engine import layout
from fundarb.engine.steps import update_streaming_stats_nb
from fundarb.errors import ConfigError
from fundarb.results.result import streaming_totals
from toy import random_market, random_targets


def _book(result):
    return (result.combined() if len(result.groups) > 1 and not result.portfolio else result).stats().iloc[0]


def test_sweep_book_counts_the_liquidations_of_independent_accounts():
    """A point of independent accounts is scored by the summed curve; its liquidations are the accounts' own (the
    book mode used to report 0)."""
    m = random_market(np.random.default_rng(11), 300, symbols=3, vol=0.04, wick=0.06)
    grid = {"entry": [0.0], "margin_mode": ["isolated", "cross"], "leverage": [2, 20]}
    for mode in ("sweep", "detail"):
        sw = fa.sweep(m, fa.FundingCarry(window="1d"), grid, capital=7_000.0, mode=mode)
        for _, row in sw.table.iterrows():
            strat = fa.FundingCarry(window="1d", entry=0.0, margin_mode=row["margin_mode"],
                                    leverage=int(row["leverage"]))
            ref = _book(fa.run_strategy(m, strat, capital=7_000.0))
            for key in ("n_liquidations", "n_trades", "final_equity", "sharpe", "max_drawdown", "time_in_market"):
                assert row[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-9, nan_ok=True), (mode, key)
        iso = sw.table[sw.table["margin_mode"] == "isolated"]
        assert (iso["n_liquidations"] > 0).any()
        per = sw.per_symbol[sw.per_symbol["margin_mode"] == "isolated"]
        assert iso["n_liquidations"].sum() == per["n_liquidations"].sum()


@pytest.mark.parametrize(("mmr", "bad"), [(0.005, 130), (0.01, 100)])
def test_sweep_refuses_the_leverage_run_strategy_refuses(mmr, bad):
    """Above 125× with a flat mmr, or 1/L at or below the tier's rate: run_strategy raises, so the sweep skips the
    point (or raises naming the leverage) instead of scoring it."""
    m = random_market(np.random.default_rng(1), 120, symbols=2)
    with pytest.raises(ConfigError, match=f"{bad}"):
        fa.backtest(m, fa.FundingCarry(), leverage=bad, mmr=mmr)
    sw = fa.sweep(m, fa.FundingCarry(), {"leverage": [2, bad, 3]}, mmr=mmr)
    assert list(sw.table["leverage"]) == [2, 3]
    assert [p for p, _ in sw.skipped] == [{"leverage": bad}]
    assert f"{bad}" in sw.skipped[0][1]
    ok = fa.sweep(m, fa.FundingCarry(), {"leverage": [2, 3]}, mmr=mmr)
    pd.testing.assert_frame_equal(ok.table, sw.table)
    with pytest.raises(ConfigError, match=rf"grid point \{{'leverage': {bad}\}}: leverage"):
        fa.sweep(m, fa.FundingCarry(), {"leverage": [2, bad]}, mmr=mmr, skip_invalid=False)
    with pytest.raises(ConfigError, match="every grid point was rejected"):
        fa.sweep(m, fa.FundingCarry(), {"leverage": [bad]}, mmr=mmr)


def test_sweep_tier_check_is_per_capital():
    """With tiers the refusal depends on the entry's notional: a leverage fine for a small capital is refused for a
    large one, as backtest refuses it."""
    m = random_market(np.random.default_rng(2), 120, symbols=1)
    tiers = np.array([[0.0, 50_000.0, 0.004, 0.0], [50_000.0, np.inf, 0.02, 800.0]])
    fa.backtest(m, 1, leverage=60, capital=10_000.0, tiers=tiers)
    with pytest.raises(ConfigError, match="leverage 60"):
        fa.backtest(m, 1, leverage=[2, 60], capital=[10_000.0, 1e6], tiers=tiers)
    small = fa.sweep(m, fa.FundingCarry(), {"leverage": [2, 60]}, capital=10_000.0, tiers=tiers)
    big = fa.sweep(m, fa.FundingCarry(), {"leverage": [2, 60]}, capital=1e6, tiers=tiers)
    assert list(small.table["leverage"]) == [2, 60] and small.skipped == ()
    assert list(big.table["leverage"]) == [2] and "leverage 60" in big.skipped[0][1]


def _kernel_fold(eq: np.ndarray, capital: float, first: int) -> dict[int, float]:
    prev, s1, s2, sd, n, peak, ddb, mddb, mdd = capital, 0.0, 0.0, 0.0, 0.0, capital, 0.0, 0.0, 0.0
    for t in range(first, len(eq)):
        prev, s1, s2, sd, n, peak, ddb, mddb, mdd = update_streaming_stats_nb(eq[t], prev, s1, s2, sd, n, peak, ddb,
                                                                             mddb, mdd)
    return {layout.T_EQUITY: prev, layout.T_SUM_R: s1, layout.T_SUM_R2: s2, layout.T_SUM_DOWN2: sd,
            layout.T_N_R: n, layout.T_PEAK: peak, layout.T_MAX_DD_BARS: mddb, layout.T_MAX_DD: mdd}


def test_streaming_totals_equal_the_kernels_fold_with_ties_and_a_zero_equity():
    """numpy's statistics of a curve equal the kernel's fold bar by bar: flat stretches, new peaks, equity equal to
    the peak (not below it) and a zero equity (the next return is 0, not inf/NaN)."""
    rng = np.random.default_rng(0)
    for _ in range(400):
        T = int(rng.integers(1, 40))
        cap = 100.0
        eq = cap + np.cumsum(rng.choice([0.0, 1.0, -1.0, 2.0, -3.0], size=T))
        if rng.random() < 0.3:
            eq[rng.integers(0, T)] = 0.0
        first = int(rng.integers(0, T))
        got = streaming_totals(eq, cap, first, np.ones(T, dtype=bool))
        for i, v in _kernel_fold(eq, cap, first).items():
            assert got[i] == pytest.approx(v, rel=1e-12, abs=1e-12), layout.GTOTALS[i]
    eq = np.array([100.0, 99.0, 100.0, 99.0, 99.0, 101.0, 0.0, 0.0, 50.0])
    got = streaming_totals(eq, 100.0, 0, np.ones(9, dtype=bool))
    assert got[layout.T_MAX_DD_BARS] == 3 and got[layout.T_MAX_DD] == -1.0
    assert np.isfinite(got[layout.T_SUM_R]) and got[layout.T_SUM_R] == pytest.approx(-0.01 + 1 / 99 - 0.01 + 2 / 99 - 1)


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_thread_splits_with_overflowing_trade_logs(monkeypatch, threads):
    """Every account trades far more often than a range's first log holds (4 per member): the re-run ranges give
    the same log, series and totals for any split, and totals equal a run without a log."""
    from fundarb.engine import run

    rng = np.random.default_rng(5)
    m = random_market(rng, 200, symbols=3, vol=0.03, wick=0.04)
    pos = pd.DataFrame(random_targets(rng, 200, 3, p_change=0.6), index=m.index, columns=list(m.symbols))
    kw = dict(leverage=[1.0, 5.0, 20.0], capital=[1e3, 5e4], rebalance_at=[None, 0.5])
    monkeypatch.setattr(run, "kernel_threads", lambda: 1)
    ref = fa.backtest(m, pos, **kw)
    monkeypatch.setattr(run, "kernel_threads", lambda: threads)
    got = fa.backtest(m, pos, **kw)
    flat = fa.backtest(m, pos, mode="sweep", **kw)
    assert len(ref.records) > 4 * len(ref.members) + 64
    assert got.records.tobytes() == ref.records.tobytes()
    for f in ("series", "gseries", "mtotals", "gtotals"):
        assert np.array_equal(getattr(got, f), getattr(ref, f), equal_nan=True), f
    pd.testing.assert_frame_equal(got.stats(), flat.stats())
    trades = ref.trades
    assert (~trades["kind"].str.startswith("liquidation")).sum() == ref.stats()["n_trades"].sum()


def test_weights_in_every_accepted_form_give_the_numbers_of_the_full_frame():
    rng = np.random.default_rng(3)
    m = random_market(rng, 150, symbols=3, vol=0.02, wick=0.02)
    cols = list(m.symbols)
    pos = pd.DataFrame(random_targets(rng, 150, 3), index=m.index, columns=cols)
    vals = np.array([0.2, 0.3, 0.4])
    ref = fa.backtest(m, pos, weights=pd.DataFrame(np.tile(vals, (150, 1)), index=m.index, columns=cols))
    forms = [pd.Series(vals, index=cols), pd.Series(vals[::-1], index=cols[::-1]),
             pd.DataFrame(np.broadcast_to(vals, (150, 3)), index=m.index, columns=cols),
             pd.DataFrame(np.asfortranarray(np.tile(vals, (150, 1))), index=m.index, columns=cols)]
    for w in forms:
        pd.testing.assert_frame_equal(fa.backtest(m, pos, weights=w).stats(), ref.stats())
    for w, msg in [(pd.Series([np.nan, 0.3, 0.4], index=cols), "finite"),
                   (pd.Series([-0.1, 0.3, 0.4], index=cols), "≥ 0"), (pd.Series([0.5, 0.3, 0.4], index=cols), "sum"),
                   (pd.Series([True, False, True], index=cols), "booleans"), ([0.2, 0.3, 0.4], "Series"),
                   (pd.Series(0.3, index=m.index), "Series indexed by symbol")]:
        with pytest.raises(ConfigError, match=msg):
            fa.backtest(m, pos, weights=w)
    zero = fa.backtest(m, pos, weights=pd.Series(0.0, index=cols))
    assert zero.stats()["final_equity"].iloc[0] == 10_000.0 and zero.stats()["n_trades"].iloc[0] == 0


def test_mixed_grid_book_rows_equal_run_strategy_every_statistic():
    """Portfolio and independent-account points in one kernel call (a full weight array), any chunking, keep or not:
    every statistic of the book row equals run_strategy's."""
    m = fa.demo_market(days=60)
    costs = fa.Costs(spot_fee=0.001, perp_fee=0.001, borrow_rate=1e-5)
    grid = {"n": [1, 2], "margin_mode": ["isolated", "cross"], "leverage": [3, 30], "rebalance_at": [None, 0.6]}
    base = fa.TopNRotation(n=1)
    tables = [fa.sweep(m, base, grid, costs=costs, chunk_size=c).table for c in (1, 5)]
    tables.append(fa.sweep(m, base, grid, costs=costs, mode="detail").table)
    for t in tables[1:]:
        pd.testing.assert_frame_equal(t, tables[0])
    for _, row in tables[0].iterrows():
        pt = {f: (None if row[f] == "None" else row[f]) for f in grid}
        pt = {f: (v.item() if isinstance(v, np.generic) else v) for f, v in pt.items()}
        ref = _book(fa.run_strategy(m, dataclasses.replace(base, **pt), costs=costs))
        for key in ref.index:
            if key in row.index and isinstance(ref[key], int | float | np.number):
                assert row[key] == pytest.approx(ref[key], rel=1e-9, abs=1e-9, nan_ok=True), (pt, key)


@dataclasses.dataclass(frozen=True)
class _Carry:
    """Always carry; engine options unchecked by the strategy itself (a user's strategy)."""

    leverage: float = 1.0
    rebalance_every: str | None = None

    def targets(self, market):
        return 1

    def engine_options(self):
        return {"leverage": self.leverage, "rebalance_every": self.rebalance_every}


def test_sweep_checks_a_custom_strategys_engine_options_as_backtest_does():
    m = random_market(np.random.default_rng(1), 120, symbols=2)
    with pytest.raises(ConfigError, match="leverage must be > 0"):
        fa.backtest(m, 1, leverage=-1.0)
    sw = fa.sweep(m, _Carry(), {"leverage": [2.0, -1.0], "rebalance_every": [None, "banana"]})
    assert sw.table[["leverage", "rebalance_every"]].to_numpy().tolist() == [[2.0, "None"]]
    why = dict((tuple(p.values()), w) for p, w in sw.skipped)
    assert why[(-1.0, None)].startswith("leverage must be > 0") and "banana" in why[(2.0, "banana")]
    ref = _book(fa.backtest(m, 1, leverage=2.0))
    assert sw.table["final_equity"].iloc[0] == pytest.approx(ref["final_equity"], rel=1e-12)
    with pytest.raises(ConfigError, match="leverage must be > 0"):
        fa.sweep(m, _Carry(), {"leverage": [2.0, -1.0]}, skip_invalid=False)
