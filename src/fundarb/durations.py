"""Parsing durations written the way users write them: ``"8h"``, ``"3d"``, ``"30d"``, ``"1w"``, ``"90min"``."""

from __future__ import annotations

import re

import pandas as pd

from fundarb.errors import ConfigError

__all__ = ["parse_duration"]

_UNITS = {"s": "s", "sec": "s", "m": "min", "min": "min", "h": "h", "hr": "h", "d": "D", "day": "D", "days": "D",
          "w": "W", "wk": "W"}


def parse_duration(value: str | pd.Timedelta, *, name: str = "duration") -> pd.Timedelta:
    """Read a positive duration such as ``"3d"`` or ``"8h"``; raise ConfigError naming ``name`` otherwise."""
    if isinstance(value, pd.Timedelta):
        td = value
    else:
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*", str(value))
        unit = _UNITS.get(m.group(2).lower()) if m else None
        if m is None or unit is None:
            raise ConfigError(f"{name}: cannot read duration {value!r}; write e.g. '8h', '3d', '30d', '1w'")
        td = pd.Timedelta(float(m.group(1)), unit=unit)
    if td <= pd.Timedelta(0):
        raise ConfigError(f"{name} must be positive, got {value!r}")
    return td
