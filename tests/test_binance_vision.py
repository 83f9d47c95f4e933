"""data.binance.vision files (CSV/ZIP, header or not, ms or µs) load to the same data as the source."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb import DataError
from fundarb.data.binance_vision import KLINE_COLUMNS, binance_symbol

MONTHS = ("2024-01", "2024-02")


def _kline_csv(df: pd.DataFrame, *, unit: str, header: bool) -> str:
    mult = {"ms": 1, "us": 1000}[unit]
    ms = df["date"].astype("datetime64[ms, UTC]").astype("int64")
    out = pd.DataFrame({
        "open_time": ms * mult, "open": df["open"], "high": df["high"], "low": df["low"], "close": df["close"],
        "volume": df["volume"], "close_time": (ms + 3_599_999) * mult, "quote_volume": df["volume"] * df["close"],
        "count": 100, "taker_buy_volume": df["volume"] / 2, "taker_buy_quote_volume": 1.0, "ignore": 0,
    })[KLINE_COLUMNS]
    return out.to_csv(index=False, header=header, float_format="%.10g")


def _write(path, text: str, *, zipped: bool):
    path.parent.mkdir(parents=True, exist_ok=True)
    if zipped:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(path.name.replace(".zip", ".csv"), text)
        path.write_bytes(buf.getvalue())
    else:
        path.write_text(text)


def _month(df: pd.DataFrame, month: str) -> pd.DataFrame:
    d = df[df["date"].dt.strftime("%Y-%m") == month]
    return d.reset_index(drop=True)


@pytest.fixture(scope="module")
def source(shared_data):
    b = shared_data / "binance"
    return {
        "spot": pd.read_feather(b / "BTC_USDT-1h.feather"),
        "perp": pd.read_feather(b / "futures" / "BTC_USDT_USDT-1h-futures.feather"),
        "mark": pd.read_feather(b / "futures" / "BTC_USDT_USDT-1h-mark.feather"),
        "funding": pd.read_feather(b / "futures" / "BTC_USDT_USDT-1h-funding_rate.feather"),
    }


def _tree(tmp_path, source, *, daily_conflict: bool = False):
    root = tmp_path / "bv"
    for i, m in enumerate(MONTHS):
        # spot: no header, ms in January, µs in February (Binance's spot files since 2025), zipped
        _write(root / f"spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-{m}.zip",
               _kline_csv(_month(source["spot"], m), unit="us" if i else "ms", header=False), zipped=True)
        # perp: with a header row, plain CSV
        _write(root / f"futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-{m}.csv",
               _kline_csv(_month(source["perp"], m), unit="ms", header=True), zipped=False)
        _write(root / f"futures/um/monthly/markPriceKlines/BTCUSDT/1h/BTCUSDT-1h-{m}.zip",
               _kline_csv(_month(source["mark"], m), unit="ms", header=bool(i)), zipped=True)
        f = _month(source["funding"], m)
        ft = pd.DataFrame({"calc_time": f["date"].astype("datetime64[ms, UTC]").astype("int64"),
                           "funding_interval_hours": 8, "last_funding_rate": f["open"]})
        _write(root / f"futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-{m}.zip",
               ft.to_csv(index=False, float_format="%.10g"), zipped=True)
    # a daily spot file that repeats 2024-02-01 (identical, or with one changed close)
    day = source["spot"][source["spot"]["date"].dt.strftime("%Y-%m-%d") == "2024-02-01"].reset_index(drop=True)
    if daily_conflict:
        day.loc[5, "close"] += 1.0
    _write(root / "spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-01.zip",
           _kline_csv(day, unit="us", header=False), zipped=True)
    return root


def test_round_trip_equals_source(tmp_path, source, shared_data):
    root = _tree(tmp_path, source)
    m = fa.load_binance_vision(root, "BTC")
    ref = fa.load_freqtrade(shared_data / "binance", "BTC").slice("2024-01-01", "2024-02-29 23:00")
    assert m.index.equals(ref.index)
    for f in ("spot_open", "spot_close", "spot_high", "perp_close", "mark_low", "funding_rate", "spot_volume"):
        np.testing.assert_allclose(m.arrays[f], ref.arrays[f], rtol=1e-9, equal_nan=True, err_msg=f)
    assert any("present in two files" in n for n in m.notes)
    assert m.funding_intervals("BTC")[0].hours == 8.0


def test_conflicting_overlap_names_both_files(tmp_path, source):
    root = _tree(tmp_path, source, daily_conflict=True)
    with pytest.raises(DataError) as e:
        fa.load_binance_vision(root, ["BTCUSDT"])
    assert "BTCUSDT-1h-2024-02.zip" in str(e.value) and "BTCUSDT-1h-2024-02-01.zip" in str(e.value)


def test_missing_symbol_and_bad_row(tmp_path, source):
    root = _tree(tmp_path, source)
    with pytest.raises(DataError, match="did you mean 'BTCUSDT'"):
        fa.load_binance_vision(root, "BTCUSDC")
    bad = root / "futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.csv"
    lines = bad.read_text().splitlines()
    cells = lines[3].split(",")
    cells[4] = "oops"
    lines[3] = ",".join(cells)
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        fa.load_binance_vision(root, "BTC")
    assert e.value.column == "close" and e.value.row == 3 and "BTCUSDT-1h-2024-01.csv" in str(e.value)


def test_symbol_spellings():
    assert binance_symbol("BTC") == binance_symbol("BTCUSDT") == binance_symbol("BTC/USDT:USDT") == "BTCUSDT"
