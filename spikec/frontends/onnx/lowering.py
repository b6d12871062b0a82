"""Lower a checked ONNX graph into SIR: values, the batch axis, constant folding, node building.

``Lowering`` walks the ONNX nodes in order. A node whose inputs are all constants is evaluated
(``folding.evaluate``: alone, in a model of the source's opsets) and its outputs become
constants; any other node goes to the handler registered for its op type
(``registry.ONNX_HANDLERS``).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from spikec.errors import FrontendError, ShapeError, SpikecWarning
from spikec.frontends.onnx import folding
from spikec.frontends.onnx.dynamic import dynamic_dim_error
from spikec.frontends.onnx.registry import (
    DOMAIN_HANDLERS,
    ONNX_HANDLERS,
    Act,
    Const,
    OnnxNode,
    Value,
    supported_ops,
)
from spikec.ir import Constant, Input, Output
from spikec.ir.graph import NAME_RE, Edge, Graph
from spikec.ir.node import Inputs, Node

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
NOT_FOLDED = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}
SYMBOLIC_BATCH = (2, 3)  # trial sizes of a symbolic batch axis, to tell batch-dependent shape values apart


def sir_name(name: str) -> str:
    """An ONNX name as a SIR node name (letters, digits, ``_ . -``; not starting with ``.``/``-``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name).strip("_") or "node"
    return cleaned if NAME_RE.fullmatch(cleaned) else f"n{cleaned}"


