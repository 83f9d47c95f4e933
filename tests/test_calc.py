"""``fundarb.calc`` and ``fundarb calc``: every worked number of DESIGN §3/§5 and issue 8, the JSON shape, and one
``error:`` line with exit code 2 for every class of bad input. Also the input checks of
:func:`fundarb.engine.tiers.liquidation_price` and of tier tables (issue 12)."""

from __future__ import annotations

import dataclasses
import doctest
import json
import math

import numpy as np
import pytest

import fundarb as fa
from fundarb import calc
from fundarb.cli import main
from fundarb.engine.tiers import check_tiers, flat_tiers, load_tiers, tiers_from_ccxt
from fundarb.errors import ConfigError, DataError

DESIGN_TABLE = [  # DESIGN §5, flat mmr 0.5%: (side, entry, qty, margin, guides, exchange)
    ("long", 30_000, 0.1, 300, 27_150.0, 27_135.678391959798),
    ("long", 30_000, 20_000 / 30_000, 1_000, 28_650.0, 28_643.216080402010),
    ("short", 30_000, 0.1, 300, 32_850.0, 32_835.820895522388),
]


def test_docstring_examples_hold():
    res = doctest.testmod(calc, optionflags=doctest.ELLIPSIS)
    assert res.attempted >= 25 and res.failed == 0
    assert fa.calc is calc and fa.calc.liquidation_price("long", 30_000, 0.1, 300, mm_basis="entry") == 27_150.0


# ------------------------------------------------------------------------------------------------ worked numbers
def test_size_carry_design_numbers():
    one = calc.size(1000, 1)
    assert (one.spot_notional, one.perp_notional, one.perp_margin) == (500.0, 500.0, 500.0)
    nine = calc.size(1000, 9, price=30_000)
    assert (nine.spot_notional, nine.perp_margin) == (900.0, 100.0)
    assert nine.qty == pytest.approx(0.03, rel=1e-15)
    assert nine.spot_collateral is None and nine.spot_leverage is None and nine.direction == "carry"
    # the legs use the whole equity
    for lev in (0.5, 1, 2, 3.7, 125):
        s = calc.size(2500, lev)
        assert s.spot_notional + s.perp_margin == pytest.approx(2500, rel=1e-14)


def test_size_reverse_design_numbers():
    # N = E/(1/L + 1/Ls) = 1000/(1/2 + 1/3) = 1200; perp margin N/L = 600; spot collateral N/Ls = 400
    r = calc.size(1000, 2, reverse=True, spot_leverage=3, price=40_000)
    assert r.spot_notional == pytest.approx(1200, rel=1e-14)
    assert r.perp_margin == pytest.approx(600, rel=1e-14)
    assert r.spot_collateral == pytest.approx(400, rel=1e-14)
    assert r.qty == pytest.approx(0.03, rel=1e-14)
    assert r.spot_margin_level == pytest.approx(4 / 3, rel=1e-14)  # the 1.33 issue 8 quotes for Ls = 3
    for lev, ls in ((1, 1), (3, 5), (20, 9.99)):
        s = calc.size(700, lev, reverse=True, spot_leverage=ls)
        assert s.perp_margin + s.spot_collateral == pytest.approx(700, rel=1e-14)


def test_margin_design_numbers():
    m = calc.margin(30_000, 0.1, 10, mmr=0.005)
    assert (m.position_value, m.initial_margin, m.maintenance_margin) == (3000.0, 300.0, 15.0)
    assert calc.margin(30_000, 0.1, 10).maintenance_margin == 15.0  # 0.5% is the default


