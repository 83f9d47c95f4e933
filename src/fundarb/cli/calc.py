"""``fundarb calc``: the traders' calculators (sizing, margin, liquidation, risk ratio, max borrow, bot APR).

Each subcommand prints a small table, or one JSON object with ``--json``; bad input raises ConfigError/DataError,
which :func:`fundarb.cli.main` turns into one ``error:`` line and exit code 2. The engine's tier code (numba) is
imported only by the commands that need it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from fundarb.cli.app import app

calc_app = typer.Typer(
    name="calc",
    help="The traders' calculators: position sizing, margins, liquidation prices, spot-margin risk ratio, "
         "maximum borrow and the funding bot's APR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(calc_app, name="calc")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
MmrOpt = Annotated[float | None, typer.Option(
    "--mmr", help="Flat maintenance margin rate in [0, 1) (default 0.005 when no --tiers).")]
TiersOpt = Annotated[str | None, typer.Option(
    "--tiers", help="Leverage tiers file in ccxt's fetch_leverage_tiers JSON format (needs --symbol).")]
SymbolOpt = Annotated[str | None, typer.Option("--symbol", help="Symbol in the tiers file: BTC or BTC/USDT:USDT.")]


def _run(compute: Callable[[], Any], rows: Callable[[Any], list[tuple[str, str]]], as_json: bool) -> None:
    from fundarb.calc import cli_option_names

    with cli_option_names():
        result = compute()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), allow_nan=False))
        return
    table = rows(result)
    width = max(len(k) for k, _ in table)
    for k, v in table:
        typer.echo(f"{k:<{width}}  {v}")


def _tiers(mmr: float | None, tiers: str | None, symbol: str | None) -> Any:
    """The tier table of ``--tiers``/``--symbol``, or None (flat ``--mmr``)."""
    from fundarb.errors import ConfigError

    if tiers is None:
        if symbol is not None:
            raise ConfigError("--symbol names a market in a --tiers file; give --tiers too (or drop --symbol)")
        return None
    if mmr is not None:
        raise ConfigError("give --mmr (a flat maintenance margin rate) or --tiers, not both")
    if symbol is None:
        raise ConfigError("--tiers needs --symbol (e.g. BTC or BTC/USDT:USDT)")
    from fundarb.engine.tiers import load_tiers

    return load_tiers(tiers, symbol)


def _money(v: float) -> str:
    return f"{v:,.8g}" if abs(v) < 1e15 else f"{v:.6g}"


def _pct(v: float) -> str:
    return f"{v:.4%}"


@calc_app.command("size")
def size_cmd(
    capital: Annotated[float, typer.Option("--capital", help="Equity E to deploy (> 0).")],
    leverage: Annotated[float, typer.Option("--leverage", help="Perp leverage L, in (0, 125].")],
    reverse: Annotated[bool, typer.Option("--reverse", help="Size a reverse carry (needs --spot-leverage).")] = False,
    spot_leverage: Annotated[float | None, typer.Option(
        "--spot-leverage", help="Spot margin leverage Ls of the reverse carry's loan, in (0, 10).")] = None,
    price: Annotated[float | None, typer.Option("--price", help="Price P: adds the base quantity.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Legs of a carry (N = E·L/(L+1)) or reverse carry (N = E/(1/L + 1/Ls)), DESIGN §3."""
    from fundarb import calc

    def rows(r: calc.Sizing) -> list[tuple[str, str]]:
        out = [("direction", r.direction), ("spot notional", _money(r.spot_notional)),
               ("perp notional", _money(r.perp_notional)), ("perp margin", _money(r.perp_margin))]
        if r.spot_collateral is not None and r.spot_margin_level is not None:
            out += [("spot collateral", _money(r.spot_collateral)),
                    ("spot margin level", f"{r.spot_margin_level:.4f}")]
        if r.qty is not None:
            out.append(("qty (each leg)", f"{r.qty:.10g}"))
        return out

    _run(lambda: calc.size(capital, leverage, reverse=reverse, spot_leverage=spot_leverage, price=price), rows,
         as_json)


