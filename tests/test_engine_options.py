"""One options contract (issue 10 item 3): EngineOptions declares the engine's defaults and ranges once."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest

import fundarb as fa
from fundarb.engine.config import STRATEGY_OPTIONS, EngineOptions
from fundarb.errors import ConfigError
from fundarb.signals.carry import FundingCarry
from fundarb.signals.portfolio import TopNRotation
from fundarb.sweeps.grid import ENGINE_OPTIONS, engine_options
from toy import ohlc, toy_market

# each option's range error names the option and its range
RANGES = [
    ("capital", 0.0, r"capital must be > 0"),
    ("capital", -1.0, r"capital must be > 0"),
    ("capital", math.inf, r"capital must be > 0"),
    ("leverage", 0.0, r"leverage must be > 0"),
    ("leverage", math.nan, r"leverage must be > 0"),
    ("spot_leverage", 10.5, r"spot_leverage must be > 0 and ≤ 10"),
    ("spot_leverage", 0.0, r"spot_leverage must be > 0 and ≤ 10"),
    ("mmr", 1.0, r"mmr must be in \[0, 1\)"),
    ("mmr", -0.01, r"mmr must be in \[0, 1\)"),
    ("rebalance_at", 1.0, r"0 < rebalance_at < 1"),
    ("rebalance_at", 0.0, r"0 < rebalance_at < 1"),
    ("spot_rebalance_level", 1.05, r"spot_rebalance_level must be a finite margin level > spot_liquidation_level"),
    ("spot_rebalance_level", math.inf, r"spot_rebalance_level must be a finite margin level"),
    ("rebalance_every", -1, r"rebalance_every must be .*a number of bars ≥ 0"),
    ("rebalance_every", "7 parsecs", r"rebalance_every"),
    ("after_liquidation", "renter", r"after_liquidation must be one of 'close', 'hold', 'reenter'.*'reenter'"),
    ("liquidation_loss", "marg", r"liquidation_loss must be one of 'fee', 'margin'.*did you mean 'margin'"),
    ("spot_liquidation_level", 1.0, r"spot_liquidation_level must be a finite margin level > 1"),
    ("spot_liquidation_level", math.nan, r"spot_liquidation_level must be a finite margin level > 1"),
    ("margin_mode", "crosss", r"margin_mode must be one of 'isolated', 'cross'.*did you mean 'cross'"),
]


@pytest.mark.parametrize(("name", "value", "match"), RANGES)
def test_each_range_error_names_the_option_and_range(name, value, match):
    with pytest.raises(ConfigError, match=match):
        EngineOptions(**{name: value})
    m = toy_market(ohlc([100.0] * 3))
    with pytest.raises(ConfigError, match=match):  # backtest checks through EngineOptions, before any work
        fa.backtest(m, 1, **{name: value})


NUMERIC = ["capital", "leverage", "spot_leverage", "mmr", "rebalance_at", "spot_rebalance_level", "rebalance_every",
           "spot_liquidation_level"]


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("value", [True, False, np.bool_(True)])
def test_booleans_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        EngineOptions(**{name: value})


@pytest.mark.parametrize("value", [True, np.bool_(True)])
def test_costs_refuse_booleans(value):
    for f in ("spot_fee", "perp_fee", "half_spread_bps", "slippage_bps", "slippage_k", "borrow_rate",
              "liquidation_fee"):
        with pytest.raises(ConfigError, match=f"costs.{f} must be a finite number"):
            fa.Costs(**{f: value})


def test_numpy_numbers_accepted_and_normalised():
    o = EngineOptions(capital=np.int64(5000), leverage=np.float64(2.0), spot_leverage=np.int64(2), mmr=np.float64(0.01),
                      rebalance_at=np.float64(0.5), spot_rebalance_level=np.float64(1.4), rebalance_every=np.int64(24),
                      spot_liquidation_level=np.float64(1.2))
    assert (o.capital, o.leverage, o.spot_leverage, o.mmr, o.rebalance_at) == (5000.0, 2.0, 2.0, 0.01, 0.5)
    assert (o.spot_rebalance_level, o.rebalance_every, o.spot_liquidation_level) == (1.4, 24, 1.2)
    assert type(o.capital) is float and type(o.rebalance_every) is int
    c = fa.Costs(spot_fee=np.float64(0.002), perp_fee=np.int64(0), borrow_rate=np.float32(0.0))
    assert (c.spot_fee, c.perp_fee) == (0.002, 0.0) and type(c.perp_fee) is float
    m = toy_market(ohlc([100.0, 101.0, 102.0, 103.0]))
    plain = fa.backtest(m, 1, capital=5000.0, leverage=2.0, rebalance_every=2).stats()
    npy = fa.backtest(m, 1, capital=np.int64(5000), leverage=np.float64(2.0), rebalance_every=np.int64(2)).stats()
    assert plain.equals(npy)
    s = FundingCarry(leverage=np.int64(2), rebalance_at=np.float64(0.3), rebalance_every=np.int64(5))
    assert s.engine_options()["leverage"] == 2.0 and s.engine_options()["rebalance_every"] == 5


def test_strategies_refuse_what_engine_options_refuse():
    for cls in (FundingCarry, TopNRotation):
        with pytest.raises(ConfigError, match="spot_leverage must be > 0 and ≤ 10"):
            cls(spot_leverage=20.0)
        with pytest.raises(ConfigError, match="leverage"):
            cls(leverage=True)
        with pytest.raises(ConfigError, match="did you mean 'cross'"):
            cls(margin_mode="crss")


def test_defaults_are_one_declaration():
    d = EngineOptions()
    params = inspect.signature(fa.backtest).parameters
    for f in d.as_dict():
        assert params[f].default == getattr(d, f), f
    for cls in (FundingCarry, TopNRotation):
        assert cls().engine_options() == d.as_dict(STRATEGY_OPTIONS)
        assert set(STRATEGY_OPTIONS) <= {f for f in cls.field_names()}
    assert engine_options(object()) == d.as_dict(ENGINE_OPTIONS)
    assert engine_options(FundingCarry()) == d.as_dict(ENGINE_OPTIONS)
    # the defaults are valid under their own ranges, and the declaration is what the docs say
    assert d == EngineOptions(**d.as_dict())
    assert (d.capital, d.leverage, d.spot_leverage, d.mmr, d.spot_liquidation_level) == (10_000.0, 1.0, 3.0, 0.005, 1.1)
    assert (d.rebalance_at, d.spot_rebalance_level, d.rebalance_every) == (None, None, None)
    assert (d.after_liquidation, d.liquidation_loss, d.margin_mode) == ("close", "fee", "isolated")
    assert EngineOptions.default("margin_mode") == "isolated"


def test_frozen():
    o = EngineOptions()
    with pytest.raises(AttributeError):
        o.leverage = 3.0  # type: ignore[misc]
