"""Maintenance-margin tiers (ccxt ``fetch_leverage_tiers`` format) and liquidation prices (DESIGN.md §5)."""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numba as nb
import numpy as np

from fundarb.engine.layout import TIER_CUM, TIER_MAX, TIER_MIN, TIER_MMR
from fundarb.errors import ConfigError, DataError, did_you_mean

__all__ = ["Tiers", "check_tiers", "flat_tiers", "liquidation_price", "load_tiers", "tiers_from_ccxt"]

Tiers = np.ndarray
"""A tier table: float64 array of shape (n, 4), rows ``(min_notional, max_notional, mmr, cum)`` sorted."""


def _real(name: str, value: Any, rng: str) -> float:
    """``value`` as a float if it is a finite real number (not a bool); ConfigError naming ``name`` otherwise."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number {rng}; got {value!r}")
    return float(value)


def _check_mmr(mmr: Any) -> float:
    v = _real("mmr", mmr, "in [0, 1)")
    if not 0 <= v < 1:
        raise ConfigError(f"mmr must be in [0, 1), got {mmr!r}")
    return v


def flat_tiers(mmr: float) -> Tiers:
    """One tier covering every notional with maintenance margin rate ``mmr`` and ``cum = 0``."""
    return np.array([[0.0, np.inf, _check_mmr(mmr), 0.0]])


def check_tiers(table: Any, *, source: str = "tiers") -> Tiers:
    """Return ``table`` as a float64 tier table after checking its shape and values; ConfigError otherwise.

    A tier table has shape ``(n, 4)`` with ``n ≥ 1`` rows ``(min_notional, max_notional, mmr, cum)`` sorted by
    notional: ``0 ≤ min_notional < max_notional``, ``max_notional`` increasing from row to row (the last row
    also covers every notional above it), every ``mmr`` in ``[0, 1)`` and every ``cum`` finite.
    """
    try:
        arr = np.asarray(table)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: a tier table must be a numeric array of rows "
                          f"(min_notional, max_notional, mmr, cum): {exc}") from exc
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ConfigError(f"{source}: a tier table must be a numeric array of rows "
                          f"(min_notional, max_notional, mmr, cum); got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != 4:
        raise ConfigError(f"{source}: a tier table must have shape (n, 4) with n ≥ 1, rows "
                          f"(min_notional, max_notional, mmr, cum); got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    lo, hi, mmr, cum = arr.T
    for i in range(arr.shape[0]):
        row = f"{source}: tier {i + 1}"
        if not (math.isfinite(lo[i]) and lo[i] >= 0):
            raise ConfigError(f"{row}: min_notional must be a finite number ≥ 0; got {lo[i]!r}")
        if not hi[i] > lo[i]:
            raise ConfigError(f"{row}: max_notional must be > min_notional ({lo[i]:g}); got {hi[i]!r}")
        if not 0 <= mmr[i] < 1:
            raise ConfigError(f"{row}: mmr must be in [0, 1); got {mmr[i]!r}")
        if not math.isfinite(cum[i]):
            raise ConfigError(f"{row}: cum must be finite; got {cum[i]!r}")
        if i > 0 and not (hi[i] > hi[i - 1] and lo[i] >= lo[i - 1]):
            raise ConfigError(f"{row}: tiers must be sorted by notional (max_notional {hi[i]:g} after "
                              f"{hi[i - 1]:g})")
    return arr


def tiers_from_ccxt(rows: Sequence[Mapping[str, Any]], *, source: str = "tiers") -> Tiers:
    """Convert one market's ccxt leverage tiers to a tier table.

    ``cum`` is read from Binance's ``info.cum`` when present, otherwise derived so that the maintenance margin
    is continuous across tier boundaries (``cum_i = cum_{i-1} + min_i · (mmr_i − mmr_{i-1})``).
    """
    if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Sequence) or not rows:
        raise DataError("expected a non-empty list of tiers in ccxt's fetch_leverage_tiers format", source=source)
    parsed = []
    for i, r in enumerate(rows):
        try:
            if not isinstance(r, Mapping):
                raise TypeError(f"a tier must be an object, got {type(r).__name__}")
            lo = _tier_number(r.get("minNotional") or 0.0, "minNotional")
            hi = _tier_number(r["maxNotional"], "maxNotional") if r.get("maxNotional") is not None else np.inf
            mmr = _tier_number(r["maintenanceMarginRate"], "maintenanceMarginRate")
            info = r.get("info") or {}
            cum = _tier_number(info["cum"], "info.cum") if isinstance(info, Mapping) and info.get("cum") is not None \
                else None
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"tier {i + 1} is malformed: {exc}", source=source, row=i + 1) from exc
        if not 0 <= mmr < 1:
            raise DataError(f"tier {i + 1}: maintenanceMarginRate must be in [0, 1), got {mmr!r}", source=source,
                            row=i + 1)
        parsed.append((lo, hi, mmr, cum))
    out = np.zeros((len(parsed), 4))
    for i, (lo, hi, mmr, cum) in enumerate(sorted(parsed, key=lambda t: t[0])):
        if cum is None:
            cum = 0.0 if i == 0 else out[i - 1, 3] + lo * (mmr - out[i - 1, 2])
        out[i] = (lo, hi, mmr, cum)
    out[-1, 1] = np.inf
    try:
        return check_tiers(out, source=source)
    except ConfigError as exc:
        raise DataError(str(exc)) from exc


def _tier_number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise TypeError(f"{key} must be a number, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and key != "maxNotional"):
        raise ValueError(f"{key} must be finite, got {value!r}")
    return v


def load_tiers(path: str | os.PathLike[str], symbol: str) -> Tiers:
    """Read ``symbol``'s tiers from a JSON file in ccxt's ``fetch_leverage_tiers`` format.

    ``symbol`` may be the ccxt perpetual (``"BTC/USDT:USDT"``) or a base (``"BTC"``: USDT-margined assumed).
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise DataError("leverage tiers file not found", source=p)
    if not os.path.isfile(p):
        raise DataError("leverage tiers file is not a regular file", source=p)
    if not isinstance(symbol, str) or not symbol.strip():
        raise ConfigError(f"symbol must be a non-empty string like 'BTC' or 'BTC/USDT:USDT'; got {symbol!r}")
    try:
        with open(p, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read leverage tiers (ccxt's fetch_leverage_tiers JSON): {exc}", source=p) from exc
    if not isinstance(data, dict):
        raise DataError("expected a JSON object symbol → tiers (ccxt's fetch_leverage_tiers format), "
                        f"got {type(data).__name__}", source=p)
    key = symbol if symbol in data else f"{symbol.split('/')[0].upper()}/USDT:USDT"
    if key not in data:
        raise DataError(f"no tiers for {symbol!r}{did_you_mean(key, data)}", source=p)
    return tiers_from_ccxt(data[key], source=f"{p}[{key}]")


@nb.njit(cache=True, inline="always")
def tier_of(tiers: np.ndarray, notional: float) -> int:
    """Row of the tier whose ``[min, max)`` holds ``notional`` (the last one above all)."""
    n = tiers.shape[0]
    for i in range(n):
        if notional < tiers[i, TIER_MAX]:
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
        p = (margin + tiers[i, TIER_CUM] - b * entry) / (q * tiers[i, TIER_MMR] - b)
        if p < 0.0:
            p = 0.0
        n = q * p
        if n >= tiers[i, TIER_MIN] and (n < tiers[i, TIER_MAX] or i == tiers.shape[0] - 1):
            return p
    # no tier consistent (only possible at a boundary through rounding): use the tier of the entry notional
    i = tier_of(tiers, q * entry)
    return max((margin + tiers[i, TIER_CUM] - b * entry) / (q * tiers[i, TIER_MMR] - b), 0.0)


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
        Entry price (finite, > 0).
    qty
        Base quantity (finite, > 0).
    margin
        Isolated margin balance (finite, > 0), above the maintenance margin at entry.
    mmr
        Flat maintenance margin rate in [0, 1) (default 0.005) when ``tiers`` is None; not with ``tiers``.
    tiers
        ccxt leverage tiers of the market, or a tier table from :func:`tiers_from_ccxt` (checked by
        :func:`check_tiers`).
    mm_basis
        ``"mark"``: maintenance margin on the notional at the liquidation price (the exchange's rule, used by
        the engine). ``"entry"``: on the entry notional (traders' guides).

    Returns
    -------
    float
        The mark price at which the position is liquidated (0 for a long that no price liquidates).

    Raises
    ------
    ConfigError
        On any input outside the ranges above (booleans and NaN/inf included) or a malformed tier table.

    Examples
    --------
    >>> round(liquidation_price("long", 30_000, 0.1, 300, mmr=0.005), 3)
    27135.678
    >>> liquidation_price("long", 30_000, 0.1, 300, mmr=0.005, mm_basis="entry")
    27150.0
    """
    if not isinstance(side, str) or side not in ("long", "short"):
        raise ConfigError(f"side must be 'long' or 'short', got {side!r}{did_you_mean(str(side), ['long', 'short'])}")
    if not isinstance(mm_basis, str) or mm_basis not in ("mark", "entry"):
        raise ConfigError(f"mm_basis must be 'mark' or 'entry', got {mm_basis!r}"
                          f"{did_you_mean(str(mm_basis), ['mark', 'entry'])}")
    entry_f = _positive("entry", entry)
    qty_f = _positive("qty", qty)
    margin_f = _positive("margin", margin)
    if tiers is not None and mmr is not None:
        raise ConfigError("give mmr (a flat maintenance margin rate) or tiers, not both")
    if tiers is None:
        table = flat_tiers(0.005 if mmr is None else mmr)
    elif isinstance(tiers, np.ndarray):
        table = check_tiers(tiers)
    else:
        try:
            table = tiers_from_ccxt(tiers)
        except DataError as exc:
            raise ConfigError(str(exc)) from exc
    b = qty_f if side == "long" else -qty_f
    i = tier_of(table, qty_f * entry_f)
    mm = qty_f * entry_f * float(table[i, 2]) - float(table[i, 3])
    if margin_f <= mm:
        raise ConfigError(f"margin {margin_f:g} must be above the maintenance margin at entry ({mm:g} = "
                          f"{qty_f:g} × {entry_f:g} × mmr {table[i, 2]:g} − cum {table[i, 3]:g}): at or below it "
                          "the position is liquidated at once")
    if mm_basis == "mark":
        price = float(liq_price_mark(table, b, entry_f, margin_f))
    else:
        price = max(entry_f + (mm - margin_f) / b, 0.0)
    if not math.isfinite(price):
        raise ConfigError(f"entry {entry_f:g}, qty {qty_f:g} and margin {margin_f:g} are too large or too small for a "
                          f"liquidation price in floating point (got {price})")
    return price


def _positive(name: str, value: Any) -> float:
    v = _real(name, value, "> 0")
    if not v > 0:
        raise ConfigError(f"{name} must be a finite number > 0; got {value!r}")
    return v
