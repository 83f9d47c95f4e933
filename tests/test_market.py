"""MarketData alignment rules of DESIGN §1 on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fundarb import DataError
from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData, funding_intervals
from toy import ohlc


def _frames(n=48, funding_times=None, rates=None, mark=True, symbol="X", start="2024-01-01"):
    idx = pd.date_range(start, periods=n, freq="h", tz="UTC", name="time")
    px = ohlc(np.linspace(100, 110, n), index=idx)
    ft = pd.DatetimeIndex(funding_times if funding_times is not None else idx[::8])
    ev = pd.Series(rates if rates is not None else np.full(len(ft), 1e-4), index=ft.rename("time"))
    return SymbolFrames(symbol=symbol, spot=px, perp=px, mark=px if mark else None, funding=ev)


def test_events_inside_a_bar_are_summed_and_counted():
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    times = [t0, t0 + pd.Timedelta("8h"), t0 + pd.Timedelta("8h30min"), t0 + pd.Timedelta("47h")]
    m = MarketData.from_frames([_frames(funding_times=times, rates=[1e-4, 2e-4, 3e-4, 0.0])])
    f = m["funding_rate"]["X"]
    assert f.iloc[0] == 1e-4
    assert f.iloc[8] == pytest.approx(5e-4)
    assert m["funding_events"]["X"].iloc[8] == 2
    assert np.isnan(f.iloc[1])


def test_funding_interval_change_and_missing_events():
    t = pd.date_range("2024-01-01", periods=10, freq="8h", tz="UTC")
    t = t.delete(4)  # one missing event: not an interval change
    t = t.append(pd.date_range(t[-1] + pd.Timedelta("1h"), periods=5, freq="h", tz="UTC"))
    segs, missing = funding_intervals(t)
    assert [s.hours for s in segs] == [8.0, 1.0]
    assert missing == [pd.Timestamp("2024-01-02 08:00", tz="UTC")]
    assert segs[1].first == t[9] and segs[1].events == 5


def test_missing_mark_falls_back_with_warning():
    m = MarketData.from_frames([_frames(mark=False)])
    assert (m["mark_close"]["X"] == m["perp_close"]["X"]).all()
    assert any("stands in for the mark" in w for w in m.warnings)


def test_no_overlap_is_an_error():
    a = _frames()
    late = ohlc([1.0] * 10, index=pd.date_range("2025-01-01", periods=10, freq="h", tz="UTC", name="time"))
    fr = SymbolFrames(symbol="X", spot=a.spot, perp=late, funding=a.funding, sources={"spot": "s.feather",
                                                                                      "perp": "p.feather"})
    with pytest.raises(DataError, match=r"s\.feather / p\.feather.*do not overlap"):
        MarketData.from_frames([fr])


def test_off_grid_bars_are_an_error():
    a = _frames()
    shifted = a.spot.copy()
    shifted.index = shifted.index + pd.Timedelta("30min")
    fr = SymbolFrames(symbol="X", spot=shifted, perp=shifted, funding=a.funding, sources={"spot": "s.csv"})
    with pytest.raises(DataError, match="not on the 0 days 01:00:00 grid"):
        MarketData.from_frames([fr])


def test_select_slice_and_getitem():
    m = MarketData.from_frames([_frames(symbol="AAA"), _frames(symbol="BBB", start="2024-01-01 05:00")])
    assert m.symbols == ("AAA", "BBB")
    act = m.active()
    assert not act[:5, 1].any() and act[5:, 1].all()
    s = m.slice("2024-01-01 10:00", "2024-01-01 20:00")
    assert len(s) == 11 and np.shares_memory(s.arrays["spot_close"], m.arrays["spot_close"])
    assert m.select("BBB")["spot_close"].columns.tolist() == ["BBB"]
    with pytest.raises(KeyError, match="did you mean 'funding_rate'"):
        m["funding_rates"]
    with pytest.raises(DataError, match="did you mean 'AAA'"):
        m.select("AAB")
    assert m.periods_per_year == 8760
