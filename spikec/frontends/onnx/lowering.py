"""Lower a checked ONNX graph into SIR: values, the batch axis, constant folding, node building.

``Lowering`` walks the ONNX nodes in order. A node whose inputs are all constants is evaluated
(``folding.evaluate``: alone, in a model of the source's opsets) and its outputs become
constants; any other node goes to the handler registered for its op type
(``registry.ONNX_HANDLERS``).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from spikec.errors import FrontendError, ShapeError, SpikecWarning
from spikec.frontends.onnx import folding, work
from spikec.frontends.onnx.batch_plan import FLOAT_TYPES, BatchPlan  # noqa: F401 - re-exported
from spikec.frontends.onnx.layout import BatchAxisError, Layout, per_sample_constant
from spikec.frontends.onnx.protos import as_input_dtype, dense_array, initializer_array, node_reads, sir_name
from spikec.frontends.onnx.registry import (
    DOMAIN_HANDLERS,
    ONNX_HANDLERS,
    Act,
    Const,
    Handler,
    OnnxNode,
    Outputs,
    Value,
    supported_ops,
)
from spikec.ir import Constant, Input, Output, Reshape
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Inputs, Node

NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


class _Inherit:
    """``Lowering.add``'s default layout: that of the input of highest rank."""


INHERIT = _Inherit()


def _inherited(inputs: Sequence[Act], rank: int) -> Layout | None:
    batched = [a for a in inputs if a.layout is not None]
    if not batched:
        return None
    ref = max(batched, key=lambda a: len(a.shape))
    assert ref.layout is not None
    return ref.layout.shifted(rank - len(ref.shape))  # broadcasting adds axes in front


