"""Workload and static metrics of an SNN with NeuroBench's definitions, measured in the reference interpreter.

NeuroBench (Yik et al., "NeuroBench: a framework for benchmarking neuromorphic computing algorithms and
systems", Nature Communications 2025; neurobench/metrics/) defines, and spikec measures the same way:

* **footprint**: the bytes of every parameter (every array field of every node, as spikec stores it);
* **connection sparsity**: zero weights over all weights of the weighted layers (``WEIGHTED``; biases and
  neuron parameters do not count);
* **activation sparsity**: zero outputs over all outputs of the spiking neuron layers (kinds with the
  ``Neuron`` and ``EmitsSpikes`` traits), over every step and sample;
* **synaptic operations**, per weighted layer and step: *dense* = the layer with every weight and every input
  set to 1 (the operations of hardware that skips nothing), *effective* = the layer with weights and inputs
  binarised (``w ≠ 0``, ``x ≠ 0`` → 1) and no bias, summed over its outputs: every nonzero input times each
  of its nonzero fan-out weights, ``Σ_j [x_j ≠ 0] · |{i : W_ij ≠ 0}|`` for a Dense layer. The kinds in
  ``FANOUT`` compute each input's fan-out once (the transposed binarised layer applied to ones) and sum it over
  the step's nonzero inputs; the others run their binarised layer every step, as NeuroBench does. Effective
  operations count as **ACs** (accumulates) when every input value of the step is in {−1, 0, 1} (spikes),
  else as **MACs**. The spike-attention kinds (``spikec.report.attention_ops.PRODUCTS``: Spikformer's SSA, SDSA's
  column sum) count their products of two activity tensors the same way, one operand standing in for the
  weights; they are synaptic layers without weights;
* **membrane updates**: per neuron layer with a membrane ``v``, every neuron on the first step, then each
  neuron-step whose ``v`` changed.

The counts are summed over the steps of one sample's run and averaged over the samples (per sample).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from spikec.interp.backend import Backend, Tensor, make_backend
from spikec.interp.interpreter import Interpreter
from spikec.interp.kernels import KERNELS, KernelContext, State
from spikec.ir import ann, spatial
from spikec.ir.graph import Graph
from spikec.ir.node import Node
from spikec.ir.traits import EmitsSpikes, Neuron
from spikec.report.attention_ops import PRODUCTS, is_spikes

# Weighted kinds by class: the field holding the weights (NeuroBench's Linear and ConvNd).
WEIGHTED: dict[type[Node], str] = {ann.Dense: "weight", ann.Conv: "weight", spatial.ConvTranspose: "weight"}
MEMBRANE = "v"  # the state variable whose changes are membrane updates


def weights_of(node: Node) -> np.ndarray | None:
    """The weights of a weighted node (``WEIGHTED``), else None."""
    field = next((f for kind, f in WEIGHTED.items() if isinstance(node, kind)), None)
    return None if field is None else np.asarray(getattr(node, field))


def _indicator(node: Node, ones: bool) -> Node:
    """``node`` with weights ``w ≠ 0`` → 1 (``ones``: every weight 1) and no bias."""
    w = weights_of(node)
    assert w is not None
    binary = np.ones_like(w, dtype=np.float64) if ones else (w != 0).astype(np.float64)
    field = next(f for kind, f in WEIGHTED.items() if isinstance(node, kind))
    changes: dict[str, Any] = {field: binary}
    if "bias" in node.array_fields():
        changes["bias"] = None
    return node.replace(**changes)


def _dense_fanout(node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray:
    """Each input's nonzero fan-out in a Dense layer: the nonzero weights of its column (on every leading position)."""
    column = (np.asarray(node.weight) != 0).sum(axis=0).astype(np.float64)  # type: ignore[attr-defined]
    return np.broadcast_to(column, in_shape)


