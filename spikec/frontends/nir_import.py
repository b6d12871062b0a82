"""Import NIR files (HDF5, NIR 0.1 to 1.0.8) into SIR.

The file is read as plain data (``spikec.safe_read.read_hdf5``: nothing outside the file, no links, no
filter plugins) rather than with ``nir.read``, so that files real exporters wrote slightly off spec still
load: older layouts (no ``v_reset``), a mistyped Output shape, Affine weights stored transposed and
Rockpool's folded decay are detected, repaired and reported as ``SpikecWarning``; what cannot be
repaired fails with a ``FrontendError`` naming node and field (values are checked as they are read:
shapes positive integers, a known version, a finite dt > 0).
Nothing in the file is ever unpickled or executed. Node names and edges are resolved first
(``nir_graph``: opaque names, dotted paths into nested graphs, SIR renames); after import,
``nir_checks`` warns where the graph's dt does not suit a neuron.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import FrontendError, InputError, ShapeError, SpikecWarning, VerifyError
from spikec.frontends.nir_checks import check_dt
from spikec.frontends.nir_graph import RawGraph, flatten, prune_ports, raw_graph, sir_names
from spikec.ir import ann, snn, structure
from spikec.ir.graph import DEFAULT_DT, Edge, Graph
from spikec.ir.node import Node
from spikec.registry import Registry
from spikec.safe_read import read_hdf5
from spikec.safe_read.limits import INT64_MAX, shown


@dataclasses.dataclass
class _NodeData:
    """The datasets of one NIR node group, with its name and file for error messages."""

    name: str
    fields: dict[str, Any]
    file: str
    version: tuple[int, ...]

    @property
    def type(self) -> str:
        kind = self.fields.get("type", "?")
        return kind if isinstance(kind, str) else shown(kind)

    def fail(self, problem: str) -> FrontendError:
        return FrontendError(f"{self.file}: NIR node '{self.name}' ({self.type}): {problem}")

    def array(self, key: str, default: Any = None) -> np.ndarray:
        if key in self.fields:
            value = np.asarray(self.fields[key])
            if value.dtype.kind not in "fiub":
                raise self.fail(f"field '{key}' is not numeric (dtype {value.dtype})")
            return value
        if default is None:
            raise self.fail(f"required field '{key}' is missing")
        return np.asarray(default)

    def integers(self, key: str, *, minimum: int | None = None) -> list[int]:
        """Field ``key`` as integers (integral floats accepted: some exporters write 2.0), each ``>= minimum``."""
        value = self.fields.get(key)
        if isinstance(value, str):
            raise self.fail(f"field '{key}' is the string {shown(value)}; expected integers")
        arr = np.atleast_1d(self.array(key)).reshape(-1)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise self.fail(f"field '{key}' = {shown(arr)} must hold integers")
        if arr.size and (np.max(np.abs(arr.astype(np.float64))) > INT64_MAX):
            raise self.fail(f"field '{key}' = {shown(arr)} holds integers too large for int64")
        values = [int(v) for v in arr.astype(np.int64)]
        if minimum is not None and any(v < minimum for v in values):
            raise self.fail(f"field '{key}' = {shown(values)} must hold integers >= {minimum}")
        return values

    def shape(self, key: str) -> tuple[int, ...]:
        """A shape field: positive integers."""
        return tuple(self.integers(key, minimum=1))

    def ints(self, key: str, ndim: int, default: int | None = None, *, minimum: int | None = None) -> tuple[int, ...]:
        if key not in self.fields and default is not None:
            return (default,) * ndim
        values = self.integers(key, minimum=minimum)
        if len(values) == 1:
            values *= ndim
        if len(values) != ndim:
            raise self.fail(f"field '{key}' = {shown(values)} needs {ndim} entries")
        return tuple(values)

    def int(self, key: str, default: int) -> int:
        if key not in self.fields:
            return default
        values = self.integers(key)
        if len(values) != 1:
            raise self.fail(f"field '{key}' = {shown(values)} must be one integer")
        return values[0]


Importer = Callable[[_NodeData, "_Context"], Node]
NIR_IMPORTERS: Registry[str, Importer] = Registry("NIR importer")


def importer(*types: str) -> Callable[[Importer], Importer]:
    """Register the importer of the given NIR node types."""
    return NIR_IMPORTERS.register(*types)


@dataclasses.dataclass
class _Context:
    dt: float
    origin: str

    def at(self, name: str) -> str:
        return f"{self.origin}#{name}"


def _warn(message: str) -> None:
    warnings.warn(message, SpikecWarning, stacklevel=3)


# -- node importers ---------------------------------------------------------------------------------
@importer("Input")
def _input(d: _NodeData, ctx: _Context) -> Node:
    shape = d.shape("shape" if "shape" in d.fields else "input_type")
    return structure.Input(shape=shape, origin=ctx.at(d.name))


@importer("Output")
def _output(d: _NodeData, ctx: _Context) -> Node:
    return structure.Output(origin=ctx.at(d.name))


@importer("Identity")
def _identity(d: _NodeData, ctx: _Context) -> Node:
    return ann.Identity(origin=ctx.at(d.name))


@importer("Affine")
def _affine(d: _NodeData, ctx: _Context) -> Node:
    return ann.Dense(weight=d.array("weight"), bias=d.array("bias"), origin=ctx.at(d.name))


@importer("Linear")
def _linear(d: _NodeData, ctx: _Context) -> Node:
    return ann.Dense(weight=d.array("weight"), origin=ctx.at(d.name))


@importer("Scale")
def _scale(d: _NodeData, ctx: _Context) -> Node:
    return ann.Scale(scale=d.array("scale"), origin=ctx.at(d.name))


@importer("Conv1d", "Conv2d")
def _conv(d: _NodeData, ctx: _Context) -> Node:
    weight = d.array("weight")
    nd = weight.ndim - 2
    if nd != int(d.type[-2]):
        raise d.fail(f"weight of shape {weight.shape} does not fit a {d.type}")
    padding = d.fields.get("padding", 0)
    if isinstance(padding, str):
        padding = _string_padding(d, padding, weight.shape[2:], d.ints("dilation", nd, 1, minimum=1))
    else:
        padding = d.ints("padding", nd, 0, minimum=0)
    bias = d.array("bias") if "bias" in d.fields else None
    return ann.Conv(
        weight=weight,
        bias=bias,
        stride=d.ints("stride", nd, 1, minimum=1),
        padding=padding,
        dilation=d.ints("dilation", nd, 1, minimum=1),
        groups=d.int("groups", 1),
        origin=ctx.at(d.name),
    )


def _string_padding(d: _NodeData, mode: str, kernel: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    if mode == "valid":
        return (0,) * len(kernel)
    extents = [dd * (k - 1) for k, dd in zip(kernel, dilation, strict=True)]
    if mode == "same" and all(e % 2 == 0 for e in extents):
        return tuple(e // 2 for e in extents)
    raise d.fail(f"padding {shown(mode)} with kernel {kernel} needs asymmetric padding, which SIR does not have")


@importer("SumPool2d", "AvgPool2d", "SumPool1d", "AvgPool1d")
def _pool(d: _NodeData, ctx: _Context) -> Node:
    kernel = d.ints("kernel_size", int(d.type[-2]), minimum=1)  # one number is square (snnTorch's AvgPool2d(2))
    kind = ann.SumPool if d.type.startswith("Sum") else ann.AvgPool
    return kind(
        kernel_size=kernel,
        stride=d.ints("stride", len(kernel), minimum=1) if "stride" in d.fields else kernel,
        padding=d.ints("padding", len(kernel), 0, minimum=0),
        origin=ctx.at(d.name),
    )


@importer("Flatten")
def _flatten(d: _NodeData, ctx: _Context) -> Node:
    return ann.Flatten(start_dim=d.int("start_dim", 0), end_dim=d.int("end_dim", -1), origin=ctx.at(d.name))


def _v_reset(d: _NodeData) -> np.ndarray:
    if "v_reset" in d.fields:
        return d.array("v_reset")
    return np.zeros_like(d.array("v_threshold"))  # NIR < 1.0 had no v_reset: it was 0


@importer("IF")
def _if(d: _NodeData, ctx: _Context) -> Node:
    return snn.IF(r=d.array("r"), v_threshold=d.array("v_threshold"), v_reset=_v_reset(d), origin=ctx.at(d.name))


@importer("LIF")
def _lif(d: _NodeData, ctx: _Context) -> Node:
    tau, r = d.array("tau"), d.array("r")
    r = _unfold_rockpool_decay(d, tau, r, ctx.dt)
    return snn.LIF(
        tau=tau,
        r=r,
        v_leak=d.array("v_leak"),
        v_threshold=d.array("v_threshold"),
        v_reset=_v_reset(d),
        origin=ctx.at(d.name),
    )


def _unfold_rockpool_decay(d: _NodeData, tau: np.ndarray, r: np.ndarray, dt: float) -> np.ndarray:
    """Rockpool's NIR 0.x export wrote r = (tau/dt)·exp(-dt/tau), folding its discrete decay into R.

    NIR's R for a neuron whose input adds one unit per step is tau/dt; restore it (with a warning).
    """
    folded = (tau / dt) * np.exp(-dt / tau)
    if d.version >= (1,) or r.shape != tau.shape or not np.allclose(r, folded, rtol=1e-5, atol=0):
        return r
    _warn(
        f"{d.file}: NIR node '{d.name}' (LIF): r = (tau/dt)·exp(-dt/tau) at dt={dt:g} — Rockpool's "
        "pre-1.0 export, which folds its discrete decay into r; using r = tau/dt instead"
    )
    return (tau / dt).astype(r.dtype)


@importer("CubaLIF")
def _cuba_lif(d: _NodeData, ctx: _Context) -> Node:
    return snn.CubaLIF(
        tau_syn=d.array("tau_syn"),
        tau_mem=d.array("tau_mem"),
        r=d.array("r"),
        v_leak=d.array("v_leak"),
        v_threshold=d.array("v_threshold"),
        v_reset=_v_reset(d),
        w_in=d.array("w_in", default=np.ones_like(d.array("r"))),
        origin=ctx.at(d.name),
    )


@importer("LI")
def _li(d: _NodeData, ctx: _Context) -> Node:
    return snn.LI(tau=d.array("tau"), r=d.array("r"), v_leak=d.array("v_leak"), origin=ctx.at(d.name))


@importer("CubaLI")
def _cuba_li(d: _NodeData, ctx: _Context) -> Node:
    return snn.CubaLI(
        tau_syn=d.array("tau_syn"),
        tau_mem=d.array("tau_mem"),
        r=d.array("r"),
        v_leak=d.array("v_leak"),
        w_in=d.array("w_in", default=np.ones_like(d.array("r"))),
        origin=ctx.at(d.name),
    )


@importer("I")
def _integrator(d: _NodeData, ctx: _Context) -> Node:
    return snn.I(r=d.array("r"), origin=ctx.at(d.name))


@importer("Threshold")
def _threshold(d: _NodeData, ctx: _Context) -> Node:
    return snn.Threshold(threshold=d.array("threshold"), origin=ctx.at(d.name))


@importer("Delay")
def _delay(d: _NodeData, ctx: _Context) -> Node:
    return snn.Delay(delay=d.array("delay"), origin=ctx.at(d.name))


# -- graphs ---------------------------------------------------------------------------------------------
VERSION_RE = re.compile(r"(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?(?:[.+-]?(?:dev|rc|post|a|b)\d*)?")
NEWEST_MAJOR = 1  # NIR 0.x and 1.x


def _version(value: Any, file: str) -> tuple[int, ...]:
    """The file's NIR version (``"1.0.8"``); a missing one is 0 (the oldest files); garbage or a newer major
    version than spikec knows is refused."""
    if value is None:
        return (0,)
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    match = VERSION_RE.fullmatch(text.strip())
    if match is None:
        raise FrontendError(f"{file}: NIR version {text[:40]!r} is not a version number like 1.0.8: not a NIR file")
    version = tuple(int(p) for p in match.groups() if p is not None)
    if version[0] > NEWEST_MAJOR:
        raise FrontendError(
            f"{file}: NIR version {text} is newer than spikec reads (0.x and 1.x); re-export with nir 1.x"
        )
    return version


def _file_dt(metadata: Any, file: str) -> float | None:
    """The graph metadata's ``dt`` (spikec writes it): a finite number > 0, or None."""
    if not isinstance(metadata, dict) or "dt" not in metadata:
        return None
    value = np.asarray(metadata["dt"])
    if value.dtype.kind not in "iuf" or value.size != 1 or not (np.isfinite(value).all() and float(value) > 0):
        raise FrontendError(
            f"{file}: the graph's metadata dt = {shown(metadata['dt'])} is not a finite number of seconds > 0; "
            "pass --dt to set the step"
        )
    return float(value.reshape(-1)[0])


