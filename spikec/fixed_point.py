"""``spikec run --fixed MODE``: run a graph with a hardware's fixed-point arithmetic, bit for bit.

One entry per mode in ``FIXED_MODES``. ``loihi2`` needs a graph in the Loihi dialect (the kinds of
``spikec.ir.loihi``, which mirror Lava's ``fixed_pt`` process models, plus Input/Output/Flatten),
e.g. an imported netx ``.net``, and integer inputs. A float SNN must first be quantized to the
dialect; that pass (``quantize{target=loihi2}``) does not exist yet, and the error says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from spikec.errors import InputError, VerifyError
from spikec.ir import Flatten, Graph, Level


def _check_loihi2(graph: Graph) -> None:
    allowed = (Level.LOIHI, Level.STRUCTURE)
    for name, node in graph.nodes.items():
        if node.level not in allowed and not isinstance(node, Flatten):
            raise VerifyError(
                f"{graph.describe(name)} is not in the Loihi dialect: --fixed loihi2 runs graphs of Loihi "
                "fixed-point kinds (LoihiDense, LoihiConv, LoihiLIF, LoihiDelta, LoihiSigmaDelta, LoihiSigma), "
                "e.g. an imported netx .net. A float SNN needs the quantize{target=loihi2} pass first, "
                "which spikec does not have yet"
            )


FIXED_MODES: dict[str, Callable[[Graph], None]] = {"loihi2": _check_loihi2}


def check_fixed(graph: Graph, mode: str, inputs: np.ndarray | Mapping[str, np.ndarray]) -> None:
    """Raise unless ``graph`` and ``inputs`` can run in fixed-point ``mode`` (integer inputs only)."""
    try:
        check = FIXED_MODES[mode]
    except KeyError:
        raise InputError(f"--fixed {mode!r}: known fixed-point modes are {sorted(FIXED_MODES)}") from None
    check(graph)
    arrays = inputs.items() if isinstance(inputs, Mapping) else [("input", inputs)]
    for name, a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.array_equal(a, np.round(a)):
            raise InputError(f"input '{name}': --fixed {mode} takes integer inputs (spikes, graded values, biases)")
