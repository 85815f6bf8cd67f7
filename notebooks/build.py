"""Write the example notebooks from the cells below and execute them in place.

Run from the repository root after changing a cell (needs ``ember-xcs[dev]``)::

    python notebooks/build.py

The notebooks are saved with their outputs, so they read well on GitHub; the test
suite executes them again (``tests/integration/test_notebooks.py``). A notebook
writes files only into a temporary folder it makes itself (``tempfile.mkdtemp()``),
never beside itself: the test runs each one in ``notebooks/`` and fails on any file
left there.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent

SETUP = """\
%matplotlib inline
import time
from ember import xcs

@xcs.op
def ask(prompt: str) -> str:
    \"\"\"Stands in for an LLM call: 0.2 s of waiting on the network.\"\"\"
    time.sleep(0.2)
    return f"answer to {prompt!r}"

@xcs.op
def judge(answers: list[str]) -> str:
    \"\"\"Picks the best answer (here: the longest).\"\"\"
    time.sleep(0.1)
    return max(answers, key=len)"""

QUICKSTART = [
    (
        "md",
        "# Quickstart: one decorator, the same answers, in parallel\n\n"
        "`@xcs.op` marks a call worth running in parallel (an LLM call, an HTTP request). "
        "`@xcs.jit` runs a plain, sequential Python function so that its independent op "
        "calls overlap, and returns exactly what the function returns without it.",
    ),
    ("code", SETUP),
    (
        "md",
        "An ensemble: five drafts for a question, then a judge picks one. Written as plain "
        "Python, the drafts wait for each other.",
    ),
    (
        "code",
        """\
def ensemble(question: str) -> str:
    drafts = [ask(f"{question} (draft {i})") for i in range(5)]
    return judge(drafts)

fast = xcs.jit(ensemble)

start = time.perf_counter(); plain_answer = ensemble("Why is the sky blue?")
plain = time.perf_counter() - start
start = time.perf_counter(); jit_answer = fast("Why is the sky blue?")
jitted = time.perf_counter() - start
assert jit_answer == plain_answer
print(f"plain {plain:.2f} s, @jit {jitted:.2f} s, same answer: {jit_answer}")""",
    ),
    (
        "md",
        "`xcs.trace` runs the function once and keeps what happened. In a notebook it shows "
        "itself as a drawing: ops that could run together share a row, the critical path "
        "is amber.",
    ),
    ("code", 'trace = xcs.trace(ensemble, "Why is the sky blue?")\ntrace'),
    ("md", "As text, one line per node (inputs, ops, glue, syncs):"),
    (
        "code",
        "print(trace)\nprint(trace.parallel_groups)\n"
        'print("critical path:", len(trace.critical_path), "ops")',
    ),
    (
        "md",
        "What actually ran where and when: a bar per op, coloured by parallel group. Rows "
        "are lanes named by the threads that ran their ops (the caller first, then "
        '`worker 0`, `worker 1`, ...); `trace.timeline(rows="threads")` draws one row per '
        "thread.",
    ),
    ("code", "trace.timeline()"),
    (
        "md",
        "Files for later: a picture (svg, png, pdf or dot), mermaid for Markdown, and a "
        "trace for https://ui.perfetto.dev. They go to a temporary folder here, so that "
        "running the notebook leaves nothing beside it: pass a path of your own to keep them.",
    ),
    (
        "code",
        """\
import os, tempfile
folder = tempfile.mkdtemp()   # a new temporary folder: nothing lands beside the notebook
print(trace.draw(os.path.join(folder, "ensemble.svg")))
print(trace.to_mermaid()[:200], "...")
trace.to_chrome_trace(os.path.join(folder, "ensemble_trace.json"))
print(sorted(os.listdir(folder)))""",
    ),
    ("md", "`@jit` remembers, per argument structure, what it found:"),
    ("code", "fast.stats()"),
]

PATTERNS = [
    (
        "md",
        "# Patterns: what runs in parallel, what waits, and why\n\n"
        "`@jit` never changes what a function computes, so whatever needs an answer "
        "before the next call waits for it. `trace.parallel_groups` shows the waves a "
        "program really has.",
    ),
    ("code", SETUP),
    ("md", "## Comprehensions and loops: independent calls run together"),
    (
        "code",
        """\
def fan_out(questions):
    answers = []
    for q in questions:                  # a plain loop is fine too
        answers.append(ask(q).strip())   # method calls on answers stay lazy
    return answers

trace = xcs.trace(fan_out, ["a", "b", "c", "d"])
print(trace.parallel_groups)             # one wave of four
trace""",
    ),
    ("md", "## Prompts built from answers: two waves, not eight calls"),
    (
        "code",
        """\
