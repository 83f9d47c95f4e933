"""``fundarb fetch`` against a loopback Binance (tests/loopback_exchange.py) serving slices of ../shared/data:
ccxt unmodified, pointed at 127.0.0.1 with ``api_url``; no other traffic."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fundarb.cli import main as cli_main
from fundarb.data import fetch_args
from fundarb.data.fetch import (
    FetchError,
    FetchReport,
    RetryPolicy,
    apply_api_url,
    fetch_manifest,
    read_manifest,
)
from fundarb.data.fetch import fetch as fetch_data
from fundarb.data.fetch_fetcher import Fetcher
from fundarb.data.fetch_report import iso_ms
from fundarb.data.store import load_store, store_path
from fundarb.errors import ConfigError
from loopback_exchange import SHARED_DATA, Fault, LoopbackExchange

ROOT = Path(__file__).resolve().parents[1]
TIERS = SHARED_DATA / "binance" / "leverage_tiers.json"
KINDS = ("spot", "perp", "mark", "funding")
PATHS = {"spot": "/api/v3/klines", "perp": "/fapi/v1/klines", "mark": "/fapi/v1/markPriceKlines",
         "funding": "/fapi/v1/fundingRate"}
START, END = "2021-04-01", "2021-06-01"  # spot has two genuine gaps in here (2021-04-20, 2021-04-25)


# ----------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket this process opens must go to 127.0.0.1."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"test tried to reach {address!r}; only 127.0.0.1 is allowed")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def retry(sleeps: list[float]) -> RetryPolicy:
    """Backoff that records its delays instead of sleeping."""
    return RetryPolicy(sleep=sleeps.append)


def fetch(**kw: Any) -> FetchReport:
    """:func:`fetch` against the loopback server, with ccxt's rate limiter off: it paces a real exchange, and
    127.0.0.1 is not one (the command-line runs keep it on)."""
    return fetch_data(**{"rate_limit": False, **kw})


def served(shared_data: Path, bases: tuple[str, ...] = ("BTC", "ETH"), start: str = START, end: str = END,
           **kw: object) -> LoopbackExchange:
    return LoopbackExchange(bases, start, end, data_dir=shared_data, **kw)  # type: ignore[arg-type]


def stored(out: Path, base: str, kind: str) -> pd.DataFrame:
    path = store_path(out, "binance", f"{base}/USDT:USDT", kind)
    df = pq.read_table(path).to_pandas()
    return df.set_index("time")


def assert_equals_source(out: Path, srv: LoopbackExchange, bases: tuple[str, ...] = ("BTC", "ETH")) -> None:
    """The store holds exactly what the server serves: bar for bar, value for value."""
    for base in bases:
        for kind in KINDS:
            got, want = stored(out, base, kind), srv.expected(base, kind)
            assert str(got.index.dtype) == "datetime64[ms, UTC]", kind
            assert got.index.equals(want.index), f"{base} {kind}: times differ"
            if kind == "funding":
                np.testing.assert_array_equal(got["funding_rate"].to_numpy(), want["open"].to_numpy())
            elif kind == "mark":
                np.testing.assert_array_equal(got[["open", "high", "low", "close"]].to_numpy(),
                                              want[["open", "high", "low", "close"]].to_numpy())
                assert got["volume"].isna().all()
            else:
                np.testing.assert_array_equal(got.to_numpy(), want.to_numpy(), err_msg=f"{base} {kind}")


def store_files(out: Path) -> dict[str, Path]:
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*")) if p.is_file() and p.name != ".fetch.lock"}


def assert_same_store(a: Path, b: Path) -> None:
    """File by file: the same files, equal Parquet tables (data and fundarb metadata), equal JSON."""
    fa, fb = store_files(a), store_files(b)
    assert list(fa) == list(fb)
    for name in fa:
        if name.endswith(".parquet"):
            ta, tb = pq.read_table(fa[name]), pq.read_table(fb[name])
            assert ta.schema.equals(tb.schema, check_metadata=False), name
            assert ta.equals(tb), f"{name}: data differ"
            assert json.loads(ta.schema.metadata[b"fundarb"]) == json.loads(tb.schema.metadata[b"fundarb"]), name
        else:
            assert json.loads(fa[name].read_text()) == json.loads(fb[name].read_text()), name


def starts(srv: LoopbackExchange, path: str) -> list[int]:
    return [int(q["startTime"]) for p, q in srv.data_requests() if p == path]


def ms(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value // 1_000_000)


# ----------------------------------------------------------------------------------------------- the happy path
def test_fetch_equals_source_bar_for_bar(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with served(shared_data) as srv:
        report = fetch(symbols="BTC/USDT:USDT,ETH/USDT:USDT", since=START, until=END, out=out, api_url=srv.url,
                       tiers_file=TIERS, progress=False)
        assert_equals_source(out, srv)
        # genuine gaps of the source are kept as gaps, not filled and not refetched forever
        assert len(stored(out, "BTC", "spot")) == len(srv.expected("BTC", "spot")) == 1459
        paths = {p for p, _ in srv.requests}
        assert paths == {"/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo", "/api/v3/klines", "/fapi/v1/klines",
                         "/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate"}
        # paginated past the per-request limits (spot 1000, USDT-M 500 per ccxt), never above Binance's maxima
        for path, top in (("/api/v3/klines", 1000), ("/fapi/v1/klines", 1500), ("/fapi/v1/markPriceKlines", 1500),
                          ("/fapi/v1/fundingRate", 1000)):
            limits = [int(q["limit"]) for p, q in srv.requests if p == path]
            assert limits and max(limits) <= top
        assert len(starts(srv, "/fapi/v1/klines")) == 2 * 3  # 1464 bars in pages of 500, per symbol
    assert report.requests == len(srv.data_requests()) + 1  # load_markets is one call, two requests
    assert report.rows_added == sum(len(srv.expected(b, k)) for b in ("BTC", "ETH") for k in KINDS)
    meta = json.loads(pq.read_table(store_path(out, "binance", "BTC/USDT:USDT", "perp")).schema.metadata[b"fundarb"])
    assert meta["symbol"] == "BTC/USDT:USDT" and meta["kind"] == "perp" and meta["timeframe"] == "1h"
    assert (int(meta["covered_from_ms"]), int(meta["covered_to_ms"])) == (ms(START), ms(END))
    # leverage tiers: Binance serves them only signed, so from the user's file, for the fetched symbols
    tiers = json.loads((out / "binance" / "leverage_tiers.json").read_text())
    source_tiers = json.loads(TIERS.read_text())
    assert tiers == {s: source_tiers[s] for s in ("BTC/USDT:USDT", "ETH/USDT:USDT")}
    # the store loads as market data
    market = load_store(out, ["BTC", "ETH"])
    assert market is not None


def test_fetched_btc_equals_shared_data_files(shared_data: Path, tmp_path: Path) -> None:
    """Independently of the server's own view: compare with the feather files themselves."""
    out = tmp_path / "data"
    with served(shared_data, ("BTC",)) as srv:
        fetch(symbols="BTC", since=START, until=END, out=out, api_url=srv.url, progress=False)
    files = {"spot": "BTC_USDT-1h.feather", "perp": "futures/BTC_USDT_USDT-1h-futures.feather",
             "mark": "futures/BTC_USDT_USDT-1h-mark.feather",
             "funding": "futures/BTC_USDT_USDT-1h-funding_rate.feather"}
    for kind, name in files.items():
        src = pd.read_feather(shared_data / "binance" / name)
        src = src[(src["date"] >= pd.Timestamp(START, tz="UTC")) & (src["date"] < pd.Timestamp(END, tz="UTC"))]
        got = stored(out, "BTC", kind)
        assert list(got.index) == list(src["date"]), kind
        cols = ["open"] if kind == "funding" else ["open", "high", "low", "close"] + ([] if kind == "mark" else
                                                                                      ["volume"])
        got_cols = ["funding_rate"] if kind == "funding" else cols
        np.testing.assert_array_equal(got[got_cols].to_numpy(), src[cols].to_numpy(), err_msg=kind)


