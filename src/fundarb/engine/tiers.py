"""Maintenance-margin tiers (ccxt ``fetch_leverage_tiers`` format) and liquidation prices (DESIGN.md §5)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numba as nb
import numpy as np

from fundarb.errors import ConfigError, DataError, did_you_mean

__all__ = ["Tiers", "flat_tiers", "liquidation_price", "load_tiers", "tiers_from_ccxt"]

Tiers = np.ndarray
"""A tier table: float64 array of shape (n, 4), rows ``(min_notional, max_notional, mmr, cum)`` sorted."""


def flat_tiers(mmr: float) -> Tiers:
    """One tier covering every notional with maintenance margin rate ``mmr`` and ``cum = 0``."""
    if not 0 <= mmr < 1:
        raise ConfigError(f"mmr must be in [0, 1), got {mmr!r}")
    return np.array([[0.0, np.inf, float(mmr), 0.0]])


def tiers_from_ccxt(rows: Sequence[Mapping[str, Any]], *, source: str = "tiers") -> Tiers:
    """Convert one market's ccxt leverage tiers to a tier table.

    ``cum`` is read from Binance's ``info.cum`` when present, otherwise derived so that the maintenance margin
    is continuous across tier boundaries (``cum_i = cum_{i-1} + min_i · (mmr_i − mmr_{i-1})``).
    """
    if not rows:
        raise DataError("no tiers", source=source)
    out = np.zeros((len(rows), 4))
    for i, r in enumerate(sorted(rows, key=lambda r: float(r.get("minNotional") or 0.0))):
        try:
            lo = float(r.get("minNotional") or 0.0)
            hi = float(r["maxNotional"]) if r.get("maxNotional") is not None else np.inf
            mmr = float(r["maintenanceMarginRate"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"tier {i + 1} is malformed: {exc}", source=source, row=i + 1) from exc
        info = r.get("info") or {}
        if "cum" in info and info["cum"] is not None:
            cum = float(info["cum"])
        elif i == 0:
            cum = 0.0
        else:
            cum = out[i - 1, 3] + lo * (mmr - out[i - 1, 2])
        out[i] = (lo, hi, mmr, cum)
    out[-1, 1] = np.inf
    return out


def load_tiers(path: str | os.PathLike[str], symbol: str) -> Tiers:
    """Read ``symbol``'s tiers from a JSON file in ccxt's ``fetch_leverage_tiers`` format.

    ``symbol`` may be the ccxt perpetual (``"BTC/USDT:USDT"``) or a base (``"BTC"``: USDT-margined assumed).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DataError("leverage tiers file not found", source=p)
    with open(p) as fh:
        data = json.load(fh)
    key = symbol if symbol in data else f"{symbol.split('/')[0].upper()}/USDT:USDT"
    if key not in data:
        raise DataError(f"no tiers for {symbol!r}{did_you_mean(key, data)}", source=p)
    return tiers_from_ccxt(data[key], source=f"{p}[{key}]")


@nb.njit(cache=True)
def tier_of(tiers: np.ndarray, notional: float) -> int:
    """Row of the tier whose ``[min, max)`` holds ``notional`` (the last one above all)."""
    n = tiers.shape[0]
    for i in range(n):
        if notional < tiers[i, 1]:
            return i
    return n - 1


@nb.njit(cache=True)
def liq_price_mark(tiers: np.ndarray, b: float, entry: float, margin: float) -> float:
    """Liquidation price on the exchange rule: maintenance margin on the notional at that price.

    ``b`` is the signed perp quantity (negative short). Solves ``MB + b·(P − entry) = |b|·P·mmr − cum`` in the
    tier that holds ``|b|·P``.
    """
    q = abs(b)
    for i in range(tiers.shape[0]):
        p = (margin + tiers[i, 3] - b * entry) / (q * tiers[i, 2] - b)
        if p < 0.0:
            p = 0.0
        n = q * p
        if n >= tiers[i, 0] and (n < tiers[i, 1] or i == tiers.shape[0] - 1):
            return p
    # no tier consistent (only possible at a boundary through rounding): use the tier of the entry notional
    i = tier_of(tiers, q * entry)
    return max((margin + tiers[i, 3] - b * entry) / (q * tiers[i, 2] - b), 0.0)


def liquidation_price(
    side: str,
    entry: float,
    qty: float,
    margin: float,
    *,
    mmr: float | None = None,
    tiers: Sequence[Mapping[str, Any]] | np.ndarray | None = None,
    mm_basis: str = "mark",
) -> float:
    """Liquidation price of an isolated perpetual position (DESIGN.md §5).

    Parameters
    ----------
    side
        ``"long"`` or ``"short"``.
    entry
        Entry price.
    qty
        Base quantity (> 0).
    margin
        Isolated margin balance.
    mmr
        Flat maintenance margin rate (default 0.005) when ``tiers`` is None.
    tiers
        ccxt leverage tiers of the market, or a tier table from :func:`tiers_from_ccxt`.
    mm_basis
        ``"mark"``: maintenance margin on the notional at the liquidation price (the exchange's rule, used by
        the engine). ``"entry"``: on the entry notional (traders' guides).

    Returns
    -------
    float
        The mark price at which the position is liquidated.

    Examples
    --------
    >>> round(liquidation_price("long", 30_000, 0.1, 300, mmr=0.005), 3)
    27135.678
    >>> liquidation_price("long", 30_000, 0.1, 300, mmr=0.005, mm_basis="entry")
    27150.0
    """
    if side not in ("long", "short"):
        raise ConfigError(f"side must be 'long' or 'short', got {side!r}{did_you_mean(side, ['long', 'short'])}")
    if mm_basis not in ("mark", "entry"):
        raise ConfigError(
            f"mm_basis must be 'mark' or 'entry', got {mm_basis!r}{did_you_mean(mm_basis, ['mark', 'entry'])}")
    if not qty > 0 or not entry > 0:
        raise ConfigError("qty and entry must be > 0")
    if tiers is None:
        table = flat_tiers(0.005 if mmr is None else mmr)
    elif isinstance(tiers, np.ndarray):
        table = tiers
    else:
        table = tiers_from_ccxt(tiers)
    b = qty if side == "long" else -qty
    if mm_basis == "mark":
        return float(liq_price_mark(table, b, float(entry), float(margin)))
    i = tier_of(table, qty * entry)
    mm = qty * entry * table[i, 2] - table[i, 3]
    return float(entry + (mm - margin) / b)