def _build_graph(raw: RawGraph, file: str, version: tuple[int, ...], ctx: _Context) -> Graph:
    """Convert every node of a resolved NIR graph (nir_graph.py) and build the SIR graph."""
    flat = prune_ports(flatten(raw, file))
    inner = {k: _build_graph(v, file, version, ctx) for k, v in flat.nodes.items() if isinstance(v, RawGraph)}
    names = sir_names(list(flat.nodes))
    # inlining a Subgraph names its nodes 'sub.<inner>': a flat NIR name 'sub.lif' beside it must not meet them
    inlined = {f"{names[k]}.{n}" for k, g in inner.items() for n in g.inline_subgraphs().nodes}
    if inlined & set(names.values()):
        names = sir_names(list(flat.nodes), reserved=inlined)
    nodes: dict[str, Node] = {}
    for key, item in flat.nodes.items():
        nir_name = raw.path + "/".join(key)
        if isinstance(item, RawGraph):
            nodes[names[key]] = structure.Subgraph(graph=inner[key], origin=ctx.at(nir_name))
        elif key in flat.ports:  # the Input/Output of a spliced nested graph: a pass-through
            nodes[names[key]] = ann.Identity(origin=ctx.at(nir_name))
        else:
            nodes[names[key]] = _convert(_NodeData(nir_name, item, file, version), ctx)
    pairs = [(names[a], names[b]) for a, b in flat.edges]
    roots = sorted(nodes, key=lambda n: not nodes[n].graph_input)  # walk from the inputs first
    edges = mark_recurrent(roots, pairs)
    declared = {names[k]: v.get("shape") for k, v in flat.nodes.items() if isinstance(v, dict)}
    graph = _repair_and_build(nodes, edges, file, ctx.dt)
    _check_outputs(declared, graph, file)
    return graph