def test_listing_is_walked_and_missing_kinds_are_noted(shared_data: Path, tmp_path: Path) -> None:
    """Before a perpetual's listing the exchange has nothing: empty windows are walked, no file is invented."""
    out = tmp_path / "data"
    with served(shared_data, ("BTC",), "2019-08-20", "2019-09-20") as srv:
        report = fetch(symbols="BTC", since="2019-08-20", until="2019-09-20", out=out, api_url=srv.url,
                       progress=False)
        perp = stored(out, "BTC", "perp")
        assert perp.index[0] == pd.Timestamp("2019-09-08 17:00", tz="UTC")  # the listing
        assert stored(out, "BTC", "funding").index[0] == pd.Timestamp("2019-09-10 08:00", tz="UTC")
        assert not os.path.exists(store_path(out, "binance", "BTC/USDT:USDT", "mark"))  # mark starts 2019-12
        assert any("mark" in n and "no data" in n for n in report.notes)
        for kind in ("spot", "perp", "funding"):
            got, want = stored(out, "BTC", kind), srv.expected("BTC", kind)
            assert got.index.equals(want.index)
        srv.reset_log()
        fetch(symbols="BTC", since="2019-08-20", until="2019-09-20", out=out, api_url=srv.url, progress=False)
        # everything stored is covered; only the kind without any data is asked again
        assert {p for p, _ in srv.data_requests()} == {"/fapi/v1/markPriceKlines"}


# ----------------------------------------------------------------------------------------------- incremental
def test_second_run_fetches_only_new_data(shared_data: Path, tmp_path: Path) -> None:
    out, ref = tmp_path / "data", tmp_path / "ref"
    with served(shared_data) as srv:
        fetch(symbols="BTC,ETH", since=START, until="2021-05-01", out=out, api_url=srv.url, progress=False)
        first = len(srv.data_requests())
        srv.reset_log()
        report = fetch(symbols="BTC,ETH", since=START, until=END, out=out, api_url=srv.url, progress=False)
        new = srv.data_requests()
        assert all(int(q["startTime"]) >= ms("2021-05-01") for _, q in new), "re-downloaded old data"
        # May is 744 bars: one spot page, two perp and two mark pages, one funding page + its confirmation
        assert len(new) == 2 * (1 + 2 + 2 + 2) and first == 2 * (1 + 2 + 2 + 2)
        assert report.rows_added == sum(
            len(srv.expected(b, k).loc["2021-05-01":]) for b in ("BTC", "ETH") for k in KINDS)
        # nothing new: not a single request, not even the market list
        srv.reset_log()
        again = fetch(symbols="BTC,ETH", since=START, until=END, out=out, api_url=srv.url, progress=False)
        assert srv.requests == [] and again.rows_added == 0 and again.requests == 0
        # an earlier `since` fetches only the missing head
        fetch(symbols="BTC,ETH", since=START, until=END, out=ref, api_url=srv.url, progress=False)
    assert_same_store(out, ref)
    assert_equals_source(out, srv)


