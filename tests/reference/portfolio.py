"""Reference simulator of one fundarb *account* over several symbols — slow, obvious, per bar.

Written from ``../shared/DESIGN.md`` and ``docs/engine.md`` ("Accounts: independent columns and
portfolios") only, on top of the single-column reference (``simulator.py``, whose small helpers — tiers,
costs, the cost-reserved sizing, the lock — it reuses; the bar loop, the wallets and the account-level
rules are written here). With one symbol of weight 1 it is the single-column simulator, in isolated and in
cross margin (tested).

The account: one spot wallet ``cash``; per symbol ``i`` its legs ``a_i``, ``b_i``, ``entry_i`` and its share
``MB_i`` of the futures wallet (isolated: the perp's own margin; cross: its share of the one wallet,
``MB = Σ MB_i``). Bar ``t``, in DESIGN §2's order: (1) funding of every perp into its share; (2) the
account's equity ``E`` at the open, once, then every symbol whose opens all exist trades to its target,
sized from ``E_i = weight_i[t]·E`` net of its own trade's costs; (3) liquidation: isolated perps one by one,
or the cross account on the linear ``λ`` path, then the account's spot margin on its ``λ`` path; (4) borrow;
(5) mark.

Readings chosen here (beyond those of ``simulator.py``, which all carry over per symbol):

* ``weights`` ``None`` means ``1/n`` for every symbol at every bar. A symbol whose direction is unchanged
  is re-sized (kind ``resize``) when ``weight_i[t]`` differs from the weight of its last sizing (exact
  comparison); when a rebalance trigger is due at the same bar the trade is logged ``rebalance``. A resize
  is a sizing: it restarts ``rebalance_every`` and retakes ``C0``.
* Cross ``C0``: the account cushion ``MB + Σ b_i·(m_i − entry_i) − Σ MM_i`` at the marks of the open (a
  member without a mark open at its last known mark), taken after a bar's executions whenever one of them
  traded a perp (``Δb ≠ 0``, an exit included) or re-sized one to the very same quantities. The cross
  trigger re-sizes every open pair whose target is its direction; the isolated trigger re-sizes the pair
  of that perp only.
* The spot trigger and the spot-margin liquidation use the account: level ``(cash + Σ_{a>0} a_i·S_i) /
  Σ_{a<0} |a_i|·S_i``. The liquidation check runs when at least one borrowed leg has its spot open (the
  others stay at their last known spot price, constant on the path). Held legs move toward ``spot_low``,
  borrowed ones toward ``spot_high``; ``λ* = h(0)/(h(0) − h(1))`` on ``h(λ) = cash + Σ_{a>0} a_i·S_i(λ) −
  level·Σ_{a<0} |a_i|·S_i(λ)``, ``0`` when ``h(0) ≤ 0``. Every loan is repaid at ``S_i(λ*)`` with its fee;
  held legs stay. It is one liquidation of the account (``n_liquidations`` + 1), and one of each symbol
  whose loan it repaid (its own count, its own lock or re-entry); a negative ``cash`` goes to the insurance
  fund, split over those symbols in proportion to ``|a_i|·S_i(λ*)``.
* Cross perp liquidation: the account's ``G(λ) = MB + Σ b_i·(m_i(λ) − entry_i) − Σ MM_i(|b_i|·m_i(λ))`` with
  ``m_i(λ) = mark_open_i + λ·(adverse_i − mark_open_i)`` (constant at the last known mark for a member
  without a mark open; the check runs when at least one open perp has its mark open); liquidated when
  ``G(1) ≤ 0`` (tiers at the adverse notionals). ``λ`` is solved with
  the tiers fixed at the adverse notionals, then twice more with the tiers at ``|b_i|·m_i(λ)``, each solve
  ``λ = G(0)/(G(0) − G(1))`` (``0`` when ``G(0) ≤ 0``), clipped to ``[0, 1]``. A negative ``MB`` after the
  fills and fees, or under ``liquidation_loss="margin"`` a positive one (booked as ``liquidation_fees``),
  is split over the perps in proportion to their notional at the fill.
* Warnings: ``liquidated_without_margin_management`` counts the account's liquidations;
  ``target_unfilled_after_liquidation`` is given per symbol, with ``"symbol": i``.
* ``tiers`` may be one table for every symbol or, as ``symbol_tiers``, a list with one table (or ``None``)
  per symbol.
"""

