"""`Result`: what :func:`fundarb.backtest` returns — pandas views of the kernel's arrays, statistics, checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fundarb.data.market import MarketData
from fundarb.engine import nb as k
from fundarb.errors import ConfigError

__all__ = ["COMPONENTS", "Result"]

COMPONENTS = ("funding", "spot_pnl", "perp_pnl", "fees", "spread", "slippage", "borrow", "liquidation_fees",
              "insurance_fund_loss")
"""PnL components of the DESIGN §6 identity (cumulative, in quote currency)."""

_SIGN = {"funding": 1, "spot_pnl": 1, "perp_pnl": 1, "fees": -1, "spread": -1, "slippage": -1, "borrow": -1,
         "liquidation_fees": -1, "insurance_fund_loss": 1}


@dataclass(frozen=True, eq=False)
class Result:
    """A backtest's outcome. Columns are symbols, or (swept parameters…, symbol) for a grid.

    Detail mode holds every series; sweep mode only totals and statistics (``equity`` and friends raise).
    """

    market: MarketData
    columns: pd.Index
    col_sym: np.ndarray
    params: np.ndarray
    series: np.ndarray | None
    totals: np.ndarray
    records: np.ndarray
    target: np.ndarray
    mode: str
    config: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ series
    def _series(self, row: int) -> pd.DataFrame:
        if self.series is None:
            raise ConfigError("this result was run with mode='sweep', which keeps totals only; "
                              "run with mode='detail' for time series")
        return pd.DataFrame(self.series[row], index=self.market.index, columns=self.columns, copy=False)

    @property
    def capital(self) -> pd.Series:
        """Starting capital per column."""
        return pd.Series(self.params[k.P_CAPITAL], index=self.columns, name="capital")

    @property
    def equity(self) -> pd.DataFrame:
        """Equity marked at each bar's close (spot at spot close, perp at mark close)."""
        return self._series(k.EQUITY)

    @property
    def components(self) -> dict[str, pd.DataFrame]:
        """Cumulative PnL components per bar (DESIGN §6), plus ``basis_pnl`` = spot_pnl + perp_pnl."""
        out = {name: self._series(i) for i, name in enumerate(k.SERIES) if name in COMPONENTS}
        out["basis_pnl"] = out["spot_pnl"] + out["perp_pnl"]
        return out

    @property
    def spot_qty(self) -> pd.DataFrame:
        """Signed spot quantity held at each bar's close (negative: borrowed and sold)."""
        return self._series(k.SPOT_QTY)

    @property
    def perp_qty(self) -> pd.DataFrame:
        """Signed perp quantity at each bar's close (negative: short)."""
        return self._series(k.PERP_QTY)

    @property
    def positions(self) -> pd.DataFrame:
        """Direction held at each bar's close: +1 carry, −1 reverse carry, 0 flat (a lone leg counts)."""
        a, b = self.spot_qty.to_numpy(), self.perp_qty.to_numpy()
        d = np.where(a != 0, np.sign(a), -np.sign(b)).astype(np.int8)
        return pd.DataFrame(d, index=self.market.index, columns=self.columns)

    @property
    def trades(self) -> pd.DataFrame:
        """Trade log: entries, exits, flips, rebalances and liquidations with prices, quantities and costs."""
        if self.series is None:
            raise ConfigError("the trade log is kept in mode='detail' only")
        r = self.records
        df = pd.DataFrame(r, columns=list(k.REC_FIELDS))
        out = pd.DataFrame({
            "column": [self.columns[int(c)] for c in r[:, 0]] if len(r) else [],
            "time": self.market.index[r[:, 1].astype(np.int64)] if len(r) else pd.DatetimeIndex([], tz="UTC"),
            "kind": [k.KINDS[int(x)] for x in r[:, 2]] if len(r) else [],
        })
        for f in k.REC_FIELDS[3:]:
            out[f] = df[f].to_numpy()
        return out

    @property
    def liquidations(self) -> pd.DataFrame:
        """The liquidation rows of :attr:`trades` (fill price in ``perp_price`` or ``spot_price``)."""
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
            if pos is not None:
                cols = np.flatnonzero(self.col_sym == j)
                crossed = []
                for g0, _g1, n in gaps:
                    i0 = self.market.index.get_loc(g0)
                    held = pos[max(i0 - 1, 0), cols].any()
                    if held:
                        crossed.append(f"{g0:%Y-%m-%d %H:%M} ({n} bar{'s' if n > 1 else ''})")
                if crossed:
                    out.append(f"{s}: the position was held across {len(crossed)} data gap(s), marked at the last "
                               f"known prices, no order or liquidation check there: {', '.join(crossed[:10])}"
                               + (" …" if len(crossed) > 10 else ""))
            else:
                out.append(f"{s}: {len(gaps)} data gap(s) inside the active span ({sum(g[2] for g in gaps)} bars)")
        return out

    # ------------------------------------------------------------------ totals and statistics
    def totals_frame(self) -> pd.DataFrame:
        """Final values of equity and every component, per column (both modes)."""
        t = self.totals
        data = {"final_equity": t[k.EQUITY]}
        for name in COMPONENTS:
            data[name] = t[k.SERIES.index(name)]
        return pd.DataFrame(data, index=self.columns)

    def identity_error(self) -> float:
        """Largest relative violation of the DESIGN §6 identity over every bar and column (detail mode)."""
        if self.series is None:
            eq = self.totals[k.EQUITY][None, :]
            comps = {n: self.totals[k.SERIES.index(n)][None, :] for n in COMPONENTS}
        else:
            eq = self.series[k.EQUITY]
            comps = {n: self.series[k.SERIES.index(n)] for n in COMPONENTS}
        rhs = self.params[k.P_CAPITAL][None, :] + sum(_SIGN[n] * v for n, v in comps.items())
        scale = np.maximum(np.abs(eq), self.params[k.P_CAPITAL][None, :])
        return float(np.max(np.abs(eq - rhs) / scale))

    def stats(self) -> pd.DataFrame:
        """DESIGN §8 statistics, one row per column.

        Returns are per bar, the first against the starting capital, from each column's first tradable bar;
        periods per year come from the bar size (8,760 for 1h bars). Computed from the kernel's streaming
        totals, so detail and sweep mode give the same numbers.
        """
        t = self.totals
        ppy = self.market.periods_per_year
        cap = self.params[k.P_CAPITAL]
        final = t[k.EQUITY]
        n = t[k.N_R]
        with np.errstate(divide="ignore", invalid="ignore"):
            years = n / ppy
            total_return = final / cap - 1.0
            cagr = np.where(final > 0, np.power(np.maximum(final / cap, 1e-300), 1.0 / years) - 1.0, -1.0)
            mean = t[k.SUM_R] / n
            var = np.maximum(t[k.SUM_R2] - n * mean * mean, 0.0) / (n - 1)
            std = np.sqrt(var)
            vol = std * np.sqrt(ppy)
            sharpe = np.where(std > 0, mean / std * np.sqrt(ppy), np.nan)
            down = np.sqrt(t[k.SUM_DOWN2] / n)
            sortino = np.where(down > 0, mean / down * np.sqrt(ppy), np.nan)
            mdd = t[k.MAX_DD]
            calmar = np.where(mdd < 0, cagr / np.abs(mdd), np.nan)
            in_mkt = t[k.BARS_IN_MARKET] / n
            funding = t[k.FUNDING]
            pnl = final - cap
            days_in_mkt = t[k.BARS_IN_MARKET] * self.market.bar_hours / 24.0
            lev = self.params[k.P_LEVERAGE]
            notional = cap * lev / (lev + 1.0)
            rt_cost = 2.0 * notional * (self.params[k.P_SPOT_FEE] + self.params[k.P_PERP_FEE]
                                        + 2 * self.params[k.P_HALF_SPREAD] + 2 * self.params[k.P_SLIP])
            daily_funding = funding / days_in_mkt
            data = {
                "start": [self.market.index[int(i)] if i >= 0 else pd.NaT for i in t[k.FIRST_BAR]],
                "end": [self.market.index[int(i)] if i >= 0 else pd.NaT for i in t[k.LAST_BAR]],
                "final_equity": final,
                "total_return": total_return,
                "cagr": cagr,
                "volatility": vol,
                "sharpe": sharpe,
                "sortino": sortino,
                "max_drawdown": mdd,
                "max_drawdown_days": t[k.MAX_DD_BARS] * self.market.bar_hours / 24.0,
                "calmar": calmar,
                "time_in_market": in_mkt,
                "n_trades": t[k.N_TRADES].astype(np.int64),
                "n_liquidations": t[k.N_LIQ].astype(np.int64),
                "funding_pnl": funding,
                "spot_pnl": t[k.SPOT_PNL],
                "perp_pnl": t[k.PERP_PNL],
                "basis_pnl": t[k.SPOT_PNL] + t[k.PERP_PNL],
                "fees": t[k.FEES],
                "spread": t[k.SPREAD],
                "slippage": t[k.SLIPPAGE],
                "borrow": t[k.BORROW],
                "liquidation_fees": t[k.LIQ_FEES],
                "insurance_fund_loss": t[k.INSURANCE],
                "realised_apr_on_capital": pnl / cap / years,
                "funding_apr_on_capital": funding / cap / years,
                "funding_kept_share": np.where(funding > 0, pnl / funding, np.nan),
                "break_even_days": np.where(daily_funding > 0, rt_cost / daily_funding, np.inf),
            }
        return pd.DataFrame(data, index=self.columns)

    def __repr__(self) -> str:
        return (f"<Result {self.mode}: {len(self.columns)} column(s) × {len(self.market.index)} bars of "
                f"{self.market.label or 'market data'}>")
