r"""What ``quantize{target=loihi2}`` tracks per float node: spike sources, and linear combinations of them.

On Loihi a value travels only as a neuron's spikes (or a graded input) through a synapse into a neuron. Every
float node between two neuron layers is linear (Conv, Dense, pools, Scale, Add, Concat, flattening, channel
permutations), so its value is an ``Affine``: :math:`y = \sum_k M_k(s_k) + b`, one *term* per spike source
:math:`s_k` with a linear map :math:`M_k` (targets/loihi2/linear.py) and a bias tensor :math:`b`. The neuron
that reads it gets one synapse per term (terms of one source with the same geometry merged), with synaptic
delays aligning sources of different latency.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spikec.targets.loihi2.linear import ConvMap, Map


@dataclasses.dataclass(frozen=True)
class Signal:
    """A spike source on Loihi: the lowered node's name and shape, the largest |value| per step, message bits.

    ``latency``: the step at which the value for input step 0 appears (each synapse delays by one step,
    plus its synaptic delay). ``early``: it may send something before that step (a layer with a bias integrates
    it from step 0; a layer fed by an early one passes that on). ``shared``: a shared part's graded relay.
    """

    name: str
    shape: tuple[int, ...]
    max_abs: float
    message_bits: int  # 0: binary spikes
    latency: int = 0
    early: bool = False
    shared: bool = False  # a shared part's relay (shared_relay.py): its readers take it with a weight exponent


@dataclasses.dataclass(frozen=True, eq=False)
class Term:
    """``map(source)`` placed at ``offset`` along axis 0 (channels, or the flat index) of the value; ``map`` None:
    the source itself."""

    source: Signal
    map: Map | None = None
    offset: int = 0

    @property
    def length(self) -> int:
        """How much of the value's axis 0 the term covers."""
        if self.map is None:
            return self.source.shape[0]
        if isinstance(self.map, ConvMap) and not self.map.flat:
            return self.map.out_shape[0]
        return self.map.out_size


@dataclasses.dataclass(frozen=True, eq=False)
class Affine:
    """A float node's value as terms of spike sources plus a bias (broadcastable to ``shape``, None: zero)."""

    shape: tuple[int, ...]
    terms: tuple[Term, ...]
    bias: np.ndarray | None = None

    @property
    def spikes_only(self) -> bool:
        """Spike sources as they are (a sum or concatenation of spike trains): no maps, no bias."""
        return self.bias is None and all(t.map is None for t in self.terms)


@dataclasses.dataclass(frozen=True, eq=False)
class Routed:
    """A Reshape/Transpose/Slice chain not yet back to a (C, H, W) or flat shape: ``index`` (the node's shape)
    holds, per element, the flat index of the ``base`` element it shows (ShuffleNet's channel shuffle)."""

    base: Signal | Affine
    base_shape: tuple[int, ...]
    index: np.ndarray


Value = Signal | Affine | Routed


def lift(value: Signal | Affine) -> Affine:
    """A spike source as an Affine of itself."""
    return value if isinstance(value, Affine) else Affine(value.shape, (Term(value),))


def compact_bias(bias: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """``bias`` as small as it broadcasts: None when zero, (C, 1, 1) when constant over a map's positions."""
    if bias is None:
        return None
    full = np.broadcast_to(np.asarray(bias, np.float64), shape)
    if not np.any(full):
        return None
    if len(shape) == 3:
        per_channel = full[:, :1, :1]
        if np.array_equal(full, np.broadcast_to(per_channel, shape)):
            return per_channel.copy()
    return np.array(full)
