"""How a place in user code is written: ``file:line``, or a notebook cell's ``In [7], line 3``.

Cells come from a real IPython shell (its compiler's map of cell file names to
execution counts); the executed-notebook test (``tests/integration/xcs/
test_notebook_locations.py``) checks the same on a real Jupyter kernel.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from ember.xcs._internal.errors import XCSWarning, warn_at, warn_caller
from ember.xcs._internal.ir import Location
from ember.xcs._internal.locations import (
    describe_location,
    name_cell,
    notebook_cell,
    shorten_location,
    warning_place,
)


def test_outside_a_notebook_a_place_is_file_and_line() -> None:
    assert describe_location("/src/app.py", 12) == "/src/app.py:12"
    assert describe_location("/src/app.py", 12, short=True) == "app.py:12"
    assert describe_location("<string>", 3, short=True) == "<string>:3"
    assert notebook_cell("/src/app.py") is None
    assert warning_place("/src/app.py", 12) == ("/src/app.py", 12)
    where = Location("/src/app.py", 12, "answer")
    assert (str(where), where.short) == ("/src/app.py:12", "app.py:12")


@pytest.mark.parametrize(
    ("text", "short"),
    [
        ("/src/app.py:12", "app.py:12"),
        ("/a:b/app.py:7", "app.py:7"),  # a colon in a folder's name
        ("In [7], line 3", "In [7], line 3"),
        ("<unknown>:0", "<unknown>:0"),
        ("no place", "no place"),
        ("", ""),
    ],
)
def test_labels_shorten_a_written_place_to_its_base_name(text: str, short: str) -> None:
    assert shorten_location(text) == short


def test_import_ember_does_not_import_ipython() -> None:
    code = "import sys, ember, ember.xcs; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real IPython shell (its compiler maps cell file names to execution counts)."""
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    ip = interactiveshell.InteractiveShell.instance()
    yield ip
    interactiveshell.InteractiveShell.clear_instance()


def _defined(ip: Any, source: str, name: str) -> Any:
    """Run ``source`` as a stored cell; return the function ``name`` it defines."""
    result = ip.run_cell(source, store_history=True)
    assert result.success, result.error_in_exec or result.error_before_exec
    return ip.user_ns[name]


def test_a_line_of_a_cell_is_written_as_the_cell(shell: Any) -> None:
    first = _defined(shell, "x = 1\ndef f():\n    return 1\n", "f")
    count = shell.execution_count - 1  # the count the cell ran under
    code = first.__code__
    assert notebook_cell(code.co_filename) == (count, 0)
    assert describe_location(code.co_filename, 3) == f"In [{count}], line 3"
    assert describe_location(code.co_filename, 3, short=True) == f"In [{count}], line 3"
    where = Location(code.co_filename, 3, "f")
    assert str(where) == where.short == f"In [{count}], line 3"
    assert shorten_location(str(where)) == str(where)
    assert warning_place(code.co_filename, 3) == (f"In [{count}]", 3)
    # A file outside the shell's cells is still file:line while a shell runs.
    assert describe_location("/src/app.py", 12, short=True) == "app.py:12"
    # Run again, the cell gets the new count (a new file name here; the same one on
    # a Jupyter kernel, whose map then holds the new count).
    again = _defined(shell, "x = 1\ndef f():\n    return 1\n", "f")
    assert describe_location(again.__code__.co_filename, 3) == f"In [{count + 1}], line 3"


def test_with_no_shell_running_a_cell_name_is_file_and_line(shell: Any) -> None:
    filename = _defined(shell, "def f():\n    return 1\n", "f").__code__.co_filename
    type(shell).clear_instance()  # IPython imported, no shell: what a script sees
    assert "IPython" in sys.modules
    assert describe_location(filename, 2) == f"{filename}:2"
    assert warning_place(filename, 2) == (filename, 2)


def test_a_named_cell_shows_its_count_and_shifted_lines() -> None:
    name_cell("<xcs cell test>", 12, -1)  # what %%xcs records: code line 3 is cell line 2
    assert notebook_cell("<xcs cell test>") == (12, -1)
    assert describe_location("<xcs cell test>", 3, short=True) == "In [12], line 2"
    assert warning_place("<xcs cell test>", 3) == ("In [12]", 2)


def test_warnings_about_a_cell_name_the_cell_not_the_kernel_file(shell: Any) -> None:
    fn = _defined(shell, "import math\ndef f():\n    return 1\n", "f")
    count = shell.execution_count - 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_at("something about f", fn.__code__.co_filename, 2)
        warn_at("something about app.py", "/src/app.py", 5)
    assert [(w.category, w.filename, w.lineno) for w in caught] == [
        (XCSWarning, f"In [{count}]", 2),
        (XCSWarning, "/src/app.py", 5),
    ]
    text = warnings.formatwarning(
        str(caught[0].message), XCSWarning, caught[0].filename, caught[0].lineno
    )
    assert text.startswith(f"In [{count}]:2: XCSWarning: something about f")


def _warns_at_its_caller() -> None:
    warn_caller("said at the caller's line", stacklevel=2)


def test_warn_caller_names_the_line_as_warnings_warn_does() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # once per line, by the caller's registry
        for _ in range(3):
            _warns_at_its_caller()  # the line named
    line = test_warn_caller_names_the_line_as_warnings_warn_does.__code__.co_firstlineno + 4
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, line)]
