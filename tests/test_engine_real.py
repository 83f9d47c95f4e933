"""The engine on real BTC data (DESIGN §8 check against the published mean funding)."""

from __future__ import annotations

import numpy as np
import pytest

import fundarb as fa


@pytest.fixture(scope="module")
def btc(shared_data):
    return fa.load_freqtrade(shared_data / "binance", ["BTC"]).slice("2020-01-08", "2024-03-11 23:00")


def test_always_on_carry_collects_the_published_funding(btc):
    r = fa.backtest(btc, 1, costs=fa.Costs.zero(), leverage=1.0, rebalance_every="7d")
    s = r.stats().iloc[0]
    assert s["n_liquidations"] == 0
    assert r.identity_error() < 1e-9
    years = len(btc) / btc.periods_per_year
    funding = r.components["funding"].iloc[:, 0].to_numpy()
    paid = np.diff(funding, prepend=0.0)
    notional = np.concatenate([[0.0], -r.perp_qty.iloc[:-1, 0].to_numpy()]) * btc.arrays["mark_open"][:, 0]
    ev = paid != 0
    # per unit of perp notional, every event is settled once on the position held: Σ rates, annualised
    per_notional = (paid[ev] / notional[ev]).sum() / years
    mean_x1095 = btc.events["BTC"]["2020-01-08":"2024-03-11 23:00"].mean() * 1095
    assert round(per_notional * 100, 1) == 15.3
    assert per_notional == pytest.approx(mean_x1095, rel=2e-3)  # event count per year 1095 vs 365.25·3
    # on the average notional held, the weekly rebalance keeps the drift small
    held = notional > 0
    assert s["funding_pnl"] / notional[held].mean() / years == pytest.approx(0.153, abs=0.005)
    # zero costs: what is not funding is basis (spot vs mark) PnL, small against funding
    assert abs(s["basis_pnl"]) < 0.1 * s["funding_pnl"]


def test_one_x_carry_without_rebalancing_is_liquidated_when_btc_doubles(btc):
    r = fa.backtest(btc, 1, costs=fa.Costs.zero(), leverage=1.0)
    liq = r.liquidations
    assert len(liq) == 1
    # at 1× the short perp's margin equals its notional (plus the funding it collected): it goes at about
    # twice the entry price, exactly where the exchange rule puts it for the margin balance of that bar

    entry = btc.arrays["perp_open"][0, 0]
    i = int(np.flatnonzero(btc.index == liq["time"][0])[0])
    q = -r.perp_qty.iloc[i - 1, 0]
    f = np.nan_to_num(btc.arrays["funding_rate"][i, 0]) * q * btc.arrays["mark_open"][i, 0]
    mb = r.margin_balance.iloc[i - 1, 0] + f
    assert liq["perp_price"][0] == pytest.approx(fa.liquidation_price("short", entry, q, mb, mmr=0.005), rel=1e-12)
    assert 2 / 1.005 < liq["perp_price"][0] / entry < 2.3 / 1.005
