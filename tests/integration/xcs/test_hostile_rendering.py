"""Secrets and hostile strings in traced programs, through every way a trace is shown.

Secrets ride in op parameters (``api_key=``, ``password=``, an ``Authorization``
header), in a model binding's defaults, in an op's name (a URL with a key in its
query), in a failing op's message and in an ``xcs.map`` item; none may appear in
``print(trace)``, a binding's repr, any drawing (DOT, graphviz SVG, matplotlib SVG and
PNG, mermaid), the Chrome trace or an error's notes. Hostile names and values
(``%%{init}%%``, control characters, ANSI escapes, quotes, ``<script>``, ``$...$``)
must give mermaid that mermaid's own parser reads with no directive taking effect,
well-formed SVG, and a ``print(trace)`` of one line per node without an escape byte.
"""

from __future__ import annotations

import io
import json
import time
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from ember import models, xcs
from ember.models.providers import SimulatedProvider
from ember.models.registry import ModelRegistry
from tests.conftest import require_dot
from tests.integration.xcs.test_drawing import (
    mermaid_check,
    no_dot,  # noqa: F401  (a fixture, used by name)
    svg_text,
)

# Made-up secrets: one shaped like an OpenAI key, one only its name gives away.
KEY = "sk-proj-Zq8Xv3Lm9Pw2Rt7Yk4Nb6Hd1Jf5Gc0Ue"
PASSWORD = "correct-horse-battery-staple-42"
SECRETS = (KEY, PASSWORD)
ENDPOINT = f"https://api.example.com/v1/search?api_key={PASSWORD}&q="


def timeline_svg(trace: xcs.Trace) -> str:
    """The timeline as SVG, its text kept as text (as drawings keep it)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        trace.timeline().savefig(buffer, format="svg")
    return buffer.getvalue()


def leaks(text: str | bytes) -> list[str]:
    """The secrets (or a 12-character piece of one) found in ``text``."""
    data = text if isinstance(text, str) else text.decode("latin-1")
    return [
        secret
        for secret in SECRETS
        if any(secret[i : i + 12] in data for i in range(len(secret) - 11))
    ]


# --- a program with secrets in its parameters --------------------------------------------------


@xcs.op
def ask(
    prompt: str,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    password: str | None = None,
) -> str:
    return prompt.upper()


@xcs.op(name=f"search {ENDPOINT}")
def search(query: str) -> str:
    return query[::-1]


@xcs.op
def refuse(prompt: str, api_key: str) -> str:
    raise PermissionError(f"the service refused the key {api_key}")


class Echoing(SimulatedProvider):
    """Answers like the simulation, but fails as a service echoing the caller's key."""

    name = "echoing"

    def complete(self, model: str, prompt: Any, **params: Any) -> models.Response:
        from ember.models.providers.base import Failure

        if "refuse" in str(prompt):
            raise Failure(401, f"Incorrect API key provided: {KEY}")
        return super().complete(model, prompt, **params)


@pytest.fixture(scope="module")
def chat() -> models.ModelBinding:
    registry = ModelRegistry()
    registry.register_provider("echoing", Echoing)
    # Defaults holding secrets the only ways a binding still takes them: inside a header
    # mapping, and as a key-shaped value of an ordinary parameter.
    return registry.instance(
        "echoing/echo", extra_headers={"X-Api-Key": PASSWORD}, user=KEY, temperature=0.0
    )


@pytest.fixture(scope="module")
def secret_trace(chat: models.ModelBinding) -> xcs.Trace:
    def program(question: str) -> Any:
        answers = [
            ask(
                f"{question} #{i}",
                api_key=KEY,
                headers={"Authorization": f"Bearer {PASSWORD}", "Accept": "json"},
                password=PASSWORD,
            )
            for i in range(3)
        ]
        answers.append(search(question))
        answers.append(chat(question).text)
        try:
            refuse(question, api_key=KEY)
        except PermissionError:
            answers.append("refused")
        try:
            chat("please refuse", max_tokens=5)
        except models.ProviderError:
            answers.append("model refused")
        return answers

    traced = xcs.trace(program, "why?")
    assert traced.result[-2:] == ["refused", "model refused"]
    statuses = [a["status"] for _, a in traced.graph.nodes(data=True) if a["kind"] == "op"]
    assert statuses.count("failed") == 2
    return traced


