"""Strategy files: a TOML description of a strategy, its costs and its capital (see ``strategies/*.toml``).

::

    [strategy]
    type = "carry"          # or "portfolio"
    window = "3d"
    entry = 0.10
    direction = "auto"

    [costs]                 # optional: fields of fundarb.Costs, or preset = "taker" | "maker" | "zero"
    perp_fee = 0.0005

    [backtest]              # optional
    capital = 10000

Every problem — unknown table or key (with "did you mean …?"), a value of the wrong type or out of range — raises
:class:`~fundarb.errors.ConfigError` naming the file, the table and key, and what is allowed.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundarb.data.validate import require_file
from fundarb.engine.config import Costs, check_keys
from fundarb.errors import ConfigError, DataError, did_you_mean
from fundarb.signals.carry import FundingCarry
from fundarb.signals.portfolio import TopNRotation

__all__ = ["STRATEGY_TYPES", "StrategySpec", "load_strategy"]

STRATEGY_TYPES: dict[str, type[FundingCarry] | type[TopNRotation]] = {"carry": FundingCarry,
                                                                      "portfolio": TopNRotation}
"""``type`` in ``[strategy]`` → the strategy class it builds."""

TABLES = ("strategy", "costs", "backtest")
BACKTEST_KEYS = ("capital",)
COST_PRESETS = ("taker", "maker", "zero")


@dataclass(frozen=True)
class StrategySpec:
    """A strategy loaded from a file, with the costs and capital the file asks for.

    Attributes
    ----------
    strategy
        The strategy object.
    costs
        From the ``[costs]`` table, or None when the file has none (the caller's default applies).
    capital
        From ``[backtest] capital``, or None.
    source
        The file it came from.
    """

    strategy: FundingCarry | TopNRotation
    costs: Costs | None
    capital: float | None
    source: str


def _table(doc: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    val = doc.get(name, {})
    if not isinstance(val, dict):
        raise ConfigError(f"{where}: '{name}' must be a table ([{name}]), got {val!r}")
    return val


def load_strategy(path: str | os.PathLike[str]) -> StrategySpec:
    """Read a strategy TOML file.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    StrategySpec
        The strategy (:class:`FundingCarry` for ``type = "carry"``, :class:`TopNRotation` for
        ``type = "portfolio"``), costs, capital and source.

    Raises
    ------
    ConfigError
        The file is missing or not valid TOML; a table or key is unknown; a value is invalid. The message names
        the file, the table and key, the allowed values, and the closest allowed name.
    """
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"strategy file must be a path (str or os.PathLike), got {type(path).__name__}")
    src = str(os.fspath(path))
    try:
        require_file(src, "strategy file")
    except DataError as e:
        why = e.reason.removeprefix("strategy file ").replace("not found", "does not exist")
        raise ConfigError(f"{src}: cannot read strategy file: it {why}") from None
    try:
        raw = Path(src).read_bytes()
    except OSError as e:
        raise ConfigError(f"{src}: cannot read strategy file ({e.strerror or e})") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{src}: not a valid TOML file: {e}") from None

    for key in doc:
        if key not in TABLES:
            raise ConfigError(f"{src}: unknown table [{key}]{did_you_mean(key, TABLES)}; allowed: "
                              f"{', '.join(f'[{t}]' for t in TABLES)}")
    if "strategy" not in doc:
        raise ConfigError(f"{src}: no [strategy] table; a strategy file needs one with "
                          f"type = {' or '.join(repr(t) for t in STRATEGY_TYPES)}")

    # [strategy]
    table = dict(_table(doc, "strategy", src))
    kind = table.pop("type", None)
    if kind is None:
        raise ConfigError(f"{src}: [strategy] needs a key 'type'; allowed: "
                          f"{', '.join(repr(t) for t in STRATEGY_TYPES)}")
    if kind not in STRATEGY_TYPES:
        raise ConfigError(f"{src}: [strategy] type must be one of {', '.join(repr(t) for t in STRATEGY_TYPES)}; "
                          f"got {kind!r}{did_you_mean(str(kind), STRATEGY_TYPES)}")
    cls = STRATEGY_TYPES[kind]
    names = cls.field_names()
    for key in table:
        if key not in names:
            raise ConfigError(f"{src}: [strategy] unknown key {key!r}{did_you_mean(key, [*names, 'type'])}; "
                              f"allowed for type = {kind!r}: type, {', '.join(names)}")
    if table.get("rebalance_every") == 0:
        table["rebalance_every"] = None
    ra = table.get("rebalance_at")
    if isinstance(ra, float) and math.isinf(ra):
        raise ConfigError(f"{src}: [strategy] rebalance_at = inf is withdrawn (it was a margin-ratio trigger): leave "
                          f"the key out for no cushion trigger, or give the share of the perp's margin cushion used, "
                          f"0 < rebalance_at < 1")
    try:
        strategy = cls(**table)
    except ConfigError as e:
        raise ConfigError(f"{src}: [strategy] {e}") from None

    # [costs]
    costs = None
    if "costs" in doc:
        ctab = dict(_table(doc, "costs", src))
        preset = ctab.pop("preset", "taker")
        if preset not in COST_PRESETS:
            raise ConfigError(f"{src}: [costs] preset must be one of {', '.join(repr(p) for p in COST_PRESETS)}; "
                              f"got {preset!r}{did_you_mean(str(preset), COST_PRESETS)}")
        try:
            check_keys(Costs, ctab, f"{src}: [costs] ")
            costs = getattr(Costs, preset)(**ctab)
        except ConfigError as e:
            msg = str(e)
            raise ConfigError(msg if msg.startswith(src) else f"{src}: [costs] {msg}") from None

    # [backtest]
    capital = None
    if "backtest" in doc:
        btab = _table(doc, "backtest", src)
        for key in btab:
            if key not in BACKTEST_KEYS:
                raise ConfigError(f"{src}: [backtest] unknown key {key!r}{did_you_mean(key, BACKTEST_KEYS)}; "
                                  f"allowed: {', '.join(BACKTEST_KEYS)}")
        if "capital" in btab:
            cap = btab["capital"]
            if isinstance(cap, bool) or not isinstance(cap, int | float) or not (cap > 0 and math.isfinite(cap)):
                raise ConfigError(f"{src}: [backtest] capital must be a positive finite number (quote currency, "
                                  f"e.g. USDT); got {cap!r}")
            capital = float(cap)
    return StrategySpec(strategy=strategy, costs=costs, capital=capital, source=src)
