"""Small random Loihi-dialect networks that exercise every Loihi kind and option.

Shared by the test against Lava itself (tests/test_loihi_lava.py: every node output and u/v state must
equal Lava's fixed_pt models) and by the numpy-vs-torch agreement cases (tests/test_interp_backends.py).
Each builder returns ``(graph, feeds, steps)`` with feeds (T, *shape): one sample.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from spikec.ir import Flatten, Graph, Input
from spikec.ir.node import Node
from spikec.targets.loihi2.dialect import LoihiConv, LoihiDelta, LoihiDense, LoihiLIF, LoihiSigma, LoihiSigmaDelta
from spikec.targets.loihi2.relay import LoihiGradedVec, LoihiPartialDense

T = 25
Network = tuple[Graph, dict[str, np.ndarray], int]


def _chain(shape: tuple[int, ...], x: np.ndarray, *nodes: Node) -> Network:
    from spikec.ir import Output

    named: dict[str, Node] = {"x": Input(shape=shape)}
    named |= {f"{type(n).kind.lower()}{i}": n for i, n in enumerate(nodes)}
    named["out"] = Output()
    return Graph(named, list(itertools.pairwise(named))), {"x": x}, x.shape[0]


def _spikes(rng: np.random.Generator, shape: tuple[int, ...], p: float = 0.3) -> np.ndarray:
    return (rng.random((T, *shape)) < p).astype(np.float64)


def dense_mixed_lif_bias() -> Network:
    """Mixed-sign 6-bit weights, exponent -1 (floor shift of negative sums); LIF with bias 2**3."""
    rng = np.random.default_rng(1)
    dense = LoihiDense(weight=rng.integers(-256, 256, (12, 20)), num_weight_bits=6, weight_exp=-1)
    lif = LoihiLIF(du=500, dv=300, vth=np.array(40), bias_mant=rng.integers(-50, 100, (12,)), bias_exp=np.array(3))
    return _chain((20,), _spikes(rng, (20,)), dense, lif)


def dense_excitatory_no_current_decay() -> Network:
    """Excitatory weights with exponent +1 and the odd bits dropped (7 bits); du = 4095: u is this step's input."""
    rng = np.random.default_rng(2)
    dense = LoihiDense(weight=rng.integers(0, 256, (10, 16)), num_weight_bits=7, weight_exp=1)
    lif = LoihiLIF(du=4095, dv=1024, vth=np.array(3000), bias_mant=np.array(-5), bias_exp=np.array(6))
    return _chain((16,), _spikes(rng, (16,)), dense, lif)


def dense_inhibitory_slow_decay() -> Network:
    """Inhibitory weights (magnitude truncation on -w) against a positive bias; slow decays, u wraps into v."""
    rng = np.random.default_rng(3)
    dense = LoihiDense(weight=-rng.integers(0, 256, (8, 12)), num_weight_bits=5, sign_mode=3)
    lif = LoihiLIF(du=40, dv=20, vth=np.array(500), bias_mant=rng.integers(1500, 4000, (8,)), bias_exp=np.array(4))
    return _chain((12,), _spikes(rng, (12,), 0.2), dense, lif)


def lif_bias_input_reset() -> Network:
    """A netx-style input layer (input as bias_mant, negative exponent: floor shift) with periodic reset."""
    rng = np.random.default_rng(4)
    bias = np.broadcast_to(rng.integers(-200, 2000, (10,)), (T, 10)).astype(np.float64)
    lif0 = LoihiLIF(du=4095, dv=700, vth=np.array(20), bias_exp=np.array(-2), input_mode="bias", reset_interval=6)
    dense = LoihiDense(weight=rng.integers(-128, 128, (6, 10)))
    lif1 = LoihiLIF(du=3000, dv=600, vth=np.array(10), reset_interval=6, reset_offset=2)
    return _chain((10,), bias, lif0, dense, lif1)


