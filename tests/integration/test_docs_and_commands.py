"""The README and docs: their code runs, and CI runs the README's test command."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def shell_commands(path: Path) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_examples_run(path: Path, tmp_path: Path) -> None:
    blocks = python_blocks(path)
    if not blocks:
        pytest.skip("no python examples")
    script = tmp_path / "example.py"
    script.write_text("\n\n".join(blocks))  # one namespace per page, like reading it
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_command() -> None:
    commands = shell_commands(ROOT / "README.md")
    assert len(commands) == 2
    run, test = commands
    assert "python -m ember demo" in run
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_demo_runs_and_shows_the_speedup() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ember", "demo", "--width", "4", "--latency", "0.05"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "plain Python:" in result.stdout and "@xcs.jit:" in result.stdout
    assert re.search(r"\(\d+\.\dx faster, same answers\)", result.stdout)
    assert "op[judge]" in result.stdout


def test_the_demo_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ember", "demo", "--width", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "--width" in result.stderr
