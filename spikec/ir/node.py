"""The node base class and the registry of node kinds.

A node kind is a frozen dataclass with keyword-only fields. Subclassing ``Node`` with a ``kind``
registers it in ``NODE_KINDS``; the printer, parser, NIR bridge and interpreter all look kinds up
there. Facts about a kind (a neuron, emits spikes, additive, ...) are ``traits`` on its class
(spikec.ir.traits), asked with ``node.has_trait(...)``. Array fields are copied into read-only
numpy arrays on construction; an array that a node already froze this way is shared instead of
copied again (``replace`` and the passes keep weights without duplicating them), and a node that
verified once is not checked again (it is immutable).
"""

from __future__ import annotations

import dataclasses
import enum
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

from spikec.errors import ShapeError, VerifyError
from spikec.ir.traits import Trait, check_traits

Shape = tuple[int, ...]
Array = np.ndarray
T = TypeVar("T", bound=Trait)

NODE_KINDS: dict[str, type[Node]] = {}

# Arrays made by Node.__post_init__ (owned, read-only, never handed out writable), by id. Such an
# array can be shared by any number of nodes, so it is reused rather than copied.
_FROZEN: dict[int, weakref.ref[np.ndarray]] = {}


def _is_frozen(value: Any) -> bool:
    ref = _FROZEN.get(id(value))
    return ref is not None and ref() is value


