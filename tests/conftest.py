"""Shared fixtures: where the real data lives, and a skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when it is not there."""
    if not (SHARED_DATA / "binance").is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA} (../shared/data beside the project)")
    return SHARED_DATA