def conv_lif_flatten_dense() -> Network:
    """Binary spikes through a strided, padded conv (24-bit wrap), LIF with reset, flatten, dense."""
    rng = np.random.default_rng(5)
    conv = LoihiConv(weight=rng.integers(-60, 120, (4, 2, 3, 3)), stride=(2, 2), padding=(1, 1))
    lif = LoihiLIF(du=3500, dv=900, vth=np.array(30), reset_interval=7, reset_offset=3)
    dense = LoihiDense(weight=rng.integers(-100, 200, (5, 4 * 4 * 4)))
    out = LoihiLIF(du=2000, dv=500, vth=np.array(5000))
    return _chain((2, 8, 8), _spikes(rng, (2, 8, 8), 0.4), conv, lif, Flatten(), dense, out)


def sdnn_graded_chain() -> Network:
    """netx's SDNN: Delta input, graded 16-bit messages, SigmaDelta (ReLU, bias), a Sigma readout."""
    rng = np.random.default_rng(6)
    x = np.cumsum(rng.integers(-3, 4, (T, 12)), axis=0) + 40.0
    delta = LoihiDelta(vth=np.array(2), spike_exp=6, state_exp=6)
    d1 = LoihiDense(weight=rng.integers(-100, 120, (9, 12)), num_message_bits=16)
    sd = LoihiSigmaDelta(vth=np.array(8), bias=rng.integers(-20, 40, (9,)), spike_exp=6, state_exp=6)
    d2 = LoihiDense(weight=rng.integers(-60, 80, (4, 9)), num_message_bits=16, weight_exp=-3)
    return _chain((12,), x, delta, d1, sd, d2, LoihiSigma())


def sigma_delta_unit_cum_error() -> Network:
    """Delta and SigmaDelta with cumulative error, identity activation, other exponents."""
    rng = np.random.default_rng(7)
    x = rng.integers(-30, 30, (T, 10)).astype(np.float64)
    delta = LoihiDelta(vth=np.array(5), spike_exp=2, state_exp=3, cum_error=1)
    dense = LoihiDense(weight=rng.integers(-128, 128, (7, 10)), num_message_bits=12)
    sd = LoihiSigmaDelta(vth=np.array(3), bias=np.array(2), spike_exp=1, state_exp=2, cum_error=1, act_mode="unit")
    return _chain((10,), x, delta, dense, sd)


def conv_graded_groups() -> Network:
    """A grouped, dilated conv on graded messages feeding a SigmaDelta."""
    rng = np.random.default_rng(8)
    x = np.cumsum(rng.integers(-2, 3, (T, 2, 9, 9)), axis=0) + 10.0
    delta = LoihiDelta(vth=np.array(1), spike_exp=3, state_exp=3)
    conv = LoihiConv(weight=rng.integers(-40, 60, (4, 1, 3, 2)), dilation=(2, 1), groups=2, num_message_bits=16)
    sd = LoihiSigmaDelta(vth=np.array(30), spike_exp=3, state_exp=3)
    return _chain((2, 9, 9), x, delta, conv, sd)


def dense_recurrent() -> Network:
    """netx's dense_rec: a LIF layer's spikes return through an unbuffered synapse on a recurrent edge."""
    from spikec.ir import Output

    rng = np.random.default_rng(9)
    nodes: dict[str, Node] = {
        "x": Input(shape=(10,)),
        "ff": LoihiDense(weight=rng.integers(-80, 200, (8, 10))),
        "lif": LoihiLIF(du=3000, dv=800, vth=np.array(120)),
        "rec": LoihiDense(weight=rng.integers(-200, 150, (8, 8)), buffered=0),
        "out": Output(),
    }
    edges = [("x", "ff"), ("ff", "lif"), ("lif", "rec"), ("rec", "lif", True), ("lif", "out")]
    return Graph(nodes, edges), {"x": _spikes(rng, (10,), 0.4)}, T


