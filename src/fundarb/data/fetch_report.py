"""Reports of :mod:`fundarb.data.fetch`: per file, per run, and the error that says what is saved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from fundarb.errors import FundarbError

__all__ = ["FetchError", "FetchReport", "FileReport", "iso", "iso_ms"]


# --------------------------------------------------------------------------------------------------- errors
class FetchError(FundarbError):
    """A fetch stopped: what failed, what is saved, and how to resume."""

    def __init__(self, message: str, *, saved: Sequence[FileReport] = (), resume: str | None = None) -> None:
        super().__init__(message)
        self.saved = list(saved)
        self.resume = resume


# --------------------------------------------------------------------------------------------------- reports
@dataclass
class FileReport:
    """One store file after a fetch."""

    symbol: str
    kind: str
    path: str
    rows_before: int = 0
    rows: int = 0
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    covered_from: int | None = None
    covered_to: int | None = None
    requests: int = 0
    target_to: int | None = None
    note: str = ""
    target_from: int | None = None

    @property
    def rows_added(self) -> int:
        return self.rows - self.rows_before

    @property
    def complete(self) -> bool:
        if self.target_to is None or self.covered_to is None or self.covered_to < self.target_to:
            return False
        return self.target_from is None or (self.covered_from is not None and self.covered_from <= self.target_from)

    def describe(self) -> str:
        span = f"{iso(self.first)} → {iso(self.last)}" if self.rows else "no rows"
        text = f"{self.path}: {self.rows} rows, {span}"
        if self.covered_to is not None and not self.complete:
            text += f" (complete up to {iso_ms(self.covered_to)}; the rest is not fetched yet)"
        return text


@dataclass
class FetchReport:
    """What a fetch did."""

    exchange: str
    out: str
    files: list[FileReport] = field(default_factory=list)
    tiers_path: str | None = None
    notes: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def rows_added(self) -> int:
        return sum(f.rows_added for f in self.files)

    def summary(self) -> str:
        lines = [f"fetched {self.exchange} into {self.out}: {self.rows_added} new rows, {self.requests} requests"]
        for f in self.files:
            lines.append(f"  {f.symbol:<16} {f.kind:<8} +{f.rows_added:<7} {f.describe()}")
        if self.tiers_path:
            lines.append(f"  leverage tiers: {self.tiers_path}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    __str__ = summary


def iso(ts: pd.Timestamp | None) -> str:
    return "-" if ts is None else ts.strftime("%Y-%m-%d %H:%M")


def iso_ms(ms: int) -> str:
    return iso(pd.Timestamp(ms, unit="ms", tz="UTC"))
