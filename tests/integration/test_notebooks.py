"""Every notebook in ``notebooks/`` runs from top to bottom on a real Jupyter kernel.

Each is executed afresh (in a scratch folder, for the files it writes); no cell may
raise, traces must display as drawings, and what the saved notebook printed about
graph shapes (parallel groups: no timings) must come out the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

try:
    import nbclient
    import nbformat
except ImportError:  # pragma: no cover - the dev extra installs both
    nbclient = nbformat = None

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def shapes(notebook: Any) -> list[str]:
    """Printed lines about graph shapes (deterministic, unlike timings)."""
    lines = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                lines += [line for line in output["text"].splitlines() if line.startswith("[[")]
    return lines


def drawings_in(notebook: Any) -> list[Any]:
    """Outputs that show a trace as a drawing."""
    outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
    return [o for o in outputs if "image/svg+xml" in o.get("data", {})]


def test_there_are_notebooks() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_patterns.ipynb",
        "03_models_and_operators.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_shows_its_traces(path: Path, tmp_path: Path) -> None:
    require(nbclient is not None, "nbclient", "pip install -e '.[dev]'")
    saved = nbformat.read(path, as_version=4)
    fresh = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        fresh, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises CellExecutionError naming the cell if any cell fails
    outputs = [o for cell in fresh.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    drawings = drawings_in(fresh)
    assert drawings and all("text/vnd.mermaid" in o["data"] for o in drawings)
    assert shapes(fresh) == shapes(saved)
    assert drawings_in(saved), "saved without outputs: run python notebooks/build.py"