def dense_synaptic_delays() -> Network:
    """Lava's DelayDense: per-synapse delays 0..4 on a mixed 7-bit layer, graded input, exponent -1."""
    rng = np.random.default_rng(10)
    dense = LoihiDense(
        weight=rng.integers(-200, 250, (6, 9)),
        num_weight_bits=7,
        weight_exp=-1,
        num_message_bits=8,
        delay=rng.integers(0, 5, (6, 9)),
    )
    lif = LoihiLIF(du=2500, dv=600, vth=np.array(150))
    x = rng.integers(0, 4, (T, 9)).astype(np.float64) * (rng.random((T, 9)) < 0.4)
    return _chain((9,), x, dense, lif)


def sparse_dense_and_delays() -> Network:
    """Sparse weights (5 % non-zero: the interpreter sums over the non-zeros), binary into a LIF, then graded
    with delays: what flatten-tokens' block-diagonal and coincidence layers look like."""
    from spikec.ir import Output

    rng = np.random.default_rng(11)
    first = rng.integers(-200, 250, (40, 30)) * (rng.random((40, 30)) < 0.05)
    second = rng.integers(-120, 200, (20, 40)) * (rng.random((20, 40)) < 0.05)
    nodes = {
        "x": Input(shape=(30,)),
        "d1": LoihiDense(weight=first, weight_exp=1),
        "l1": LoihiLIF(du=4095, dv=0, vth=np.array(60)),
        "d2": LoihiDense(weight=second, delay=rng.integers(0, 3, (20, 40)), num_weight_bits=7),
        "l2": LoihiLIF(du=3000, dv=400, vth=np.array(40)),
        "out": Output(),
    }
    edges = [("x", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2"), ("l2", "out")]
    return Graph(nodes, edges), {"x": _spikes(rng, (30,), 0.5)}, T


def conv_delays_and_many_groups() -> Network:
    """What the CNN lowering emits beyond a plain Conv: a depthwise conv of 130 channels (more groups than Lava's
    int8 field holds: built with fewer groups), and delayed convs (Lava's DelaySparse over the connectivity), a
    residual's identity (depthwise 1×1, excitatory) and a strided mixed-sign one, into LIFs with start resets."""
    from spikec.ir import Output

    rng = np.random.default_rng(12)
    c = 130
    nodes = {
        "x": Input(shape=(c, 5, 5)),
        "dw": LoihiConv(weight=rng.integers(-120, 200, (c, 1, 3, 3)), padding=(1, 1), groups=c),
        "skip": LoihiConv(weight=np.full((c, 1, 1, 1), 90), groups=c, delay=2),
        "a": LoihiLIF(du=4095, dv=0, vth=np.array(100), bias_mant=np.array(30), reset_interval=1 << 24,
                      reset_offset=2),
        "down": LoihiConv(weight=2 * rng.integers(-128, 127, (4, c, 3, 3)), stride=(2, 2), delay=1),
        "b": LoihiLIF(du=3000, dv=200, vth=np.array(400)),
        "ya": Output(),
        "yb": Output(),
    }  # fmt: skip
    edges = [("x", "dw"), ("x", "skip"), ("dw", "a"), ("skip", "a"), ("x", "down"), ("down", "b"), ("a", "ya"),
             ("b", "yb")]  # fmt: skip
    return Graph(nodes, edges), {"x": _spikes(rng, (c, 5, 5), 0.3)}, T


def partial_sums_relayed() -> Network:
    """split-fanin's structure by hand: 3 column groups of a mixed 7-bit layer (LoihiPartialDense, exponent 0),
    GradedVec relays (one with vth 300: only larger sums pass), one graded identity merge with the exponent -2
    and a delay on whose input port the relays sum."""
    from spikec.ir import Output

    rng = np.random.default_rng(12)
    weight = rng.integers(-256, 256, (6, 30))
    nodes: dict[str, Node] = {"x": Input(shape=(30,))}
    edges = []
    for g in range(3):
        nodes[f"part{g}"] = LoihiPartialDense(
            weight=weight[:, 10 * g : 10 * g + 10], in_offset=10 * g, in_size=30, num_weight_bits=7, sign_mode=1
        )
        nodes[f"relay{g}"] = LoihiGradedVec(vth=np.array(300 if g == 2 else 0))
        edges += [("x", f"part{g}"), (f"part{g}", f"relay{g}"), (f"relay{g}", "merge")]
    nodes["merge"] = LoihiDense(weight=np.eye(6), weight_exp=-2, num_message_bits=24, sign_mode=2, delay=np.asarray(2))
    nodes["lif"] = LoihiLIF(du=2000, dv=300, vth=np.array(60))
    nodes["out"] = Output()
    edges += [("merge", "lif"), ("lif", "out")]
    return Graph(nodes, edges), {"x": _spikes(rng, (30,), 0.4)}, T


def shared_part_relayed() -> Network:
    """A DenseNet part computed once (targets/loihi2/shared_relay.py) by hand: a 3×3 conv of binary spikes into a
    (C, H, W) GradedVec relay, read by two LIF layers through depthwise 1×1 convs of graded input with weight
    exponents -6 (mixed signs, even) and -3 (excitatory): Lava's Sparse over the conv's connectivity."""
    from spikec.ir import Output

    rng = np.random.default_rng(13)
    c = 6
    nodes = {
        "x": Input(shape=(4, 5, 5)),
        "part": LoihiConv(weight=rng.integers(-127, 128, (c, 4, 3, 3)), padding=(1, 1)),
        "relay": LoihiGradedVec(vth=np.array(0)),
        "read_a": LoihiConv(weight=2 * rng.integers(-128, 128, (c, 1, 1, 1)), groups=c, num_message_bits=24,
                            weight_exp=-6),
        "a": LoihiLIF(du=4095, dv=0, vth=np.array(200), bias_mant=np.array(10)),
        "read_b": LoihiConv(weight=rng.integers(1, 256, (c, 1, 1, 1)), groups=c, num_message_bits=24, weight_exp=-3),
        "b": LoihiLIF(du=4095, dv=100, vth=np.array(3000)),
        "ya": Output(),
        "yb": Output(),
    }  # fmt: skip
    edges = [("x", "part"), ("part", "relay"), ("relay", "read_a"), ("read_a", "a"), ("relay", "read_b"),
             ("read_b", "b"), ("a", "ya"), ("b", "yb")]  # fmt: skip
    return Graph(nodes, edges), {"x": _spikes(rng, (4, 5, 5), 0.4)}, T


NETWORKS: dict[str, Callable[[], Network]] = {
    fn.__name__: fn
    for fn in (
        dense_mixed_lif_bias,
        dense_excitatory_no_current_decay,
        dense_inhibitory_slow_decay,
        lif_bias_input_reset,
        conv_lif_flatten_dense,
        sdnn_graded_chain,
        sigma_delta_unit_cum_error,
        conv_graded_groups,
        dense_recurrent,
        dense_synaptic_delays,
        sparse_dense_and_delays,
        conv_delays_and_many_groups,
        partial_sums_relayed,
        shared_part_relayed,
    )
}

# one network per Loihi kind, for the numpy/torch agreement test
BY_KIND: dict[str, str] = {
    "LoihiDense": "dense_mixed_lif_bias",
    "LoihiLIF": "lif_bias_input_reset",
    "LoihiConv": "conv_lif_flatten_dense",
    "LoihiDelta": "sigma_delta_unit_cum_error",
    "LoihiSigmaDelta": "sdnn_graded_chain",
    "LoihiSigma": "sdnn_graded_chain",
    "LoihiDense (sparse)": "sparse_dense_and_delays",
    "LoihiPartialDense": "partial_sums_relayed",
    "LoihiGradedVec": "partial_sums_relayed",  # the kernel's sum over non-zeros, not a kind of its own
    "LoihiConv (weight exponent)": "shared_part_relayed",
}


def backend_case(kind: str) -> tuple[Graph, dict[str, np.ndarray]]:
    """The network for ``kind`` with its feed as a batch of one, (T, 1, *shape)."""
    graph, feeds, _ = NETWORKS[BY_KIND[kind]]()
    return graph, {k: v[:, None] for k, v in feeds.items()}
