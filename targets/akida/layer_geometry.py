"""What the Akida IP v1 and v2 quantizers share about a layer's shape: the float layer each plan becomes
(``layer_node``), a convolution's stride, pads, groups and pooling window (``conv_geometry``, with the engine's rules
on them) and a dense layer's weights over the map Akida feeds it (``embed_dense``).

``quantize.py`` (IP v2) and ``quantize_v1.py`` (IP v1) walk the layer plans (``legalize.plan_layers``) with a
``Step`` each and turn what this module gives into their own integer fields.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikec.errors import TargetError
from spikec.ir import ann
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.targets.akida.dialect import AkidaConv, same_pads
from spikec.targets.akida.legalize import Plan

STRIDES = (1, 2)  # engine: "Kernel stride must be equal to 1 or 2." (Conv2D, DepthwiseConv2D)


@dataclasses.dataclass(frozen=True)
class Step:
    """Where the walk over the plans is: the layer's index, its input's (C, H, W) and integer scale."""

    index: int
    shape: tuple[int, ...]
    s_x: np.ndarray
    weight_bits: int
    activation_bits: int
    s_y: np.ndarray | None = None  # the output scale its merge group shares (merge.ScaleGroups), else its range's
    next_dense: bool = False  # its one consumer is a Dense1D
    signed_ok: bool = False  # every consumer is an Add, which takes a signed input


def layer_node(graph: Graph, plans: list[Plan], at: Step) -> tuple[Plan, ann.Conv | ann.Dense, bool]:
    """The plan at ``at``, the float conv or dense layer it becomes (an average pool or a ReLU after an Add as a
    depthwise conv) and whether it is such an averaging layer; or the rule it breaks (IP v1 and v2 alike)."""
    plan = plans[at.index]
    first, last = at.index == 0, at.index == len(plans) - 1
    if not plan.relu and not last and not at.signed_ok:
        raise TargetError(
            f"{graph.describe(plan.nodes[-1])}: target 'akida' cannot express a hidden layer without a ReLU "
            "(its activations between layers are unsigned here); add a ReLU after it"
        )
    if plan.out_range is None and at.s_y is None and not last:
        raise TargetError(
            f"{graph.describe(plan.nodes[-1])}: no calibrated range after this layer: compile with "
            "--calib X.npy (method ann) so that every hidden activation has one"
        )
    node = graph.nodes[plan.weighted]
    if first and not isinstance(node, ann.Conv):
        raise TargetError(
            f"{graph.describe(plan.weighted)}: Akida's first layer is an InputConv2D: a model that "
            "starts with a dense layer needs InputData, which this target does not emit yet"
        )
    averaging = plan.pool in ("average2", "identity")
    if isinstance(node, ann.Conv) and tuple(graph.types[graph.in_edges(plan.weighted)[0].src]) != at.shape:
        raise TargetError(
            f"{graph.describe(plan.weighted)}: target 'akida' cannot express a reshape before a convolution "
            f"(the layer before gives {at.shape}); keep the feature map's (C, H, W) between convolutions"
        )
    if isinstance(node, ann.AvgPool):
        node = _pool_as_depthwise(node, at.shape[0])
    elif plan.pool == "identity":
        node = _identity_depthwise(graph.nodes[plan.weighted], at.shape[0])
    assert isinstance(node, (ann.Conv, ann.Dense))
    return plan, node, averaging


def conv_geometry(
    graph: Graph, plans: list[Plan], at: Step, node: ann.Conv, averaging: bool
) -> tuple[int, tuple[int, int, int, int], int, int]:
    """A conv's stride, pads, groups and the pooling window its output scale divides by (1 unless averaging)."""
    plan, shape = plans[at.index], at.shape
    if plan.pool == "identity":  # a ReLU after an Add: weight 1 at the centre of a 3x3 SAME depthwise kernel
        return 1, (1, 1, 1, 1), shape[0], 1
    if averaging:  # legalize._average_layer: a 2x2 sum, weights 1, the 1/4 in the output scale
        (t, b), (lft, r) = same_pads(shape[1], 3, 2), same_pads(shape[2], 3, 2)
        return 2, (t, b, lft, r), shape[0], 4
    stride, pads, groups = _checked_conv(graph, plan, node, at.index == 0)
    k = node.weight.shape[2]
    conv_out = ((shape[1] + pads[0] + pads[1] - k) // stride + 1, (shape[2] + pads[2] + pads[3] - k) // stride + 1)
    if plan.pool == "max":
        _check_pool(graph, plan, pads, conv_out, at.next_dense, conv_padding(node))
    return stride, pads, groups, conv_out[0] * conv_out[1] if plan.pool == "global_avg" else 1


def conv_padding(node: ann.Conv) -> str:
    """The dialect's ``padding`` of a conv: "same" for a 1x1 kernel (SAME and VALID are then one function, and the
    mapper takes only SAME after the input layer: "Only padding 'Same' and 'SameUpper' are supported."), else ""
    (from its pads)."""
    return "same" if node.weight.shape[2] == 1 else ""


def sir_before_flatten(graph: Graph, dense: str) -> tuple[int, ...]:
    """The (C, H, W) the model flattened before ``dense`` (its input's shape when nothing was flattened)."""
    src = graph.in_edges(dense)[0].src
    while isinstance(graph.nodes[src], (ann.Reshape, ann.Flatten, ann.Identity)):
        src = graph.in_edges(src)[0].src
    return tuple(graph.types[src])


def embed_dense(q: np.ndarray, *, shape: tuple[int, ...], sir_shape: tuple[int, ...]) -> np.ndarray:
    """Dense weights over the model's flattened (C, h, w) → over Akida's (C, H, W) map (H ≥ h, W ≥ w: SAME pooling's
    extra rows/columns get weight 0)."""
    if tuple(shape) == tuple(sir_shape) or len(shape) != 3:
        return q
    c, h, w = sir_shape
    full = np.zeros((q.shape[0], *shape), q.dtype)
    full[:, :c, :h, :w] = q.reshape(q.shape[0], c, h, w)
    return full.reshape(q.shape[0], -1)


def _checked_conv(graph: Graph, plan: Plan, node: ann.Conv, first: bool) -> tuple[int, tuple[int, int, int, int], int]:
    """Stride, Akida pads (VALID or TF SAME) and groups of a conv, or the rule it breaks."""
    where = graph.describe(plan.weighted)
    k = node.weight.shape[2:]
    size = graph.types[graph.in_edges(plan.weighted)[0].src][1:]
    stride, pad, dil = node.stride or (1, 1), node.padding or (0, 0), node.dilation or (1, 1)
    if len(k) != 2 or k[0] != k[1] or len(set(stride)) != 1 or len(set(pad)) != 1 or any(d != 1 for d in dil):
        raise TargetError(
            f"{where}: Akida convolutions are 2-D, square, undilated with one stride and padding; "
            f"got kernel {k}, stride {stride}, padding {pad}, dilation {dil}"
        )
    s, p = stride[0], pad[0]
    if k[0] % 2 == 0:
        raise TargetError(
            f'{where}: kernel {k[0]}x{k[0]}: the engine rejects it ("Kernel size must be odd."); use an odd kernel'
        )
    if not first and s not in STRIDES:
        raise TargetError(
            f'{where}: stride {s}: Akida convolutions after the first take stride 1 or 2 (the IP v2 engine: "Kernel '
            'stride must be equal to 1 or 2."; IP v1 maps "Convolution stride must be 1 or 2."); use stride 1 or 2 '
            "(or a max-pool after a stride-1 conv)"
        )
    groups = node.groups
    cin = node.weight.shape[1] * groups
    if groups != 1 and (groups != cin or node.weight.shape[0] != cin):
        raise TargetError(
            f"{where}: groups={groups}: Akida has full (Conv2D) and depthwise (DepthwiseConv2D, one "
            "filter per channel) convolutions only"
        )
    if p == 0:
        return s, (0, 0, 0, 0), groups
    (t, b), (lft, r) = same_pads(size[0], k[0], s), same_pads(size[1], k[0], s)
    ours = tuple(graph.types[plan.weighted][1:])  # the conv's own output (before any pool)
    for pads in ((t, b, lft, r), (b, t, r, lft)):  # Akida's SAME (odd pad after), SAME_UPPER (odd pad before)
        out = tuple((n + pads[2 * i] + pads[2 * i + 1] - k[0]) // s + 1 for i, n in enumerate(size))
        upper = pads[0] > pads[1] or pads[2] > pads[3]
        if pads[0] == p and pads[2] == p and out == ours and not (upper and plan.pool == "max"):
            return s, pads, groups
    raise TargetError(
        f"{where}: padding {p} with kernel {k[0]} and stride {s} on {size}: Akida pads VALID (0), SAME ({t} before, "
        f"{b} after) or SAME_UPPER ({b} before, {t} after, not with a max-pool); use padding 0 or {k[0] // 2}"
    )


def _check_pool(
    graph: Graph,
    plan: Plan,
    pads: tuple[int, int, int, int],
    conv_out: tuple[int, int],
    last_conv: bool,
    padding: str = "",
) -> tuple[int, int]:
    """The Akida output (H, W) of a max-pool; where it has more rows/columns than the model's (SAME pooling after
    a SAME conv), the extra ones must fall at the end and feed only a Dense1D, which ignores them."""
    conv = AkidaConv(
        weight=np.zeros((1, 1, 1, 1)),
        bias=np.zeros(1),
        bias_shift=np.zeros(1),
        output_scales=np.ones(1),
        output_shift=np.zeros(1),
        input_shift=np.zeros(1),
        pads=pads,
        padding=padding,
        pool="max",
        pool_size=plan.pool_size,
        pool_stride=plan.pool_stride,
    )
    lo = [conv.pool_pads(n)[0] for n in conv_out]
    out = tuple(conv.pooled(n) for n in conv_out)
    if out != plan.pool_out and (any(lo) or not last_conv):
        raise TargetError(
            f"{graph.describe(plan.nodes[-1])}: a {plan.pool_size}x{plan.pool_size}/{plan.pool_stride} "
            f"max-pool after a SAME conv pools SAME on Akida ({out} instead of {plan.pool_out}); "
            "only before a dense layer can the extra outputs be dropped; use a pool that divides the map"
        )
    return out


def _pool_as_depthwise(pool: ann.AvgPool, channels: int) -> ann.Conv:
    """A 2x2/2 average pool as a depthwise conv: 3x3 kernels, 1 on the top-left 2x2 (a sum), stride 2, SAME."""
    w = np.zeros((channels, 1, 3, 3))
    w[:, :, :2, :2] = 1.0
    return ann.Conv(weight=w, stride=(2, 2), padding=(0, 0), dilation=(1, 1), groups=channels, origin=pool.origin)


def _identity_depthwise(relu: Node, channels: int) -> ann.Conv:
    """A ReLU after an Add as a depthwise conv: 3x3 kernels with 1 at the centre, stride 1, SAME (the ReLU and the
    rescaling to the next range are the layer's)."""
    w = np.zeros((channels, 1, 3, 3))
    w[:, :, 1, 1] = 1.0
    return ann.Conv(weight=w, stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=channels, origin=relu.origin)