@calc_app.command("margin")
def margin_cmd(
    price: Annotated[float, typer.Option("--price", help="Price P (> 0).")],
    qty: Annotated[float, typer.Option("--qty", help="Base quantity Q (> 0).")],
    leverage: Annotated[float, typer.Option("--leverage", help="Leverage L (> 0; ≤ 125 with a flat --mmr).")],
    mmr: MmrOpt = None,
    tiers: TiersOpt = None,
    symbol: SymbolOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Position value P·Q, initial margin P·Q/L and maintenance margin P·Q·mmr − cum."""
    from fundarb import calc

    def rows(r: calc.Margin) -> list[tuple[str, str]]:
        return [("position value", _money(r.position_value)), ("initial margin", _money(r.initial_margin)),
                ("maintenance margin", _money(r.maintenance_margin)), ("mmr", _pct(r.mmr)), ("cum", _money(r.cum))]

    def compute() -> calc.Margin:
        return calc.margin(price, qty, leverage, mmr=mmr, tiers=_tiers(mmr, tiers, symbol))

    _run(compute, rows, as_json)


@calc_app.command("liquidation")
def liquidation_cmd(
    side: Annotated[str, typer.Option("--side", help="long | short.")],
    entry: Annotated[float, typer.Option("--entry", help="Entry price (> 0).")],
    qty: Annotated[float, typer.Option("--qty", help="Base quantity (> 0).")],
    margin: Annotated[float, typer.Option("--margin", help="Isolated margin balance (> maintenance margin).")],
    mmr: MmrOpt = None,
    tiers: TiersOpt = None,
    symbol: SymbolOpt = None,
    rule: Annotated[str, typer.Option(
        "--rule", help="exchange (MM on the notional at the liquidation price; the engine's) | guide (MM on the "
                       "entry notional, the traders' guides).")] = "exchange",
    as_json: JsonOpt = False,
) -> None:
    """Liquidation price of an isolated perp position by the exchange's rule and the guides' rule (DESIGN §5)."""
    from fundarb import calc

    def rows(r: calc.Liquidation) -> list[tuple[str, str]]:
        return [("side", r.side), ("notional", _money(r.notional)), ("leverage", f"{r.leverage:.4g}x"),
                ("maintenance margin", _money(r.maintenance_margin)), ("mmr", _pct(r.mmr)),
                (f"liquidation price ({r.rule})", _money(r.liquidation_price)), ("distance", f"{r.distance:+.4%}"),
                ("exchange rule", _money(r.exchange)), ("guide rule", _money(r.guide))]

    def compute() -> calc.Liquidation:
        return calc.liquidation(side, entry, qty, margin, mmr=mmr, tiers=_tiers(mmr, tiers, symbol), rule=rule)

    _run(compute, rows, as_json)


@calc_app.command("risk-ratio")
def risk_ratio_cmd(
    quote_assets: Annotated[float, typer.Option("--quote-assets", help="A: quote held (≥ 0).")],
    base_assets: Annotated[float, typer.Option("--base-assets", help="B: base held (≥ 0).")],
    price: Annotated[float, typer.Option("--price", help="P: base price in quote (> 0).")],
    borrowed_quote: Annotated[float, typer.Option("--borrowed-quote", help="X: quote borrowed (≥ 0).")],
    borrowed_base: Annotated[float, typer.Option("--borrowed-base", help="Y: base borrowed (≥ 0).")],
    interest_quote: Annotated[float, typer.Option("--interest-quote", help="i: quote interest owed.")] = 0.0,
    interest_base: Annotated[float, typer.Option("--interest-base", help="j: base interest owed.")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Spot-margin risk ratio [(A − i)/P + (B − j)] ÷ [X/P + Y], its band and the price where it reaches 110%."""
    from fundarb import calc

    def rows(r: calc.RiskRatio) -> list[tuple[str, str]]:
        liq = "none" if r.liquidation_price is None else \
            f"{_money(r.liquidation_price)} ({r.liquidation_move:+.2%})"
        return [("risk ratio", f"{r.percent:.4f}%"), ("band", f"{r.band} ({r.band_note})"),
                ("assets (quote)", _money(r.assets)), ("liabilities (quote)", _money(r.liabilities)),
                ("price at 110%", liq), ("note", r.note)]

    _run(lambda: calc.risk_ratio(quote_assets, base_assets, price, borrowed_quote, borrowed_base,
                                 interest_quote=interest_quote, interest_base=interest_base), rows, as_json)


@calc_app.command("max-borrow")
def max_borrow_cmd(
    net_transfer: Annotated[float, typer.Option("--net-transfer", help="T: net amount transferred in (≥ 0).")],
    max_leverage: Annotated[float, typer.Option("--max-leverage", help="L: the account's maximum leverage, "
                                                                       "in (1, 10].")],
    borrowed: Annotated[float, typer.Option("--borrowed", help="b: already borrowed (≥ 0).")] = 0.0,
    interest: Annotated[float, typer.Option("--interest", help="i: unpaid interest (≥ 0).")] = 0.0,
    unreturned: Annotated[float, typer.Option("--unreturned", help="u: unreturned amount (≥ 0).")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Maximum further borrow of a margin account: (T − u − i)·(L − 1) − b."""
    from fundarb import calc

    def rows(r: calc.MaxBorrow) -> list[tuple[str, str]]:
        out = [("equity (T − u − i)", _money(r.equity)), ("max borrow", _money(r.max_borrow)),
               ("available", _money(r.available))]
        if r.max_borrow < 0:
            out.append(("note", f"over-borrowed by {_money(-r.max_borrow)}: repay or transfer in before borrowing"))
        return out

    _run(lambda: calc.max_borrow(net_transfer, max_leverage, borrowed=borrowed, interest=interest,
                                 unreturned=unreturned), rows, as_json)


@calc_app.command("apr")
def apr_cmd(
    funding_3d: Annotated[float, typer.Option(
        "--funding-3d", help="F: sum of the last 3 days' funding rates as a fraction (0.003 = 0.3%).")],
    as_json: JsonOpt = False,
) -> None:
    """The funding bot's quoted APR on capital |F|/3·365/2, the APR on notional F·365/3 and its direction."""
    from fundarb import calc

    def rows(r: calc.FundingApr) -> list[tuple[str, str]]:
        return [("APR on capital (bot's quote)", _pct(r.apr_capital)), ("APR on notional", _pct(r.apr_notional)),
                ("direction", r.direction)]

    _run(lambda: calc.apr(funding_3d), rows, as_json)
