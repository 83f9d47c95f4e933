"""Issue 12: every bad input named there gets one clear error (or a note/warning), never a traceback or a silently
wrong number. Grouped by class: CLI arguments, Python API, data validation, load_table, docs."""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fundarb as fa
from fundarb import ConfigError, DataError, DataWarning
from fundarb.cli import main
from fundarb.data.frames import SymbolFrames
from fundarb.data.market import MarketData, funding_intervals
from fundarb.durations import parse_date, parse_duration
from fundarb.engine.run import targets_from_positions
from toy import ohlc

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = str(ROOT / "strategies" / "carry_7d.toml")


# ---------------------------------------------------------------------------------------------- helpers
def _market(n=48, symbols=("AAA", "BBB"), start="2024-01-01"):
    idx = pd.date_range(start, periods=n, freq="h", tz="UTC", name="time")
    px = ohlc(np.linspace(100, 110, n), index=idx)
    ev = pd.Series(np.full(n // 8, 1e-4), index=idx[::8])
    return MarketData.from_frames([SymbolFrames(symbol=s, spot=px, perp=px, mark=px, funding=ev) for s in symbols])


def _kl(start="2024-01-01", n=48, freq="h", px=None):
    idx = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    px = np.linspace(10, 11, n) if px is None else px
    return pd.DataFrame({"date": idx, "open": px, "high": px * 1.01, "low": px * 0.99, "close": px,
                         "volume": np.ones(n)})


def _ft_dir(root: Path, *, spot=None, perp=None, mark=None, funding=None, n=48) -> Path:
    """A freqtrade directory for symbol TST; each table may be replaced."""
    fut = root / "futures"
    fut.mkdir(parents=True, exist_ok=True)
    (_kl(n=n) if spot is None else spot).to_feather(root / "TST_USDT-1h.feather")
    (_kl(n=n) if perp is None else perp).to_feather(fut / "TST_USDT_USDT-1h-futures.feather")
    (_kl(n=n) if mark is None else mark).to_feather(fut / "TST_USDT_USDT-1h-mark.feather")
    if funding is None:
        idx = pd.date_range("2024-01-01", periods=n // 8, freq="8h", tz="UTC")
        funding = pd.DataFrame({"date": idx, "open": np.full(len(idx), 1e-4), "high": 0.0, "low": 0.0,
                                "close": 0.0, "volume": 0.0})
    funding.to_feather(fut / "TST_USDT_USDT-1h-funding_rate.feather")
    return root


def _csv(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


FUND = {"time": "Date", "funding_rate": "Rate"}


def _cli_error(capsys, args) -> str:
    """Run the CLI; it must fail with exit code 2, one `error:` line and no other output (no work done)."""
    code = main(args)
    out = capsys.readouterr()
    assert code == 2, (code, out)
    assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
    assert out.out == "", out.out
    return out.err


# ---------------------------------------------------------------------------------------------- 1. CLI
@pytest.fixture()
def paths(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    (tmp_path / "afile").write_text("x")
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    yield {"tmp": tmp_path, "ro": ro, "fifo": fifo}
    ro.chmod(stat.S_IRWXU)


OUTPUT_CASES = [
    ("missing-folder", ["--json", "{tmp}/no/such/dir/s.json"], r"folder .*no/such/dir does not exist"),
    ("parent-is-file", ["--json", "{tmp}/afile/s.json"], r"afile is a file, not a folder"),
    ("path-is-folder", ["--json", "{tmp}"], r"is a folder; give a file name"),
    ("report-folder", ["--report", "{tmp}"], r"--report .* is a folder"),
    ("plot-suffix", ["--plot", "{tmp}/eq.xyz"], r"--plot .*cannot write a figure as '\.xyz'; use one of .*\.png"),
    ("plot-no-suffix", ["--plot", "{tmp}/eq"], r"cannot write a figure as a file without suffix"),
    ("proc-not-writable", ["--json", "/proc/fundarb-test.json"], r"cannot write in folder /proc"),
]


@pytest.mark.parametrize(("args", "match"), [c[1:] for c in OUTPUT_CASES], ids=[c[0] for c in OUTPUT_CASES])
def test_cli_output_paths_checked_before_work(paths, capsys, args, match):
    args = [a.format(tmp=paths["tmp"]) for a in args]
    assert re.search(match, _cli_error(capsys, ["backtest", STRATEGY, *args]))


def test_cli_read_only_folder(paths, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; the /proc case covers a folder nobody can write")
    assert "cannot write in folder" in _cli_error(capsys, ["backtest", STRATEGY, "--json", f"{paths['ro']}/s.json"])


@pytest.mark.parametrize(("cmd", "match"), [
    (["sweep", STRATEGY, "--grid", "entry=0.1,0.2", "--csv", "{tmp}"], r"--csv .* is a folder"),
    (["sweep", STRATEGY, "--grid", "entry=0.1,0.2", "--heatmap", "{tmp}/h.doc", "--x", "entry", "--y", "exit"],
     r"--heatmap .*cannot write a figure as '\.doc'"),
    (["funding-stats", "--csv", "{tmp}/no/dir/f.csv"], r"--csv .*does not exist"),
    (["sweep", STRATEGY, "--grid", "entry=0.1", "--top", "-1"], r"--top must be ≥ 1, got -1"),
])
def test_cli_other_commands(paths, capsys, cmd, match):
    cmd = [a.format(tmp=paths["tmp"]) for a in cmd]
    assert re.search(match, _cli_error(capsys, cmd))


DATE_CASES = [
    (["--start", "yesterday"], r"--start: cannot read date 'yesterday'"),
    (["--end", "2023-13-45"], r"--end: cannot read date '2023-13-45'"),
    (["--start", "0001-01-01"], r"--start: date '0001-01-01' is outside what pandas can represent"),
    (["--end", "3000-01-01"], r"--end: date '3000-01-01' is outside what pandas can represent"),
    (["--start", "2023-06-01", "--end", "2023-01-01"], r"--start 2023-06-01 is after --end 2023-01-01"),
    (["--start", "2024-01-02", "--end", "2024-01-01"], r"--start 2024-01-02 is after --end 2024-01-01"),
    (["--symbols", ""], r"--symbols names no symbol"),
    (["--symbols", ",,"], r"--symbols names no symbol"),
]


@pytest.mark.parametrize("cmd", ["backtest", "describe", "funding-stats", "sweep"])
@pytest.mark.parametrize(("args", "match"), DATE_CASES, ids=[" ".join(a) for a, _ in DATE_CASES])
def test_cli_dates_and_symbols(capsys, cmd, args, match):
    head = {"backtest": ["backtest", STRATEGY], "sweep": ["sweep", STRATEGY, "--grid", "entry=0.1"]}.get(cmd, [cmd])
    assert re.search(match, _cli_error(capsys, [*head, *args]))


def test_cli_date_only_end_includes_the_day(capsys):
    assert main(["describe", "--start", "2024-03-01", "--end", "2024-03-01"]) == 0
    assert re.search(r"2024-03-01 00:00:00\+00:00 → 2024-03-01 23:00:00\+00:00", capsys.readouterr().out)


def test_cli_duration_too_long(tmp_path, capsys):
    p = _csv(tmp_path, "s.toml", '[strategy]\ntype = "carry"\nwindow = "99999999999d"\n')
    assert re.search(r"window.*too long", _cli_error(capsys, ["backtest", str(p)]))


def test_cli_fifo_strategy_file(paths, capsys):
    err = _cli_error(capsys, ["backtest", str(paths["fifo"])])
    assert "named pipe (FIFO), not a regular file" in err
    err = _cli_error(capsys, ["sweep", str(paths["fifo"]), "--grid", "entry=0.1"])
    assert "named pipe (FIFO)" in err


@pytest.mark.parametrize(("which", "match"), [
    ("fifo", r"fifo\.toml: cannot read strategy file: it is a named pipe \(FIFO\), not a regular file"),
    ("tmp", r"cannot read strategy file: it is a folder, not a regular file"),
    ("empty", r"cannot read strategy file: it is empty"),
    (123, r"strategy file must be a path \(str or os\.PathLike\), got int"),
])
def test_load_strategy_refuses_what_is_not_a_regular_file(paths, which, match):
    from fundarb.signals.toml import load_strategy

    if which == "empty":
        (paths["tmp"] / "empty.toml").write_text("")
        arg = paths["tmp"] / "empty.toml"
    else:
        arg = paths.get(which, which)
    with pytest.raises(ConfigError, match=match):
        load_strategy(arg)  # a FIFO would block the read forever


@pytest.mark.parametrize("cmd", ["sweep", "walk-forward"])
@pytest.mark.parametrize(("which", "match"), [("fifo", r"--grid-file .*fifo\.toml is a named pipe \(FIFO\)"),
                                              ("tmp", r"--grid-file .* is a folder, not a regular file")])
def test_cli_grid_file_not_regular(paths, capsys, cmd, which, match):
    assert re.search(match, _cli_error(capsys, [cmd, STRATEGY, "--grid-file", str(paths[which])]))


@pytest.mark.parametrize(("which", "match"), [("fifo", r"grid file is a named pipe \(FIFO\)"),
                                              ("tmp", r"grid file is a folder, not a regular file")])
def test_grid_file_not_regular_api(paths, which, match):
    from fundarb.sweeps.spec import grid_from_args

    with pytest.raises(ConfigError, match=match):
        grid_from_args(None, str(paths[which]))


def test_cli_fifo_data_file(tmp_path, capsys):
    d = _ft_dir(tmp_path / "ft")
    spot = d / "TST_USDT-1h.feather"
    spot.unlink()
    os.mkfifo(spot)
    with pytest.raises(DataError, match=r"TST_USDT-1h\.feather: file is a named pipe \(FIFO\)"):
        fa.load_freqtrade(d, "TST")
    assert "named pipe" in _cli_error(capsys, ["describe", "--data", str(d), "--symbols", "TST"])
    with pytest.raises(DataError, match="is a folder, not a regular file"):
        fa.load_table(tmp_path, columns=FUND, tz="UTC")


WF = ["walk-forward", STRATEGY, "--grid", "entry=0.1,0.2", "--train", "20d", "--test", "5d"]


@pytest.mark.parametrize(("cmd", "match"), [
    ([*WF, "--json", "{tmp}"], r"--json .* is a folder"),
    ([*WF, "--plot", "{tmp}/wf.xyz"], r"--plot .*cannot write a figure as '\.xyz'"),
    ([*WF, "--start", "yesterday"], r"--start: cannot read date 'yesterday'"),
    ([*WF, "--start", "2024-02-01", "--end", "2024-01-01"], r"--start 2024-02-01 is after --end 2024-01-01"),
    ([*WF, "--symbols", ",,"], r"--symbols names no symbol"),
    (["walk-forward", "{tmp}", "--grid", "entry=0.1"], r"strategy file .* is a folder"),
    (["walk-forward", "{fifo}", "--grid", "entry=0.1"], r"named pipe \(FIFO\)"),
    ([*WF, "--metric", "sharp"], r"--metric: unknown 'sharp' \(did you mean 'sharpe'\?\)"),
    ([*WF, "--train", "99999999999d"], r"--train: duration .* is too long"),
    (["sweep", STRATEGY, "--grid", "entry=0.1", "--metric", "sharp"],
     r"--metric: unknown 'sharp' \(did you mean 'sharpe'\?\)"),
    (["sweep", STRATEGY, "--grid", "entry=0.1", "--metric", "entry"], r"--metric: unknown 'entry'"),
])
def test_cli_walk_forward_and_metric_checked_before_work(paths, capsys, cmd, match):
    cmd = [a.format(tmp=paths["tmp"], fifo=paths["fifo"]) for a in cmd]
    assert re.search(match, _cli_error(capsys, cmd))


def test_stat_names_are_the_stats_columns(m2):
    from fundarb.results.result import STAT_NAMES

    stats = fa.backtest(m2, pd.DataFrame(0.0, index=m2.index, columns=m2.symbols)).stats()
    assert tuple(stats.columns) == ("start", "end", *STAT_NAMES)


@pytest.mark.parametrize(("args", "match"), [
    (["backtest"], r"Missing argument 'strategy'"),
    (["backtest", STRATEGY, "--capital", "abc"], r"Invalid value for '--capital'"),
    (["nosuch"], r"No such command 'nosuch'"),
    (["backtest", STRATEGY, "--bogus"], r"No such option: --bogus"),
    (["sweep", STRATEGY], r"empty grid: give at least one field"),
    (["sweep", STRATEGY, "--grid", "entry=0.1", "--top", "x"], r"Invalid value for '--top'"),
])
def test_cli_usage_errors_are_one_line(capsys, args, match):
    assert re.search(match, _cli_error(capsys, args))


def test_cli_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"fundarb {fa.__version__}"


# ---------------------------------------------------------------------------------------------- 2. API
@pytest.fixture(scope="module")
def m2():
    return _market()


def _pos(m, index=None, columns=None, value=1):
    return pd.DataFrame(value, index=m.index if index is None else index,
                        columns=list(m.symbols) if columns is None else columns)


POSITION_CASES = [
    ("naive", lambda m: _pos(m, index=m.index.tz_localize(None)), r"naive index .*tz_localize\('UTC'\)"),
    ("shifted", lambda m: _pos(m, index=m.index + pd.Timedelta("1h")), r"shifted by 0 days 01:00:00"),
    ("rangeindex", lambda m: _pos(m, index=pd.RangeIndex(len(m))), r"indexed by a RangeIndex"),
    ("partial", lambda m: _pos(m, index=m.index[:10]), r"cover 10 of the market's 48 bars \(first missing"),
    ("outside", lambda m: _pos(m, index=m.index.append(pd.DatetimeIndex([m.index[-1] + pd.Timedelta("1h")]))),
     r"1 time\(s\) that are not bars"),
    ("missing-symbol", lambda m: _pos(m, columns=["AAA"]), r"no column for \['BBB'\]"),
    ("extra-symbol", lambda m: _pos(m, columns=["AAA", "BBB", "CCC"]), r"\['CCC'\] that are not symbols"),
    ("bool-frame", lambda m: _pos(m, value=True), r"holds booleans"),
    ("bool-scalar", lambda m: True, r"got the boolean True"),
    ("text", lambda m: _pos(m, value="long"), r"must be numbers; got 'long'"),
    ("series-naive", lambda m: pd.Series(1, index=m.index.tz_localize(None)), r"for one symbol"),
    ("series-by-symbol-missing", lambda m: pd.Series({"AAA": 1}), r"no column for \['BBB'\]"),
    ("series-rangeindex", lambda m: pd.Series(1, index=pd.RangeIndex(len(m))), r"for one symbol"),
]


@pytest.mark.parametrize(("make", "match"), [c[1:] for c in POSITION_CASES], ids=[c[0] for c in POSITION_CASES])
def test_positions_not_on_the_market_are_refused(m2, make, match):
    with pytest.raises(ConfigError, match=match):
        targets_from_positions(m2, make(m2))
    with pytest.raises(ConfigError, match=match):
        fa.backtest(m2, make(m2))


@pytest.mark.parametrize(("make", "match"), [
    (lambda m: pd.Series(1, index=m.index.tz_localize(None)), r"naive index"),
    (lambda m: pd.Series(1, index=m.index[:5]), r"cover 5 of"),
    (lambda m: pd.Series(1, index=pd.RangeIndex(len(m))), r"indexed by a RangeIndex"),
    (lambda m: pd.Series(True, index=m.index), r"holds booleans"),
])
def test_one_symbol_position_series(m2, make, match):
    m1 = m2.select("AAA")
    with pytest.raises(ConfigError, match=match):
        targets_from_positions(m1, make(m1))


def test_positions_exact_index_and_numpy_ints_accepted(m2):
    ref = targets_from_positions(m2, 1)
    for v in (np.int64(1), np.int8(1), _pos(m2), _pos(m2).astype(np.int8), pd.Series({"AAA": 1, "BBB": 1}),
              _pos(m2).set_axis(m2.index.tz_convert("Asia/Tokyo"), axis=0)):
        pd.testing.assert_frame_equal(targets_from_positions(m2, v), ref)
    a = fa.backtest(m2, np.int64(1)).stats()
    b = fa.backtest(m2, 1).stats()
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(("weights", "match"), [
    (lambda m: pd.Series({"AAA": 0.5}), r"weights have no column for \['BBB'\]"),
    (lambda m: pd.Series({"AAA": 0.5, "BBB": np.nan}), r"finite numbers .*nan"),
    (lambda m: pd.DataFrame({"AAA": 0.5, "BBB": np.nan}, index=m.index), r"finite numbers"),
    (lambda m: pd.DataFrame({"AAA": 0.5}, index=m.index), r"no column for \['BBB'\]"),
    (lambda m: pd.DataFrame({"AAA": 0.5, "BBB": 0.5}, index=m.index[:-1]), r"cover 47 of"),
    (lambda m: pd.Series({"AAA": True, "BBB": False}), r"booleans"),
])
def test_weights_with_nan_or_missing_symbol(m2, weights, match):
    with pytest.raises(ConfigError, match=match):
        fa.backtest(m2, 1, weights=weights(m2))


def test_select_empty_and_slice_garbage(m2):
    with pytest.raises(ConfigError, match="at least one symbol"):
        m2.select([])
    with pytest.raises(ConfigError, match="twice"):
        m2.select(["AAA", "AAA"])
    for bad, match in (("garbage", "end: cannot read date 'garbage'"), ("yesterday", "cannot read date"),
                       (5, "cannot read date 5"), (True, "cannot read date True"),
                       ("2023-13-45", "cannot read date"), ("01/02/2024", "cannot read date .*year first"),
                       ("3000-01-01", "outside what pandas can represent")):
        with pytest.raises(ConfigError, match=match):
            m2.slice(None, bad)
    with pytest.raises(ConfigError, match="start 2024-01-02 is after end 2024-01-01"):
        m2.slice("2024-01-02", "2024-01-01")


def test_date_only_end_includes_the_whole_day(m2):
    # before this issue, slice(…, "2024-01-01") stopped at 00:00 (one bar); pandas' own slicing keeps the day
    s = m2.slice(None, "2024-01-01")
    assert s.index[-1] == pd.Timestamp("2024-01-01 23:00", tz="UTC") and len(s) == 24
    assert len(m2.slice("2024-01-01", "2024-01-01")) == 24
    assert len(m2.slice(None, pd.Timestamp("2024-01-01").date())) == 24
    assert len(m2.slice(None, "2024-01-01 00:00")) == 1  # a time is exact
    assert len(m2.slice(None, "2024-01")) == 48  # a month: the whole month
    frame = m2["spot_close"]
    assert len(m2.slice(None, "2024-01-01")) == len(frame.loc[:"2024-01-01"])
    assert parse_date("2024-02")[1] == pd.Timestamp("2024-03-01", tz="UTC")
    assert parse_date("20240229")[1] == parse_date("2024/02/29")[1] == pd.Timestamp("2024-03-01", tz="UTC")


def test_load_freqtrade_several_folders(tmp_path):
    a = _ft_dir(tmp_path / "a")
    b = _ft_dir(tmp_path / "b")
    with pytest.raises(ConfigError, match="takes one data directory, got 2"):
        fa.load_freqtrade([a, b])
    assert fa.load_freqtrade([a], "TST").symbols == ("TST",)
    with pytest.raises(ConfigError, match="symbols is empty"):
        fa.load_freqtrade(a, [])
    with pytest.raises(DataError, match="is not a directory"):
        fa.load_freqtrade(a / "TST_USDT-1h.feather")


# ---------------------------------------------------------------------------------------------- 3. data validation
def _bad_bar(df, row, **vals):
    df = df.copy()
    for k, v in vals.items():
        df.loc[row, k] = v
    return df


@pytest.mark.parametrize("leg", ["spot", "perp", "mark"])
@pytest.mark.parametrize(("edit", "column"), [
    ({"low": 12.0}, "low"),            # low above open and close
    ({"high": 9.0}, "high"),           # high below open and close
    ({"open": 20.0}, "high"),          # open above high
])
def test_ohlc_consistency_names_first_bad_row(tmp_path, leg, edit, column):
    d = _ft_dir(tmp_path, **{leg: _bad_bar(_kl(), 5, **edit)})
    with pytest.raises(DataError, match=r"low ≤ open, close ≤ high") as e:
        fa.load_freqtrade(d, "TST")
    assert e.value.row == 6 and e.value.column == column
    assert {"spot": "TST_USDT-1h", "perp": "-futures", "mark": "-mark"}[leg] in str(e.value)


@pytest.mark.parametrize(("vol", "what"), [(-1.0, "negative"), (np.inf, "not finite"), (-np.inf, "negative")])
def test_volume_must_be_finite_and_not_negative(tmp_path, vol, what):
    d = _ft_dir(tmp_path, perp=_bad_bar(_kl(), 3, volume=vol))
    with pytest.raises(DataError, match=f"volume is {what}") as e:
        fa.load_freqtrade(d, "TST")
    assert e.value.row == 4 and e.value.column == "volume"


def test_unknown_volume_is_kept_as_nan(tmp_path):
    # mark klines (and the fetch store's mark files) carry no volume: NaN means unknown, not an error
    m = fa.load_freqtrade(_ft_dir(tmp_path, perp=_bad_bar(_kl(), 3, volume=np.nan)), "TST")
    assert np.isnan(m["perp_volume"]["TST"].iloc[3]) and m["perp_volume"]["TST"].iloc[4] == 1.0


def test_boolean_price_column(tmp_path):
    spot = _kl()
    spot["close"] = True
    with pytest.raises(DataError, match="boolean"):
        fa.load_freqtrade(_ft_dir(tmp_path, spot=spot), "TST")
    p = tmp_path / "f.parquet"
    pd.DataFrame({"Date": pd.date_range("2024-01-01", periods=3, freq="8h", tz="UTC"),
                  "Rate": [True, False, True]}).to_parquet(p)
    with pytest.raises(DataError, match=r"column 'Rate', row 1: value True is a boolean"):
        fa.load_table(p, columns=FUND, tz="UTC")


def test_two_bar_sizes_in_one_file(tmp_path):
    spliced = pd.concat([_kl(n=48), _kl(start="2024-01-03", n=12, freq="5min"), _kl(start="2024-01-03 01:00", n=47)])
    spliced["date"] = spliced["date"].astype("datetime64[ns, UTC]")
    with pytest.raises(DataError, match=r"two bar sizes in one file: most bars are 0 days 01:00:00 apart"):
        fa.load_freqtrade(_ft_dir(tmp_path / "a", n=96, spot=spliced.reset_index(drop=True)), "TST")
    # a file that is all 5m bars is resampled, and the market says so
    fine = _kl(n=48 * 12, freq="5min")
    m = fa.load_freqtrade(_ft_dir(tmp_path / "b", spot=fine), "TST")
    assert any("0 days 00:05:00 bars resampled to 0 days 01:00:00 bars" in n for n in m.warnings)
    assert m["spot_close"]["TST"].iloc[0] == fine["close"].iloc[11]


def test_epoch_seconds_beyond_2262(tmp_path):
    p = _csv(tmp_path, "f.csv", "t,r\n90000000000,0.0001\n90000028800,0.0001\n")
    with pytest.raises(DataError, match=r"read as s is around year 4822, outside what pandas can represent"):
        fa.load_table(p, columns={"time": "t", "funding_rate": "r"}, tz=None)
    p = _csv(tmp_path, "g.csv", "t,r\n1704067200,0.0001\n1704096000,0.0001\n")
    s = fa.load_table(p, columns={"time": "t", "funding_rate": "r"}, tz=None)
    assert s.index[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_short_perp_cuts_the_market_with_a_note(tmp_path):
    spot = _kl(start="2023-01-01", n=24 * 365)
    fund = pd.DataFrame({"date": pd.date_range("2023-12-30", periods=6, freq="8h", tz="UTC"), "open": 1e-4,
                         "high": 0.0, "low": 0.0, "close": 0.0, "volume": 0.0})
    d = _ft_dir(tmp_path, spot=spot, perp=_kl(start="2023-12-30"), mark=_kl(start="2023-12-30"), funding=fund)
    m = fa.load_freqtrade(d, "TST")
    assert len(m) == 48
    note = [n for n in m.warnings if "overlap only" in n]
    assert note and note[0].startswith("TST: spot, perp and funding overlap only 2023-12-30 00:00 → 2023-12-31 23:00")
    assert "spot covers 2023-01-01 00:00 → 2023-12-31 23:00" in note[0]
    # equal spans: no note
    assert not [n for n in fa.load_freqtrade(_ft_dir(tmp_path / "b"), "TST").warnings if "overlap only" in n]


def test_percent_like_funding_is_an_error(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,0.01\n2024-01-01 08:00,0.02\n2024-01-01 16:00,0.015\n")
    with pytest.raises(DataError, match=r"median \|funding rate\| is 0\.015 .*pass percent=True"):
        fa.load_table(p, columns=FUND, tz="UTC")
    s = fa.load_table(p, columns=FUND, tz="UTC", percent=True)
    assert s.iloc[0] == pytest.approx(1e-4)


@pytest.mark.parametrize(("gap", "warns"), [(0.064, True), (0.04, False)])
def test_mark_far_from_perp_warns_with_the_bar(tmp_path, gap, warns):
    mark = _kl()
    mark.loc[10, ["open", "high"]] = mark.loc[10, "open"] * (1 + gap)
    mark.loc[10, "high"] = mark.loc[10, "open"] * 1.001
    d = _ft_dir(tmp_path, mark=mark)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m = fa.load_freqtrade(d, "TST")
    msgs = [str(w.message) for w in rec if issubclass(w.category, DataWarning)]
    if warns:
        assert msgs and "TST: mark and perp open differ by more than 5% on 1 bar(s), most on 2024-01-01 10:00" \
            in msgs[0]
        assert f"{gap:.2%}" in msgs[0] and any(n == msgs[0] for n in m.warnings)
    else:
        assert not msgs


# ---------------------------------------------------------------------------------------------- 4. load_table
@pytest.mark.parametrize(("tz", "match"), [
    ("UTC+3", r"tz 'UTC\+3' is an offset.*tz='Etc/GMT-3' \(the Etc/GMT names invert the sign: 'Etc/GMT-3' is 3 "
              r"hour\(s\) ahead of UTC\)"),
    ("GMT-5", r"tz='Etc/GMT\+5'.*behind UTC"),
    ("+05:30", r"datetime\.timezone"),
    ("", r"unknown time zone ''"),
    ("Mars/Olympus", r"unknown time zone 'Mars/Olympus'"),
    ("Europe/Berln", r"did you mean 'Europe/Berlin'"),
    (3, r"tz must be a time-zone name .*got 3 \(int\)"),
])
def test_tz_validated_before_reading(tmp_path, tz, match):
    # the file does not exist: the zone is checked first
    with pytest.raises(DataError, match=match):
        fa.load_table(tmp_path / "absent.csv", columns=FUND, tz=tz)
    with pytest.raises(DataError, match=match):
        fa.load_venue_funding(tmp_path / "absent.csv", tz=tz)


def test_utc_spellings_accepted(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n2024-01-01 00:00,0.0001\n")
    import datetime as dt

    for tz in ("UTC", "utc", dt.UTC):
        assert fa.load_table(p, columns=FUND, tz=tz).index[0] == pd.Timestamp("2024-01-01", tz="UTC")


def test_day_month_order_never_guessed(tmp_path):
    p = _csv(tmp_path, "f.csv", "Date,Rate\n01/02/2024 00:00,0.0001\n01/02/2024 08:00,0.0001\n")
    with pytest.raises(DataError, match=r"row 1: date '01/02/2024 00:00' could be day-first or month-first"):
        fa.load_table(p, columns=FUND, tz="UTC")
    assert fa.load_table(p, columns=FUND, tz="UTC", dayfirst=True).index[0] == pd.Timestamp("2024-02-01", tz="UTC")
    assert fa.load_table(p, columns=FUND, tz="UTC", dayfirst=False).index[0] == pd.Timestamp("2024-01-02", tz="UTC")
    got = fa.load_table(p, columns=FUND, tz="UTC", format="%d/%m/%Y %H:%M")
    assert got.index[1] == pd.Timestamp("2024-02-01 08:00", tz="UTC")
    # even a file that could only be one order is not read without saying so (pandas would mix them per row)
    q = _csv(tmp_path, "g.csv", "Date,Rate\n12/01/2024 00:00,0.0001\n13/01/2024 00:00,0.0001\n")
    with pytest.raises(DataError, match="could be day-first or month-first"):
        fa.load_table(q, columns=FUND, tz="UTC")
    with pytest.raises(DataError, match=r"row 2: date '13/01/2024 00:00' is not month-first"):
        fa.load_table(q, columns=FUND, tz="UTC", dayfirst=False)
    with pytest.raises(DataError, match=r"row 1: value '12/01/2024 00:00' does not match format"):
        fa.load_table(q, columns=FUND, tz="UTC", format="%Y-%m-%d")


MULTI = ("Symbol,Date,Funding Rate\nBTC-USDT,2024-01-01 00:00,0.0001\nETH-USDT,2024-01-01 00:00,0.0002\n"
         "BTC-USDT,2024-01-01 08:00,0.0003\nETH-USDT,2024-01-01 08:00,0.0004\n")


def test_several_symbols_in_one_file(tmp_path):
    p = _csv(tmp_path, "multi.csv", MULTI)
    with pytest.raises(DataError, match=r"several symbols in one file \(Symbol holds \['BTC-USDT', 'ETH-USDT'\]\): "
                                        r"pass where=\{'Symbol': 'BTC-USDT'\}"):
        fa.load_venue_funding(p, tz="UTC")
    s = fa.load_venue_funding(p, tz="UTC", where={"Symbol": "ETH-USDT"})
    assert s.tolist() == [0.0002, 0.0004]
    t = fa.load_table(p, columns={"time": "Date", "funding_rate": "Funding Rate"}, tz="UTC",
                      where={"Symbol": "BTC-USDT"})
    assert t.tolist() == [0.0001, 0.0003]
    with pytest.raises(DataError, match=r"no row has Symbol == 'BTC-USD'.*did you mean 'BTC-USDT'"):
        fa.load_venue_funding(p, tz="UTC", where={"Symbol": "BTC-USD"})
    with pytest.raises(DataError, match=r"where= names a column the file does not have \(did you mean 'Symbol'"):
        fa.load_venue_funding(p, tz="UTC", where={"Symbl": "BTC-USDT"})
    # a bad row after filtering names the filtered view, so its row number can be found
    bad = _csv(tmp_path, "bad.csv", MULTI.replace("0.0004", "x"))
    with pytest.raises(DataError, match=r"bad\.csv \[rows where Symbol == 'ETH-USDT'\], column 'Funding Rate', row 2"):
        fa.load_venue_funding(bad, tz="UTC", where={"Symbol": "ETH-USDT"})


def test_dst_fall_back_resolved_by_order(tmp_path):
    # Europe/Berlin falls back at 03:00 CEST → 02:00 CET on 2023-10-29: 02:00 appears twice, in order
    text = "Date,Rate\n" + "".join(f"2023-10-29 {h},0.0001\n" for h in ("01:00", "02:00", "02:00", "03:00"))
    s = fa.load_table(_csv(tmp_path, "f.csv", text), columns=FUND, tz="Europe/Berlin")
    assert list(s.index) == list(pd.date_range("2023-10-28 23:00", periods=4, freq="h", tz="UTC"))
    # a lone 02:30 cannot be placed from the order: the error as before
    lone = "Date,Rate\n2023-10-29 01:30,0.0001\n2023-10-29 02:30,0.0001\n2023-10-29 03:30,0.0001\n"
    with pytest.raises(DataError, match=r"row 2: local time '2023-10-29 02:30' is ambiguous or does not exist"):
        fa.load_table(_csv(tmp_path, "g.csv", lone), columns=FUND, tz="Europe/Berlin")


@pytest.mark.parametrize("jitter_s", [0.001, 0.4, 0.999, 29.0])
def test_funding_jitter_makes_no_interval_segments(jitter_s):
    t = pd.date_range("2024-01-01", periods=300, freq="8h", tz="UTC")
    signs = np.where(np.arange(len(t)) % 2 == 0, 1.0, -1.0)
    j = t + pd.to_timedelta(signs * jitter_s, unit="s")
    segs, missing = funding_intervals(j)
    assert [(s.hours, s.events) for s in segs] == [(8.0, 300)] and missing == []


def test_venue_docstring_has_dydx_utc():
    doc = fa.load_venue_funding.__doc__ or ""
    line = next(ln for ln in doc.splitlines() if "dydx" in ln and "``" in ln)
    assert '"UTC"' in line and "Etc/GMT" not in line


def test_duration_overflow_is_a_config_error():
    with pytest.raises(ConfigError, match=r"window: duration '99999999999d' is too long"):
        parse_duration("99999999999d", name="window")


# ---------------------------------------------------------------------------------------------- 7. docs stand alone
def test_docs_link_nothing_outside_the_repo():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert ROOT / "docs" / "model.md" in files
    for f in files:
        text = f.read_text()
        links = re.findall(r"\]\(([^)]+)\)", text)
        for link in links:
            if link.startswith(("http://", "https://", "#")):
                continue
            target = (f.parent / link.split("#")[0]).resolve()
            assert target.is_relative_to(ROOT) and target.exists(), (f.name, link)
        assert "shared/DESIGN" not in text, f.name


def test_gitignore_covers_what_the_readme_writes():
    lines = set((ROOT / ".gitignore").read_text().split())
    assert {"out.*", "/*.png", "/data/"} <= lines


def test_fundarb_data_env(monkeypatch, tmp_path):
    from conftest import real_data_dir

    assert real_data_dir({"FUNDARB_DATA": str(tmp_path)}) == tmp_path.resolve()
    assert real_data_dir({}) == (ROOT / ".." / "shared" / "data").resolve()
    readme = (ROOT / "README.md").read_text()
    assert "FUNDARB_DATA" in readme
    import importlib.util

    import loopback_exchange

    assert loopback_exchange.SHARED_DATA == real_data_dir()
    spec = importlib.util.spec_from_file_location("bench_data", ROOT / "benchmarks" / "_data.py")
    assert spec is not None and spec.loader is not None
    bench_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_data)
    monkeypatch.setenv("FUNDARB_DATA", str(tmp_path))
    assert bench_data.data_dir() == tmp_path / "binance"
    monkeypatch.delenv("FUNDARB_DATA")
    assert bench_data.data_dir().resolve() == real_data_dir({}) / "binance"
    for bench in (ROOT / "benchmarks").glob("bench_*.py"):
        text = bench.read_text()
        assert "load_freqtrade" not in text or "data_dir()" in text, bench.name  # reads $FUNDARB_DATA
    for nb in (ROOT / "notebooks").glob("*.py"):
        text = nb.read_text()
        assert 'os.environ.get("FUNDARB_DATA")' in text, nb.name


def test_check_real_refuses_booleans():
    from fundarb.errors import check_real

    assert check_real("capital", np.int64(3)) == 3.0 and check_real("fee", np.float32(0.5)) == 0.5
    for bad in (True, np.bool_(False), "1", None):
        with pytest.raises(ConfigError, match="capital must be a number"):
            check_real("capital", bad)


# ---------------------------------------------------------------------------------------------- second pass
def test_select_non_string_symbol(m2):
    with pytest.raises(ConfigError, match=r"select takes symbol names \(str\), got 1"):
        m2.select([1])


def test_load_freqtrade_symbols_of_wrong_type(tmp_path):
    d = _ft_dir(tmp_path / "ft")
    with pytest.raises(ConfigError, match="symbols must be a symbol, a list of symbols or None, got int"):
        fa.load_freqtrade(d, 5)
    with pytest.raises(ConfigError, match=r"symbols must be names \(str\), got 5"):
        fa.load_freqtrade(d, ["TST", 5])


def test_walk_forward_anchored_must_be_bool(m2):
    with pytest.raises(ConfigError, match="anchored must be True or False, got 'no'"):
        fa.walk_forward(m2, fa.FundingCarry(), {"entry": [0.1]}, train="1d", test="8h", anchored="no")


def test_strategy_numbers_accept_numpy_scalars_not_bools():
    s = fa.FundingCarry(leverage=np.int64(2), entry=np.float32(0.25))
    assert s.leverage == 2.0 and type(s.leverage) is float and s.entry == 0.25
    with pytest.raises(ConfigError, match=r"leverage must be > 0 .*got np\.True_"):
        fa.FundingCarry(leverage=np.bool_(True))


@pytest.mark.parametrize(("which", "match"), [("fifo", r"manifest is a named pipe \(FIFO\)"),
                                              ("tmp", r"manifest is a folder, not a regular file")])
def test_fetch_manifest_not_regular(paths, capsys, which, match):
    assert re.search(match, _cli_error(capsys, ["fetch", str(paths[which])]))


def test_fetch_tiers_file_fifo_refused_before_any_request(paths, capsys):
    # a closed port as the exchange: were the tiers file not checked first, this would try the network
    err = _cli_error(capsys, ["fetch", "--symbols", "BTC", "--since", "2024-01-01", "--out", str(paths["tmp"] / "d"),
                              "--api-url", "http://127.0.0.1:9", "--max-retries", "0", "--tiers-file",
                              str(paths["fifo"])])
    assert re.search(r"--tiers-file .*fifo\.toml is a named pipe \(FIFO\)", err)


def test_capital_beyond_float_cents_and_a_market_that_is_not_marketdata():
    m = fa.demo_market(days=10)
    with pytest.raises(fa.ConfigError, match=r"capital must be > 0 and ≤ 1e\+12"):
        fa.backtest(m, 1, capital=1e308)
    with pytest.raises(fa.ConfigError, match=r"market must be a fundarb\.MarketData"):
        fa.backtest("demo", 1)


def test_cli_capital_out_of_range_is_one_line(capsys):
    assert main(["backtest", STRATEGY, "--dataset", "demo", "--capital", "1e308"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "capital" in err and "\n" not in err


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two", "3 threads"])
def test_cli_numba_threads_checked_before_work(capsys, monkeypatch, value):
    monkeypatch.setenv("NUMBA_NUM_THREADS", value)
    msg = _cli_error(capsys, ["backtest", STRATEGY])
    assert re.search(r"NUMBA_NUM_THREADS must be a whole number ≥ 1 .*got '" + re.escape(value) + "'", msg)


def test_cli_numba_threads_accepts_a_count(capsys, monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    from fundarb.cli import main

    assert main(["describe"]) == 0