class Lowering:
    """State of one import: the SIR nodes and edges built so far, and the value of every ONNX name."""

    def __init__(self, model: onnx.ModelProto, *, file: str, initializers: dict[str, np.ndarray] | None = None) -> None:
        """``initializers``: arrays of initializers taken out of ``model`` (the dict is emptied by ``run``)."""
        self.model = model
        self.initializers = {} if initializers is None else initializers
        self.graph = model.graph
        self.file = file
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self.values: dict[str, Value] = {}
        self.batch = False
        self.batch_sizes: tuple[int, ...] = (1,)
        self.current: OnnxNode | None = None

    # -- errors and axes -------------------------------------------------------------------------
    def fail(self, problem: str) -> FrontendError:
        """A ``FrontendError`` naming the file and the ONNX node being lowered."""
        where = f"{self.file}: "
        if self.current is not None:
            where += f"ONNX node '{self.current.label}' ({self.current.op}): "
        return FrontendError(where + problem)

    def rank(self, v: Value) -> int:
        """The ONNX rank of a value (an activation's includes the batch axis when there is one)."""
        return v.value.ndim if isinstance(v, Const) else len(v.shape) + int(self.batch)

    def axis(self, axis: int, rank: int) -> int:
        """ONNX ``axis`` of a rank-``rank`` tensor as a per-sample axis (fails on the batch axis)."""
        if not -rank <= axis < rank:
            raise self.fail(f"axis {axis} is out of range for rank {rank}")
        axis = axis + rank if axis < 0 else axis
        if self.batch:
            if axis == 0:
                raise self.fail(
                    "the op acts on the batch axis (axis 0), which spikec keeps apart: SIR shapes are per "
                    "sample. Export the model so that it does not mix samples, or import with batch_axis=False"
                )
            return axis - 1
        return axis

    def full_shape(self, act: Act, world: int = 0) -> tuple[int, ...]:
        """The ONNX shape of an activation, with the batch size of trial ``world`` in front."""
        return (self.batch_sizes[world], *act.shape) if self.batch else tuple(act.shape)

    # -- constants ---------------------------------------------------------------------------------
    def static(self, c: Const, what: str) -> np.ndarray:
        if c.alt is not None:
            raise self.fail(
                f"{what} depends on the batch size, which spikec keeps symbolic; export with a static batch"
            )
        return c.value

    def per_sample(self, c: Const, rank: int, what: str = "constant operand") -> np.ndarray:
        """A constant operand combined with rank-``rank`` activations, without the batch axis:
        numpy broadcasting aligns its last axes with theirs, so a full-rank constant must have
        size 1 on the batch axis (and is dropped there); a higher-rank one would move the batch."""
        value = self.static(c, what)
        if not self.batch or value.ndim < rank:
            return value
        if value.ndim > rank or value.shape[0] != 1:
            raise self.fail(
                f"{what} of shape {value.shape} broadcasts over the batch axis of a rank-{rank} tensor; "
                "spikec needs operands that treat every sample alike"
            )
        return value[0]

    def act(self, v: Value, rank: int | None = None, what: str = "constant operand") -> Act:
        """``v`` as an activation: a constant becomes a ``Constant`` source node (per sample)."""
        if isinstance(v, Act):
            return v
        value = self.per_sample(v, self.rank(v) if rank is None else rank, what)
        return self.add(Constant(value=np.asarray(value, dtype=np.float64)), [], suffix="const")

    # -- building ----------------------------------------------------------------------------------
    def unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.nodes:
            name, k = f"{base}_{k}", k + 1
        return name

    def add(self, node: Node, inputs: Sequence[Act], suffix: str = "", label: str = "") -> Act:
        """Add ``node`` fed by ``inputs`` (in order); returns its output with the inferred shape.
        The name and origin come from the ONNX node being lowered (or ``label``)."""
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
        self.nodes[name] = node
        self.edges += [Edge(a.name, name) for a in inputs]
        return Act(name, shape)

    def chain(self, x: Act, *nodes: Node) -> Act:
        for node in nodes:
            x = self.add(node, [x])
        return x

    # -- the walk ------------------------------------------------------------------------------------
    def run(
        self,
        *,
        batch_axis: bool | None,
        constants: Mapping[str, Any],
        input_shapes: Mapping[str, Sequence[int]],
    ) -> Graph:
        for init in self.graph.initializer:
            self.values[init.name] = Const(initializer_array(init, self.file))
        while self.initializers:  # taken over one by one: each is dropped after its last reader
            name, array = self.initializers.popitem()
            self.values[name] = Const(array)
        for sparse in self.graph.sparse_initializer:
            self.values[sparse.values.name] = Const(_dense(sparse))
        inputs = {vi.name: vi for vi in self.graph.input}
        unknown = sorted(set(constants) - set(inputs))
        if unknown:
            raise self.fail(f"constants {unknown} are not graph inputs; inputs: {list(inputs)}")
        for name, value in constants.items():
            self.values[name] = Const(_as_input_dtype(np.asarray(value), inputs[name]))
        live = [vi for vi in self.graph.input if vi.name not in self.values]
        self._inputs(live, batch_axis, input_shapes)
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

    def _inputs(
        self, live: list[onnx.ValueInfoProto], batch_axis: bool | None, input_shapes: Mapping[str, Sequence[int]]
    ) -> None:
        dims: dict[str, list[int | str | None]] = {}
        for vi in live:
            t = vi.type
            if not t.HasField("tensor_type"):
                raise self.fail(f"input '{vi.name}' is not a tensor ({t.WhichOneof('value')}); spikec imports tensors")
            if t.tensor_type.elem_type not in FLOAT_TYPES:
                elem = onnx.TensorProto.DataType.Name(t.tensor_type.elem_type)
                raise self.fail(
                    f"input '{vi.name}' has element type {elem}; spikec evaluates real-valued tensors: "
                    f"bind it to a value with import_onnx(..., constants={{'{vi.name}': ...}})"
                )
            if vi.name in input_shapes:
                dims[vi.name] = [None if int(d) < 0 else int(d) for d in input_shapes[vi.name]]
            elif not t.tensor_type.HasField("shape"):
                raise self.fail(f"input '{vi.name}' has no declared shape: pass input_shapes={{'{vi.name}': (...)}}")
            else:
                dims[vi.name] = [
                    d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.tensor_type.shape.dim
                ]
        leading = [d[0] if d else 0 for d in dims.values()]
        if batch_axis is None:
            self.batch = bool(dims) and all(d is None or isinstance(d, str) or d == 1 for d in leading)
        else:
            self.batch = batch_axis
            if batch_axis and not all(dims.values()):
                raise self.fail("batch_axis=True, but an input is a scalar (no axis 0)")
        if self.batch:
            static = {d for d in leading if isinstance(d, int)}
            if any(not isinstance(d, int) for d in leading):
                self.batch_sizes = SYMBOLIC_BATCH
            elif len(static) == 1:
                self.batch_sizes = (static.pop(),)
            else:
                raise self.fail(f"inputs disagree on the batch size (axis 0): {leading}")
        for vi in live:
            shape = dims[vi.name][1:] if self.batch else dims[vi.name]
            for k, d in enumerate(shape):
                axis = k + int(self.batch)
                if not isinstance(d, int):
                    raise dynamic_dim_error(self.graph, self.file, vi.name, axis, d if isinstance(d, str) else "")
                if d == 0:
                    raise self.fail(f"input '{vi.name}' has size 0 on axis {axis}; spikec needs non-empty tensors")
            static_shape = tuple(int(d) for d in shape if isinstance(d, int))
            name = self.unique(sir_name(vi.name))
            self.nodes[name] = Input(shape=static_shape, origin=f"onnx:{vi.name}")
            self.values[vi.name] = Act(name, static_shape)

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
            outs = fn(node, self)
        for k, name in enumerate(proto.output):
            if not name:
                continue
            value = outs[k] if k < len(outs) else None
            if value is None:
                if node.used[k]:
                    raise self.fail(f"output {k} ('{name}') is not supported, but the model uses it")
                continue
            self.values[name] = value

    def _fold(self, node: OnnxNode) -> list[Const | None]:
        worlds = 2 if any(isinstance(v, Const) and v.alt is not None for v in node.ins) else 1
        results = []
        for w in range(worlds):
            feeds = {
                name: (v.alt if w and v.alt is not None else v.value)
                for name, v in zip(node.proto.input, node.ins, strict=True)
                if name and isinstance(v, Const)
            }
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
                act = value
            name = self.unique(sir_name(vi.name))
            self.nodes[name] = Output(origin=f"onnx:{vi.name}")
            self.edges.append(Edge(act.name, name))

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


def node_reads(proto: onnx.NodeProto) -> list[str]:
    """The names a node reads: its inputs, and every name read inside its subgraphs (If branches)."""
    names = list(proto.input)
    for a in proto.attribute:
        for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
            names += [name for n in sub.node for name in node_reads(n)]
    return names


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b))


def initializer_array(init: onnx.TensorProto, file: str) -> np.ndarray:
    """An initializer's value; ``FrontendError`` naming it when its data does not match its type and dims."""
    try:
        return numpy_helper.to_array(init)
    except (ValueError, TypeError, OSError) as err:
        raise FrontendError(
            f"{file}: initializer '{init.name}' (dims {list(init.dims)}) is unreadable: {err}; re-export the model"
        ) from None


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


def _as_input_dtype(value: np.ndarray, vi: onnx.ValueInfoProto) -> np.ndarray:
    elem = vi.type.tensor_type.elem_type
    if elem:
        return value.astype(onnx.helper.tensor_dtype_to_np_dtype(elem), copy=False)
    return value


def _dense(sparse: onnx.SparseTensorProto) -> np.ndarray:
    values = numpy_helper.to_array(sparse.values)
    indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    if indices.ndim == 1:
        dense.reshape(-1)[indices] = values
    else:
        dense[tuple(indices.T)] = values
    return dense
