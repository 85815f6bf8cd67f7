"""Snapshots of arguments, resolution of templates, concrete results."""

from __future__ import annotations

import dataclasses
import io
from collections import OrderedDict, namedtuple
from typing import Any

from ember.xcs._internal.concrete import concretize
from ember.xcs._internal.deferred import Deferred
from ember.xcs._internal.ir import Ref, Stream
from ember.xcs._internal.snapshots import copy_structure, resolve, snapshot
from ember.xcs._internal.tracer import Recording
from tests.helpers import LOG, echo

Point = namedtuple("Point", "x y")


@dataclasses.dataclass
class Config:
    name: str
    items: list[Any]


@dataclasses.dataclass(frozen=True)
class Frozen:
    value: Any


def test_containers_are_copied_level_by_level(recording: Recording) -> None:
    inner = [1, 2]
    outer = {"a": inner, "b": (inner, {3})}
    (args, _, found) = snapshot((outer,), {}, recording, {})
    copied = args[0]
    assert copied == outer
    assert copied is not outer and copied["a"] is not inner and copied["b"][0] is not inner
    inner.append(99)
    assert copied["a"] == [1, 2]
    assert not found.markers and found.deps == []


def test_pending_deferred_values_become_refs_and_dependencies(recording: Recording) -> None:
    d = echo.defer("x")
    args, kwargs, found = snapshot(([d, "lit"],), {"k": {"v": d}}, recording, {})
    node = d._self_node
    assert args[0] == [Ref(node), "lit"]
    assert kwargs == {"k": {"v": Ref(node)}}
    assert found.deps == [node] and found.markers


def test_known_deferred_values_become_their_values(recording: Recording) -> None:
    d = echo.defer("x")
    str(d)
    args, _, found = snapshot((d,), {}, recording, {})
    assert args == ("x",) and type(args[0]) is str
    assert found.deps == [d._self_node] and not found.markers


def test_named_tuples_dataclasses_and_dict_subclasses_keep_their_types(
    recording: Recording,
) -> None:
    d = echo.defer("x")
    cfg = Config("c", [d])
    frozen = Frozen(d)
    args, _, _ = snapshot((Point(d, 1), cfg, frozen, OrderedDict(a=d)), {}, recording, {})
    point, cfg_copy, frozen_copy, ordered = args
    assert type(point) is Point and point.x == Ref(d._self_node)
    assert (
        type(cfg_copy) is Config and cfg_copy is not cfg and cfg_copy.items == [Ref(d._self_node)]
    )
    assert cfg.items[0] is d  # the user's object is untouched
    assert type(frozen_copy) is Frozen and frozen_copy.value == Ref(d._self_node)
    assert type(ordered) is OrderedDict
    values = {d._self_node: "X"}
    assert resolve(point, values) == Point("X", 1)
    assert resolve(cfg_copy, values) == Config("c", ["X"])
    assert resolve(frozen_copy, values) == Frozen("X")
    assert resolve(ordered, values) == OrderedDict(a="X")


def test_iterators_and_generators_are_never_drained(recording: Recording) -> None:
    gen = (echo.defer(i) for i in range(3))  # nothing runs it while recording
    items = iter([1, 2])
    args, _, found = snapshot((items, gen), {}, recording, {})
    assert type(args[0]) is Stream and args[0].source is items
    assert type(args[1]) is Stream and args[1].source is gen
    assert found.iterators and found.markers
    assert recording.pending == [] and LOG.names() == []
    assert next(items) == 1  # untouched: the first item is still there
    resolved = resolve(args[0], {})
    assert list(resolved) == [2]


def test_files_are_passed_by_reference_not_drained(recording: Recording) -> None:
    handle = io.StringIO("a\nb\n")
    args, _, _ = snapshot((handle,), {}, recording, {})
    assert args[0] is handle


def test_cycles_are_copied_once(recording: Recording) -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    args, _, _ = snapshot((loop,), {}, recording, {})
    assert args[0][1] is args[0]


def test_inputs_are_found_at_the_top_level_and_one_level_down(recording: Recording) -> None:
    top, inner, deep = "top", ["inner"], ["deep"]
    ids = {id(top): 0, id(inner): 1, id(deep): 2}
    _, _, found = snapshot((top, [inner, [deep]]), {}, recording, ids)
    assert found.inputs == [0, 1]


def test_resolve_can_copy_referenced_values(recording: Recording) -> None:
    shared = [1, [2]]
    values = {0: shared}
    plain = resolve(Ref(0), values)
    copied = resolve(Ref(0), values, copy_refs=True)
    assert plain is shared
    assert copied == shared and copied is not shared and copied[1] is not shared[1]
    assert copy_structure("s") == "s"


def test_concretize_patches_mutable_containers_in_place(recording: Recording) -> None:
    d = echo.defer("x")
    items = [d, {"k": d, d: "keyed"}]
    str(d)
    out = concretize(items, lambda deferred: deferred.__wrapped__)
    assert out is items
    assert items == ["x", {"k": "x", "x": "keyed"}]
    assert all(type(v) is not Deferred for v in [items[0], *items[1].values(), *items[1].keys()])


def test_concretize_rebuilds_immutable_containers(recording: Recording) -> None:
    d = echo.defer("x")
    value = (d, Point(d, (d,)), frozenset({"a"}))
    str(d)
    out = concretize(value, lambda deferred: deferred.__wrapped__)
    assert out == ("x", Point("x", ("x",)), frozenset({"a"}))
    assert type(out[0]) is str and type(out[1]) is Point and type(out[1].y[0]) is str
    assert out[2] is value[2]  # nothing to rebuild: the same object


def test_concretize_rebuilds_slices_and_patches_the_dicts_behind_views(
    recording: Recording,
) -> None:
    d = echo.defer("x")
    str(d)
    mapping = {"k": d}
    out = concretize((slice(None, d), mapping.items()), lambda deferred: deferred.__wrapped__)
    assert out[0] == slice(None, "x") and type(out[0].stop) is str
    assert out[1] is not None and type(mapping["k"]) is str  # the view shows the values
    assert list(out[1]) == [("k", "x")]


def test_concretize_sets_dataclass_fields_and_object_attributes(recording: Recording) -> None:
    class Plain:
        def __init__(self, v: Any) -> None:
            self.v = v

    d = echo.defer("x")
    cfg, frozen, plain = Config("c", [d]), Frozen(d), Plain(d)
    str(d)
    concretize([cfg, frozen, plain], lambda deferred: deferred.__wrapped__)
    assert type(cfg.items[0]) is str and type(frozen.value) is str and type(plain.v) is str


def test_concretize_handles_cycles(recording: Recording) -> None:
    d = echo.defer("x")
    loop: list[Any] = [d]
    loop.append(loop)
    str(d)
    out = concretize(loop, lambda deferred: deferred.__wrapped__)
    assert out[0] == "x" and type(out[0]) is str and out[1] is out
