"""The README and docs: each python block runs alone (as a reader would copy it), each
pipeline in them has its ideal parallel structure, pages name the extras their examples
need, and CI runs the README's test command."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import tokenize
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

from ember import _demo as _demo_module
from ember import models, xcs
from tests.helpers import waves

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


class Block(NamedTuple):
    """A python code block of a page: the line of its opening fence, and its code."""

    line: int
    code: str


def page_blocks(path: Path) -> list[Block]:
    """The page's python code blocks, in order (also those indented in lists)."""
    return blocks_in(path.read_text())


def blocks_in(text: str) -> list[Block]:
    return [
        Block(text.count("\n", 0, found.start()) + 1, textwrap.dedent(found.group(2)))
        for found in re.finditer(r"^( *)```python\n(.*?)^\1```", text, flags=re.S | re.M)
    ]


def python_blocks(path: Path) -> list[str]:
    """The page's python code blocks' code, in order."""
    return [block.code for block in page_blocks(path)]


# Code fences the pages may use: python runs (every block alone); the others never do.
FENCES = {"python", "bash", "text", "mermaid"}


def test_every_code_block_is_python_or_a_kind_that_does_not_run() -> None:
    # A python example cannot escape the test above by being fenced as ```py or ```.
    for path in DOCS:
        opening = re.findall(r"^ *```(\S*)", path.read_text(), flags=re.M)[::2]
        assert set(opening) <= FENCES, (path.relative_to(ROOT), set(opening) - FENCES)


def test_the_main_pages_have_examples() -> None:
    # Pages that teach by example must keep them (and so keep them tested).
    for page in ("README.md", "docs/index.md", "docs/parallelism.md", "docs/models.md"):
        assert python_blocks(ROOT / page), page


def shell_commands(path: Path) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


class Waves(NamedTuple):
    """A pipeline on a page, and its ideal structure.

    Right after the page's python block number ``block`` (from 0), run alone,
    ``xcs.trace(<call>)`` must hold ``ideal``: how many ops named ``names`` each parallel
    group holds (``tests.helpers.waves``). All independent calls in one group; a call that
    needs an earlier answer -- an ``if`` on it, a ``try`` around it -- in a later one.
    ``waits`` names the line that makes the page's pipeline wait when it does not (yet)
    get them.
    """

    page: str
    block: int
    call: str
    names: tuple[str, ...]
    ideal: list[int]
    waits: str = ""


ASK = ("ask",)
CHAT = ("simulated/chat",)
LLM = ("call_llm",)  # docs/exactness.md: flaky = xcs.op(call_llm)
GPT = ("chat.completions.create[gpt-4o-mini]",)  # docs/existing-code.md: the openai SDK's calls

