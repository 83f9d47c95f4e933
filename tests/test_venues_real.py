"""The seven-venue BTC-USDT funding files in ../shared/data/exchanges load with their time zones."""

from __future__ import annotations

import pytest

import fundarb as fa

# Date labels are naive UTC+3 except gate and dydx (UTC). ../shared/data/README.md says dydx is UTC+3 too, but
# its file spans exactly 2022-01-01 00:00 → 2023-12-31 23:00 only when read as UTC (the window in its name).
VENUES = {
    "binance": ("Etc/GMT-3", {0, 8, 16}),
    "bybit": ("Etc/GMT-3", {0, 8, 16}),
    "gate": ("UTC", {0, 8, 16}),
    "htx": ("Etc/GMT-3", {0, 8, 16}),
    "kucoin": ("Etc/GMT-3", {4, 12, 20}),
    "mexc": ("Etc/GMT-3", {0, 8, 16}),
    "dydx": ("UTC", set(range(24))),
}


def _file(shared_data, venue):
    hits = sorted((shared_data / "exchanges").glob(f"BTC-USDT_{venue}_*_funding_history.csv"))
    assert hits, f"no file for {venue}"
    return hits[0]


@pytest.mark.parametrize("venue", sorted(VENUES))
def test_settlement_hours_in_utc(shared_data, venue):
    tz, hours = VENUES[venue]
    s = fa.load_venue_funding(_file(shared_data, venue), tz=tz)
    assert len(s) > 3000
    on_hours = s.index.hour.isin(sorted(hours)) & (s.index.minute == 0)
    assert on_hours.mean() > 0.997  # htx has 7 off-schedule settlements in 3,284
    if venue != "dydx":
        # the wrong zone moves every settlement off the venue's hours
        wrong = fa.load_venue_funding(_file(shared_data, venue), tz="UTC" if tz != "UTC" else "Etc/GMT-3")
        assert wrong.index.hour.isin(sorted(hours)).mean() < 0.01


def test_zone_is_required(shared_data):
    with pytest.raises(fa.DataError, match="naive"):
        fa.load_venue_funding(_file(shared_data, "binance"), tz=None)


def test_binance_venue_file_matches_freqtrade_data(shared_data):
    venue = fa.load_venue_funding(_file(shared_data, "binance"), tz="Etc/GMT-3")
    # Binance stamps settlements a few milliseconds after the hour (1,520 of them here); freqtrade rounds
    assert (venue.index.microsecond > 0).sum() > 1000
    venue.index = venue.index.floor("s")
    ft = fa.load_freqtrade(shared_data / "binance", "BTC").events["BTC"]
    common = venue.index.intersection(ft.index)
    assert len(common) > 4000
    assert (venue[common] - ft[common]).abs().max() < 1e-8


def test_dydx_is_utc_its_file_window(shared_data):
    s = fa.load_venue_funding(_file(shared_data, "dydx"), tz="UTC")
    assert s.index[0] == __import__("pandas").Timestamp("2022-01-01 00:00", tz="UTC")
    assert s.index[-1] == __import__("pandas").Timestamp("2023-12-31 23:00", tz="UTC")
