"""On a real Jupyter kernel, places in user code name the cell: ``In [7], line 3``.

A notebook built here is executed by nbclient on an ipykernel kernel, which compiles
each cell under a temporary file (``/tmp/ipykernel_<pid>/<hash>.py``). Trace labels,
drawings, ``print(trace)``, ``f.stats()``, error notes, error messages and warnings
must name the cell by the execution count the kernel gave it, and never that file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require

try:
    import nbclient
    import nbformat
except ImportError:  # pragma: no cover - the dev extra installs both
    nbclient = nbformat = None

ROOT = Path(__file__).resolve().parents[3]

OPS = """\
import json, functools, sys, time, warnings
if {root!r} not in sys.path:
    sys.path.insert(0, {root!r})
from ember import xcs

@xcs.op
def ask(q: str) -> str:
    time.sleep(0.02)
    return q.upper()

@xcs.op
def boom(q: str) -> str:
    raise ValueError("no answer to " + q)

@xcs.op
def slow(q: str) -> str:
    time.sleep(1.0)
    return q
"""

# Line numbers below are this cell's own (line 1 is the decorator).
PIPELINES = """\
@xcs.jit
def pipeline(qs):
    drafts = [ask(q) for q in qs]
    if drafts[0]:
        drafts.append(ask(drafts[1]))
    return drafts

@xcs.jit
def failing(q):
    return boom(q)

@xcs.jit(timeout=0.2)
def too_slow(q):
    return slow(q)

@functools.lru_cache(maxsize=0)
def cached(q):
    return [ask(q), ask(q)]
"""

EMIT = "def emit(tag, value):\n    print('ember-place:', tag, json.dumps(value))\n"

TRACE = """\
trace = xcs.trace(pipeline, ["a", "b"])
ops = [a["location"] for _, a in trace.graph.nodes(data=True) if a["kind"] == "op"]
emit("labels", ops)
emit("printed", str(trace))
emit("mermaid", trace.to_mermaid())
emit("chrome", [e["args"].get("location") for e in trace.to_chrome_trace()["traceEvents"]
                if "args" in e])
"""

STATS = """\
for _ in range(2):
    pipeline(["a", "b"])
emit("waits", pipeline.stats()["waits"])
"""

ERRORS = """\
try:
    failing("x")
except ValueError as error:
    emit("note", error.__notes__)
try:
    too_slow("x")
except xcs.OpTimeoutError as error:
    emit("timeout", str(error))
"""

WARNS = """\
xcs.jit(cached)("a")
"""

XCS_CELL = """\
%%xcs --trace cell_trace

x = ask("a")
y = ask(x)
"""


def _cells(source: list[str]) -> Any:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(text) for text in source]
    return notebook


def _emitted(cell: Any) -> dict[str, Any]:
    """What a cell printed with ``emit``, by tag."""
    text = "".join(o["text"] for o in cell.outputs if o.get("name") == "stdout")
    found = {}
    for line in text.splitlines():
        if line.startswith("ember-place: "):
            _, tag, value = line.split(" ", 2)
            found[tag] = json.loads(value)
    return found


def _stderr(cell: Any) -> str:
    return "".join(o["text"] for o in cell.outputs if o.get("name") == "stderr")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[list[str]], Any]:
    """Execute cells on a fresh kernel (in a scratch folder); the executed notebook."""
    require(nbclient is not None, "nbclient", "pip install -e '.[dev]'")

    def execute(source: list[str]) -> Any:
        notebook = _cells(source)
        folder = tmp_path_factory.mktemp("notebook")
        nbformat.write(notebook, folder / "places.ipynb")
        nbclient.NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
        ).execute()  # raises CellExecutionError naming the cell if any cell fails
        return notebook

    return execute


@pytest.fixture(scope="module")
def executed(run: Callable[[list[str]], Any]) -> Any:
    """The notebook: ops; pipelines; emit; uses; the pipelines' cell again, unchanged."""
    return run(
        [
            OPS.format(root=str(ROOT)),
            PIPELINES,
            EMIT,
            TRACE,
            STATS,
            ERRORS,
            WARNS,
            "%load_ext ember.xcs",
            XCS_CELL,
            "emit('cell', [a['location'] for _, a in cell_trace.graph.nodes(data=True) "
            "if a['kind'] == 'op'])",
            PIPELINES,  # the same text again: what re-running the cell does
            TRACE,
        ]
    )


def _no_kernel_file(text: str) -> None:
    assert "ipykernel_" not in text and not re.search(r"\.py:\d", text), text


def test_trace_labels_printout_and_drawings_name_the_cell(executed: Any) -> None:
    pipelines = executed.cells[1].execution_count
    found = _emitted(executed.cells[3])
    assert found["labels"] == [
        f"In [{pipelines}], line 3",
        f"In [{pipelines}], line 3",
        f"In [{pipelines}], line 5",
    ]
    assert f"op[ask]('a') @ In [{pipelines}], line 3" in found["printed"]
    assert f"waited 1x at In [{pipelines}], line 4 for a branch" in found["printed"]
    assert f"In [{pipelines}], line 5" in found["mermaid"]
    assert f"In [{pipelines}], line 3" in found["chrome"]
    # Displaying the trace (what a cell ending in `trace` shows) draws the same labels.
    for key in ("printed", "mermaid", "chrome"):
        _no_kernel_file(json.dumps(found[key]))


def test_stats_name_the_line_that_cost_parallelism_by_its_cell(executed: Any) -> None:
    pipelines = executed.cells[1].execution_count
    (wait,) = _emitted(executed.cells[4])["waits"]
    assert wait["line"] == f"In [{pipelines}], line 4" and wait["times"] == 2


def test_error_notes_and_messages_name_the_cell(executed: Any) -> None:
    pipelines = executed.cells[1].execution_count
    found = _emitted(executed.cells[5])
    (note,) = found["note"]
    assert note == (
        f"[ember.xcs] raised by op 'boom' (node %1) called at In [{pipelines}], line 10 with ('x')"
    )
    assert f"called at In [{pipelines}], line 14)" in found["timeout"]
    _no_kernel_file(note + found["timeout"])


def test_warnings_name_the_cell(executed: Any) -> None:
    pipelines = executed.cells[1].execution_count
    stderr = _stderr(executed.cells[6])
    # The function's own line (its decorator's), as a warning's file:line shows it.
    assert stderr.startswith(f"In [{pipelines}]:16: XCSWarning: xcs.jit cannot rewrite 'cached'")
    assert "ipykernel_" not in stderr


def test_a_cell_magic_cell_reads_as_the_notebook_numbers_its_lines(executed: Any) -> None:
    magic = executed.cells[8].execution_count
    assert _emitted(executed.cells[9])["cell"] == [f"In [{magic}], line 3", f"In [{magic}], line 4"]


def test_a_cell_run_again_gets_its_new_count(executed: Any) -> None:
    first, again = executed.cells[1].execution_count, executed.cells[10].execution_count
    assert again > first
    labels = _emitted(executed.cells[11])["labels"]
    assert labels == [f"In [{again}], line 3", f"In [{again}], line 3", f"In [{again}], line 5"]
