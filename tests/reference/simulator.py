"""Reference simulator of one fundarb column — slow, obvious, per bar, pure Python.

Written from two documents only, so that it shares no mistake with the fast kernels:

* ``../shared/DESIGN.md`` (cited below as "DESIGN §n"), the simulation contract;
* ``docs/engine.md`` (cited as "engine.md: <section>"), the rules that resolve DESIGN's open choices.

Plain floats and lists, the ``math`` module and nothing else in the arithmetic. One function per step
of the bar, in DESIGN §2's order: funding, execution, liquidation, borrow, mark.

Points where the documents were ambiguous and the reading chosen here (also listed in the report):

* A NaN close on a bar whose open is known is replaced by the last known *price*, i.e. that bar's open
  (DESIGN §1 "marks it at the last known prices"); on a gap bar it is the last known close. A NaN
  high/low is replaced by the bar's (effective) close (engine.md: Liquidation).
* A NaN ``mark_open`` on a gap bar: funding settles at the last known mark (engine.md: Gaps).
* When a trade leaves the perp flat (``b' = 0``), engine.md moves ``MB`` to cash *before* the costs and
  then takes the perp costs "from MB"; the perp costs are taken from MB and whatever is left (possibly
  negative) is swept to cash again, so a flat column always has ``MB = 0``. Equity is the same either way.
* The lock after a liquidation at bar ``t_liq`` is released by ``target[t] != D`` at any bar
  ``t > t_liq`` (gap bars included: "at some bar").
* Tiers: ``MM(n)`` uses the last tier whose ``min_notional <= n`` (first tier below the table). The
  liquidation price takes the first tier whose range holds ``|b|·P``; if none does (a table whose
  ``cum`` is not continuous), the tier of the adverse notional is used.
* A rebalance that is due but re-sizes to exactly the same quantities trades nothing and counts
  nothing, but restarts the ``rebalance_every`` clock (it is a sizing).
* ``n_trades`` and ``n_liquidations`` are returned as totals (ints). ``events[*]["cost"]`` is
  fee + spread + slippage for a trade, everything a liquidation books as ``liquidation_fees`` (the fee,
  plus the forfeited margin under ``liquidation_loss="margin"``); the price of the leg a liquidation did
  not touch is NaN.

Margin management and the other rules of DESIGN §5 as rewritten for issue 8:

* ``rebalance_at = x`` compares the cushion ``C = MB + b·(M − entry) − MM(|b|·M)`` at the effective
  ``mark_close[t−1]`` with ``(1 − x)·C0``, literally, whatever the sign of ``C0``. ``None`` or ``inf``
  means off (``inf`` kept for callers of the withdrawn margin-ratio trigger); anything else must lie in
  ``(0, 1)``.
* ``C0`` is retaken at every sizing of the perp: entry, flip, rebalance, re-entry. A due rebalance that
  lands on exactly the same quantities (a sizing without a trade, no wallet transfer) also retakes
  ``C0``, from the unchanged wallets at that bar's ``mark_open``, besides restarting the
  ``rebalance_every`` clock.
* ``spot_rebalance_level = y``: ``cash / (|a|·spot_close[t−1])`` for a reverse carry (``a < 0``),
  taken after that bar's borrow interest; ``None`` or ``inf`` = off; otherwise ``y`` must exceed
  ``spot_liquidation_level``.
* Cost-reserved sizing: ``q'`` is the *largest* fixed point of ``q' = sizing(E_open − cost(q'))`` in
  ``[0, sizing(E_open)]`` (the one a descending iteration from ``sizing(E_open)`` reaches when it
  converges; it is the only one unless a *reducing* trade's marginal cost rate times the sizing factor
  exceeds 1, which takes an absurd participation slippage). It is solved by bisection, between the
  kinks of ``cost`` (where a leg's traded quantity changes sign), to adjacent floats. With zero costs
  it is ``sizing(E_open)`` exactly. Sizing then leaves the spot wallet at the perp leg's costs (zero
  when only the spot leg costs): engine.md moves ``MB = N/L`` first and takes the perp costs from it.
* ``after_liquidation="reenter"``: the liquidation arms a re-entry of its direction ``D``; the next
  non-gap bar's execution disarms it. If that bar's target is ``D``, a full pair is sized from
  ``E_open`` (cost-reserved, netted against whatever leg is left, also when both legs were liquidated)
  and logged as ``reentry`` (logged ``exit`` if ``E ≤ 0`` leaves it flat); otherwise the bar trades to
  its target normally.
* ``liquidation_loss="margin"``: after the fill and the fee, a positive ``MB`` is booked entirely as
  ``liquidation_fees`` (a negative one is the insurance fund's, as with ``"fee"``). It does not apply
  to the spot-margin liquidation.
* Gaps per leg: the perp's liquidation check runs whenever ``mark_open`` exists, the spot check whenever
  ``spot_open`` exists; execution needs all three opens. Each leg's "last known price" is updated
  from its own open when that exists, so a NaN close on a bar where only the *other* leg is missing is
  replaced by the leg's own open.
* Warnings (``out["warnings"]``, a list of dicts): ``{"kind": "liquidated_without_margin_management",
  "count", "first_bar"}`` when a run with ``rebalance_at``, ``spot_rebalance_level`` and
  ``rebalance_every`` all off liquidates; ``{"kind": "target_unfilled_after_liquidation",
  "liquidation_bar", "direction", "unfilled_bars"}`` when, with ``"close"``, the lock of the last
  liquidation is never released (the target stayed ``D`` at every later bar) and at least one bar
  followed it; ``unfilled_bars`` counts the bars after the liquidation bar.
"""

