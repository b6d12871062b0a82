r"""``CompensatedSpikingSelfAttention``: Spikformer attention on spike *counts*, so rates multiply exactly.

A per-step product of spike trains is not the product of their rates:
:math:`\frac1T\sum_t q_t k_t^\top v_t \ne \bar q\,\bar k^\top \bar v` when the trains are correlated
(they are: Q, K, V are driven by the same spikes). This kind keeps the counts
:math:`A_t = \sum_{\tau \le t} q_\tau` (likewise :math:`B_t`, :math:`C_t` for K, V) and emits the
increment of the running product (the expectation compensation of Huang et al., ACM MM 2024), per
head :math:`h` with :math:`S_0 = 0`:

.. math::
    S_t = \mathrm{Concat}_h\big(A_{t,h} B_{t,h}^\top C_{t,h}\big)\, s / t^2, \qquad y_t = S_t - S_{t-1}

so :math:`\sum_{\tau \le t} y_\tau = t\, s\, \bar q_t \bar k_t^\top \bar v_t` (means over the first t
steps): the output's mean is *exactly* the attention of the input rates at every t. It reads 0/1
spikes (Q, K, V, edges in that order, per-sample (N, D)) and keeps integer counters, but multiplies
counts every step (no accumulate-only form) and its output is signed and real, as SSA's is; it
feeds an IF. ``stateful``: the counters, the last S and the step.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence

from spikec.ir.attention import SpikingSelfAttention
from spikec.ir.node import Shape
from spikec.ir.traits import Synaptic


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class CompensatedSpikingSelfAttention(SpikingSelfAttention):
    r"""SSA on accumulated counts: :math:`y_t = S_t - S_{t-1}`, :math:`S_t = \mathrm{Concat}_h(A B^\top C)\,s/t^2`."""

    kind = "CompensatedSpikingSelfAttention"
    traits = frozenset({Synaptic()})
    stateful = True

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if not math.isfinite(self.scale):
            yield f"scale={self.scale} must be finite"

    def infer_shape(self, inputs: Sequence[Shape]) -> Shape:
        return super().infer_shape(inputs)