from __future__ import annotations

from .simulator import (
    NAN,
    _Column,
    _Components,
    _event_kind,
    _isnan,
    _normalise_tiers,
    _perp_liquidation_price,
    _rebalance_due,
    _resolve_params,
    _sizing_target,
    _solve_quantity,
    _tier_index,
    _trade_costs,
    _update_lock,
    cushion,
    maintenance_margin,
)

SERIES_KEYS = (
    "spot_open",
    "spot_high",
    "spot_low",
    "spot_close",
    "perp_open",
    "mark_open",
    "mark_high",
    "mark_low",
    "mark_close",
    "funding",
    "borrow_rate",
    "spot_volume",
    "perp_volume",
)
COMPONENTS = (
    "funding",
    "spot_pnl",
    "perp_pnl",
    "fees",
    "spread",
    "slippage",
    "borrow",
    "liquidation_fees",
    "insurance_fund_loss",
)


class _Member(_Column):
    """One symbol of the account: its legs, its share of the futures wallet (`margin_balance`), the
    prices it is marked at and its last known prices; `cash` is unused (the account holds it)."""

    def __init__(self, data, target, weight, tiers):
        super().__init__(0.0)
        self.data = data
        self.target = target
        self.weight = weight
        self.tiers = tiers
        self.comps = _Components()
        self.sized_weight = NAN
        self.last_spot = NAN
        self.last_mark = NAN
        self.gap = False
        self.has_spot_open = False
        self.has_mark_open = False

    def value(self) -> float:
        """a·S + MB_i + b·(M − entry) at the last known prices (0 for what the member does not hold)."""
        v = self.margin_balance
        if self.a != 0.0:
            v += self.a * self.last_spot
        if self.b != 0.0:
            v += self.b * (self.last_mark - self.entry)
        return v

    def cushion_now(self) -> float:
        return cushion(self.margin_balance, self.b, self.entry, self.last_mark, self.tiers)


def _f(x) -> float:
    return float(x)


class _Account:
    def __init__(self, members, capital, p):
        self.members = members
        self.cash = capital
        self.p = p
        self.cross = p["margin_mode"] == "cross"
        self.cushion_at_sizing = NAN  # cross C0
        self.prev_cushion = None  # cross C at the previous close
        self.prev_spot_level = None  # account spot margin level at the previous close
        self.n_liquidations = 0
        self.first_liquidation_bar = -1
        self.events: list = []

    def equity(self) -> float:
        return self.cash + sum(m.value() for m in self.members)

    def cross_cushion(self):
        """MB + Σ b_i·(m_i − entry_i) − Σ MM_i at the last known marks; None without an open perp."""
        open_perps = [m for m in self.members if m.b != 0.0]
        if not open_perps:
            return None
        return sum(m.margin_balance for m in self.members) + sum(
            m.b * (m.last_mark - m.entry) - maintenance_margin(abs(m.b) * m.last_mark, m.tiers) for m in open_perps
        )

    def spot_level(self):
        """(cash + Σ_{a>0} a_i·S_i) / Σ_{a<0} |a_i|·S_i at the last known spot prices; None without a loan."""
        borrowed = sum(-m.a * m.last_spot for m in self.members if m.a < 0.0)
        if borrowed == 0.0:
            return None
        return (self.cash + sum(m.a * m.last_spot for m in self.members if m.a > 0.0)) / borrowed

    def count_liquidation(self, t):
        self.n_liquidations += 1
        if self.first_liquidation_bar < 0:
            self.first_liquidation_bar = t


# --------------------------------------------------------------------------------------------------
# Step 1 — funding, and every leg moved to its open
# --------------------------------------------------------------------------------------------------