from __future__ import annotations

import math

INF = float("inf")
NAN = float("nan")

# engine.md: Parameters (defaults: Binance)
DEFAULT_PARAMS: dict = {
    "capital": 10_000.0,
    "leverage": 1.0,
    "spot_leverage": 3.0,
    "spot_fee": 0.001,
    "perp_fee": 0.0005,
    "half_spread_bps": 0.0,
    "slippage_bps": 0.0,
    "slippage_k": 0.0,
    "borrow_rate": 0.0000042,
    "mmr": 0.005,
    "liquidation_fee": 0.005,
    "rebalance_at": None,  # off
    "spot_rebalance_level": None,  # off
    "rebalance_every": 0,  # off
    "after_liquidation": "close",  # or "hold", "reenter"
    "liquidation_loss": "fee",  # or "margin"
    "spot_liquidation_level": 1.10,
    "tiers": None,
}


def _isnan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (x != x)


def _finite(x) -> bool:
    return not _isnan(x) and math.isfinite(float(x))


# --------------------------------------------------------------------------------------------------
# Maintenance margin tiers (DESIGN §5, engine.md: Liquidation)
# --------------------------------------------------------------------------------------------------


def _normalise_tiers(tiers, mmr):
    """List of (min_notional, max_notional, mmr, cum) floats; flat mmr with cum 0 when no tiers."""
    if tiers is None or len(tiers) == 0:
        return [(0.0, INF, float(mmr), 0.0)]
    out = []
    for lo, hi, rate, cum in tiers:
        out.append((float(lo), float(hi), float(rate), float(cum)))
    return out


def _tier_index(tiers, notional) -> int:
    """Tier whose [min_notional, max_notional) holds `notional`; last tier for anything above."""
    index = 0
    for k in range(len(tiers)):
        if notional >= tiers[k][0]:
            index = k
    return index


def maintenance_margin(notional, tiers) -> float:
    """MM(n) = n·mmr − cum with (mmr, cum) of the tier holding n (engine.md: Liquidation)."""
    _, _, rate, cum = tiers[_tier_index(tiers, notional)]
    return notional * rate - cum


def _perp_liquidation_price(b, entry, margin_balance, tiers, fallback_notional) -> float:
    """P = (MB + cum − b·entry) / (|b|·mmr − b), solved per tier, taking the tier whose range holds
    |b|·P (engine.md: Liquidation; DESIGN §5). `b` is the signed perp quantity."""
    for k in range(len(tiers)):
        _, _, rate, cum = tiers[k]
        denominator = abs(b) * rate - b
        if denominator == 0.0:
            continue
        price = (margin_balance + cum - b * entry) / denominator
        if _tier_index(tiers, abs(b) * price) == k:
            return price
    # No tier is self-consistent (discontinuous cum): use the tier of the adverse notional.
    _, _, rate, cum = tiers[_tier_index(tiers, fallback_notional)]
    return (margin_balance + cum - b * entry) / (abs(b) * rate - b)


