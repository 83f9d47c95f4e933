"""Funding filters, the carry state machine, top-N rotation, strategy files (DESIGN §2, §7)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData
from fundarb.errors import ConfigError
from fundarb.signals.carry import FundingCarry
from fundarb.signals.filters import (
    annualised_on_notional,
    binance_apr_on_capital,
    funding_filters,
    trailing_funding,
    window_bars,
)
from fundarb.signals.nb import WEIGHT_EQUAL, WEIGHT_FUNDING, carry_states_nb, rotation_states_nb
from fundarb.signals.portfolio import TopNRotation, switching_cost
from fundarb.signals.run import run_strategy
from fundarb.signals.toml import StrategySpec, load_strategy
from toy import ohlc, random_market, random_walk_ohlc, toy_market

STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"


# ---------------------------------------------------------------------------------------------- helpers
def _frames(rng: np.random.Generator, n: int, symbols: int = 2, *, offgrid: bool = False,
            funding: list[np.ndarray] | None = None) -> list[SymbolFrames]:
    """Hourly prices; funding every 8h for the first half, then every 1h (optionally a few minutes off the hour);
    symbol j starts its funding ``8·j`` hours late (a later listing)."""
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="time")
    out = []
    for j in range(symbols):
        spot = random_walk_ohlc(rng, n, start=100.0 * (j + 1), index=idx)
        times = [t for t in idx[8 * j::8] if t < idx[n // 2]] + list(idx[n // 2:])
        times_idx = pd.DatetimeIndex(times, name="time")
        if offgrid:
            times_idx = times_idx + pd.to_timedelta(rng.integers(0, 59, len(times_idx)), unit="min")
        rates = funding[j] if funding is not None else rng.normal(1e-4, 3e-4, len(times_idx))
        out.append(SymbolFrames(symbol=f"S{j}", spot=spot, perp=spot, mark=spot,
                                funding=pd.Series(rates[:len(times_idx)], index=times_idx)))
    return out


def _reference_trailing(market: MarketData, window: str) -> np.ndarray:
    """Slow reference: for each bar, loop over the events with timestamps in (τ − w, τ], τ = the bar's last instant
    (close − 1 ns: an event stamped at the close belongs to the next bar), w = the window rounded down to bars."""
    w = window_bars(market, window) * market.timeframe
    out = np.full((len(market.index), len(market.symbols)), np.nan)
    for j, s in enumerate(market.symbols):
        cov = market.coverage[s]
        span_lo = market.index[cov.first_bar]
        span_hi = market.index[cov.last_bar] + market.timeframe
        ev = [(ts, r) for ts, r in market.events[s].items() if span_lo <= ts < span_hi]
        for t in range(cov.first_bar, cov.last_bar + 1):
            tau = market.index[t] + market.timeframe - pd.Timedelta(1, "ns")
            if tau - w < span_lo - pd.Timedelta(1, "ns"):
                continue  # less than a whole window of history
            out[t, j] = sum(r for ts, r in ev if tau - w < ts <= tau)
    return out


def _rate_market(rates: list[float]) -> MarketData:
    """One symbol on 1h bars with an event of ``rates[t]`` at each bar's open: with window "1h" the annualised
    filter at bar t is ``rates[t]·8760``."""
    n = len(rates)
    return toy_market(ohlc([100.0] * n), funding=dict(enumerate(rates)))


def _carry(vals: list[float], direction: str = "auto", entry: float = 0.1, exit_: float = 0.0,
           min_hold: int = 0) -> list[int]:
    v = np.array(vals, dtype=np.float64)[:, None]
    out = carry_states_nb(v, direction in ("carry", "auto"), direction in ("reverse", "auto"), entry, exit_, min_hold)
    return out[:, 0].tolist()


def _rotate(scores: list[list[float]], signs: list[list[int]] | None = None, *, n: int = 2, entry: float = 0.1,
            exit_: float = 0.0, hysteresis: float = 0.0, min_gain: float = 0.0, weighting: int = WEIGHT_EQUAL,
            max_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    s = np.array(scores, dtype=np.float64)
    sg = np.ones(s.shape, dtype=np.int8) if signs is None else np.array(signs, dtype=np.int8)
    return rotation_states_nb(s, sg, n, entry, exit_, hysteresis, min_gain, weighting, max_weight)


# ---------------------------------------------------------------------------------------------- filters
@pytest.mark.parametrize("window", ["3d", "1d", "8h", "1h", "36h", "30h", "90min", "1w"])
def test_trailing_funding_by_time_equals_event_reference_8h_to_1h(window):
    m = MarketData.from_frames(_frames(np.random.default_rng(1), 400), timeframe="1h")
    assert [seg.hours for seg in m.funding_intervals("S0")] == [8.0, 1.0]
    got = trailing_funding(m, window).to_numpy()
    ref = _reference_trailing(m, window)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-15)
    # by time: after the change a window holds 8× as many events
    k = window_bars(m, window)
    assert np.isnan(got[: m.coverage["S1"].first_bar + k - 1, 1]).all()


@pytest.mark.parametrize("window", ["3d", "16h", "20h", "2d"])
def test_trailing_funding_on_8h_bars_with_1h_events_off_the_hour(window):
    m = MarketData.from_frames(_frames(np.random.default_rng(2), 480, offgrid=True), timeframe="8h")
    got = trailing_funding(m, window).to_numpy()
    ref = _reference_trailing(m, window)  # "20h" → 2 bars = 16h (rounded down)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-15)
    assert np.isfinite(got).sum() > 40


def test_window_rounding_and_errors():
    m = random_market(np.random.default_rng(0), 50)
    assert window_bars(m, "3d") == 72
    assert window_bars(m, "90min") == 1
    with pytest.raises(ConfigError, match="shorter than one bar"):
        window_bars(m, "30min")
    with pytest.raises(ConfigError, match="window"):
        trailing_funding(m, "three days")


def test_annualisation_numbers():
    # 0.0001 per 8h for 100 bars, then 0.0000125 per hour: the same 0.0009 over any 3 days, by time
    n = 200
    rates = {t: 1e-4 for t in range(0, 100, 8)} | {t: 1.25e-5 for t in range(100, n)}
    m = toy_market(ohlc([100.0] * n), funding=rates)
    f3 = trailing_funding(m, "3d")
    assert f3.attrs["name"] == "trailing_funding_3d"
    assert np.isnan(f3.iloc[:71, 0]).all() and f3.iloc[71, 0] == pytest.approx(9e-4, rel=1e-12)
    assert f3.iloc[-1, 0] == pytest.approx(9e-4, rel=1e-12)
    apr = annualised_on_notional(f3, "3d")
    assert apr.iloc[-1, 0] == pytest.approx(9e-4 * 365 / 3)  # 0.1095 a year on notional
    assert apr.attrs["name"] == "apr_on_notional_3d"
    cap = binance_apr_on_capital(-f3)
    assert cap.iloc[-1, 0] == pytest.approx(0.0009 / 3 * 365 / 2)  # 0.05475: half the capital is spot
    assert cap.attrs["name"] == "binance_apr_on_capital"
    f10 = trailing_funding(m, "10d")
    assert np.isnan(f10.to_numpy()).all()  # 200 bars < 10 days: never a partial sum
    table = funding_filters(m, "1d")
    assert list(table.columns.get_level_values("measure").unique()) == [
        "trailing_funding_1d", "apr_on_notional_1d", "binance_apr_on_capital"]
    assert table[("apr_on_notional_1d", "TOY")].iloc[-1] == pytest.approx(24 * 1.25e-5 * 365)


# ---------------------------------------------------------------------------------------------- state machine
def test_entry_and_exit_on_sign():
    assert _carry([0.0, 0.05, 0.12, 0.11, 0.03, -0.01, 0.2]) == [0, 0, 1, 1, 1, 0, 1]
    assert _carry([0.2, 0.0]) == [1, 0]  # exactly 0 is no longer positive


def test_hysteresis_exit():
    assert _carry([0.12, 0.07, 0.04, 0.08, 0.09, 0.1], exit_=0.05) == [1, 1, 0, 0, 0, 1]
    assert _carry([-0.12, -0.07, -0.04, -0.2], exit_=0.05) == [-1, -1, 0, -1]  # |value| for reverse


def test_sign_flip_auto_turns_over_or_exits():
    assert _carry([0.12, 0.02, -0.15, -0.03, 0.01, 0.3]) == [1, 1, -1, -1, 0, 1]


def test_direction_restrictions():
    seq = [-0.2, -0.2, 0.2, 0.2, -0.2]
    assert _carry(seq, "carry") == [0, 0, 1, 1, 0]
    assert _carry(seq, "reverse") == [-1, -1, 0, 0, -1]
    assert _carry(seq, "auto") == [-1, -1, 1, 1, -1]


def test_min_hold_blocks_exits_and_flips():
    assert _carry([0.12, -0.01, -0.01, -0.01, -0.01], "carry", min_hold=3) == [1, 1, 1, 0, 0]
    assert _carry([0.12, -0.2, -0.2, -0.2], "auto", min_hold=2) == [1, 1, -1, -1]
    assert _carry([0.12, 0.2, -0.2], "auto", min_hold=0) == [1, 1, -1]


def test_nan_filter_keeps_state():
    assert _carry([np.nan, 0.2, np.nan, 0.01, np.nan]) == [0, 1, 1, 1, 1]


def test_funding_carry_targets_are_decisions_shifted_one_bar():
    # window "1h" on 1h bars: the filter at bar t is rate[t]·8760 (0.0001/h ≈ 0.876 a year)
    rates = [0, 0, 2e-5, -1e-6, -1e-6, -1e-6, 0, 0, -3e-5, -3e-5, 0]
    m = _rate_market(rates)
    s = FundingCarry(window="1h", entry=0.1, exit=0.0, direction="auto")
    d = s.decisions(m).iloc[:, 0].tolist()
    assert d == [0, 0, 1, 0, 0, 0, 0, 0, -1, -1, 0]
    t = s.targets(m)
    assert t.dtypes.iloc[0] == np.int8
    assert t.iloc[:, 0].tolist() == [0, *d[:-1]]
    # min_hold rounds up to whole bars: 90min → 2 bars (held from the open of bar 3 to the open of bar 5)
    held = FundingCarry(window="1h", entry=0.1, direction="carry", min_hold="90min").decisions(m).iloc[:, 0]
    assert held.tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    held = FundingCarry(window="1h", entry=0.1, direction="carry", min_hold="4h").decisions(m).iloc[:, 0]
    assert held.tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]


def _perturbed(frames: list[SymbolFrames], cut: pd.Timestamp, rng: np.random.Generator, tf: str) -> MarketData:
    out = []
    for fr in frames:
        f = fr.funding.copy()
        late = f.index >= cut
        f[late] = rng.normal(0, 3e-3, late.sum())  # large, both signs
        out.append(SymbolFrames(symbol=fr.symbol, spot=fr.spot, perp=fr.perp, mark=fr.mark, funding=f))
    return MarketData.from_frames(out, timeframe=tf)


@pytest.mark.parametrize("tf", ["1h", "8h"])
def test_no_look_ahead(tf):
    rng = np.random.default_rng(5)
    frames = _frames(rng, 480, symbols=3)
    base = MarketData.from_frames(frames, timeframe=tf)
    strategies = [FundingCarry(window="1d", entry=0.05, exit=0.02, direction="auto"),
                  FundingCarry(window="16h", entry=0.1, direction="reverse", min_hold="1d"),
                  TopNRotation(n=2, window="1d", entry=0.05, hysteresis=0.02)]
    before = [s.targets(base) for s in strategies]
    wbefore = strategies[2].weights(base)
    dbefore = strategies[0].decisions(base)
    assert all((b != 0).any().any() for b in before)
    unshifted_leaks = 0
    step = 7 if tf == "1h" else 2
    for t in range(3, len(base), step):
        # change every funding event assigned to bars ≥ t: no target or weight at bars ≤ t may move
        m = _perturbed(frames, base.index[t], np.random.default_rng(t), tf)
        for s, b in zip(strategies, before, strict=True):
            pd.testing.assert_frame_equal(s.targets(m).iloc[: t + 1], b.iloc[: t + 1])
        pd.testing.assert_frame_equal(strategies[2].weights(m).iloc[: t + 1], wbefore.iloc[: t + 1])
        unshifted_leaks += not strategies[0].decisions(m).iloc[: t + 1].equals(dbefore.iloc[: t + 1])
    # the test has the power to see a leak: the unshifted decisions (row t uses row t) do move
    assert unshifted_leaks > 0


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"direction": "carr"}, r"direction must be one of 'carry', 'reverse', 'auto'.*did you mean 'carry'"),
    ({"leverage": -1.0}, r"leverage must be > 0"),
    ({"leverage": True}, r"leverage"),
    ({"window": "three days"}, r"window: cannot read duration"),
    ({"window": 3}, r"window must be a duration"),
    ({"entry": -0.1}, r"entry must be ≥ 0"),
    ({"exit": 0.2}, r"exit must be ≥ 0 and ≤ 0.1"),
    ({"min_hold": "-1h"}, r"min_hold"),
    ({"min_hold": "0parsecs"}, r"min_hold"),
    ({"rebalance_at": 0.0}, r"0 < rebalance_at < 1"),
    ({"rebalance_at": 1.0}, r"0 < rebalance_at < 1"),
    ({"rebalance_at": math.inf}, r"0 < rebalance_at < 1"),
    ({"spot_rebalance_level": 1.1}, r"spot_rebalance_level must be .*> spot_liquidation_level"),
    ({"spot_rebalance_level": math.inf}, r"spot_rebalance_level"),
    ({"liquidation_loss": "margn"}, r"liquidation_loss.*did you mean 'margin'"),
    ({"after_liquidation": "reenterr"}, r"after_liquidation.*did you mean 'reenter'"),
    ({"rebalance_every": -2}, r"rebalance_every"),
    ({"after_liquidation": "hodl"}, r"after_liquidation.*did you mean 'hold'"),
    ({"margin_mode": "crossed"}, r"margin_mode.*did you mean 'cross'"),
])
def test_funding_carry_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        FundingCarry(**kwargs)


def test_valid_values_are_normalised():
    s = FundingCarry(entry=1, exit=0, min_hold="0", rebalance_every="7d", rebalance_at=0.5,
                     spot_rebalance_level=1.3, after_liquidation="reenter", liquidation_loss="margin")
    assert isinstance(s.entry, float) and s.entry == 1.0
    assert s.engine_options() == {"leverage": 1.0, "spot_leverage": 3.0, "rebalance_at": 0.5,
                                  "spot_rebalance_level": 1.3, "rebalance_every": "7d",
                                  "after_liquidation": "reenter", "liquidation_loss": "margin",
                                  "margin_mode": "isolated"}
    assert FundingCarry().engine_options()["rebalance_at"] is None  # margin management off by default
    rot = TopNRotation(rebalance_at=0.4, spot_rebalance_level=1.4)
    assert rot.engine_options()["rebalance_at"] == 0.4 and rot.engine_options()["spot_rebalance_level"] == 1.4
    with pytest.raises(ConfigError, match="0 < rebalance_at < 1"):
        TopNRotation(rebalance_at=1.5)
    with pytest.raises(TypeError):
        FundingCarry("3d")  # type: ignore[misc]  # keyword-only


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n": 0}, r"n must be"),
    ({"weighting": "equl"}, r"weighting.*did you mean 'equal'"),
    ({"max_weight": 1.5}, r"max_weight"),
    ({"max_weight": 0.0}, r"max_weight"),
    ({"hysteresis": -0.01}, r"hysteresis"),
    ({"horizon": "soon"}, r"horizon"),
    ({"direction": "revers"}, r"did you mean 'reverse'"),
])
def test_rotation_validation(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        TopNRotation(**kwargs)


# ---------------------------------------------------------------------------------------------- rotation
def test_rotation_fills_the_best_and_respects_entry():
    d, w = _rotate([[0.3, 0.2, 0.05], [0.3, 0.05, 0.06]], n=2, entry=0.1)
    assert d[0].tolist() == [1, 1, 0] and w[0].tolist() == [0.5, 0.5, 0.0]
    # symbol 1 stays (exit 0): symbol 2 is below entry, so no rotation
    assert d[1].tolist() == [1, 1, 0] and w[1].tolist() == [0.5, 0.5, 0.0]


def test_rotation_hysteresis_and_switching_cost():
    scores = [[0.3, 0.2, 0.1], [0.3, 0.2, 0.24], [0.3, 0.2, 0.26]]
    d, _ = _rotate(scores, n=2, hysteresis=0.05)
    assert d[1].tolist() == [1, 1, 0]  # 0.04 better: not enough
    assert d[2].tolist() == [1, 0, 1]  # 0.06 better: rotates out the weakest
    d, _ = _rotate(scores, n=2, hysteresis=0.05, min_gain=0.1)  # the fees are not repaid over the horizon
    assert d[2].tolist() == [1, 1, 0]
    # the cost rule from Costs: taker round trip on both legs = 2·(0.001 + 0.0005) = 0.003 of notional
    assert switching_cost(fa.Costs()) == pytest.approx(0.003)
    assert switching_cost(fa.Costs(half_spread_bps=1.0, slippage_bps=2.0)) == pytest.approx(0.003 + 12e-4)


def test_rotation_drops_on_exit_and_sign_flip_auto():
    scores = [[0.3, 0.2, 0.15], [0.3, 0.2, 0.15], [0.3, 0.01, 0.15]]
    signs = [[1, -1, 1], [1, 1, 1], [1, -1, 1]]
    d, _ = _rotate(scores, signs, n=2, exit_=0.02)
    assert d[0].tolist() == [1, -1, 0]
    assert d[1].tolist() == [1, 1, 0]   # symbol 1 flipped: dropped, re-entered on the other side at once
    assert d[2].tolist() == [1, 0, 1]   # flipped again but below entry; symbol 2 fills the slot


def test_rotation_weights_equal_funding_and_cap():
    _, w = _rotate([[0.8, 0.1, 0.1]], n=3, weighting=WEIGHT_FUNDING, max_weight=0.5)
    np.testing.assert_allclose(w[0], [0.5, 0.25, 0.25])
    _, w = _rotate([[0.8, 0.1, 0.1]], n=3, weighting=WEIGHT_EQUAL, max_weight=0.25)
    np.testing.assert_allclose(w[0], [0.25, 0.25, 0.25])  # all capped: the rest stays cash
    _, w = _rotate([[0.6, 0.2, 0.0], [0.2, 0.6, 0.0]], n=3, weighting=WEIGHT_FUNDING)
    np.testing.assert_allclose(w[0], [0.75, 0.25, 0.0])
    np.testing.assert_allclose(w[1], w[0])  # same book: not resized when the scores move


def test_rotation_targets_and_weights_on_a_market():
    m = random_market(np.random.default_rng(8), 400, symbols=4)
    rot = TopNRotation(n=2, window="1d", entry=0.05, weighting="funding", max_weight=0.6, hysteresis=0.02)
    t, w = rot.targets(m), rot.weights(m)
    assert t.iloc[0].eq(0).all() and w.iloc[0].eq(0).all()
    assert (t.ne(0).sum(axis=1) <= 2).all()
    assert (w.sum(axis=1) <= 1 + 1e-12).all() and (w <= 0.6 + 1e-12).all().all()
    pd.testing.assert_frame_equal(w > 0, t != 0)
    d, wd = rot.decisions(m)
    np.testing.assert_array_equal(t.to_numpy()[1:], d.to_numpy()[:-1])
    np.testing.assert_array_equal(w.to_numpy()[1:], wd.to_numpy()[:-1])
    # dearer switching → no more rotations than free switching
    free = (rot.targets(m, fa.Costs.zero()).diff().abs().sum(axis=1) > 0).sum()
    dear = (rot.targets(m, fa.Costs(spot_fee=0.01, perp_fee=0.01)).diff().abs().sum(axis=1) > 0).sum()
    assert dear <= free and free > 0


# ---------------------------------------------------------------------------------------------- files
def test_every_strategy_file_loads_and_runs():
    files = sorted(STRATEGIES.glob("*.toml"))
    assert {f.name for f in files} >= {"binance_bot.toml", "carry_7d.toml", "reverse_only.toml",
                                        "top3_rotation.toml"}
    m = random_market(np.random.default_rng(3), 300, symbols=2)
    for f in files:
        spec = load_strategy(f)
        assert isinstance(spec, StrategySpec) and spec.source == str(f)
        assert isinstance(spec.strategy, FundingCarry | TopNRotation)
        r = run_strategy(m, spec, mode="detail")
        assert r.identity_error() < 1e-9, f.name
    bot = load_strategy(STRATEGIES / "binance_bot.toml")
    assert bot.strategy.direction == "auto" and bot.strategy.window == "3d"
    assert bot.costs == fa.Costs() and bot.capital == 10_000.0
    assert isinstance(load_strategy(STRATEGIES / "top3_rotation.toml").strategy, TopNRotation)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "my_strategy.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "key", "extra"), [
    ('[strategy]\ntype = "carry"\nentyr = 0.1\n', "'entyr'", "did you mean 'entry'"),
    ('[strategy]\ntype = "carry"\ndirection = "carr"\n', "direction", "did you mean 'carry'"),
    ('[strategy]\ntype = "carry"\nleverage = -2.0\n', "leverage", "> 0"),
    ('[strategy]\ntype = "carry"\nwindow = "3 dayz"\n', "window", "write e.g."),
    ('[strategy]\ntype = "carry"\nexit = 0.5\n', "exit", "≤ 0.1"),
    ('[strategy]\ntype = "portfolo"\n', "type", "did you mean 'portfolio'"),
    ('[strategy]\nentry = 0.1\n', "'type'", "'carry', 'portfolio'"),
    ('[strategy]\ntype = "carry"\nn = 3\n', "'n'", "allowed for type = 'carry'"),
    ('[strategy]\ntype = "portfolio"\nweighting = "equl"\n', "weighting", "did you mean 'equal'"),
    ('[strategy]\ntype = "carry"\n[cost]\nspot_fee = 0.001\n', "[cost]", "did you mean 'costs'"),
    ('[strategy]\ntype = "carry"\n[costs]\nperp_fees = 0.001\n', "'perp_fees'", "did you mean 'perp_fee'"),
    ('[strategy]\ntype = "carry"\n[costs]\nspot_fee = -0.001\n', "spot_fee", "≥ 0"),
    ('[strategy]\ntype = "carry"\n[costs]\npreset = "taket"\n', "preset", "did you mean 'taker'"),
    ('[strategy]\ntype = "carry"\n[backtest]\ncapitl = 5\n', "'capitl'", "did you mean 'capital'"),
    ('[strategy]\ntype = "carry"\n[backtest]\ncapital = -5\n', "capital", "positive"),
    ('[strategy]\ntype = "carry"\nentry = \n', "", "not a valid TOML"),
    ('[costs]\nspot_fee = 0.001\n', "[strategy]", "type = 'carry' or 'portfolio'"),
])
def test_strategy_file_errors_name_file_and_key(tmp_path, text, key, extra):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_strategy(p)
    msg = str(err.value)
    assert str(p) in msg and key in msg and extra in msg, msg


def test_strategy_file_values(tmp_path):
    p = _write(tmp_path, '[strategy]\ntype = "carry"\nentry = 1\nrebalance_at = 0.8\nrebalance_every = 0\n'
                         'spot_rebalance_level = 1.3\nliquidation_loss = "margin"\nafter_liquidation = "reenter"\n'
                         '[costs]\npreset = "zero"\nperp_fee = 0.0002\n[backtest]\ncapital = 500\n')
    spec = load_strategy(p)
    assert spec.strategy == FundingCarry(entry=1.0, rebalance_at=0.8, spot_rebalance_level=1.3,
                                         liquidation_loss="margin", after_liquidation="reenter")
    assert spec.costs == fa.Costs.zero(perp_fee=0.0002) and spec.capital == 500.0
    with pytest.raises(ConfigError, match="cannot read"):
        load_strategy(tmp_path / "missing.toml")


@pytest.mark.parametrize(("line", "match"), [
    ("rebalance_at = inf", r"rebalance_at = inf is withdrawn.*0 < rebalance_at < 1"),
    ("rebalance_at = 1.2", r"0 < rebalance_at < 1"),
    ("spot_rebalance_level = 1.05", r"spot_rebalance_level must be .*> spot_liquidation_level"),
    ("liquidation_los = \"fee\"", r"did you mean 'liquidation_loss'"),
    ("after_liquidation = \"renter\"", r"did you mean 'reenter'"),
])
def test_strategy_file_margin_options_are_checked(tmp_path, line, match):
    p = _write(tmp_path, f'[strategy]\ntype = "carry"\n{line}\n')
    with pytest.raises(ConfigError, match=match) as err:
        load_strategy(p)
    assert str(p) in str(err.value)


def test_shipped_strategy_files_load():
    files = sorted((Path(__file__).parent.parent / "strategies").glob("*.toml"))
    assert files
    for f in files:
        load_strategy(f)


# ---------------------------------------------------------------------------------------------- end to end
def test_backtest_with_funding_carry_end_to_end():
    m = random_market(np.random.default_rng(11), 400, symbols=2)
    s = FundingCarry(window="1d", entry=0.05, exit=0.01, direction="auto", leverage=3.0, rebalance_at=0.6)
    r = fa.backtest(m, s, costs=fa.Costs(), **s.engine_options())
    assert r.identity_error() < 1e-9
    assert r.stats()["n_trades"].sum() > 0
    np.testing.assert_array_equal(r.target, s.targets(m).to_numpy())  # the engine executes them as given
    r2 = run_strategy(m, s, costs=fa.Costs(), capital=10_000.0)
    np.testing.assert_allclose(r2.equity.to_numpy(), r.equity.to_numpy(), rtol=1e-12)


def test_run_strategy_portfolio_is_one_account():
    m = random_market(np.random.default_rng(12), 400, symbols=3)
    rot = TopNRotation(n=2, window="1d", entry=0.05, margin_mode="cross")
    r = run_strategy(m, rot, costs=fa.Costs(), capital=1_000.0)
    assert r.portfolio and list(r.groups) == ["portfolio"]
    assert r.identity_error() < 1e-9
    with pytest.raises(ConfigError, match="run_strategy needs"):
        run_strategy(m, object())  # type: ignore[arg-type]


# ------------------------------------------------------------------ one strategy contract, exact ties
def test_strategies_follow_the_protocol_and_backtest_passes_costs():
    from fundarb.signals.protocol import PortfolioStrategy, Strategy

    assert isinstance(FundingCarry(), Strategy) and not isinstance(FundingCarry(), PortfolioStrategy)
    assert isinstance(TopNRotation(), PortfolioStrategy)
    m = fa.demo_market()
    costs = fa.Costs(spot_fee=0.002, perp_fee=0.002)
    strat = TopNRotation(n=1, window="3d", entry=0.05, hysteresis=0.0, horizon="30d")
    a = fa.run_strategy(m, strat, costs=costs, mode="sweep").stats().iloc[0]
    b = fa.backtest(m, strat, costs=costs, mode="sweep", **strat.engine_options()).stats().iloc[0]
    assert a["final_equity"] == b["final_equity"] and a["n_trades"] == b["n_trades"]
    # the switching rule saw the 0.2 % fees: fewer rotations than with the taker default
    c = fa.backtest(m, strat.targets(m, fa.Costs()), weights=strat.weights(m, fa.Costs()), costs=costs,
                    mode="sweep").stats().iloc[0]
    assert c["n_trades"] > a["n_trades"]


def test_window_sums_do_not_drift():
    from fundarb.signals.filters import window_sums

    rng = np.random.default_rng(3)
    noisy = rng.normal(1e-4, 3e-4, (500, 2))
    floor = np.full((300, 2), 1e-4)
    x = np.vstack([noisy, floor])
    for arr in (x, np.round(x, 8)):  # random doubles (compensated path) and quoted rates (exact integer path)
        s = window_sums(arr, 9)
        # every window of the floor sums to the same double, whatever came before, and equals a fresh sum
        assert len(set(s[520:, 0].tolist())) == 1 and s[520, 0] == s[520, 1]
        later = window_sums(arr[37:], 9)
        np.testing.assert_array_equal(later[8:], s[45:])
    assert window_sums(np.round(x, 8), 3)[-1, 0] == 0.0003


def test_rotation_ties_are_broken_by_symbol_order_whatever_the_start():
    # three symbols with different noisy histories, then all at the funding floor (1e-4 per 8h): the trailing
    # sums tie exactly, so the held symbol is the first in the market's order from any start
    n = 24 * 60
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="time")
    rng = np.random.default_rng(5)
    frames = []
    for j, sym in enumerate(("AAA", "BBB", "CCC")):
        spot = ohlc(np.full(n, 100.0 + j), index=idx)
        times = idx[::8]
        rates = np.where(times < idx[24 * 20], np.round(rng.uniform(0.00005, 0.0004, len(times)), 7), 0.0001)
        ev = pd.Series(rates, index=pd.DatetimeIndex(times, name="time"))
        frames.append(SymbolFrames(symbol=sym, spot=spot, perp=spot, mark=spot, funding=ev))
    m = MarketData.from_frames(frames, timeframe="1h", label="ties")
    strat = TopNRotation(n=1, window="3d", entry=0.0, hysteresis=0.0, horizon="7d")
    zero = fa.Costs(spot_fee=0.0, perp_fee=0.0, half_spread_bps=0.0, slippage_bps=0.0)
    held = {}
    for start in ("2024-01-01", "2024-01-29 05:00", "2024-02-07 13:00"):
        held[start] = strat.targets(m.slice(start), zero).loc["2024-02-12":]
    first = held["2024-01-01"]
    for h in held.values():
        pd.testing.assert_frame_equal(h, first)
    assert (first["AAA"] == 1).all() and (first[["BBB", "CCC"]] == 0).all().all()