@pytest.mark.parametrize(("side", "entry", "qty", "margin", "guides", "exchange"), DESIGN_TABLE)
def test_liquidation_design_table(side, entry, qty, margin, guides, exchange):
    r = calc.liquidation(side, entry, qty, margin, mmr=0.005)
    assert r.guide == pytest.approx(guides, rel=1e-12)
    assert r.exchange == pytest.approx(exchange, rel=1e-12)
    assert r.liquidation_price == r.exchange and r.rule == "exchange"
    assert calc.liquidation(side, entry, qty, margin, mmr=0.005, rule="guide").liquidation_price == r.guide
    s = 1 if side == "long" else -1
    # the exchange's price solves MB + s·q·(P − entry) = q·P·mmr; the guides' MB + s·q·(P − entry) = q·entry·mmr
    assert margin + s * qty * (r.exchange - entry) == pytest.approx(qty * r.exchange * 0.005, rel=1e-9)
    assert margin + s * qty * (r.guide - entry) == pytest.approx(qty * entry * 0.005, rel=1e-9)
    assert calc.liquidation_price(side, entry, qty, margin, mmr=0.005) == r.exchange
    assert calc.liquidation_price(side, entry, qty, margin, mmr=0.005, mm_basis="entry") == r.guide


def test_liquidation_with_binance_tiers_changes_tier(shared_data):
    tiers = load_tiers(shared_data / "binance" / "leverage_tiers.json", "BTC")
    # the file's first BTC tiers: [0, 300k) at 0.4% cum 0, [300k, 800k) at 0.5% cum 300
    assert tiers[0].tolist() == [0.0, 300_000.0, 0.004, 0.0] and tiers[1].tolist() == [300_000.0, 800_000.0,
                                                                                          0.005, 300.0]
    r = calc.liquidation("long", 30_000, 10, 30_000, tiers=tiers)
    assert r.maintenance_margin == 1_200.0  # 300k at 0.5% − 300
    assert r.guide == 27_120.0              # 30,000 + (1,200 − 30,000)/10
    # the exchange's rule: at ~27,100 the notional (~271k) is in the first tier: P = (MB − q·entry)/(q·0.004 − q)
    assert r.exchange == pytest.approx((30_000 - 300_000) / (10 * 0.004 - 10), rel=1e-12)
    m = calc.margin(30_000, 10, 10, tiers=tiers)
    assert (m.position_value, m.initial_margin, m.maintenance_margin, m.mmr, m.cum) == (
        300_000.0, 30_000.0, 1_200.0, 0.005, 300.0)


def test_risk_ratio_worked_numbers():
    # reverse carry: 1 BTC borrowed and sold at 30,000 + 10,000 collateral, 400 USDT interest:
    # R = (40,000 − 400)/30,000 / 1 = 132%; 110% at P = 39,600/1.1 = 36,000
    r = calc.risk_ratio(40_000, 0, 30_000, 0, 1, interest_quote=400)
    assert r.percent == pytest.approx(132.0, rel=1e-14) and r.band == "warning"
    assert r.liquidation_price == pytest.approx(36_000, rel=1e-14)
    assert r.liquidation_move == pytest.approx(0.2, rel=1e-12)
    assert (r.assets, r.liabilities) == (39_600.0, 30_000.0)
    # long on margin: 1.5 BTC against 30,000 USDT borrowed: R = 150% (may withdraw); 110% at 1.1·30,000/1.5
    r = calc.risk_ratio(0, 1.5, 30_000, 30_000, 0)
    assert r.percent == 150.0 and r.band == "may withdraw"
    assert r.liquidation_price == pytest.approx(22_000, rel=1e-14)
    # interest in base: R = 40,000/30,000 − 0.02 = 131.333…%; 110% at 40,000 / 1.12
    r = calc.risk_ratio(40_000, 0, 30_000, 0, 1, interest_base=0.02)
    assert r.percent == pytest.approx(131 + 1 / 3, rel=1e-13) and r.band == "warning"
    assert r.liquidation_price == pytest.approx(40_000 / 1.12, rel=1e-14)
    # between 110% and 130%: "danger"; at or below 110%: "liquidation" (the price then is where it recovers)
    r = calc.risk_ratio(36_000, 0, 30_000, 0, 1)
    assert r.percent == pytest.approx(120, rel=1e-14) and r.band == "danger" and "130%" in r.band_note
    assert r.liquidation_price == pytest.approx(36_000 / 1.1, rel=1e-14)
    r = calc.risk_ratio(31_500, 0, 30_000, 0, 1)
    assert r.percent == pytest.approx(105, rel=1e-14) and r.band == "liquidation"
    assert r.liquidation_price == pytest.approx(31_500 / 1.1, rel=1e-14) and "now" in r.note
    assert calc.risk_ratio(33_000, 0, 30_000, 0, 1).band == "liquidation"  # exactly 110%


