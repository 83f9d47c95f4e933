"""Leverage tiers for :mod:`fundarb.data.fetch`: from the exchange where it serves them publicly, else from the
user's file in ccxt's ``fetch_leverage_tiers`` format; merged into ``<out>/<exchange>/leverage_tiers.json``."""

from __future__ import annotations

import contextlib
import functools
import json
import os
from typing import TYPE_CHECKING, Any

from fundarb.data.fetch_report import FetchError
from fundarb.data.store import write_json_atomic
from fundarb.errors import ConfigError

if TYPE_CHECKING:
    from fundarb.data.fetch_fetcher import Fetcher

__all__ = ["fetch_tiers"]


def fetch_tiers(self: Fetcher) -> None:
    """Fetch or read the tiers of ``self.symbols`` and merge them into the store's ``leverage_tiers.json``."""
    path = os.path.join(self.out, self.exchange, "leverage_tiers.json")
    stored: dict[str, Any] = {}
    if os.path.exists(path):
        with contextlib.suppress(OSError, ValueError), open(path) as fh:
            stored = dict(json.load(fh))
    if self.tiers_file is not None:
        try:
            with open(self.tiers_file) as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read leverage tiers file {self.tiers_file}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.tiers_file}: expected ccxt's fetch_leverage_tiers format, "
                              "an object {symbol: [tier, ...]}")
        got = {s: data[s] for s in self.symbols if s in data}
        missing = [s for s in self.symbols if s not in data]
        if missing:
            self.report.notes.append(f"{self.tiers_file} has no leverage tiers for {', '.join(missing)}")
    elif self.profile.tiers is None:
        missing = [s for s in self.symbols if s not in stored]
        if missing:
            self.report.notes.append(
                f"leverage tiers not fetched for {', '.join(missing)}: {self.exchange} serves them only to "
                "authenticated accounts; pass --tiers-file with tiers in ccxt's fetch_leverage_tiers format")
        got = {}
    else:
        got = {}
        try:
            self.load_markets()
            if self.profile.tiers == "all":
                res = self.call(f"{self.exchange} leverage tiers",
                                lambda: self.ex.fetch_leverage_tiers(self.symbols))
                got = {s: res[s] for s in self.symbols if s in (res or {})}
            else:
                for sym in self.symbols:
                    got[sym] = self.call(f"{self.exchange} leverage tiers of {sym}",
                                         functools.partial(self.ex.fetch_market_leverage_tiers, sym))
        except FetchError as exc:
            self.report.notes.append(f"leverage tiers not fetched: {exc}")
    if got:
        merged = dict(stored)
        merged.update(json.loads(json.dumps(got, default=str)))
        if merged != stored:
            write_json_atomic(path, merged)
    if os.path.exists(path):
        self.report.tiers_path = path