def liquidation_price(side, entry, qty, margin, *, mmr=None, tiers=None, mm_basis="mark") -> float:
    """Isolated-margin liquidation price of a perp position (DESIGN §5 table).

    side: "long" or "short"; entry: entry price; qty: base quantity (> 0); margin: margin balance MB.
    mm_basis="mark": the exchange's rule (maintenance margin on the notional at the liquidation price);
    mm_basis="entry": the traders' guides' rule (maintenance margin on the entry notional).
    """
    if side not in ("long", "short"):
        raise ValueError(f"side must be 'long' or 'short', not {side!r}")
    b = float(qty) if side == "long" else -float(qty)
    table = _normalise_tiers(tiers, DEFAULT_PARAMS["mmr"] if mmr is None else mmr)
    if mm_basis == "mark":
        return _perp_liquidation_price(b, float(entry), float(margin), table, abs(b) * entry)
    if mm_basis == "entry":
        # MB + b·(P − entry) = MM(|b|·entry)  =>  P = entry + (MM − MB) / b
        mm_at_entry = maintenance_margin(abs(b) * entry, table)
        return entry + (mm_at_entry - margin) / b
    raise ValueError(f"mm_basis must be 'mark' or 'entry', not {mm_basis!r}")


# --------------------------------------------------------------------------------------------------
# State of one column (engine.md: State) and its cumulative components (engine.md: Components)
# --------------------------------------------------------------------------------------------------


class _Column:
    def __init__(self, capital):
        self.a = 0.0  # signed spot quantity: +q carry, −q borrowed and sold (reverse)
        self.b = 0.0  # signed perp quantity: −q short (carry), +q long (reverse)
        self.entry = 0.0  # perp entry price
        self.cash = capital  # spot wallet cash (USDT)
        self.margin_balance = 0.0  # futures wallet MB (USDT)
        # the prices the legs are currently marked at (for the PnL components)
        self.spot_marked_at = NAN
        self.mark_marked_at = NAN
        # bar of the last sizing (entry, flip or rebalance) of the position, for rebalance_every
        self.sized_bar = -1
        # lock after a liquidation (engine.md: Execution, `lock`)
        self.lock_direction = 0
        self.lock_bar = -1
        # after_liquidation="reenter": the direction of a liquidation waiting for the next execution
        self.reentry_direction = 0
        # cushion C0 just after the last sizing of the perp (rebalance_at)
        self.cushion_at_sizing = NAN
        # at the close of the previous bar: cushion C (None: no perp) and spot margin level (None: no loan)
        self.prev_cushion = None
        self.prev_spot_level = None

    def direction(self) -> int:
        """d = sign(a) if a ≠ 0 else −sign(b) (engine.md: State)."""
        if self.a > 0:
            return 1
        if self.a < 0:
            return -1
        if self.b > 0:
            return -1
        if self.b < 0:
            return 1
        return 0

    def equity(self, spot_price, mark_price) -> float:
        """E = cash + a·S + MB + b·(M − entry) (engine.md: State)."""
        value = self.cash + self.margin_balance
        if self.a != 0.0:
            value += self.a * spot_price
        if self.b != 0.0:
            value += self.b * (mark_price - self.entry)
        return value


class _Components:
    def __init__(self):
        self.funding = 0.0
        self.spot_pnl = 0.0
        self.perp_pnl = 0.0
        self.fees = 0.0
        self.spread = 0.0
        self.slippage = 0.0
        self.borrow = 0.0
        self.liquidation_fees = 0.0
        self.insurance_fund_loss = 0.0
        self.n_trades = 0
        self.n_liquidations = 0
        self.first_liquidation_bar = -1


def _move_spot_mark(col, comps, new_price):
    """spot_pnl: a·ΔS over every price move of the spot leg (engine.md: Components)."""
    if col.a != 0.0:
        comps.spot_pnl += col.a * (new_price - col.spot_marked_at)
    col.spot_marked_at = new_price


def _move_perp_mark(col, comps, new_mark):
    """perp_pnl: b·ΔM over every mark move (engine.md: Components)."""
    if col.b != 0.0:
        comps.perp_pnl += col.b * (new_mark - col.mark_marked_at)
    col.mark_marked_at = new_mark


# --------------------------------------------------------------------------------------------------
# Step 1 — funding (DESIGN §2 (1), §4; engine.md: Bar t, 1)
# --------------------------------------------------------------------------------------------------


def _settle_funding(col, comps, rate, mark_price):
    """f = −b·mark·rate into the futures wallet, on the position held coming into the bar."""
    if _isnan(rate) or col.b == 0.0:
        return
    cash_flow = -col.b * mark_price * rate
    col.margin_balance += cash_flow
    comps.funding += cash_flow


# --------------------------------------------------------------------------------------------------
# Step 2 — execution at the open (DESIGN §2 (2), §3, §4, §5 Rebalancing; engine.md: Bar t, 2)
# --------------------------------------------------------------------------------------------------