# Every pipeline of several calls in the README and the docs, where the page defines it.
DOC_WAVES = [
    Waves("README.md", 0, 'answer, "Why?"', ASK, [5]),
    Waves("docs/developer/extending.md", 0, 'both, "abc", "de"', ("reverse/any",), [2]),
    Waves("docs/developer/extending.md", 1, 'research, ["a", "b"]', ("search",), [2]),
    Waves("docs/developer/extending.md", 2, 'locate, ["Oslo", "Lima"]', ("geocode",), [2]),
    Waves(
        "docs/exactness.md",
        0,
        'report, ["a", "bb", "c"]',
        ASK,
        # drafts | refinements | the set's asks: `first is None` needs drafts[0], a sync
        # that runs everything recorded before it | the sort key's asks (callbacks)
        [3, 3, 3, 3],
    ),
    Waves("docs/exactness.md", 2, 'one_by_one, ["a", "bad", "c"]', LLM, [1, 1, 1]),
    Waves("docs/exactness.md", 3, 'all_or_nothing, ["a", "b", "c"]', LLM, [3]),
    Waves("docs/exactness.md", 3, 'each_or_none, ["a", "bad", "c"]', ("ask_or_none",), [3]),
    Waves("docs/exactness.md", 4, 'collect, ["a", "bad", "c"]', LLM, [1, 1, 1]),
    Waves("docs/exactness.md", 5, 'ask_all, ["a", "b", "c"], execute=False', ASK, [3]),
    Waves("docs/existing-code.md", 0, "grade, QUESTIONS", GPT, [5]),
    Waves(
        "docs/existing-code.md",
        1,
        'summaries, ["a", "b", "c"]',
        ("messages.create[claude-3-5-haiku-latest]",),
        [3],
    ),
    # a try around each call: each waits for its answer, so the next can be caught
    Waves("docs/existing-code.md", 2, 'careful, ["a", "b (bad)", "c"]', GPT, [1, 1, 1]),
    Waves("docs/existing-code.md", 3, 'ask_all, ["a", "b", "c"]', GPT, [3]),
    # stream=True runs at once, after the call before it (not deferred)
    Waves("docs/existing-code.md", 4, 'streamed, "Why?"', GPT, [1, 1]),
    Waves("docs/existing-code.md", 5, 'lookup, ["a", "b", "c"]', ("gateway",), [3]),
    Waves("docs/existing-code.md", 5, 'shout, ["a", "b", "c"]', ("gateway.text",), [3]),
    # one xcs.map op; its items side by side: every draft, every verdict, item 1's revision
    Waves("docs/existing-code.md", 6, "check_all, TOPICS", GPT, [4, 4, 1]),
    # per-item branches in one loop: item 0's draft and verdict, then item 1's three calls
    Waves("docs/existing-code.md", 9, "check_loop, TOPICS[:2]", GPT, [1, 1, 1, 1, 1]),
    Waves("docs/graph.md", 0, 'ensemble, "why?"', ASK, [4]),
    Waves("docs/graph.md", 1, 'lookup, "ember"', ("search",), [1]),
    Waves("docs/how-it-works.md", 0, 'refine, ["a", "b", "c"]', ASK, [3, 3]),
    Waves("docs/how-it-works.md", 1, 'first_yes, ["a", "b", "c"]', ASK, [1, 1]),
    Waves("docs/how-it-works.md", 2, 'answers, ["a", "b"]', ASK, [2]),
    Waves("docs/index.md", 0, 'ensemble, "why?"', ASK, [4]),
    Waves("docs/index.md", 1, 'answer, "Why is the sky blue?"', CHAT, [5, 1]),
    Waves("docs/migration.md", 0, 'drafts, ["a", "b"]', CHAT, [2]),
    Waves("docs/migration.md", 2, 'pipeline, "Why?"', CHAT, [3]),
    Waves("docs/models.md", 0, 'drafts, "Why?"', CHAT, [8]),
    Waves(
        "docs/models.md",
        3,
        'both, "hi", execute=False',  # its server is closed after the block
        ("openai/chat", "anthropic/chat"),
        [2],
    ),
    Waves("docs/models.md", 4, 'answer, "Why is the sky blue?"', CHAT, [10, 2, 1]),
    # the section "Caching responses": the repeated prompt is in the same wave
    Waves("docs/models.md", 7, 'brainstorm, "tea"', CHAT, [5]),
    # the sections "Logging" and "Listening to model calls" (block numbers count the
    # page's python blocks above each: these three come first)
    Waves("docs/observing.md", 1, 'ensemble, "Why is the sky blue?"', CHAT, [3, 1]),
    Waves("docs/observing.md", 2, 'drafts, "Why is the sky blue?"', CHAT, [8]),
    # the section "A failed run"
    Waves("docs/observing.md", 3, 'summarize_all, ["a", "b", "c"]', ("summarize",), [3]),
    # the section "OpenTelemetry"
    Waves("docs/observing.md", 4, 'support_reply, "q"', CHAT, [3, 1]),
    Waves("docs/observing.md", 5, 'triage, "t"', CHAT, [2]),
    Waves("docs/parallelism.md", 0, 'comprehension, ["a", "b", "c"]', ASK, [3]),
    Waves("docs/parallelism.md", 0, 'loop, ["a", "b", "c"]', ASK, [3]),
    Waves("docs/parallelism.md", 0, 'fan_out_fan_in, ["a", "b", "c"]', ASK, [3, 1]),
    Waves("docs/parallelism.md", 1, 'cleaned, ["a", "b", "c"]', ASK, [3]),
    Waves("docs/parallelism.md", 1, 'shown, ["a", "b", "c"]', ("fetch",), [3]),
    Waves("docs/parallelism.md", 1, 'parsed, ["a", "b", "c"]', ("ask", "grade"), [3, 3]),
    Waves("docs/parallelism.md", 2, 'branch_each, ["a", "b", "c"]', ASK, [1, 1, 1]),
    Waves("docs/parallelism.md", 2, 'calls_first, ["a", "b", "c"]', ASK, [3]),
    Waves("docs/parallelism.md", 3, 'try_each, ["a", "bad b", "c"]', ASK, [1, 1, 1]),
    Waves("docs/parallelism.md", 3, 'parallel_try, ["a", "bad b", "c"]', ("ask_or_none",), [3]),
    Waves("docs/parallelism.md", 4, 'by_comprehension, ["a", "b", "c"]', ASK, [3]),
    Waves("docs/parallelism.md", 5, "primes, [200, 300]", ("count_primes",), [2]),
    Waves("docs/parallelism.md", 6, 'crawl, ["a", "b", "c"]', ("fetch",), [3]),
    Waves("docs/troubleshooting.md", 0, 'answers, ["a", "b", "c"]', ASK, [3]),
    Waves("docs/async.md", 0, 'answer, "Why?"', ("llm",), [5, 1]),
    Waves("docs/async.md", 2, 'grade, "Question 0"', CHAT, [1, 1]),
    Waves("docs/async.md", 2, 'sync_pipeline, ["a", "b", "c"]', CHAT, [3]),
]

