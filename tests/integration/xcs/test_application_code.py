"""Code shaped like real LLM applications, plainly and under ``@jit``: the same in every way.

Chat histories, vote counters, HTTP headers, the process environment, database
cursors and CSV readers, pydantic models, custom exceptions, generators, time budgets.
Each program runs plainly and jitted (the differential harness): same value (with its
nested types, and no proxy anywhere), same exception, same op calls with the same
arguments -- and the caller's own objects are left as plain Python leaves them.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import csv
import dataclasses
import datetime
import functools
import io
import itertools
import json
import os
import sqlite3
import time
import types
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Iterator, MutableMapping, MutableSequence, MutableSet
from typing import Any

import pydantic
import pytest
import requests.structures

from ember import xcs
from tests.helpers import (
    LOG,
    OpError,
    assert_same_as_plain,
    contains_proxy,
    echo,
    fail_if,
    logged,
    run_logged,
    slow_echo,
    upper,
)

# --- ops that look at what they are given ------------------------------------------------


@logged()
def show(value: Any) -> str:
    """What the op saw: the type and the contents of its argument."""
    return f"{type(value).__name__}:{value!r}"


@logged()
def keys_of(mapping: Any) -> list[Any]:
    return sorted(mapping)


@logged()
def environment(cmd: str, env: Any) -> str:
    return f"{cmd} PATH={'PATH' in env} HOME={env.get('HOME') is not None} n={len(env) > 0}"


@logged()
def take(items: Any, n: int) -> list[Any]:
    return list(itertools.islice(items, n))


@logged()
def first_good(replies: Any) -> Any:
    for reply in replies:  # returns at the first good one: the rest are never made
        if reply.startswith("good"):
            return reply
    return None


@logged()
def read_rows(reader: Any) -> Any:
    return (reader.fieldnames, [dict(row) for row in reader])


@logged()
def fetch_all(cursor: Any) -> Any:
    return cursor.fetchall()


# --- 1. recording an op call changes neither its arguments nor the caller's objects -------


class ChatHistory(MutableSequence):  # type: ignore[type-arg]
    """A chat history that keeps its messages in another object (a store)."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self._store: dict[str, list[dict[str, Any]]] = {"messages": list(messages)}

    def __getitem__(self, i: Any) -> Any:
        return self._store["messages"][i]

    def __setitem__(self, i: Any, value: Any) -> None:
        self._store["messages"][i] = value

    def __delitem__(self, i: Any) -> None:
        del self._store["messages"][i]

    def __len__(self) -> int:
        return len(self._store["messages"])

    def insert(self, i: int, value: Any) -> None:
        self._store["messages"].insert(i, value)

    def add(self, role: str, content: Any) -> None:
        self.append({"role": role, "content": content})

    def __repr__(self) -> str:
        return f"ChatHistory({self._store['messages']!r})"


