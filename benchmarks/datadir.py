"""The real-data folder the benchmarks read: ``$FUNDARB_DATA``, default ``../shared/data`` beside the project.

The same variable and default as the tests (``tests/conftest.py``) and the notebooks.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``$FUNDARB_DATA`` if set, else ``../shared/data`` beside the project."""
    given = os.environ.get("FUNDARB_DATA", "").strip()
    return Path(given).expanduser().resolve() if given else (ROOT / ".." / "shared" / "data").resolve()