def _open_bar(m, t):
    d = m.data
    s_open, p_open, m_open = _f(d["spot_open"][t]), _f(d["perp_open"][t]), _f(d["mark_open"][t])
    m.gap = _isnan(s_open) or _isnan(p_open) or _isnan(m_open)
    m.has_spot_open = not _isnan(s_open)
    m.has_mark_open = not _isnan(m_open)
    rate = _f(d["funding"][t])
    if not _isnan(rate) and m.b != 0.0:
        f = -m.b * (m_open if m.has_mark_open else m.last_mark) * rate
        m.margin_balance += f
        m.comps.funding += f
    if m.has_spot_open:
        if m.a != 0.0:
            m.comps.spot_pnl += m.a * (s_open - m.spot_marked_at)
        m.spot_marked_at = s_open
        m.last_spot = s_open
    if m.has_mark_open:
        if m.b != 0.0:
            m.comps.perp_pnl += m.b * (m_open - m.mark_marked_at)
        m.mark_marked_at = m_open
        m.last_mark = m_open


# --------------------------------------------------------------------------------------------------
# Step 2 — execution: E once, then each symbol from E_i = weight_i·E
# --------------------------------------------------------------------------------------------------


def _execute_member(acct, m, i, t, equity_open, account_due):
    """Trade symbol i at the open of bar t. Returns True when its perp was traded (or re-sized to the
    very same quantities)."""
    p = acct.p
    d_ = m.data
    target_t = int(m.target[t])
    weight = _f(m.weight[t])
    effective_target, reentry, hold = _sizing_target(m, t, target_t, p)
    if hold:
        return False
    d = m.direction()
    both_open = d != 0 and m.a != 0.0 and m.b != 0.0 and effective_target == d
    rebalance = not reentry and (
        _rebalance_due(m, t, effective_target, _member_params(p, acct.cross)) or (both_open and account_due)
    )
    resize = not reentry and not rebalance and d != 0 and effective_target == d and weight != m.sized_weight
    if effective_target == d and not (rebalance or reentry or resize):
        return False

    s_open, p_open, m_open = _f(d_["spot_open"][t]), _f(d_["perp_open"][t]), _f(d_["mark_open"][t])
    svol = _f(d_["spot_volume"][t - 1]) if t > 0 else NAN
    pvol = _f(d_["perp_volume"][t - 1]) if t > 0 else NAN

    def total_cost(new_a, new_b):
        return sum(_trade_costs(new_a - m.a, new_b - m.b, s_open, p_open, svol, pvol, p).values())

    new_qty = _solve_quantity(effective_target, weight * equity_open, m.a, m.b, s_open, total_cost, p)
    new_a = effective_target * new_qty
    new_b = -effective_target * new_qty
    delta_a, delta_b = new_a - m.a, new_b - m.b
    if delta_a == 0.0 and delta_b == 0.0:
        if rebalance or resize:
            m.sized_bar = t
            m.sized_weight = weight
            m.cushion_at_sizing = cushion(m.margin_balance, m.b, m.entry, m_open, m.tiers)
            return m.b != 0.0
        return False

    # perp: realise at perp_open into its share, re-open there
    if m.b != 0.0:
        m.margin_balance += m.b * (p_open - m.entry)
    m.comps.perp_pnl += (new_b - m.b) * (m_open - p_open)
    m.b = new_b
    m.entry = p_open if new_b != 0.0 else 0.0
    # spot from the account's wallet
    acct.cash -= delta_a * s_open
    m.a = new_a
    # free transfer of this pair's margin change only
    if new_b != 0.0:
        transfer = new_qty * s_open / float(p["leverage"]) - m.margin_balance
        m.margin_balance += transfer
        acct.cash -= transfer
    else:
        acct.cash += m.margin_balance
        m.margin_balance = 0.0
    c = _trade_costs(delta_a, delta_b, s_open, p_open, svol, pvol, p)
    acct.cash -= c["spot_fee"] + c["spot_spread"] + c["spot_slippage"]
    m.margin_balance -= c["perp_fee"] + c["perp_spread"] + c["perp_slippage"]
    if new_b == 0.0:
        acct.cash += m.margin_balance
        m.margin_balance = 0.0
    m.comps.fees += c["spot_fee"] + c["perp_fee"]
    m.comps.spread += c["spot_spread"] + c["perp_spread"]
    m.comps.slippage += c["spot_slippage"] + c["perp_slippage"]
    m.comps.n_trades += 1
    m.sized_bar = t
    m.sized_weight = weight
    if new_b != 0.0:
        m.cushion_at_sizing = cushion(m.margin_balance, m.b, m.entry, m_open, m.tiers)
    new_direction = m.direction()
    if reentry and new_direction == effective_target:
        kind = "reentry"
    elif rebalance:
        kind = "rebalance"
    elif resize and new_direction == d:
        kind = "resize"
    else:
        kind = _event_kind(d, new_direction)
    acct.events.append(
        {
            "bar": t,
            "symbol": i,
            "kind": kind,
            "spot_qty": m.a,
            "perp_qty": m.b,
            "spot_price": s_open,
            "perp_price": p_open,
            "cost": sum(c.values()),
        }
    )
    return delta_b != 0.0