def _update_lock(col, t, target_t):
    """The lock of direction D is released once target differs from D at some bar after the
    liquidation (engine.md: `lock`)."""
    if col.lock_direction != 0 and t > col.lock_bar and target_t != col.lock_direction:
        col.lock_direction = 0
        col.lock_bar = -1


def cushion(margin_balance, b, entry, mark, tiers) -> float:
    """C = MB + b·(M − entry) − MM(|b|·M): what the perp can still lose (DESIGN §5, Margin management)."""
    return margin_balance + b * (mark - entry) - maintenance_margin(abs(b) * mark, tiers)


def _rebalance_due(col, t, effective_target, p) -> bool:
    """engine.md: `rebalance` — d ≠ 0, both legs open, target == d, and at the close of bar t−1
    (a) C ≤ (1 − x)·C0, or (b) the spot margin level ≤ y, or (c) rebalance_every bars since the last
    sizing."""
    d = col.direction()
    if d == 0 or col.a == 0.0 or col.b == 0.0 or effective_target != d:
        return False
    x = p["rebalance_at"]
    if x is not None and col.prev_cushion is not None:
        if col.prev_cushion <= (1.0 - x) * col.cushion_at_sizing:
            return True
    y = p["spot_rebalance_level"]
    if y is not None and col.prev_spot_level is not None:
        if col.prev_spot_level <= y:
            return True
    every = int(p["rebalance_every"])
    if every > 0 and t - col.sized_bar >= every:
        return True
    return False


def _sizing_factor(direction, p) -> float:
    """N = factor·E: carry L/(L+1), reverse 1/(1/L + 1/Ls) (DESIGN §3)."""
    lev = float(p["leverage"])
    if direction == 1:
        return lev / (lev + 1.0)
    return 1.0 / (1.0 / lev + 1.0 / float(p["spot_leverage"]))


def _target_quantity(direction, equity, spot_open, p) -> float:
    """Sizing rule (DESIGN §3; engine.md): q = factor·E / spot_open, q = 0 if E ≤ 0."""
    if direction == 0 or equity <= 0.0:
        return 0.0
    return _sizing_factor(direction, p) * equity / spot_open


def _slippage_fraction(traded_qty, prev_volume, p) -> float:
    """slippage_bps·1e-4, or slippage_k·sqrt(|Δ| / volume[t−1]) when slippage_k > 0 and that volume
    is finite and > 0 (DESIGN §4; engine.md: Costs)."""
    k = float(p["slippage_k"])
    if k > 0.0 and _finite(prev_volume) and prev_volume > 0.0:
        return k * math.sqrt(abs(traded_qty) / prev_volume)
    return float(p["slippage_bps"]) * 1e-4


def _trade_costs(delta_a, delta_b, spot_open, perp_open, spot_volume_prev, perp_volume_prev, p) -> dict:
    """Fee, spread and slippage of each leg on its traded notional (DESIGN §4; engine.md: Costs)."""
    spot_notional = abs(delta_a) * spot_open
    perp_notional = abs(delta_b) * perp_open
    half_spread = float(p["half_spread_bps"]) * 1e-4
    return {
        "spot_fee": float(p["spot_fee"]) * spot_notional,
        "perp_fee": float(p["perp_fee"]) * perp_notional,
        "spot_spread": half_spread * spot_notional,
        "perp_spread": half_spread * perp_notional,
        "spot_slippage": _slippage_fraction(delta_a, spot_volume_prev, p) * spot_notional if delta_a != 0.0 else 0.0,
        "perp_slippage": _slippage_fraction(delta_b, perp_volume_prev, p) * perp_notional if delta_b != 0.0 else 0.0,
    }


def _solve_quantity(direction, equity_open, a, b, spot_open, total_cost, p) -> float:
    """q' = the largest fixed point of q' = sizing(E_open − cost(q')) in [0, sizing(E_open)].

    f(q) = q − sizing(E_open − cost(q)) is ≤ 0 at 0 and ≥ 0 at sizing(E_open). Between the kinks of
    cost (a leg's traded quantity changing sign) f is convex or increasing, so it crosses 0 at most
    once going up in each piece: take the highest piece that starts at f ≤ 0 and bisect it."""
    if direction == 0 or equity_open <= 0.0:
        return 0.0

    def f(q):
        return q - _target_quantity(direction, equity_open - total_cost(direction * q, -direction * q), spot_open, p)

    top = _target_quantity(direction, equity_open, spot_open, p)
    if f(top) <= 0.0:  # no cost at all at that size (f(top) is never < 0)
        return top
    points = sorted({0.0, top} | {x for x in (direction * a, -direction * b) if 0.0 < x < top})
    lo, hi = 0.0, top
    for i in range(len(points) - 2, -1, -1):
        if f(points[i]) <= 0.0:
            lo, hi = points[i], points[i + 1]
            break
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if f(mid) <= 0.0:
            lo = mid
        else:
            hi = mid
    return lo if abs(f(lo)) <= abs(f(hi)) else hi