def refine(questions):
    return [ask(f"Refine: {ask(q)}") for q in questions]

trace = xcs.trace(refine, ["a", "b", "c", "d"])
print([len(group) for group in trace.parallel_groups])
trace""",
    ),
    ("md", "## Branches on an answer wait for it"),
    (
        "code",
        """\
def check(question):
    first = ask(question)
    if "sky" in first:                   # needs the answer: a sync point
        return [ask("follow up 1"), ask("follow up 2")]
    return [first]

trace = xcs.trace(check, "sky?")
print(trace.parallel_groups)             # the branch decides what runs next
trace""",
    ),
    (
        "md",
        "## Errors: the one plain Python would raise first\n\n"
        "An op's exception reaches you unchanged, with a note naming the op and your line. "
        "Inside `try`, each statement runs before the next, so `except` catches exactly "
        "what it would without `@jit`; a failing call inside `try` is drawn in red.",
    ),
    (
        "code",
        """\
@xcs.op
def flaky(q: str) -> str:
    time.sleep(0.05)
    if q == "bad":
        raise ValueError(f"cannot answer {q!r}")
    return q.upper()

def careful(questions):
    out = []
    for q in questions:
        try:                             # one call at a time: exact, but serialized
            out.append(flaky(q))
        except ValueError as error:
            out.append(f"skipped ({error})")
    return out

trace = xcs.trace(careful, ["a", "bad", "c"])
print(trace.result)
print(trace.parallel_groups)
trace""",
    ),
    (
        "md",
        "To keep such calls parallel, handle the error inside the op (or make the calls one "
        "statement inside the `try`):",
    ),
    (
        "code",
        """\
@xcs.op
def flaky_or_note(q: str) -> str:
    try:
        return flaky(q)
    except ValueError as error:
        return f"skipped ({error})"

def careful_and_fast(questions):
    return [flaky_or_note(q) for q in questions]

trace = xcs.trace(careful_and_fast, ["a", "bad", "c"])
print(trace.result, trace.parallel_groups)
trace.timeline()""",
    ),
    (
        "code",
        """\
@xcs.jit
def strict(questions):
    return [flaky(q) for q in questions]

try:
    strict(["a", "bad", "c"])
except ValueError as error:
    print(type(error).__name__, error)
    print(error.__notes__)""",
    ),
    (
        "md",
        "## Items that branch on their own answers: `xcs.map`\n\n"
        "Draft, check, and revise only when the check says so: each question's `if` needs "
        "its own answer, so one trace can only run one question at a time. `xcs.map` runs "
        "the questions at the same time, each traced and exact (like `asyncio.gather` over "
        "per-question coroutines); their side effects interleave, so use it for independent "
        "items. `stats()['hint']` points at such a line when a jitted function waits on it.",
    ),
    (
        "code",
        """\
def draft_check_revise(question):
    draft = ask(question)
    if "?" in draft:                      # branches on this question's answer
        return ask(f"revise {draft}")
    return draft

questions = ["why?", "how", "when?", "who"]
start = time.perf_counter()
answers = xcs.map(draft_check_revise, questions)
print(f"{time.perf_counter() - start:.2f}s for {len(questions)} questions")

@xcs.jit
def one_at_a_time(questions):
    return [draft_check_revise(q) for q in questions]

one_at_a_time(questions)
print(one_at_a_time.stats()["hint"][:90], "...")""",
    ),
    (
        "md",
        "## A cell as it stands: `%%xcs`\n\n"
        "To jit top-level code without moving it into a function, load the extension and "
        "start the cell with `%%xcs`. Its names land in the notebook as plain Python would "
        "leave them; `--trace NAME` keeps the cell's trace.",
    ),
    (
        "code",
        "%load_ext ember.xcs",
    ),
    (
        "code",
        """\
%%xcs --trace cell_trace
drafts = [ask(f"idea {i}") for i in range(4)]
best = judge(drafts)
best""",
    ),
    (
        "code",
        """\
print(drafts[0], "|", best)
print(cell_trace.parallel_groups)""",
    ),
]


MODELS = [
    (
        "md",
        "# Models and operators: an LLM pipeline, in parallel\n\n"
        "`ember.models` calls LLMs by id and every call is an op; `ember.operators` has the "
        "classic building blocks. This notebook runs offline: `simulated/chat` answers "
        "deterministically after a delay, and a local server speaks the OpenAI API over real "
        "HTTP for the same pipeline through the `openai` SDK.",
    ),
    (
        "code",
        """\
%matplotlib inline
import time
from ember import models, operators, xcs

