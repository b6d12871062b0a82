"""Kernels of the spiking-attention kinds (spikec/ir/attention.py), on the ``Backend`` primitives.

Runtime values are (batch, N, D). Heads are split as (batch, h, N, d_h) with a reshape and a
transpose, multiplied with ``matmul``, and merged back; on 0/1 spikes every product is an exact
integer count, so numpy and torch agree exactly on counts and to rounding after the scale.
"""

from __future__ import annotations

import numpy as np

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.ir import attention

Step = tuple[Tensor, State]


def split_heads(ctx: KernelContext, x: Tensor, heads: int) -> Tensor:
    """(B, N, D) -> (B, h, N, D/h)."""
    b, n, d = x.shape
    return ctx.xp.transpose(ctx.xp.reshape(x, (b, n, heads, d // heads)), (0, 2, 1, 3))


def merge_heads(ctx: KernelContext, x: Tensor) -> Tensor:
    """(B, h, N, d_h) -> (B, N, h·d_h)."""
    b, h, n, dh = x.shape
    return ctx.xp.reshape(ctx.xp.transpose(x, (0, 2, 1, 3)), (b, n, h * dh))


def _keys_transposed(ctx: KernelContext, k: Tensor) -> Tensor:
    return ctx.xp.transpose(k, (0, 1, 3, 2))


@kernel(attention.SpikingSelfAttention)
def _spiking_self_attention(
    node: attention.SpikingSelfAttention, xs: list[Tensor], state: State, ctx: KernelContext
) -> Step:
    """Y = Concat_h(Q_h K_hᵀ V_h) · s, scores first (as Spikformer computes it)."""
    q, k, v = (split_heads(ctx, x, node.heads) for x in xs)
    scores = ctx.xp.matmul(q, _keys_transposed(ctx, k))  # (B, h, N, N) spike counts
    return merge_heads(ctx, ctx.xp.matmul(scores, v)) * node.scale, state


@kernel(attention.HadamardColumnSum)
def _hadamard_column_sum(node: attention.HadamardColumnSum, xs: list[Tensor], state: State, ctx: KernelContext) -> Step:
    """y[0, d] = Σ_n A[n, d] B[n, d]."""
    a, b = xs
    return ctx.xp.reduce("sum", a * b, (1,), True), state


def uniforms(seed: int, step: int, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The step's U[0, 1) draws, in order, from numpy's generator seeded by (seed, step)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, step]))
    return [rng.random(shape) for shape in shapes]


@kernel(attention.StochasticSpikingAttention)
def _stochastic_attention(
    node: attention.StochasticSpikingAttention, xs: list[Tensor], state: State, ctx: KernelContext
) -> Step:
    """Bernoulli draws of Q, K, V; AND products; counts re-encoded as Bernoulli bits (binary out)."""
    step = int(state.get("step", 0))
    b, n, d = xs[0].shape
    h = node.heads
    u_q, u_k, u_v, u_s, u_y = (
        ctx.xp.asarray(u) for u in uniforms(node.seed, step, [(b, n, d)] * 3 + [(b, h, n, n), (b, n, d)])
    )
    q, k, v = (ctx.xp.to_float(u < x) for u, x in zip((u_q, u_k, u_v), xs, strict=True))
    q, k, v = (split_heads(ctx, x, h) for x in (q, k, v))
    overlap = ctx.xp.matmul(q, _keys_transposed(ctx, k))  # Σ_c q̂_ic ∧ k̂_jc, (B, h, N, N)
    scores = ctx.xp.to_float(u_s < overlap / float(d // h))
    mixed = merge_heads(ctx, ctx.xp.matmul(scores, v))  # Σ_j s_ij ∧ v̂_jc, (B, N, D)
    state["step"] = step + 1
    return ctx.xp.to_float(u_y < mixed / float(n)), state