def _convert(d: _NodeData, ctx: _Context) -> Node:
    convert = NIR_IMPORTERS.get(d.type)
    if convert is None:
        supported = ", ".join(sorted({*NIR_IMPORTERS, "NIRGraph"}))
        raise FrontendError(
            f"{d.file}: NIR node '{d.name}' has type {shown(d.type)}, which spikec cannot import; "
            f"supported: {supported}"
        )
    try:
        return convert(d, ctx)
    except (TypeError, ValueError) as err:
        raise d.fail(str(err)) from err


def mark_recurrent(names: list[str], pairs: list[tuple[str, str]]) -> list[Edge]:
    """Edges in file order, with the back edges of a depth-first walk marked recurrent.

    NIR does not say which edges close a loop; a back edge of a DFS from the inputs (in node order)
    is one, and marking those makes the forward edges a DAG.
    """
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in pairs:
        succ[a].append(b)
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in names:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            child = next(it, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                back.add((node, child))
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(succ[child])))
    return [Edge(a, b, (a, b) in back) for a, b in pairs]


def _repair_and_build(nodes: dict[str, Node], edges: list[Edge], file: str, dt: float) -> Graph:
    """Build the graph, repairing what can be told from shapes (with a warning per repair)."""
    draft = Graph(nodes, edges, dt=dt, verify=False)
    shapes: dict[str, tuple[int, ...]] = {}
    for name in draft.order:
        node = nodes[name]
        forward = [e for e in draft.in_edges(name) if not e.recurrent]
        ins = [shapes[e.src] for e in forward]
        if not ins and not isinstance(node, structure.Input):
            continue
        ins = ins[:1] if node.inputs.value == "sum" else ins
        try:
            shapes[name] = tuple(node.infer_shape(ins))
        except ShapeError as err:
            fixed = _transposed_weight(node, ins, name, file)
            if fixed is None:
                raise VerifyError(f"{file}: {node.describe(name)}: input {ins}: {err}") from None
            nodes[name] = fixed
            shapes[name] = tuple(fixed.infer_shape(ins))
    return Graph(nodes, edges, dt=dt)


