"""Reports, JSON and the CLI header: self-contained HTML, the book beside every symbol, one number format, no float
noise, a trade log whose counts match the statistics, the sweep report and its heatmap."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fundarb.cli import main
from fundarb.data.market import MarketData
from fundarb.results.formatting import clean_value, fmt_number, fmt_stat
from fundarb.results.plots import _text_colour, figure_heatmap
from fundarb.results.report import monthly_returns
from fundarb.results.report_charts import hold_spot

ROOT = Path(__file__).resolve().parents[1]
BOT = ROOT / "strategies" / "binance_bot.toml"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> dict:
    """The bot on the demo dataset through the CLI: stdout, the JSON (with series) and the report."""
    d = tmp_path_factory.mktemp("report")
    js, html = d / "run.json", d / "run.html"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["backtest", str(BOT), "--json", str(js), "--json-series", "--report", str(html)]) == 0
    return {"stdout": buf.getvalue(), "json": json.loads(js.read_text()), "html": html.read_text(), "dir": d}


def test_number_formats():
    assert fmt_number(1.00187e-12) == "0.00"
    assert fmt_number(-1e-12) == "0.00"
    assert fmt_number(-0.001) == "0.00"
    assert fmt_number(12575.3) == "12,575.30"
    assert fmt_number(11973.25, 1) == "11,973.2"
    assert fmt_number(float("nan")) == "—" and fmt_number(None) == "—"
    assert fmt_stat("total_return", 0.12345) == "12.35 %"
    assert fmt_stat("n_trades", 1234) == "1,234"
    assert fmt_stat("sharpe", 1.8024) == "1.80"
    assert fmt_stat("break_even_days", 5.9002) == "5.9"
    assert fmt_stat("insurance_fund_loss", 1.00187e-12) == "0.00"
    assert clean_value(1.6e-12) == 0.0 and clean_value(-3e-10) == 0.0 and clean_value(2e-9) == 2e-9
    assert clean_value(float("nan")) is None and clean_value(np.int64(3)) == 3


@pytest.mark.parametrize(("td", "label"), [("1h", "1h"), ("8h", "8h"), ("5min", "5m"), ("1D", "1d"), ("4h", "4h"),
                                           ("90min", "90m"), ("7D", "1w"), ("30s", "30s"), ("36h", "36h")])
def test_timeframe_label(td, label):
    assert MarketData.timeframe_label.fget(SimpleNamespace(timeframe=pd.Timedelta(td))) == label


def _walk_floats(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _walk_floats(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk_floats(v)
    elif isinstance(obj, float):
        yield obj


def test_json_capital_timeframe_series_and_no_noise(demo_run):
    out = demo_run["json"]
    n = len(out["symbols"])
    assert out["timeframe"] == "1h" and out["capital"] == 10_000.0 * n and out["accounts"] == n
    # the identity check is a relative error, meant to be tiny; every other value is money, a ratio or a count
    assert 0 <= out["identity_error"] < 1e-9
    assert all(v == 0.0 or abs(v) >= 1e-9 for v in _walk_floats({**out, "identity_error": 0.0}))
    eq = out["equity"]
    assert len(eq["time"]) == len(eq["equity"]) == out["bars"]
    assert eq["equity"][-1] == pytest.approx(out["portfolio"]["final_equity"], rel=1e-12)
    trades = out["trades"]
    liq = [t for t in trades if t["kind"].startswith("liquidation")]
    assert len(liq) == out["portfolio"]["n_liquidations"]
    assert len(trades) - len(liq) == out["portfolio"]["n_trades"] == sum(s["n_trades"] for s in out["symbols"].values())
    # a liquidation row has no spot price: null, not NaN
    assert all(t["spot_price"] is None or math.isfinite(t["spot_price"]) for t in trades)


def test_cli_header_in_words(demo_run):
    text = demo_run["stdout"]
    assert "bars of 1h" in text and not re.search(r"\d+ days \d\d:", text) and "<MarketData" not in text
    header = text.splitlines()[1]
    assert "DEMOBTC, DEMOETH, DEMOXTZ" in header and "2023-01-01 00:00" in header
    # the statistics table has every symbol and the book
    cols = next(line for line in text.splitlines() if "DEMOBTC" in line and "book" in line)
    assert cols.split() == ["DEMOBTC", "DEMOETH", "DEMOXTZ", "book"]
    table = text[:text.index("accounting identity")]
    assert not re.search(r"\de-\d", table) and not re.search(r"\bnan\b", table, re.IGNORECASE)


def test_report_is_self_contained_and_complete(demo_run):
    page, out = demo_run["html"], demo_run["json"]
    assert page.startswith("<!doctype html>")
    external = [w for w in ("<script", "<link", "@import", "url(") if w in page]
    assert external == []
    srcs = re.findall(r"src='([^']*)'", page)
    assert len(srcs) >= 3 + len(out["symbols"]) and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r"(?:src|href)=['\"]https?:", page)
    timedelta_repr = re.compile(r"\d+ days \d\d:\d\d:\d\d")
    assert not timedelta_repr.search(page)
    assert ("<MarketData" in page, "1h (17,520 bars)" in page) == (False, True)
    for word in ("SYNTHETIC", "margin management", "Binance funding-rate arbitrage bot", "Monthly returns",
                 "Strategy parameters in effect", "<details>", "holding spot"):
        assert (word in page) is True, word
    text = re.sub(r"data:image/png;base64,[^']*", "", page)
    noise = re.findall(r"NaN|>nan<|\d\.?\d*e-\d", text)
    assert noise == []
    # summary and charts before the parameters, the strategy file last
    assert text.index("Statistics") < text.index("chart-equity") < text.index("Strategy parameters") \
        < text.index("Trade log") < text.index("<details>")
    # the book's column shows the JSON's figures
    book = dict(re.findall(r"<td data-book='(\w+)'>([^<]*)</td>", page))
    assert book["final_equity"] == fmt_stat("final_equity", out["portfolio"]["final_equity"])
    assert book["n_trades"] == fmt_stat("n_trades", out["portfolio"]["n_trades"])
    assert book["max_drawdown"] == fmt_stat("max_drawdown", out["portfolio"]["max_drawdown"])


def test_trade_log_counts_and_columns(demo_run):
    page, out = demo_run["html"], demo_run["json"]
    heading = re.search(r"Trade log — ([\d,]+) rows: ([\d,]+) executions .*? and ([\d,]+) liquidations", page)
    assert heading, "trade log heading"
    rows, execs, liqs = (int(g.replace(",", "")) for g in heading.groups())
    assert rows == len(out["trades"]) and execs == out["portfolio"]["n_trades"]
    assert liqs == out["portfolio"]["n_liquidations"]
    table = page[page.index("<table class='trades'>"):]
    head = re.findall(r"<th>([^<]*)</th>", table[:table.index("</tr>")])
    assert "member" not in head and "account" not in head and "symbol" in head and "kind" in head
    # columns that repeat one value are dropped (no spread or slippage in this file's costs)
    assert "spread" not in head and "slippage" not in head
    body = table[:table.index("</table>")]
    assert re.findall(r"\bnan\b", body, re.IGNORECASE) == []
    if liqs:
        assert ("—" in body) is True  # a liquidation row's missing price or equity prints as a dash


def test_monthly_returns_compound_to_the_total():
    idx = pd.date_range("2023-01-01", "2024-03-31 23:00", freq="h", tz="UTC")
    rng = np.random.default_rng(3)
    eq = pd.Series(1000.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(idx)))), index=idx)
    table = monthly_returns(eq, 1000.0)
    assert list(table.index) == [2023, 2024] and table.loc[2024, "Apr"] != table.loc[2024, "Apr"]  # NaN
    months = table.drop(columns="year").to_numpy().ravel()
    months = months[np.isfinite(months)]
    assert len(months) == 15
    assert np.prod(1 + months) - 1 == pytest.approx(eq.iloc[-1] / 1000.0 - 1, rel=1e-12)
    assert np.prod(1 + table["year"].to_numpy()) - 1 == pytest.approx(eq.iloc[-1] / 1000.0 - 1, rel=1e-12)


def test_hold_spot_is_capital_times_price_ratio():
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    close = pd.DataFrame({"A": [np.nan, 10.0, 20.0, 5.0], "B": [4.0, 4.0, 2.0, 8.0]}, index=idx)

    class Market:
        symbols, index = ("A", "B"), idx

        def __getitem__(self, key):
            assert key == "spot_close"
            return close

    hold = hold_spot(SimpleNamespace(market=Market(), mem_sym=np.array([0, 1])),
                     SimpleNamespace(capital=pd.Series([200.0])))
    # half the capital in each, bought at its first price (A's first bar has none: cash until then)
    assert hold.tolist() == [100 + 100, 100 + 100, 200 + 50, 50 + 200]


def test_heatmap_text_colour_and_size():
    from matplotlib import colormaps

    vir = colormaps["viridis"]
    assert _text_colour(vir(0.0)) == "white" and _text_colour(vir(1.0)) == "black"
    small = pd.DataFrame(np.arange(6.0).reshape(2, 3), index=pd.Index([1, 2], name="exit"),
                         columns=pd.Index([0.1, 0.2, 0.3], name="entry"))
    big = pd.DataFrame(np.arange(80.0).reshape(8, 10), index=pd.Index(range(8), name="exit"),
                       columns=pd.Index(range(10), name="entry"))
    title = "sharpe — Binance funding-rate arbitrage bot (auto, 3d) with a long title that must not be clipped"
    for pivot in (small, big):
        fig = figure_heatmap(pivot, metric="sharpe", title=title)
        fig.canvas.draw()
        w, h = fig.get_size_inches() * fig.dpi
        assert w >= 6.5 * fig.dpi
        for text in fig.texts:  # the title lies inside the figure
            bb = text.get_window_extent()
            assert bb.x0 >= 0 and bb.x1 <= w and bb.y1 <= h
        ax = fig.axes[0]
        darkest = min(ax.texts, key=lambda t: float(t.get_text()))
        assert darkest.get_color() == "white"
    assert figure_heatmap(big, metric="m").get_size_inches()[0] > figure_heatmap(small, metric="m").get_size_inches()[0]


def test_result_report_method_and_sweep_report(tmp_path, capsys):
    from fundarb.data import sources
    from fundarb.signals.run import run_strategy

    market = sources.open_market(dataset="demo", symbols=["DEMOBTC"], start="2023-01-01", end="2023-03-31")
    res = run_strategy(market, str(BOT))
    path = res.report(str(tmp_path / "r.html"), strategy=str(BOT))
    page = Path(path).read_text()
    assert "Binance funding-rate arbitrage bot" in page and "DEMOBTC" in page
    assert "<td data-book='final_equity'>" in page
    out = tmp_path / "s.html"
    assert main(["sweep", str(BOT), "--grid", "entry=0.05,0.1,0.2", "--grid", "exit=0,0.02", "--symbols", "DEMOBTC",
                 "--start", "2023-01-01", "--end", "2023-03-31", "--report", str(out)]) == 0
    page = out.read_text()
    assert "bars of 1h" in capsys.readouterr().out
    assert page.count("<figure class='chart'") == 3  # sharpe, cagr, max drawdown over entry × exit
    assert "Top 6 points by sharpe" in page and "<script" not in page
