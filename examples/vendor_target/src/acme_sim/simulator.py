"""ACME-1's reference simulator: the step equations of the chip specification (``acme_sim``), in int64 numpy.

``simulate(config, inputs, steps)`` runs every sample of ``inputs`` (per input ``(T, N, *shape)`` integers
0 .. the input's ``max``) for ``steps`` steps, core by core: each core computes its neurons' rows of ``W``
and their membranes. It returns what every group sent (spikes or readout values) and every membrane after
the step, ``(T, N, size)``, and each output reshaped to ``(T, N, *shape)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from acme_sim.config import V_BITS, ConfigError, Group, NetworkConfig

V_MIN, V_MAX = -(1 << (V_BITS - 1)), (1 << (V_BITS - 1)) - 1


@dataclasses.dataclass(frozen=True)
class SimResult:
    outputs: dict[str, np.ndarray]  # output name -> (T, N, *shape)
    sent: dict[str, np.ndarray]  # group -> (T, N, size): spikes, or v for a readout group
    membrane: dict[str, np.ndarray]  # group -> (T, N, size): v after the step (after the reset)


def _feeds(config: NetworkConfig, inputs: Mapping[str, np.ndarray], steps: int) -> tuple[dict[str, np.ndarray], int]:
    feeds: dict[str, np.ndarray] = {}
    samples = None
    for item in config.inputs:
        if item.name not in inputs:
            raise ConfigError(f"no values for input '{item.name}' (given: {sorted(inputs)})")
        x = np.asarray(inputs[item.name])
        if x.ndim < 2 or x.shape[0] < steps or int(np.prod(x.shape[2:])) != item.size:
            raise ConfigError(f"input '{item.name}' is {x.shape}; expected (T >= {steps}, N, *{item.shape})")
        if not np.array_equal(x, np.round(x)) or x.min() < 0 or x.max() > item.max:
            raise ConfigError(f"input '{item.name}' must hold integers 0 .. {item.max}")
        if samples is not None and x.shape[1] != samples:
            raise ConfigError(f"input '{item.name}' has {x.shape[1]} samples, another input {samples}")
        samples = x.shape[1]
        feeds[item.name] = x[:steps].reshape(steps, samples, item.size).astype(np.int64)
    return feeds, int(samples or 0)


def _step(group: Group, values: Mapping[str, np.ndarray], v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One step of one group, core by core: (what it sends, v after the step)."""
    sent, after = np.zeros_like(v), np.zeros_like(v)
    for core in group.cores:
        lo, hi = core.neurons
        current = sum((values[s.source] @ s.weight[lo:hi].T for s in group.synapses), np.zeros_like(v[:, lo:hi]))
        mine = v[:, lo:hi]
        leak = mine >> group.leak_shift if group.leak_shift else 0
        mine = np.clip(mine - leak + current + group.bias[lo:hi], V_MIN, V_MAX)
        if group.readout:
            sent[:, lo:hi] = after[:, lo:hi] = mine
        else:
            fired = (mine >= group.threshold[lo:hi]).astype(np.int64)
            sent[:, lo:hi], after[:, lo:hi] = fired, mine - fired * group.threshold[lo:hi]
    return sent, after


def simulate(config: NetworkConfig, inputs: Mapping[str, np.ndarray], steps: int) -> SimResult:
    """Run ``config`` on ``inputs`` for ``steps`` steps (see the module docstring)."""
    feeds, samples = _feeds(config, inputs, steps)
    v = {g.name: np.broadcast_to(g.v_init, (samples, g.size)).copy() for g in config.groups}
    sent = {g.name: np.zeros((steps, samples, g.size), np.int64) for g in config.groups}
    membrane = {g.name: np.zeros((steps, samples, g.size), np.int64) for g in config.groups}
    for t in range(steps):
        values = {name: x[t] for name, x in feeds.items()}
        for group in config.groups:
            values[group.name], v[group.name] = _step(group, values, v[group.name])
            sent[group.name][t], membrane[group.name][t] = values[group.name], v[group.name]
    outputs = {o.name: sent[o.group].reshape(steps, samples, *o.shape) for o in config.outputs}
    return SimResult(outputs, sent, membrane)