def _event_kind(old_direction, new_direction) -> str:
    if old_direction == 0:
        return "entry"
    if new_direction == 0:
        return "exit"
    if new_direction != old_direction:
        return "flip"
    return "rebalance"


def _sizing_target(col, t, target_t, p):
    """(effective target, reentry, hold) of bar t: the lock of "close"/"hold", the armed re-entry of
    "reenter" (engine.md: `lock`)."""
    if p["after_liquidation"] == "reenter":
        armed = col.reentry_direction
        col.reentry_direction = 0  # this execution disarms it
        return int(target_t), armed != 0 and target_t == armed, False
    _update_lock(col, t, target_t)
    if col.lock_direction != 0 and target_t == col.lock_direction:
        if p["after_liquidation"] == "hold":
            return int(target_t), False, True  # the remaining leg is held unchanged, no trade
        return 0, False, False  # "close": the remaining leg (if any) is closed
    return int(target_t), False, False


def _execute(
    col, comps, events, t, target_t, spot_open, perp_open, mark_open, spot_volume_prev, perp_volume_prev, tiers, p
):
    """Decide the position after the open of bar t and trade to it."""
    effective_target, reentry, hold = _sizing_target(col, t, target_t, p)
    if hold:
        return
    d = col.direction()
    rebalance = not reentry and _rebalance_due(col, t, effective_target, p)
    if effective_target == d and not rebalance and not reentry:
        return  # no trade

    def total_cost(new_a, new_b):
        costs = _trade_costs(new_a - col.a, new_b - col.b, spot_open, perp_open, spot_volume_prev, perp_volume_prev, p)
        return sum(costs.values())

    # Sizing on the equity at the open net of this execution's own costs (engine.md: E_open, cost(q'))
    equity_open = col.equity(spot_open, mark_open)
    new_qty = _solve_quantity(effective_target, equity_open, col.a, col.b, spot_open, total_cost, p)
    new_a = effective_target * new_qty
    new_b = -effective_target * new_qty
    delta_a = new_a - col.a
    delta_b = new_b - col.b
    if delta_a == 0.0 and delta_b == 0.0:
        if rebalance:
            # re-sized to the very same quantities: a sizing without a trade (see module docstring)
            col.sized_bar = t
            col.cushion_at_sizing = cushion(col.margin_balance, col.b, col.entry, mark_open, tiers)
        return  # nothing to trade (e.g. flat and E ≤ 0)

    # Perp: realise at perp_open, then re-open at perp_open.
    # perp_pnl gets (b' − b)·(mark_open − perp_open) (engine.md: Components).
    if col.b != 0.0:
        col.margin_balance += col.b * (perp_open - col.entry)
    comps.perp_pnl += (new_b - col.b) * (mark_open - perp_open)
    col.b = new_b
    col.entry = perp_open if new_b != 0.0 else 0.0

    # Spot: buy/sell at spot_open.
    col.cash -= delta_a * spot_open
    col.a = new_a

    # Free wallet transfer: MB = N/L exactly, or MB back to cash when the perp is flat.
    if new_b != 0.0:
        target_margin = new_qty * spot_open / float(p["leverage"])
        transfer = target_margin - col.margin_balance
        col.margin_balance += transfer
        col.cash -= transfer
    else:
        col.cash += col.margin_balance
        col.margin_balance = 0.0

    # Costs on each leg's traded notional, after the transfer (engine.md: Costs).
    c = _trade_costs(delta_a, delta_b, spot_open, perp_open, spot_volume_prev, perp_volume_prev, p)
    col.cash -= c["spot_fee"] + c["spot_spread"] + c["spot_slippage"]  # spot-leg costs from cash
    col.margin_balance -= c["perp_fee"] + c["perp_spread"] + c["perp_slippage"]  # perp-leg costs from MB
    if new_b == 0.0:
        # A flat perp keeps no futures balance (see module docstring).
        col.cash += col.margin_balance
        col.margin_balance = 0.0
    comps.fees += c["spot_fee"] + c["perp_fee"]
    comps.spread += c["spot_spread"] + c["perp_spread"]
    comps.slippage += c["spot_slippage"] + c["perp_slippage"]

    comps.n_trades += 1
    col.sized_bar = t
    if new_b != 0.0:
        # C0: the cushion just after this sizing, after the transfer and the costs, at mark_open
        col.cushion_at_sizing = cushion(col.margin_balance, col.b, col.entry, mark_open, tiers)
    new_direction = col.direction()
    kind = "reentry" if reentry and new_direction == effective_target else _event_kind(d, new_direction)
    events.append(
        {
            "bar": t,
            "kind": kind,
            "spot_qty": col.a,
            "perp_qty": col.b,
            "spot_price": spot_open,
            "perp_price": perp_open,
            "cost": sum(c.values()),
        }
    )


