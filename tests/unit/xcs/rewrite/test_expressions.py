"""The call-site rewrite, as source: what it turns each construct into."""

from __future__ import annotations

import ast
import textwrap

import pytest

from ember.xcs._internal.rewrite import rewrite_function

EVERYTHING = '''
def program(xs, *rest, key=None, **options):
    """Docstring stays first."""
    global LATEST
    total = len(xs)
    LATEST = ask(f"{xs!r:>10} and {total}")
    holder.value = "%s-%s" % (xs, total)
    first = xs[0] if xs is not None and xs[0] in "abc" else None
    try:
        answer = ask(first, *rest, key=key, **options)
    except ValueError as exc:
        raise RuntimeError("failed") from exc
    with open(first) as handle:
        handle.write(answer)
    match answer:
        case {"k": v}:
            pass
    keyed = {ask(x): x for x in xs}
    members = {ask(x) for x in xs}
    late = lambda y: ask(y)
    while not answer or members:
        total += xs[total]
        assert answer, [m for m in members if m]
    return super(), locals(), keyed, members, late
'''


def rewritten(source: str) -> tuple[ast.FunctionDef, str]:
    function = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(function, ast.FunctionDef)
    rewrite_function(function)
    return function, ast.unparse(function)


def test_every_node_made_by_the_rewrite_has_a_location() -> None:
    function, _ = rewritten(EVERYTHING)
    for node in ast.walk(function):
        if "lineno" in node._attributes:
            assert getattr(node, "lineno", None) is not None, ast.dump(node)
    compile(ast.Module(body=[function], type_ignores=[]), "<test>", "exec")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "f(a, *b, k=c, **d)",
            "@xcs.callee(f)(*@xcs.args(a, *b), **@xcs.kwargs(k=c, **@xcs.value(d)))",
        ),
        ("{**d, 'k': v}", "{**@xcs.value(d), @xcs.key('k'): v}"),
        ("f(a)", "@xcs.callee(f)(*@xcs.args_last(a))"),
        ("f()", "@xcs.call0(f)()"),
        ("super().m()", "@xcs.call0(super().m)()"),
        ("x is None", "@xcs.value(x) is @xcs.value(None)"),
        ("a in b", "@xcs.contains(a, b, False)"),
        ("a not in b", "@xcs.contains(a, b, True)"),
        ("a in b in c", "@xcs.key(a) in @xcs.value(b) in @xcs.value(c)"),
        ("a is not b", "@xcs.value(a) is not @xcs.value(b)"),
        ("'%s' % x", "@xcs.mod('%s', x)"),
        ("f'{x!r:>4}!'", "@xcs.fstring((x, 114, @xcs.fstring(('>4',))), ('!',))"),
        ("{k: v}", "{@xcs.key(k): v}"),
        ("{a, *b}", "{@xcs.key(a), *b}"),
        ("x if a else y", "x if @xcs.truth(a) else y"),
        ("a or b.c", "@xcs.truth(a) or @xcs.truth(b.c)"),
        # A literal on the right: evaluating it early changes nothing, so it is glue.
        ('a or ""', "@xcs.either(a, '')"),
        ('a and {"k": [1]}', "@xcs.both(a, {@xcs.key('k'): [1]})"),
        ("a or b or ''", "@xcs.truth(a) or @xcs.truth(b) or ''"),
        ("a or [b]", "@xcs.truth(a) or [b]"),
        ("a or {(1, 2): 0}", "@xcs.truth(a) or {@xcs.key((1, 2)): 0}"),  # keys: constants
        ("not a", "not @xcs.truth(a)"),
        (  # comparisons give bools; between two non-constants, through @xcs.binary
            "a == b or not a < 1",
            "@xcs.binary(a, b, 'Eq') or not a < 1",
        ),
        ("a + b * 2", "@xcs.binary(a, b * 2, 'Add')"),
        ("0 < a < b", "0 < @xcs.value(a) < @xcs.value(b)"),  # chains: operands as values
        ("[x for x in xs if x]", "[x for x in xs if @xcs.truth(x)]"),
        ("xs[i]", "@xcs.item(xs, i)"),
        ("xs[i][j]", "@xcs.item(@xcs.item(xs, i), j)"),
        ("d[a, b]", "@xcs.item(d, (a, b))"),
        ("m[1:2, i]", "m[1:2, i]"),  # slices are syntax
        ("xs[0], xs[1:2]", "(xs[0], xs[1:2])"),  # constants and slices as they are
        ("{f(x) for x in xs}", "@xcs.set_of([@xcs.callee(f)(*@xcs.args_last(x)) for x in xs])"),
    ],
)
def test_expressions(source: str, expected: str) -> None:
    _, text = rewritten(f"def f():\n    return {source}\n")
    assert f"return {expected}" in text


def test_entry_mark_follows_the_docstring_and_lambdas_get_one() -> None:
    function, text = rewritten(EVERYTHING)
    first, second = function.body[:2]
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
    assert ast.unparse(second) == "@xcs.entered()"
    assert "lambda y: (@xcs.entered(), @xcs.callee(ask)(*@xcs.args_last(y)))[1]" in text


def test_try_and_with_are_sync_points_and_stores_are_tracked() -> None:
    _, text = rewritten(EVERYTHING)
    # A sync before the try unless its body is clear: what it reads is checked then.
    names = "('ask', 'first', 'rest', 'key', 'options')"
    assert f"@xcs.scope_sync({names})\n    try:\n        try:\n            @xcs.enter(True)" in text
    assert "@xcs.scope_sync(('open', 'first', 'answer'))\n    with" in text  # not handle
    assert "finally:\n            @xcs.leave(False)" in text
    assert "answer = @xcs.now(" in text
    assert "except BaseException:\n            @xcs.settle()\n            raise" in text
    assert "LATEST = @xcs.store_global(" in text
    assert "@xcs.holder(holder).value = @xcs.store(" in text
    assert "match @xcs.deep(answer):" in text
    assert (
        "raise @xcs.raised(@xcs.callee(RuntimeError)(*@xcs.args_last('failed')))"
        " from @xcs.raised(exc)" in text
    )


def test_augmented_assignments_remember_what_they_extend() -> None:
    _, text = rewritten(
        "def f(out, d, v, i):\n    out += v\n    d |= v\n    i += 1\n    i -= v\n    out.n += v\n"
    )
    assert "out = @xcs.iadd(out, v)" in text  # a list the caller may hold: one load
    assert "d = @xcs.ior(d, v)" in text
    assert "i += 1" in text and "i -= v" in text  # constants; other operators copy
    assert "@xcs.augmented(out).n += v" in text