def _freeze(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    key = id(arr)
    _FROZEN[key] = weakref.ref(arr, lambda _, key=key: _FROZEN.pop(key, None))  # type: ignore[misc]
    return arr


class Level(enum.StrEnum):
    """Which dialect a node kind belongs to."""

    STRUCTURE = "structure"
    ANN = "ann"
    SNN = "snn"
    FIXED = "fixed"  # a target's fixed-point dialect: integer fields exactly as the chip stores them


class Inputs(enum.StrEnum):
    """How a node combines its incoming edges.

    ``SUM``: any number of edges of one shape, summed before the node (NIR's convention).
    ``ORDERED``: edges kept apart, in edge order (Concat).
    ``NONE``: a source (Input) takes no edges.
    """

    SUM = "sum"
    ORDERED = "ordered"
    NONE = "none"


class FieldKind(enum.StrEnum):
    """The value type of a node field, as the printer, parser and bridges see it."""

    ARRAY = "array"  # np.ndarray (read-only copy)
    OPTIONAL_ARRAY = "optional_array"  # np.ndarray | None
    INTS = "ints"  # tuple[int, ...]
    INT = "int"
    FLOAT = "float"
    STR = "str"
    GRAPH = "graph"  # a nested Graph (Subgraph)


_ANNOTATIONS = {
    "Array": FieldKind.ARRAY,
    "Array | None": FieldKind.OPTIONAL_ARRAY,
    "tuple[int, ...]": FieldKind.INTS,
    "int": FieldKind.INT,
    "float": FieldKind.FLOAT,
    "str": FieldKind.STR,
    "Graph": FieldKind.GRAPH,
}


def _field_kind(owner: type, field: dataclasses.Field[Any]) -> FieldKind:
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    try:
        return _ANNOTATIONS[annotation]
    except KeyError:
        raise TypeError(
            f"{owner.__name__}.{field.name}: annotation {annotation!r} is not one of {list(_ANNOTATIONS)}"
        ) from None


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Node:
    """Base of all node kinds. ``origin`` points back at the user's model (file, op, line)."""

    kind: ClassVar[str] = ""
    level: ClassVar[Level] = Level.ANN
    inputs: ClassVar[Inputs] = Inputs.SUM
    stateful: ClassVar[bool] = False
    sink: ClassVar[bool] = False  # a graph output: needs no outgoing edge
    graph_input: ClassVar[bool] = False  # fed from outside at run time (Input)
    traits: ClassVar[frozenset[Trait]] = frozenset()  # facts about the kind (spikec.ir.traits)

    origin: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        check_traits(cls, cls.traits)
        kind = cls.__dict__.get("kind")
        if kind:
            if kind in NODE_KINDS:
                raise TypeError(f"node kind {kind!r} registered twice: {NODE_KINDS[kind]} and {cls}")
            NODE_KINDS[kind] = cls

    def __post_init__(self) -> None:
        for name in self.array_fields():
            value = getattr(self, name)
            if value is None or _is_frozen(value):
                continue
            arr = np.array(value, copy=True, order="C")  # row-major: hashing and saving need no second copy
            if arr.dtype.kind == "c":
                raise TypeError(f"{type(self).__name__}.{name}: complex parameters are not supported")
            if arr.dtype.kind not in "fiub" or arr.dtype in (np.float16, np.longdouble):
                arr = arr.astype(np.float64)
            if not arr.dtype.isnative:
                arr = arr.astype(arr.dtype.newbyteorder("="))
            object.__setattr__(self, name, _freeze(arr))
        for name, value in self.params().items():
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

    # -- traits: facts about the kind, asked instead of lists of kind names ---------------------
    @classmethod
    def has_trait(cls, trait: type[Trait]) -> bool:
        """Whether the kind declares a trait of type ``trait`` (``node.has_trait(Neuron)``)."""
        return any(isinstance(t, trait) for t in cls.traits)

    @classmethod
    def get_trait(cls, trait: type[T]) -> T | None:
        """The kind's trait of type ``trait`` (with its fields), or None."""
        return next((t for t in cls.traits if isinstance(t, trait)), None)

    # -- introspection used by the printer, parser and bridges -------------------------------
    @classmethod
    def param_fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        """The kind's own fields (everything except ``origin``), in declaration order."""
        return tuple(f for f in dataclasses.fields(cls) if f.name != "origin")

    @classmethod
    def field_kinds(cls) -> dict[str, FieldKind]:
        """Name -> value type of every parameter field, in declaration order."""
        cached = cls.__dict__.get("_field_kinds_cache")
        if cached is None:
            cached = {f.name: _field_kind(cls, f) for f in cls.param_fields()}
            type.__setattr__(cls, "_field_kinds_cache", cached)
        return dict(cached)

    @classmethod
    def array_fields(cls) -> tuple[str, ...]:
        array_kinds = (FieldKind.ARRAY, FieldKind.OPTIONAL_ARRAY)
        return tuple(n for n, k in cls.field_kinds().items() if k in array_kinds)

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self.param_fields()}

    def replace(self, **changes: Any) -> Node:
        """A copy with some fields changed (nodes are immutable)."""
        return dataclasses.replace(self, **changes)

    # -- semantics ----------------------------------------------------------------------------
    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        """Output shape (per sample: no time or batch axis) from the input shapes.

        ``SUM`` nodes receive exactly one shape (the graph checks that summed edges agree).
        Raise ``ShapeError`` when the node cannot take the input.
        """
        raise NotImplementedError(f"{type(self).__name__}.infer_shape")

    def feed_shape(self) -> Shape:
        """A graph input's per-sample shape of the arrays it is fed (its output shape, unless it encodes)."""
        return self.infer_shape([])

    def host_side(self) -> str:
        """What this node computes on the host rather than in the network ("" for nothing)."""
        return ""

    def check_feed(self, name: str, values: np.ndarray) -> None:
        """Raise ``InputError`` naming input ``name`` when ``values`` are not what this graph input takes."""

    def problems(self) -> Iterator[str]:
        """Yield what is wrong with the parameters (empty when the node is well formed)."""
        for name in self.array_fields():
            value = getattr(self, name)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
                yield (
                    f"field '{name}' holds {bad} NaN/inf value(s); "
                    "fix or retrain the source model (spikec rejects non-finite parameters)"
                )
        return
        yield

    def describe(self, name: str) -> str:
        where = f" from {self.origin}" if self.origin else ""
        return f"node '{name}' ({self.kind}){where}"

    def verify(self, name: str = "<unnamed>") -> None:
        """Raise ``VerifyError`` naming the node if any parameter is inconsistent.

        The node is immutable, so a success is remembered: graphs rebuilt by passes re-verify only
        the nodes they changed (checking every weight for NaN on every rebuild was quadratic work).
        """
        if self.__dict__.get("_verified"):
            return
        for problem in self.problems():
            raise VerifyError(f"{self.describe(name)}: {problem}")
        object.__setattr__(self, "_verified", True)

    # -- equality: by kind and by value of every field (arrays compared by dtype and content) -
    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))

    __hash__ = None  # type: ignore[assignment]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
    return bool(a == b)


def node_kind(kind: str) -> type[Node]:
    """Look a kind up by name; the error lists the kinds that exist."""
    try:
        return NODE_KINDS[kind]
    except KeyError:
        known = ", ".join(sorted(NODE_KINDS))
        raise VerifyError(f"unknown node kind {kind!r}; known kinds: {known}") from None


def broadcast_problem(node: Node, field: str, shape: Shape) -> str | None:
    """Why ``node.<field>`` does not broadcast to ``shape`` (None when it does)."""
    value = getattr(node, field)
    if value is None:
        return None
    vshape = np.shape(value)
    try:
        if np.broadcast_shapes(vshape, shape) == shape:
            return None
    except ValueError:
        pass
    return f"parameter '{field}' of shape {vshape} does not broadcast to the input shape {shape}"


def elementwise_shape(node: Node, inputs: Sequence[Shape]) -> Shape:
    """The shape of a one-input elementwise kind: its input's, once every array parameter broadcasts to it."""
    (shape,) = inputs
    for name in node.array_fields():
        problem = broadcast_problem(node, name, shape)
        if problem:
            raise ShapeError(problem)
    return shape
