"""ONNX ``Attention`` (opset 23/24), decomposed into SIR kinds as the operator's function body:

    Y = softmax(softcap(Q·√s @ (K·√s)ᵀ) + bias) @ V

with 3-d inputs split into heads, ``past_key``/``past_value`` concatenated in front of K/V,
grouped-query heads repeated (Gather), and the additive ``bias`` built from ``attn_mask``
(boolean → 0/−inf, shorter masks padded with −inf), ``is_causal`` (bottom-right aligned) and
``nonpad_kv_seqlen``. A row whose bias is −inf everywhere gives zeros, as the reference does.
"""

from __future__ import annotations

import math

import numpy as np
import onnx

from spikec.frontends.onnx.handlers_math import binary, operands
from spikec.frontends.onnx.handlers_nn import matmul
from spikec.frontends.onnx.handlers_shape import reshape_full, transpose
from spikec.frontends.onnx.lowering import Lowering
from spikec.frontends.onnx.registry import Act, Const, OnnxNode, Outputs, Value, handler
from spikec.ir import Concat, Gather, Pad, Reduce, Scale, Softmax, Unary, Where


def _shape(ctx: Lowering, v: Value) -> tuple[int, ...]:
    return tuple(v.value.shape) if isinstance(v, Const) else ctx.full_shape(v)


def _transpose(ctx: Lowering, v: Value, perm: list[int]) -> Value:
    return Const(np.transpose(ctx.static(v, "operand"), perm)) if isinstance(v, Const) else transpose(ctx, v, perm)


