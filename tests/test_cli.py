"""The ``fundarb`` command line: backtest, describe, errors as one line with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fundarb.cli import main
from fundarb.results.summary import SUMMARY_KEYS

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = sorted((ROOT / "strategies").glob("*.toml"))
SIGN = {"funding_pnl": 1, "spot_pnl": 1, "perp_pnl": 1, "fees": -1, "spread": -1, "slippage": -1, "borrow": -1,
        "liquidation_fees": -1, "insurance_fund_loss": 1}


def _check_json(path: Path, capital: float, n_accounts: int) -> dict:
    out = json.loads(path.read_text())
    port = out["portfolio"]
    assert set(SUMMARY_KEYS) <= set(port)
    for sym in out["symbols"].values():
        assert set(SUMMARY_KEYS) <= set(sym)
    # DESIGN §6: final equity = capital + Σ signed components
    rhs = capital * n_accounts + sum(s * port[k] for k, s in SIGN.items())
    assert port["final_equity"] == pytest.approx(rhs, rel=1e-9)
    assert out["identity_error"] < 1e-9
    return out


def test_strategy_files_are_there():
    names = {p.name for p in STRATEGIES}
    assert {"binance_bot.toml", "carry_7d.toml", "reverse_only.toml", "top3_rotation.toml"} <= names


@pytest.mark.parametrize("path", STRATEGIES, ids=[p.stem for p in STRATEGIES])
def test_backtest_every_strategy_on_demo(path, tmp_path, capsys):
    out = tmp_path / "stats.json"
    png = tmp_path / "equity.png"
    assert main(["backtest", str(path), "--dataset", "demo", "--json", str(out), "--plot", str(png),
                 "--capital", "5000"]) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC" in text and "sharpe" in text
    data = json.loads(out.read_text())
    n_accounts = 1 if "rotation" in path.stem else len(data["symbols"])
    _check_json(out, 5000.0, n_accounts)
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize("path", STRATEGIES, ids=[p.stem for p in STRATEGIES])
def test_backtest_every_strategy_on_real_btc_eth(path, tmp_path, shared_data):
    out = tmp_path / "stats.json"
    assert main(["backtest", str(path), "--data", str(shared_data / "binance"), "--symbols", "BTC,ETH",
                 "--start", "2021-01-01", "--end", "2021-12-31", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data["symbols"]) == {"BTC", "ETH"}
    _check_json(out, 10_000.0, 1 if "rotation" in path.stem else 2)


def test_report_is_self_contained(tmp_path, capsys):
    html = tmp_path / "r.html"
    assert main(["backtest", str(ROOT / "strategies" / "carry_7d.toml"), "--report", str(html)]) == 0
    text = html.read_text()
    assert text.startswith("<!doctype html>") and "data:image/png;base64," in text and "SYNTHETIC" in text


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[strategy]\ntype = "carry"\nwindwo = "3d"\n')
    assert main(["backtest", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml" in err and "did you mean 'window'" in err
    assert main(["backtest", str(tmp_path / "missing.toml")]) == 2
    assert "missing.toml" in capsys.readouterr().err
    assert main(["backtest", str(STRATEGIES[0]), "--dataset", "dmeo"]) == 2
    assert "did you mean 'demo'" in capsys.readouterr().err
    assert main(["backtest", str(STRATEGIES[0]), "--capital", "-5"]) == 2


def test_help_everywhere_and_fast_start():
    for args in ([], ["backtest"], ["describe"], ["funding-stats"], ["fetch"]):
        r = subprocess.run([sys.executable, "-m", "fundarb", *args, "--help"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "usage" in r.stdout.lower(), args
    # the CLI's start-up does not import vectorbt, numba kernels or matplotlib
    probe = ("import sys, fundarb.cli; bad = [m for m in ('vectorbt', 'matplotlib', 'fundarb.engine.nb') "
             "if m in sys.modules]; print(bad)")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "[]"
