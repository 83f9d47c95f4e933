"""One way to print numbers in reports, the CLI and JSON: thousands separators, fixed decimals, no float noise.

A value within :data:`ZERO_TOL` of zero is zero (``1.00187e-12`` of insurance-fund loss is rounding in the
accounting identity, not money), in every output.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["STAT_KINDS", "ZERO_TOL", "clean_value", "fmt_number", "fmt_stat", "stat_label"]

ZERO_TOL = 1e-9
"""Absolute values below this print (and serialise) as 0."""

_PERCENT = ("total_return", "cagr", "volatility", "max_drawdown", "time_in_market", "realised_apr_on_capital",
            "funding_apr_on_capital", "funding_kept_share", "quoted_apr_on_capital")
_RATIO = ("sharpe", "sortino", "calmar")
_COUNT = ("n_trades", "n_liquidations", "events", "bars")
_DAYS = ("max_drawdown_days", "break_even_days")
STAT_KINDS: dict[str, str] = {**dict.fromkeys(_PERCENT, "percent"), **dict.fromkeys(_RATIO, "ratio"),
                              **dict.fromkeys(_COUNT, "count"), **dict.fromkeys(_DAYS, "days")}
"""How each statistic prints; anything else is money in the quote currency (2 decimals)."""

_LABELS = {"cagr": "CAGR", "n_trades": "trades", "n_liquidations": "liquidations", "funding_pnl": "funding",
           "basis_pnl": "basis (spot + perp)", "realised_apr_on_capital": "realised APR on capital",
           "funding_apr_on_capital": "funding APR on capital", "funding_kept_share": "funding kept",
           "quoted_apr_on_capital": "bot's quoted APR on capital (mean while held)",
           "insurance_fund_loss": "insurance fund loss", "liquidation_fees": "liquidation fees"}


def stat_label(key: str) -> str:
    """A statistic's name in words (``max_drawdown`` → ``max drawdown``)."""
    return _LABELS.get(key, key.replace("_", " "))


def clean_value(v: Any) -> Any:
    """JSON-ready scalar: numpy → Python, NaN/inf → None, |x| < 1e-9 → 0, timestamps → ISO text."""
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, np.integer | int):
        return int(v)
    if isinstance(v, np.floating | float):
        f = float(v)
        if not math.isfinite(f):
            return None
        return 0.0 if abs(f) < ZERO_TOL else f
    if isinstance(v, pd.Timestamp):
        return None if pd.isna(v) else v.isoformat()
    if v is pd.NaT:
        return None
    return v


def fmt_number(v: Any, decimals: int = 2, *, percent: bool = False, missing: str = "—") -> str:
    """``12,575.30``; ``12.34 %`` with ``percent`` (``v`` a fraction); ``missing`` for NaN/None; −0 → 0."""
    if v is None or (isinstance(v, float | np.floating) and math.isnan(v)) or v is pd.NaT:
        return missing
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    f = float(v)
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    if abs(f) < ZERO_TOL:
        f = 0.0
    if percent:
        f *= 100.0
    text = f"{f:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")
    return text + (" %" if percent else "")


def fmt_stat(key: str, v: Any) -> str:
    """A statistic printed the way :data:`STAT_KINDS` says (percent 2 dp, ratios 2 dp, days 1 dp, money 2 dp)."""
    if isinstance(v, str) and key in ("start", "end"):
        v = pd.Timestamp(v)
    if isinstance(v, pd.Timestamp):
        return "—" if pd.isna(v) else f"{v:%Y-%m-%d %H:%M}"
    if isinstance(v, str):
        return v
    kind = STAT_KINDS.get(key, "money")
    if kind == "percent":
        return fmt_number(v, 2, percent=True)
    if kind == "count":
        return fmt_number(None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v))
    if kind == "days":
        return fmt_number(v, 1)
    return fmt_number(v, 2)