PROBE = """
import json as _ember_json
import sys as _ember_sys
_ember_sys.path.append({root!r})
from ember import xcs as _ember_xcs
from tests.helpers import waves as _ember_waves
_ember_traced = _ember_xcs.trace({call})
if hasattr(_ember_traced, "__await__"):  # an async def: trace = await xcs.trace(...)
    import asyncio as _ember_asyncio
    _ember_traced = _ember_asyncio.run(_ember_traced)
_ember_found = _ember_waves(_ember_traced, *{names!r})
print("ember-waves:", _ember_json.dumps([{call!r}, _ember_found]))
"""

# Runs each block file given on its command line in a namespace of its own, as
# `python block.py` would, with the environment restored after each; prints which failed.
RUN_BLOCKS = """
import json, os, runpy, sys, traceback
failed = {}
for path in sys.argv[1:]:
    environ = dict(os.environ)
    try:
        runpy.run_path(path, run_name="__main__")
    except BaseException as error:
        frames = error.__traceback__  # from the block's own frame on
        while frames and frames.tb_frame.f_code.co_filename != path:
            frames = frames.tb_next
        failed[path] = "".join(traceback.format_exception(error, error, frames))
    finally:
        os.environ.clear()
        os.environ.update(environ)
print("ember-failed:", json.dumps(failed))
"""

# Blocks never reach a real service: a page's examples start what they need on loopback.
OFFLINE = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")


class PageRun(NamedTuple):
    """A page's blocks, each run alone: the process, each failed block's traceback by
    its fence's line, and the waves of the page's pipelines by call."""

    result: subprocess.CompletedProcess[str]
    failed: dict[int, str]
    waves: dict[str, list[int]]


def block_script(path: Path, index: int, block: Block) -> str:
    """The block as a file of its own, followed by a trace of the pipelines DOC_WAVES
    lists for it (after its last line, so its line numbers are the block's)."""
    page = str(path.relative_to(ROOT))
    probes = [w for w in DOC_WAVES if w.page == page and w.block == index]
    return block.code + "".join(
        PROBE.format(root=str(ROOT), call=w.call, names=w.names) for w in probes
    )


@pytest.fixture(scope="module")
def run_page(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], PageRun]:
    """Each page's python blocks, each run alone in a fresh namespace (one process per
    page, so the imports are paid once), once for the tests that read them."""
    runs: dict[Path, PageRun] = {}

    def run(path: Path) -> PageRun:
        if path not in runs:
            folder = tmp_path_factory.mktemp("page")
            files = {}
            for index, block in enumerate(page_blocks(path)):
                files[block.line] = folder / f"block_at_line_{block.line}.py"
                files[block.line].write_text(block_script(path, index, block))
            (folder / "run_blocks.py").write_text(RUN_BLOCKS)
            env = {k: v for k, v in os.environ.items() if k not in OFFLINE}
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
            result = subprocess.run(
                [sys.executable, "run_blocks.py", *map(str, files.values())],
                capture_output=True,
                text=True,
                timeout=240,
                cwd=folder,
                env=env,
            )
            failed_lines = [
                ln for ln in result.stdout.splitlines() if ln.startswith("ember-failed: ")
            ]
            failed = json.loads(failed_lines[-1].split(" ", 1)[1]) if failed_lines else {}
            found = {}
            for ln in result.stdout.splitlines():
                if ln.startswith("ember-waves: "):
                    call, groups = json.loads(ln.split(" ", 1)[1])
                    found[call] = groups
            by_line = {
                line: failed[str(file)] for line, file in files.items() if str(file) in failed
            }
            runs[path] = PageRun(result, by_line, found)
        return runs[path]

    return run