def _member_params(p, cross):
    """The per-symbol triggers: in cross margin the cushion is the account's (not the member's), and
    the spot level is always the account's, so only rebalance_every (and the isolated cushion) remain."""
    q = dict(p)
    q["spot_rebalance_level"] = None
    if cross:
        q["rebalance_at"] = None
    return q


def _account_trigger_due(acct) -> bool:
    """Account-level triggers at the previous close: the cross cushion and the spot margin level."""
    p = acct.p
    x = p["rebalance_at"]
    if acct.cross and x is not None and acct.prev_cushion is not None:
        if acct.prev_cushion <= (1.0 - x) * acct.cushion_at_sizing:
            return True
    y = p["spot_rebalance_level"]
    if y is not None and acct.prev_spot_level is not None and acct.prev_spot_level <= y:
        return True
    return False


# --------------------------------------------------------------------------------------------------
# Step 3 — liquidation
# --------------------------------------------------------------------------------------------------


def _effective_close(m, t, key, last):
    v = _f(m.data[key][t])
    return v if not _isnan(v) else last


def _adverse_mark(m, t):
    v = _f(m.data["mark_high"][t] if m.b < 0.0 else m.data["mark_low"][t])
    return v if not _isnan(v) else _effective_close(m, t, "mark_close", m.last_mark)


def _after_liquidation(acct, m, t, direction):
    m.comps.n_liquidations += 1
    if m.comps.first_liquidation_bar < 0:
        m.comps.first_liquidation_bar = t
    if acct.p["after_liquidation"] == "reenter":
        m.reentry_direction = direction
    else:
        m.lock_direction = direction
        m.lock_bar = t


def _liquidate_isolated(acct, m, i, t):
    """One perp on its own share: the single-column rule (P per tier, or the mark open beyond it)."""
    if m.b == 0.0 or not m.has_mark_open:
        return
    adverse = _adverse_mark(m, t)
    if m.margin_balance + m.b * (adverse - m.entry) > maintenance_margin(abs(m.b) * adverse, m.tiers):
        return
    m_open = m.last_mark  # this bar's mark open
    price = _perp_liquidation_price(m.b, m.entry, m.margin_balance, m.tiers, abs(m.b) * adverse)
    opened_beyond = (m_open >= price) if m.b < 0.0 else (m_open <= price)
    _fill_perps(acct, [(m, i, m_open if opened_beyond else price)], t)
    acct.count_liquidation(t)


def _solve_lambda(margin_balance, path):
    """λ ∈ [0, 1] where G(λ) = MB + Σ b_i·(m_i(λ) − entry_i) − Σ MM_i(|b_i|·m_i(λ)) reaches 0, with each
    tier fixed first at the adverse notional, then twice at the notional of the previous solution.
    `path` is [(member, m_i(0), m_i(1))]."""

    def solve(tier_marks):
        g0 = margin_balance
        g1 = margin_balance
        for (m, m0, m1), tm in zip(path, tier_marks, strict=True):
            _, _, rate, cum = m.tiers[_tier_index(m.tiers, abs(m.b) * tm)]
            g0 += m.b * (m0 - m.entry) - (abs(m.b) * m0 * rate - cum)
            g1 += m.b * (m1 - m.entry) - (abs(m.b) * m1 * rate - cum)
        if g0 <= 0.0:
            return 0.0
        if g0 == g1:
            return 1.0
        return min(1.0, max(0.0, g0 / (g0 - g1)))

    lam = solve([m1 for _, _, m1 in path])
    for _ in range(2):
        lam = solve([m0 + lam * (m1 - m0) for _, m0, m1 in path])
    return lam


