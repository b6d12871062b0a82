"""Array backends for the interpreter.

Kernels are written once against this small set of primitives plus ordinary arithmetic
operators, so the numpy reference and the torch backend run the same sequence of operations.
Elementwise float64 arithmetic is then identical on both; only reductions (conv, matmul,
pooling) may differ in summation order, within rounding.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Tensor = Any  # np.ndarray or torch.Tensor
IM2COL_BYTES = 4 << 20  # numpy convolutions gather at most this many bytes of windows at once (cache-sized)
SLICED_POOL_WINDOW = 16  # numpy pools windows of at most this many elements by slices (``_pool_by_slices``)


class Backend(Protocol):
    """The primitives a kernel may call; every shape includes the leading batch axis."""

    name: str

    def asarray(self, x: np.ndarray) -> Tensor: ...
    def to_numpy(self, x: Tensor) -> np.ndarray: ...
    def share(self, x: np.ndarray) -> Tensor:
        """``x`` (already in the backend's dtype) as a tensor, sharing its memory where the device allows."""
        ...

    def zeros(self, shape: Sequence[int]) -> Tensor: ...
    def dense(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor: ...
    def sparse_dense(self, x: Tensor, rows: np.ndarray, cols: np.ndarray, values: Tensor, n_out: int) -> Tensor:
        """``y[..., r] = Σ_k values[k]·x[..., cols[k]]`` over the k with ``rows[k] = r`` (a COO weight matrix)."""
        ...

    def conv(
        self,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
        groups: int,
    ) -> Tensor: ...
    def pool(
        self, mode: str, x: Tensor, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
    ) -> Tensor: ...
    def where(self, cond: Tensor, a: Tensor, b: Tensor) -> Tensor: ...
    def maximum(self, x: Tensor, y: float) -> Tensor: ...
    def clip(self, x: Tensor, lo: float, hi: float) -> Tensor: ...
    def concat(self, xs: Sequence[Tensor], axis: int) -> Tensor: ...
    def stack(self, xs: Sequence[Tensor]) -> Tensor: ...
    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor: ...
    def transpose(self, x: Tensor, perm: Sequence[int]) -> Tensor: ...
    def to_float(self, mask: Tensor) -> Tensor: ...
    # general tensor primitives (spikec.ir.tensor / spikec.ir.spatial kinds)
    def matmul(self, a: Tensor, b: Tensor) -> Tensor: ...
    def int8_matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
        """``a @ b`` of int8 host matrices (m, k) and (k, n), summed exactly in int32 (a host array), or None where
        the backend has no integer product faster than float32 BLAS (numpy's integer matmul is a plain loop)."""
        ...

    def unary(self, op: str, x: Tensor) -> Tensor: ...
    def binary(self, op: str, a: Tensor, b: Tensor) -> Tensor: ...
    def reduce(self, op: str, x: Tensor, axes: Sequence[int], keepdims: bool) -> Tensor: ...
    def take(self, x: Tensor, indices: np.ndarray, axis: int) -> Tensor: ...
    def pad(self, x: Tensor, widths: Sequence[tuple[int, int]], value: float) -> Tensor: ...
    def broadcast_to(self, x: Tensor, shape: Sequence[int]) -> Tensor: ...
    def conv_transpose(
        self, x: Tensor, weight: Tensor, stride: Sequence[int], dilation: Sequence[int], groups: int
    ) -> Tensor: ...
    def window(
        self, mode: str, x: Tensor, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
    ) -> Tensor: ...


class NumpyBackend:
    """The reference backend: plain numpy, float64 by default."""

    name = "numpy"

    def __init__(self, dtype: Any = np.float64) -> None:
        self.dtype = np.dtype(dtype)

    def asarray(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=self.dtype)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def share(self, x: np.ndarray) -> np.ndarray:
        return x

    def zeros(self, shape: Sequence[int]) -> np.ndarray:
        return np.zeros(tuple(shape), dtype=self.dtype)

    def dense(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        if not x.any():  # no spike this step: every product is 0 (a silent layer, or one not reached yet)
            y = np.zeros((*x.shape[:-1], weight.shape[0]), dtype=np.result_type(x, weight))
            return y if bias is None else y + bias
        # One 2-D product over all leading axes: numpy's stacked matmul of a 3-D x (tokens) runs
        # ~10x slower than a single BLAS call on the flattened rows.
        y = (x.reshape(-1, x.shape[-1]) @ weight.T).reshape(*x.shape[:-1], weight.shape[0])
        return y if bias is None else y + bias

    def sparse_dense(
        self, x: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_out: int
    ) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1])
        products = flat[:, cols] * values
        index = rows + n_out * np.arange(flat.shape[0])[:, None]
        y = np.bincount(index.reshape(-1), weights=products.reshape(-1), minlength=flat.shape[0] * n_out)
        return y.astype(self.dtype, copy=False).reshape(*x.shape[:-1], n_out)

    def conv(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        stride: Sequence[int],
        padding: Sequence[int],
        dilation: Sequence[int],
        groups: int,
    ) -> np.ndarray:
        # im2col: gather windows into a (batch·positions, channels·kernel) matrix per group and
        # multiply by the group's (channels·kernel, out) weight matrix (one BLAS call per group).
        nd = weight.ndim - 2
        kernel = weight.shape[2:]
        out_size = [
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, k, s, p, d in zip(x.shape[2:], kernel, stride, padding, dilation, strict=True)
        ]
        per_sample = x.shape[1] * math.prod(kernel) * math.prod(out_size) * x.itemsize  # its im2col columns
        rows = max(1, IM2COL_BYTES // max(1, per_sample))
        if x.shape[0] > rows:  # a large batch (all steps of a multi-step chunk): im2col in parts, same sums
            if any(padding):  # padded once, not part by part
                x = np.pad(x, [(0, 0), (0, 0), *[(p, p) for p in padding]])
                padding = (0,) * nd
            parts = [
                self.conv(x[i : i + rows], weight, bias, stride, padding, dilation, groups)
                for i in range(0, x.shape[0], rows)
            ]
            return np.concatenate(parts)
        if not x.any():  # no spike this step (an SNN's deep layers at its first steps): every product is 0
            y = np.zeros((x.shape[0], weight.shape[0], *out_size), dtype=np.result_type(x, weight))
            return y if bias is None else y + bias.reshape(-1, *([1] * nd))
        if groups == 1:
            return _conv_ungrouped(x, weight, bias, stride, padding, dilation)
        win = _windows(x, kernel, stride, padding, dilation, fill=0.0)  # (B, C, *out, *k)
        b, c = x.shape[:2]
        out = win.shape[2 : 2 + nd]
        o = weight.shape[0]
        cg, og = c // groups, o // groups
        positions = math.prod(out)
        # (B, *out, C, *k): channel and kernel axes last, so each row is one receptive field
        cols = np.moveaxis(win, 1, 1 + nd).reshape(b * positions, groups, cg * math.prod(kernel))
        w = weight.reshape(groups, og, cg * math.prod(kernel))
        y = np.empty((b * positions, groups, og), dtype=np.result_type(x, weight))
        for g in range(groups):
            y[:, g] = cols[:, g] @ w[g].T
        y = np.moveaxis(y.reshape(b, *out, o), -1, 1)
        if bias is not None:
            y = y + bias.reshape(o, *([1] * nd))
        return np.ascontiguousarray(y)

    def pool(
        self, mode: str, x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
    ) -> np.ndarray:
        fill = -np.inf if mode == "max" else 0.0
        if math.prod(kernel) <= SLICED_POOL_WINDOW:
            return _pool_by_slices(mode, x, kernel, stride, padding, fill)
        tiles = _tiles(x, kernel, stride, padding)
        if tiles is not None:  # non-overlapping windows: a reshape, reduced over contiguous axes
            win, axes = tiles
        else:
            win = _windows(x, kernel, stride, padding, (1,) * len(kernel), fill=fill)
            axes = tuple(range(-len(kernel), 0))
        if mode == "max":
            return win.max(axis=axes)
        total = win.sum(axis=axes)
        return total / math.prod(kernel) if mode == "avg" else total

    def where(self, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(cond, a, b)

    def maximum(self, x: np.ndarray, y: float) -> np.ndarray:
        return np.maximum(x, y)

    def clip(self, x: np.ndarray, lo: float, hi: float) -> np.ndarray:
        return np.clip(x, lo, hi)

    def concat(self, xs: Sequence[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(list(xs), axis=axis)

    def stack(self, xs: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack(list(xs))

    def reshape(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return np.reshape(x, tuple(shape))

    def transpose(self, x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
        return np.transpose(x, tuple(perm))

    def to_float(self, mask: np.ndarray) -> np.ndarray:
        return mask.astype(self.dtype)

    # -- general tensor primitives ---------------------------------------------------------------
    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(a, b)

    def int8_matmul(self, a: np.ndarray, b: np.ndarray) -> None:
        return None

    def unary(self, op: str, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.asarray(_NP_UNARY[op](x), dtype=x.dtype)

    def binary(self, op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            y = _NP_BINARY[op](a, b)
        return y.astype(self.dtype) if y.dtype == np.bool_ else y

    def reduce(self, op: str, x: np.ndarray, axes: Sequence[int], keepdims: bool) -> np.ndarray:
        return np.asarray(_NP_REDUCE[op](x, axis=tuple(axes), keepdims=keepdims))

    def take(self, x: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
        return np.take(x, indices, axis=axis)

    def pad(self, x: np.ndarray, widths: Sequence[tuple[int, int]], value: float) -> np.ndarray:
        return np.pad(x, [tuple(w) for w in widths], constant_values=value)

    def broadcast_to(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return np.broadcast_to(x, tuple(shape))

    def conv_transpose(
        self, x: np.ndarray, weight: np.ndarray, stride: Sequence[int], dilation: Sequence[int], groups: int
    ) -> np.ndarray:
        """Full transposed convolution (no padding, no bias): every input position scatters a
        kernel-sized patch; one (batch·positions, C_g) x (C_g, O_g) product per kernel offset and group."""
        b, c, *size = x.shape
        kernel = weight.shape[2:]
        cg, og = c // groups, weight.shape[1]
        full = [s * (n - 1) + d * (k - 1) + 1 for n, k, s, d in zip(size, kernel, stride, dilation, strict=True)]
        y = np.zeros((b, og * groups, *full), dtype=np.result_type(x, weight))
        for g in range(groups):
            xg = np.moveaxis(x[:, g * cg : (g + 1) * cg], 1, -1)  # (B, *size, C_g)
            for offset in itertools.product(*[range(k) for k in kernel]):
                index: tuple[Any, ...] = (slice(g * cg, (g + 1) * cg), slice(None), *offset)
                patch = np.moveaxis(xg @ weight[index], -1, 1)
                where = tuple(
                    slice(o * d, o * d + s * (n - 1) + 1, s)
                    for o, d, s, n in zip(offset, dilation, stride, size, strict=True)
                )
                y[(slice(None), slice(g * og, (g + 1) * og), *where)] += patch
        return y

    def window(
        self, mode: str, x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
    ) -> np.ndarray:
        win = _windows(x, kernel, stride, (0,) * len(kernel), dilation, fill=0.0)
        axes = tuple(range(-len(kernel), 0))
        return win.max(axis=axes) if mode == "max" else win.sum(axis=axes)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _erf(x: np.ndarray) -> np.ndarray:
    # numpy has no erf; math.erf is correctly rounded in double precision.
    return np.vectorize(math.erf, otypes=[np.float64])(x)


_NP_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "erf": _erf,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "sin": np.sin,
    "cos": np.cos,
    "sigmoid": _sigmoid,
    "log1p": np.log1p,
}
_NP_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "pow": np.power,
    "max": np.maximum,
    "min": np.minimum,
    "gt": np.greater,
    "ge": np.greater_equal,
    "lt": np.less,
    "le": np.less_equal,
    "eq": np.equal,
}
_NP_REDUCE: dict[str, Callable[..., np.ndarray]] = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "min": np.min,
    "prod": np.prod,
}


def _pool_by_slices(
    mode: str, x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int], fill: float
) -> np.ndarray:
    """A pool over small windows as one elementwise ``maximum``/``add`` per kernel offset, each over a strided view
    of the (padded) input: numpy reduces small, strided window axes one element at a time, ~10x slower."""
    padded = np.pad(x, [(0, 0), (0, 0), *[(p, p) for p in padding]], constant_values=fill) if any(padding) else x
    out = [(n - k) // s + 1 for n, k, s in zip(padded.shape[2:], kernel, stride, strict=True)]
    combine = np.maximum if mode == "max" else np.add
    result: np.ndarray | None = None
    for offset in itertools.product(*[range(k) for k in kernel]):
        index = tuple(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, stride, out, strict=True))
        view = padded[(slice(None), slice(None), *index)]
        if result is None:
            result = np.array(view)
        else:
            combine(result, view, out=result)
    assert result is not None
    return result / math.prod(kernel) if mode == "avg" else result


def _tiles(
    x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """x (B, C, *spatial) as (B, C, n1, k1, n2, k2, ...) when windows tile it (stride = kernel, no padding)."""
    if tuple(stride) != tuple(kernel) or any(padding):
        return None
    counts = [n // k for n, k in zip(x.shape[2:], kernel, strict=True)]
    cropped = x[(slice(None), slice(None), *[slice(0, c * k) for c, k in zip(counts, kernel, strict=True)])]
    shape = [d for c, k in zip(counts, kernel, strict=True) for d in (c, k)]
    return cropped.reshape(*x.shape[:2], *shape), tuple(3 + 2 * i for i in range(len(kernel)))


def _conv_ungrouped(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> np.ndarray:
    """An ungrouped convolution as one product per sample, ``y[b] = W (O, C·k) @ cols[b] (C·k, positions)``,
    written straight into the (B, O, *out) result. A 1×1 kernel without padding reads ``x`` itself as ``cols``
    (strided, no window copy): most of a bottleneck ResNet's convolutions."""
    nd = weight.ndim - 2
    b, o = x.shape[0], weight.shape[0]
    if all(k == 1 for k in weight.shape[2:]) and not any(padding):
        picked = x[(slice(None), slice(None), *[slice(None, None, s) for s in stride])]
        out = picked.shape[2:]
        cols = picked.reshape(b, x.shape[1], -1)
    else:
        win = _windows(x, weight.shape[2:], stride, padding, dilation, fill=0.0)  # (B, C, *out, *k)
        out = win.shape[2 : 2 + nd]
        # (B, C, *k, *out): each column one receptive field, in the weight's (C, *k) order
        spatial, kernel_axes = tuple(range(2, 2 + nd)), tuple(range(2 + nd, 2 + 2 * nd))
        cols = np.moveaxis(win, spatial, kernel_axes).reshape(b, -1, math.prod(out))
    y = np.matmul(weight.reshape(o, -1), cols).reshape(b, o, *out)
    if bias is None:
        return y
    shaped = bias.reshape(o, *([1] * nd))
    if shaped.dtype == y.dtype:
        y += shaped  # in place: the product is a new array
        return y
    return y + shaped


def _windows(
    x: np.ndarray,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    *,
    fill: float,
) -> np.ndarray:
    """View of x (B, C, *spatial) as (B, C, *out, *kernel) sliding windows."""
    nd = len(kernel)
    pad = [(0, 0), (0, 0), *[(p, p) for p in padding]]
    xp = np.pad(x, pad, constant_values=fill) if any(padding) else x
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    # numpy's stubs type ``axis`` as a single index; a tuple of axes works at run time.
    win = sliding_window_view(xp, extent, axis=tuple(range(2, 2 + nd)))  # type: ignore[call-overload]
    index = (
        slice(None),
        slice(None),
        *[slice(None, None, s) for s in stride],
        *[slice(None, None, d) for d in dilation],
    )
    return win[index]


def make_backend(name: str, *, dtype: str = "float64", device: str | None = None) -> Backend:
    """``numpy`` (reference) or ``torch`` (CPU, or ``device='cuda'`` when present)."""
    if name == "numpy":
        return NumpyBackend(np.dtype(dtype))
    if name == "torch":
        from spikec.interp.torch_backend import TorchBackend

        return TorchBackend(dtype=dtype, device=device)
    from spikec.errors import SpikecError

    raise SpikecError(f"unknown interpreter backend {name!r}: use 'numpy' or 'torch'")