class Headers(MutableMapping):  # type: ignore[type-arg]
    """Case-insensitive headers over a dict of (original key, value) pairs."""

    def __init__(self, **items: Any) -> None:
        self._data: dict[str, tuple[str, Any]] = {}
        for k, v in items.items():
            self[k] = v

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key.lower()] = (key, value)

    def __getitem__(self, key: str) -> Any:
        return self._data[key.lower()][1]

    def __delitem__(self, key: str) -> None:
        del self._data[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


def counter_argument(text: str) -> Any:
    votes = Counter(text)
    return show(votes), votes


def counter_in_a_lazy_fstring(text: str) -> Any:
    votes = Counter(text)
    return upper(f"{echo(text)} {votes}"), votes


def counter_of_pending_keys(qs: list[str]) -> Any:
    votes: Counter[str] = Counter()
    for q in qs:
        votes[echo(q)] += 1
    return votes


def builtin_containers_each_their_own_way(text: str) -> Any:
    ordered = OrderedDict(b=1, a=2)
    ordered.move_to_end("b")
    factory = defaultdict(list, {"k": [1]})
    ring = deque([1, 2, 3], maxlen=3)
    return [show(x) for x in (ordered, factory, ring, Counter({"x": 3}), frozenset("ab"))]


def history_passed_to_an_op(question: str) -> Any:
    history = ChatHistory({"role": "system", "content": "be brief"})
    history.add("user", question)
    seen = show(history)
    return seen, list(history)


def history_grown_after_each_call(questions: list[str]) -> Any:
    history = ChatHistory({"role": "system", "content": "be brief"})
    for q in questions:
        history.add("user", q)
        reply = show(history)  # sees the history up to this question only
        history.add("assistant", reply)
    return list(history)


def headers_passed_by_reference(token: str) -> Any:
    headers = Headers(Authorization=token, Accept="json")
    seen = keys_of(headers)
    headers["X-Trace"] = "1"  # after the call: the op saw the headers without it
    return seen, dict(headers.items())


def requests_headers(token: str) -> Any:
    headers = requests.structures.CaseInsensitiveDict({"Authorization": token})
    seen = show(dict(headers))
    return seen, keys_of(headers), dict(headers)


def environment_passed_to_an_op(cmd: str) -> Any:
    return environment(cmd, os.environ), "PATH" in os.environ


def csv_reader_and_cursor(text: str) -> Any:
    reader = csv.DictReader(io.StringIO(f"name,answer\n{text},1\nb,2\n"))
    database = sqlite3.connect(":memory:")
    database.execute("create table t (q text)")
    database.executemany("insert into t values (?)", [(text,), ("z",)])
    cursor = database.execute("select q from t order by q")
    return read_rows(reader), fetch_all(cursor)


def generator_consumed_partly(qs: list[str]) -> Any:
    return first_good(echo(q) for q in qs)


def infinite_iterator(examples: list[str]) -> Any:
    return take(itertools.cycle(examples), 2)


def iterator_shared_with_the_caller(xs: list[str]) -> Any:
    items = iter(xs)
    first = take(items, 1)
    rest = list(items)  # the op took exactly one item, before this line
    return first, rest


def object_changed_after_the_call(text: str) -> Any:
    settings = Settings(text, 0.5)
    seen = show(settings)
    settings.temperature = 0.9  # plain Python's op saw 0.5
    settings.tags.append("late")
    del settings.model
    return seen, settings.temperature


class Settings:
    def __init__(self, model: str, temperature: float) -> None:
        self.model = model
        self.temperature = temperature
        self.tags: list[str] = []

    def __repr__(self) -> str:
        return f"Settings({vars(self)!r})"


class Tracked(list):  # type: ignore[type-arg]
    def clear(self) -> None:
        raise AssertionError("recording must not clear a user's list")


class Tagged(dict):  # type: ignore[type-arg]
    def update(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("recording must not refill a user's dict")


def subclasses_of_the_containers(text: str) -> Any:
    tracked, tagged = Tracked([text, "b"]), Tagged(a=text)
    return show(tracked), show(tagged), tracked, tagged


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (counter_argument, ("aab",)),
        (counter_in_a_lazy_fstring, ("aab",)),
        (counter_of_pending_keys, (["a", "b", "a"],)),
        (builtin_containers_each_their_own_way, ("x",)),
        (history_passed_to_an_op, ("why?",)),
        (history_grown_after_each_call, (["a", "b", "c"],)),
        (headers_passed_by_reference, ("secret",)),
        (requests_headers, ("secret",)),
        (environment_passed_to_an_op, ("ls",)),
        (csv_reader_and_cursor, ("a",)),
        (generator_consumed_partly, (["bad1", "good2", "good3", "bad4"],)),
        (infinite_iterator, (["e1", "e2", "e3"],)),
        (iterator_shared_with_the_caller, (["a", "b", "c"],)),
        (object_changed_after_the_call, ("m",)),
        (subclasses_of_the_containers, ("a",)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_op_arguments_are_what_plain_python_passes(fn: Any, args: tuple[Any, ...]) -> None:
    assert_same_as_plain(fn, xcs.jit(fn), *args)


def test_a_partly_consumed_generator_makes_only_the_calls_plain_python_makes() -> None:
    qs = ["bad1", "good2", "good3", "bad4"]
    got = run_logged(xcs.jit(generator_consumed_partly), qs)
    assert got.value == "good2"
    assert sorted(name for name, _, _ in got.calls.elements()) == ["echo", "echo", "first_good"]


def test_the_callers_objects_are_left_alone() -> None:
    votes, history = Counter("aab"), ChatHistory({"role": "user", "content": "hi"})
    headers, env_before = Headers(A="1"), dict(os.environ)
    before = copy.deepcopy((votes, list(history), dict(headers.items())))

    @xcs.jit
    def program(votes: Any, history: Any, headers: Any) -> Any:
        return show(votes), show(history), keys_of(headers), environment("ls", os.environ)

    program(votes, history, headers)
    assert (votes, list(history), dict(headers.items())) == before
    assert dict(os.environ) == env_before


# --- 2. no proxy escapes ----------------------------------------------------------------------


class Memory:
    def __init__(self) -> None:
        self.by_answer: dict[Any, str] = {}
        self.groups: defaultdict[Any, list[str]] = defaultdict(list)
        self.pairs: dict[Any, int] = {}
        self.defaults: dict[Any, int] = {}
        self.seen: set[Any] = set()

    def learn(self, q: str) -> None:
        reply = echo(q)
        self.by_answer[reply] = q
        self.groups[reply[:1]].append(q)
        self.pairs[(q, reply)] = len(q)
        self.defaults.setdefault(upper(q), 0)
        self.seen.add(reply)


class ParseError(ValueError):
    def __init__(self, reply: Any) -> None:
        super().__init__(f"cannot parse {reply!r}")
        self.reply = reply


def parse(reply: Any) -> int:
    if not reply.isdigit():
        raise ParseError(reply)
    return int(reply)


class Answer(pydantic.BaseModel):
    question: str
    answer: str


@dataclasses.dataclass
class Parsed:
    raw: Any
    number: int = 0

    def __post_init__(self) -> None:
        self.number = json.loads(self.raw)


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    raw: Any

    def __post_init__(self) -> None:
        if not self.raw.startswith("1"):
            raise ValueError(f"unexpected {self.raw}")


def answers_as_keys(qs: list[str], memory: Memory) -> Any:
    for q in qs:
        memory.learn(q)


def closures_over_answers(qs: list[str]) -> Any:
    summaries = [echo(q) for q in qs]
    index = {q: echo(q + "!") for q in qs}

    def search(term: str) -> list[str]:
        return [s for s in summaries if term in s] + [v for v in index.values() if term in v]

    return search


def exceptions_carry_values(replies: list[str]) -> Any:
    caught = []
    for r in replies:
        try:
            parse(echo(r))
        except ParseError as error:
            caught.append(error)
    return [(e.reply, e.args) for e in caught]


def an_exception_leaves_the_call(reply: str) -> Any:
    return parse(echo(reply))


def library_constructors(qs: list[str]) -> Any:
    return [Answer(question=q, answer=echo(q)) for q in qs]


def dataclass_post_init(raws: list[str]) -> Any:
    return [Parsed(echo(r)).number for r in raws], [Checked(echo(r)).raw for r in raws]


def returned_partials_and_methods(qs: list[str]) -> Any:
    replies = [echo(q) for q in qs]
    memory = Memory()
    memory.by_answer["first"] = replies[0]
    return functools.partial(str.join, ",", replies), memory.by_answer.get, dict(zip(replies, qs))


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (exceptions_carry_values, (["1", "x", "2", "y"],)),
        (an_exception_leaves_the_call, ("nope",)),
        (library_constructors, (["a", "b"],)),
        (dataclass_post_init, (["1", "12"],)),
        (dataclass_post_init, (["1", "2"],)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_no_proxy_escapes(fn: Any, args: tuple[Any, ...]) -> None:
    got = assert_same_as_plain(fn, xcs.jit(fn), *args)
    if got.error is not None:
        assert not contains_proxy(vars(got.error)) and not contains_proxy(got.error.args)


def test_closures_returned_hold_values() -> None:
    search = xcs.jit(closures_over_answers)(["ab", "bc"])
    cells = [c.cell_contents for c in search.__closure__ or ()]
    assert not contains_proxy(cells)
    assert search("b") == closures_over_answers(["ab", "bc"])("b") == ["ab", "bc", "ab!", "bc!"]


def test_keys_stored_into_the_callers_dicts_are_values() -> None:
    plain, jitted = Memory(), Memory()
    answers_as_keys(["a1", "b2", "a3"], plain)
    xcs.jit(answers_as_keys)(["a1", "b2", "a3"], jitted)
    assert json.dumps(jitted.by_answer) == json.dumps(plain.by_answer)
    for attribute in ("by_answer", "groups", "pairs", "defaults", "seen"):
        value = getattr(jitted, attribute)
        assert value == getattr(plain, attribute) and not contains_proxy(value), attribute
        assert not contains_proxy(list(value)), attribute  # keys and members too


def test_returned_partials_bound_methods_and_zipped_dicts_hold_values() -> None:
    partial, getter, by_reply = xcs.jit(returned_partials_and_methods)(["a", "b"])
    assert not contains_proxy(partial.args) and partial() == "a,b"
    assert not contains_proxy(getter.__self__) and getter("first") == "a"
    assert by_reply == {"a": "a", "b": "b"} and not contains_proxy(list(by_reply))


def test_an_exception_raised_out_of_the_call_holds_values() -> None:
    with pytest.raises(ParseError) as info:
        xcs.jit(an_exception_leaves_the_call)("nope")
    assert type(info.value.reply) is str and type(info.value.args[0]) is str


def test_library_constructors_of_user_subclasses_run_once_per_call() -> None:
    got = run_logged(xcs.jit(library_constructors), ["a", "b", "c"])
    assert [a.answer for a in got.value] == ["a", "b", "c"]
    assert sum(got.calls.values()) == 3


# --- 3. order-sensitive statements -------------------------------------------------------


def flaky_answers(qs: list[str]) -> Iterator[Any]:
    for q in qs:
        try:
            yield fail_if(q, "bad")
        except OpError:
            yield None


def delegating(qs: list[str]) -> Iterator[Any]:
    try:
        yield from flaky_answers(qs)
        yield from (fail_if(q, "worse") for q in qs)
    except OpError as error:
        yield f"stopped: {error}"


def generator_catches_op_errors(qs: list[str]) -> Any:
    return list(flaky_answers(qs)), list(delegating(qs))


class Page:
    def __init__(self, text: str) -> None:
        self.text = text

    def show(self) -> None:
        print(f"page {self.text}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Page) and other.text == self.text


@logged()
def fetch(url: str) -> Page:
    return Page(url.upper())


@logged()
def fetch_unannotated(url: str):  # type: ignore[no-untyped-def]
    return Page(url.upper())


def side_effects_in_order(urls: list[str]) -> Any:
    for url in urls:
        page = fetch(url)
        page.show()
        print("done", url)
        other = fetch_unannotated(url)
        other.show()
    return [fetch(u).text.lower().strip() for u in urls]  # pure methods stay lazy


def time_budget(q: str, budget: float) -> Any:
    out = []
    start = time.monotonic()
    while time.monotonic() - start < budget:
        out.append(slow_echo(q, 0.1))
    return len(out)


def clock_reads(qs: list[str]) -> Any:
    started = datetime.datetime.now()
    answers = [slow_echo(q, 0.05) for q in qs]
    took = datetime.datetime.now() - started
    return answers, took.total_seconds() >= 0.05


def test_a_yield_in_a_try_body_catches_the_ops_error() -> None:
    assert_same_as_plain(
        generator_catches_op_errors,
        xcs.jit(generator_catches_op_errors),
        ["a", "bad", "c", "worse"],
    )


def test_side_effects_of_methods_run_in_program_order(capsys: pytest.CaptureFixture[str]) -> None:
    plain = side_effects_in_order(["a", "b"])
    printed = capsys.readouterr().out
    assert xcs.jit(side_effects_in_order)(["a", "b"]) == plain
    assert capsys.readouterr().out == printed
    trace = xcs.trace(side_effects_in_order, ["a", "b", "c"])
    last = trace.parallel_groups[-1]  # the comprehension's fetches run together
    assert len(last) == 3


def test_clock_reads_observe_the_work_before_them() -> None:
    for _ in range(3):  # timing: plain and jit must see the same number of loop turns
        plain = time_budget("q", 0.25)
        jitted = xcs.jit(time_budget)("q", 0.25)
        if plain == jitted:
            break
    assert plain == jitted == 3
    assert xcs.jit(clock_reads)(["a", "b"]) == (["a", "b"], True)
    assert LOG.max_overlap() == 2  # no read between the calls: they overlap


def test_context_manager_yields_are_stores() -> None:
    events: list[str] = []

    @contextlib.contextmanager
    def scope(label: str) -> Iterator[None]:
        try:
            yield
        except OpError:
            events.append(f"{label} saw the failure")
            raise

    def answers(qs: list[str]) -> Iterator[Any]:
        with scope("block"):
            for q in qs:
                yield fail_if(q, "bad")

    def program(qs: list[str]) -> Any:
        got = []
        try:
            for a in answers(qs):
                got.append(a)
        except OpError:
            got.append("failed")
        return got

    expected = program(["a", "bad", "c"])
    plain_events, events[:] = list(events), []
    assert xcs.jit(program)(["a", "bad", "c"]) == expected
    assert events == plain_events == ["block saw the failure"]


def test_collections_abc_of_user_classes_stay_by_reference() -> None:
    history = ChatHistory({"role": "user", "content": "x"})

    @xcs.jit
    def program(history: ChatHistory) -> Any:
        seen = show(history)
        history.add("assistant", echo("a"))
        return seen

    assert program(history) == f"ChatHistory:{ChatHistory({'role': 'user', 'content': 'x'})!r}"
    assert list(history)[-1] == {"role": "assistant", "content": "a"}
    assert not contains_proxy(history._store)


# --- found by adversarial hunts ------------------------------------------------------------

EVENTS: list[Any] = []


class Cache:
    def __init__(self) -> None:
        self.data = {"a": 1}

    def get(self, key: str) -> Any:  # a name built-in types have; side effects here
        EVENTS.append(("lookup", key))
        return self.data.get(key)


class Body:
    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    @property
    def text(self) -> str:
        EVENTS.append("decode")
        return self._raw.decode()

    def __getitem__(self, index: int) -> int:
        EVENTS.append(f"item {index}")
        return self._raw[index]

    def __add__(self, other: Body) -> Body:
        EVENTS.append("add")
        return Body(self._raw + other._raw)


@logged()
def connect(name: str):  # type: ignore[no-untyped-def]  # unannotated: nothing known
    return Cache()


@logged()
def download(url: str) -> Body:
    return Body(url.encode())


def effects_of_methods_properties_and_operators(url: str) -> Any:
    EVENTS.clear()
    cache = connect(url)
    EVENTS.append("connected")
    hit = cache.get("a")
    EVENTS.append("looked up")
    body = download(url)
    text = body.text
    EVENTS.append("after text")
    first = body[0]
    EVENTS.append("after item")
    joined = body + download("de")
    EVENTS.append("after add")
    return hit, text, first, joined._raw, len(EVENTS), list(EVENTS)


def generators_next_and_islice(n: int) -> Any:
    numbers = (i * 2 for i in range(n))
    head = next(numbers)
    two = list(itertools.islice(numbers, 2))
    lines = iter(["header", "a", "b"])
    title = take(lines, 1)  # an op takes the header line; the rest stay here
    return head, two, list(numbers), title, [upper(line) for line in lines]


class Agent:
    def __repr__(self) -> str:
        return "Agent()"

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.style = types.SimpleNamespace(tone="terse")
        self.tags = Tags({"bug"})


class Tags(MutableSet):  # type: ignore[type-arg]
    def __init__(self, items: Any = ()) -> None:
        self._items = set(items)

    def __contains__(self, x: object) -> bool:
        return x in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def add(self, x: str) -> None:
        self._items.add(x)

    def discard(self, x: str) -> None:
        self._items.discard(x)

    def __repr__(self) -> str:
        return f"Tags({sorted(self._items)})"


@logged()
def describe(agent: Any) -> str:
    return f"{sorted(agent.seen)} {agent.style.tone} {sorted(agent.tags)}"


def objects_inside_a_lent_object(q: str) -> Any:
    agent = Agent()
    seen = describe(agent)
    agent.seen.add(q)  # after the call: plain Python's op saw none of these
    agent.style.tone = "chatty"
    agent.tags.add("urgent")
    return seen


@xcs.op
def call_it(fn: Any) -> str:  # not logged: a callable's repr shows its address
    return repr(fn())


def callables_lend_what_they_hold(given: list[str]) -> Any:
    def fmt(parts: list[str]) -> str:
        return ",".join(parts)

    items = list(given)
    doc = {"k": "v"}
    got = (
        call_it(functools.partial(fmt, items)),
        call_it(lambda: fmt(items)),
        call_it(items.copy),
        call_it(doc.copy),
    )
    items.append("late")
    doc["k"] = "changed"
    return got


@dataclasses.dataclass(eq=False)
class Node:
    name: str


@dataclasses.dataclass
class Conversation:
    turns: list[str]

    def __post_init__(self) -> None:
        self.stats = {"turns": len(self.turns)}  # not a field


class Message(collections.namedtuple("Message", "role text")):
    pass


@logged()
def lookup(node: Any, nodes: list[Any], table: dict[Any, str]) -> str:
    return f"{node in nodes} {table.get(node)}"


@logged()
def read_stats(conversation: Any, message: Any) -> str:
    return f"{conversation.stats} {getattr(message, 'lang', '?')}"


@logged()
def listed(values: Any) -> str:
    return ",".join(str(v) for v in values)


def identities_attributes_and_order(q: str) -> Any:
    node = Node(q)
    found = lookup(node, [node], {node: "found"})
    conversation = Conversation(["hi"])
    message = Message("user", q)
    message.lang = "es"  # type: ignore[attr-defined]
    stats = read_stats(conversation, message)
    conversation.stats["turns"] += 1  # after the call
    ids = set(range(70))
    for i in range(70):
        if i % 7:
            ids.discard(i)  # deletions: a copy would iterate in another order
    ids.add(64)
    return found, stats, listed(ids)


class Stamp(datetime.datetime):
    pass


def more_clocks(q: str) -> Any:
    start, wall = time.clock_gettime(time.CLOCK_MONOTONIC), Stamp.now()
    reply = slow_echo(q, 0.1)
    elapsed = time.clock_gettime(time.CLOCK_MONOTONIC) - start
    return reply, elapsed >= 0.1, (Stamp.now() - wall).total_seconds() >= 0.1


class Document:
    def __init__(self, text: str) -> None:
        self.file = io.StringIO(text)

    def __repr__(self) -> str:
        return "Document()"


@logged()
def title_of(document: Any) -> str:
    return document.file.readline().strip()


def an_iterator_inside_an_object(text: str) -> Any:
    document = Document(text)
    title = title_of(document)  # consumes the first line: it runs at once
    rest = document.file.read()
    document.file.close()
    return title, rest


def an_op_defined_here_consumes_an_iterator(xs: list[int]) -> Any:
    @xcs.op
    def first_two(items: Any) -> list[Any]:
        return [next(items), next(items)]

    items = iter(xs)
    return first_two(items), list(items)


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (effects_of_methods_properties_and_operators, ("abc",)),
        (generators_next_and_islice, (6,)),
        (objects_inside_a_lent_object, ("q",)),
        (callables_lend_what_they_hold, (["a"],)),
        (identities_attributes_and_order, ("a",)),
        (more_clocks, ("a",)),
        (an_iterator_inside_an_object, ("Title\nbody\n",)),
        (an_op_defined_here_consumes_an_iterator, ([1, 2, 3],)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_found_by_hunts(fn: Any, args: tuple[Any, ...]) -> None:
    assert_same_as_plain(fn, xcs.jit(fn), *args)
