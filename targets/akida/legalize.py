"""SIR (an ANN, its activations marked by calibrated ``Quantize`` nodes) → Akida IP v2 layer plans.

A plan is one Akida layer: a weighted node (``Conv``, ``Dense``) with what Akida fuses into it: a
``Bias``, a ``ReLU``, a max-pool or a global average pool, and the ``Quantize`` after it that gives the
layer's calibrated output range. Reshapes and flattens between layers vanish (a ``Dense1D`` takes any
input). What Akida cannot express is a ``TargetError`` naming the node, the rule (as the engine words
it) and what to change, raised before the engine sees the model. ``FUSABLE`` says which kinds join
the current plan and how: a table, not a chain of kind tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from spikec.errors import TargetError
from spikec.ir import ann, exact, structure, tensor
from spikec.ir.graph import Graph
from spikec.ir.node import Node


@dataclasses.dataclass
class Plan:
    """One Akida layer to be: the SIR nodes it absorbs and what they fuse to."""

    weighted: str
    nodes: list[str]
    sources: list[str] = dataclasses.field(default_factory=list)  # the plans (or the input) it reads, in order
    merge: str = ""  # "": a conv/dense layer; "add" | "concat": an Akida Add / Concatenate of its sources
    bias: np.ndarray | None = None
    relu: bool = False
    # none | max | global_avg | average2 (a 2x2/2 average pool as its own depthwise layer) | identity (a ReLU after
    # an Add, which has no activation: a depthwise conv of weight 1 with ReLU)
    pool: str = "none"
    pool_size: int = 0
    pool_stride: int = 0
    pool_out: tuple[int, ...] = ()  # the SIR max-pool's output (H, W) (Akida's SAME pool may add a row/column)
    out_range: float | None = None  # calibrated largest output (the Quantize's step · hi); None: the model output


def _reject(graph: Graph, name: str, what: str) -> TargetError:
    return TargetError(f"{graph.describe(name)}: target 'akida' cannot express {what}")


def _bias(graph: Graph, name: str, node: Node, plan: Plan) -> None:
    """A per-channel bias right after the weighted node (Akida adds it to the accumulator, before pool and ReLU)."""
    assert isinstance(node, tensor.Bias)
    value = np.asarray(node.bias, np.float64)
    channels = graph.types[plan.weighted][0]
    if plan.merge:
        raise _reject(graph, name, f"a bias after {MERGES[plan.merge]}: it adds none; fold it into a conv before")
    if plan.relu or plan.pool != "none" or value.size not in (1, channels):
        raise _reject(graph, name, f"a bias of shape {value.shape} here: Akida adds one bias per channel to the "
                      "accumulator, before pooling and ReLU; fold it into the conv or dense layer before")  # fmt: skip
    value = np.broadcast_to(value.reshape(-1), (channels,))
    plan.bias = value.copy() if plan.bias is None else plan.bias + value


def _relu(graph: Graph, name: str, node: Node, plan: Plan) -> None:
    if plan.merge == "concat":
        raise _reject(graph, name, "a ReLU after a Concatenate (it has no activation); put it on each input before")
    plan.relu = True


def _pooled_conv(graph: Graph, name: str, plan: Plan) -> None:
    if plan.merge:
        raise _reject(graph, name, f"a pool after {MERGES[plan.merge]}: Akida pools inside convolutional layers "
                      "only; pool after the next convolution")  # fmt: skip
    if not isinstance(graph.nodes[plan.weighted], ann.Conv):
        raise _reject(graph, name, "a pool after a dense layer: Akida pools inside convolutional layers only")


def _maxpool(graph: Graph, name: str, node: Node, plan: Plan) -> None:
    assert isinstance(node, ann.MaxPool)
    _pooled_conv(graph, name, plan)
    k, s, p = node.kernel_size, node.stride or node.kernel_size, node.padding or (0, 0)
    if len(set(k)) != 1 or len(set(s)) != 1 or any(p):
        raise _reject(
            graph,
            name,
            f"a max-pool of kernel {k}, stride {s}, padding {p}: Akida pools square "
            "windows without padding of their own; use a square, unpadded max-pool",
        )
    if plan.pool != "none":
        raise _reject(graph, name, "a second pool in one layer: put a conv between the pools")
    plan.pool, plan.pool_size, plan.pool_stride = "max", k[0], s[0]
    plan.pool_out = tuple(graph.types[name][1:])


def is_global(graph: Graph, name: str) -> bool:
    """An average pool over the whole map (what Akida's ``PoolType.Average`` is)."""
    node = graph.nodes[name]
    assert isinstance(node, ann.AvgPool)
    before = graph.types[graph.in_edges(name)[0].src]
    whole = tuple(node.kernel_size) == tuple(before[1:])
    return tuple(graph.types[name][1:]) == (1, 1) and not any(node.padding or ()) and whole


def _avgpool(graph: Graph, name: str, node: Node, plan: Plan) -> None:
    """A global average pool fuses into the conv before it (a 2x2/2 one is a layer of its own: ``plan_layers``)."""
    _pooled_conv(graph, name, plan)
    if not plan.relu:
        raise _reject(graph, name, "a global average pool without a ReLU before it (Akida sums the ReLU's output)")
    plan.pool = "global_avg"


def _quantize(graph: Graph, name: str, node: Node, plan: Plan) -> None:
    assert isinstance(node, exact.Quantize)
    if node.lo != 0:
        raise _reject(graph, name, "a signed activation: Akida's hidden 4/8-bit activations follow a ReLU")
    plan.out_range = float(np.max(node.step)) * node.hi


Fuse = Callable[[Graph, str, Node, Plan], None]
FUSABLE: dict[type[Node], Fuse] = {
    tensor.Bias: _bias,
    ann.ReLU: _relu,
    ann.MaxPool: _maxpool,
    ann.AvgPool: _avgpool,
    exact.Quantize: _quantize,
}
WEIGHTED = (ann.Conv, ann.Dense)
VANISH = (ann.Reshape, ann.Flatten, ann.Identity)  # between layers: a Dense1D flattens its input itself
MERGES = {"add": "an Add", "concat": "a Concatenate"}
HINTS = {
    "Unary(sigmoid)": "Akida's activations are ReLU (or a LUT this target does not program); retrain with ReLU",
    "Unary(tanh)": "Akida's activations are ReLU (or a LUT this target does not program); retrain with ReLU",
    "Softmax": "run the softmax on the host: drop it from the model (argmax is unchanged)",
}


def _average_layer(graph: Graph, name: str, node: ann.AvgPool, plans: list[Plan]) -> Plan:
    """A 2x2, stride-2 average pool of an even map after a ReLU layer → a ``DepthwiseConv2D`` of 3x3 kernels, stride
    2, SAME (TF pads 0 before, 1 after, so each window starts on the pool's) with weights 1 on the pool's 2x2 and 0
    elsewhere; the 1/4 goes into its output scale, and its output keeps the input's range."""
    size = graph.types[graph.in_edges(name)[0].src][1:]
    k, s = tuple(node.kernel_size), tuple(node.stride or node.kernel_size)
    if k != (2, 2) or s != (2, 2) or any(node.padding or ()) or any(n % 2 for n in size):
        raise _reject(
            graph, name, f"an average pool of kernel {k}, stride {s} over {size}: Akida averages globally, and "
            "spikec lowers a 2x2/2 pool of an even map to a depthwise conv; use one of those or a max-pool"
        )  # fmt: skip
    if not plans or not plans[-1].relu or plans[-1].out_range is None:
        raise _reject(graph, name, "an average pool not after a ReLU layer (Akida's activations are unsigned)")
    return Plan(weighted=name, nodes=[name], relu=True, pool="average2", out_range=plans[-1].out_range)


def _merge(graph: Graph, name: str, node: Node, sources: list[str]) -> Plan:
    """An ``Add`` of two layers' outputs or a channel ``Concat`` of layers' outputs → an Akida ``Add`` /
    ``Concatenate`` plan (the engine: "Add inbounds must come from different layers.")."""
    merge = "add" if isinstance(node, ann.Add) else "concat"
    if merge == "concat" and (not isinstance(node, ann.Concat) or node.axis % len(graph.types[name]) != 0):
        raise _reject(graph, name, "a Concat along a spatial axis: Akida's Concatenate joins channels; concat on "
                      "axis 1 (N, C, H, W)")  # fmt: skip
    if merge == "add" and len(sources) != 2:
        raise _reject(graph, name, f"an Add of {len(sources)} inputs: Akida's Add takes two; add them in pairs")
    if len(set(sources)) != len(sources):
        raise _reject(graph, name, f"{MERGES[merge]} of one layer with itself: the engine requires \"{merge.title()} "
                      "inbounds must come from different layers.\"; scale that layer instead")  # fmt: skip
    if len(graph.types[name]) != 3:
        raise _reject(graph, name, f"{MERGES[merge]} of {graph.types[name]} values: Akida merges (C, H, W) maps")
    return Plan(weighted=name, nodes=[name], sources=sources, merge=merge)


def plan_layers(graph: Graph) -> tuple[str, list[Plan], str]:
    """The input's name, one ``Plan`` per Akida layer (in graph order; each names the plans it reads), the
    output's name. A conv/dense layer reads one plan; an Add two, a Concatenate two or more."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TargetError(
            f"target 'akida' takes a model with one input and one output, this one has "
            f"{len(graph.inputs)} and {len(graph.outputs)}"
        )
    inp, out = graph.inputs[0], graph.outputs[0]
    value: dict[str, str] = {inp: inp}  # SIR node -> the plan (or the input) whose output it carries
    plans: dict[str, Plan] = {}
    for name in graph.order:
        node = graph.nodes[name]
        srcs = [e.src for e in graph.in_edges(name) if not e.recurrent]
        if name == inp or not srcs:
            continue
        if isinstance(node, structure.Output):
            value[name] = value[srcs[0]]
        elif isinstance(node, WEIGHTED):
            bias = None if node.bias is None else np.asarray(node.bias, np.float64)
            plans[name] = Plan(weighted=name, nodes=[name], sources=[value[srcs[0]]], bias=bias)
        elif isinstance(node, ann.AvgPool) and not is_global(graph, name):
            before = plans.get(value[srcs[0]])
            plans[name] = _average_layer(graph, name, node, [] if before is None else [before])
            plans[name].sources = [value[srcs[0]]]
        elif isinstance(node, (ann.Add, ann.Concat)):
            plans[name] = _merge(graph, name, node, [value[s] for s in srcs])
        elif isinstance(node, VANISH):
            value[name] = value[srcs[0]]
            continue
        elif type(node) in FUSABLE and value[srcs[0]] in plans:
            plan = plans[value[srcs[0]]]
            users = [e.dst for e in graph.out_edges(srcs[0]) if not e.recurrent]
            if len(users) != 1:
                raise _reject(
                    graph, name, f"{node.kind} of a value {len(users)} nodes read: Akida fuses it into the layer "
                    "before, which would change it for the others; apply it on every branch"
                )  # fmt: skip
            if isinstance(node, ann.ReLU) and plan.merge == "add":  # Akida's Add has no activation
                plans[name] = Plan(weighted=name, nodes=[name], sources=[plan.weighted], relu=True, pool="identity")
                value[name] = name
                continue
            plan.nodes.append(name)
            FUSABLE[type(node)](graph, name, node, plan)
            value[name] = plan.weighted
            continue
        else:
            what = f"{node.kind}({node.op})" if isinstance(node, tensor.Unary) else node.kind
            hint = HINTS.get(what, "Akida IP v2 layers are conv/dense with fused bias, ReLU and pooling, Add and "
                             "Concatenate")  # fmt: skip
            raise _reject(graph, name, f"{what} here: {hint}")
        value.setdefault(name, name)
    if not plans:
        raise TargetError("target 'akida': the model has no conv or dense layer to run")
    if value[out] not in plans:
        raise TargetError(f"{graph.describe(out)}: target 'akida' needs a layer before the output")
    for plan in plans.values():  # an Add before a ReLU layer outputs the range the ReLU keeps
        if plan.pool == "identity" and plans[plan.sources[0]].out_range is None:
            plans[plan.sources[0]].out_range = plan.out_range
    final = plans[value[out]]
    order = [p for p in plans.values() if p is not final] + [final]
    return inp, order, out
