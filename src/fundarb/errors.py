"""Exceptions and warnings raised by fundarb.

Every problem with input data raises :class:`DataError`, whose message names the file (or source),
the column and the first offending row, so a user can open the file and see it.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable

__all__ = ["ConfigError", "DataError", "DataWarning", "FundarbError", "check_real", "did_you_mean", "is_real"]


class FundarbError(Exception):
    """Base class of fundarb's errors."""


class DataError(FundarbError, ValueError):
    """Input data is missing, malformed or inconsistent.

    Parameters
    ----------
    message
        What is wrong, in words.
    source
        The file or source the data came from.
    column
        The offending column, if any.
    row
        The 1-based data row (header excluded) of the first offending value, if any.
    value
        The offending value or timestamp, shown after the row.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        column: str | None = None,
        row: int | None = None,
        value: object = None,
    ) -> None:
        self.source = source
        self.column = column
        self.row = row
        self.value = value
        self.reason = message
        where = []
        if source is not None:
            where.append(str(source))
        if column is not None:
            where.append(f"column '{column}'")
        if row is not None:
            where.append(f"row {row}" + (f" ({value})" if value is not None else ""))
        super().__init__(": ".join([", ".join(where), message]) if where else message)


class ConfigError(FundarbError, ValueError):
    """A strategy, cost or engine option is unknown or out of range."""


class DataWarning(UserWarning):
    """Data is usable but suspicious (implausible funding, fallbacks, gaps)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def is_real(value: object) -> bool:
    """True for an int, float or NumPy number scalar; False for booleans (``True`` is not the number 1 here)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def check_real(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise ConfigError naming ``name`` when it is not a number (or a bool)."""
    if not is_real(value):
        raise ConfigError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    return float(value)  # type: ignore[arg-type]
