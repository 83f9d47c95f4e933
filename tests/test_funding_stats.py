"""Funding-regime statistics (``fundarb funding-stats``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb.cli import main
from fundarb.data.funding import annualised_funding, funding_summary, funding_table, symbol_events
from fundarb.results.funding_stats import funding_stats, streaks


def test_streaks_hand_made():
    idx = pd.date_range("2024-01-01", periods=9, freq="8h", tz="UTC")
    s = streaks(pd.Series([1, 1, -1, 1, 1, 1, -1, -1, 0], index=idx, dtype=float))
    assert s["longest_positive_streak"] == 3 and s["longest_positive_from"] == idx[3]
    assert s["longest_negative_streak"] == 2 and s["longest_negative_to"] == idx[7]


def test_real_btc_matches_published_mean_and_xtz_is_annualised_per_interval(shared_data):
    m = fa.load_freqtrade(shared_data / "binance", ["BTC", "XTZ"])
    btc = funding_stats(m.select("BTC").slice("2020-01-08", "2024-03-11 23:00")).loc["BTC"]
    assert round(btc["annualised_funding"] * 100, 1) == 15.3
    assert btc["events"] == 4575 and btc["mean_per_event"] == "0.0140% / 8h"
    assert funding_stats(m.select("BTC")).loc["BTC", "share_interest_only"] == pytest.approx(0.36, abs=0.01)
    xtz = funding_stats(m.select("XTZ")).loc["XTZ"]
    assert xtz["intervals"].startswith("8h → 1h (from 2025-07-20 09:00) → 4h (from 2025-07-22 16:00)")
    # DESIGN §8 by hand: Σ rates ÷ (last event + 4h − first event) in 365-day years, every loaded event counted
    ev = m.events["XTZ"]
    years = (ev.index[-1] + pd.Timedelta(hours=4) - ev.index[0]) / pd.Timedelta(days=365)
    assert xtz["events"] == len(ev) == 2083
    assert xtz["annualised_funding"] == pytest.approx(ev.sum() / years, rel=1e-12)
    assert round(xtz["annualised_funding"] * 100, 2) == -12.39
    assert xtz["mean_per_event"] == "-0.0092% / 8h → -0.0486% / 1h → -0.0046% / 4h"
    hours = pd.Series(8.0, index=ev.index)
    hours[(ev.index >= "2025-07-20 09:00") & (ev.index < "2025-07-22 16:00")] = 1.0
    hours[ev.index >= "2025-07-22 16:00"] = 4.0
    assert xtz["std_annualised"] == pytest.approx((ev * 8760 / hours).std(), rel=1e-12)
    assert xtz["min"] == pytest.approx(-0.0075)


def test_cli_funding_stats_and_errors(shared_data, capsys, tmp_path):
    out = tmp_path / "fs.csv"
    assert main(["funding-stats", "--data", str(shared_data / "binance"), "--symbols", "ETH",
                 "--start", "2020-01-08", "--end", "2024-03-11 23:00", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert "18.64%" in text and "0.0170% / 8h" in text
    assert pd.read_csv(out, index_col=0).loc["ETH", "events"] > 4000
    assert main(["funding-stats", "--data", str(shared_data / "binance"), "--symbols", "ETHH"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did you mean 'ETH'" in err and "Traceback" not in err
    assert main(["funding-stats", "--data", str(shared_data / "binance"), "--format", "freqtrde"]) == 2
    assert "did you mean 'freqtrade'" in capsys.readouterr().err


def test_summary_by_hand_interval_change_and_gaps():
    t = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 08:00", "2024-01-01 16:00", "2024-01-02 00:00",
                          "2024-01-02 01:00", "2024-01-02 02:00"], tz="UTC")
    ev = pd.Series([0.001, 0.002, 0.003, -0.004, 0.0002, 0.0004], index=t)
    f = funding_summary(ev)
    # span: first event → last event + the 1h interval then in force = 27h
    assert f.events == 6 and f.end == pd.Timestamp("2024-01-02 03:00", tz="UTC")
    assert f.annualised == pytest.approx(0.0026 / (27 / 8760), rel=1e-12)
    # the event ending the last 8h spacing (01-02 00:00) settles 8h; the 1h run starts at 01:00
    assert f.per_event == "0.0500% / 8h → 0.0300% / 1h"
    # a missing event inside a run adds nothing but keeps its time in the span
    g = funding_summary(ev.drop(t[1]))
    assert g.events == 5 and g.annualised == pytest.approx(0.0006 / (27 / 8760), rel=1e-12)
    assert np.isnan(annualised_funding(ev.iloc[:1])) and funding_summary(ev.iloc[:0]).events == 0


def test_xtz_same_everywhere_and_avax_counts_agree(shared_data, capsys):
    m = fa.load_freqtrade(shared_data / "binance", ["XTZ", "AVAX"])
    ours = annualised_funding(symbol_events(m, "XTZ"))
    assert m.describe().loc["XTZ", "annualised_funding"] == ours
    assert funding_stats(m).loc["XTZ", "annualised_funding"] == ours
    assert funding_table(m).loc["XTZ", "annualised_funding"] == ours
    assert round(ours * 100, 2) == -12.39
    # AVAX: events after the last price bar (2026-05-16 18:00) cannot be settled and are counted by neither
    assert m.describe().loc["AVAX", "funding_events"] == funding_stats(m).loc["AVAX", "events"] == 1143
    assert len(m.events["AVAX"]) == 1148
    for cmd in ("describe", "funding-stats"):
        assert main([cmd, "--data", str(shared_data / "binance"), "--symbols", "XTZ,AVAX"]) == 0
        lines = capsys.readouterr().out.splitlines()
        row = next(x for x in lines if x.startswith("annualised_funding"))
        assert row.split()[1:] == [f"{ours:.2%}", "0.08%"]
        assert next(x for x in lines if x.split()[0] in ("funding_events", "events")).split()[1:] == ["2083", "1143"]


def test_figures_do_not_depend_on_other_symbols(shared_data):
    both = fa.load_freqtrade(shared_data / "binance", ["BTC", "XTZ"])
    for sym in ("BTC", "XTZ"):
        alone = fa.load_freqtrade(shared_data / "binance", [sym])
        pd.testing.assert_series_equal(funding_stats(alone).loc[sym], funding_stats(both).loc[sym])
        pd.testing.assert_series_equal(alone.describe().loc[sym].drop(["bars"]), both.describe().loc[sym].drop(
            ["bars"]))
    # also over a window: BTC's grid is longer than XTZ's, which must not change XTZ's figures
    w_both = funding_stats(both.slice("2025-06-01", "2026-01-01")).loc["XTZ"]
    w_alone = funding_stats(fa.load_freqtrade(shared_data / "binance", ["XTZ"]).slice("2025-06-01", "2026-01-01"))
    pd.testing.assert_series_equal(w_alone.loc["XTZ"], w_both)


def test_datasets_readme_calibration_uses_the_same_figure(shared_data):
    from pathlib import Path

    from fundarb.data.synthetic import calibration_table

    table = calibration_table(shared_data)
    xtz = fa.load_freqtrade(shared_data / "binance", ["XTZ"])
    ours = annualised_funding(symbol_events(xtz, "XTZ"))
    assert table.loc["mean annualised", "XTZ 2025-05 → 2026-05"] == pytest.approx(ours, rel=1e-12)
    readme = (Path(__file__).resolve().parents[1] / "datasets" / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| mean annualised"))
    assert row.split("|")[-2].strip() == f"{ours:.1%}".replace("-", "−")


def test_report_shows_the_one_funding_statistic(tmp_path):
    import fundarb as fa
    from fundarb.data.funding import format_percent, funding_table

    m = fa.demo_market(days=60)
    res = fa.backtest(m, 1)
    html = (tmp_path / "r.html").read_text() if res.report(str(tmp_path / "r.html")) else ""
    table = funding_table(m)
    for s in m.symbols:
        assert format_percent(table.loc[s, "annualised_funding"]) in html
