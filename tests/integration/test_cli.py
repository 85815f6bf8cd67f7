"""The command line as a user meets it: ``python -m ember`` in a subprocess, with its
output on a terminal (a pseudo-terminal) or on pipes, as in logs and scripts.

On a terminal the demo shows progress bars on stderr; on pipes it writes no ``\\r``
and nothing on stderr. ``--json`` is one JSON document. Mistakes (a bad ``--out``, a
typo'd model id, a missing key) are one line on stderr and a non-zero status, before
anything runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

import ember
from ember.models.providers.simulated import KNOWN_ANSWERS

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("--width", "2", "--questions", "1", "--latency", "0")
HELP_HEAD = "usage: python -m ember [-h] [--version] {demo,serve} ...\n"


def _env(**changes: str | None) -> dict[str, str]:
    """The environment of a run: this checkout importable first, ``changes`` applied."""
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def ember_cli(
    *args: str, cwd: Path | None = None, **env: str | None
) -> subprocess.CompletedProcess[str]:
    """``python -m ember *args`` with stdout and stderr on pipes (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "ember", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=_env(**env),
    )


def on_terminal(
    *args: str,
    cwd: Path,
    stdout_too: bool = True,
    size: tuple[int, int] = (24, 100),
    **env: str | None,
) -> tuple[int, str, str]:
    """``python -m ember *args`` with stderr (and stdout when ``stdout_too``) on a
    pseudo-terminal of ``size`` (rows, columns): ``(status, what the terminal showed,
    stdout)``, stdout being ``""`` when it went to the terminal too."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "ember", *args],
        stdin=follower,
        stdout=follower if stdout_too else subprocess.PIPE,
        stderr=follower,
        cwd=cwd,
        env=_env(**env),
    )
    os.close(follower)
    out_fd = process.stdout.fileno() if process.stdout else None
    open_fds = [leader] if out_fd is None else [leader, out_fd]
    received = {fd: bytearray() for fd in open_fds}
    deadline = time.monotonic() + 120
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(open_fds, [], [], 0.1)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: every writer closed the terminal
                chunk = b""
            received[fd] += chunk
            if not chunk:
                open_fds.remove(fd)
    status = process.wait(timeout=30)
    os.close(leader)
    if process.stdout:
        process.stdout.close()
    shown = received[leader].decode()
    piped = "" if out_fd is None else received[out_fd].decode()
    # The terminal shows "\n" as "\r\n"; a "\r" left after that is a bar redrawing itself.
    return status, shown.replace("\r\n", "\n"), piped


BAR = re.compile(r"(plain Python|@xcs\.jit): +\d+%\|")


# --- no command, --version --------------------------------------------------------------


def test_no_command_prints_the_help_and_succeeds() -> None:
    result = ember_cli()
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(HELP_HEAD)
    assert "    demo        run an ensemble -> judge pipeline plainly and under @jit\n" in (
        result.stdout
    )
    assert "  --version     show program's version number and exit\n" in result.stdout
    assert result.stdout.endswith("Run `python -m ember COMMAND --help` for a command's options.\n")


def test_version() -> None:
    result = ember_cli("--version")
    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"ember-xcs {ember.__version__}\n",
        "",
    )
    assert re.fullmatch(r"ember-xcs \d+\.\d+\.\d+\n", result.stdout)


def test_the_console_script_is_named_ember_in_its_help() -> None:
    # What the `ember` script (pyproject's [project.scripts]) runs, under its own name.
    code = "import sys; sys.argv[0] = 'ember'; from ember.__main__ import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_env()
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: ember [-h] [--version] {demo,serve} ...\n")


@pytest.mark.skipif(shutil.which("ember") is None, reason="the ember script is not installed")
def test_the_installed_console_script_behaves_the_same() -> None:
    script = shutil.which("ember")
    assert script is not None
    version = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and re.fullmatch(r"ember-xcs \S+\n", version.stdout)
    bare = subprocess.run([script], capture_output=True, text=True, timeout=60)
    assert bare.returncode == 0 and bare.stdout.startswith("usage: ember [-h] [--version]")


# --- progress bars: on a terminal only ----------------------------------------------------


def test_on_a_terminal_the_demo_shows_progress_bars(tmp_path: Path) -> None:
    status, shown, _ = on_terminal(
        "demo", "--width", "2", "--questions", "1", "--latency", "0.05", cwd=tmp_path
    )
    assert status == 0, shown
    assert BAR.search(shown) and "\r" in shown  # drawn, then redrawn in place
    assert {m.group(1) for m in BAR.finditer(shown)} == {"plain Python", "@xcs.jit"}
    assert "same answers" in shown


def test_a_terminal_of_unknown_size_shows_the_bars_too(tmp_path: Path) -> None:
    # A pseudo-terminal nobody sized (0 x 0: `script` in CI) once made tqdm hide them.
    status, shown, _ = on_terminal("demo", *SMALL, cwd=tmp_path, size=(0, 0))
    assert status == 0, shown
    assert {m.group(1) for m in BAR.finditer(shown)} == {"plain Python", "@xcs.jit"}


def test_piped_into_another_program_the_bars_stay_on_the_terminal(tmp_path: Path) -> None:
    # `python -m ember demo | cat`: the report goes down the pipe clean, the bars to the
    # terminal (stderr), where they are erased when done.
    status, shown, piped = on_terminal(
        "demo", "--width", "2", "--questions", "1", "--latency", "0.05",
        cwd=tmp_path, stdout_too=False,
    )  # fmt: skip
    assert status == 0, shown
    assert BAR.search(shown) and "same answers" not in shown
    assert "\r" not in piped and "same answers" in piped


def test_quiet_shows_no_bars_even_on_a_terminal(tmp_path: Path) -> None:
    status, shown, _ = on_terminal("demo", *SMALL, "--quiet", cwd=tmp_path)
    assert status == 0, shown
    assert not BAR.search(shown) and "\r" not in shown and "same answers" in shown


def test_without_a_terminal_nothing_redraws(tmp_path: Path) -> None:
    result = ember_cli(
        "demo", "--width", "2", "--questions", "2", "--latency", "0.02", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no bars: they would be lines of \r in a log
    assert "\r" not in result.stdout and not BAR.search(result.stdout)
    assert "2 questions x (2 drafts + 1 judge) = 6 calls; simulated model, 20 ms a call\n" in (
        result.stdout
    )


# --- what the demo answers ----------------------------------------------------------------


def test_the_answers_say_they_are_simulated_and_read_like_answers(tmp_path: Path) -> None:
    result = ember_cli("demo", "--width", "3", "--questions", "5", "--latency", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    lead = (
        "Answers from the simulated model simulated/chat (offline, canned); "
        "pass --model for a real one:\n"
    )
    assert lead in out
    block = out.split(lead, 1)[1].split("\n\n", 1)[0].splitlines()
    assert block[0::2] == [
        "  Why is the sky blue?",
        "  What makes bread rise?",
        "  Why do cats purr?",
        "  What causes the tides?",
        "  Why does ice float?",
    ]
    for answer, choices in zip(block[1::2], KNOWN_ANSWERS.values(), strict=True):
        assert answer.startswith("    -> ") and answer[7:] in choices
    assert "gravity\n" not in out  # the single words the simulation gives other prompts


def test_the_simulated_model_knows_every_demo_question() -> None:
    from ember import _demo, models, operators

    for question, choices in zip(_demo.QUESTIONS, KNOWN_ANSWERS.values(), strict=True):
        drafts = [models("simulated/chat", question, seed=s).text for s in range(40)]
        assert set(drafts) <= set(choices) and len(set(drafts)) >= 2  # they mostly agree
        assert max(set(drafts), key=drafts.count) == choices[0]
        assert drafts == [models("simulated/chat", question, seed=s).text for s in range(40)]
        final = operators.JudgeSynthesis("simulated/chat")(question, drafts[:8]).final_answer
        assert final in choices
    # Other prompts keep their single-word answers.
    assert models("simulated/chat", "Why is grass green?").text.isalpha()


def test_json_is_one_document_and_nothing_else(tmp_path: Path) -> None:
    drawing = tmp_path / "graph.svg"
    result = ember_cli(
        "demo", "--width", "3", "--questions", "2", "--latency", "0.02", "--json",
        "--out", str(drawing), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)  # the whole of stdout
    assert list(document) == [
        "model", "simulated", "base_url", "questions", "width", "calls", "plain_seconds",
        "jit_seconds", "speedup", "prepare_seconds", "same_answers", "answers", "ops",
        "parallel_groups", "drawing", "drawing_skipped",
    ]  # fmt: skip
    assert document["model"] == "simulated/chat" and document["simulated"] is True
    assert document["base_url"] is None
    assert (document["questions"], document["width"], document["calls"]) == (2, 3, 8)
    assert document["plain_seconds"] > document["jit_seconds"] > 0
    assert document["speedup"] == pytest.approx(
        document["plain_seconds"] / document["jit_seconds"], rel=0.01
    )
    assert document["same_answers"] is True
    questions = [a["question"] for a in document["answers"]]
    assert questions == ["Why is the sky blue?", "What makes bread rise?"]
    for item, choices in zip(document["answers"], KNOWN_ANSWERS.values(), strict=False):
        assert item["answer"] == item["plain_answer"] and item["answer"] in choices
    assert (document["ops"], document["parallel_groups"]) == (5, 3)  # 3 drafts, judge, parse
    assert document["drawing"] == str(drawing) and document["drawing_skipped"] is None
    assert drawing.read_text().lstrip().startswith(("<?xml", "<svg"))


# --- mistakes: one line, a non-zero status, nothing run --------------------------------


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("x.jpg", "--out x.jpg: cannot draw a .jpg file; use .svg, .png, .pdf or .dot "
         "(e.g. --out x.svg)"),
        ("graph", "--out graph: the file name needs an extension: .svg, .png, .pdf or .dot "
         "(e.g. --out graph.svg)"),
        ("no/such/folder/g.svg", "--out no/such/folder/g.svg: there is no folder "
         "no/such/folder; create it or choose another path"),
        (".", "--out .: that is a folder; name a file in it (e.g. --out ember-demo.svg)"),
    ],
)  # fmt: skip
def test_a_bad_out_is_one_line_of_command_line_advice(
    tmp_path: Path, out: str, message: str
) -> None:
    result = ember_cli("demo", *SMALL, "--out", out, cwd=tmp_path)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"error: {message}\n")
    assert "format=" not in result.stderr  # no Python advice on a command line
    assert list(tmp_path.iterdir()) == []


def test_a_drawing_that_cannot_be_written_is_reported_once(tmp_path: Path) -> None:
    # The folder is writable, but the file written first (then renamed) cannot be.
    (tmp_path / ".graph.svg.partial").mkdir()
    result = ember_cli("demo", *SMALL, "--out", "graph.svg", cwd=tmp_path)
    assert result.returncode == 1
    assert "same answers" in result.stdout  # the runs happened, the report was printed
    both = result.stdout + result.stderr
    assert both.count("graph.svg") == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: cannot write the drawing to 'graph.svg': ")


def test_a_typo_in_the_model_id_suggests_the_known_ids() -> None:
    result = ember_cli("demo", *SMALL, "--model", "gpt4o-mini")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: model id 'gpt4o-mini' names no provider: did you mean 'gpt-4o-mini' or "
        "'gpt-4.1-mini'? (Or write 'provider/model'; providers: anthropic, openai, simulated.)\n"
    )


def test_a_typo_in_the_provider_suggests_the_provider() -> None:
    result = ember_cli("demo", *SMALL, "--model", "opneai/gpt-4o-mini")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(
        "error: model id 'opneai/gpt-4o-mini': no provider named 'opneai' "
        "(did you mean 'openai'?); registered: anthropic, openai, simulated"
    )


def test_a_missing_key_is_reported_before_anything_runs(tmp_path: Path) -> None:
    pytest.importorskip("openai")  # without the SDK, that is what is reported
    # On a terminal, where a run would show its bars: none start.
    status, shown, _ = on_terminal(
        "demo", *SMALL, "--model", "gpt-4o-mini", cwd=tmp_path, OPENAI_API_KEY=None
    )
    assert (status, shown) == (
        2,
        "error: provider 'openai' needs an API key: set the environment variable "
        "OPENAI_API_KEY (keys are read from the environment only, never from code or logs)\n",
    )


def test_bad_numbers_are_argparse_errors() -> None:
    result = ember_cli("demo", "--questions", "9")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.endswith("python -m ember demo: error: --questions must be from 1 to 5\n")


# --- --cache: a second run of the demo answered by the response cache ----------------------

PLAIN_LINE = re.compile(r"^plain Python: +(\d+\.\d+) s", re.M)


def test_with_a_cache_the_demo_run_again_is_answered_by_it(tmp_path: Path) -> None:
    # Two invocations sharing a cache file, as a user runs the command twice.
    cache = tmp_path / "answers.sqlite3"
    args = ("demo", "--width", "2", "--questions", "2", "--latency", "0.1", "--cache", str(cache))
    first = ember_cli(*args, "--json", cwd=tmp_path)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    document = json.loads(first.stdout)
    assert list(document)[-6:] == [
        "cache_path", "plain_cached_calls", "jit_cached_calls", "jit_cache_off",
        "cached_seconds", "cached_calls",
    ]  # fmt: skip
    assert document["cache_path"] == str(cache) and cache.is_file()
    # A fresh cache: the plain run asks the model (6 calls of 100 ms, one after another),
    # the @jit run too (cache off, or it would get the plain run's answers), then the
    # second @jit run is answered by the cache.
    assert (document["plain_cached_calls"], document["jit_cached_calls"]) == (0, 0)
    assert document["jit_cache_off"] is True
    assert document["cached_calls"] == document["calls"] == 6
    assert document["plain_seconds"] > 0.5 and document["speedup"] > 1.5
    assert document["cached_seconds"] < document["plain_seconds"] / 5
    assert document["same_answers"] is True

    second = ember_cli(*args, cwd=tmp_path)  # the report, this time
    assert second.returncode == 0 and second.stderr == "", second.stderr
    out = second.stdout
    assert f"response cache: {cache} (6 answers in it)\n" in out
    assert "   (6 of 6 calls from the cache)\n" in out  # the plain run's line
    assert "(same answers; 6 of 6 calls from the cache)\n" in out  # @jit's: no speedup claimed
    assert "(@xcs.jit again: 6 of 6 calls from the cache, same answers)\n" in out
    assert "x faster" not in out
    match = PLAIN_LINE.search(out)
    assert match, out
    assert float(match.group(1)) < document["plain_seconds"] / 5  # no call slept its 100 ms
    answers = [line[7:] for line in out.splitlines() if line.startswith("    -> ")]
    assert answers == [item["answer"] for item in document["answers"]]
    assert "op[simulated/chat]('Why is the sky blue?', latency=0.1, seed=0)" in out
    assert out.count("  [cached]\n") == 3  # the traced question's calls: 2 drafts, the judge


def test_the_cache_without_a_path_is_the_default_file(tmp_path: Path) -> None:
    folder = tmp_path / "cache-dir"
    result = ember_cli("demo", *SMALL, "--cache", cwd=tmp_path, EMBER_CACHE_DIR=str(folder))
    assert result.returncode == 0, result.stderr
    default = folder / "responses.sqlite3"
    assert f"response cache: {default} (0 answers in it)\n" in result.stdout
    assert "(@xcs.jit again: 3 of 3 calls from the cache, same answers)\n" in result.stdout
    assert default.is_file()


def test_a_file_that_is_no_cache_is_one_line_of_advice(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.sqlite3"
    garbage.write_bytes(b"not a database, but a user's notes\n" * 200)
    before = garbage.read_bytes()
    result = ember_cli("demo", *SMALL, "--cache", str(garbage), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: the response cache {garbage} cannot be used: ")
    assert result.stderr.endswith(" or pass another --cache PATH\n")
    assert "models.cache" not in result.stderr  # no Python advice on a command line
    assert garbage.read_bytes() == before  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite3"]  # no drawing


def test_a_folder_as_the_cache_is_one_line_of_advice(tmp_path: Path) -> None:
    result = ember_cli("demo", *SMALL, "--cache", ".", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: --cache .: that is a folder; name a file in it (e.g. --cache responses.sqlite3)\n"
    )
    assert list(tmp_path.iterdir()) == []
