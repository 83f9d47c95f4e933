"""`Result`: what :func:`fundarb.backtest` returns — pandas views of the kernel's arrays, statistics, checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.engine import layout as k
from fundarb.errors import ConfigError
from fundarb.results import metrics as M

__all__ = ["COMPONENTS", "IDENTITY_SIGN", "STAT_NAMES", "Result", "combined_totals", "streaming_totals"]

COMPONENTS = ("funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
              "insurance_fund_loss")
"""PnL components of the DESIGN §6 identity (cumulative, in quote currency)."""

STAT_NAMES = ("final_equity", "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown",
              "max_drawdown_days", "calmar", "time_in_market", "n_trades", "n_liquidations", "funding_pnl",
              *COMPONENTS[1:], "basis_pnl", "realised_apr_on_capital", "funding_apr_on_capital", "funding_kept_share",
              "break_even_days")
"""The numeric columns of :meth:`Result.stats` (besides ``start``/``end``), in order: what sweeps rank by."""

#: Sign of each component in the DESIGN §6 identity: equity = capital + Σ sign · component.
IDENTITY_SIGN = {"funding": 1, "spot_pnl": 1, "perp_pnl": 1, "fees": -1, "spread": -1, "slippage": -1,
                 "borrow": -1, "liquidation_fees": -1, "insurance_fund_loss": 1}


def streaming_totals(equity: np.ndarray, capital: float, first_bar: int, held: np.ndarray) -> np.ndarray:
    """The kernel's streaming statistics (``layout.GTOTALS``) recomputed from an equity curve with numpy.

    Returns are from ``first_bar`` on, the first against ``capital``; a bar strictly below the running peak
    counts toward the drawdown's duration. ``held`` marks the bars with a position.
    """
    out = np.zeros(k.N_GTOTALS)
    out[k.T_FIRST_LIQ] = -1
    out[k.T_FIRST_BAR] = first_bar
    out[k.T_BARS_IN_MARKET] = float(np.count_nonzero(held))
    if first_bar < 0:
        out[k.T_EQUITY] = capital
        out[k.T_PEAK] = capital
        out[k.T_LAST_BAR] = -1
        return out
    eq = np.asarray(equity[first_bar:], dtype=np.float64)
    prev = np.concatenate([[capital], eq[:-1]])
    r = np.divide(eq, prev, out=np.ones_like(eq), where=prev != 0.0) - 1.0  # the kernel's: 0 after a zero equity
    peak = np.maximum.accumulate(np.concatenate([[capital], eq]))
    dd = eq / peak[1:] - 1.0
    below = eq < peak[:-1]
    # the longest run of bars below the peak: edges of the runs of True
    edges = np.flatnonzero(np.diff(np.concatenate(([0], below.astype(np.int8), [0]))))
    longest = int((edges[1::2] - edges[::2]).max()) if edges.size else 0
    out[k.T_EQUITY] = eq[-1]
    out[k.T_SUM_R] = r.sum()
    out[k.T_SUM_R2] = (r * r).sum()
    out[k.T_SUM_DOWN2] = (r[r < 0] ** 2).sum()
    out[k.T_N_R] = len(eq)
    out[k.T_MAX_DD] = min(0.0, float(dd.min()))
    out[k.T_MAX_DD_BARS] = longest
    out[k.T_PEAK] = peak[-1]
    out[k.T_LAST_BAR] = len(equity) - 1
    return out


def combined_totals(gseries: np.ndarray, gtotals: np.ndarray, capital: float) -> np.ndarray:
    """The totals of several accounts run as one book: ``gseries`` and ``gtotals`` are theirs (``(k, T, n)``,
    ``(k, n)``), ``capital`` their sum.

    The statistics are those of the summed equity (:func:`streaming_totals`); liquidations are events, so the
    book's count and first bar are the accounts' own.
    """
    firsts = gtotals[k.T_FIRST_BAR]
    first = int(firsts[firsts >= 0].min()) if (firsts >= 0).any() else -1
    out = streaming_totals(gseries[k.G_EQUITY].sum(axis=1), capital, first, (gseries[k.G_HELD] > 0).any(axis=1))
    out[k.T_LAST_BAR] = gtotals[k.T_LAST_BAR].max()
    out[k.T_N_LIQ] = gtotals[k.T_N_LIQ].sum()
    lq = gtotals[k.T_FIRST_LIQ]
    out[k.T_FIRST_LIQ] = lq[lq >= 0].min() if (lq >= 0).any() else -1
    return out


@dataclass(frozen=True, eq=False)
class Result:
    """A backtest's outcome.

    A result has *groups* (accounts: one capital each) made of *members* (one symbol each). A plain backtest has
    one group per symbol × parameter set, so groups and members coincide; a portfolio has one group of many
    symbols per parameter set. Account-level views (``equity``, ``components``, ``stats()``) have one column
    per group; leg-level views (``spot_qty``, ``perp_qty``, ``positions``, ``symbol_components``,
    ``symbol_totals()``) one per member. Sweep mode keeps totals only (the series raise).
    """

    market: MarketData
    groups: pd.Index
    members: pd.Index
    grp_start: np.ndarray
    mem_sym: np.ndarray
    params: np.ndarray
    series: np.ndarray | None
    gseries: np.ndarray | None
    mtotals: np.ndarray
    gtotals: np.ndarray
    records: np.ndarray
    target: np.ndarray
    mode: str
    portfolio: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    mem_tgt: np.ndarray | None = None
    """Column of ``target`` each member follows (None: its symbol's column)."""

    # ------------------------------------------------------------------ helpers
    @property
    def columns(self) -> pd.Index:
        """Columns of the account-level views (one per group)."""
        return self.groups

    def _need_detail(self) -> None:
        if self.series is None:
            raise ConfigError("this result was run with mode='sweep', which keeps totals only; "
                              "run with mode='detail' for time series and the trade log")

    def _by_group(self, arr: np.ndarray) -> np.ndarray:
        """Sum member columns (last axis) into their groups."""
        return np.add.reduceat(arr, self.grp_start[:-1], axis=-1)

    def _group_of(self, members: np.ndarray) -> np.ndarray:
        """Account (group) position of each member position."""
        return np.searchsorted(self.grp_start, members, side="right") - 1

    def _frame(self, arr: np.ndarray, cols: pd.Index) -> pd.DataFrame:
        return pd.DataFrame(arr, index=self.market.index, columns=cols, copy=False)

    def _member_series(self, row: int) -> pd.DataFrame:
        self._need_detail()
        assert self.series is not None
        return self._frame(self.series[row], self.members)

    @property
    def capital(self) -> pd.Series:
        """Starting capital per group."""
        return pd.Series(self.params["capital"], index=self.groups, name="capital")

    # ------------------------------------------------------------------ series
    @property
    def equity(self) -> pd.DataFrame:
        """Equity of each account marked at each bar's close (spot at spot close, perps at mark close)."""
        self._need_detail()
        assert self.gseries is not None
        return self._frame(self.gseries[k.G_EQUITY], self.groups)

    @property
    def components(self) -> dict[str, pd.DataFrame]:
        """Cumulative PnL components per bar and account (DESIGN §6), plus ``basis_pnl`` = spot + perp PnL."""
        self._need_detail()
        assert self.series is not None
        out = {name: self._frame(self._by_group(self.series[i]), self.groups) for i, name in enumerate(COMPONENTS)}
        out["basis_pnl"] = out["spot_pnl"] + out["perp_pnl"]
        return out

    @property
    def symbol_components(self) -> dict[str, pd.DataFrame]:
        """Cumulative PnL components per bar and member (symbol), plus ``basis_pnl``."""
        out = {name: self._member_series(i) for i, name in enumerate(COMPONENTS)}
        out["basis_pnl"] = out["spot_pnl"] + out["perp_pnl"]
        return out

    @property
    def spot_qty(self) -> pd.DataFrame:
        """Signed spot quantity held at each bar's close, per member (negative: borrowed and sold)."""
        return self._member_series(k.SPOT_QTY)

    @property
    def perp_qty(self) -> pd.DataFrame:
        """Signed perp quantity at each bar's close, per member (negative: short)."""
        return self._member_series(k.PERP_QTY)

    @property
    def margin_balance(self) -> pd.DataFrame:
        """Futures-wallet balance per account (isolated: the sum over its perps)."""
        self._need_detail()
        assert self.gseries is not None
        return self._frame(self.gseries[k.G_MARGIN], self.groups)

    @property
    def positions(self) -> pd.DataFrame:
        """Direction held at each bar's close, per member: +1 carry, −1 reverse, 0 flat (a lone leg counts)."""
        a, b = self.spot_qty.to_numpy(), self.perp_qty.to_numpy()
        d = np.where(a != 0, np.sign(a), -np.sign(b)).astype(np.int8)
        return pd.DataFrame(d, index=self.market.index, columns=self.members)

    @property
    def trades(self) -> pd.DataFrame:
        """Trade log: entries, exits, flips, rebalances, resizes and liquidations, with prices, quantities, costs.

        Quantities are signed and *after* the trade; ``spot_traded``/``perp_traded`` are the changes.
        A liquidation's fill price is in ``perp_price`` (perp) or ``spot_price`` (spot loan).
        """
        self._need_detail()
        r = self.records
        mem = r["member"]
        grp = self._group_of(mem)
        out = pd.DataFrame({
            "time": self.market.index[r["bar"]],
            "member": [self.members[i] for i in mem],
            "symbol": [self.market.symbols[self.mem_sym[i]] for i in mem],
            "account": [self.groups[i] for i in grp],
            "kind": [k.KINDS[int(x)] for x in r["kind"]],
        })
        for f in k.REC_FIELDS[3:]:
            out[f] = r[f]
        return out

    @property
    def liquidations(self) -> pd.DataFrame:
        """The liquidation rows of :attr:`trades`."""
        t = self.trades
        return t[t["kind"].str.startswith("liquidation")].reset_index(drop=True)

    @property
    def warnings(self) -> list[str]:
        """Fallbacks and gaps that affect this result (mark price replaced by perp price, outages crossed)."""
        out = self.market.warnings
        pos = None if self.series is None else (self.series[k.SPOT_QTY] != 0) | (self.series[k.PERP_QTY] != 0)
        for j, s in enumerate(self.market.symbols):
            cov = self.market.coverage[s]
            gaps = [g for leg in ("spot", "perp", "mark") for g in cov.gaps[leg]]
            if not gaps:
                continue
            if pos is None:
                out.append(f"{s}: {len(gaps)} data gap(s) inside the active span ({sum(g[2] for g in gaps)} bars)")
                continue
            cols = np.flatnonzero(self.mem_sym == j)
            crossed = []
            for g0, _g1, n in gaps:
                i0 = int(self.market.index.get_loc(g0))
                if pos[max(i0 - 1, 0), cols].any():
                    crossed.append(f"{g0:%Y-%m-%d %H:%M} ({n} bar{'s' if n > 1 else ''})")
            if crossed:
                out.append(f"{s}: the position was held across {len(crossed)} data gap(s), marked at the last "
                           f"known prices, no order there and no liquidation check of a leg without its open: "
                           f"{', '.join(crossed[:10])}"
                           + (" …" if len(crossed) > 10 else ""))
        return out + self._margin_warnings()

    def _margin_warnings(self) -> list[str]:
        """DESIGN §5 warnings: liquidations with margin management off; "close" leaving a target unfilled."""
        out = []
        idx = self.market.index
        p = self.params
        reb_at = p["rebalance_at"]
        managed = (((reb_at > 0) & (reb_at < 1)) | np.isfinite(p["spot_rebalance_level"])
                   | (p["rebalance_every"] > 0))
        n_liq = self.gtotals[k.T_N_LIQ]
        first = self.gtotals[k.T_FIRST_LIQ]
        for g, name in enumerate(self.groups):
            if n_liq[g] > 0 and not managed[g]:
                out.append(f"{name}: liquidated with margin management off: {int(n_liq[g])} liquidation(s), the "
                           f"first at {idx[int(first[g])]:%Y-%m-%d %H:%M}; set rebalance_at, spot_rebalance_level "
                           f"or rebalance_every to manage the margin")
        lock_bar = self.mtotals[k.M_LOCK_BAR]
        close = p["after_liquidation"][self._group_of(np.arange(len(self.members)))] == 0
        for m in np.flatnonzero((lock_bar >= 0) & close):
            bars = len(idx) - 1 - int(lock_bar[m])
            if bars > 0:
                out.append(f"{self.members[m]}: after the liquidation at {idx[int(lock_bar[m])]:%Y-%m-%d %H:%M} "
                           f"(after_liquidation='close') the target still asked for the same position but it stayed "
                           f"flat to the end ({bars} bars unfilled); after_liquidation='reenter' opens a fresh pair")
        return out

    # ------------------------------------------------------------------ totals and statistics
    def symbol_totals(self) -> pd.DataFrame:
        """Final value of every component, trades and liquidations per member (symbol), both modes."""
        t = self.mtotals
        data = {name: t[i] for i, name in enumerate(COMPONENTS)}
        data["basis_pnl"] = data["spot_pnl"] + data["perp_pnl"]
        data["n_trades"] = t[k.M_TRADES].astype(np.int64)
        data["n_liquidations"] = t[k.M_LIQ].astype(np.int64)
        data["time_in_market"] = t[k.M_BARS_IN_MARKET] / np.maximum(
            self.gtotals[k.T_N_R][self._group_of(np.arange(len(self.members)))], 1)
        return pd.DataFrame(data, index=self.members)

    def totals_frame(self) -> pd.DataFrame:
        """Final equity and every component's final value, per account (both modes)."""
        data = {"final_equity": self.gtotals[k.T_EQUITY]}
        for i, name in enumerate(COMPONENTS):
            data[name] = self._by_group(self.mtotals[i])
        return pd.DataFrame(data, index=self.groups)

    def identity_error(self) -> float:
        """Largest relative violation of the DESIGN §6 identity over every bar and account."""
        cap = self.params["capital"][None, :]
        if self.series is None or self.gseries is None:
            eq = self.gtotals[k.T_EQUITY][None, :]
            comps = {n: self._by_group(self.mtotals[i])[None, :] for i, n in enumerate(COMPONENTS)}
        else:
            eq = self.gseries[k.G_EQUITY]
            comps = {n: self._by_group(self.series[i]) for i, n in enumerate(COMPONENTS)}
        rhs = cap + sum(IDENTITY_SIGN[n] * v for n, v in comps.items())
        scale = np.maximum(np.abs(eq), cap)
        return float(np.max(np.abs(eq - rhs) / scale))

    def _entry_notional_share(self) -> np.ndarray:
        """Spot notional per unit of equity of each account's entries, by the sizing rule of each entry's
        direction (DESIGN §3: carry ``L/(L+1)``, reverse ``1/(1/L + 1/Ls)``), averaged over the entries the
        targets ask for; the carry rule when there are none."""
        lev = self.params["leverage"]
        ls = self.params["spot_leverage"]
        carry = lev / (lev + 1.0)
        reverse = 1.0 / (1.0 / lev + 1.0 / ls)
        if self.mem_tgt is not None:
            tg = self.target[:, self.mem_tgt]
        elif self.target.shape[1] == len(self.market.symbols):
            tg = self.target[:, self.mem_sym]
        else:
            return carry
        prev = np.vstack([np.zeros((1, tg.shape[1]), dtype=tg.dtype), tg[:-1]])
        new = (tg != 0) & (tg != prev)
        n_c = self._by_group((new & (tg > 0)).sum(axis=0).astype(np.float64))
        n_r = self._by_group((new & (tg < 0)).sum(axis=0).astype(np.float64))
        tot = n_c + n_r
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(tot > 0, (n_c * carry + n_r * reverse) / tot, carry)

    def stats(self) -> pd.DataFrame:
        """DESIGN §8 statistics, one row per account.

        Returns are per bar, the first against the starting capital, from the account's first tradable bar;
        periods per year come from the bar size (8,760 for 1h bars). Computed from the kernel's streaming
        totals, so detail and sweep mode give the same numbers. ``break_even_days`` is the round trip's cost
        (both legs, in and out, at the entry notional of the full capital, sized by the rule of the entries'
        direction: carry ``L/(L+1)``, reverse ``1/(1/L + 1/Ls)``) over the funding earned per day in the market.
        """
        t = self.gtotals
        ppy = self.market.periods_per_year
        cap = self.params["capital"]
        final = t[k.T_EQUITY]
        n = t[k.T_N_R]
        comp = {name: self._by_group(self.mtotals[i]) for i, name in enumerate(COMPONENTS)}
        wealth = final / cap
        mdd = t[k.T_MAX_DD]
        funding = comp["funding"]
        pnl = final - cap
        cagr = M.annualized_return_from_wealth(wealth, n, periods_per_year=ppy)
        with np.errstate(divide="ignore", invalid="ignore"):
            days_in_mkt = t[k.T_BARS_IN_MARKET] * self.market.bar_hours / 24.0
            rt_cost = 2.0 * cap * self._entry_notional_share() * (
                self.params["spot_fee"] + self.params["perp_fee"] + 2 * self.params["half_spread"]
                + 2 * self.params["slippage"])
            daily_funding = funding / days_in_mkt
            data = {
                "start": [self.market.index[int(i)] if i >= 0 else pd.NaT for i in t[k.T_FIRST_BAR]],
                "end": [self.market.index[int(i)] if i >= 0 else pd.NaT for i in t[k.T_LAST_BAR]],
                "final_equity": final,
                "total_return": M.total_return_from_wealth(wealth),
                "cagr": cagr,
                "volatility": M.annualized_volatility_from_sums(t[k.T_SUM_R], t[k.T_SUM_R2], n, periods_per_year=ppy),
                "sharpe": M.sharpe_from_sums(t[k.T_SUM_R], t[k.T_SUM_R2], n, periods_per_year=ppy),
                "sortino": M.sortino_from_sums(t[k.T_SUM_R], t[k.T_SUM_DOWN2], n, periods_per_year=ppy),
                "max_drawdown": mdd,
                "max_drawdown_days": t[k.T_MAX_DD_BARS] * self.market.bar_hours / 24.0,
                "calmar": M.calmar_from(cagr, mdd),
                "time_in_market": t[k.T_BARS_IN_MARKET] / n,
                "n_trades": self._by_group(self.mtotals[k.M_TRADES]).astype(np.int64),
                "n_liquidations": t[k.T_N_LIQ].astype(np.int64),
                "funding_pnl": funding,
                **{name: comp[name] for name in COMPONENTS[1:]},
                "basis_pnl": comp["spot_pnl"] + comp["perp_pnl"],
                "realised_apr_on_capital": M.realised_apr_on_capital(pnl, cap, periods=n, periods_per_year=ppy),
                "funding_apr_on_capital": M.realised_apr_on_capital(funding, cap, periods=n, periods_per_year=ppy),
                "funding_kept_share": M.funding_kept_share(pnl, funding),
                "break_even_days": M.break_even_days(rt_cost, daily_funding),
            }
        return pd.DataFrame(data, index=self.groups)

    def combined(self) -> Result:
        """All accounts of this result as one: equity summed, capital summed, every leg kept (detail mode).

        For a multi-symbol run of independent accounts this is the book as a whole; ``combined().stats()``
        gives its statistics (returns of the summed equity).
        """
        self._need_detail()
        assert self.gseries is not None and self.series is not None
        cap = float(self.params["capital"].sum())
        gt = combined_totals(self.gseries, self.gtotals, cap)[:, None]
        params = self.params[:1].copy()
        params["capital"] = cap
        gs = np.stack([self.gseries[i].sum(axis=1) for i in range(k.N_GSERIES)])[:, :, None]
        gs[k.G_HELD] = gs[k.G_HELD] > 0  # the book holds a leg when any account does
        return Result(market=self.market, groups=pd.Index(["all"], name="book"), members=self.members,
                      grp_start=np.array([0, len(self.members)]), mem_sym=self.mem_sym, params=params,
                      series=self.series, gseries=gs, mtotals=self.mtotals, gtotals=gt, records=self.records,
                      target=self.target, mode=self.mode, portfolio=True, config=self.config, mem_tgt=self.mem_tgt)

    def to_vectorbt(self, *, book: bool = True) -> Any:
        """The accounts' returns as vectorbt's returns accessor (its statistics, drawdowns and plots).

        ``book=True`` (default) gives one column for the whole book (:meth:`combined` when there are several
        independent accounts); ``book=False`` one column per account. Figures equal :meth:`stats` (Sharpe,
        Sortino, volatility, max drawdown …, to rounding). The benchmark is holding the account's spot
        (equal-weighted over its symbols). Detail mode only.

        Examples
        --------
        >>> acc = fa.backtest(market, 1).to_vectorbt()      # doctest: +SKIP
        >>> acc.sharpe_ratio(), acc.stats()                 # doctest: +SKIP
        """
        from fundarb.results.vectorbt import returns_accessor

        res = self.combined() if book and len(self.groups) > 1 and not self.portfolio else self
        res._need_detail()
        st = res.stats()
        capital = pd.Series(res.params["capital"], index=res.groups)
        spot = res.market.arrays["spot_close"]
        spot_r = np.full_like(spot, np.nan)
        spot_r[1:] = spot[1:] / spot[:-1] - 1.0
        hold = np.full((len(spot), len(res.groups)), np.nan)
        for g in range(len(res.groups)):
            legs = spot_r[:, res.mem_sym[res.grp_start[g]:res.grp_start[g + 1]]]
            n_legs = np.isfinite(legs).sum(axis=1)
            hold[n_legs > 0, g] = np.nansum(legs, axis=1)[n_legs > 0] / n_legs[n_legs > 0]
        bench = pd.DataFrame(hold, index=res.market.index, columns=res.groups)
        return returns_accessor(res.equity, capital, st["start"], freq=res.market.timeframe, benchmark=bench)

    def report(self, path: str, *, strategy: Any = None, **kwargs: Any) -> str:
        """Write a self-contained HTML report (detail mode) to ``path``; returns the path.

        ``strategy``: the strategy object, its :class:`~fundarb.signals.toml.StrategySpec` or its file, for the
        header, the filter chart and the parameters. See :func:`fundarb.results.report.write_report`.
        """
        from fundarb.results.report import write_report

        return write_report(self, path, strategy=strategy, **kwargs)

    def __repr__(self) -> str:
        kind = "portfolio" if self.portfolio else "independent"
        return (f"<Result {self.mode}, {kind}: {len(self.groups)} account(s), {len(self.members)} leg pair(s) × "
                f"{len(self.market.index)} bars of {self.market.label or 'market data'}>")