# --------------------------------------------------------------------------------------------------
# Step 3 — liquidation (DESIGN §5; engine.md: Bar t, 3)
# --------------------------------------------------------------------------------------------------


def _start_lock(col, comps, t, direction, p):
    """Count the liquidation; lock its direction ("close", "hold") or arm a re-entry ("reenter")."""
    comps.n_liquidations += 1
    if comps.first_liquidation_bar < 0:
        comps.first_liquidation_bar = t
    if p["after_liquidation"] == "reenter":
        col.reentry_direction = direction
        return
    col.lock_direction = direction
    col.lock_bar = t


def _liquidate_perp(col, comps, events, t, mark_open, adverse_mark, tiers, p):
    """Isolated perp: liquidated when MB + b·(m − entry) ≤ MM(|b|·m) at the adverse mark extreme;
    fills at P or at the mark open when the bar opened beyond P; liquidation fee; negative balance
    to the insurance fund; MB to cash."""
    if col.b == 0.0:
        return
    b = col.b
    if col.margin_balance + b * (adverse_mark - col.entry) > maintenance_margin(abs(b) * adverse_mark, tiers):
        return
    direction = col.direction()
    price = _perp_liquidation_price(b, col.entry, col.margin_balance, tiers, abs(b) * adverse_mark)
    opened_beyond = (mark_open >= price) if b < 0 else (mark_open <= price)
    fill = mark_open if opened_beyond else price
    # perp_pnl: b·(F − mark) at a liquidation (engine.md: Components)
    comps.perp_pnl += b * (fill - col.mark_marked_at)
    fee = float(p["liquidation_fee"]) * abs(b) * fill
    col.margin_balance += b * (fill - col.entry) - fee
    comps.liquidation_fees += fee
    if col.margin_balance < 0.0:
        comps.insurance_fund_loss += -col.margin_balance
        col.margin_balance = 0.0
    elif p["liquidation_loss"] == "margin":
        # the rest of the isolated margin goes to the insurance fund, booked as liquidation_fees
        fee += col.margin_balance
        comps.liquidation_fees += col.margin_balance
        col.margin_balance = 0.0
    col.b = 0.0
    col.entry = 0.0
    col.cash += col.margin_balance
    col.margin_balance = 0.0
    _start_lock(col, comps, t, direction, p)
    events.append(
        {
            "bar": t,
            "kind": "liquidation_perp",
            "spot_qty": col.a,
            "perp_qty": col.b,
            "spot_price": NAN,
            "perp_price": fill,
            "cost": fee,
        }
    )


def _liquidate_spot(col, comps, events, t, spot_open, adverse_spot, p):
    """Spot margin of a reverse carry (a < 0): margin level cash / (|a|·s) at s = spot_high; at or
    below spot_liquidation_level the loan is force-repaid at R = cash / (level·|a|), or at the
    spot open when the bar opened at or beyond R, with the liquidation fee."""
    if col.a >= 0.0:
        return
    level = float(p["spot_liquidation_level"])
    borrowed = abs(col.a)
    if col.cash / (borrowed * adverse_spot) > level:
        return
    direction = col.direction()
    repay_price = col.cash / (level * borrowed)
    if spot_open >= repay_price:
        repay_price = spot_open
    # spot_pnl: a·ΔS to the forced-repay price (engine.md: Components)
    _move_spot_mark(col, comps, repay_price)
    fee = float(p["liquidation_fee"]) * borrowed * repay_price
    col.cash -= borrowed * repay_price + fee
    comps.liquidation_fees += fee
    if col.cash < 0.0:
        comps.insurance_fund_loss += -col.cash
        col.cash = 0.0
    col.a = 0.0
    _start_lock(col, comps, t, direction, p)
    events.append(
        {
            "bar": t,
            "kind": "liquidation_spot",
            "spot_qty": col.a,
            "perp_qty": col.b,
            "spot_price": repay_price,
            "perp_price": NAN,
            "cost": fee,
        }
    )


