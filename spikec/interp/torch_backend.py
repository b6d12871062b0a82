"""The torch backend: batched, on CPU or CUDA, same kernels as the numpy reference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from spikec.errors import SpikecError
from spikec.interp.backend import NumpyBackend

try:
    import torch
    import torch.nn.functional as F
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise SpikecError("the torch backend needs PyTorch: pip install 'spikec[torch]' (CPU: torch==2.13.0)") from err

_CONV = {1: F.conv1d, 2: F.conv2d}
_HOST = NumpyBackend()
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_UNARY: dict[str, Any] = {
    "exp": torch.exp,
    "log": torch.log,
    "tanh": torch.tanh,
    "erf": torch.erf,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "sign": torch.sign,
    "floor": torch.floor,
    "ceil": torch.ceil,
    "round": torch.round,
    "sin": torch.sin,
    "cos": torch.cos,
    "sigmoid": torch.sigmoid,
    "log1p": torch.log1p,
}
_BINARY: dict[str, Any] = {
    "pow": torch.pow,
    "max": torch.maximum,
    "min": torch.minimum,
    "gt": torch.gt,
    "ge": torch.ge,
    "lt": torch.lt,
    "le": torch.le,
    "eq": torch.eq,
}


class TorchBackend:
    """Torch tensors on ``device`` (default: CUDA when available, else CPU)."""

    name = "torch"

    def __init__(self, *, dtype: str = "float64", device: str | None = None) -> None:
        self.dtype = getattr(torch, dtype)
        self._numpy_dtype = _numpy_dtype(self.dtype)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def asarray(self, x: np.ndarray) -> torch.Tensor:
        if self._numpy_dtype is None:  # bfloat16: numpy has no such dtype
            return torch.as_tensor(np.array(x), dtype=self.dtype, device=self.device)
        # shared where it already has the dtype, as numpy's backend shares it (no kernel writes into its input);
        # copied where it must convert, or is read-only (torch has no read-only tensor)
        host = np.ascontiguousarray(x, dtype=self._numpy_dtype)
        return torch.from_numpy(host if host.flags.writeable else host.copy()).to(self.device)

    def to_numpy(self, x: torch.Tensor) -> np.ndarray:
        return np.asarray(x.detach().cpu().numpy())

    def share(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(self.device)

    def zeros(self, shape: Sequence[int]) -> torch.Tensor:
        return torch.zeros(tuple(shape), dtype=self.dtype, device=self.device)

    def dense(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        y = x @ weight.T
        return y if bias is None else y + bias

    def sparse_dense(
        self, x: torch.Tensor, rows: np.ndarray, cols: np.ndarray, values: torch.Tensor, n_out: int
    ) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        products = flat[:, torch.as_tensor(cols, device=flat.device)] * values
        y = torch.zeros(flat.shape[0], n_out, dtype=flat.dtype, device=flat.device)
        y.index_add_(1, torch.as_tensor(rows, device=flat.device), products)
        return y.reshape(*x.shape[:-1], n_out)

    def conv(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
        groups: int,
    ) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float64:
            # torch has no oneDNN kernel for float64: its CPU convolution took 4-5x numpy's im2col (65 vs 14 ms on
            # 256 frames of mnist-conv's second layer), so it runs numpy's on the same memory
            b = None if bias is None else bias.numpy()
            y = _HOST.conv(x.numpy(), weight.numpy(), b, stride, padding, dilation, groups)
            return torch.from_numpy(np.ascontiguousarray(y))
        conv: Any = _CONV[weight.ndim - 2]
        return conv(x, weight, bias, tuple(stride), tuple(padding), tuple(dilation), groups)

    def pool(
        self, mode: str, x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
    ) -> torch.Tensor:
        k, s, p = tuple(kernel), tuple(stride), tuple(padding)
        if any(p):
            # Pad explicitly: torch caps implicit padding at half the kernel, and max needs -inf.
            pads: list[int] = []
            for width in reversed(p):
                pads += [width, width]
            x = F.pad(x, pads, value=-math.inf if mode == "max" else 0.0)
        if len(k) == 1:  # pool 1-d as 2-d over a unit row (avg_pool1d has no divisor_override)
            return _pool2d(mode, x.unsqueeze(-2), (1, *k), (1, *s)).squeeze(-2)
        return _pool2d(mode, x, k, s)

    def where(self, cond: torch.Tensor, a: Any, b: Any) -> torch.Tensor:
        return torch.where(cond, torch.as_tensor(a, dtype=self.dtype, device=self.device), b)

    def maximum(self, x: torch.Tensor, y: float) -> torch.Tensor:
        return torch.clamp(x, min=y)

    def clip(self, x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
        return torch.clamp(x, min=lo, max=hi)

    def concat(self, xs: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
        return torch.cat(list(xs), dim=axis)

    def stack(self, xs: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(xs))

    def reshape(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return torch.reshape(x, tuple(shape))

    def transpose(self, x: torch.Tensor, perm: Sequence[int]) -> torch.Tensor:
        return x.permute(*perm)

    def to_float(self, mask: torch.Tensor) -> torch.Tensor:
        return mask.to(self.dtype)

    # -- general tensor primitives ---------------------------------------------------------------
    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)

    def int8_matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """torch's integer GEMM on host arrays (``torch._int_mm``: int8 × int8 → int32, VNNI on x86 CPUs). On this
        2-core CPU, (32000 × 1024) × (1024 × 1024): 117 ms against float32's 428 ms. None on CUDA for now."""
        if self.device.type != "cpu" or not hasattr(torch, "_int_mm"):
            return None  # CUDA's kernel wants m > 16 and k, n multiples of 8: not yet measured on a device
        return np.asarray(torch._int_mm(torch.from_numpy(a), torch.from_numpy(b)).numpy())

    def unary(self, op: str, x: torch.Tensor) -> torch.Tensor:
        result: torch.Tensor = _UNARY[op](x)
        return result

    def binary(self, op: str, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = _BINARY[op](a, b)
        return y.to(self.dtype) if y.dtype == torch.bool else y

    def reduce(self, op: str, x: torch.Tensor, axes: Sequence[int], keepdims: bool) -> torch.Tensor:
        dims = tuple(axes)
        if op == "sum":
            return torch.sum(x, dim=dims, keepdim=keepdims)
        if op == "mean":
            return torch.mean(x, dim=dims, keepdim=keepdims)
        if op == "max":
            return torch.amax(x, dim=dims, keepdim=keepdims)
        if op == "min":
            return torch.amin(x, dim=dims, keepdim=keepdims)
        for d in sorted(dims, reverse=True):  # prod reduces one axis at a time
            x = torch.prod(x, dim=d, keepdim=keepdims)
        return x

    def take(self, x: torch.Tensor, indices: np.ndarray, axis: int) -> torch.Tensor:
        index = torch.as_tensor(np.array(indices, np.int64).reshape(-1), device=self.device)
        picked = torch.index_select(x, axis, index)
        return picked.reshape(*x.shape[:axis], *np.shape(indices), *x.shape[axis + 1 :])

    def pad(self, x: torch.Tensor, widths: Sequence[tuple[int, int]], value: float) -> torch.Tensor:
        pads: list[int] = []
        for before, after in reversed(list(widths)):
            pads += [int(before), int(after)]
        return F.pad(x, pads, value=value)

    def broadcast_to(self, x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        return x.expand(*shape)

    def conv_transpose(
        self, x: torch.Tensor, weight: torch.Tensor, stride: Sequence[int], dilation: Sequence[int], groups: int
    ) -> torch.Tensor:
        conv: Any = _CONV_TRANSPOSE[weight.ndim - 2]
        return conv(x, weight, None, tuple(stride), 0, 0, groups, tuple(dilation))

    def window(
        self, mode: str, x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
    ) -> torch.Tensor:
        nd = len(kernel)
        for i, (k, s, d) in enumerate(zip(kernel, stride, dilation, strict=True)):
            x = x.unfold(2 + i, d * (k - 1) + 1, s)  # appends the window axis
        index: tuple[Any, ...] = (Ellipsis, *[slice(None, None, d) for d in dilation])
        x = x[index]
        dims = tuple(range(-nd, 0))
        return torch.amax(x, dim=dims) if mode == "max" else torch.sum(x, dim=dims)


def _numpy_dtype(dtype: torch.dtype) -> np.dtype | None:
    try:
        return torch.empty((), dtype=dtype).numpy().dtype
    except TypeError:
        return None


def _pool2d(mode: str, x: torch.Tensor, k: tuple[int, ...], s: tuple[int, ...]) -> torch.Tensor:
    """Unpadded 2-d pooling. Sums are exact window sums (divisor 1), as in the numpy reference:
    avg × area would round, so a SumPool of spikes could land a hair off an integer threshold.
    """
    if mode == "max":
        return F.max_pool2d(x, k, s)
    total = F.avg_pool2d(x, k, s, divisor_override=1)
    return total if mode == "sum" else total / math.prod(k)
