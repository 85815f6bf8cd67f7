"""xcs's own errors, and notes on user exceptions."""

from __future__ import annotations

from ember import xcs
from ember.xcs._internal.errors import add_op_note


def test_every_xcs_error_is_an_xcs_error() -> None:
    assert issubclass(xcs.ConcretizationError, xcs.XCSError)
    assert issubclass(xcs.XCSError, Exception)


def test_notes_are_added_once_and_keep_the_exception() -> None:
    exc = KeyError("k")
    add_op_note(exc, 3, "ask", "app.py:12")
    add_op_note(exc, 3, "ask", "app.py:12")
    assert exc.__notes__ == ["[ember.xcs] raised by op 'ask' (node %3) called at app.py:12"]
    assert type(exc) is KeyError and exc.args == ("k",)
    glue_failure = TypeError("t")
    add_op_note(glue_failure, 4, ".join()", "app.py:13", glue=True)
    assert glue_failure.__notes__ == [
        "[ember.xcs] raised by '.join()' on pending values (node %4) at app.py:13"
    ]


def test_a_note_shows_the_calls_arguments_shortened_and_redacted() -> None:
    from ember.xcs._internal.ir import Ref

    exc = ValueError("v")
    key = "sk-proj-" + "x1y2z3" * 8
    prompt = "Summarize: the report on the third quarter, with all its tables"
    args = (prompt, Ref(2), key)
    add_op_note(exc, 5, "ask", "app.py:12", args=args, kwargs={"api_key": key}, values={2: 7})
    (note,) = exc.__notes__
    assert note == (
        "[ember.xcs] raised by op 'ask' (node %5) called at app.py:12 with ('Summarize: the "
        "report on the third q..., 7, 'sk-<redacted>', api_key=<redacted>)"
    )  # each argument cut to 40 characters; another op's result (%2) shown as its value
    long = ValueError("v")
    add_op_note(long, 1, "ask", "app.py:1", args=tuple(range(100)))
    assert long.__notes__[0].endswith("...)") and len(long.__notes__[0]) < 240


def test_notes_on_exceptions_that_refuse_attributes() -> None:
    class Slotted(Exception):
        __slots__ = ()

    exc = Slotted()
    add_op_note(exc, 1, "op", "f.py:1")
    assert len(exc.__notes__) == 1


def test_concretization_error_says_what_where_and_what_to_do() -> None:
    error = xcs.ConcretizationError(5, "ask", "app.py:9", "no value here", "Do this.")
    assert str(error) == (
        "The value of %5 (op 'ask' called at app.py:9) was needed, but no value here. Do this."
    )
    assert (error.node, error.op_name, error.location) == (5, "ask", "app.py:9")