# --------------------------------------------------------------------------------------------------
# Step 4 — borrow (DESIGN §4; engine.md: Bar t, 4)
# --------------------------------------------------------------------------------------------------


def _accrue_borrow(col, comps, spot_close, rate, bar_hours, p):
    """cost = |a|·spot_close·rate·bar_hours, paid from cash (reverse carry only)."""
    if col.a >= 0.0:
        return
    hourly = float(p["borrow_rate"]) if _isnan(rate) else float(rate)
    cost = abs(col.a) * spot_close * hourly * bar_hours
    col.cash -= cost
    comps.borrow += cost


# --------------------------------------------------------------------------------------------------
# Step 5 — mark (engine.md: Bar t, 5)
# --------------------------------------------------------------------------------------------------


def _mark(col, comps, spot_close, mark_close, tiers):
    """Move both legs to the close and return equity; remember the cushion (rebalance_at) and the
    spot margin level (spot_rebalance_level) at this close for the next bar's triggers."""
    _move_spot_mark(col, comps, spot_close)
    _move_perp_mark(col, comps, mark_close)
    col.prev_cushion = cushion(col.margin_balance, col.b, col.entry, mark_close, tiers) if col.b != 0.0 else None
    col.prev_spot_level = col.cash / (abs(col.a) * spot_close) if col.a < 0.0 else None
    return col.equity(spot_close, mark_close)


# --------------------------------------------------------------------------------------------------
# The bar loop
# --------------------------------------------------------------------------------------------------


def _resolve_params(params) -> dict:
    p = dict(DEFAULT_PARAMS)
    for key, value in (params or {}).items():
        if key == "margin_mode":
            if value != "isolated":
                raise ValueError("the reference simulates one isolated-margin column only")
            continue
        if key not in DEFAULT_PARAMS:
            raise KeyError(f"unknown parameter {key!r}")
        p[key] = value
    if p["after_liquidation"] not in ("close", "hold", "reenter"):
        raise ValueError("after_liquidation must be 'close', 'hold' or 'reenter'")
    if p["liquidation_loss"] not in ("fee", "margin"):
        raise ValueError("liquidation_loss must be 'fee' or 'margin'")
    # None or inf: off (inf kept for callers of the withdrawn margin-ratio trigger)
    for key in ("rebalance_at", "spot_rebalance_level"):
        if p[key] is not None and math.isinf(float(p[key])):
            p[key] = None
        elif p[key] is not None:
            p[key] = float(p[key])
    if p["rebalance_at"] is not None and not 0.0 < p["rebalance_at"] < 1.0:
        raise ValueError("rebalance_at must be in (0, 1)")
    if p["spot_rebalance_level"] is not None and not p["spot_rebalance_level"] > float(p["spot_liquidation_level"]):
        raise ValueError("spot_rebalance_level must exceed spot_liquidation_level")
    if p["rebalance_every"] is None:
        p["rebalance_every"] = 0
    return p


def _warnings(col, comps, target, n_bars, p) -> list:
    """engine.md: Warnings a run adds (DESIGN §5)."""
    out = []
    managed = p["rebalance_at"] is not None or p["spot_rebalance_level"] is not None or int(p["rebalance_every"]) > 0
    if comps.n_liquidations > 0 and not managed:
        out.append(
            {
                "kind": "liquidated_without_margin_management",
                "count": comps.n_liquidations,
                "first_bar": comps.first_liquidation_bar,
            }
        )
    if (
        p["after_liquidation"] == "close"
        and col.lock_direction != 0
        and n_bars > 0
        and int(target[n_bars - 1]) == col.lock_direction
        and n_bars - 1 - col.lock_bar > 0
    ):
        out.append(
            {
                "kind": "target_unfilled_after_liquidation",
                "liquidation_bar": col.lock_bar,
                "direction": col.lock_direction,
                "unfilled_bars": n_bars - 1 - col.lock_bar,
            }
        )
    return out