def _heads(ctx: Lowering, v: Value, heads: int) -> Value:
    """(B, S, H·D) -> (B, H, S, D)."""
    b, s, hidden = _shape(ctx, v)
    if hidden % heads:
        raise ctx.fail(f"hidden size {hidden} does not split into {heads} heads")
    if isinstance(v, Const):
        return Const(ctx.static(v, "operand").reshape(b, s, heads, hidden // heads).transpose(0, 2, 1, 3))
    return transpose(ctx, reshape_full(ctx, v, [0, s, heads, hidden // heads]), [0, 2, 1, 3])


def _arith(ctx: Lowering, op: str, a: Value, b: Value) -> Value:
    if isinstance(a, Const) and isinstance(b, Const):
        x, y = ctx.static(a, "operand"), ctx.static(b, "operand")
        return Const({"add": np.add, "mul": np.multiply}[op](x, y))
    return binary(ctx, op, a, b)


def _concat(ctx: Lowering, a: Value, b: Value, axis: int) -> Value:
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(np.concatenate([ctx.static(a, "past"), ctx.static(b, "operand")], axis=axis))
    acts = operands(ctx, [a, b])
    return ctx.add(Concat(axis=ctx.axis(acts[0], axis)), acts)


def _repeat_heads(ctx: Lowering, v: Value, reps: int) -> Value:
    """Interleave-repeat each K/V head ``reps`` times (h0, h0, h1, h1, ...), on axis 1."""
    heads = _shape(ctx, v)[1]
    index = np.repeat(np.arange(heads), reps)
    if isinstance(v, Const):
        return Const(np.take(ctx.static(v, "operand"), index, axis=1))
    return ctx.add(Gather(indices=index, axis=ctx.axis(v, 1)), [v])


def _bias(n: OnnxNode, ctx: Lowering, q_len: int, kv_len: int, past_len: int) -> Value | None:
    """The additive attention bias, or None when there is none."""
    mask, nonpad = n.input(3), n.input(6)
    causal = bool(n.attr("is_causal", 0))
    fixed: np.ndarray | None = None  # the constant part
    live: Act | None = None
    if isinstance(mask, Const):
        m = ctx.static(mask, "attn_mask")
        if m.dtype == np.bool_:
            m = np.where(m, 0.0, -np.inf)
        width = kv_len - m.shape[-1]
        fixed = np.pad(m.astype(np.float64), [(0, 0)] * (m.ndim - 1) + [(0, width)], constant_values=-np.inf)
    elif isinstance(mask, Act):
        live = mask
        if ctx.types.get(n.proto.input[3]) == onnx.TensorProto.BOOL:  # True: attend (0), False: masked (−inf)
            live = ctx.add(Where(), operands(ctx, [mask, Const(np.zeros(())), Const(np.asarray(-np.inf))]))
        width = kv_len - mask.shape[-1]
        if width > 0:
            pads = [0] * (2 * len(mask.shape))
            pads[len(mask.shape) - 1 + len(mask.shape)] = width
            live = ctx.add(Pad(pads=tuple(pads), value=-math.inf), [mask], suffix="mask_pad")
    i = np.arange(q_len)[:, None]
    j = np.arange(kv_len)[None, :]
    if isinstance(nonpad, Act):
        raise ctx.fail("nonpad_kv_seqlen (input 6) must be a constant")
    offsets = None if nonpad is None else np.asarray(ctx.static(nonpad, "nonpad_kv_seqlen"), np.int64).reshape(-1)
    if causal:
        if offsets is not None and past_len == 0:
            allowed = j[None] <= i[None] + (offsets - q_len)[:, None, None]
            term = np.where(allowed, 0.0, -np.inf)[:, None]  # (B, 1, q, kv)
        else:
            term = np.where(j <= i + past_len, 0.0, -np.inf)
        fixed = term if fixed is None else fixed + term
    if offsets is not None:
        term = np.where(j[None] < offsets[:, None], 0.0, -np.inf).reshape(-1, 1, 1, kv_len)
        fixed = term if fixed is None else fixed + term
    if live is None:
        return None if fixed is None else Const(fixed)
    return live if fixed is None else binary(ctx, "add", live, Const(fixed))


@handler("Attention")
def _attention(n: OnnxNode, ctx: Lowering) -> Outputs:
    q, k, v = n.input(0), n.input(1), n.input(2)
    assert q is not None and k is not None and v is not None
    past_k, past_v = n.input(4), n.input(5)
    if (past_k is None) != (past_v is None):
        raise ctx.fail("past_key and past_value must come together")
    if n.attr("left_window_size", -1) != -1 or n.attr("right_window_size", -1) != -1:
        raise ctx.fail("sliding-window attention is not supported")
    three_d = len(_shape(ctx, q)) == 3
    if three_d:
        q = _heads(ctx, q, int(n.attr("q_num_heads")))
        k = _heads(ctx, k, int(n.attr("kv_num_heads")))
        v = _heads(ctx, v, int(n.attr("kv_num_heads")))
    past_len = 0
    if past_k is not None and past_v is not None:
        past_len = _shape(ctx, past_k)[2]
        k, v = _concat(ctx, past_k, k, 2), _concat(ctx, past_v, v, 2)
    present_k, present_v = k, v
    q_heads, kv_heads = _shape(ctx, q)[1], _shape(ctx, k)[1]
    if q_heads != kv_heads:
        if q_heads % kv_heads:
            raise ctx.fail(f"{q_heads} query heads do not group into {kv_heads} key/value heads")
        k, v = _repeat_heads(ctx, k, q_heads // kv_heads), _repeat_heads(ctx, v, q_heads // kv_heads)
    scale = n.attr("scale")
    root = math.sqrt(1.0 / math.sqrt(_shape(ctx, q)[3]) if scale is None else float(scale))
    qs = _arith(ctx, "mul", q, Const(np.asarray(root)))
    ks = _transpose(ctx, _arith(ctx, "mul", k, Const(np.asarray(root))), [0, 1, 3, 2])
    if isinstance(qs, Const) and isinstance(ks, Const):
        raise ctx.fail("Q and K are both constants")
    qk = matmul(ctx, qs, ks)
    softcap = float(n.attr("softcap", 0.0))
    if softcap > 0:
        qk = ctx.chain(qk, Scale(scale=np.asarray(1.0 / softcap)), Unary(op="tanh"), Scale(scale=np.asarray(softcap)))
    q_len, kv_len = _shape(ctx, q)[2], _shape(ctx, k)[2]
    bias = _bias(n, ctx, q_len, kv_len, past_len)
    scores = qk if bias is None else binary(ctx, "add", qk, bias)
    probs = ctx.add(Softmax(axis=-1), [scores])
    if isinstance(bias, Const) and np.any(np.isneginf(bias.value.max(axis=-1, keepdims=True))):
        masked = np.isneginf(bias.value.max(axis=-1, keepdims=True)).astype(np.float64)
        probs = ctx.add(Where(), operands(ctx, [Const(masked), Const(np.zeros(())), probs]))
    elif isinstance(bias, Act):
        peak = ctx.add(Reduce(op="max", axes=(-1,)), [bias], suffix="bias_max")
        masked_act = binary(ctx, "eq", peak, Const(np.asarray(-np.inf)))
        probs = ctx.add(Where(), operands(ctx, [masked_act, Const(np.zeros(())), probs]))
    y: Value = matmul(ctx, probs, v)
    if three_d:
        heads_out = transpose(ctx, ctx.act(y), [0, 2, 1, 3])
        *_, s, h, d = ctx.full_shape(heads_out)
        y = reshape_full(ctx, heads_out, [0, s, h * d])
    mode = int(n.attr("qk_matmul_output_mode", 0))
    qk_out = {0: qk, 1: qk, 2: scores, 3: probs}.get(mode)
    if qk_out is None:
        raise ctx.fail(f"qk_matmul_output_mode={mode} is not known")
    return [y, present_k, present_v, qk_out]
