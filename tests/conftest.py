"""Shared fixtures: where the real data lives, and a skip when it is absent.

The real-data folder is ``$FUNDARB_DATA`` when set, else ``../shared/data`` beside the project when present
(the same rule the benchmarks and notebooks use; see README, "Real data").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]

# Property tests draw the same examples on every run (CI must not pass or fail by luck); to explore new examples
# locally: HYPOTHESIS_PROFILE=explore python -m pytest tests/test_engine_vs_reference.py
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Drop Numba cache files older than the newest engine source.

    Numba checks a cached kernel against its own file only, but ``nb._group`` inlines the rules of
    ``steps.py``, ``liquidation.py``, ``rules.py`` and ``tiers.py``: after an edit there, the cache of ``nb.py``
    would still hold the old rules. A fresh checkout has no cache, so this matters for local runs only.
    """
    engine = ROOT / "src" / "fundarb" / "engine"
    cache = engine / "__pycache__"
    if not cache.is_dir():
        return
    newest = max(f.stat().st_mtime for f in engine.glob("*.py"))
    for f in [*cache.glob("*.nbi"), *cache.glob("*.nbc")]:
        if f.stat().st_mtime < newest:
            f.unlink(missing_ok=True)


def real_data_dir(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """``$FUNDARB_DATA`` if set (even if it does not exist: then the real-data tests skip), else ../shared/data."""
    env = os.environ if environ is None else environ
    given = env.get("FUNDARB_DATA", "").strip()
    return Path(given).expanduser().resolve() if given else (ROOT / ".." / "shared" / "data").resolve()


SHARED_DATA = real_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder (``$FUNDARB_DATA``, default ../shared/data); skips the test when it is absent."""
    if not (SHARED_DATA / "binance").is_dir():
        pytest.skip(f"real data not present at {SHARED_DATA} (set FUNDARB_DATA to the folder holding binance/ "
                    "and exchanges/)")
    return SHARED_DATA
