"""The report in a real browser: headless Chromium opens it with no network, logs no console error, draws every
chart (each chart's box in a screenshot is not blank) and shows the book's figures the JSON has.

Needs ``chromium`` (Debian's package; ``.ci/run`` installs it). Without it the test is skipped, except under
CI (``CI=true``), where it fails.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cdp import Browser, find_chromium
from fundarb.cli import main
from fundarb.results.formatting import STAT_KINDS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = find_chromium()


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed; .ci/run installs it (apt-get install -y chromium)")
        pytest.skip("chromium not installed (apt-get install -y chromium); this test needs a real browser")
    return CHROMIUM


def _shown_value(text: str) -> float | None:
    text = text.strip()
    if text == "—":
        return None
    if text == "∞":
        return float("inf")
    pct = text.endswith("%")
    v = float(text.rstrip("%").strip().replace(",", "").replace("−", "-"))
    return v / 100.0 if pct else v


def _tolerance(key: str, text: str) -> float:
    """Half a unit of the last printed digit, in the JSON's unit."""
    digits = text.rstrip("% ").split(".")
    decimals = len(digits[1]) if len(digits) > 1 else 0
    tol = 0.5 * 10.0 ** -decimals
    return tol / 100.0 if STAT_KINDS.get(key) == "percent" else tol


def test_report_in_headless_chromium(chromium, tmp_path):
    from PIL import Image

    js, html = tmp_path / "run.json", tmp_path / "run.html"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["backtest", str(ROOT / "strategies" / "binance_bot.toml"), "--json", str(js),
                     "--report", str(html)]) == 0
    book = json.loads(js.read_text())["portfolio"]
    with Browser(chromium) as browser:
        browser.open(html.as_uri())
        shown = browser.evaluate("[...document.querySelectorAll('td[data-book]')]"
                                 ".map(e => [e.dataset.book, e.textContent])")
        boxes = browser.evaluate(
            "[...document.querySelectorAll('figure.chart img')].map(e => {const r = e.getBoundingClientRect();"
            "return {id: e.parentElement.id, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height,"
            "natural: e.naturalWidth, done: e.complete}})")
        png = browser.screenshot(width=1200)
        errors = browser.errors()
        outside = [u for u in browser.requests() if not u.startswith(("data:", "file:"))]
    assert errors == []
    assert outside == [], "the report fetched something over the network"
    # every chart decoded and drawn: its box in the screenshot has ink, not a blank rectangle
    assert len(boxes) >= 4
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    for b in boxes:
        assert b["done"] and b["natural"] > 0 and b["w"] > 300 and b["h"] > 100, b
        crop = shot[int(b["y"]) + 2:int(b["y"] + b["h"]) - 2, int(b["x"]) + 2:int(b["x"] + b["w"]) - 2]
        assert crop.size and crop.std() > 10 and (crop < 128).mean() > 0.005, (b["id"], crop.std())
    # the book's column shows the JSON's numbers (to the digits printed)
    assert {k for k, _ in shown} >= {"final_equity", "total_return", "sharpe", "max_drawdown", "n_trades",
                                     "funding_pnl", "fees"}
    for key, text in shown:
        want, got = book[key], _shown_value(text)
        if want is None:
            assert got is None, (key, text)
        else:
            assert got is not None and abs(got - want) <= _tolerance(key, text) + 1e-12, (key, text, want)