class Lowering:
    """State of one import: the SIR nodes and edges built so far, and the value of every ONNX name."""

    def __init__(
        self,
        model: onnx.ModelProto,
        *,
        file: str,
        initializers: dict[str, np.ndarray] | None = None,
        types: Mapping[str, int] | None = None,
    ) -> None:
        """``initializers``: arrays of initializers taken out of ``model`` (the dict is emptied by ``run``).
        ``types``: the ONNX element type of each value, as shape inference found it."""
        self.model = model
        self.types = dict(types or {})
        self.initializers = {} if initializers is None else initializers
        self.graph = model.graph
        self.file = file
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.values: dict[str, Value] = {}
        self.plan = BatchPlan({}, ())
        self.current: OnnxNode | None = None
        self.token_ids: set[Act] = set()  # raw ids of Inputs that became TokenInputs (used up by the lookup)

    @property
    def batch(self) -> bool:
        """True when the inputs carry a batch axis (``BatchPlan``)."""
        return bool(self.plan.sizes)

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        """The batch size (static), or two trial sizes (symbolic); ``(1,)`` without a batch axis."""
        return self.plan.sizes or (1,)

    # -- errors and axes -------------------------------------------------------------------------
    def where(self) -> str:
        where = f"{self.file}: "
        if self.current is not None:
            where += f"ONNX node '{self.current.label}' ({self.current.op}): "
        return where

    def fail(self, problem: str) -> FrontendError:
        """A ``FrontendError`` naming the file and the ONNX node being lowered."""
        return FrontendError(self.where() + problem)

    def rank(self, v: Value) -> int:
        """The ONNX rank of a value (an activation's includes its batch axis)."""
        if isinstance(v, Const):
            return int(v.value.ndim)
        return len(v.shape) if v.layout is None else v.layout.onnx_rank(len(v.shape))

    def axis(self, x: Act, axis: int) -> int:
        """ONNX ``axis`` of activation ``x`` as a per-sample axis (``BatchAxisError`` on the batch axis)."""
        rank = self.rank(x)
        if not -rank <= axis < rank:
            raise self.fail(f"axis {axis} is out of range for rank {rank}")
        axis = axis + rank if axis < 0 else axis
        return axis if x.layout is None else x.layout.sample_axis(axis)

    def full_shape(self, act: Act, world: int = 0) -> tuple[int, ...]:
        """The ONNX shape of an activation, with the batch size of trial ``world``."""
        if act.layout is None:
            return tuple(act.shape)
        return act.layout.onnx_shape(act.shape, self.batch_sizes[world])

    def worlds(self) -> range:
        """The trial batch sizes to check shape arithmetic in (one for a static batch)."""
        return range(len(self.batch_sizes))

    # -- constants ---------------------------------------------------------------------------------
    def static(self, c: Const, what: str) -> np.ndarray:
        if c.alt is not None:
            raise self.fail(
                f"{what} depends on the batch size, which spikec keeps symbolic; export with a static batch"
            )
        return c.value

    def per_sample(self, c: Const, like: Act, what: str = "constant operand") -> np.ndarray:
        """A constant operand combined with activation ``like``, as one sample's array (numpy broadcasting
        aligns it with ``like``'s ONNX view from the right; see ``layout.per_sample_constant``)."""
        if like.layout is None:
            return self.static(c, what)
        results = []
        for w in self.worlds():
            value = c.alt if w and c.alt is not None else c.value
            batch = self.batch_sizes[w] if c.alt is not None or len(self.batch_sizes) == 1 else 0
            try:
                results.append(per_sample_constant(np.asarray(value), like.layout, like.shape, batch))
            except BatchAxisError as err:
                raise BatchAxisError(f"{what}: {err}") from None
        if any(r.shape != results[0].shape or not np.array_equal(r, results[0]) for r in results[1:]):
            raise BatchAxisError(f"{what} depends on the batch size")
        return results[0]

    def act(self, v: Value, like: Act | None = None, what: str = "constant operand") -> Act:
        """``v`` as an activation: a constant becomes a ``Constant`` source node, per sample of ``like``."""
        if isinstance(v, Act):
            return v
        value = self.static(v, what) if like is None else self.per_sample(v, like, what)
        return self.add(Constant(value=np.asarray(value, dtype=np.float64)), [], suffix="const", layout=None)

    # -- the batch axis ------------------------------------------------------------------------------
    def unbatch(self, x: Act) -> Act:
        """``x`` with its batch axis (size 1) made a sample axis: a static batch of 1 lets any op act on it."""
        if x.layout is None:
            return x
        if self.batch_sizes != (1,):
            raise BatchAxisError(x.layout.describe_group())
        full = self.full_shape(x)
        return (
            self.add(Reshape(shape=full), [x], suffix="unbatch", layout=None)
            if full != x.shape
            else Act(x.name, full, None)
        )

    def adopt(self, x: Act, axis: int) -> Act:
        """``x`` with ONNX axis ``axis`` taken as the batch axis (a static batch of 1, or no batch axis)."""
        if x.layout == Layout(axis):
            return x
        x = self.unbatch(x) if x.layout is not None else x
        if not self.batch or self.batch_sizes != (1,) or not 0 <= axis < len(x.shape) or x.shape[axis] != 1:
            raise BatchAxisError(f"needs the batch axis as axis {axis} of an input of ONNX shape {self.full_shape(x)}")
        shape = x.shape[:axis] + x.shape[axis + 1 :]
        return self.add(Reshape(shape=shape), [x], suffix="batch", layout=Layout(axis))

    def aligned(self, acts: Sequence[Act]) -> list[Act]:
        """Activations combined by one op, with their batch axes in one place (right-aligned ONNX views).

        Layouts that differ are refused, except with a static batch of 1, where all become batch-free.
        ``Constant`` sources hold one sample's operand already and are passed through."""
        live = [a for a in acts if not (a.layout is None and isinstance(self.nodes.get(a.name), Constant))]
        with_batch = [a for a in live if a.layout is not None]
        if not with_batch:
            return list(acts)
        ref = max(with_batch, key=lambda a: len(a.shape))

        def key(a: Act) -> tuple[int, ...] | None:
            if a.layout is None:
                return None
            lay, rank = a.layout, self.rank(a)
            group = tuple(a.shape[g] for g in lay.group_axes())
            return (rank - lay.group, lay.before, lay.after, *group)

        if all(key(a) == key(ref) for a in live):
            return list(acts)
        if self.batch_sizes == (1,):
            return [self.unbatch(a) if a in live else a for a in acts]
        shapes = [self.full_shape(a) for a in live]
        raise BatchAxisError(f"operands of ONNX shapes {shapes} hold the batch axis in different places")

    # -- building ----------------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.nodes:
            name, k = f"{base}_{k}", k + 1
        return name

    def add(
        self,
        node: Node,
        inputs: Sequence[Act],
        suffix: str = "",
        label: str = "",
        layout: Layout | None | _Inherit = INHERIT,
    ) -> Act:
        """Add ``node`` fed by ``inputs`` (in order); returns its output with the inferred shape.
        The name and origin come from the ONNX node being lowered (or ``label``). The output's batch
        layout is ``layout``, by default that of the input of highest rank (elementwise ops)."""
        label = label or (self.current.label if self.current is not None else node.kind)
        name = self.unique(sir_name(f"{label}_{suffix}" if suffix else label))
        node = node.replace(origin=f"onnx:{label}")
        shapes = [tuple(a.shape) for a in inputs]
        if node.inputs is Inputs.SUM and shapes:
            if any(s != shapes[0] for s in shapes):
                raise self.fail(f"summed inputs of {node.kind} differ in shape: {shapes}")
            shapes = shapes[:1]
        node.verify(name)  # VerifyError naming the node and its ONNX origin (NaN weights, ...)
        try:
            shape = tuple(int(d) for d in node.infer_shape(shapes))
        except ShapeError as err:
            raise self.fail(f"{node.kind} cannot take inputs of shapes {shapes}: {err}") from None
        if 0 in shape:
            raise self.fail(f"the result has a zero-size shape {shape}; spikec needs non-empty tensors")
        work.check_value(shape, self.where())
        if isinstance(node, Constant):  # built now, not at run time
            work.check_constant(math.prod(shape), f"{self.where()}a constant")
        self.nodes[name] = node
        self.edges += [Edge(a.name, name) for a in inputs]
        if isinstance(layout, _Inherit):
            layout = _inherited(inputs, len(shape))
        return Act(name, shape, layout)

    def chain(self, x: Act, *nodes: Node) -> Act:
        for node in nodes:
            x = self.add(node, [x])
        return x

    # -- the walk ------------------------------------------------------------------------------------
    def run(self, *, plan: BatchPlan, constants: Mapping[str, Any]) -> Graph:
        """Lower the whole graph with the inputs' batch axes as ``plan`` places them."""
        for init in self.graph.initializer:
            self.values[init.name] = Const(initializer_array(init, self.file))
        while self.initializers:  # taken over one by one: each is dropped after its last reader
            name, array = self.initializers.popitem()
            self.values[name] = Const(array)
        for sparse in self.graph.sparse_initializer:
            self.values[sparse.values.name] = Const(dense_array(sparse))
        inputs = {vi.name: vi for vi in self.graph.input}
        for name, value in constants.items():
            self.values[name] = Const(as_input_dtype(np.asarray(value), inputs[name]))
        self.plan = plan
        for name, (shape, axis) in plan.inputs.items():
            node = self.unique(sir_name(name))
            self.nodes[node] = Input(shape=shape, origin=f"onnx:{name}")
            self.values[name] = Act(node, shape, None if axis is None else Layout(axis))
        used = {name for n in self.graph.node for name in node_reads(n)} | {o.name for o in self.graph.output}
        reads = Counter(name for n in self.graph.node for name in node_reads(n) if name)
        outputs = {o.name for o in self.graph.output}
        for proto in self.graph.node:
            self._node(proto, used)
            for name in node_reads(proto):  # drop each value after its last reader (weights are freed as they go)
                reads[name] -= 1
                if name and not reads[name] and name not in outputs:
                    self.values.pop(name, None)
        self.current = None
        self._outputs()
        return self._finish()

    def inline(self, branch: onnx.GraphProto) -> list[Value]:
        """Lower the nodes of a subgraph (the taken branch of an ``If``) as if they stood in place of
        the node being lowered; returns the values of the subgraph's outputs."""
        outer = self.current
        for init in branch.initializer:
            self.values[init.name] = Const(initializer_array(init, self.file))
        used = {name for n in branch.node for name in node_reads(n)} | {o.name for o in branch.output}
        for proto in branch.node:
            self._node(proto, used)
        self.current = outer
        missing = [o.name for o in branch.output if o.name not in self.values]
        if missing:
            raise self.fail(f"the branch never computes its outputs {missing}")
        return [self.values[o.name] for o in branch.output]

    def _node(self, proto: onnx.NodeProto, used: set[str]) -> None:
        ins: list[Value | None] = []
        for name in proto.input:
            if not name:
                ins.append(None)
            elif name not in self.values:
                raise FrontendError(
                    f"{self.file}: ONNX node '{proto.name or proto.op_type}' reads '{name}' before it is set"
                )
            else:
                ins.append(self.values[name])
        node = OnnxNode(proto, ins, [o in used for o in proto.output])
        self.current = node
        spent = [v.name for v in ins if isinstance(v, Act) and v in self.token_ids]
        if spent and proto.op_type not in ("Shape", "Size"):
            raise self.fail(
                f"reads the token ids of input '{spent[0]}', which an embedding lookup encodes on the host; spikec "
                "cannot also use the raw ids in the network (export the model so that only the lookup reads them)"
            )
        custom = proto.domain not in ("", "ai.onnx")
        if custom and f"{proto.domain}.{proto.op_type}" not in DOMAIN_HANDLERS:
            raise self.fail(_unknown_custom(proto))
        has_subgraph = any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in proto.attribute)
        foldable = not custom and proto.op_type not in NOT_FOLDED and not has_subgraph
        if foldable and all(v is None or isinstance(v, Const) for v in ins):
            outs: Sequence[Value | None] = self._fold(node)
        else:
            fn = DOMAIN_HANDLERS[f"{proto.domain}.{proto.op_type}"] if custom else ONNX_HANDLERS.get(proto.op_type)
            if fn is None:
                raise self.fail(f"op type '{proto.op_type}' is not supported; {_supported()}")
            outs = self._lower(fn, node)
        for k, name in enumerate(proto.output):
            if not name:
                continue
            value = outs[k] if k < len(outs) else None
            if value is None:
                if node.used[k]:
                    raise self.fail(f"output {k} ('{name}') is not supported, but the model uses it")
                continue
            self.values[name] = value

    def _lower(self, fn: Handler, node: OnnxNode) -> Outputs:
        """Run a handler; with a static batch of 1, an op that acts on the batch axis runs again with the
        batch as an ordinary axis (one sample: nothing to mix). Otherwise the error names the node."""
        try:
            return fn(node, self)
        except BatchAxisError as err:
            if self.batch_sizes != (1,) or not self.batch:
                raise BatchAxisError(
                    f"{self.where()}{err}, which mixes samples: SIR values hold one sample each. {self.plan.advice}"
                ) from None
        ins = [self.unbatch(v) if isinstance(v, Act) else v for v in node.ins]
        self.current = node = OnnxNode(node.proto, ins, node.used)
        try:
            return fn(node, self)
        except BatchAxisError as err:
            raise self.fail(str(err)) from None

    def _fold(self, node: OnnxNode) -> list[Const | None]:
        worlds = 2 if any(isinstance(v, Const) and v.alt is not None for v in node.ins) else 1
        results = []
        for w in range(worlds):
            feeds = {
                name: (v.alt if w and v.alt is not None else v.value)
                for name, v in zip(node.proto.input, node.ins, strict=True)
                if name and isinstance(v, Const)
            }
            work.check_fold(node.proto, [feeds.get(name) for name in node.proto.input], self.where())
            try:
                results.append(folding.evaluate(node.proto, feeds, self.model.opset_import))
            except Exception as err:  # onnx.reference raises whatever numpy raises
                raise self.fail(f"cannot evaluate this constant expression: {type(err).__name__}: {err}") from None
        return [
            None if a is None or b is None else Const(a, None if worlds == 1 or _same(a, b) else b)
            for a, b in zip(results[0], results[-1], strict=True)
        ]

    def _outputs(self) -> None:
        for vi in self.graph.output:
            value = self.values.get(vi.name)
            if value is None:
                raise FrontendError(f"{self.file}: graph output '{vi.name}' is never computed")
            if isinstance(value, Const):
                arr = self.static(value, f"output '{vi.name}'")
                if self.batch and arr.ndim and self.batch_sizes == (arr.shape[0],):
                    arr = arr[0]  # one sample's worth; the run-time batch broadcasts it
                act = self.add(Constant(value=np.asarray(arr, dtype=np.float64)), [], "const", label=vi.name)
            else:
                act = self._output_act(vi.name, value)
            name = self.unique(sir_name(vi.name))
            self.nodes[name] = Output(origin=f"onnx:{vi.name}")
            self.edges.append(Edge(act.name, name))

    def _output_act(self, name: str, act: Act) -> Act:
        """The output as a per-sample value whose batch is an ONNX axis of its own (axis 0 for a guessed
        static batch: anything else means the guess was wrong, and a batch above 1 is retried as none)."""
        self.current = None
        lay = act.layout
        if lay == Layout(0):
            return act
        if self.plan.guessed or (lay is None and self.batch):
            if self.batch_sizes != (1,):
                raise BatchAxisError(f"graph output '{name}' does not hold the batch as ONNX axis 0")
            return self._one_sample_output(act)
        if lay is not None and lay.before == 0 and (lay.plain or lay.group == 0):
            self._note_layout(name, lay)  # (batch·rest, ...) holds spikec's (batch, rest, ...) in order
            return act
        if lay is not None:
            raise FrontendError(
                f"{self.file}: graph output '{name}' of ONNX shape {self.full_shape(act)} interleaves the batch with "
                f"other entries in axis {lay.group}; spikec returns one sample per row: reshape the output so that "
                "the batch is an axis of its own"
            )
        return act

    def _one_sample_output(self, act: Act) -> Act:
        """An output of a static batch of 1: its axis 0 is the batch when it has size 1 (else the whole
        value is the sample, and the run-time batch goes in front)."""
        full = self.full_shape(act)
        return self.adopt(act, 0) if full and full[0] == 1 else self.unbatch(act)

    def _note_layout(self, name: str, layout: Layout) -> None:
        if layout.group or not layout.plain:
            how = f"on ONNX axis {layout.group}" if layout.plain else "merged with the axes after it in ONNX axis 0"
            warnings.warn(
                f"{self.file}: output '{name}' carries the batch {how}; spikec's arrays hold the batch as an axis of "
                "its own, in front (move or reshape the axis to compare with onnxruntime)",
                SpikecWarning,
                stacklevel=5,
            )

    def _finish(self) -> Graph:
        """Drop what no output needs (warning about unused inputs) and build the verified graph."""
        feeds: dict[str, list[str]] = {}
        for e in self.edges:
            feeds.setdefault(e.dst, []).append(e.src)
        keep: set[str] = set()
        todo = [n for n, node in self.nodes.items() if node.sink]
        while todo:
            name = todo.pop()
            if name not in keep:
                keep.add(name)
                todo += feeds.get(name, [])
        for name, node in self.nodes.items():
            if node.graph_input and name not in keep:
                warnings.warn(
                    f"{self.file}: graph input '{node.origin.removeprefix('onnx:')}' does not reach any output; "
                    "it is dropped",
                    SpikecWarning,
                    stacklevel=4,
                )
        if not any(self.nodes[n].graph_input for n in keep):
            raise FrontendError(
                f"{self.file}: no graph input reaches an output: the model computes a constant "
                "(inputs bound with constants= are no longer inputs)"
            )
        nodes = {n: node for n, node in self.nodes.items() if n in keep}
        edges = [e for e in self.edges if e.dst in keep]
        return Graph(nodes, edges)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def _supported() -> str:
    return f"supported ops: {', '.join(supported_ops())}"


def _unknown_custom(proto: onnx.NodeProto) -> str:
    """Why a custom-domain op is refused: spikec knows only its own domain's neuron nodes."""
    own = sorted(DOMAIN_HANDLERS)
    return (
        f"op '{proto.op_type}' of custom domain '{proto.domain}' is not supported: spikec cannot know what a "
        f"custom op computes. It reads only its own neuron nodes ({', '.join(own)}), which "
        "spikec.frontends.torch_import.from_torch writes; re-export the model with standard ONNX ops, or import "
        "it from PyTorch with from_torch / `spikec import model.pt --arch ...`"
    )