def simulate(
    *,
    spot_open,
    spot_high,
    spot_low,
    spot_close,
    perp_open,
    mark_open,
    mark_high,
    mark_low,
    mark_close,
    funding,
    borrow_rate,
    spot_volume,
    perp_volume,
    target,
    bar_hours: float,
    params: dict,
) -> dict:
    """Simulate one column bar by bar. See the module docstring and docs/engine.md."""
    p = _resolve_params(params)
    tiers = _normalise_tiers(p["tiers"], p["mmr"])
    capital = float(p["capital"])
    n_bars = len(spot_open)
    for name, series in (
        ("spot_high", spot_high),
        ("spot_low", spot_low),
        ("spot_close", spot_close),
        ("perp_open", perp_open),
        ("mark_open", mark_open),
        ("mark_high", mark_high),
        ("mark_low", mark_low),
        ("mark_close", mark_close),
        ("funding", funding),
        ("borrow_rate", borrow_rate),
        ("spot_volume", spot_volume),
        ("perp_volume", perp_volume),
        ("target", target),
    ):
        if len(series) != n_bars:
            raise ValueError(f"{name} has length {len(series)}, expected {n_bars}")

    col = _Column(capital)
    comps = _Components()
    events: list = []
    out = {
        key: []
        for key in (
            "equity",
            "funding",
            "spot_pnl",
            "perp_pnl",
            "fees",
            "spread",
            "slippage",
            "borrow",
            "liquidation_fees",
            "insurance_fund_loss",
            "spot_qty",
            "perp_qty",
            "cash",
            "margin_balance",
        )
    }
    gap_bars: list = []

    last_spot = NAN  # last known spot price (engine.md: Gaps)
    last_mark = NAN  # last known mark price

    for t in range(n_bars):
        s_open = float(spot_open[t])
        p_open = float(perp_open[t])
        m_open = float(mark_open[t])
        gap = _isnan(s_open) or _isnan(p_open) or _isnan(m_open)
        if gap:
            gap_bars.append(t)

        # (1) funding, at the bar's mark open (last known mark on a bar without one)
        funding_mark = m_open if not _isnan(m_open) else last_mark
        _settle_funding(col, comps, float(funding[t]), funding_mark)

        # each leg moves from the previous close to its own open, when that exists
        if not _isnan(s_open):
            last_spot = s_open
            _move_spot_mark(col, comps, s_open)
        if not _isnan(m_open):
            last_mark = m_open
            _move_perp_mark(col, comps, m_open)

        if not gap:
            # (2) execution at the open
            spot_vol_prev = float(spot_volume[t - 1]) if t > 0 else NAN
            perp_vol_prev = float(perp_volume[t - 1]) if t > 0 else NAN
            _execute(
                col, comps, events, t, int(target[t]), s_open, p_open, m_open, spot_vol_prev, perp_vol_prev, tiers, p
            )
        elif p["after_liquidation"] != "reenter":
            # no execution on a gap bar; the lock still sees the target of this bar
            _update_lock(col, t, int(target[t]))

        # effective closes: NaN => last known price (this bar's open when it has one)
        s_close = float(spot_close[t])
        m_close = float(mark_close[t])
        s_close_eff = s_close if not _isnan(s_close) else last_spot
        m_close_eff = m_close if not _isnan(m_close) else last_mark

        # (3) liquidation: perp first (needs its mark open), then spot margin (needs the spot open)
        if not _isnan(m_open):
            adverse_mark = float(mark_high[t]) if col.b < 0.0 else float(mark_low[t])
            if _isnan(adverse_mark):
                adverse_mark = m_close_eff
            _liquidate_perp(col, comps, events, t, m_open, adverse_mark, tiers, p)
        if not _isnan(s_open):
            adverse_spot = float(spot_high[t])
            if _isnan(adverse_spot):
                adverse_spot = s_close_eff
            _liquidate_spot(col, comps, events, t, s_open, adverse_spot, p)

        # (4) borrow
        _accrue_borrow(col, comps, s_close_eff, borrow_rate[t], float(bar_hours), p)

        # (5) mark
        if not _isnan(s_close_eff):
            last_spot = s_close_eff
        if not _isnan(m_close_eff):
            last_mark = m_close_eff
        equity = _mark(col, comps, s_close_eff, m_close_eff, tiers)

        out["equity"].append(equity)
        out["funding"].append(comps.funding)
        out["spot_pnl"].append(comps.spot_pnl)
        out["perp_pnl"].append(comps.perp_pnl)
        out["fees"].append(comps.fees)
        out["spread"].append(comps.spread)
        out["slippage"].append(comps.slippage)
        out["borrow"].append(comps.borrow)
        out["liquidation_fees"].append(comps.liquidation_fees)
        out["insurance_fund_loss"].append(comps.insurance_fund_loss)
        out["spot_qty"].append(col.a)
        out["perp_qty"].append(col.b)
        out["cash"].append(col.cash)
        out["margin_balance"].append(col.margin_balance)

    out["n_trades"] = comps.n_trades
    out["n_liquidations"] = comps.n_liquidations
    out["events"] = events
    out["gap_bars"] = gap_bars
    out["warnings"] = _warnings(col, comps, target, n_bars, p)
    return out