def test_earlier_since_fetches_only_the_head(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with served(shared_data, ("BTC",)) as srv:
        fetch(symbols="BTC", since="2021-05-01", until=END, out=out, api_url=srv.url, progress=False)
        srv.reset_log()
        fetch(symbols="BTC", since=START, until=END, out=out, api_url=srv.url, progress=False)
        assert all(int(q["startTime"]) < ms("2021-05-01") for _, q in srv.data_requests())
        assert_equals_source(out, srv, ("BTC",))


def test_until_inside_a_gap_then_later(shared_data: Path, tmp_path: Path) -> None:
    """An `until` between two bar opens, inside a genuine gap of the spot (none at 02:00 and 03:00 on 2021-04-20):
    the file covers up to `until`, off the hour; the next run goes on from there on the hourly grid."""
    out = tmp_path / "data"
    with served(shared_data, ("BTC",), START, "2021-04-21") as srv:
        fetch(symbols="BTC", since=START, until="2021-04-20 02:30", out=out, api_url=srv.url, progress=False)
        meta = json.loads(pq.read_schema(store_path(out, "binance", "BTC/USDT:USDT", "spot")).metadata[b"fundarb"])
        assert int(meta["covered_to_ms"]) == ms("2021-04-20 02:30")
        fetch(symbols="BTC", since=START, until="2021-04-21", out=out, api_url=srv.url, progress=False)
        assert_equals_source(out, srv, ("BTC",))


def test_only_closed_candles_and_settled_funding(shared_data: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data"
    now = ms("2021-05-10 13:30")
    with served(shared_data, ("BTC",), now=now) as srv:  # the server shows the bar in progress, like Binance
        monkeypatch.setattr(fetch_args, "now_ms", lambda: now)
        fetch(symbols="BTC", since="2021-05-01", out=out, api_url=srv.url, progress=False)
        for kind in ("spot", "perp", "mark"):
            last = stored(out, "BTC", kind).index[-1]
            assert last == pd.Timestamp("2021-05-10 12:00", tz="UTC"), kind  # 13:00 closes at 14:00
            assert last + pd.Timedelta("1h") <= pd.Timestamp(now, unit="ms", tz="UTC")
        assert stored(out, "BTC", "funding").index[-1] == pd.Timestamp("2021-05-10 08:00", tz="UTC")
        later = ms("2021-05-20 00:10")
        srv.now_ms = later
        monkeypatch.setattr(fetch_args, "now_ms", lambda: later)
        fetch(symbols="BTC", since="2021-05-01", out=out, api_url=srv.url, progress=False)
    for kind in KINDS:
        got = stored(out, "BTC", kind)
        # the 2021-05-20 00:00 funding event is settled at 00:10; the 00:00 bar is not closed
        want = srv.expected("BTC", kind).loc["2021-05-01":"2021-05-20 00:00" if kind == "funding" else
                                             "2021-05-19 23:00"]
        assert got.index.equals(want.index), kind
        np.testing.assert_array_equal(got.iloc[:, 0].to_numpy(), want["open"].to_numpy())


def _rewrite(out: Path, base: str, kind: str, edit: Callable[[pa.Table], pa.Table]) -> None:
    """Change a store file's rows behind fetch's back, keeping its metadata."""
    path = store_path(out, "binance", f"{base}/USDT:USDT", kind)
    pq.write_table(edit(pq.read_table(path)), path)


def _without(table: pa.Table, start: str, end: str) -> pa.Table:
    t = table.column("time").cast(pa.int64()).to_numpy()
    return table.filter(pa.array((t < ms(start)) | (t >= ms(end))))


def test_holes_and_duplicates_in_a_store_file_are_repaired(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    end = "2021-05-01"
    with served(shared_data, ("BTC",), START, end) as srv:
        fetch(symbols="BTC", since=START, until=end, out=out, api_url=srv.url, progress=False)
        _rewrite(out, "BTC", "spot", lambda t: _without(t, "2021-04-10 05:00", "2021-04-10 09:00"))
        _rewrite(out, "BTC", "perp", lambda t: _without(t, "2021-04-01", "2021-04-01 03:00"))  # at the very start
        _rewrite(out, "BTC", "funding", lambda t: _without(t, "2021-04-20", "2021-04-20 01:00"))
        _rewrite(out, "BTC", "mark", lambda t: pa.concat_tables(  # two rows stored twice
            [t, _without(t, "2021-01-01", "2021-04-15").slice(0, 2)]).sort_by("time"))
        assert pq.read_table(store_path(out, "binance", "BTC/USDT:USDT", "mark")).num_rows == 722
        srv.reset_log()
        report = fetch(symbols="BTC", since=START, until=end, out=out, api_url=srv.url, progress=False)
        assert_equals_source(out, srv, ("BTC",))
        # only the damage was asked for (the spot's genuine gaps are remembered as such, not asked again)
        assert starts(srv, PATHS["spot"]) == [ms("2021-04-10 05:00")]
        assert starts(srv, PATHS["perp"]) == [ms(START)]
        assert starts(srv, PATHS["mark"])[0] == ms("2021-04-15")
        assert starts(srv, PATHS["funding"])[0] == ms(START)  # funding is fetched again whole (a few requests)
        notes = "\n".join(report.notes)
        assert "4 bars missing inside the stored range (first 2021-04-10 05:00)" in notes
        assert "4 rows share a time (first 2021-04-15 00:00)" in notes
        assert "funding.parquet: 90 rows were written, 89 are there" in notes
        srv.reset_log()
        again = fetch(symbols="BTC", since=START, until=end, out=out, api_url=srv.url, progress=False)
        assert srv.requests == [] and not [n for n in again.notes if "fetched again" in n]


def test_store_file_without_fetch_metadata_is_checked_against_the_exchange(shared_data: Path, tmp_path: Path) -> None:
    """A file rewritten by another tool (pandas) loses fetch's metadata: missing bars are asked again."""
    out = tmp_path / "data"
    end = "2021-04-10"
    with served(shared_data, ("BTC",), START, end) as srv:
        fetch(symbols="BTC", since=START, until=end, out=out, api_url=srv.url, progress=False)
        path = store_path(out, "binance", "BTC/USDT:USDT", "perp")
        df = pd.read_parquet(path)
        df.drop(index=[5, 6, 100]).to_parquet(path)
        srv.reset_log()
        fetch(symbols="BTC", since=START, until=end, out=out, api_url=srv.url, progress=False)
        assert starts(srv, PATHS["perp"]) == [ms(START) + 5 * 3_600_000, ms(START) + 100 * 3_600_000]
        assert_equals_source(out, srv, ("BTC",))


# ----------------------------------------------------------------------------------------------- faults
def test_faults_are_retried_and_never_stored(shared_data: Path, tmp_path: Path, retry: RetryPolicy,
                                             sleeps: list[float]) -> None:
    out = tmp_path / "data"
    with served(shared_data) as srv:
        srv.add_faults(
            Fault("503", "exchangeInfo"),
            Fault("429", "/api/v3/klines", retry_after=3),
            Fault("418", "/fapi/v1/fundingRate", retry_after=7),
            Fault("500", "/fapi/v1/klines"),
            Fault("502", "/fapi/v1/markPriceKlines"),
            Fault("timeout", "/fapi/v1/klines?", after=2, delay=1.5),
            Fault("truncate", "/api/v3/klines", after=1),
            Fault("reset", "/fapi/v1/markPriceKlines", after=1),  # in the middle of a pagination
            Fault("malformed", "/fapi/v1/markPriceKlines", after=3),
            Fault("malformed", "/fapi/v1/fundingRate", after=1),
            Fault("duplicate", "/fapi/v1/klines?", after=4),
            Fault("truncate", "/fapi/v1/fundingRate", after=2),
        )
        fetch(symbols="BTC,ETH", since=START, until=END, out=out, api_url=srv.url, retry=retry, timeout=0.5,
              progress=False)
        assert srv.pending_faults() == []
        assert_equals_source(out, srv)  # nothing malformed, duplicated or truncated got in, nothing is missing
    assert len(sleeps) == 12  # one backoff per fault
    assert 3.0 in sleeps and 7.0 in sleeps  # Retry-After honoured


def test_short_page_is_healed_not_taken_for_a_gap(shared_data: Path, tmp_path: Path) -> None:
    """A valid page missing its tail (a buggy proxy): the next request starts after its last row."""
    out = tmp_path / "data"
    with served(shared_data, ("BTC",)) as srv:
        srv.add_faults(Fault("short", "/api/v3/klines"), Fault("short", "/fapi/v1/klines?", after=1),
                       Fault("short", "/fapi/v1/fundingRate"))
        fetch(symbols="BTC", since=START, until=END, out=out, api_url=srv.url, progress=False)
        assert srv.pending_faults() == []
        assert_equals_source(out, srv, ("BTC",))
        assert ms(START) + 500 * 3_600_000 not in starts(srv, "/api/v3/klines")  # resumed mid-window instead


def test_unordered_page_is_sorted_by_ccxt(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with served(shared_data, ("BTC",)) as srv:
        srv.add_faults(Fault("unordered", "/fapi/v1/klines?"), Fault("unordered", "/fapi/v1/fundingRate"))
        fetch(symbols="BTC", since=START, until=END, out=out, api_url=srv.url, progress=False)
        assert_equals_source(out, srv, ("BTC",))


def test_give_up_says_what_is_saved_and_how_to_resume(shared_data: Path, tmp_path: Path, sleeps: list[float]) -> None:
    out = tmp_path / "data"
    with served(shared_data) as srv:
        srv.add_faults(Fault("503", "/fapi/v1/markPriceKlines", after=1, times=100))
        with pytest.raises(FetchError) as info:
            fetch(symbols="BTC,ETH", since=START, until=END, out=out, api_url=srv.url, progress=False,
                  retry=RetryPolicy(max_tries=3, sleep=sleeps.append))
        msg = str(info.value)
        assert "gave up after 3 tries" in msg and "503" in msg
        assert "Saved so far" in msg
        assert f"{store_path(out, 'binance', 'BTC/USDT:USDT', 'spot')}: 1459 rows" in msg
        assert f"{store_path(out, 'binance', 'BTC/USDT:USDT', 'mark')}: 500 rows" in msg
        assert "complete up to 2021-04-21 20:00" in msg
        assert "Still to fetch: BTC/USDT:USDT mark, BTC/USDT:USDT funding, ETH/USDT:USDT spot" in msg
        assert "To resume, run the same command again" in msg
        assert info.value.resume is not None and info.value.resume in msg
        assert info.value.resume.startswith("fundarb fetch --exchange binance --symbols BTC/USDT:USDT,ETH/USDT:USDT")
        assert len(sleeps) == 2
        # what is saved is valid: the first mark page, exactly
        mark = stored(out, "BTC", "mark")
        assert mark.index.equals(srv.expected("BTC", "mark").index[:500])
        # resume: only what is missing is requested
        srv.faults.clear()
        srv.reset_log()
        fetch(symbols="BTC,ETH", since=START, until=END, out=out, api_url=srv.url, progress=False)
        btc = [(p, q) for p, q in srv.data_requests() if q["symbol"] == "BTCUSDT"]
        assert {p for p, _ in btc} == {"/fapi/v1/markPriceKlines", "/fapi/v1/fundingRate"}
        assert min(int(q["startTime"]) for p, q in btc if "mark" in p) == ms("2021-04-21 20:00")
        assert_equals_source(out, srv)


def test_persistent_malformed_page_is_never_stored(shared_data: Path, tmp_path: Path, sleeps: list[float]) -> None:
    out = tmp_path / "data"
    with served(shared_data, ("BTC",)) as srv:
        srv.add_faults(Fault("malformed", "/fapi/v1/fundingRate", times=100))
        with pytest.raises(FetchError, match="invalid funding rate"):
            fetch(symbols="BTC", since=START, until=END, out=out, api_url=srv.url, progress=False,
                  retry=RetryPolicy(max_tries=2, sleep=sleeps.append))
        assert not os.path.exists(store_path(out, "binance", "BTC/USDT:USDT", "funding"))
        srv.faults.clear()
        srv.add_faults(Fault("truncate", "/api/v3/klines", after=1, times=100))
        shutil_out = tmp_path / "fresh"
        with pytest.raises(FetchError, match="not valid JSON"):
            fetch(symbols="BTC", since=START, until=END, out=shutil_out, api_url=srv.url, progress=False,
                  retry=RetryPolicy(max_tries=2, sleep=sleeps.append))
        spot = stored(shutil_out, "BTC", "spot")  # the first page only (a 1000-hour window), which was whole
        assert spot.index.equals(srv.expected("BTC", "spot").loc[:"2021-05-12 15:00"].index)


def test_retry_after_beyond_limit_gives_up_at_once(shared_data: Path, tmp_path: Path, sleeps: list[float]) -> None:
    with served(shared_data, ("BTC",)) as srv:
        srv.add_faults(Fault("418", "/api/v3/klines", retry_after=86_400))
        with pytest.raises(FetchError, match="asks to wait 86400 s"):
            fetch(symbols="BTC", since=START, until=END, out=tmp_path, api_url=srv.url, progress=False,
                  retry=RetryPolicy(sleep=sleeps.append))
    assert sleeps == []


SHORT_END = "2021-04-03"  # 48 bars: one request per kind


def test_exchange_side_transient_errors_are_retried(shared_data: Path, tmp_path: Path, sleeps: list[float]) -> None:
    """Every class of "try again" answer, one after the other on the same requests, then the pages: all retried."""
    out = tmp_path / "data"
    server_errors = [(503, -1001),  # Binance's "Internal error; ... Please try again." (ccxt: OperationFailed)
                     (500, -1000), (504, -1121), (502, None)]  # any 5xx, whatever the body says
    rate_limits = [(429, None), (418, -1003)]  # without Retry-After: backoff
    codes = [(400, -1003), (408, -1007), (400, -1001)]  # Binance's transient codes, whatever the status
    with served(shared_data, ("BTC",), START, SHORT_END) as srv:
        for path, cases in (("/fapi/v1/klines?", server_errors), ("/api/v3/klines", rate_limits),
                            ("/fapi/v1/fundingRate", codes)):
            srv.add_faults(*(Fault("error", path, status=st, code=c, retry_after=None) for st, c in cases))
        fetch(symbols="BTC", since=START, until=SHORT_END, out=out, api_url=srv.url, progress=False,
              retry=RetryPolicy(max_tries=5, sleep=sleeps.append))
        assert srv.pending_faults() == []
        assert len(starts(srv, "/fapi/v1/klines")) == 5 and len(starts(srv, "/api/v3/klines")) == 3
        assert_equals_source(out, srv, ("BTC",))
    assert len(sleeps) == 9


@pytest.mark.parametrize(("status", "code", "says"), [
    (400, -1130, "BadRequest"),  # a plain 400: the request is wrong, asking again cannot help
    (400, None, "HTTP 400"),  # ccxt reads a bare 400 as ExchangeNotAvailable (a NetworkError): still not retried
    (404, None, "HTTP 404"),
])
def test_other_client_errors_are_not_retried(status: int, code: int | None, says: str, shared_data: Path,
                                             tmp_path: Path, retry: RetryPolicy, sleeps: list[float]) -> None:
    with served(shared_data, ("BTC",), START, SHORT_END) as srv:
        srv.add_faults(Fault("error", "/fapi/v1/klines?", times=5, status=status, code=code))
        with pytest.raises(FetchError, match=says) as info:
            fetch(symbols="BTC", since=START, until=SHORT_END, out=tmp_path, api_url=srv.url, retry=retry,
                  progress=False)
        assert len(starts(srv, "/fapi/v1/klines")) == 1
    assert sleeps == []
    assert "gave up" not in str(info.value) and "To resume" in str(info.value)


def test_retry_policy() -> None:
    p = RetryPolicy(max_tries=4, base_delay=1.0, factor=2.0, max_delay=3.0, jitter=0.0, max_retry_after=60)
    assert [p.delay(i) for i in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, None]
    assert p.delay(1, retry_after=30) == 30.0 and p.delay(1, retry_after=61) is None
    assert p.delay(4, retry_after=1) is None
    with pytest.raises(ConfigError):
        RetryPolicy(max_tries=0)


# ----------------------------------------------------------------------------------------------- SIGKILL
def _cli(url: str, out: Path, since: str = "2021-01-01", until: str = "2021-06-01") -> list[str]:
    return [sys.executable, "-m", "fundarb", "fetch", "--exchange", "binance",
            "--symbols", "BTC/USDT:USDT,ETH/USDT:USDT", "--since", since, "--until", until, "--out", str(out),
            "--api-url", url, "--tiers-file", str(TIERS), "--chunk-rows", "400", "--no-progress"]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), NO_PROXY="127.0.0.1,localhost")
    env.pop("CI", None)
    return env


def _parquets(out: Path) -> int:
    return sum(1 for _ in out.rglob("*.parquet"))


def _head_progress(out: Path) -> dict[str, int]:
    """Per file, where a backward extension (a head) has got to, as recorded in the file."""
    got = {}
    for name, path in store_files(out).items():
        if name.endswith(".parquet"):
            with contextlib.suppress(OSError, ValueError):  # a file being renamed over
                meta = json.loads(pq.read_schema(path).metadata[b"fundarb"])
                if "partial_ms" in meta:
                    got[name] = json.loads(meta["partial_ms"])[0][1]
    return got


def _kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], object]) -> None:
    deadline = time.monotonic() + 60
    while not ready() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"fetch ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_then_resume_equals_uninterrupted(shared_data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    killed, ref = tmp_path / "killed", tmp_path / "ref"
    with served(shared_data, start="2021-01-01", end="2021-06-01", latency=0.03) as srv:
        # kill twice, at different moments: after the first file, then in the middle of the second symbol
        for at_least in (1, 5):
            proc = subprocess.Popen(_cli(srv.url, killed, since="2021-03-01"), cwd=ROOT, env=_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _kill_when(proc, lambda n=at_least: _parquets(killed) >= n)  # type: ignore[misc]
        partial = {k: pq.read_table(v).num_rows for k, v in store_files(killed).items() if k.endswith(".parquet")}
        assert 0 < len(partial) < 8
        # every file a killed run left is readable and valid (atomic writes), possibly short
        for name, path in store_files(killed).items():
            if name.endswith(".parquet"):
                df = pq.read_table(path).to_pandas()
                assert df["time"].is_monotonic_increasing and df["time"].is_unique
        srv.latency = 0.0
        assert cli_main(_cli(srv.url, killed, since="2021-03-01")[3:]) == 0  # resumed (in this process)
        assert "fetched binance" in capsys.readouterr().out
        # an earlier --since extends every file backwards (a head); killed there, it keeps what it got
        srv.latency = 0.1
        proc = subprocess.Popen(_cli(srv.url, killed), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        _kill_when(proc, lambda: _head_progress(killed))
        progress = _head_progress(killed)
        srv.latency = 0.0
        srv.reset_log()
        fetch(symbols="BTC,ETH", since="2021-01-01", until="2021-06-01", out=killed, api_url=srv.url,
              tiers_file=TIERS, progress=False)
        for name, done in progress.items():
            sym, kind = name.split("/")[1].split("_")[0] + "USDT", name.split("/")[2].split("-")[0].split(".")[0]
            asked = [int(q["startTime"]) for p, q in srv.data_requests() if p == PATHS[kind] and q["symbol"] == sym]
            assert asked and min(asked) == done, f"{name}: the head was fetched again before {iso_ms(done)}"
        fetch(symbols="BTC,ETH", since="2021-01-01", until="2021-06-01", out=ref, api_url=srv.url,
              tiers_file=TIERS, progress=False)
    assert not [p for p in killed.rglob("*.tmp")], "temporary files left behind"
    assert_same_store(killed, ref)
    assert_equals_source(ref, srv)


# ----------------------------------------------------------------------------------------------- endpoints, CLI
def test_api_url_rewrites_every_endpoint() -> None:
    import ccxt

    base = "http://127.0.0.1:9"
    ex = ccxt.binance()
    apply_api_url(ex, base)
    api = ex.urls["api"]
    assert api["public"] == f"{base}/api/v3" and api["fapiPublic"] == f"{base}/fapi/v1"
    assert api["fapiPublicV2"] == f"{base}/fapi/v2" and api["fapiData"] == f"{base}/futures/data"
    assert all(v.startswith(base) for v in api.values())
    for name, key in (("bybit", "public"), ("okx", "rest")):
        other = getattr(ccxt, name)()
        apply_api_url(other, base + "/")
        assert other.urls["api"][key] == base
        assert all(v.startswith(base) for v in other.urls["api"].values())
    ex = ccxt.binance()
    apply_api_url(ex, {"fapiPublic": "http://127.0.0.1:1/fapi/v1"})
    assert ex.urls["api"]["fapiPublic"] == "http://127.0.0.1:1/fapi/v1"
    assert ex.urls["api"]["public"] == "https://api.binance.com/api/v3"
    with pytest.raises(ConfigError, match="fapiPublic"):
        apply_api_url(ccxt.binance(), {"fapiPublik": base})
    with pytest.raises(ConfigError, match="http"):
        apply_api_url(ccxt.binance(), "127.0.0.1:9")


def test_bybit_and_okx_are_set_up_the_same_way(tmp_path: Path) -> None:
    """No exchange but Binance is served here; check what can be checked offline: endpoints, limits, options."""
    for name, market_types in (("bybit", ["spot", "linear"]), ("okx", ["spot", "swap"])):
        f = Fetcher(exchange=name, symbols=["BTC/USDT:USDT"], since=0, until=None, timeframe="1h",
                               out=str(tmp_path), api_url="http://127.0.0.1:9", tiers_file=None, retry=RetryPolicy(),
                               progress=False, timeout=1.0, chunk_rows=10, flush_seconds=1.0, resume_hint="")
        assert f.ex.options["fetchMarkets"]["types"] == market_types
        assert f.ex.enableRateLimit and f.tf_ms == 3_600_000
        assert all(str(u).startswith("http://127.0.0.1:9") for u in f.ex.urls["api"].values())
        assert f.profile.tiers is not None  # both serve leverage tiers publicly
        assert 0 < f.kline_limit("mark") <= 1000 and 0 < f.profile.funding_limit <= 200
    with pytest.raises(ConfigError, match="timeframe"):
        fetch(symbols="BTC", since=START, timeframe="7m", out=tmp_path, api_url="http://127.0.0.1:9")


def test_manifest_and_command_line(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, ref = tmp_path / "manifest", tmp_path / "cli"
    with served(shared_data, ("BTC",), START, "2021-05-01") as srv:
        manifest = tmp_path / "btc.toml"
        manifest.write_text(f'exchange = "binance"\nsymbols = ["BTC/USDT:USDT"]\nsince = "{START}"\n'
                            f'until = "2021-05-01"\ntimeframe = "1h"\nout = "{out}"\napi_url = "{srv.url}"\n'
                            f'tiers_file = "{TIERS}"\n')
        report = fetch_manifest(manifest, progress=False, rate_limit=False)
        assert report.tiers_path is not None and report.rows_added > 0
        assert cli_main(["fetch", "--exchange", "binance", "--symbols", "BTC", "--since", START,
                         "--until", "2021-05-01", "--out", str(ref), "--api-url", srv.url,
                         "--tiers-file", str(TIERS), "--no-progress"]) == 0
        assert "fetched binance" in capsys.readouterr().out
        assert cli_main(["fetch", str(manifest)]) == 0  # nothing new
        assert "0 new rows, 0 requests" in capsys.readouterr().out
    assert_same_store(out, ref)
    bad = tmp_path / "bad.toml"
    bad.write_text('symbols = ["BTC"]\nsince = "2021-01-01"\nexchnage = "binance"\n')
    with pytest.raises(ConfigError, match="did you mean 'exchange'"):
        read_manifest(bad)
    assert cli_main(["fetch", str(bad)]) == 2
    assert cli_main(["fetch", "--symbols", "BTC", "--since", "2021-02-01", "--until", "2021-01-01",
                     "--out", str(tmp_path)]) == 2


def test_manifest_table_and_api_url_mapping(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    with served(shared_data, ("BTC",), START, "2021-04-10") as srv:
        manifest = tmp_path / "m.toml"
        manifest.write_text(
            f'[fetch]\nsymbols = ["BTC"]\nsince = "{START}"\nuntil = "2021-04-10"\nout = "{out}"\n'
            f'api_url = {{ "*" = "{srv.url}", fapiPublic = "{srv.url}/fapi/v1" }}\n')
        fetch_manifest(manifest, progress=False, rate_limit=False)
        assert_equals_source(out, srv, ("BTC",))


def test_unknown_symbol_is_named(shared_data: Path, tmp_path: Path) -> None:
    with served(shared_data, ("BTC",)) as srv, pytest.raises(FetchError, match="no perpetual 'BTX/USDT:USDT'"):
        fetch(symbols="BTX", since=START, until=END, out=tmp_path, api_url=srv.url, progress=False)


def test_progress_bars_only_on_request_or_terminal(shared_data: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    assert fetch_args.progress_enabled(None) is False  # pytest's stderr is not a terminal
    assert fetch_args.progress_enabled(True) is True
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert fetch_args.progress_enabled(None) is True
    monkeypatch.setenv("CI", "true")
    assert fetch_args.progress_enabled(None) is False
    monkeypatch.delenv("CI")
    with served(shared_data, ("BTC",), START, "2021-04-10") as srv:
        fetch(symbols="BTC", since=START, until="2021-04-05", out=tmp_path / "a", api_url=srv.url, progress=True)
        assert "BTC/USDT:USDT perp" in capsys.readouterr().err
        monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
        fetch(symbols="BTC", since=START, until="2021-04-05", out=tmp_path / "b", api_url=srv.url)
        assert capsys.readouterr().err == ""


def test_loopback_server_speaks_binance_semantics(shared_data: Path) -> None:
    import requests

    with served(shared_data, ("BTC",)) as srv:
        s = requests.Session()
        s.trust_env = False
        t0 = ms(START)
        rows = s.get(f"{srv.url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1h", "startTime": t0,
                                                          "endTime": t0 + 3 * 3_600_000}).json()
        assert [r[0] for r in rows] == [t0 + i * 3_600_000 for i in range(4)]  # both ends inclusive
        rows = s.get(f"{srv.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1h"}).json()
        assert len(rows) == 500 and rows[-1][0] == ms(END) - 3_600_000  # default limit, latest rows
        assert s.get(f"{srv.url}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1h",
                                                          "limit": 1001}).status_code == 400
        assert len(s.get(f"{srv.url}/fapi/v1/klines", params={"symbol": "BTCUSDT", "interval": "1h",
                                                              "limit": 1500}).json()) == 1464
        rows = s.get(f"{srv.url}/fapi/v1/fundingRate", params={"symbol": "BTCUSDT", "startTime": t0}).json()
        assert len(rows) == 100 and rows[0]["fundingTime"] == t0
        assert s.get(f"{srv.url}/fapi/v1/leverageBracket").status_code == 404


def test_tiers_file_missing_symbol_is_noted(shared_data: Path, tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.json"
    tiers.write_text(json.dumps({"ETH/USDT:USDT": json.loads(TIERS.read_text())["ETH/USDT:USDT"]}))
    with served(shared_data, ("BTC",), START, "2021-04-03") as srv:
        report = fetch(symbols="BTC", since=START, until="2021-04-03", out=tmp_path / "d", api_url=srv.url,
                       tiers_file=tiers, progress=False)
    assert any("no leverage tiers for BTC/USDT:USDT" in n for n in report.notes)
    assert report.tiers_path is None


def test_shared_data_location() -> None:
    from conftest import SHARED_DATA as CONFTEST_DATA

    assert SHARED_DATA == CONFTEST_DATA  # the loopback exchange serves the folder $FUNDARB_DATA names


def test_fundarb_cli_fetch_then_load_and_backtest(shared_data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The user's path: `fundarb fetch …`, then the store loads and backtests."""
    import fundarb as fa

    out = tmp_path / "data"
    with served(shared_data, ("BTC",), START, "2021-05-01") as srv:
        assert cli_main(["fetch", "--symbols", "BTC/USDT:USDT", "--since", START, "--until", "2021-05-01",
                         "--out", str(out), "--api-url", srv.url, "--no-progress"]) == 0
    assert "fetched binance" in capsys.readouterr().out
    assert cli_main(["describe", "--data", str(out), "--format", "fundarb"]) == 0
    assert "BTC_USDT_USDT" in capsys.readouterr().out
    market = fa.load_store(out, "BTC/USDT:USDT")
    r = fa.backtest(market, 1, costs=fa.Costs.zero())
    assert r.identity_error() < 1e-9 and r.totals_frame()["funding"].iloc[0] > 0


# ----------------------------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(("change", "says"), [
    ({"--exchange": "binanse"}, "did you mean 'binance'"),
    ({"--timeout": "0"}, "timeout must be a number > 0"),
    ({"--timeout": "-3"}, "timeout must be a number > 0"),
    ({"--chunk-rows": "0"}, "chunk_rows must be an integer >= 1"),
    ({"--max-retries": "-1"}, "max_retries must be an integer >= 0"),
    ({"--since": "yesterday"}, "since: cannot read date 'yesterday'"),
    ({"--until": "2023-13-45"}, "until: cannot read date '2023-13-45'"),
    ({"--since": "0001-01-01"}, "before 1970-01-01"),
    ({"--until": "3000-01-01"}, "outside what pandas can represent"),
    ({"--since": "2021-03-01"}, "must be after since"),
    ({"--symbols": ""}, "names no symbol"),
    ({"--symbols": ",,"}, "names no symbol"),
    ({"--symbols": None}, "needs --symbols and --since"),
    ({"--timeframe": "7m"}, "has no timeframe '7m'"),
    ({"--api-url": "127.0.0.1:9"}, "api_url must be an http(s) URL"),
    ({"--out": "FILE"}, "is a file, not a directory"),
    ({"--out": "FILE/sub"}, "is a file, not a directory"),
    ({"--out": "UNWRITABLE"}, "is not writable"),
])
def test_bad_arguments_are_one_error_line_exit_2_before_any_request(
        change: dict[str, str | None], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(self: socket.socket, address: object) -> None:
        raise AssertionError(f"a bad argument reached the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    (tmp_path / "file").write_text("not a directory")
    if os.geteuid() == 0:
        unwritable = "/sys/fundarb-fetch-test"  # root writes anywhere else; sysfs refuses a new directory
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        unwritable = str(tmp_path / "ro" / "data")
    paths = {"FILE": str(tmp_path / "file"), "FILE/sub": str(tmp_path / "file" / "sub"), "UNWRITABLE": unwritable}
    opts: dict[str, str | None] = {"--symbols": "BTC", "--since": "2021-01-01", "--until": "2021-02-01",
                                   "--out": str(tmp_path / "data"), "--api-url": "http://127.0.0.1:9"}
    opts.update({k: paths.get(v, v) if v is not None else None for k, v in change.items()})
    argv = ["fetch"] + [x for k, v in opts.items() if v is not None for x in (k, v)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert says in err
    assert not os.path.exists(tmp_path / "data" / "binance" / "BTC_USDT_USDT")