def test_print_and_reprs_show_no_secret(secret_trace: xcs.Trace, chat: models.ModelBinding) -> None:
    text = str(secret_trace)
    assert not leaks(text)
    assert text.count(", api_key=<redacted>") == 4  # three asks and the refusal
    assert "headers={'Authorization': <re..." in text  # cut to 24 characters, after redaction
    assert "password=<redacted>" in text
    assert "api_key=<redacted>" in text.split("search ")[1]  # the op's name, redacted too
    assert not leaks(repr(chat))
    assert repr(chat).startswith("models.instance('echoing/echo', extra_headers={'X-Api-Key':")
    bundle = secret_trace._repr_mimebundle_()
    assert not any(leaks(value) for value in bundle.values())
    # The graph's attributes hold no argument: only the names and exceptions users gave.
    for _, attrs in secret_trace.graph.nodes(data=True):
        error = attrs.get("error")
        shown = {k: v for k, v in attrs.items() if k != "error" and v != f"search {ENDPOINT}"}
        assert not leaks(repr(shown))
        if isinstance(error, models.ProviderError):  # ours; a user's exception stays as is
            assert not leaks(str(error)) and not leaks(repr(error))


def test_no_drawing_shows_a_secret(secret_trace: xcs.Trace) -> None:
    source = secret_trace.draw(format="dot").data
    assert "search https://api.example.com" in source  # the op's name is drawn...
    assert not leaks(source)  # ...without the key in its query
    assert not leaks(secret_trace.to_mermaid())
    require_dot()
    svg = secret_trace.draw().data
    assert "search https://api.example.com" in svg_text(svg)
    assert not leaks(svg)


@pytest.mark.usefixtures("no_dot")
def test_no_matplotlib_drawing_shows_a_secret(secret_trace: xcs.Trace) -> None:
    svg = secret_trace.draw(format="svg")
    assert svg.renderer == "matplotlib"
    assert "search https://api.example.com" in svg_text(svg.data)
    assert not leaks(svg.data)
    png = secret_trace.draw(format="png").data
    assert png.startswith(b"\x89PNG") and not leaks(png)
    assert not leaks(timeline_svg(secret_trace))


def test_the_chrome_trace_shows_no_secret(secret_trace: xcs.Trace) -> None:
    document = secret_trace.to_chrome_trace()
    text = json.dumps(document)
    assert not leaks(text)
    errors = [e["args"]["error"] for e in document["traceEvents"] if "error" in e.get("args", {})]
    assert sorted(e.split(":")[0] for e in errors) == ["PermissionError", "ProviderError"]
    assert any("the service refused the key sk-<redacted>" in e for e in errors)


def test_error_notes_and_messages_show_no_secret(chat: models.ModelBinding) -> None:
    def failing(question: str) -> Any:
        first = ask(question, api_key=KEY)
        return first, search(question), refuse(question, api_key=KEY)

    with pytest.raises(PermissionError) as info:
        xcs.jit(failing)("q")
    notes = info.value.__notes__
    assert notes and "raised by op 'refuse'" in notes[0]
    assert not leaks("\n".join(notes))

    @xcs.op(name=f"search {ENDPOINT}")
    def broken_search(query: str) -> str:
        raise LookupError("no results")

    with pytest.raises(LookupError) as info:
        xcs.jit(lambda q: [broken_search(q), ask(q)])("q")
    assert "search https://api.example.com" in info.value.__notes__[0]
    assert not leaks("".join(traceback.format_exception(info.value)))

    with pytest.raises(models.ProviderError) as provider_info:
        chat("please refuse")
    assert not leaks(str(provider_info.value)) and "sk-<redacted>" in str(provider_info.value)

    def one(item: dict[str, str]) -> str:
        return refuse(item["prompt"], api_key=item["api_key"])

    items = [{"prompt": "q", "api_key": KEY, "password": PASSWORD}]
    with pytest.raises(PermissionError) as map_info:
        xcs.map(one, items)
    note = map_info.value.__notes__[-1]
    item = f"[ember.xcs] raised by item 0 of 1 in xcs.map[{one.__qualname__}]"
    assert note.startswith(f"{item}: {{'prompt': 'q', 'api_key': <red")
    assert not leaks("\n".join(map_info.value.__notes__))


def test_a_key_as_a_binding_default_or_call_parameter_is_refused_unshown(
    chat: models.ModelBinding,
) -> None:
    with pytest.raises(models.SecretParameterError) as info:
        models.instance("simulated/echo", api_key=KEY)
    assert "api_key_env=" in str(info.value) and not leaks(str(info.value))
    with pytest.raises(models.SecretParameterError):
        chat.with_defaults(password=PASSWORD)

    def program(q: str) -> Any:
        return chat(q, api_key=KEY)

    with pytest.raises(models.SecretParameterError) as info:
        xcs.jit(program)("q")
    assert info.value.parameter == "api_key"
    assert not leaks("".join(traceback.format_exception(info.value)))