def _transposed_weight(node: Node, ins: list[tuple[int, ...]], name: str, file: str) -> Node | None:
    if not isinstance(node, ann.Dense) or len(ins) != 1 or node.weight.ndim != 2:
        return None
    candidate = node.replace(weight=node.weight.T)
    try:
        candidate.infer_shape(ins)
    except ShapeError:
        return None
    _warn(
        f"{file}: {node.describe(name)}: weight {node.weight.shape} does not take input {ins[0]} but "
        f"its transpose does; the exporter stored it as (in, out): using the transpose"
    )
    return candidate


def _check_outputs(declared: dict[str, Any], graph: Graph, file: str) -> None:
    for name in graph.outputs:
        shape = declared.get(name)
        if shape is None:
            continue
        arr = np.atleast_1d(np.asarray(shape)).reshape(-1)
        if arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr) & (arr == np.round(arr)) & (arr >= 1)):
            raise FrontendError(
                f"{file}: Output '{name}'{_from(name, graph.nodes[name])} declares shape {shown(arr)}, not "
                "positive integers; fix the exporter or drop the field"
            )
        expected = tuple(int(s) for s in arr)
        actual = graph.types[name]
        if expected != actual:
            origin = _from(name, graph.nodes[name])
            _warn(
                f"{file}: Output '{name}'{origin} declares shape {expected}; the graph gives {actual}: using {actual}"
            )