chat = models.instance("simulated/chat", latency=0.2)   # or "openai/gpt-4o-mini", ...
ensemble = operators.UniformEnsemble(4, chat, seed=0)    # 4 calls, seeds 0..3
vote = operators.MostCommon()
verify = operators.Verifier(chat)
judge = operators.JudgeSynthesis(chat)""",
    ),
    (
        "md",
        "Two branches -- an ensemble, a vote, a verification each -- then a judge. Plain "
        "Python makes the 11 calls one after another.",
    ),
    (
        "code",
        """\
def answer(question: str) -> str:
    left = verify(question, vote(ensemble(question)))
    right = verify(question, vote(ensemble(question + " Explain briefly.")))
    return judge(question, [left.revised_answer, right.revised_answer]).final_answer

start = time.perf_counter()
plain = answer("Why is the sky blue?")
plain_s = time.perf_counter() - start

fast = xcs.jit(answer)
start = time.perf_counter()
assert fast("Why is the sky blue?") == plain
print(f"plain {plain_s:.2f} s, @jit {time.perf_counter() - start:.2f} s: {plain!r}")""",
    ),
    (
        "md",
        "The graph: both ensembles in one wave, then both votes, both verifications (and "
        "their parsing), the judge.",
    ),
    ("code", 'trace = xcs.trace(answer, "Why is the sky blue?")\ntrace'),
    ("code", "print(trace.parallel_groups)\ntrace.timeline()"),
    (
        "md",
        "## Over real HTTP\n\n"
        "The same pipeline through the `openai` SDK against the local server (any "
        "OpenAI-compatible endpoint works the same way: vLLM, Ollama, OpenAI itself). The "
        "server logs every request, so we can see the calls overlap on its side.",
    ),
    (
        "code",
        """\
from ember.models.server import LocalLLMServer

server = LocalLLMServer(latency=0.2).start()
remote = models.instance("openai/chat", base_url=server.openai_base_url)
remote_answer = xcs.jit(operators.UniformEnsemble(8, remote, seed=0))
remote_answer("warm up")              # the SDK client is made on first use
server.reset()

start = time.perf_counter()
drafts = remote_answer("Why is the sky blue?")
print(f"{len(drafts)} drafts in {time.perf_counter() - start:.2f} s; "
      f"the server saw {server.peak_concurrency} requests at once")""",
    ),
    (
        "md",
        "Code written against the SDK directly needs no change either: inside `@jit`, "
        "`client.chat.completions.create(...)` (and `responses`, `completions`, "
        "`embeddings`, anthropic's `messages.create`) is an op, and the SDK's own "
        "exceptions reach your `except` clauses.",
    ),
    (
        "code",
        """\
import openai

client = openai.OpenAI(base_url=server.openai_base_url, api_key="local")

@xcs.jit
def plain_sdk(questions):
    replies = []
    for q in questions:
        resp = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": q}]
        )
        replies.append(resp.choices[0].message.content.strip())
    return replies

plain_sdk(["warm up"])
server.reset()
replies = plain_sdk([f"Question {i}?" for i in range(6)])
print(f"{len(replies)} replies; the server saw {server.peak_concurrency} requests at once")""",
    ),
    (
        "md",
        "## Rate limits\n\n"
        "A provider keeps at most `max_concurrency` requests in flight across every jitted "
        "call: here 2, so the 8 calls go 2 by 2 -- the timeline shows it.",
    ),
    (
        "code",
        """\
from ember.models.providers import OpenAIProvider

provider = OpenAIProvider(base_url=server.openai_base_url, max_concurrency=2)
models.register_provider("limited", provider)
limited = operators.UniformEnsemble(8, models.instance("limited/chat"), seed=0)
limited("warm up")
server.reset()
limited_trace = xcs.trace(limited, "Why is the sky blue?")
print(f"server peak: {server.peak_concurrency}, wall {limited_trace.wall_seconds:.2f} s")
limited_trace.timeline()""",
    ),
    (
        "code",
        """\
print(models.usage_by_model())
server.stop()""",
    ),
]


def build(name: str, cells: list[tuple[str, str]]) -> Path:
    """Write ``name`` from ``cells``, execute it, and save it with its outputs."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text)
        for kind, text in cells
    ]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    with tempfile.TemporaryDirectory() as scratch:  # files the notebook writes go there
        NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": scratch}}
        ).execute()
    path = HERE / name
    nbformat.write(notebook, path)
    return path


def main() -> None:
    """Build every notebook."""
    notebooks = (
        ("01_quickstart.ipynb", QUICKSTART),
        ("02_patterns.ipynb", PATTERNS),
        ("03_models_and_operators.ipynb", MODELS),
    )
    for name, cells in notebooks:
        print(build(name, cells), file=sys.stderr)


if __name__ == "__main__":
    main()