# --- hostile names and values ----------------------------------------------------------------

HOSTILE = [
    '%%{init: {"theme":"dark"}}%%',
    "%%{init: {'flowchart': {'htmlLabels': true}}}%% %% a comment",
    "two\nlines\r\nand a\ttab",
    "ansi \x1b[31mred\x1b[0m \x1b]0;title\x07 bell\x00null",
    'quotes " \' \\ and \\N \\" end',
    "<script>alert('x')</script> <b>&amp;</b> &#9; #1 `code`",
    "math $x_{$ and $\\frac{1}{2}$ dollars",
    "A --> B; click A call x() :::cls |edge| [box] {hex} (round) end",
    "bidi \u202eevil\u202c line\u2028sep",
]


def _op_named(name: str) -> Callable[[str], str]:
    @xcs.op(name=name)
    def hostile(value: str) -> str:
        time.sleep(0.05)  # long enough for the timeline to print the name on its bar
        return value

    return hostile


HOSTILE_OPS = [_op_named(name) for name in HOSTILE]


def hostile_program(value: str) -> list[str]:
    return [op(f"{value} {name}") for op, name in zip(HOSTILE_OPS, HOSTILE, strict=True)]


@pytest.fixture(scope="module")
def hostile_trace() -> xcs.Trace:
    return xcs.trace(hostile_program, "value\n\x1b[2J\x1b[H<script>")


def test_print_has_one_line_per_node_and_no_escape_byte(hostile_trace: xcs.Trace) -> None:
    text = str(hostile_trace)
    lines = text.split("\n")
    assert len(lines) == hostile_trace.graph.number_of_nodes()
    assert all(line.isprintable() for line in lines)
    assert "\x1b" not in text and "\r" not in text and "\x00" not in text
    op_lines = [line for line in lines if " = op[" in line]
    assert len(op_lines) == len(HOSTILE)
    assert "op[ansi \\x1b[31mred\\x1b[0m \\x1b]0;title\\x07 bell\\x00null]" in text
    assert "op[two\\nlines\\r\\nand a\\ttab]" in text


def test_mermaid_reads_hostile_labels_as_text(hostile_trace: xcs.Trace) -> None:
    text = hostile_trace.to_mermaid()
    assert "%%" not in text and "<script" not in text
    # No "config" in the report: no label reached mermaid as a directive.
    assert mermaid_check(text) == {"ok": True, "diagramType": "flowchart-v2"}
    assert "#37;#37;{init: {#quot;theme#quot;:#quot;dark#quot;}}#37;#37;" in text


def test_graphviz_draws_hostile_labels_as_written(hostile_trace: xcs.Trace) -> None:
    require_dot()
    svg = hostile_trace.draw().data
    text = svg_text(svg)  # parses as XML
    assert "<script" not in svg
    for name in HOSTILE:
        shown = "".join(c if c.isprintable() else " " for c in name)
        assert " ".join(shown.split()) in " ".join(text.split())  # dot joins spaces


@pytest.mark.usefixtures("no_dot")
def test_matplotlib_draws_hostile_labels_as_well_formed_svg(hostile_trace: xcs.Trace) -> None:
    drawing = hostile_trace.draw(format="svg")
    assert drawing.renderer == "matplotlib"
    text = svg_text(drawing.data)  # parses as XML
    for name in HOSTILE:
        assert "".join(c if c.isprintable() else " " for c in name) in text
    assert hostile_trace.draw(format="png").data.startswith(b"\x89PNG")
    timeline = svg_text(timeline_svg(hostile_trace))  # parses as XML
    for name in HOSTILE:  # each op's name on its bar ($ not read as mathtext)
        shown = "".join(c if c.isprintable() else " " for c in name)
        assert " ".join(shown.split()) in " ".join(timeline.split())


def test_the_chrome_trace_of_hostile_names_is_json_with_printable_names(
    hostile_trace: xcs.Trace,
) -> None:
    document = json.loads(json.dumps(hostile_trace.to_chrome_trace()))
    names = [e["name"] for e in document["traceEvents"] if e["ph"] == "X"]
    assert len(names) == len(HOSTILE) and all(name.isprintable() for name in names)