def test_risk_ratio_without_a_liquidation_price():
    # a quote loan against quote collateral: 200% at every price
    r = calc.risk_ratio(20_000, 0, 30_000, 10_000, 0)
    assert r.percent == pytest.approx(200, rel=1e-14) and r.liquidation_price is None
    assert r.liquidation_move is None and "stays above 110% at every price" in r.note
    # quote loan, quote + base assets: R = 2 + P/10,000 > 110% for every P > 0 (P* = −9,000)
    r = calc.risk_ratio(20_000, 1, 30_000, 10_000, 0)
    assert r.percent == pytest.approx(500, rel=1e-13) and r.liquidation_price is None
    # a base loan against 1.1× its amount in base: 110% at every price
    r = calc.risk_ratio(0, 1.1, 30_000, 0, 1)
    assert r.liquidation_price is None and "110% at every price" in r.note and r.band == "liquidation"


def test_max_borrow_worked_numbers():
    r = calc.max_borrow(1_000, 3, borrowed=500, interest=10)  # (1,000 − 0 − 10)·2 − 500
    assert (r.equity, r.max_borrow, r.available) == (990.0, 1_480.0, 1_480.0)
    r = calc.max_borrow(5_000, 5, borrowed=12_000, interest=50, unreturned=200)  # 4,750·4 − 12,000
    assert (r.equity, r.max_borrow) == (4_750.0, 7_000.0)
    r = calc.max_borrow(1_000, 3, borrowed=2_500)
    assert (r.max_borrow, r.available) == (-500.0, 0.0)
    assert calc.max_borrow(10_000, 10).max_borrow == 90_000.0


def test_apr_worked_numbers():
    r = calc.apr(0.003)  # 0.3% over 3 days: 0.003/3·365/2 = 18.25% on capital, 0.003·365/3 = 36.5% on notional
    assert r.apr_capital == pytest.approx(0.1825, rel=1e-14) and r.apr_notional == pytest.approx(0.365, rel=1e-14)
    assert r.direction == "carry"
    r = calc.apr(-0.0015)
    assert r.apr_capital == pytest.approx(0.09125, rel=1e-14)
    assert r.apr_notional == pytest.approx(-0.1825, rel=1e-14) and r.direction == "reverse"
    r = calc.apr(0)
    assert (r.apr_capital, r.apr_notional, r.direction) == (0.0, 0.0, "none")


