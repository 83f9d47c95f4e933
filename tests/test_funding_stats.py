"""Funding-regime statistics (``fundarb funding-stats``)."""

from __future__ import annotations

import pandas as pd
import pytest

import fundarb as fa
from fundarb.cli import main
from fundarb.results.funding_stats import funding_stats, streaks


def test_streaks_hand_made():
    idx = pd.date_range("2024-01-01", periods=9, freq="8h", tz="UTC")
    s = streaks(pd.Series([1, 1, -1, 1, 1, 1, -1, -1, 0], index=idx, dtype=float))
    assert s["longest_positive_streak"] == 3 and s["longest_positive_from"] == idx[3]
    assert s["longest_negative_streak"] == 2 and s["longest_negative_to"] == idx[7]


def test_real_btc_matches_published_mean_and_xtz_is_annualised_per_interval(shared_data):
    m = fa.load_freqtrade(shared_data / "binance", ["BTC", "XTZ"])
    btc = funding_stats(m.select("BTC").slice("2020-01-08", "2024-03-11 23:00")).loc["BTC"]
    assert round(btc["mean_annualised"] * 100, 1) == 15.3
    assert funding_stats(m.select("BTC")).loc["BTC", "share_interest_only"] == pytest.approx(0.36, abs=0.01)
    xtz = funding_stats(m.select("XTZ")).loc["XTZ"]
    assert xtz["intervals"].startswith("8h → 1h (from 2025-07-20 09:00) → 4h (from 2025-07-22 16:00)")
    ev = m.events["XTZ"]
    hours = pd.Series(8.0, index=ev.index)
    hours[(ev.index >= "2025-07-20 09:00") & (ev.index < "2025-07-22 16:00")] = 1.0
    hours[ev.index >= "2025-07-22 16:00"] = 4.0
    ev = ev[ev.index < m.index[-1] + m.timeframe]
    assert xtz["mean_annualised"] == pytest.approx((ev * 8760 / hours[ev.index]).mean(), rel=1e-12)
    assert xtz["min"] == pytest.approx(-0.0075)


def test_cli_funding_stats_and_errors(shared_data, capsys, tmp_path):
    out = tmp_path / "fs.csv"
    assert main(["funding-stats", "--data", str(shared_data / "binance"), "--symbols", "ETH",
                 "--start", "2020-01-08", "--end", "2024-03-11 23:00", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "18.64%" in text
    assert pd.read_csv(out, index_col=0).loc["ETH", "events"] > 4000
    assert main(["funding-stats", "--data", str(shared_data / "binance"), "--symbols", "ETHH"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did you mean 'ETH'" in err and "Traceback" not in err
    assert main(["funding-stats", "--data", str(shared_data / "binance"), "--format", "freqtrde"]) == 2
    assert "did you mean 'freqtrade'" in capsys.readouterr().err
