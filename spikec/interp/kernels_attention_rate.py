"""Kernel of ``CompensatedSpikingSelfAttention`` (spikec/ir/attention_rate.py) on the ``Backend`` primitives."""

from __future__ import annotations

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State, kernel
from spikec.interp.kernels_attention import merge_heads, split_heads
from spikec.ir.attention_rate import CompensatedSpikingSelfAttention


@kernel(CompensatedSpikingSelfAttention)
def _compensated_attention(
    node: CompensatedSpikingSelfAttention, xs: list[Tensor], state: State, ctx: KernelContext
) -> tuple[Tensor, State]:
    """Counts A, B, C += q, k, v; S_t = Concat_h(A Bᵀ C)·s/t²; y = S_t − S_{t−1}."""
    step = int(state.get("step", 0)) + 1
    counts = [x if f"n{i}" not in state else state[f"n{i}"] + x for i, x in enumerate(xs)]
    a, b, c = (split_heads(ctx, n, node.heads) for n in counts)
    scores = ctx.xp.matmul(a, ctx.xp.transpose(b, (0, 1, 3, 2)))  # (B, h, N, N) products of counts
    total = merge_heads(ctx, ctx.xp.matmul(scores, c)) * (node.scale / (step * step))
    y = total if "s" not in state else total - state["s"]
    new: State = {"step": step, "s": total, **{f"n{i}": n for i, n in enumerate(counts)}}
    return y, new
