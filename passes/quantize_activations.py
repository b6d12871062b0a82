"""``quantize-activations``: insert a calibrated ``Quantize`` where the exact SNN will carry spikes.

The result is a quantized ANN (QANN): still an ANN, evaluated by ``spikec eval``, and the model
the exact SNN reproduces (``exact-spiking``). A ``Quantize`` goes after

* every node the SNN cannot pass increments through (Softmax, LayerNorm, GELU, ReLU, a product of
  two activations, ...: ``_exact_rules.is_additive`` is False), so what it sends on are spikes;
* with ``inputs=true`` (default, as SpikeZIP-TF), every input of such a node that comes from a
  weighted layer (Dense, Conv; seen through reshapes, transposes and a bias), so those nodes
  receive spikes too (Q, K, V of attention, the MLP's hidden layer before GELU).

Nodes fed only by constants are left alone. Per tensor, from the calibration set: the lower and
upper ``percentile`` of the values give a range :math:`[m, M] \\ni 0`; then
:math:`s = (M - m)/(L - 1)`, :math:`lo = \\mathrm{round}(m/s)`, :math:`hi = lo + L - 1` (so
:math:`lo = 0`, :math:`s = M/(L-1)` for a non-negative tensor). A zero range is an error naming
the layer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from spikec.errors import PassError
from spikec.interp import evaluate
from spikec.ir import ann, exact, spatial, structure, tensor
from spikec.ir.graph import Edge, Graph
from spikec.ir.node import Node
from spikec.passes._exact_rules import is_additive
from spikec.pipeline import PassResult

MAX_VALUES = 1_000_000  # values kept per tensor for the percentiles (uniform subsample, seeded)
WEIGHTED = (ann.Dense, ann.Conv, spatial.ConvTranspose)
# single-input nodes that only move, pick, shift or scale values: a weighted layer seen through them
PASS_THROUGH = (
    ann.Reshape,
    ann.Flatten,
    ann.Transpose,
    ann.Identity,
    ann.Scale,
    tensor.Bias,
    tensor.Gather,
    tensor.Slice,
)


def dynamic_nodes(graph: Graph) -> set[str]:
    """Nodes whose value depends on a graph input (forward edges)."""
    seen: set[str] = set(graph.inputs)
    for name in graph.order:
        if any(e.src in seen for e in graph.in_edges(name) if not e.recurrent):
            seen.add(name)
    return seen


def quantization_sites(graph: Graph, *, inputs: bool = True) -> list[str]:
    """Nodes whose output gets a ``Quantize``, in graph order (see the module docstring)."""
    dynamic = dynamic_nodes(graph)
    skip = (structure.Input, structure.Output, exact.Quantize)

    def wrapped(name: str) -> bool:
        node = graph.nodes[name]
        return name in dynamic and not isinstance(node, skip) and not is_additive(graph, name)

    def weighted_source(name: str) -> bool:
        """``name`` is a weighted layer, or reached from one through single-input reshaping nodes."""
        while isinstance(graph.nodes[name], PASS_THROUGH) and len(graph.in_edges(name)) == 1:
            name = graph.in_edges(name)[0].src
        return isinstance(graph.nodes[name], WEIGHTED) and name in dynamic

    def already_quantized(name: str) -> bool:
        return all(isinstance(graph.nodes[e.dst], exact.Quantize) for e in graph.out_edges(name))

    sites = {name for name in dynamic if wrapped(name)}
    if inputs:
        sites |= {e.src for name in dynamic if wrapped(name) for e in graph.in_edges(name) if weighted_source(e.src)}
    return [name for name in graph.order if name in sites and not already_quantized(name)]


def _ranges(
    graph: Graph, calib: np.ndarray, names: list[str], percentile: float, batch_size: int, backend: str
) -> dict[str, tuple[float, float, int, int]]:
    """(lower percentile, upper percentile, #values, #nonzero) of each traced node on the calibration set."""
    rng = np.random.default_rng(0)
    kept: dict[str, list[np.ndarray]] = {n: [] for n in names}
    nonzero = dict.fromkeys(names, 0)
    count = dict.fromkeys(names, 0)
    n = calib.shape[0]
    for start in range(0, n, batch_size):
        traces = evaluate(graph, calib[start : start + batch_size], trace=names, backend=backend).traces
        for name in names:
            values = np.asarray(traces[name], np.float64).ravel()
            count[name] += values.size
            nonzero[name] += int(np.count_nonzero(values))
            keep = max(1, MAX_VALUES * batch_size // max(n, 1))
            if values.size > keep:
                values = rng.choice(values, keep, replace=False)
            kept[name].append(values)
    out = {}
    for name in names:
        values = np.concatenate(kept[name])
        lo, hi = np.percentile(values, [100.0 - percentile, percentile])
        out[name] = (float(lo), float(hi), count[name], nonzero[name])
    return out


def quantizer(graph: Graph, name: str, low: float, high: float, levels: int, stats: tuple[int, int]) -> exact.Quantize:
    """The ``Quantize`` for a tensor whose calibrated range is ``[low, high]`` (see the module docstring)."""
    m, big = min(low, 0.0), max(high, 0.0)
    if not (np.isfinite(m) and np.isfinite(big)) or big - m <= 0.0:
        total, nonzero = stats
        raise PassError(
            f"quantize-activations: calibration gives {graph.describe(name)} a zero range "
            f"(percentile range [{low:g}, {high:g}]; {nonzero} of {total} values nonzero): it cannot be quantized. "
            "Calibrate on more or other data (samples that activate this layer), lower the percentile, "
            "or remove the layer from the model"
        )
    step = (big - m) / (levels - 1)
    lo = round(m / step)
    return exact.Quantize(step=np.asarray(step), lo=lo, hi=lo + levels - 1, origin=graph.nodes[name].origin)


def quantize_activations(
    graph: Graph,
    *,
    calib: np.ndarray | None = None,
    levels: int = 16,
    percentile: float = 99.9,
    inputs: bool = True,
    batch_size: int = 128,
    backend: str = "numpy",
    progress: Callable[[int, int], None] | None = None,
) -> PassResult:
    """Make a QANN: calibrated clip-floor Quantize (L=levels) after each node the exact SNN carries as spikes.

    ``backend`` runs the calibration forward pass (float64 either way; ``torch`` is faster on large models).
    """
    if calib is None:
        raise PassError(
            "quantize-activations needs a calibration set: run spikec compile --method exact --calib X.npy, "
            "or give calib=array from Python (spikec.convert_exact.convert_exact)"
        )
    if levels < 2:
        raise PassError(f"levels={levels} must be >= 2")
    if not 50.0 < percentile <= 100.0:
        raise PassError(f"percentile={percentile} must be in (50, 100]")
    if calib.shape[0] == 0:
        raise PassError("quantize-activations: the calibration set is empty")
    if graph.is_spiking:
        raise PassError("quantize-activations takes an ANN; this graph has spiking/stateful nodes")
    sites = quantization_sites(graph, inputs=inputs)
    if not sites:
        return PassResult(graph, False)
    ranges = _ranges(graph, calib, sites, percentile, batch_size, backend)
    if progress is not None:
        progress(calib.shape[0], calib.shape[0])
    taken = set(graph.nodes)
    added: dict[str, tuple[str, exact.Quantize]] = {}
    for name in sites:
        low, high, total, nonzero = ranges[name]
        new = _fresh(taken, f"{name}.q")
        taken.add(new)
        added[name] = (new, quantizer(graph, name, low, high, levels, (total, nonzero)))
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        nodes[name] = node
        if name in added:
            new, q = added[name]
            nodes[new] = q
    edges = [Edge(added[e.src][0], e.dst, e.recurrent) if e.src in added else e for e in graph.edges]
    edges += [Edge(name, added[name][0]) for name in sites]
    return PassResult(Graph(nodes, edges, dt=graph.dt), True)


def _fresh(taken: set[str], base: str) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}.{i}"
    return name