@pytest.mark.parametrize(
    "path", [p for p in DOCS if python_blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_each_python_example_runs_alone(path: Path, run_page) -> None:
    # A reader copies one block into a file and runs it: each block has its own imports
    # and definitions (a NameError here is a name defined in an earlier block).
    run = run_page(path)
    assert run.result.returncode == 0 and "ember-failed: " in run.result.stdout, run.result.stderr
    page = path.relative_to(ROOT)
    assert not run.failed, "\n".join(
        f"{page}:{line}: this block fails when run alone:\n{error}"
        for line, error in run.failed.items()
    )


@pytest.mark.parametrize(
    "wave",
    [
        pytest.param(w, marks=pytest.mark.xfail(strict=True, reason=w.waits)) if w.waits else w
        for w in DOC_WAVES
    ],
    ids=lambda w: f"{w.page}:{w.call.split(',')[0]}",
)
def test_doc_pipeline_gets_its_ideal_waves(wave: Waves, run_page) -> None:
    run = run_page(ROOT / wave.page)
    line = page_blocks(ROOT / wave.page)[wave.block].line
    assert line not in run.failed, run.failed[line]
    assert run.waves[wave.call] == wave.ideal


# Jitted or traced on a page, but without waves in DOC_WAVES, and why.
NOT_PIPELINES = {
    ("docs/exactness.md", "arguments"): "what an op receives, not a pipeline",
    # the two shapes the hint names: ops on the function's own pool are not in its graph,
    # and a callee behind lru_cache runs its ops at once (here all cached already)
    ("docs/existing-code.md", "pooled"): "ops on the function's own threads",
    ("docs/existing-code.md", "cached"): "ops behind functools.lru_cache",
    # map(ask, xs): its graph is one wave of three, but library code calls each at once,
    # one after the other -- the page asserts the speedup instead.
    ("docs/parallelism.md", "by_callback"): "calls made by library code",
    ("docs/parallelism.md", "fn"): "the page's own waves(fn, *args) helper",
    ("docs/observing.md", "ask"): "one call, there to time out",  # "Stopping a run"
    ("docs/async.md", "research"): "three calls, there to time out",
}


def test_every_doc_pipeline_has_its_waves_listed() -> None:
    # A new @xcs.jit function, or one traced, on a page needs its line in DOC_WAVES.
    listed = {(w.page, w.call.split(",")[0]) for w in DOC_WAVES}
    assert len(listed) == len(DOC_WAVES)  # one line per pipeline
    blocks = {str(p.relative_to(ROOT)): python_blocks(p) for p in DOCS}
    assert all(w.block < len(blocks.get(w.page, [])) for w in DOC_WAVES)
    found = set()
    for page, code in blocks.items():
        text = "\n".join(code)
        found |= {
            (page, name) for name in re.findall(r"@xcs\.jit\b.*\n\s*(?:async\s+)?def (\w+)", text)
        }
        found |= {
            (page, name)
            for name in re.findall(r"(?:xcs\.trace|xcs\.jit|waves)\((\w+)\b(?!=)", text)
        }
    assert found - set(NOT_PIPELINES) <= listed, sorted(found - set(NOT_PIPELINES) - listed)


# What in an example needs an extra of pyproject.toml (comments aside).
EXTRA_USES = {
    "models": r"^\s*(?:import|from)\s+(?:openai|anthropic)\b|[\"'](?:openai|anthropic)/",
    "viz": r"\.(?:draw|timeline)\(|^\s*(?:import|from)\s+(?:graphviz|matplotlib)\b",
    "dask": r"^\s*(?:import|from)\s+dask\b",
    "otel": r"^\s*(?:import|from)\s+opentelemetry\b|\.to_otel\(",
}


def without_comments(code: str) -> str:
    lines = code.splitlines(keepends=True)
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column] + "\n"
    return "".join(lines)


def extras_not_named(text: str, blocks: list[Block]) -> list[str]:
    """The extras a page's examples need that the page does not name (`pip install
    'ember-xcs[models]'`) above the first example needing each, or in it."""
    missing = []
    lines = text.splitlines(keepends=True)
    for block in blocks:
        end = block.line + block.code.count("\n")  # the block's closing fence, from 1
        before = "".join(lines[:end])
        for extra, use in EXTRA_USES.items():
            named = rf"ember-xcs\[[\w,]*\b{extra}\b[\w,]*\]"
            if re.search(use, without_comments(block.code), flags=re.M) and not re.search(
                named, before
            ):
                missing.append(f"line {block.line} needs [{extra}]")
    return missing


def test_pages_name_the_extras_their_examples_need() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert set(EXTRA_USES) <= set(extras["optional-dependencies"])
    missing = {
        str(path.relative_to(ROOT)): extras_not_named(path.read_text(), page_blocks(path))
        for path in DOCS
    }
    assert {page: found for page, found in missing.items() if found} == {}
    # It sees them: an SDK needs [models], a drawing [viz]; a comment needs nothing.
    page = "# A page\n\n```python\nimport openai\nxcs.trace(f).draw()\n# import dask\n```\n"
    page = page.replace("# import dask", "from opentelemetry import trace\n# import dask")
    assert extras_not_named(page, blocks_in(page)) == [
        "line 3 needs [models]",
        "line 3 needs [viz]",
        "line 3 needs [otel]",
    ]
    page = page.replace("# A page", "# A page: pip install 'ember-xcs[models,viz,otel]'")
    assert extras_not_named(page, blocks_in(page)) == []


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_command() -> None:
    commands = shell_commands(ROOT / "README.md")
    assert len(commands) == 2
    run, test = commands
    assert "python -m ember demo" in run
    assert "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def _demo(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "ember", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_the_demo_runs_and_shows_the_speedup(tmp_path: Path) -> None:
    result = _demo("--width", "4", "--latency", "0.05", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "XCSWarning" not in result.stderr  # the pipeline is rewritten, not run plainly
    out = result.stdout
    assert "5 questions x (4 drafts + 1 judge) = 25 calls" in out
    times = re.search(r"plain Python: +([\d.]+) s\n@xcs.jit: +([\d.]+) s", out)
    assert times, out
    plain, jitted = map(float, times.groups())
    assert plain > 3 * jitted  # 25 calls of 50 ms vs 2 waves per question, overlapped
    assert re.search(r"\(\d+\.\dx faster, same answers\)", out)
    assert "op[simulated/chat]" in out and "op[parse_judgement]" in out
    assert "6 ops in 3 parallel groups" in out  # 4 drafts, the judge, its parse
    assert result.stderr == ""  # no progress bars when stderr is not a terminal (test_cli.py)
    assert "Answers from the simulated model simulated/chat (offline, canned)" in out
    assert "Rayleigh scattering" in out  # the simulated model answers the demo's questions
    drawing = tmp_path / "ember-demo.svg"
    assert f"The drawing of this graph: {drawing.name}" in out
    assert drawing.read_text().lstrip().startswith(("<?xml", "<svg"))


def test_the_demo_pipeline_is_one_wave_of_drafts_then_one_of_judges() -> None:
    pipeline, _ = _demo_module.build(8, 0.0, None, None)
    trace = xcs.trace(_demo_module.answer_all, pipeline, _demo_module.QUESTIONS)
    assert len(_demo_module.QUESTIONS) == 5
    assert waves(trace, "simulated/chat") == [40, 5]  # every draft at once, then every judge
    assert trace.result == _demo_module.answer_all(pipeline, _demo_module.QUESTIONS)


def test_the_demo_pipeline_keeps_its_waves_with_the_response_cache_on() -> None:
    pipeline, _ = _demo_module.build(8, 0.0, None, None)
    plain = _demo_module.answer_all(pipeline, _demo_module.QUESTIONS)
    with models.cache(memory=True):
        cold = xcs.trace(_demo_module.answer_all, pipeline, _demo_module.QUESTIONS)
        warm = xcs.trace(_demo_module.answer_all, pipeline, _demo_module.QUESTIONS)
    for trace in (cold, warm):
        assert waves(trace, "simulated/chat") == [40, 5] and trace.result == plain
    calls = [a for _, a in warm.graph.nodes(data=True) if a["name"] == "simulated/chat"]
    assert len(calls) == 45 and all(a["cached"] == 1 for a in calls)
    assert not any(a["cached"] for _, a in cold.graph.nodes(data=True))


def test_the_demo_writes_the_drawing_where_asked(tmp_path: Path) -> None:
    target = tmp_path / "graph.png"
    result = _demo("--width", "2", "--latency", "0", "--questions", "1", "--out", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes().startswith(b"\x89PNG")


def test_the_demo_without_the_viz_extra_says_so_and_succeeds(tmp_path: Path) -> None:
    # Make graphviz and matplotlib unimportable, as in an install without [viz].
    blocked = tmp_path / "blocked"
    (blocked / "matplotlib").mkdir(parents=True)
    for module in (blocked / "graphviz.py", blocked / "matplotlib" / "__init__.py"):
        module.write_text("raise ImportError('not installed (blocked by the test)')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocked), str(ROOT)]))
    result = _demo("--width", "2", "--latency", "0", "--questions", "1", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "Drawing skipped:" in result.stdout and "ember-xcs[viz]" in result.stdout
    assert not (tmp_path / "ember-demo.svg").exists()


def test_the_demo_calls_a_real_endpoint(tmp_path: Path) -> None:
    from ember.models.server import LocalLLMServer

    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    with LocalLLMServer(latency=0.05) as server:
        result = _demo(
            "--base-url",
            server.openai_base_url,
            "--model",
            "chat",
            "--width",
            "4",
            "--questions",
            "2",
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        assert f"openai/chat at {server.openai_base_url}" in result.stdout
        assert "same answers" in result.stdout  # the local server is deterministic
        statuses = [r.status for r in server.requests]
        assert statuses.count(200) == 2 * 10 + 5  # plain, jit, and the traced question
        assert server.peak_concurrency >= 4  # the drafts overlapped on the server


def test_the_demo_reports_an_unknown_model() -> None:
    result = _demo("--model", "nowhere/x")
    assert result.returncode == 2 and "no provider named 'nowhere'" in result.stderr


def test_the_demo_rejects_bad_arguments() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ember", "demo", "--width", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "--width" in result.stderr


def test_the_models_benchmark_runs_at_a_tiny_size() -> None:
    # The figures come from running it by hand at full size; this keeps it working.
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "models.py"),
            "--questions",
            "2",
            "--width",
            "2",
            "--latency",
            "0.01",
            "--repeat",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "model calls per parallel group under @jit: [4, 2] (ideal [4, 2])" in result.stdout
    for row in (
        "sequential",
        "@jit, 64 threads",
        "ThreadPoolExecutor(6)",
        "asyncio.gather",
        "ideal",
    ):
        assert row in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("script", "args", "rows"),
    [
        ("engine.py", ["--repeat", "1", "--zero-ops", "50"], ["@jit split", "speedup"]),
        ("rewrite.py", ["--repeat", "1"], ["added by the rewrite"]),
        ("decisions.py", ["--repeat", "1"], ["us"]),
        (  # exits non-zero when a program loses its ideal structure
            "programs.py",
            ["--scale", "1", "--repeat", "1", "--latency", "0.01"],
            ["g_eval", "self_consistency", "debate", "reached"],
        ),
        (  # exits non-zero when a warm run sends a request or the waves are lost
            "cache.py",
            "--questions 2 --width 2 --latency 0.01 --repeat 1 --calls 50 --entries 100".split(),
            ["warm cache: [4, 2] (ideal [4, 2])", "warm cache (SQLite file), @jit", "memory: hit"],
        ),
        (  # exits non-zero when the @jit structure of the async pipeline is lost
            "async_sdk.py",
            "--questions 2 --width 2 --latency 0.01 --repeat 1 --paired 1".split(),
            [
                "@jit: [4, 2] (ideal [4, 2])",
                "asyncio.gather (hand-written)",
                "longest stall",
                "/ asyncio.gather, 1 runs in turn: median",
            ],
        ),
    ],
)
def test_the_other_benchmarks_run_at_a_tiny_size(
    script: str, args: list[str], rows: list[str]
) -> None:
    # They reach into xcs's internals to time its steps: this keeps them working.
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for row in rows:
        assert row in result.stdout, result.stdout


def test_troubleshooting_covers_every_error_and_warning() -> None:
    import inspect

    import ember.models.errors
    import ember.xcs._internal.errors

    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    headings = set(re.findall(r"^### `(\w+)`$", page, flags=re.M))
    classes = {
        name
        for module in (ember.xcs._internal.errors, ember.models.errors)
        for name, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, (Exception, Warning)) and cls.__module__ == module.__name__
    }
    assert classes and classes <= headings, f"not in docs/troubleshooting.md: {classes - headings}"


def test_the_site_lists_every_page() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").glob("**/*.md")}
    assert {page for page in pages if page not in nav} == set()
