"""The manifest reader of :mod:`fundarb.data.fetch`: a TOML file holding the arguments of
:func:`~fundarb.data.fetch.fetch`, at its top level or in a ``[fetch]`` table."""

from __future__ import annotations

import os
import tomllib
from typing import Any

from fundarb.data.validate import require_file
from fundarb.errors import ConfigError, DataError, did_you_mean

__all__ = ["MANIFEST_KEYS", "read_manifest"]

MANIFEST_KEYS = ("exchange", "symbols", "since", "until", "timeframe", "out", "api_url", "tiers_file",
                 "max_retries", "timeout", "chunk_rows")


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The :func:`~fundarb.data.fetch.fetch` arguments of a TOML manifest (top level or a ``[fetch]`` table)."""
    p = os.fspath(path)
    if os.path.exists(p) and not os.path.isfile(p):  # a FIFO would block the read forever
        try:
            require_file(p, "manifest")
        except DataError as exc:
            raise ConfigError(str(exc)) from None
    try:
        with open(p, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"manifest not found: {p}") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {p}: {exc}") from exc
    if isinstance(doc.get("fetch"), dict):
        doc = doc["fetch"]
    unknown = [k for k in doc if k not in MANIFEST_KEYS]
    if unknown:
        raise ConfigError(f"{p}: unknown key {unknown[0]!r}{did_you_mean(unknown[0], MANIFEST_KEYS)}; "
                          f"keys: {', '.join(MANIFEST_KEYS)}")
    for key in ("symbols", "since"):
        if key not in doc:
            raise ConfigError(f"{p}: '{key}' is required")
    return dict(doc)
