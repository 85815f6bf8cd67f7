"""Every notebook in ``notebooks/`` runs from top to bottom on a real Jupyter kernel.

Each is executed afresh, in ``notebooks/`` as Jupyter runs it; no cell may raise,
traces must display as drawings, and what the saved notebook printed about graph
shapes (parallel groups: no timings) must come out the same. Every pipeline a
notebook runs must have its ideal parallel structure (:data:`NOTEBOOK_WAVES`). A
notebook writes files only into a temporary folder of its own: a file it leaves in
``notebooks/`` fails the run (and is removed, so the checkout stays clean).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conftest import require

try:
    import nbclient
    import nbformat
except ImportError:  # pragma: no cover - the dev extra installs both
    nbclient = nbformat = None

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


class Waves(NamedTuple):
    """A pipeline a notebook runs, and its ideal structure.

    Right after the code cell containing ``after``, ``trace`` (an expression giving a
    ``Trace`` in the notebook's namespace) must hold ``ideal``: how many ops named
    ``names`` each parallel group holds (``tests.helpers.waves``). All independent
    calls in one group; a call that needs an earlier answer in a later one.
    """

    notebook: str
    pipeline: str
    after: str
    trace: str
    names: tuple[str, ...]
    ideal: list[int]


NOTEBOOK_WAVES = [
    # Five drafts at once, then the judge (also what `fast = xcs.jit(ensemble)` runs).
    Waves("01_quickstart", "ensemble", "xcs.trace(ensemble,", "trace", ("ask", "judge"), [5, 1]),
    Waves("02_patterns", "fan_out", "xcs.trace(fan_out,", "trace", ("ask",), [4]),
    # A %%xcs cell: four drafts at once, then the judge.
    # Plain openai SDK calls in a loop, parsed right away: all six at once.
    Waves(
        "03_models_and_operators",
        "plain_sdk",
        "def plain_sdk",
        'xcs.trace(plain_sdk, ["a", "b", "c"])',
        ("chat.completions.create[gpt-4o-mini]",),
        [3],
    ),
    Waves("02_patterns", "xcs_cell", "%%xcs --trace", "cell_trace", ("ask", "judge"), [4, 1]),
    # Each question's `if` holds the next question back (what the hint says): the
    # branch of one question and the next draft share a wave, no more.
    Waves(
        "02_patterns",
        "one_at_a_time",
        "def one_at_a_time",
        "xcs.trace(one_at_a_time, questions)",
        ("ask",),
        [1, 2, 1, 2],
    ),
    # Each refinement needs its draft: four drafts at once, then four refinements.
    Waves("02_patterns", "refine", "xcs.trace(refine,", "trace", ("ask",), [4, 4]),
    # The `if` needs the first answer; the two follow-ups then run together.
    Waves("02_patterns", "check", "xcs.trace(check,", "trace", ("ask",), [1, 2]),
    # A `try` around each call: one call at a time, as the notebook explains.
    Waves("02_patterns", "careful", "xcs.trace(careful,", "trace", ("flaky",), [1, 1, 1]),
    Waves(
        "02_patterns",
        "careful_and_fast",
        "xcs.trace(careful_and_fast,",
        "trace",
        ("flaky_or_note", "flaky"),  # the flaky call inside the op is a plain call
        [3],
    ),
    Waves(
        "02_patterns",
        "strict",
        "def strict(",
        'xcs.trace(strict, ["a", "bad", "c"], execute=False)',  # it raises when run
        ("flaky",),
        [3],
    ),
    # Both branches' 8 drafts at once, both verifications, then the judge (also what
    # `fast = xcs.jit(answer)` runs).
    Waves(
        "03_models_and_operators",
        "answer",
        "xcs.trace(answer,",
        "trace",
        ("simulated/chat",),
        [8, 2, 1],
    ),
    Waves(
        "03_models_and_operators",
        "remote_answer",
        "remote_answer = xcs.jit(",
        'xcs.trace(remote_answer, "Why is the sky blue?", execute=False)',  # the server sees none
        ("openai/chat",),
        [8],
    ),
    # One wave of 8 in the graph; the provider's max_concurrency=2 runs it 2 by 2.
    Waves(
        "03_models_and_operators",
        "limited",
        "limited_trace = xcs.trace(",
        "limited_trace",
        ("limited/chat",),
        [8],
    ),
]

PROBE = "ember-waves:"  # how a probe cell's printed line starts


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


def probe_cell(wave: Waves) -> Any:
    """A cell printing ``wave``'s pipeline and its waves, marked to be taken out again."""
    code = (
        f"import sys as _sys\n"
        f"if {str(ROOT)!r} not in _sys.path:\n"
        f"    _sys.path.append({str(ROOT)!r})\n"
        f"from tests.helpers import waves as _waves\n"
        f"print({PROBE!r}, {wave.pipeline!r}, _waves({wave.trace}, *{wave.names!r}))"
    )
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["ember_probe"] = True
    return cell


def execute(path: Path, folder: Path) -> tuple[Any, dict[str, list[int]]]:
    """Run the notebook with a probe cell after each cell NOTEBOOK_WAVES names.

    Returns the executed notebook, probe cells taken out, and the waves they printed.
    """
    notebook = nbformat.read(path, as_version=4)
    probes = [wave for wave in NOTEBOOK_WAVES if wave.notebook == path.stem]
    cells = []
    for cell in notebook.cells:
        cells.append(cell)
        for wave in probes:
            if cell.cell_type == "code" and wave.after in cell.source:
                cells.append(probe_cell(wave))
    assert len(cells) == len(notebook.cells) + len(probes), "each `after` names one cell"
    notebook.cells = cells
    nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()  # raises CellExecutionError naming the cell if any cell fails
    found = {}
    for cell in [c for c in notebook.cells if c.metadata.get("ember_probe")]:
        # The kernel may send one print in several stream messages.
        line = "".join(o["text"] for o in cell.outputs if o.get("name") == "stdout").strip()
        _, pipeline, counts = line.split(" ", 2)
        found[pipeline] = json.loads(counts)
    notebook.cells = [c for c in notebook.cells if not c.metadata.get("ember_probe")]
    return notebook, found


class Run(NamedTuple):
    """A notebook executed once: the notebook, its waves, the files it left behind."""

    notebook: Any
    waves: dict[str, list[int]]
    left: list[str]


@pytest.fixture(scope="module")
def executed() -> Callable[[Path], Run]:
    """Each notebook executed once (with its probes) for all the tests that read it."""
    runs: dict[Path, Run] = {}

    def run(path: Path) -> Run:
        require(nbclient is not None, "nbclient", "pip install -e '.[dev]'")
        if path not in runs:
            folder = path.parent
            before = set(folder.iterdir())
            try:
                notebook, waves = execute(path, folder)  # beside itself, as Jupyter runs it
            finally:
                left = sorted(set(folder.iterdir()) - before)
                for extra in left:  # the test reports them; the checkout stays clean
                    shutil.rmtree(extra) if extra.is_dir() else extra.unlink()
            runs[path] = Run(notebook, waves, [extra.name for extra in left])
        return runs[path]

    return run


def test_there_are_notebooks() -> None:
    assert [path.name for path in NOTEBOOKS] == [
        "01_quickstart.ipynb",
        "02_patterns.ipynb",
        "03_models_and_operators.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_shows_its_traces(path: Path, executed: Callable[[Path], Run]) -> None:
    fresh = executed(path).notebook
    saved = nbformat.read(path, as_version=4)
    outputs = [o for cell in fresh.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    drawings = drawings_in(fresh)
    assert drawings and all("text/vnd.mermaid" in o["data"] for o in drawings)
    assert shapes(fresh) == shapes(saved)
    assert drawings_in(saved), "saved without outputs: run python notebooks/build.py"


@pytest.mark.parametrize("wave", NOTEBOOK_WAVES, ids=lambda w: f"{w.notebook}:{w.pipeline}")
def test_notebook_pipeline_gets_its_ideal_waves(
    wave: Waves, executed: Callable[[Path], Run]
) -> None:
    found = executed(ROOT / "notebooks" / f"{wave.notebook}.ipynb").waves
    assert found[wave.pipeline] == wave.ideal


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_leaves_no_file_beside_itself(path: Path, executed: Callable[[Path], Run]) -> None:
    assert executed(path).left == []
    # Nor did an earlier run: only the notebooks, their builder and the README are there.
    kept = {"README.md", "build.py", "__pycache__", ".ipynb_checkpoints"}
    assert [
        extra.name
        for extra in sorted(path.parent.iterdir())
        if extra.name not in kept and extra.suffix != ".ipynb"
    ] == []


def test_every_traced_or_jitted_cell_has_its_waves_asserted() -> None:
    # A new pipeline in a notebook needs its line in NOTEBOOK_WAVES.
    require(nbformat is not None, "nbformat", "pip install -e '.[dev]'")
    for path in NOTEBOOKS:
        waves = [w for w in NOTEBOOK_WAVES if w.notebook == path.stem]
        marks = [w.after for w in waves] + [f"xcs.jit({w.pipeline})" for w in waves]
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and (
                "xcs.trace(" in cell.source or "xcs.jit" in cell.source
            ):
                assert any(mark in cell.source for mark in marks), f"{path.name}:\n{cell.source}"
