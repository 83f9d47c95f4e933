"""fundarb's Parquet store: layout, atomic writes, load_store round trip, errors."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb import DataError
from fundarb.data.store import load_store, read_table, store_path, symbol_id, write_json_atomic, write_table
from toy import ohlc


def _write_symbol(root, symbol="BTC/USDT:USDT", n=48, mark=True):
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="time")
    px = ohlc(np.linspace(100, 120, n), index=idx)
    for kind in ("spot", "perp") + (("mark",) if mark else ()):
        write_table(store_path(root, "binance", symbol, kind), px, metadata={"symbol": symbol, "kind": kind})
    fund = pd.DataFrame({"funding_rate": np.full(n // 8, 1e-4)}, index=idx[::8])
    write_table(store_path(root, "binance", symbol, "funding"), fund)
    return px


def test_layout_and_round_trip(tmp_path):
    px = _write_symbol(tmp_path)
    assert symbol_id("BTC/USDT:USDT") == "BTC_USDT_USDT"
    assert os.path.exists(tmp_path / "binance" / "BTC_USDT_USDT" / "spot-1h.parquet")
    assert os.path.exists(tmp_path / "binance" / "BTC_USDT_USDT" / "funding.parquet")
    back = read_table(store_path(tmp_path, "binance", "BTC/USDT:USDT", "spot"), "spot")
    pd.testing.assert_frame_equal(back, px, check_freq=False, check_index_type=False)
    m = load_store(tmp_path, ["BTC/USDT:USDT"])
    assert m.symbols == ("BTC/USDT:USDT",)
    assert m["funding_rate"].iloc[:, 0].notna().sum() == 6
    assert load_store(tmp_path, "BTC").symbols == ("BTC",)
    assert fa.load_store(tmp_path).symbols == ("BTC_USDT_USDT",)


def test_missing_symbol_and_files(tmp_path):
    _write_symbol(tmp_path)
    with pytest.raises(DataError, match="did you mean 'BTC_USDT_USDT'"):
        load_store(tmp_path, ["BTC/USDT:USDC"])
    os.remove(store_path(tmp_path, "binance", "BTC/USDT:USDT", "perp"))
    with pytest.raises(DataError, match="perp file missing"):
        load_store(tmp_path, ["BTC/USDT:USDT"])
    with pytest.raises(DataError, match="store directory not found"):
        load_store(tmp_path / "nope")


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    px = _write_symbol(tmp_path)
    path = store_path(tmp_path, "binance", "BTC/USDT:USDT", "spot")
    before = open(path, "rb").read()
    bad = px.copy()
    bad.index = bad.index[::-1]  # unsorted: refused before anything is written
    with pytest.raises(DataError, match="sorted"):
        write_table(path, bad)
    assert open(path, "rb").read() == before
    assert [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")] == []


def test_write_json_atomic(tmp_path):
    p = tmp_path / "binance" / "leverage_tiers.json"
    write_json_atomic(str(p), {"BTC/USDT:USDT": []})
    assert p.read_text().startswith("{")
