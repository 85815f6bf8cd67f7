"""Type checkers read the public API as users write it.

``tests/typing/uses.py`` holds correct uses (each ``reveal_type`` line says the type it
must reveal) and incorrect ones (each says the mypy error it must draw). mypy and
pyright (the checker in VS Code's Pylance) check it from a directory outside the
project, so ``ember`` is found only through the installed package -- the editable
install of the README included -- as in a user's project.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ember
import ember.models
from ember.models import _typed
from tests.conftest import require

USES = Path(__file__).parents[1] / "typing" / "uses.py"
PYRIGHT = Path(__file__).parents[1] / "tools" / "pyright" / "node_modules" / ".bin" / "pyright"
_MESSAGE = re.compile(r"^uses\.py:(\d+): (error|note): (.*?)(?:  \[([a-z-]+)\])?$")
_EXPECTED = re.compile(r"\S  # ([ER]): (.+)$")


def _normal(type_text: str) -> str:
    """A revealed type without the ``builtins.`` prefix older mypy versions print."""
    return type_text.replace("builtins.", "").strip()


def _expectations() -> tuple[dict[int, set[str]], dict[int, str]]:
    errors: dict[int, set[str]] = {}
    reveals: dict[int, str] = {}
    for number, line in enumerate(USES.read_text().splitlines(), start=1):
        found = _EXPECTED.search(line)
        if found is None:
            continue
        kind, text = found.groups()
        if kind == "E":
            errors[number] = {code.strip() for code in text.split(",")}
        else:
            reveals[number] = _normal(text)
    return errors, reveals


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, str, str, str]]:
    """mypy's messages on ``uses.py``, checked where only the installed ember is found."""
    where = tmp_path_factory.mktemp("typing")
    shutil.copy(USES, where / "uses.py")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(where / ".mypy_cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            "uses.py",
        ],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
    )
    messages = []
    for line in run.stdout.splitlines():
        found = _MESSAGE.match(line)
        assert found is not None, f"unexpected mypy output line: {line}\n{run.stdout}"
        number, level, text, code = found.groups()
        messages.append((int(number), level, text, code or ""))
    assert run.returncode in (0, 1), run.stdout + run.stderr
    return messages


def test_ember_is_found_through_the_installed_package(
    mypy_output: list[tuple[int, str, str, str]],
) -> None:
    missing = [m for m in mypy_output if m[3] in ("import-not-found", "import-untyped")]
    assert missing == [], (
        "mypy cannot find ember from outside the project: the editable install must be a "
        f"path entry type checkers follow (pyproject's package-dir): {missing}"
    )


def test_correct_uses_reveal_the_decorated_functions_types(
    mypy_output: list[tuple[int, str, str, str]],
) -> None:
    _, reveals = _expectations()
    assert len(reveals) >= 20
    revealed = {
        number: _normal(text.removeprefix("Revealed type is ").strip('"'))
        for number, level, text, _ in mypy_output
        if level == "note" and text.startswith("Revealed type is")
    }
    assert revealed == reveals


def test_incorrect_uses_draw_their_errors_and_nothing_else_does(
    mypy_output: list[tuple[int, str, str, str]],
) -> None:
    errors, _ = _expectations()
    assert len(errors) >= 12
    found: dict[int, set[str]] = {}
    for number, level, _, code in mypy_output:
        if level == "error":
            found.setdefault(number, set()).add(code)
    assert found == errors, "\n".join(
        f"{n}: {t} [{c}]" for n, level, t, c in mypy_output if level == "error"
    )


def test_the_typed_models_module_lists_exactly_the_modules_public_names() -> None:
    declared = {name for name in vars(_typed.models) if not name.startswith("_")}
    assert declared == set(ember.models.__all__)
    for name in declared:
        value = vars(_typed.models)[name]
        target = value.__func__ if isinstance(value, staticmethod) else value
        assert target is getattr(ember.models, name), name


def test_calling_the_typed_form_is_a_model_call() -> None:
    # Nothing calls it at run time, but if something did it would be the module call.
    response = _typed.models("simulated/chat", "Say hi.")
    assert response == ember.models("simulated/chat", "Say hi.")
    assert "models" not in vars(ember) or vars(ember)["models"] is ember.models


def test_pyright_flags_the_same_lines_and_reveals_the_same_types(tmp_path: Path) -> None:
    require(PYRIGHT.exists(), "pyright", "npm ci --prefix tests/tools/pyright")
    shutil.copy(USES, tmp_path / "uses.py")
    run = subprocess.run(
        [str(PYRIGHT), "--outputjson", "--pythonpath", sys.executable, "uses.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(run.stdout)
    errors, reveals = _expectations()
    found = report["generalDiagnostics"]
    error_lines = {d["range"]["start"]["line"] + 1 for d in found if d["severity"] == "error"}
    assert error_lines == set(errors), [d["message"] for d in found]
    revealed = {}
    for d in found:
        if d["severity"] == "information" and " is " in d["message"]:
            revealed[d["range"]["start"]["line"] + 1] = d["message"].rsplit(" is ", 1)[1]
    # pyright spells a signature its own way ("(question: str)"); the rest read alike.
    same = {n: t.strip('"') for n, t in revealed.items() if "JitFunction" not in t}
    expected = {
        n: t.replace("ember.models.response.", "")
        .replace("ember.models.binding.", "")
        .replace("ember.models.errors.", "")
        .replace("ember.xcs._trace.", "")
        for n, t in reveals.items()
        if "JitFunction" not in t
    }
    assert same == expected
    assert revealed.keys() == reveals.keys()
