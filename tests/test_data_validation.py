"""Every validation case of the foundation issue: one DataError (or DataWarning) naming file, column and row."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb import DataError, DataWarning


def _csv(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


FUND_COLS = {"time": "Date", "funding_rate": "Rate"}
PX_COLS = {"time": "t", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}


def _ft_dir(tmp_path, *, spot_start="2024-01-01", perp_start="2024-01-01", n=48, spot_edit=None, fund_edit=None):
    """A tiny freqtrade data directory for symbol TST."""
    fut = tmp_path / "futures"
    fut.mkdir(parents=True, exist_ok=True)

    def kl(start):
        idx = pd.date_range(start, periods=n, freq="h", tz="UTC")
        px = np.linspace(10, 11, n)
        return pd.DataFrame({"date": idx, "open": px, "high": px * 1.01, "low": px * 0.99, "close": px,
                             "volume": np.ones(n)})

    spot = kl(spot_start)
    if spot_edit:
        spot = spot_edit(spot)
    spot.to_feather(tmp_path / "TST_USDT-1h.feather")
    kl(perp_start).to_feather(fut / "TST_USDT_USDT-1h-futures.feather")
    kl(perp_start).to_feather(fut / "TST_USDT_USDT-1h-mark.feather")
    idx = pd.date_range(perp_start, periods=n // 8, freq="8h", tz="UTC")
    fund = pd.DataFrame({"date": idx, "open": np.full(len(idx), 1e-4), "high": 0.0, "low": 0.0, "close": 0.0,
                         "volume": 0.0})
    if fund_edit:
        fund = fund_edit(fund)
    fund.to_feather(fut / "TST_USDT_USDT-1h-funding_rate.feather")
    return tmp_path


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv.*not found"):
        fa.load_table(tmp_path / "nope.csv", columns=FUND_COLS, tz="UTC")


@pytest.mark.parametrize("text", ["", "Date,Rate\n"])
def test_empty_file(tmp_path, text):
    p = _csv(tmp_path, "f.csv", text)
    with pytest.raises(DataError, match=r"f\.csv.*(empty|no data rows)"):
        fa.load_table(p, columns=FUND_COLS, tz="UTC")


def test_missing_column_with_did_you_mean(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rates\n2024-01-01 00:00,0.0001\n")
    with pytest.raises(DataError) as e:
        fa.load_table(p, columns=FUND_COLS, tz="UTC")
    assert "f.csv" in str(e.value) and "column 'Rate'" in str(e.value) and "did you mean 'Rates'" in str(e.value)


def test_non_numeric_value_names_row(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,0.0001\n2024-01-01 08:00,abc\n")
    with pytest.raises(DataError) as e:
        fa.load_table(p, columns=FUND_COLS, tz="UTC")
    assert e.value.source.endswith("f.csv") and e.value.column == "Rate" and e.value.row == 2
    assert "'abc' is not a number" in str(e.value)


def test_percent_strings_need_consent(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,0.0100%\n2024-01-01 08:00,-0.0050%\n")
    with pytest.raises(DataError) as e:
        fa.load_table(p, columns=FUND_COLS, tz="UTC")
    assert "percent=True" in str(e.value) and e.value.row == 1 and e.value.column == "Rate"
    s = fa.load_table(p, columns=FUND_COLS, tz="UTC", percent=True)
    assert s.tolist() == pytest.approx([0.0001, -0.00005])


@pytest.mark.parametrize(("value", "what"), [("", "missing"), ("-3", "not positive"), ("0", "not positive")])
def test_bad_price(tmp_path, value, what):
    p = _csv(tmp_path, "px.csv", f"t,o,h,l,c,v\n2024-01-01 00:00,1,2,0.5,1,10\n2024-01-01 01:00,1,2,0.5,{value},10\n")
    with pytest.raises(DataError) as e:
        fa.load_table(p, columns=PX_COLS, tz="UTC", kind="spot")
    assert e.value.column == "c" and e.value.row == 2 and what in str(e.value)


def test_conflicting_duplicates_fail_identical_are_dropped_and_counted(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,0.0001\n2024-01-01 00:00,0.0002\n")
    with pytest.raises(DataError) as e:
        fa.load_table(p, columns=FUND_COLS, tz="UTC")
    assert e.value.row == 2 and "conflicting" in str(e.value)
    from fundarb.data.validate import CleanReport

    q = _csv(tmp_path, "g.csv",
             "Date,Rate\n2024-01-01 00:00,0.0001\n2024-01-01 00:00,0.0001\n2024-01-01 08:00,0.0001\n")
    rep = CleanReport(source="g")
    s = fa.load_table(q, columns=FUND_COLS, tz="UTC", report=rep)
    assert len(s) == 2 and rep.duplicates_dropped == 1
    # through a loader the count reaches MarketData.notes
    d = _ft_dir(tmp_path / "ft", spot_edit=lambda df: pd.concat([df.iloc[:5], df.iloc[4:]]).reset_index(drop=True))
    m = fa.load_freqtrade(d, "TST")
    assert any("dropped 1 identical duplicate" in n for n in m.notes)


def test_unsorted_rows(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 08:00,0.0001\n2024-01-01 00:00,0.0001\n")
    with pytest.raises(DataError) as e:
        fa.load_table(p, columns=FUND_COLS, tz="UTC")
    assert e.value.row == 2 and "not in time order" in str(e.value) and e.value.column == "Date"


def test_naive_timestamps_need_tz(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,0.0001\n")
    with pytest.raises(DataError, match=r"naive .*tz="):
        fa.load_table(p, columns=FUND_COLS, tz=None)
    s = fa.load_table(p, columns=FUND_COLS, tz="Etc/GMT-3")
    assert s.index[0] == pd.Timestamp("2023-12-31 21:00", tz="UTC")


def test_implausible_funding_warns(tmp_path):
    # one spike among ordinary rates (a file whose median is above 1% is an error: see test_bad_input)
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,0.0001\n2024-01-01 08:00,0.05\n2024-01-01 16:00,0.0001\n")
    with pytest.warns(DataWarning, match=r"f\.csv: column 'Rate', row 2 .*percent"):
        s = fa.load_table(p, columns=FUND_COLS, tz="UTC")
    assert s.iloc[1] == 0.05  # kept: capped spikes are real
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fa.load_table(_csv(tmp_path, "ok.csv", "Date,Rate\n2024-01-01 00:00,0.003\n"), columns=FUND_COLS, tz="UTC")


def test_spot_and_perp_without_overlap(tmp_path):
    d = _ft_dir(tmp_path, spot_start="2023-01-01", perp_start="2024-01-01")
    with pytest.raises(DataError) as e:
        fa.load_freqtrade(d, "TST")
    assert "TST_USDT-1h.feather" in str(e.value) and "futures.feather" in str(e.value)
    assert "do not overlap" in str(e.value)


def test_symbol_not_there_did_you_mean(tmp_path):
    d = _ft_dir(tmp_path)
    with pytest.raises(DataError, match="did you mean 'TST'"):
        fa.load_freqtrade(d, "TSX")


def test_freqtrade_bad_value_names_file_column_row(tmp_path):
    def corrupt(df):
        df.loc[3, "close"] = -1.0
        return df

    d = _ft_dir(tmp_path, spot_edit=corrupt)
    with pytest.raises(DataError) as e:
        fa.load_freqtrade(d, "TST")
    assert e.value.source.endswith("TST_USDT-1h.feather") and e.value.column == "close" and e.value.row == 4


def test_funding_file_missing_column_in_freqtrade(tmp_path):
    d = _ft_dir(tmp_path, fund_edit=lambda df: df.drop(columns=["open"]))
    with pytest.raises(DataError, match=r"funding_rate\.feather.*column 'open'"):
        fa.load_freqtrade(d, "TST")


def test_gaps_are_reported_not_filled(tmp_path):
    d = _ft_dir(tmp_path, spot_edit=lambda df: df.drop(index=[10, 11]).reset_index(drop=True))
    m = fa.load_freqtrade(d, "TST")
    assert m.describe().loc["TST", "spot_gap_bars"] == 2
    assert np.isnan(m["spot_close"]["TST"].iloc[10:12]).all()


def test_mixed_epoch_units_are_refused(tmp_path):
    p = _csv(tmp_path, "f.csv", "t,r\n1704067200000,0.0001\n1704096000000000,0.0001\n")
    with pytest.raises(DataError) as e:
        fa.load_table(p, columns={"time": "t", "funding_rate": "r"}, tz="UTC")
    assert e.value.row == 2 and "one unit per file" in str(e.value)


def test_mixed_offsets_and_clock_changes(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 03:00+03:00,0.0001\n2024-01-01 08:00+00:00,0.0001\n")
    s = fa.load_table(p, columns=FUND_COLS, tz=None)
    assert list(s.index.hour) == [0, 8]
    q = _csv(tmp_path, "g.csv", "Date,Rate\n2024-01-01 03:00+03:00,0.0001\n2024-01-01 08:00,0.0001\n")
    with pytest.raises(DataError, match="no UTC offset") as e:
        fa.load_table(q, columns=FUND_COLS, tz=None)
    assert e.value.row == 2
    c = _csv(tmp_path, "h.csv", "Date,Rate\n2024-03-31 01:00,0.0001\n2024-03-31 02:30,0.0001\n")
    with pytest.raises(DataError, match="does not exist in Europe/Berlin") as e:
        fa.load_table(c, columns=FUND_COLS, tz="Europe/Berlin")
    assert e.value.row == 2


def test_infinite_price_and_rate(tmp_path):
    p = _csv(tmp_path, "px.csv", "t,o,h,l,c,v\n2024-01-01 00:00,1,inf,0.5,1,10\n")
    with pytest.raises(DataError, match="not finite") as e:
        fa.load_table(p, columns=PX_COLS, tz="UTC", kind="spot")
    assert e.value.column == "h" and e.value.row == 1
    q = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,inf\n")
    with pytest.raises(DataError, match="not finite"):
        fa.load_table(q, columns=FUND_COLS, tz="UTC")
