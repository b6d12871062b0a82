"""Lower bounds on the cores a model needs, reported beside the core count.

``resource_bound`` is the issue's bound: ``max over resources ⌈total demand / per-core capacity⌉``,
with each layer's demand taken as one whole (every weight stored once, every presynaptic neuron
read once, one output axon per neuron some layer reads, one per readout neuron).

``proven_bound`` tightens it where no placement can do better: a Dense applied per token
(``TokenDense``) copies weight rows to every core holding some of its tokens, re-reads each token's
inputs on every such core, and its inputs fan out to all of them.

``tile_bound`` is tighter where a layer cannot be cut without duplicating something: a
convolution's tiles overlap on their input (halo: more input axons) and a Dense layer applied to
every token needs its weight rows on every core holding those tokens (weight sharing). For each
layer and resource it takes the least demand per neuron over the maximal core-sized tiles
(``_placement.tile_candidates``) and sums ``neurons × that ratio`` over layers:
``max over resources ⌈Σ_layers size · min_tiles(demand / neurons) / capacity⌉``. It bounds only
placements that cut layers into boxes of the searched shapes, not arbitrary neuron sets: an estimate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from spikec.demand import DenseOp, LayerDemand, WindowOp
from spikec.passes._placement import OUTPUT_AXONS, Fanout, consumers, interior, tile_candidates
from spikec.regions import volume
from spikec.resources import CORE_RESOURCES

NEURONS, STATE, MEMORY, INPUT_AXONS = (CORE_RESOURCES.index(r) for r in CORE_RESOURCES[:OUTPUT_AXONS])


@dataclasses.dataclass(frozen=True)
class TokenDense:
    """A layer every connection of which is one Dense over the last axis: (tokens..., features).

    On any core holding neurons of it from token set T_c and feature set F_c (any neuron set, not
    only boxes): input axons ``≥ |T_c| · in`` (each token reads its own ``in`` inputs: the fewest non-zeros
    of a row, summed over connections; all of them for dense weights), so ``|T_c| ≤ t_max = ⌊axons / in⌋``;
    memory ``≥ Σ_{f ∈ F_c} row_f`` (a row stored once per core), so ``|F_c| ≤ k_max`` (the most rows,
    cheapest first, that fit, and at most the neurons a core holds). Hence every token is on
    ``≥ m = ⌈features / k_max⌉`` cores.
    """

    tokens: int
    features: int
    inputs: int  # presynaptic neurons one token reads
    t_max: int
    k_max: int
    cheapest_row_bits: int
    dense: bool  # every row reads its whole input: each neuron read is read by every core holding its token

    @property
    def cores_per_token(self) -> int:
        return -(-self.features // self.k_max)


def token_dense(layer: LayerDemand, capacity: Sequence[int]) -> TokenDense | None:
    """The token-Dense view of ``layer`` (None: some connection is not a single Dense over the last axis)."""
    if not layer.connections or not all(len(c.ops) == 1 and isinstance(c.ops[0], DenseOp) for c in layer.connections):
        return None
    ops = [c.ops[0] for c in layer.connections if isinstance(c.ops[0], DenseOp)]
    features = layer.shape[-1]
    rows = np.zeros(features, dtype=np.int64)
    for op in ops:
        nnz = np.diff(op.nnz_cumsum)
        rows += np.minimum(op.n_in * op.bits, nnz * (op.bits + op.index_bits))
    row_nnz = [np.diff(op.nnz_cumsum) for op in ops]
    inputs = sum(int(nnz.min(initial=op.n_in)) for nnz, op in zip(row_nnz, ops, strict=True))
    dense = all(bool(np.all(nnz == op.n_in)) for nnz, op in zip(row_nnz, ops, strict=True))
    tokens = layer.size // features
    fit_rows = int(np.searchsorted(np.cumsum(np.sort(rows)), capacity[MEMORY], side="right"))
    per_core = min(capacity[NEURONS] // layer.compartments, capacity[STATE] // max(1, layer.state_bytes))
    k_max = max(1, min(fit_rows, per_core, features))
    t_max = max(1, min(capacity[INPUT_AXONS] // max(1, inputs), tokens))
    return TokenDense(tokens, features, inputs, t_max, k_max, int(rows.min()), dense)


@dataclasses.dataclass(frozen=True)
class ConvView:
    """A layer every connection of which is one convolution or pool (``WindowOp``) whose output position
    ``o`` reads input position ``o · stride`` (a real tap: ``2·pad ≤ dilation·(k − 1)``, ``pad`` a multiple of
    the dilation, in range): (channels, positions...), the convolutional TokenDense.

    On any core holding neurons S of it, with channel set F_c and position set T_c: distinct positions tap
    distinct input positions, each reading ``c_in/groups`` channels per connection, so input axons
    ``≥ |T_c| · inputs`` and ``|T_c| ≤ t_max = ⌊axons / inputs⌋``; a shared kernel is stored once per
    channel on the core and an unshared one (a delayed conv stored synapse by synapse) once per neuron, so memory
    ``≥ |F_c| · kernel_bits + |S| · neuron_bits`` and ``|F_c| ≤ k_max = ⌊memory / (kernel_bits +
    neuron_bits)⌋``. With ``|S| ≤ |F_c| · |T_c|``, summed over cores: memory ``≥ size · (kernel_bits / t_max
    + neuron_bits)``; every position lies on ``≥ m = ⌈channels / k_max⌉`` cores, so input axons
    ``≥ positions · m · inputs``; and an input neuron at a tapped position feeds every channel of its group
    there, on ``≥ ⌈channels / groups / k_max⌉`` cores: as many output axons.
    """

    tokens: int  # positions
    features: int  # channels
    inputs: int  # presynaptic neurons one position reads (tapped), summed over connections
    t_max: int
    k_max: int
    kernel_bits: int  # shared kernel bits per channel, summed over connections
    neuron_bits: int  # unshared synapse bits per neuron, summed over connections

    @property
    def cores_per_token(self) -> int:
        return -(-self.features // self.k_max)

    def fanout(self, op: WindowOp) -> int:
        """Cores an input neuron at a tapped position of ``op`` feeds at least."""
        return -(-(self.features // op.groups) // self.k_max)


def _taps(op: WindowOp, out_spatial: Sequence[int]) -> bool:
    """Whether output position ``o`` of ``op`` reads input ``o · stride`` on every axis (an injective tap)."""
    return all(
        2 * p <= d * (k - 1) and p % d == 0 and (o - 1) * s <= n - 1
        for n, o, k, s, p, d in zip(
            op.in_spatial, out_spatial, op.kernel, op.stride, op.padding, op.dilation, strict=True
        )
    )


def conv_view(layer: LayerDemand, capacity: Sequence[int]) -> ConvView | None:
    """The ConvView of ``layer`` (None: some connection is not a single tapping WindowOp feeding every channel)."""
    if len(layer.shape) < 2 or not layer.connections:
        return None
    ops = [c.ops[0] for c in layer.connections if len(c.ops) == 1 and isinstance(c.ops[0], WindowOp)]
    if len(ops) != len(layer.connections) or not all(_taps(op, layer.shape[1:]) for op in ops):
        return None
    channels, positions = layer.shape[0], layer.size // layer.shape[0]
    if any(op.written(0, channels) < channels for op in ops):  # parts of a concatenation: neurons read unalike
        return None
    one = ((0, 1),) * len(layer.shape)
    plane = ((0, 1), *((0, n) for n in layer.shape[1:]))  # one channel, every position
    shared = unshared = 0
    for op in ops:  # a kernel stored once per channel (shared), or once per neuron (e.g. a delayed conv)
        if op.memory_bits(plane) > op.memory_bits(one):
            unshared += op.memory_bits(plane) // positions
        else:
            shared += op.memory_bits(one)
    inputs = sum(op.channels_per_neuron() for op in ops)
    per_core = min(capacity[NEURONS] // layer.compartments, capacity[STATE] // max(1, layer.state_bytes))
    k_max = max(1, min(capacity[MEMORY] // max(1, shared + unshared), per_core, channels))
    t_max = max(1, min(capacity[INPUT_AXONS] // max(1, inputs), positions))
    return ConvView(positions, channels, inputs, t_max, k_max, shared, unshared)


def _tapped(op: WindowOp, out_spatial: Sequence[int]) -> tuple[slice, ...]:
    """The input positions ``o · stride`` that output positions tap, every channel."""
    return (slice(None), *(slice(0, (o - 1) * s + 1, s) for o, s in zip(out_spatial, op.stride, strict=True)))


def _output_axons(layers: Sequence[LayerDemand], capacity: Sequence[int] | None = None) -> int:
    """Output axons no placement can avoid: one per neuron some layer reads (layers on one core share
    it) and one per readout neuron. With ``capacity``, a neuron a token-Dense layer reads needs one per
    core holding that token of the reader, ``≥ m`` (TokenDense), and one a convolution taps one per core
    holding a channel of its group at that position (ConvView)."""
    by_name = {layer.name: layer for layer in layers}
    need = {layer.name: np.zeros(layer.shape, dtype=np.int64) for layer in layers}
    fed = consumers(layers)
    for layer in layers:
        view = token_dense(layer, capacity) if capacity is not None else None
        least = view.cores_per_token if view is not None and view.dense else 1
        conv = conv_view(layer, capacity) if capacity is not None else None
        for conn in layer.connections:
            read = conn.back(layer.box)
            if conn.source in by_name and read is not None:
                region = need[conn.source][tuple(slice(lo, hi) for lo, hi in read)]
                np.maximum(region, least, out=region)
                if conv is not None and isinstance(op := conn.ops[0], WindowOp):
                    tapped = need[conn.source][_tapped(op, layer.shape[1:])]
                    np.maximum(tapped, conv.fanout(op), out=tapped)
    return sum(int(need[n].sum()) if fed[n] else by_name[n].size for n in need)


def _ceil_div(totals: Sequence[float], capacity: Sequence[int]) -> dict[str, int]:
    return {r: max(0, -int(-t // c)) for r, t, c in zip(CORE_RESOURCES, totals, capacity, strict=True)}


def resource_bound(layers: Sequence[LayerDemand], capacity: Sequence[int]) -> dict[str, int]:
    """Resource -> ⌈total demand / capacity⌉ with every layer taken whole."""
    totals = [0.0] * len(CORE_RESOURCES)
    for layer in layers:
        for r, d in enumerate(layer.demand(layer.box, 0)):
            totals[r] += d
    totals[OUTPUT_AXONS] = _output_axons(layers)
    return _ceil_div(totals, capacity)


def proven_bound(layers: Sequence[LayerDemand], capacity: Sequence[int]) -> dict[str, int]:
    """Resource -> a bound no placement of any neuron sets can beat: the resource bound, where token-Dense
    layers (TokenDense) count ``≥ size · row / t_max`` memory bits, ``≥ tokens · m · in`` input axons,
    and their inputs ``≥ m`` output axons per neuron read."""
    totals = [0.0] * len(CORE_RESOURCES)
    for layer in layers:
        whole = layer.demand(layer.box, 0)
        for r, d in enumerate(whole):
            totals[r] += d
        view = token_dense(layer, capacity)
        if view is not None:
            totals[MEMORY] += max(0.0, layer.size * view.cheapest_row_bits / view.t_max - whole[MEMORY])
            totals[INPUT_AXONS] += max(0, view.tokens * view.cores_per_token * view.inputs - whole[INPUT_AXONS])
        conv = conv_view(layer, capacity)
        if conv is not None:
            floor = layer.size * (conv.kernel_bits / conv.t_max + conv.neuron_bits)
            totals[MEMORY] += max(0.0, floor - whole[MEMORY])
            totals[INPUT_AXONS] += max(0, conv.tokens * conv.cores_per_token * conv.inputs - whole[INPUT_AXONS])
    totals[OUTPUT_AXONS] = _output_axons(layers, capacity)
    return _ceil_div(totals, capacity)


def tile_bound(layers: Sequence[LayerDemand], capacity: Sequence[int], fanout: Sequence[Fanout]) -> dict[str, int]:
    """Resource -> ⌈Σ_layers size · least demand per neuron over maximal fitting tiles / capacity⌉."""
    totals = [0.0] * len(CORE_RESOURCES)
    for layer, f in zip(layers, fanout, strict=True):
        best = [float("inf")] * len(CORE_RESOURCES)
        for _, _, tile in tile_candidates(layer, f, capacity):
            for box in (interior(layer.shape, tile), tuple((0, t) for t in tile)):  # inside, and at the padded edge
                k = volume(box)
                for r, d in enumerate(layer.demand(box, 0)):
                    best[r] = min(best[r], d / k)
        for r in range(len(CORE_RESOURCES)):
            if best[r] < float("inf"):
                totals[r] += best[r] * layer.size
    totals[OUTPUT_AXONS] = _output_axons(layers, capacity)
    return _ceil_div(totals, capacity)
