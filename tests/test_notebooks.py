"""The notebooks execute on the demo data (a real Jupyter kernel, via nbclient) and draw at least one figure.

Each ``notebooks/<name>.ipynb`` has a jupytext twin ``<name>.py`` (percent format) with the same cells, and is
committed with its outputs. The kernel inherits this process's environment (``PYTHONPATH=src``), and
``FUNDARB_DATA=demo`` makes every notebook use the synthetic demo dataset whatever the caller has set. The
kernel runs in ``notebooks/``, so this checkout's ``src`` is put first on its ``PYTHONPATH`` (a relative
``PYTHONPATH=src`` would otherwise fall through to whichever fundarb is installed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SRC = NOTEBOOK_DIR.parent / "src"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
EXPECTED = {"funding_regimes", "choosing_parameters", "liquidation_risk"}


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def _images(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_every_notebook_is_there_with_its_twin():
    assert {p.stem for p in NOTEBOOKS} >= EXPECTED
    for p in NOTEBOOKS:
        assert p.with_suffix(".py").is_file(), f"{p.name} has no jupytext twin {p.stem}.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_twin_in_sync_and_outputs_stored(path):
    stored = nbformat.read(path, as_version=4)
    twin = jupytext.read(path.with_suffix(".py"))
    assert _cells(stored) == _cells(twin), f"{path.name} and {path.stem}.py differ: run `jupytext --sync`"
    params = [c for c in stored.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "DATA = None" in params[0].source
    assert _images(stored) >= 1, f"{path.name} is committed without its figures"
    assert not [o for c in stored.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_on_demo_and_draws(path, monkeypatch):
    monkeypatch.setenv("FUNDARB_DATA", "demo")
    paths = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SRC), *paths]))
    nb = jupytext.read(path.with_suffix(".py"))
    nb.cells.append(nbformat.v4.new_code_cell("import fundarb\nprint('fundarb from', fundarb.__file__)"))
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    assert _images(nb) >= 1
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "demo (synthetic)" in text and "SYNTHETIC data" in text
    assert f"fundarb from {SRC / 'fundarb' / '__init__.py'}" in text
