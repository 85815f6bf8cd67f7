"""How a place in user code is written: ``app.py:12``, or ``In [7], line 3`` in a notebook.

Every label, printout, message and note that names a user's line writes it with
:func:`describe_location`, so a place reads the same in a drawing, ``print(trace)``,
``f.stats()``, an error and a warning. This module owns that one format; what a
place *is* (a file, a line, a function) is :class:`~.ir.Location`.

* Outside IPython a place is ``file:line`` (labels use the file's base name:
  ``app.py:12``).
* In IPython and Jupyter, a cell's code is compiled under a made-up file name
  (ipykernel: ``/tmp/ipykernel_<pid>/<hash>.py``; the terminal:
  ``<ipython-input-7-...>``) that means nothing to the reader. A place in a cell is
  written as the cell's execution count and line, ``In [7], line 3``, as IPython's
  own tracebacks write it (``Cell In[7], line 3``). The count comes from the running
  shell's compiler, which maps each cell's file name to the count it last ran under
  (``shell.compile._filename_map``, IPython >= 8). ipykernel names a cell's file
  after a hash of its text, so a cell re-run with other text gets a new name and its
  own count, and one re-run unchanged takes the new count (as in IPython's
  tracebacks, and as the notebook now shows it).
* A ``%%xcs`` cell compiles under a name of its own (``<xcs cell N>``), with lines
  shifted by the function around it: :func:`name_cell` records its count and the
  shift, so its places read as the notebook numbers the cell's lines.

A place is written when it is shown, not when it was recorded: a trace drawn after
its cell was re-run shows the cell's current count. IPython is never imported here:
with no shell running (a script; IPython merely imported) places are ``file:line``.
This module imports nothing from the rest of xcs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

__all__ = [
    "describe_location",
    "name_cell",
    "notebook_cell",
    "shorten_location",
    "warning_place",
]

# %%xcs cells: file name -> (execution count, what to add to a line number). One
# entry of a few bytes per %%xcs cell run in this process; never reused (the name
# holds a counter).
_xcs_cells: dict[str, tuple[int, int]] = {}


def describe_location(filename: str, line: int, *, short: bool = False) -> str:
    """A place in user code as labels and messages show it.

    Args:
        filename: The code's file name (``co_filename``).
        line: The line number in it.
        short: Only the file's base name (for labels); a cell is written the same
            either way.

    Returns:
        ``In [7], line 3`` for a line of a notebook cell of the running IPython shell,
        else ``/path/app.py:12`` (``app.py:12`` when ``short``).
    """
    cell = notebook_cell(filename)
    if cell is not None:
        count, shift = cell
        return f"{_cell_name(count)}, line {line + shift}"
    return f"{os.path.basename(filename) if short else filename}:{line}"


def warning_place(filename: str, line: int) -> tuple[str, int]:
    """The file name and line a warning about this place is shown at.

    ``warnings`` writes ``file:line: Category: message``; for a notebook cell the
    file is the cell (``In [7]:3: XCSWarning: ...``), not the kernel's temporary file.
    """
    cell = notebook_cell(filename)
    if cell is None:
        return filename, line
    count, shift = cell
    return _cell_name(count), line + shift


def shorten_location(text: str) -> str:
    """A place written by :func:`describe_location`, as a label shows it.

    ``/path/app.py:12`` becomes ``app.py:12``; a cell (``In [7], line 3``) and any
    other text stay as they are.
    """
    path, colon, line = text.rpartition(":")
    if not colon or not path or not line.isdigit():
        return text
    return f"{os.path.basename(path)}:{line}"


def notebook_cell(filename: str) -> tuple[int, int] | None:
    """The cell of the running IPython shell compiled under ``filename``, if any.

    Returns:
        The cell's execution count and what to add to the code's line numbers to
        get the cell's, or None (not a cell, or no shell running).
    """
    cell = _xcs_cells.get(filename)
    if cell is not None:
        return cell
    count = _shell_cells().get(filename)
    return (count, 0) if isinstance(count, int) else None


def name_cell(filename: str, count: int, shift: int) -> None:
    """Record that code compiled under ``filename`` is notebook cell ``count``.

    Args:
        filename: The name the cell's code was compiled under.
        count: The cell's execution count (``In [count]``).
        shift: What to add to the code's line numbers to get the cell's.
    """
    _xcs_cells[filename] = (count, shift)


def _cell_name(count: int) -> str:
    """A cell as the notebook labels it: ``In [7]``."""
    return f"In [{count}]"


def _shell_cells() -> Mapping[str, object]:
    """The running shell's map of cell file names to execution counts (or nothing)."""
    ipython = sys.modules.get("IPython")  # never imported here: only if already in use
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if callable(get_ipython) else None
    names = getattr(getattr(shell, "compile", None), "_filename_map", None)
    return names if isinstance(names, dict) else {}