def _fill_perps(acct, fills, t):
    """Close every perp of `fills` [(member, index, F)] at F with its liquidation fee; the wallet they
    share (one share in isolated, the whole futures wallet in cross) absorbs the result."""
    p = acct.p
    fee_rate = float(p["liquidation_fee"])
    notional = {}
    fees = {}
    for m, i, fill in fills:
        m.comps.perp_pnl += m.b * (fill - m.mark_marked_at)
        m.mark_marked_at = fill
        fees[i] = fee_rate * abs(m.b) * fill
        notional[i] = abs(m.b) * fill
        m.margin_balance += m.b * (fill - m.entry) - fees[i]
        m.comps.liquidation_fees += fees[i]
    # the wallet: in cross every share (all perps are in `fills`), in isolated the one share
    members = acct.members if acct.cross else [m for m, _, _ in fills]
    wallet = sum(m.margin_balance for m in members)
    total_notional = sum(notional.values())
    for m, i, _ in fills:
        share = notional[i] / total_notional if total_notional > 0.0 else 1.0 / len(fills)
        if wallet < 0.0:
            m.comps.insurance_fund_loss += -wallet * share
        elif p["liquidation_loss"] == "margin":
            m.comps.liquidation_fees += wallet * share
            fees[i] += wallet * share
    if wallet < 0.0 or p["liquidation_loss"] == "margin":
        wallet = 0.0
    for m in members:
        m.margin_balance = 0.0
    acct.cash += wallet
    for m, i, fill in fills:
        direction = m.direction()
        m.b = 0.0
        m.entry = 0.0
        _after_liquidation(acct, m, t, direction)
        acct.events.append(
            {
                "bar": t,
                "symbol": i,
                "kind": "liquidation_perp",
                "spot_qty": m.a,
                "perp_qty": 0.0,
                "spot_price": NAN,
                "perp_price": fill,
                "cost": fees[i],
            }
        )


def _liquidate_cross(acct, t):
    open_perps = [(i, m) for i, m in enumerate(acct.members) if m.b != 0.0]
    if not open_perps or not any(m.has_mark_open for _, m in open_perps):
        return
    path = []
    for _, m in open_perps:
        m0 = m.last_mark  # the mark open, or the last known mark of a member without one
        path.append((m, m0, _adverse_mark(m, t) if m.has_mark_open else m0))
    mb = sum(m.margin_balance for m in acct.members)
    g1 = mb + sum(m.b * (m1 - m.entry) - maintenance_margin(abs(m.b) * m1, m.tiers) for m, _, m1 in path)
    if g1 > 0.0:
        return
    lam = _solve_lambda(mb, path)
    fills = [(m, i, m0 + lam * (m1 - m0)) for (i, _), (m, m0, m1) in zip(open_perps, path, strict=True)]
    _fill_perps(acct, fills, t)
    acct.count_liquidation(t)


def _liquidate_spot(acct, t):
    p = acct.p
    members = list(enumerate(acct.members))
    borrowed = [(i, m) for i, m in members if m.a < 0.0]
    if not borrowed or not any(m.has_spot_open for _, m in borrowed):
        return
    level = float(p["spot_liquidation_level"])
    path = {}
    for i, m in members:
        if m.a == 0.0:
            continue
        s0 = m.last_spot
        if m.has_spot_open:
            v = _f(m.data["spot_high"][t] if m.a < 0.0 else m.data["spot_low"][t])
            s1 = v if not _isnan(v) else _effective_close(m, t, "spot_close", m.last_spot)
        else:
            s1 = s0
        path[i] = (s0, s1)

    def h(lam):
        v = acct.cash
        for i, m in members:
            if m.a == 0.0:
                continue
            s0, s1 = path[i]
            s = s0 + lam * (s1 - s0)
            v += m.a * s if m.a > 0.0 else -level * abs(m.a) * s
        return v

    h0, h1 = h(0.0), h(1.0)
    if h1 > 0.0:
        return
    lam = 0.0 if h0 <= 0.0 else min(1.0, max(0.0, h0 / (h0 - h1)))
    fee_rate = float(p["liquidation_fee"])
    notional = {}
    for i, m in borrowed:
        s0, s1 = path[i]
        repay = s0 + lam * (s1 - s0)
        m.comps.spot_pnl += m.a * (repay - m.spot_marked_at)
        m.spot_marked_at = repay
        fee = fee_rate * abs(m.a) * repay
        notional[i] = abs(m.a) * repay
        acct.cash -= abs(m.a) * repay + fee
        m.comps.liquidation_fees += fee
        direction = m.direction()
        m.a = 0.0
        _after_liquidation(acct, m, t, direction)
        acct.events.append(
            {
                "bar": t,
                "symbol": i,
                "kind": "liquidation_spot",
                "spot_qty": 0.0,
                "perp_qty": m.b,
                "spot_price": repay,
                "perp_price": NAN,
                "cost": fee,
            }
        )
    if acct.cash < 0.0:
        total = sum(notional.values())
        for i, m in borrowed:
            m.comps.insurance_fund_loss += -acct.cash * (notional[i] / total if total > 0.0 else 1.0 / len(borrowed))
        acct.cash = 0.0
    acct.count_liquidation(t)


