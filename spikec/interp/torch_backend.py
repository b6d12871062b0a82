"""The torch backend: batched, on CPU or CUDA, same kernels as the numpy reference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from spikec.errors import SpikecError

try:
    import torch
    import torch.nn.functional as F
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise SpikecError("the torch backend needs PyTorch: pip install 'spikec[torch]' (CPU: torch==2.13.0)") from err

_CONV = {1: F.conv1d, 2: F.conv2d}


class TorchBackend:
    """Torch tensors on ``device`` (default: CUDA when available, else CPU)."""

    name = "torch"

    def __init__(self, *, dtype: str = "float64", device: str | None = None) -> None:
        self.dtype = getattr(torch, dtype)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def asarray(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.array(x), dtype=self.dtype, device=self.device)  # copy: may be read-only

    def to_numpy(self, x: torch.Tensor) -> np.ndarray:
        return np.asarray(x.detach().cpu().numpy())

    def zeros(self, shape: Sequence[int]) -> torch.Tensor:
        return torch.zeros(tuple(shape), dtype=self.dtype, device=self.device)

    def dense(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        y = x @ weight.T
        return y if bias is None else y + bias

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


def _pool2d(mode: str, x: torch.Tensor, k: tuple[int, ...], s: tuple[int, ...]) -> torch.Tensor:
    """Unpadded 2-d pooling. Sums are exact window sums (divisor 1), as in the numpy reference:
    avg × area would round, so a SumPool of spikes could land a hair off an integer threshold.
    """
    if mode == "max":
        return F.max_pool2d(x, k, s)
    total = F.avg_pool2d(x, k, s, divisor_override=1)
    return total if mode == "sum" else total / math.prod(k)
