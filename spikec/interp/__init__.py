"""The reference interpreter (numpy) and its torch backend: the numerical oracle of spikec."""

from spikec.interp import (
    kernels_attention,  # noqa: F401 - registers the kernels of the attention kinds
    kernels_attention_rate,  # noqa: F401 - registers CompensatedSpikingSelfAttention's kernel
    kernels_exact,  # noqa: F401 - registers the kernels of the exact-conversion kinds
    kernels_tensor,  # noqa: F401 - registers the kernels of the general tensor kinds
)
from spikec.interp.backend import Backend, NumpyBackend, make_backend
from spikec.interp.interpreter import Interpreter, RunResult, evaluate, prepare_inputs, run
from spikec.interp.kernels import KERNELS, kernel

__all__ = [
    "KERNELS",
    "Backend",
    "Interpreter",
    "NumpyBackend",
    "RunResult",
    "evaluate",
    "kernel",
    "make_backend",
    "prepare_inputs",
    "run",
]