def _conv_fanout(node: Node, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> np.ndarray:
    """Each input's nonzero fan-out in a convolution: the transposed convolution of ones with the binarised weights
    (the adjoint of the binarised layer, ``Σ_out L(x) = <Lᵀ 1, x>``), taps that fall outside the output dropped."""
    assert isinstance(node, ann.Conv)
    kernel = node.weight.shape[2:]
    extra = tuple(
        n - (s * (m - 1) + d * (k - 1) + 1 - 2 * p)  # input positions past the last window: no fan-out
        for n, m, k, s, d, p in zip(
            in_shape[1:], out_shape[1:], kernel, node.stride, node.dilation, node.padding, strict=True
        )
    )
    adjoint = spatial.ConvTranspose(
        weight=(np.asarray(node.weight) != 0).astype(np.float64),
        stride=node.stride,
        dilation=node.dilation,
        pads=(*node.padding, *node.padding),
        output_padding=extra,
        groups=node.groups,
    )
    xp = make_backend("numpy", dtype="float64")
    ctx = KernelContext(xp, 1.0, 1, in_shape, adjoint)
    y, _ = KERNELS[spatial.ConvTranspose](adjoint, xp.asarray(np.ones((1, *out_shape))), {}, ctx)
    return np.asarray(xp.to_numpy(y)[0])


# Kinds whose effective operations are a dot product of the nonzero inputs with a fan-out map computed once; the
# other weighted kinds run their binarised layer every step (the same count, as NeuroBench computes it).
FANOUT: dict[type[Node], Callable[[Node, tuple[int, ...], tuple[int, ...]], np.ndarray]] = {
    ann.Dense: _dense_fanout,
    ann.Conv: _conv_fanout,
}


def footprint(graph: Graph) -> tuple[int, int]:
    """(bytes, parameters): every array field of every node, at the dtype spikec stores it."""
    nbytes = params = 0
    for node in graph.nodes.values():
        for field in node.array_fields():
            value = getattr(node, field)
            if value is not None:
                arr = np.asarray(value)
                nbytes, params = nbytes + arr.nbytes, params + arr.size
    return nbytes, params


@dataclasses.dataclass
class SynapseCount:
    """One weighted layer's totals over the run (all samples)."""

    name: str
    kind: str
    weights: int
    zero_weights: int
    dense: float = 0.0
    macs: float = 0.0
    acs: float = 0.0


@dataclasses.dataclass
class NeuronCount:
    """One neuron layer's totals over the run (all samples)."""

    name: str
    kind: str
    neurons: int
    spiking: bool  # EmitsSpikes: its outputs count in the model's activation sparsity
    outputs: int = 0
    nonzero: int = 0
    updates: int = 0
    has_membrane: bool = False


class MeasuringInterpreter(Interpreter):
    """The reference interpreter, also counting synaptic operations, nonzero outputs and membrane updates."""

    def __init__(self, graph: Graph, backend: Backend, *, fanout: bool = True, record: Iterable[str] = ()) -> None:
        super().__init__(graph, backend, schedule="step")  # membrane updates: v before and after every step
        self.record = [name for name in record if name in self.graph.nodes]  # outputs summed over steps
        self._recorded = set(self.record)
        self.sums: dict[str, np.ndarray] = {}
        self.fanout = fanout  # False: every kind runs its binarised layer (what FANOUT's maps must equal)
        g = self.graph
        self.synapses: dict[str, SynapseCount] = {}
        self.neurons: dict[str, NeuronCount] = {}
        self._fanouts: dict[str, np.ndarray | None] = {}
        self._dense: dict[str, float] = {}
        for name in self.order:
            node = g.nodes[name]
            w = weights_of(node)
            if w is not None:
                self.synapses[name] = SynapseCount(name, node.kind, int(w.size), int(np.sum(w == 0)))
            elif type(node) in PRODUCTS:  # attention: products of two activity tensors, no weights
                self.synapses[name] = SynapseCount(name, node.kind, 0, 0)
            elif node.has_trait(Neuron):
                size = int(np.prod(g.types[name]))
                self.neurons[name] = NeuronCount(name, node.kind, size, node.has_trait(EmitsSpikes))

    def run_node(self, name: str, x: Any, states: dict[str, State], ctx: KernelContext) -> Tensor:
        count = self.neurons.get(name)
        before = states[name].get(MEMBRANE) if count is not None else None
        before = None if before is None else np.array(self.xp.to_numpy(before), copy=True)
        y = super().run_node(name, x, states, ctx)
        if name in self._recorded:
            out = np.asarray(self.xp.to_numpy(y), np.float64)
            self.sums[name] = out if name not in self.sums else self.sums[name] + out
        if name in self.synapses:
            node = self.graph.nodes[name]
            if type(node) in PRODUCTS:
                self._count_products(name, node, [self.xp.to_numpy(t) for t in x])
            else:
                self._count_synapses(name, self.xp.to_numpy(x), ctx)
        if count is not None:
            out = self.xp.to_numpy(y)
            count.outputs += int(out.size)
            count.nonzero += int(np.count_nonzero(out))
            after = states[name].get(MEMBRANE)
            if after is not None:
                count.has_membrane = True
                v = self.xp.to_numpy(after)
                count.updates += int(v.size) if before is None else int(np.count_nonzero(v != before))
        return y

    def _apply(self, node: Node, x: np.ndarray, ctx: KernelContext) -> float:
        sub = KernelContext(self.xp, ctx.dt, x.shape[0], ctx.shape, node)
        y, _ = KERNELS[type(node)](node, self.xp.asarray(x), {}, sub)
        return float(np.sum(self.xp.to_numpy(y)))

    def _count_synapses(self, name: str, x: np.ndarray, ctx: KernelContext) -> None:
        count, node = self.synapses[name], self.graph.nodes[name]
        if name not in self._dense:  # every weight and input 1: the same for every step and sample
            self._dense[name] = self._apply(_indicator(node, ones=True), np.ones((1, *x.shape[1:])), ctx)
            make = FANOUT.get(type(node)) if self.fanout else None
            self._fanouts[name] = None if make is None else make(node, tuple(x.shape[1:]), tuple(ctx.shape))
        count.dense += self._dense[name] * x.shape[0]
        fanout = self._fanouts[name]
        if fanout is not None:
            ops = float(np.sum(np.broadcast_to(fanout, x.shape), where=x != 0))
        else:
            ops = self._apply(_indicator(node, ones=False), (x != 0).astype(x.dtype), ctx)
        if is_spikes(x):
            count.acs += ops
        else:
            count.macs += ops

    def _count_products(self, name: str, node: Node, xs: list[np.ndarray]) -> None:
        count = self.synapses[name]
        for product in PRODUCTS[type(node)](node, xs):
            count.dense += product.dense
            if product.accumulate:
                count.acs += product.effective
            else:
                count.macs += product.effective


@dataclasses.dataclass
class Metrics:
    """The measured metrics; ``to_json`` is report.json's ``metrics``."""

    samples: int
    timesteps: int
    footprint_bytes: int
    parameters: int
    synapses: list[SynapseCount]
    neurons: list[NeuronCount]
    counts: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # recorded layers: Σ_t output (N, ...)

    def per_sample(self, total: float) -> float:
        return total / self.samples if self.samples else 0.0

    def to_json(self) -> dict[str, Any]:
        weights = sum(s.weights for s in self.synapses)
        zeros = sum(s.zero_weights for s in self.synapses)
        spiking = [n for n in self.neurons if n.spiking]
        outputs = sum(n.outputs for n in spiking)
        ps = self.per_sample
        return {
            "definitions": "NeuroBench (docs/report-schema.md, 'metrics')",
            "samples": self.samples,
            "timesteps": self.timesteps,
            "footprint_bytes": self.footprint_bytes,
            "parameters": self.parameters,
            "connection_sparsity": _ratio(zeros, weights),
            "activation_sparsity": None if not outputs else 1.0 - sum(n.nonzero for n in spiking) / outputs,
            "synaptic_operations": {
                "dense": ps(sum(s.dense for s in self.synapses)),
                "effective_macs": ps(sum(s.macs for s in self.synapses)),
                "effective_acs": ps(sum(s.acs for s in self.synapses)),
            },
            "membrane_updates": ps(sum(n.updates for n in self.neurons)),
            "synapse_layers": [
                {
                    "name": s.name,
                    "kind": s.kind,
                    "weights": s.weights,
                    "connection_sparsity": _ratio(s.zero_weights, s.weights),
                    "dense": ps(s.dense),
                    "effective_macs": ps(s.macs),
                    "effective_acs": ps(s.acs),
                }
                for s in self.synapses
            ],
            "neuron_layers": [
                {
                    "name": n.name,
                    "kind": n.kind,
                    "neurons": n.neurons,
                    "spiking": n.spiking,
                    "activation_sparsity": None if not n.outputs else 1.0 - n.nonzero / n.outputs,
                    "membrane_updates": ps(n.updates) if n.has_membrane else None,
                }
                for n in self.neurons
            ],
        }


def _ratio(part: float, whole: float) -> float | None:
    return None if not whole else part / whole


def measure(
    graph: Graph,
    trains: Mapping[str, np.ndarray] | None,
    *,
    record: Iterable[str] = (),
    batch_size: int = 16,
    dtype: str = "float32",
) -> Metrics:
    """The metrics of ``graph`` run on ``trains`` (T, N, *shape) by input name, ``batch_size`` samples at a
    time, and the output of each ``record`` node summed over the steps (spike counts, N × shape). Without trains
    only the static metrics (footprint, connection sparsity) are filled; the counts are then zero and ``samples``
    is 0."""
    nbytes, params = footprint(graph)
    xp = make_backend("numpy", dtype=dtype)
    interp = MeasuringInterpreter(graph, xp, record=record)
    first = None if not trains else next(iter(trains.values()))
    steps, n = (1, 0) if first is None else (int(first.shape[0]), int(first.shape[1]))
    counts: dict[str, list[np.ndarray]] = {name: [] for name in interp.record}
    for start in range(0, n, batch_size):
        assert trains is not None
        interp.run({name: np.asarray(a[:, start : start + batch_size]) for name, a in trains.items()}, steps)
        for name in interp.record:
            counts[name].append(interp.sums.pop(name))
    totals = {name: np.concatenate(parts) for name, parts in counts.items() if parts}
    return Metrics(n, steps, nbytes, params, list(interp.synapses.values()), list(interp.neurons.values()), totals)
