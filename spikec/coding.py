"""Input encoding, output decoding and batched simulation of converted SNNs (docs/conversion.md).

A converted SNN is fed a static sample (B, *shape) as a train of ``T`` steps: ``direct`` repeats the
analog value every step; ``poisson`` draws spikes of ±1 with probability ``|x|/scale`` (seeded), and
the graph's ``encode-input`` Scale gives each spike the value ``scale``; ``graded`` repeats the integer
``round(x·L/scale)`` (``L = GRADED_LEVELS``, 8 bits: what a chip's graded input spikes carry), and the
``encode-input`` Scale ``scale/L`` gives it back its value. The answer is read from the
graph outputs: ``membrane`` (an integrator ``I``) gives ``v_T/T``; ``spikes`` (a bipolar IF behind the
restoring Scale) gives ``Σ_t y_t / T``. ``simulate`` runs the reference interpreter over batches and
also sums the output of chosen nodes over time (spike counts), without keeping per-step traces.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from spikec.errors import InputError, SpikecError
from spikec.interp.backend import Backend, Tensor, make_backend
from spikec.interp.interpreter import Interpreter, check_run_memory
from spikec.ir.graph import Graph

ENCODINGS = ("direct", "poisson", "graded")
GRADED_LEVELS = 255  # graded input: integers in [-255, 255] (8 bits and a sign)
DECODINGS = ("membrane", "spikes")
Progress = Callable[[str, int, int], None]  # (stage, done, total)


def as_samples(graph: Graph, array: Any, what: str) -> np.ndarray:
    """``array`` as float64 samples (N, *shape) for the graph's one input; liberal about unit axes.

    (N, 28, 28) fits an input of shape (1, 28, 28), as does (N, 1, 28, 28) or (N, 784) for (784,).
    Raises ``InputError`` naming ``what`` for the wrong shape, an empty set, non-numeric data, NaN/inf.
    """
    if len(graph.inputs) != 1:
        raise InputError(f"conversion takes models with one input; this one has {list(graph.inputs)}")
    shape = tuple(graph.nodes[graph.inputs[0]].feed_shape())
    a = np.asarray(array)
    if a.dtype.kind not in "fiub":
        raise InputError(f"{what}: dtype {a.dtype} is not numeric")
    expected = f"(N, {', '.join(map(str, shape))})"
    if a.ndim == 0:
        raise InputError(f"{what} is a scalar; give samples as {expected}")
    if a.shape[1:] != shape:
        if [d for d in a.shape[1:] if d != 1] != [d for d in shape if d != 1]:
            raise InputError(
                f"{what} has shape {a.shape}, but the model takes samples of shape {shape}: give {expected}"
            )
        a = a.reshape((a.shape[0], *shape))
    if a.shape[0] == 0:
        raise InputError(f"{what} is empty (0 samples); give at least one sample {expected}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    if bad.any():
        raise InputError(f"{what} holds NaN or inf (first in sample {int(np.argmax(bad))})")
    return a


def check_coding(encoding: str, decoding: str) -> None:
    if encoding not in ENCODINGS:
        raise SpikecError(f"encoding {encoding!r} is not one of {list(ENCODINGS)}")
    if decoding not in DECODINGS:
        raise SpikecError(f"decoding {decoding!r} is not one of {list(DECODINGS)}")


def encode(x: np.ndarray, timesteps: int, encoding: str, *, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """(T, B, *shape) input train for samples ``x`` (B, *shape)."""
    if encoding == "direct":
        return np.broadcast_to(x, (timesteps, *x.shape))
    if encoding == "graded":
        return np.broadcast_to(graded(x, scale), (timesteps, *x.shape))
    rng = np.random.default_rng(seed)
    p = np.clip(np.abs(x) / scale, 0.0, 1.0)
    return (rng.random((timesteps, *x.shape)) < p) * np.sign(x)


def graded(x: np.ndarray, scale: float) -> np.ndarray:
    """``round(x·L/scale)`` clipped to ``[-L, L]``: the integers a graded input carries (``L = GRADED_LEVELS``)."""
    return np.clip(np.round(np.asarray(x, np.float64) * (GRADED_LEVELS / scale)), -GRADED_LEVELS, GRADED_LEVELS)


def decode(outputs: np.ndarray, decoding: str) -> np.ndarray:
    """The answer after each number of steps: (T, B, ...) from the output train (T, B, ...)."""
    steps = np.arange(1, outputs.shape[0] + 1).reshape((-1,) + (1,) * (outputs.ndim - 1))
    if decoding == "membrane":
        return outputs / steps
    return np.cumsum(outputs, axis=0) / steps


class CountingInterpreter(Interpreter):
    """The reference interpreter, also summing the output of ``count`` nodes over time (spike counts)."""

    def __init__(self, graph: Graph, backend: Backend, count: Iterable[str]) -> None:
        super().__init__(graph, backend)
        self.count = set(count)
        self.sums: dict[str, Tensor] = {}

    def observe(self, name: str, values: Tensor) -> None:
        if name in self.count:
            total = self.xp.reduce("sum", values, (0,), False)
            self.sums[name] = total if name not in self.sums else self.sums[name] + total


@dataclasses.dataclass
class Simulation:
    """Decoded answers after each step (T, N, ...) per output, and summed outputs (N, ...) of counted nodes."""

    answers: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]


def simulate(
    graph: Graph,
    x: np.ndarray,
    *,
    timesteps: int,
    encoding: str = "direct",
    decoding: str = "membrane",
    scale: float = 1.0,
    seed: int = 0,
    count: Iterable[str] = (),
    backend: str = "numpy",
    dtype: str = "float64",
    batch_size: int = 128,
    progress: Progress | None = None,
    stage: str = "simulation",
) -> Simulation:
    """Run the SNN on samples ``x`` (N, *shape) for ``timesteps`` steps, in batches, in ``dtype`` arithmetic."""
    if timesteps < 1:
        raise SpikecError(f"timesteps must be >= 1, got {timesteps}")
    xp = make_backend(backend, dtype=dtype)
    names = list(count)
    (input_name,) = graph.inputs
    # the outputs are recorded and decoded (two copies); poisson encoding draws the whole input train
    check_run_memory(
        graph, timesteps, min(batch_size, x.shape[0]), "lower --timesteps (or --batch-size)",
        inputs=encoding == "poisson", recorded=[*graph.outputs, *graph.outputs],
    )  # fmt: skip
    answers: dict[str, list[np.ndarray]] = {}
    counts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    n = x.shape[0]
    for start in range(0, n, batch_size):
        batch = x[start : start + batch_size]
        train = encode(batch, timesteps, encoding, scale=scale, seed=seed + start)
        interp = CountingInterpreter(graph, xp, names)
        outputs, _ = interp.run({input_name: np.asarray(train)}, timesteps)
        for name, out in outputs.items():
            answers.setdefault(name, []).append(decode(out, decoding))
        for name in names:
            counts[name].append(xp.to_numpy(interp.sums[name]))
        if progress is not None:
            progress(stage, min(start + batch_size, n), n)
    return Simulation(
        {k: np.concatenate(v, axis=1) for k, v in answers.items()},
        {k: np.concatenate(v) for k, v in counts.items()},
    )
