"""Margin management of the shipped strategy files: the sweep their values come from, and before/after.

Run from the project root::

    PYTHONPATH=src python research/margin_management.py sweep [FILE ...]   # the tables the choices rest on
    PYTHONPATH=src python research/margin_management.py table              # every shipped file, as shipped
    PYTHONPATH=src python research/margin_management.py table --before DIR # ... next to DIR's files on DIR's engine

``DIR`` is a checkout of an older commit (e.g. ``git worktree add /tmp/before a13ec19``); its files are run
with ``PYTHONPATH=DIR/src`` in a subprocess. Data: ``$FUNDARB_DATA/binance`` (default ``../shared/data``),
BTC, ETH, XTZ, AVAX, LINK, 2020-01-01 → 2026-05-01 (the alts have perp data from 2025-05 only).

Every run is split in two markets: the majors (BTC, ETH) and the alts (XTZ, AVAX, LINK). A carry file gives
one independent account per symbol, so the split changes nothing for it; a portfolio file is one book per
market. Columns: liquidations (events), rebalances (trade-log rows of kind ``rebalance``), their cost (fees,
spread and slippage of those rows, USDT on 10,000 per account), total return (mean over the accounts),
Sharpe per account and of the book (the accounts' summed equity).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

import fundarb as fa

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FUNDARB_DATA", "../shared/data")) / "binance"
START, END = "2020-01-01", "2026-05-01"
MAJORS, ALTS = ("BTC", "ETH"), ("XTZ", "AVAX", "LINK")
FILES = ("binance_bot", "carry_7d", "reverse_only", "top3_rotation", "stress_no_rebalance")

# The sweep of each file: rebalance_at (perp cushion share), spot_rebalance_level (reverse legs only),
# rebalance_every (periodic). Tens of points per file; the majors decide first (0 liquidations), then the alts.
EVERY = (0, "7d", "30d")
GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "binance_bot": {"rebalance_at": (0.3, 0.5, 0.7), "spot_leverage": (2.0, 3.0),
                    "spot_rebalance_level": (1.2, 1.3, 1.4), "rebalance_every": (0, "30d")},
    "carry_7d": {"rebalance_at": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8), "rebalance_every": EVERY},
    "reverse_only": {"rebalance_at": (0.3, 0.5, 0.7), "spot_leverage": (2.0, 3.0),
                     "spot_rebalance_level": (1.2, 1.25, 1.3, 1.4), "rebalance_every": EVERY},
    "top3_rotation": {"rebalance_at": (0.3, 0.5, 0.7), "spot_leverage": (2.0, 3.0),
                      "spot_rebalance_level": (1.2, 1.3, 1.4), "rebalance_every": (0, "30d")},
}


def markets(symbols: tuple[str, ...] = MAJORS + ALTS) -> dict[str, Any]:
    """The majors' and the alts' aligned data."""
    out = {}
    for name, syms in (("majors", MAJORS), ("alts", ALTS)):
        keep = [s for s in syms if s in symbols]
        if keep:
            out[name] = fa.load_freqtrade(DATA, keep).slice(START, END)
    return out


class Runner:
    """Runs one strategy over a market many times, computing targets (and weights) once."""

    def __init__(self, market: Any, spec: Any) -> None:
        self.market, self.spec = market, spec
        self.costs = spec.costs if spec.costs is not None else fa.Costs()
        self.capital = spec.capital if spec.capital is not None else 10_000.0
        strat = spec.strategy
        self.portfolio = hasattr(strat, "weights")
        if self.portfolio:
            self.targets = strat.targets(market, self.costs)
            self.weights = strat.weights(market, self.costs)
        else:
            self.targets = strat.targets(market)
            self.weights = None

    def run(self, **changes: Any) -> dict[str, Any]:
        strat = dataclasses.replace(self.spec.strategy, **changes)
        kw = dict(costs=self.costs, capital=self.capital, **strat.engine_options())
        if self.weights is not None:
            kw["weights"] = self.weights
        res = fa.backtest(self.market, self.targets, **kw)
        return measure(res, self.portfolio)


def measure(res: Any, portfolio: bool) -> dict[str, Any]:
    """Liquidations, rebalances and their cost, Sharpe per account and of the book."""
    st = res.stats()
    tr = res.trades
    reb = tr[tr["kind"] == "rebalance"]
    cost = float((reb["fees"] + reb["spread"] + reb["slippage"]).sum())
    sharpe = {str(k if not isinstance(k, tuple) else k[-1]): float(v) for k, v in st["sharpe"].items()}
    book = float(res.combined().stats()["sharpe"].iloc[0]) if not portfolio and len(st) > 1 else \
        float(st["sharpe"].iloc[0])
    return {"liq": int(st["n_liquidations"].sum()), "reb": len(reb), "cost": cost, "sharpe": sharpe,
            "book": book, "ret": float(st["total_return"].mean())}


def fmt_sharpe(m: dict[str, Any]) -> str:
    per = " ".join(f"{k} {v:.2f}" for k, v in m["sharpe"].items() if np.isfinite(v))
    return f"book {m['book']:.2f} ({per})" if len(m["sharpe"]) > 1 else f"{m['book']:.2f}"


def sweep(name: str) -> None:
    """Print the sweep of one file and its cheapest safe point: 0 liquidations on the majors, fewest on the
    alts, then the least rebalancing cost. The files' comments say where they choose otherwise and why."""
    spec = fa.load_strategy(ROOT / "strategies" / f"{name}.toml")
    mk = markets()
    runners = {k: Runner(m, spec) for k, m in mk.items()}
    grid = GRIDS[name]
    rows = []
    for combo in itertools.product(*grid.values()):
        pt = dict(zip(grid, combo, strict=True))
        rows.append((pt, {k: r.run(**pt) for k, r in runners.items()}))
    print(f"\n## {name}  (shipped: " + ", ".join(f"{k}={getattr(spec.strategy, k)!r}" for k in grid) + ")")
    print(f"{'point':<58} {'liq maj':>7} {'liq alt':>7} {'reb':>5} {'cost':>8}  sharpe majors | alts")
    for pt, m in rows:
        a, b = m["majors"], m["alts"]
        label = " ".join(f"{k}={v}" for k, v in pt.items())
        print(f"{label:<58} {a['liq']:>7} {b['liq']:>7} {a['reb'] + b['reb']:>5} {a['cost'] + b['cost']:>8.0f}  "
              f"{fmt_sharpe(a)} | {fmt_sharpe(b)}")
    best = min(rows, key=lambda r: (r[1]["majors"]["liq"], r[1]["alts"]["liq"],
                                    r[1]["majors"]["cost"] + r[1]["alts"]["cost"]))
    print("fewest liquidations (majors, then alts), then cheapest:", best[0])