def _from(name: str, node: Node) -> str:
    """`` (NIR 'a/b c')`` where the SIR name differs from the NIR name it came from."""
    nir_name = node.origin.partition("#")[2]
    return f" (NIR '{nir_name}')" if nir_name and nir_name != name else ""


def import_nir(path: str | Path, *, dt: float | None = None) -> Graph:
    """Read a NIR HDF5 file into a verified SIR graph.

    ``dt`` (seconds per step) maps NIR's continuous time constants to steps; default: the file's
    graph metadata ``dt`` if present (spikec writes it), else 1e-4 s (the NIR paper's convention).
    """
    path = Path(path)
    file = str(path)
    fix = "re-export the model with nir.write"
    data = read_hdf5(path, expect="NIR file", fix=fix)
    root = data.get("node")
    if not isinstance(root, dict):
        raise FrontendError(f"{file}: HDF5 file has no 'node' group: not a NIR file; {fix}")
    version = _version(data.get("version"), file)
    file_dt = _file_dt(root.get("metadata"), file)
    step = float(dt if dt is not None else file_dt if file_dt is not None else DEFAULT_DT)
    if not (np.isfinite(step) and step > 0):
        raise InputError(f"{file}: --dt must be a finite number of seconds per step > 0, got {dt}")
    ctx = _Context(step, f"nir:{path.name}")
    graph = _build_graph(raw_graph(root, file), file, version, ctx)
    check_dt(graph, file)
    return graph
