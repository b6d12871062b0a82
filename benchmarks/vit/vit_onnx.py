"""Write ViT ONNX models of any size directly with ``onnx.helper``, with random weights.

The graph is the one ``torch.onnx.export(dynamo=True)`` writes for ``benchmarks/vit/model.py``'s
``ViT`` at batch 1 (opset 20): Conv patch embedding → Reshape → Transpose → Concat(class token) →
Add(position) → per block LayerNormalization, MatMul+Add for q/k/v, Reshape/Transpose into heads,
MatMul, Mul(1/√d_h), Softmax, MatMul, Transpose/Reshape, MatMul+Add, Add (residual),
LayerNormalization, MatMul+Add, Gelu, MatMul+Add, Add → LayerNormalization → Gather(class token) →
Gemm. Building the proto directly takes seconds where exporting a 170 M-parameter module through
torch.export takes minutes; the compile-time benchmark measures spikec, not the exporter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 20


class _Builder:
    def __init__(self, rng: np.random.Generator) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = rng
        self.count = 0

    def weight(self, name: str, shape: tuple[int, ...], std: float = 0.02) -> str:
        arr = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], name: str, **attrs: object) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=f"n_{name}", **attrs))
        return name

    def linear(self, x: str, prefix: str, d_in: int, d_out: int) -> str:
        w = self.weight(f"{prefix}.weight_t", (d_in, d_out))
        b = self.weight(f"{prefix}.bias", (d_out,))
        return self.op("Add", [self.op("MatMul", [x, w], f"{prefix}_mm"), b], f"{prefix}_out")

    def layer_norm(self, x: str, prefix: str, dim: int) -> str:
        g = self.const(f"{prefix}.weight", np.ones(dim, np.float32))
        b = self.const(f"{prefix}.bias", np.zeros(dim, np.float32))
        return self.op("LayerNormalization", [x, g, b], f"{prefix}_out", axis=-1, epsilon=1e-6)


def vit_onnx(
    *,
    depth: int,
    dim: int = 768,
    heads: int = 12,
    mlp: int = 3072,
    patch: int = 16,
    image: int = 224,
    channels: int = 3,
    classes: int = 1000,
    seed: int = 0,
) -> onnx.ModelProto:
    """A ViT with ``depth`` pre-LN blocks (ViT-B/16 by default) and N(0, 0.02²) random weights."""
    b = _Builder(np.random.default_rng(seed))
    grid = image // patch
    seq = grid * grid + 1
    hd = dim // heads
    shape_tokens = b.const("shape_tokens", np.array([1, dim, grid * grid], np.int64))
    shape_heads = b.const("shape_heads", np.array([1, seq, heads, hd], np.int64))
    shape_merge = b.const("shape_merge", np.array([1, seq, dim], np.int64))
    scale = b.const("attn_scale", np.array(1.0 / np.sqrt(hd), np.float32))

    x = b.op("Conv", ["image", b.weight("embed.weight", (dim, channels, patch, patch)), b.weight("embed.bias", (dim,))],
             "embed", kernel_shape=[patch, patch], strides=[patch, patch])  # fmt: skip
    x = b.op("Transpose", [b.op("Reshape", [x, shape_tokens], "tokens")], "tokens_t", perm=[0, 2, 1])
    x = b.op("Concat", [b.weight("cls", (1, 1, dim)), x], "with_cls", axis=1)
    x = b.op("Add", [x, b.weight("pos", (1, seq, dim))], "x0")
    for i in range(depth):
        p = f"blocks.{i}"
        h = b.layer_norm(x, f"{p}.norm1", dim)
        q, k, v = (b.linear(h, f"{p}.attn.{n}", dim, dim) for n in "qkv")
        q = b.op("Transpose", [b.op("Reshape", [q, shape_heads], f"{p}_qh")], f"{p}_qt", perm=[0, 2, 1, 3])
        k = b.op("Transpose", [b.op("Reshape", [k, shape_heads], f"{p}_kh")], f"{p}_kt", perm=[0, 2, 3, 1])
        v = b.op("Transpose", [b.op("Reshape", [v, shape_heads], f"{p}_vh")], f"{p}_vt", perm=[0, 2, 1, 3])
        s = b.op("Mul", [b.op("MatMul", [q, k], f"{p}_qk"), scale], f"{p}_scores")
        y = b.op("MatMul", [b.op("Softmax", [s], f"{p}_probs", axis=-1), v], f"{p}_pv")
        y = b.op("Reshape", [b.op("Transpose", [y], f"{p}_yt", perm=[0, 2, 1, 3]), shape_merge], f"{p}_y")
        x = b.op("Add", [x, b.linear(y, f"{p}.attn.out", dim, dim)], f"{p}_res1")
        h = b.op("Gelu", [b.linear(b.layer_norm(x, f"{p}.norm2", dim), f"{p}.fc1", dim, mlp)], f"{p}_gelu")
        x = b.op("Add", [x, b.linear(h, f"{p}.fc2", mlp, dim)], f"{p}_res2")
    x = b.layer_norm(x, "norm", dim)
    x = b.op("Gather", [x, b.const("cls_index", np.array(0, np.int64))], "cls_token", axis=1)
    b.op("Gemm", [x, b.weight("head.weight", (classes, dim)), b.weight("head.bias", (classes,))], "logits", transB=1)
    graph = helper.make_graph(
        b.nodes,
        f"vit_d{dim}_L{depth}",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, channels, image, image])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes])],
        b.inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="spikec-bench")


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the float initializers (the weights) as stored."""
    return sum(len(t.raw_data) for t in model.graph.initializer)


def write_vit_onnx(path: Path, depth: int, **kwargs: int) -> int:
    """Build and save one model; returns its weight bytes."""
    model = vit_onnx(depth=depth, **kwargs)
    onnx.save(model, str(path))
    return weight_bytes(model)
