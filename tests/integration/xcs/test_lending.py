"""Objects an op gets by reference are lent to it: exact, and parallel where nothing changes.

A pending op reads what it was given when it runs. A change your code makes to such an
object later must not reach it (the op runs first, or gets a copy), and code that only
reads the object must not make anything wait. Each exactness program runs plainly and
under ``@jit`` (the differential harness); each parallelism program asserts the waves
it runs in.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
import warnings
from typing import Any

import numpy as np
import pydantic
import pytest

from ember import xcs
from tests.helpers import assert_same_as_plain, logged


@logged()
def load_memory(user: str) -> dict[str, Any]:
    return {"name": user, "facts": ["likes tea"]}


@logged()
def respond(agent: Any, message: str) -> str:
    return f"{message}: mood={agent.memory.get('mood')} facts={agent.memory.get('facts')}"


class Agent:
    def __init__(self, user: str) -> None:
        self.memory = load_memory(user)

    def __repr__(self) -> str:
        return "Agent()"


def a_pending_value_inside_a_lent_object_changed_later(user: str) -> Any:
    agent = Agent(user)
    reply = respond(agent, "hello")  # reads agent.memory, still pending
    agent.memory.update(mood="sad")  # after the call: plain Python's op saw no mood
    agent.memory.pop("facts")
    return reply


class Lazy:
    def __init__(self, value: str) -> None:
        self.value = value

    def __getattr__(self, name: str) -> str:  # Python code: it counts
        USAGE["reads"] += 1
        return self.value + name


USAGE = {"reads": 0}


@logged()
def get_lazy(q: str) -> Lazy:
    return Lazy(q)


def a_getattr_in_python_runs_in_order(q: str) -> Any:
    USAGE["reads"] = 0
    text = get_lazy(q).foo
    return text, USAGE["reads"]


class Bound:
    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: object) -> bool:
        return type(other) is str and self.value < other

    def __gt__(self, other: object) -> bool:
        return type(other) is str and self.value > other


@logged()
def shout(q: str) -> str:
    return q.upper()


@logged()
def score(q: str) -> float:
    return 1.5


@logged()
def listed(q: str) -> list[str]:
    return [q]


class Transcript:
    def __init__(self, parts: Any = ()) -> None:
        self.parts = list(parts)

    def __add__(self, other: object) -> Transcript:
        return Transcript([*self.parts, other if type(other) is str else "<not a str>"])

    def __repr__(self) -> str:
        return f"Transcript({self.parts})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transcript) and other.parts == self.parts


class Chat:
    def __init__(self) -> None:
        self.transcript = Transcript()
        self.scores = np.zeros(2)
        self.by_name = {"t": Transcript()}


def chained_comparisons_and_in_place_operators(q: str) -> Any:
    inside = Bound("A") < shout(q) < Bound("Z")
    array = np.zeros(2)
    array += score(q)  # numpy would take the proxy as an object
    queue = collections.deque(["x"])
    queue += listed(q)
    chat = Chat()
    chat.transcript += shout(q)  # Transcript.__add__ would get the proxy
    chat.scores += score(q)
    chat.by_name["t"] += shout(q)
    return inside, array.tolist(), list(queue), chat.transcript, chat.scores.tolist(), chat.by_name


def a_changing_method_handed_to_library_code(q: str) -> Any:
    agent = Agent(q)
    history: list[str] = []
    agent.history = history
    seen = respond(agent, q)
    list(map(history.append, ["late"]))  # changes what the op reads: it ran first
    return seen


class Slotted:
    __slots__ = ("_data",)

    def __init__(self, **data: Any) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        return self._data[name]

    def __repr__(self) -> str:
        return "Slotted()"


@logged()
def model_of(settings: Any) -> str:
    return str(settings.model)


def an_object_whose_getattr_delegates(q: str) -> Any:
    return model_of(Slotted(model=q))


class Registry:
    def __init__(self) -> None:
        self.slots: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        self.slots[key] = Holder()  # a store while the target is evaluated
        return self.slots[key]


class Holder:
    answer: Any = None


REGISTRY = Registry()


def a_store_while_the_target_is_evaluated(q: str) -> Any:
    REGISTRY.get(q).answer = shout(q)


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (a_pending_value_inside_a_lent_object_changed_later, ("bob",)),
        (a_getattr_in_python_runs_in_order, ("a",)),
        (chained_comparisons_and_in_place_operators, ("m",)),
        (a_changing_method_handed_to_library_code, ("q",)),
        (an_object_whose_getattr_delegates, ("m1",)),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_what_an_op_reads_is_what_plain_python_gave_it(fn: Any, args: tuple[Any, ...]) -> None:
    assert_same_as_plain(fn, xcs.jit(fn), *args)


def test_a_store_made_while_the_target_is_evaluated_is_still_settled() -> None:
    xcs.jit(a_store_while_the_target_is_evaluated)("a")
    assert type(REGISTRY.slots["a"].answer) is str


def test_exit_settles_only_its_own_values() -> None:
    shared: dict[str, Any] = {}

    @xcs.op
    def work(q: str) -> str:
        time.sleep(0.05)
        if q == "a":
            raise ValueError("bad")
        return q

    @xcs.jit
    def store(q: str) -> None:
        shared[q] = work(q)
        if q == "b":
            time.sleep(0.1)  # a's call ends meanwhile, with its failure pending in shared

    outcome: dict[str, Any] = {}

    def run(q: str) -> None:
        try:
            store(q)
            outcome[q] = "ok"
        except ValueError as error:
            outcome[q] = str(error)

    threads = [threading.Thread(target=run, args=(q,)) for q in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcome == {"a": "bad", "b": "ok"}  # b never raises a's error


def test_a_method_assumed_free_of_side_effects_that_is_not_says_so() -> None:
    class Note:
        def __init__(self, text: str) -> None:
            self.text = text

        def strip(self) -> str:
            return self.text

    @xcs.op
    def fetch(q):  # type: ignore[no-untyped-def]  # no annotation: known by what it returned
        return q if q == "plain" else Note(q)

    def program(q: str) -> Any:
        return fetch(q).strip()

    assert xcs.jit(program)("plain") == "plain"  # it returned a str
    with pytest.raises(xcs.XCSWarning, match=r"Note.strip\(\).*Annotate the op"):
        xcs.jit(program)("note")  # now a Note, whose strip() ran late: loud, not silent
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", xcs.XCSWarning)
        assert xcs.jit(program)("note") == "note"


# --- reading a lent object never waits ------------------------------------------------------


class Config:
    def __init__(self, model: str) -> None:
        self.model = model
        self.opts = {"top_k": 3}
        self.tags = ["a"]

    def __repr__(self) -> str:
        return f"Config({self.model})"


class Doc:
    def __init__(self, text: str) -> None:
        self.text = text
        self.summary = ""


@logged()
def ask_with(q: str, config: Any) -> str:
    time.sleep(0.02)
    return f"{q}:{config.model}"


@logged()
def summarize(doc: Any) -> str:
    time.sleep(0.02)
    return doc.text.upper()


LOGGER = logging.getLogger("ember.tests.lending")


def reads_of_a_lent_object(qs: list[str]) -> list[str]:
    config = Config("m")
    out = []
    for q in qs:
        out.append(ask_with(q, config))
        LOGGER.debug("asked %s with %s", q, config)  # below the level: never waits
        json.dumps(config.opts)
        str(config)
        config.opts.get("top_k")
        sorted(config.tags)
    return out


def stores_into_the_object_an_op_got(texts: list[str]) -> list[str]:
    docs = [Doc(t) for t in texts]
    for doc in docs:
        doc.summary = summarize(doc)  # the op got doc: it gets a copy made before this
    return [doc.summary for doc in docs]


class Asker:
    def __init__(self) -> None:
        self.calls = 0

    @logged()
    def ask(self, q: str) -> str:
        time.sleep(0.02)
        return q

    def run(self, qs: list[str]) -> list[str]:
        out = []
        for q in qs:
            out.append(self.ask(q))
            self.calls += 1  # a plain attribute store on the object the op got
        return out


@pytest.mark.parametrize(
    ("fn", "make_args"),
    [
        (reads_of_a_lent_object, lambda: (["a", "b", "c"],)),
        (stores_into_the_object_an_op_got, lambda: (["a", "b", "c"],)),
        (lambda qs: Asker().run(qs), lambda: (["a", "b", "c"],)),
    ],
    ids=["reads", "attribute stores", "an op method and a counter"],
)
def test_code_that_only_reads_or_stores_attributes_keeps_the_calls_parallel(
    fn: Any, make_args: Any
) -> None:
    trace = xcs.trace(fn, *make_args())
    assert [len(group) for group in trace.parallel_groups] == [3]
    assert trace.result == fn(*make_args())


def test_a_change_to_what_the_object_holds_still_waits() -> None:
    def program(qs: list[str]) -> list[str]:
        config = Config("m")
        out = []
        for q in qs:
            out.append(ask_with(q, config))
            config.tags.append(q)  # the op may read config.tags: it ran first
        return out

    trace = xcs.trace(program, ["a", "b", "c"])
    assert [len(group) for group in trace.parallel_groups] == [1, 1, 1]
    assert trace.result == program(["a", "b", "c"])


class PyDocSummarized(pydantic.BaseModel):
    text: str
    summary: str = ""


def test_a_store_into_a_pydantic_model_waits_for_the_value_it_validates() -> None:
    def program(texts: list[str]) -> list[str]:
        docs = [PyDocSummarized(text=t) for t in texts]
        for doc in docs:
            doc.summary = summarize(doc)  # pydantic's __setattr__ gets the real value
        return [doc.summary for doc in docs]

    trace = xcs.trace(program, ["a", "b"])
    assert [len(group) for group in trace.parallel_groups] == [1, 1]  # the documented cost
    assert trace.result == program(["a", "b"]) == ["A", "B"]