# --------------------------------------------------------------------------------------------------
# The bar loop
# --------------------------------------------------------------------------------------------------


def _resolve(params, n_symbols):
    params = dict(params or {})
    mode = params.pop("margin_mode", "isolated")
    if mode not in ("isolated", "cross"):
        raise ValueError("margin_mode must be 'isolated' or 'cross'")
    symbol_tiers = params.pop("symbol_tiers", None)
    p = _resolve_params(params)
    p["margin_mode"] = mode
    if symbol_tiers is None:
        tables = [_normalise_tiers(p["tiers"], p["mmr"])] * n_symbols
    else:
        if len(symbol_tiers) != n_symbols:
            raise ValueError("symbol_tiers needs one table (or None) per symbol")
        tables = [_normalise_tiers(x, p["mmr"]) for x in symbol_tiers]
    return p, tables


def _warnings(acct, n_bars):
    p = acct.p
    out = []
    managed = p["rebalance_at"] is not None or p["spot_rebalance_level"] is not None or int(p["rebalance_every"]) > 0
    if acct.n_liquidations > 0 and not managed:
        out.append(
            {
                "kind": "liquidated_without_margin_management",
                "count": acct.n_liquidations,
                "first_bar": acct.first_liquidation_bar,
            }
        )
    for i, m in enumerate(acct.members):
        if (
            p["after_liquidation"] == "close"
            and m.lock_direction != 0
            and int(m.target[n_bars - 1]) == m.lock_direction
            and n_bars - 1 - m.lock_bar > 0
        ):
            out.append(
                {
                    "kind": "target_unfilled_after_liquidation",
                    "symbol": i,
                    "liquidation_bar": m.lock_bar,
                    "direction": m.lock_direction,
                    "unfilled_bars": n_bars - 1 - m.lock_bar,
                }
            )
    return out