# ---------------------------------------------------------------------------------------------------------- CLI
CLI_CASES = {
    "size": (["size", "--capital", "1000", "--leverage", "9", "--price", "30000"],
             {"spot_notional": 900.0, "perp_margin": 100.0, "direction": "carry"}, ["900", "100", "0.03"]),
    "size-reverse": (["size", "--capital", "1000", "--leverage", "2", "--reverse", "--spot-leverage", "3"],
                     {"spot_notional": 1200.0, "perp_margin": 600.0, "direction": "reverse"},
                     ["1,200", "600", "400", "1.3333"]),
    "margin": (["margin", "--price", "30000", "--qty", "0.1", "--leverage", "10", "--mmr", "0.005"],
               {"position_value": 3000.0, "initial_margin": 300.0, "maintenance_margin": 15.0},
               ["3,000", "300", "15"]),
    "liquidation": (["liquidation", "--side", "long", "--entry", "30000", "--qty", "0.1", "--margin", "300"],
                    {"guide": 27_150.0, "rule": "exchange"}, ["27,150", "27,135.678"]),
    "liquidation-guide": (["liquidation", "--side", "short", "--entry", "30000", "--qty", "0.1", "--margin", "300",
                           "--rule", "guide"], {"liquidation_price": 32_850.0, "guide": 32_850.0},
                          ["32,850", "32,835.821"]),
    "risk-ratio": (["risk-ratio", "--quote-assets", "40000", "--base-assets", "0", "--price", "30000",
                    "--borrowed-quote", "0", "--borrowed-base", "1", "--interest-quote", "400"],
                   {"band": "warning"}, ["132.0000%", "warning", "36,000"]),
    "risk-ratio-none": (["risk-ratio", "--quote-assets", "20000", "--base-assets", "0", "--price", "30000",
                         "--borrowed-quote", "10000", "--borrowed-base", "0"],
                        {"liquidation_price": None}, ["200.0000%", "none", "every price"]),
    "max-borrow": (["max-borrow", "--net-transfer", "1000", "--max-leverage", "3", "--borrowed", "500",
                    "--interest", "10"], {"max_borrow": 1480.0}, ["1,480"]),
    "apr": (["apr", "--funding-3d", "-0.0015"], {"direction": "reverse"}, ["9.1250%", "-18.2500%", "reverse"]),
}
RESULT_TYPES = {"size": calc.Sizing, "size-reverse": calc.Sizing, "margin": calc.Margin,
                "liquidation": calc.Liquidation, "liquidation-guide": calc.Liquidation,
                "risk-ratio": calc.RiskRatio, "risk-ratio-none": calc.RiskRatio, "max-borrow": calc.MaxBorrow,
                "apr": calc.FundingApr}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_table_and_json(case, capsys):
    args, expect, shown = CLI_CASES[case]
    assert main(["calc", *args]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    for text in shown:
        assert text in out.out, (text, out.out)
    assert main(["calc", *args, "--json"]) == 0
    out = capsys.readouterr()
    assert out.err == "" and out.out.count("\n") == 1
    data = json.loads(out.out)
    assert list(data) == [f.name for f in dataclasses.fields(RESULT_TYPES[case])]
    for key, value in expect.items():
        assert data[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key
    for key, value in data.items():  # numbers stay numbers
        assert value is None or isinstance(value, int | float | str), key
        if isinstance(value, str):
            assert key in ("direction", "side", "rule", "band", "band_note", "note"), key


def test_cli_help(capsys):
    for sub in ([], ["size"], ["margin"], ["liquidation"], ["risk-ratio"], ["max-borrow"], ["apr"]):
        assert main(["calc", *sub, "--help"]) == 0
        assert "Usage" in capsys.readouterr().out


def test_cli_liquidation_json_numbers(capsys):
    for side, entry, qty, margin, guides, exchange in DESIGN_TABLE:
        assert main(["calc", "liquidation", "--side", side, "--entry", str(entry), "--qty", repr(qty),
                     "--margin", str(margin), "--mmr", "0.005", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["guide"] == pytest.approx(guides, rel=1e-12)
        assert data["exchange"] == pytest.approx(exchange, rel=1e-12)


def test_cli_with_tiers_file(shared_data, capsys):
    tiers = str(shared_data / "binance" / "leverage_tiers.json")
    assert main(["calc", "liquidation", "--side", "long", "--entry", "30000", "--qty", "10", "--margin", "30000",
                 "--tiers", tiers, "--symbol", "BTC/USDT:USDT", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["guide"] == 27_120.0 and data["mmr"] == 0.005 and data["cum"] == 300.0
    assert main(["calc", "margin", "--price", "30000", "--qty", "10", "--leverage", "10", "--tiers", tiers,
                 "--symbol", "BTC", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["maintenance_margin"] == 1_200.0


LIQ = ["liquidation", "--side", "long", "--entry", "30000", "--qty", "0.1", "--margin", "300"]
MARGIN = ["margin", "--price", "30000", "--qty", "0.1", "--leverage", "10"]
RISK = ["risk-ratio", "--quote-assets", "40000", "--base-assets", "0", "--price", "30000", "--borrowed-quote",
        "0", "--borrowed-base", "1"]
BORROW = ["max-borrow", "--net-transfer", "1000", "--max-leverage", "3"]
SIZE = ["size", "--capital", "1000", "--leverage", "2"]


def _with(base: list[str], opt: str, value: str) -> list[str]:
    args = list(base)
    if opt in args:
        args[args.index(opt) + 1] = value
    else:
        args += [opt, value]
    return args


BAD = [  # (arguments, texts the one error line must hold)
    (_with(SIZE, "--capital", "-5"), ["--capital", "> 0"]),
    (_with(SIZE, "--capital", "0"), ["--capital", "> 0"]),
    (_with(SIZE, "--capital", "nan"), ["--capital", "finite"]),
    (_with(SIZE, "--capital", "inf"), ["--capital", "finite"]),
    (_with(SIZE, "--leverage", "0"), ["--leverage", "> 0 and ≤ 125"]),
    (_with(SIZE, "--leverage", "-2"), ["--leverage", "> 0 and ≤ 125"]),
    (_with(SIZE, "--leverage", "126"), ["--leverage", "≤ 125"]),
    (_with(SIZE, "--price", "0"), ["--price", "> 0"]),
    ([*SIZE, "--reverse"], ["--spot-leverage", "(0, 10)"]),
    ([*SIZE, "--spot-leverage", "3"], ["--spot-leverage", "--reverse"]),
    ([*SIZE, "--reverse", "--spot-leverage", "10"], ["--spot-leverage", "> 0 and < 10", "1.10"]),
    ([*SIZE, "--reverse", "--spot-leverage", "0"], ["--spot-leverage", "> 0 and < 10"]),
    ([*SIZE, "--reverse", "--spot-leverage", "-1"], ["--spot-leverage", "> 0 and < 10"]),
    ([*MARGIN, "--mmr", "1"], ["--mmr", "≥ 0 and < 1"]),
    ([*MARGIN, "--mmr", "-0.01"], ["--mmr", "≥ 0 and < 1"]),
    ([*MARGIN, "--mmr", "nan"], ["--mmr", "finite"]),
    (_with(MARGIN, "--leverage", "0"), ["--leverage", "> 0"]),
    (_with(MARGIN, "--leverage", "150"), ["--leverage", "≤ 125"]),
    ([*_with(MARGIN, "--leverage", "120"), "--mmr", "0.01"], ["--leverage", "initial margin", "maintenance",
                                                              "below 100"]),
    (_with(MARGIN, "--qty", "-0.1"), ["--qty", "> 0"]),
    (_with(MARGIN, "--price", "inf"), ["--price", "finite"]),
    ([*MARGIN, "--tiers", "no/such/tiers.json", "--symbol", "BTC"], ["tiers.json", "not found"]),
    ([*MARGIN, "--symbol", "BTC"], ["--symbol", "--tiers"]),
    ([*MARGIN, "--tiers", "x.json"], ["--tiers", "--symbol"]),
    ([*MARGIN, "--tiers", "x.json", "--symbol", "BTC", "--mmr", "0.01"], ["--mmr", "--tiers", "not both"]),
    (_with(LIQ, "--side", "lnog"), ["--side", "'long' or 'short'", "did you mean 'long'"]),
    ([*LIQ, "--rule", "guides"], ["--rule", "'exchange' or 'guide'", "did you mean 'guide'"]),
    (_with(LIQ, "--margin", "0"), ["--margin", "> 0"]),
    (_with(LIQ, "--margin", "-300"), ["--margin", "> 0"]),
    (_with(LIQ, "--margin", "15"), ["--margin", "maintenance margin at entry 15"]),
    (_with(LIQ, "--margin", "10"), ["--margin", "maintenance margin at entry 15"]),
    (_with(LIQ, "--entry", "nan"), ["--entry", "finite"]),
    (_with(LIQ, "--qty", "0"), ["--qty", "> 0"]),
    ([*LIQ, "--mmr", "1.5"], ["--mmr", "< 1"]),
    (_with(RISK, "--price", "0"), ["--price", "> 0"]),
    (_with(RISK, "--quote-assets", "-1"), ["--quote-assets", "≥ 0"]),
    (_with(RISK, "--borrowed-base", "0"), ["--borrowed-quote", "--borrowed-base", "> 0"]),
    ([*RISK, "--interest-base", "inf"], ["--interest-base", "finite"]),
    ([*RISK, "--interest-quote", "-3"], ["--interest-quote", "≥ 0"]),
    (_with(BORROW, "--max-leverage", "1"), ["--max-leverage", "> 1 and ≤ 10"]),
    (_with(BORROW, "--max-leverage", "11"), ["--max-leverage", "> 1 and ≤ 10"]),
    (_with(BORROW, "--net-transfer", "-1"), ["--net-transfer", "≥ 0"]),
    ([*BORROW, "--borrowed", "nan"], ["--borrowed", "finite"]),
    ([*BORROW, "--unreturned", "-1"], ["--unreturned", "≥ 0"]),
    (["apr", "--funding-3d", "1"], ["--funding-3d", "> -1 and < 1", "0.003"]),
    (["apr", "--funding-3d", "-1"], ["--funding-3d", "> -1 and < 1"]),
    (["apr", "--funding-3d", "inf"], ["--funding-3d", "finite"]),
    (["apr", "--funding-3d", "nan"], ["--funding-3d", "finite"]),
    # finite inputs whose result overflows
    (["size", "--capital", "1e308", "--leverage", "125"], ["too large or too small", "spot_notional"]),
    (_with(_with(MARGIN, "--price", "1e300"), "--qty", "1e300"), ["too large or too small", "position value"]),
    (_with(_with(RISK, "--price", "1e-320"), "--borrowed-quote", "1"), ["too large or too small", "risk ratio"]),
    (["max-borrow", "--net-transfer", "1e308", "--max-leverage", "10"], ["too large or too small", "max_borrow"]),
    (["liquidation", "--side", "short", "--entry", "1e200", "--qty", "1e-200", "--margin", "1e300"],
     ["too large or too small"]),
]


@pytest.mark.parametrize(("args", "texts"), BAD, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD])
def test_cli_bad_input_is_one_error_line(args, texts, capsys):
    assert main(["calc", *args]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
    for text in texts:
        assert text in out.err, (text, out.err)


def _tiers_file(tmp_path, content: str):
    path = tmp_path / f"tiers{len(list(tmp_path.iterdir()))}.json"
    path.write_text(content)
    return str(path)


def test_cli_bad_tier_files(tmp_path, shared_data, capsys):
    real = str(shared_data / "binance" / "leverage_tiers.json")
    row = {"minNotional": 0, "maxNotional": None, "maintenanceMarginRate": 1.5}
    cases = [
        ([*MARGIN, "--tiers", real, "--symbol", "BTCX"], ["no tiers for 'BTCX'", "did you mean 'BTC/USDT:USDT'"]),
        ([*MARGIN, "--tiers", real, "--symbol", ""], ["symbol", "non-empty"]),
        ([*MARGIN, "--tiers", _tiers_file(tmp_path, "{not json"), "--symbol", "BTC"], ["cannot read"]),
        ([*MARGIN, "--tiers", str(tmp_path), "--symbol", "BTC"], ["not a regular file"]),
        ([*MARGIN, "--tiers", _tiers_file(tmp_path, "[1, 2]"), "--symbol", "BTC"], ["expected a JSON object"]),
        ([*LIQ, "--tiers", _tiers_file(tmp_path, json.dumps({"BTC/USDT:USDT": [row]})), "--symbol", "BTC"],
         ["maintenanceMarginRate must be in [0, 1)", ".json[BTC/USDT:USDT]"]),
        ([*LIQ, "--tiers", _tiers_file(tmp_path, json.dumps({"BTC/USDT:USDT": [{"maxNotional": 5}]})),
          "--symbol", "BTC"], ["tier 1 is malformed", "maintenanceMarginRate"]),
        ([*LIQ, "--tiers", _tiers_file(tmp_path, json.dumps({"BTC/USDT:USDT": []})), "--symbol", "BTC"],
         ["non-empty list of tiers"]),
        ([*LIQ, "--tiers", _tiers_file(tmp_path, json.dumps({"BTC/USDT:USDT": [
            {**row, "maintenanceMarginRate": True}]})), "--symbol", "BTC"], ["must be a number, got True"]),
    ]
    for args, texts in cases:
        assert main(["calc", *args]) == 2, args
        out = capsys.readouterr()
        assert out.out == "" and out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
        for text in texts:
            assert text in out.err, (text, out.err)


# ------------------------------------------------------------------------------------------------ Python API
@pytest.mark.parametrize(("call", "match"), [
    (lambda: calc.size(True, 2), "capital must be a finite number > 0; got True"),
    (lambda: calc.size(1000, np.bool_(True)), "leverage"),
    (lambda: calc.size(1000, "2"), "leverage"),
    (lambda: calc.size(1000, 2, reverse=1), "reverse must be True or False"),
    (lambda: calc.margin(30_000, 0.1, 10, mmr=False), "mmr"),
    (lambda: calc.liquidation("long", 30_000, 0.1, 300, mmr=0.005, tiers=flat_tiers(0.005)), "not both"),
    (lambda: calc.liquidation_price("long", 30_000, 0.1, 300, mm_basis="guide"), "the guides' mm_basis='entry'"),
    (lambda: calc.liquidation_price("long", 30_000, 0.1, 300, mm_basis="entyr"), "did you mean 'entry'"),
    (lambda: calc.risk_ratio(1, 1, 1, 0, 0), "nothing borrowed"),
    (lambda: calc.apr(None), "funding_3d"),
    (lambda: calc.liquidation("LONG", 30_000, 0.1, 300), "did you mean 'long'"),
    (lambda: calc.margin(30_000, 0.1, 10, tiers="tiers.json"), "load_tiers"),
    (lambda: calc.margin(30_000, 0.1, 10, tiers={"BTC/USDT:USDT": []}), "not a mapping"),
])
def test_python_api_refuses_bad_values(call, match):
    with pytest.raises(ConfigError, match=match):
        call()


def test_python_api_accepts_numpy_scalars():
    r = calc.liquidation("long", np.float64(30_000), np.float32(0.5), np.int64(1_500))
    assert r.guide == pytest.approx(27_150.0, rel=1e-9)
    assert calc.size(np.int64(1000), np.int32(9)).perp_margin == 100.0


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(margin=0), "margin must be a finite number > 0"),
    (dict(margin=-1), "margin must be a finite number > 0"),
    (dict(margin=math.nan), "margin must be a finite number > 0"),
    (dict(margin=math.inf), "margin must be a finite number > 0"),
    (dict(entry=math.nan), "entry must be a finite number > 0"),
    (dict(entry=math.inf), "entry must be a finite number > 0"),
    (dict(qty=math.nan), "qty must be a finite number > 0"),
    (dict(qty=True), "qty must be a finite number > 0"),
    (dict(margin=10), "above the maintenance margin at entry"),
    (dict(mmr=math.nan), r"mmr must be a finite number in \[0, 1\)"),
    (dict(mmr=1.0), r"mmr must be in \[0, 1\)"),
    (dict(mmr=-0.1), r"mmr must be in \[0, 1\)"),
    (dict(mmr=True), r"mmr must be a finite number in \[0, 1\)"),
    (dict(mmr=0.005, tiers=flat_tiers(0.005)), "not both"),
    (dict(tiers=np.array([0.0, np.inf, 0.005, 0.0])), r"shape \(n, 4\)"),
    (dict(tiers=np.zeros((0, 4))), r"shape \(n, 4\)"),
    (dict(tiers=np.array([[0.0, np.inf, 0.005]])), r"shape \(n, 4\)"),
    (dict(tiers=np.array([[0.0, np.inf, 1.2, 0.0]])), r"tier 1: mmr must be in \[0, 1\)"),
    (dict(tiers=np.array([[0.0, np.inf, np.nan, 0.0]])), r"tier 1: mmr must be in \[0, 1\)"),
    (dict(tiers=np.array([[0.0, np.inf, 0.005, np.nan]])), "tier 1: cum must be finite"),
    (dict(tiers=np.array([[0.0, 1e5, 0.004, 0.0], [1e5, 5e4, 0.005, 50.0]])), "tier 2: max_notional"),
    (dict(tiers=np.array([[0.0, 1e6, 0.005, 0.0], [0.0, 1e5, 0.004, 0.0]])), "sorted"),
    (dict(tiers=np.array([[-1.0, np.inf, 0.005, 0.0]])), "min_notional"),
    (dict(tiers=np.array([["0", "inf", "0.005", "0"]])), "numeric array"),
    (dict(tiers=np.array([[True, True, False, False]])), "numeric array"),
    (dict(tiers=[{"minNotional": 0, "maintenanceMarginRate": 1.0}]), r"maintenanceMarginRate must be in \[0, 1\)"),
    (dict(tiers=[{"maxNotional": 1e5}]), "malformed"),
    (dict(tiers=["x"]), "malformed"),
])
def test_engine_liquidation_price_refuses_bad_input(kwargs, match):
    args = dict(side="long", entry=30_000, qty=0.1, margin=300)
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        fa.liquidation_price(args.pop("side"), args.pop("entry"), args.pop("qty"), args.pop("margin"), **args)


def test_tier_tables_keep_their_behaviour():
    # a valid table and a list of ccxt rows give the same numbers as before the checks
    rows = [{"minNotional": 0, "maxNotional": 50_000, "maintenanceMarginRate": 0.004, "info": {"cum": 0}},
            {"minNotional": 50_000, "maxNotional": 250_000, "maintenanceMarginRate": 0.005},
            {"minNotional": 250_000, "maxNotional": None, "maintenanceMarginRate": 0.01}]
    table = tiers_from_ccxt(rows)
    assert table.tolist() == [[0, 50_000, 0.004, 0], [50_000, 250_000, 0.005, 50.0],
                              [250_000, math.inf, 0.01, 50 + 250_000 * 0.005]]
    assert check_tiers(table).tolist() == table.tolist()
    p = fa.liquidation_price("short", 30_000, 3, 20_000, tiers=rows)
    # the short's liquidation notional is ~110k: tier 2; MB + s·q·(P − entry) = q·P·mmr − cum
    assert 20_000 - 3 * (p - 30_000) == pytest.approx(3 * p * 0.005 - 50, rel=1e-12)
    assert check_tiers([[0, 10, 0.01, 0], [10, math.inf, 0.02, 0.1]]).dtype == np.float64
    with pytest.raises(ConfigError, match=r"mmr must be in \[0, 1\)"):
        flat_tiers(1)
    with pytest.raises(ConfigError, match="mmr"):
        flat_tiers(True)
    with pytest.raises(DataError, match="tier 2: maintenanceMarginRate"):
        tiers_from_ccxt([rows[0], {**rows[1], "maintenanceMarginRate": -0.1}])
    with pytest.raises(ConfigError, match="numeric array"):
        check_tiers([[0, 1], [2]])
