"""The Akida IP v1 dialect (``InputConvolutional``, ``Convolutional``, ``FullyConnected``): integer fields as akida
2.19.3 stores them.

An IP v1 layer has no bias, no shifts and no scales: its weights, a ``threshold`` (int32) and an ``act_step``
(float32) per output channel. Measured against the engine (docs/akida-target.md, "IP v1"; tests/
test_akida_semantics.py):

.. math::
    pot &= W \\star x\\ \\text{(then the max-pool)} \\\\
    y &= \\mathrm{clip}\\big(\\lceil 16 (pot - threshold) / (2^{4 - b} \\lfloor 16\\, act\\_step \\rfloor)
    \\rceil,\\ 0,\\ 2^b - 1\\big)

with ``b`` = ``act_bits`` (1, 2 or 4): the engine holds ``act_step`` with 4 fractional bits (rounded down), and a
2-bit layer's step is 4 times ``act_step`` (a 1-bit layer fires when ``pot > threshold``). Without activation (the
model's last layer) the output is :math:`pot - threshold` (``act_step`` 1), the value the engine's ``predict``
returns (its ``forward`` returns ``pot``). Weights: 8-bit in the input layer, else 1-bit {0, 1}, 2-bit {-1, 0, 1}
or 4-bit [-7, 7]. Layouts are SIR's, as in ``dialect.py``; the emitter converts them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from spikec.ir.node import Array, Level, Node
from spikec.ir.traits import NonEvent
from spikec.targets.akida.dialect import ConvGeometry, DenseGeometry, integer_problems, range_problems

ACT_BITS = (1, 2, 4)
WEIGHT_RANGES = {1: (0, 1), 2: (-1, 1), 4: (-7, 7), 8: (-128, 127)}  # the engine's set_variable limits
POOLS_V1 = ("none", "max")
STEP_FRACTION = 16  # the engine keeps act_step to 1/16, rounded down (measured)


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaV1Layer(Node):
    """The fields and checks an IP v1 conv or dense layer shares: threshold, act_step and bit widths (module
    docstring); each kind adds its ``weight``."""

    level = Level.FIXED
    traits = frozenset({NonEvent()})
    threshold: Array  # int32, one per output channel
    act_step: Array  # float32 > 0, one per output channel (1 without activation)
    activation: int = 1
    act_bits: int = 4
    weights_bits: int = 4

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        yield from integer_problems(self, but=("act_step",))
        if self.act_bits not in ACT_BITS:
            yield f"act_bits {self.act_bits} must be one of {ACT_BITS} (Akida IP v1)"
        if self.weights_bits not in WEIGHT_RANGES:
            yield f"weights_bits {self.weights_bits} must be one of {tuple(WEIGHT_RANGES)} (Akida IP v1)"
        else:
            lo, hi = WEIGHT_RANGES[self.weights_bits]
            weight = np.asarray(self.weight)  # type: ignore[attr-defined]
            yield from range_problems("weight", weight, lo, hi, f"{self.weights_bits}-bit IP v1 weights")
        yield from range_problems("threshold", np.asarray(self.threshold), -(1 << 31), (1 << 31) - 1, "int32")
        outs = int(np.asarray(self.weight).shape[0])  # type: ignore[attr-defined]
        for name in ("threshold", "act_step"):
            if np.asarray(getattr(self, name)).shape != (outs,):
                yield f"'{name}' must hold one value per output channel ({outs})"
        step = np.asarray(self.act_step, np.float64)
        if step.size and np.min(np.floor(STEP_FRACTION * step)) < 1:
            yield f"'act_step' must be at least 1/{STEP_FRACTION} (the engine keeps it to 1/{STEP_FRACTION})"
        if not self.activation and step.size and np.any(step != 1):
            yield "'act_step' must be 1 in a layer without activation (its output is the potential minus threshold)"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaV1Conv(ConvGeometry, AkidaV1Layer):
    """``InputConvolutional`` (``input_layer=1``: 8-bit pixels and weights, a correlation) or ``Convolutional`` (a
    convolution; the emitter flips the kernel): conv, max-pool, activation (module docstring); pads and pooling:
    ``ConvGeometry`` (SAME pools SAME after a SAME conv, VALID after VALID). ``groups`` is always 1, the kernel
    (O, I, k, k): IP v1 has no depthwise layer (the quantizer spreads one over a full kernel)."""

    kind = "AkidaV1Conv"

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        yield from self.geometry_problems()
        if self.pool not in POOLS_V1:
            yield f"pool {self.pool!r} must be one of {POOLS_V1} (Akida IP v1 as this target emits it)"
        if self.groups != 1:
            yield "groups must be 1 (Akida IP v1 Convolutional is a full convolution)"


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class AkidaV1Dense(DenseGeometry, AkidaV1Layer):
    """``FullyConnected``: ``W @ x``, then the activation (module docstring). Inputs in SIR's C-order flatten of the
    previous layer's (C, H, W); the emitter reorders them to the engine's (C, Y, X) flatten of its (X, Y, C) map."""

    kind = "AkidaV1Dense"


from spikec.targets.akida import kernels_v1 as _kernels_v1  # noqa: E402,F401  (registers the kernels)