def simulate_portfolio(*, symbols, targets, weights=None, bar_hours: float, params: dict) -> dict:
    """Simulate one account over several symbols, bar by bar.

    symbols: one dict per symbol with the series of `simulator.simulate` (``spot_open`` … ``perp_volume``);
    targets: one target series per symbol; weights: one weight series per symbol (None: 1/n each);
    params: those of `simulator.simulate` plus ``margin_mode`` ("isolated" | "cross") and optionally
    ``symbol_tiers``. Returns the account's series (``equity``, every component, ``cash``,
    ``margin_balance`` = Σ shares), per symbol (``symbols[i]``: ``spot_qty``, ``perp_qty``,
    ``margin_share`` and every component, ``n_trades``, ``n_liquidations``), ``events`` (with
    ``symbol``), ``n_trades``, ``n_liquidations`` (the account's: a cross or spot-margin liquidation
    counts once), ``gap_bars`` (per symbol) and ``warnings``.
    """
    n_symbols = len(symbols)
    if n_symbols == 0 or len(targets) != n_symbols:
        raise ValueError("one target series per symbol is needed")
    n_bars = len(symbols[0]["spot_open"])
    if weights is None:
        weights = [[1.0 / n_symbols] * n_bars for _ in range(n_symbols)]
    if len(weights) != n_symbols:
        raise ValueError("one weight series per symbol is needed")
    for data, tgt, w in zip(symbols, targets, weights, strict=True):
        for key in SERIES_KEYS:
            if len(data[key]) != n_bars:
                raise ValueError(f"{key} has length {len(data[key])}, expected {n_bars}")
        if len(tgt) != n_bars or len(w) != n_bars:
            raise ValueError(f"targets and weights need {n_bars} bars")
    p, tables = _resolve(params, n_symbols)
    members = [_Member(symbols[i], targets[i], weights[i], tables[i]) for i in range(n_symbols)]
    acct = _Account(members, float(p["capital"]), p)

    out: dict = {key: [] for key in ("equity", *COMPONENTS, "cash", "margin_balance")}
    per_symbol: list = [
        {key: [] for key in ("spot_qty", "perp_qty", "margin_share", *COMPONENTS)} for _ in range(n_symbols)
    ]
    gap_bars: list = [[] for _ in range(n_symbols)]

    for t in range(n_bars):
        # (1) funding; legs to their opens
        for i, m in enumerate(members):
            _open_bar(m, t)
            if m.gap:
                gap_bars[i].append(t)

        # (2) execution: E once per bar, before any trade
        equity_open = acct.equity()
        account_due = _account_trigger_due(acct)
        sized_perp = False
        for i, m in enumerate(members):
            if m.gap:
                if p["after_liquidation"] != "reenter":
                    _update_lock(m, t, int(m.target[t]))
                continue
            sized_perp |= _execute_member(acct, m, i, t, equity_open, account_due)
        if acct.cross and sized_perp:
            c0 = acct.cross_cushion()
            acct.cushion_at_sizing = c0 if c0 is not None else NAN

        # (3) liquidation: perps (isolated one by one, or the cross account), then the spot margin
        if acct.cross:
            _liquidate_cross(acct, t)
        else:
            for i, m in enumerate(members):
                _liquidate_isolated(acct, m, i, t)
        _liquidate_spot(acct, t)

        # (4) borrow, (5) mark
        for m in members:
            s_close = _effective_close(m, t, "spot_close", m.last_spot)
            m_close = _effective_close(m, t, "mark_close", m.last_mark)
            if m.a < 0.0:
                rate = _f(m.data["borrow_rate"][t])
                hourly = float(p["borrow_rate"]) if _isnan(rate) else rate
                cost = abs(m.a) * s_close * hourly * float(bar_hours)
                acct.cash -= cost
                m.comps.borrow += cost
            if m.a != 0.0:
                m.comps.spot_pnl += m.a * (s_close - m.spot_marked_at)
            if m.b != 0.0:
                m.comps.perp_pnl += m.b * (m_close - m.mark_marked_at)
            m.spot_marked_at = s_close
            m.mark_marked_at = m_close
            if not _isnan(s_close):
                m.last_spot = s_close
            if not _isnan(m_close):
                m.last_mark = m_close
            m.prev_cushion = m.cushion_now() if m.b != 0.0 else None
        acct.prev_cushion = acct.cross_cushion() if acct.cross else None
        acct.prev_spot_level = acct.spot_level()

        out["equity"].append(acct.equity())
        for key in COMPONENTS:
            out[key].append(sum(getattr(m.comps, key) for m in members))
        out["cash"].append(acct.cash)
        out["margin_balance"].append(sum(m.margin_balance for m in members))
        for i, m in enumerate(members):
            row = per_symbol[i]
            row["spot_qty"].append(m.a)
            row["perp_qty"].append(m.b)
            row["margin_share"].append(m.margin_balance)
            for key in COMPONENTS:
                row[key].append(getattr(m.comps, key))

    for i, m in enumerate(members):
        per_symbol[i]["n_trades"] = m.comps.n_trades
        per_symbol[i]["n_liquidations"] = m.comps.n_liquidations
    out["symbols"] = per_symbol
    out["events"] = acct.events
    out["n_trades"] = sum(m.comps.n_trades for m in members)
    out["n_liquidations"] = acct.n_liquidations
    out["gap_bars"] = gap_bars
    out["warnings"] = _warnings(acct, n_bars)
    return out
