"""The Numba kernels against the slow, independent reference simulator (tests/reference/simulator.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fundarb as fa
from fundarb.engine import layout
from fundarb.engine.run import clean_targets
from reference.portfolio import simulate_portfolio
from reference.simulator import simulate as reference
from toy import random_market, random_targets

SERIES = ("equity", "funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
          "insurance_fund_loss", "spot_qty", "perp_qty", "cash", "margin_balance")


def _compare(m, target_col: np.ndarray, params: dict, tiers=None):
    costs = fa.Costs(spot_fee=params["spot_fee"], perp_fee=params["perp_fee"],
                     half_spread_bps=params["half_spread_bps"], slippage_bps=params["slippage_bps"],
                     slippage_k=params["slippage_k"], borrow_rate=params["borrow_rate"],
                     liquidation_fee=params["liquidation_fee"])
    pos = pd.Series(target_col, index=m.index)
    r = fa.backtest(m, pos, costs=costs, capital=params["capital"], leverage=params["leverage"],
                    spot_leverage=params["spot_leverage"], mmr=params["mmr"], tiers=tiers,
                    rebalance_at=params["rebalance_at"], rebalance_every=params["rebalance_every"] or None,
                    spot_rebalance_level=params["spot_rebalance_level"],
                    after_liquidation=params["after_liquidation"], liquidation_loss=params["liquidation_loss"],
                    spot_liquidation_level=params["spot_liquidation_level"])
    A = {k: v[:, 0].tolist() for k, v in m.arrays.items()}
    tgt = clean_targets(m, target_col[:, None])[:, 0].tolist()  # the same span rules on both sides
    ref = reference(spot_open=A["spot_open"], spot_high=A["spot_high"], spot_low=A["spot_low"],
                    spot_close=A["spot_close"], perp_open=A["perp_open"], mark_open=A["mark_open"],
                    mark_high=A["mark_high"], mark_low=A["mark_low"], mark_close=A["mark_close"],
                    funding=A["funding_rate"], borrow_rate=A["borrow_rate"], spot_volume=A["spot_volume"],
                    perp_volume=A["perp_volume"], target=tgt, bar_hours=m.bar_hours,
                    params={**params, "tiers": None if tiers is None else [tuple(row) for row in tiers]})
    ours = {"equity": r.equity.iloc[:, 0], **{k: v.iloc[:, 0] for k, v in r.symbol_components.items()},
            "spot_qty": r.spot_qty.iloc[:, 0], "perp_qty": r.perp_qty.iloc[:, 0],
            "cash": pd.Series(r.gseries[layout.G_CASH][:, 0]), "margin_balance": r.margin_balance.iloc[:, 0]}
    scale = params["capital"]
    for name in SERIES:
        got = ours[name].to_numpy()
        want = np.asarray(ref[name], dtype=float)
        tol = 1e-9 * (scale if name not in ("spot_qty", "perp_qty") else max(1.0, np.abs(want).max()))
        bad = np.flatnonzero(~(np.abs(got - want) <= tol + 1e-9 * np.abs(want)))
        assert not len(bad), f"{name} differs first at bar {bad[0]}: kernel {got[bad[0]]!r}, reference {want[bad[0]]!r}"
    assert r.stats()["n_trades"].iloc[0] == ref["n_trades"]
    assert r.stats()["n_liquidations"].iloc[0] == ref["n_liquidations"]
    kinds = [e["kind"] for e in ref["events"]]
    assert r.trades["kind"].replace({"close_leg": "exit"}).tolist() == kinds  # the log's name for a lone leg
    _compare_warnings(r, ref)
    return r, ref


def _compare_warnings(r, ref) -> None:
    want = {w["kind"] for w in ref["warnings"]}
    got = set()
    for w in r.warnings:
        if "liquidated with margin management off" in w:
            got.add("liquidated_without_margin_management")
        if "stayed flat to the end" in w:
            got.add("target_unfilled_after_liquidation")
    assert got == want & {"liquidated_without_margin_management", "target_unfilled_after_liquidation"}


def _with_levels(params: dict) -> dict:
    """A drawn spot_rebalance_level that is not above the spot liquidation level is moved just above it."""
    lvl = params["spot_rebalance_level"]
    if lvl is not None and not lvl > params["spot_liquidation_level"]:
        params = {**params, "spot_rebalance_level": params["spot_liquidation_level"] + 0.1}
    return params


PARAMS = st.fixed_dictionaries({
    "capital": st.sampled_from([1_000.0, 10_000.0]),
    "leverage": st.sampled_from([1.0, 2.0, 5.0, 10.0, 25.0]),
    "spot_leverage": st.sampled_from([1.0, 2.0, 3.0]),
    "spot_fee": st.sampled_from([0.0, 0.001]),
    "perp_fee": st.sampled_from([0.0, 0.0005]),
    "half_spread_bps": st.sampled_from([0.0, 2.5]),
    "slippage_bps": st.sampled_from([0.0, 1.0]),
    "slippage_k": st.sampled_from([0.0, 0.05]),
    "borrow_rate": st.sampled_from([0.0, 1e-5]),
    "mmr": st.sampled_from([0.004, 0.01]),
    "liquidation_fee": st.sampled_from([0.0, 0.005, 0.0125]),
    "rebalance_at": st.sampled_from([None, 0.2, 0.5, 0.8, 0.95]),
    "spot_rebalance_level": st.sampled_from([None, 1.2, 1.3, 1.5]),
    "rebalance_every": st.sampled_from([0, 12, 48]),
    "after_liquidation": st.sampled_from(["close", "hold", "reenter"]),
    "liquidation_loss": st.sampled_from(["fee", "margin"]),
    "spot_liquidation_level": st.sampled_from([1.05, 1.1, 1.3]),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), params=PARAMS, vol=st.sampled_from([0.005, 0.02, 0.04]),
       wick=st.sampled_from([0.002, 0.03, 0.08]), flip=st.sampled_from([0.02, 0.1, 0.3]))
def test_kernel_matches_reference(seed, params, vol, wick, flip):
    rng = np.random.default_rng(seed)
    m = random_market(rng, 160, symbols=1, vol=vol, wick=wick, interval_change=bool(seed % 2))
    _compare(m, random_targets(rng, len(m), 1, p_change=flip)[:, 0], _with_levels(params))


def test_kernel_matches_reference_with_binance_tiers(shared_data):
    from fundarb.engine.tiers import load_tiers

    tiers = load_tiers(shared_data / "binance" / "leverage_tiers.json", "BTC/USDT:USDT")
    rng = np.random.default_rng(21)
    m = random_market(rng, 300, symbols=1, vol=0.03, wick=0.06)
    params = {"capital": 3_000_000.0, "leverage": 20.0, "spot_leverage": 3.0, "spot_fee": 0.001, "perp_fee": 0.0005,
              "half_spread_bps": 1.0, "slippage_bps": 0.0, "slippage_k": 0.0, "borrow_rate": 1e-5, "mmr": 0.005,
              "liquidation_fee": 0.005, "rebalance_at": None, "rebalance_every": 0,
              "after_liquidation": "close", "spot_liquidation_level": 1.1, "spot_rebalance_level": None,
              "liquidation_loss": "fee"}
    _, ref = _compare(m, random_targets(rng, 300, 1, p_change=0.05)[:, 0], params, tiers=tiers)
    assert ref["n_liquidations"] >= 1


def test_kernel_matches_reference_with_gaps():
    rng = np.random.default_rng(5)
    m = random_market(rng, 200, symbols=1, vol=0.02, wick=0.03)
    arrays = {k: v.copy() for k, v in m.arrays.items()}
    for k in ("spot_open", "spot_high", "spot_low", "spot_close"):
        arrays[k][[20, 21, 90, 150], 0] = np.nan
    arrays["mark_close"][60, 0] = np.nan
    gm = fa.MarketData(index=m.index, symbols=m.symbols, arrays=arrays, timeframe=m.timeframe, events=m.events)
    params = {"capital": 10_000.0, "leverage": 3.0, "spot_leverage": 3.0, "spot_fee": 0.001, "perp_fee": 0.0005,
              "half_spread_bps": 0.0, "slippage_bps": 0.0, "slippage_k": 0.0, "borrow_rate": 1e-5, "mmr": 0.005,
              "liquidation_fee": 0.005, "rebalance_at": 0.3, "rebalance_every": 0, "after_liquidation": "close",
              "spot_liquidation_level": 1.1, "spot_rebalance_level": 1.25, "liquidation_loss": "fee"}
    _, ref = _compare(gm, random_targets(rng, 200, 1, p_change=0.1)[:, 0], params)
    assert ref["gap_bars"] == [20, 21, 90, 150]


def test_reference_comparison_exercises_every_event_kind():
    """Fixed cases chosen so that every path is compared: liquidations of both legs, the three after-liquidation
    modes, both liquidation losses, rebalances by cushion, by spot level and by period, flips."""
    base = {"capital": 10_000.0, "spot_fee": 0.001, "perp_fee": 0.0005, "half_spread_bps": 1.0,
            "slippage_bps": 0.5, "slippage_k": 0.02, "borrow_rate": 2e-5, "mmr": 0.005, "liquidation_fee": 0.005,
            "spot_liquidation_level": 1.1, "spot_leverage": 3.0, "spot_rebalance_level": None,
            "liquidation_loss": "fee"}
    seen: set[str] = set()
    cases = [
        ({"leverage": 20.0, "rebalance_at": None, "rebalance_every": 0, "after_liquidation": "close"}, 0.05),
        ({"leverage": 20.0, "rebalance_at": None, "rebalance_every": 0, "after_liquidation": "hold",
          "liquidation_loss": "margin"}, 0.05),
        ({"leverage": 20.0, "rebalance_at": None, "rebalance_every": 0, "after_liquidation": "reenter"}, 0.02),
        ({"leverage": 5.0, "rebalance_at": 0.5, "rebalance_every": 0, "after_liquidation": "close"}, 0.03),
        ({"leverage": 2.0, "rebalance_at": None, "rebalance_every": 24, "after_liquidation": "close"}, 0.2),
        ({"leverage": 1.0, "spot_leverage": 5.0, "rebalance_at": None, "rebalance_every": 0,
          "after_liquidation": "close"}, 0.05),
        ({"leverage": 3.0, "spot_leverage": 5.0, "rebalance_at": None, "rebalance_every": 0,
          "spot_rebalance_level": 1.2, "after_liquidation": "reenter"}, 0.05),
    ]
    for i, (extra, flip) in enumerate(cases):
        for seed in range(4):
            rng = np.random.default_rng(100 * i + seed)
            m = random_market(rng, 200, symbols=1, vol=0.03, wick=0.05)
            _, ref = _compare(m, random_targets(rng, 200, 1, p_change=flip)[:, 0], {**base, **extra})
            seen |= {e["kind"] for e in ref["events"]}
    assert {"entry", "exit", "flip", "rebalance", "liquidation_perp", "liquidation_spot", "reentry"} <= seen


# ---------------------------------------------------------------------------------------------- portfolios
def _compare_portfolio(m, targets: np.ndarray, weights: np.ndarray, params: dict, margin_mode: str):
    costs = fa.Costs(spot_fee=params["spot_fee"], perp_fee=params["perp_fee"],
                     half_spread_bps=params["half_spread_bps"], slippage_bps=params["slippage_bps"],
                     slippage_k=params["slippage_k"], borrow_rate=params["borrow_rate"],
                     liquidation_fee=params["liquidation_fee"])
    syms = list(m.symbols)
    pos = pd.DataFrame(targets, index=m.index, columns=syms)
    w = pd.DataFrame(weights, index=m.index, columns=syms)
    r = fa.backtest(m, pos, weights=w, margin_mode=margin_mode, costs=costs, capital=params["capital"],
                    leverage=params["leverage"], spot_leverage=params["spot_leverage"], mmr=params["mmr"],
                    rebalance_at=params["rebalance_at"], rebalance_every=params["rebalance_every"] or None,
                    spot_rebalance_level=params["spot_rebalance_level"],
                    after_liquidation=params["after_liquidation"], liquidation_loss=params["liquidation_loss"],
                    spot_liquidation_level=params["spot_liquidation_level"])
    tgt = clean_targets(m, targets)
    # the engine trades a zero weight as flat: give the reference the same effective target
    tgt = np.where(weights > 0, tgt, 0)
    symbols = []
    for j in range(len(syms)):
        symbols.append({k: v[:, j].tolist() for k, v in m.arrays.items()})
        symbols[-1]["funding"] = symbols[-1].pop("funding_rate")
    ref = simulate_portfolio(symbols=symbols, targets=[tgt[:, j].tolist() for j in range(len(syms))],
                             weights=[weights[:, j].tolist() for j in range(len(syms))], bar_hours=m.bar_hours,
                             params={**params, "tiers": None, "margin_mode": margin_mode})
    scale = params["capital"]
    ours = {"equity": r.equity.iloc[:, 0].to_numpy(), "cash": r.gseries[layout.G_CASH][:, 0],
            "margin_balance": r.margin_balance.iloc[:, 0].to_numpy(),
            **{k: v.iloc[:, 0].to_numpy() for k, v in r.components.items() if k != "basis_pnl"}}
    for name, got in ours.items():
        want = np.asarray(ref[name], dtype=float)
        bad = np.flatnonzero(~(np.abs(got - want) <= 1e-9 * scale + 1e-9 * np.abs(want)))
        assert not len(bad), f"{name} differs first at bar {bad[0]}: kernel {got[bad[0]]!r}, reference {want[bad[0]]!r}"
    sc = r.symbol_components
    for j, s in enumerate(syms):
        rs = ref["symbols"][j]
        for name, got in (("spot_qty", r.spot_qty[s]), ("perp_qty", r.perp_qty[s]),
                          *((k, sc[k][s]) for k in COMPONENT_NAMES)):
            want = np.asarray(rs[name], dtype=float)
            g = got.to_numpy()
            tol = 1e-9 * (max(1.0, np.abs(want).max()) if name.endswith("qty") else scale)
            bad = np.flatnonzero(~(np.abs(g - want) <= tol + 1e-9 * np.abs(want)))
            assert not len(bad), f"{s} {name} differs first at bar {bad[0]}: kernel {g[bad[0]]!r}, ref {want[bad[0]]!r}"
        assert r.symbol_totals().loc[s, "n_liquidations"] == rs["n_liquidations"]
    assert r.stats()["n_liquidations"].iloc[0] == ref["n_liquidations"]
    assert r.stats()["n_trades"].iloc[0] == ref["n_trades"]
    return r, ref


COMPONENT_NAMES = ("funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
                   "insurance_fund_loss")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), params=PARAMS, margin_mode=st.sampled_from(["isolated", "cross"]),
       n_sym=st.sampled_from([2, 3]), vol=st.sampled_from([0.01, 0.03]), wick=st.sampled_from([0.01, 0.05]),
       gaps=st.booleans(), weights_kind=st.sampled_from(["equal", "random"]))
def test_portfolio_kernel_matches_reference(seed, params, margin_mode, n_sym, vol, wick, gaps, weights_kind):
    rng = np.random.default_rng(seed)
    n = 120
    m = random_market(rng, n, symbols=n_sym, vol=vol, wick=wick, interval_change=bool(seed % 2))
    if gaps:  # one symbol's spot rows missing for a few bars, another's mark for one
        arrays = {k: v.copy() for k, v in m.arrays.items()}
        g0 = int(rng.integers(10, n - 20))
        for k in ("spot_open", "spot_high", "spot_low", "spot_close"):
            arrays[k][g0:g0 + 3, 0] = np.nan
        for k in ("mark_open", "mark_high", "mark_low", "mark_close", "perp_open"):
            arrays[k][g0 + 5, 1] = np.nan
        m = fa.MarketData(index=m.index, symbols=m.symbols, arrays=arrays, timeframe=m.timeframe, events=m.events)
    targets = random_targets(rng, n, n_sym, p_change=0.05)
    if weights_kind == "equal":
        weights = np.full((n, n_sym), 1.0 / n_sym)
    else:
        raw = rng.choice([0.0, 0.1, 0.2, 0.3], size=(n, n_sym))
        weights = np.repeat(raw[::20], 20, axis=0)[:n]
    _compare_portfolio(m, targets, weights, _with_levels(params), margin_mode)