def table_rows(strategies: Path, files: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each file in ``strategies`` as it is, on the majors and on the alts."""
    mk = markets()
    out: dict[str, dict[str, Any]] = {}
    for name in files:
        path = strategies / f"{name}.toml"
        if not path.exists():
            continue
        spec = fa.load_strategy(path)
        out[name] = {k: Runner(m, spec).run() for k, m in mk.items()}
    return out


def table(before: str | None) -> None:
    after = table_rows(ROOT / "strategies", FILES)
    old: dict[str, Any] = {}
    if before:
        env = dict(os.environ, PYTHONPATH=str(Path(before) / "src"))
        cmd = [sys.executable, __file__, "_json", str(Path(before) / "strategies")]
        old = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
    print(f"{'file':<20} {'':<6} {'market':<6} {'liq':>4} {'reb':>5} {'reb cost':>9} {'return':>8}  sharpe")
    for name in FILES:
        for tag, src in (("before", old), ("after", after)):
            if name not in src:
                continue
            for mkt in ("majors", "alts"):
                m = src[name][mkt]
                print(f"{name:<20} {tag:<6} {mkt:<6} {m['liq']:>4} {m['reb']:>5} {m['cost']:>9.0f} "
                      f"{m['ret']:>8.1%}  {fmt_sharpe(m)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sw = sub.add_parser("sweep")
    sw.add_argument("files", nargs="*", default=list(GRIDS))
    tb = sub.add_parser("table")
    tb.add_argument("--before", default=None, help="checkout of an older commit to compare with")
    js = sub.add_parser("_json")
    js.add_argument("strategies")
    args = ap.parse_args()
    if args.cmd == "sweep":
        for f in args.files:
            sweep(f)
    elif args.cmd == "table":
        table(args.before)
    else:
        print(json.dumps(table_rows(Path(args.strategies), FILES)))


if __name__ == "__main__":
    main()
