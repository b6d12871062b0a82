"""The benchmark ViT: a small Vision Transformer for MNIST, in plain ``nn`` modules.

Patch embedding (a stride-``p`` convolution), a learned class token and position embedding,
``depth`` pre-LN blocks, a final LayerNorm and a linear head on the class token:

    x₀ = [cls; conv_p(img)ᵀ] + pos                      (S = 1 + (H/p)(W/p) tokens of width d)
    x ← x + Wₒ · concat_h softmax(q_h k_hᵀ / √d_h) v_h     with q, k, v = W_{q,k,v} LN₁(x)
    x ← x + W₂ GELU(W₁ LN₂(x))
    logits = W_head LN(x)[0]

Attention is written out (separate q/k/v ``Linear``, ``softmax``) rather than with
``nn.MultiheadAttention``, so the ONNX export is plain MatMul/Softmax that the conversion passes
see one op at a time. No spikec dependency: the compile-time benchmark builds its d=768 models
from the same class.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Attention(nn.Module):
    """Multi-head self-attention: ``softmax(q kᵀ / √d_h) v`` per head, then an output projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} does not split into {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, S, d) -> (B, h, S, d/h)
            return t.reshape(b, s, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(d // h))
        y = torch.softmax(scores, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, s, d))


class Block(nn.Module):
    """Pre-LN transformer block: ``x + attn(LN(x))`` then ``x + MLP(LN(x))`` with a GELU MLP."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class ViT(nn.Module):
    """Vision Transformer on ``(C, H, W)`` images; defaults are the MNIST benchmark model."""

    def __init__(
        self,
        *,
        image: int = 28,
        channels: int = 1,
        patch: int = 4,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp: int = 128,
        classes: int = 10,
    ) -> None:
        super().__init__()
        if image % patch:
            raise ValueError(f"image size {image} is not a multiple of the patch size {patch}")
        tokens = (image // patch) ** 2 + 1
        self.embed = nn.Conv2d(channels, dim, kernel_size=patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.embed(img).flatten(2).transpose(1, 2)  # (B, N, d)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def mnist_vit() -> ViT:
    """The benchmark configuration (also the ``--arch benchmarks/vit/model.py:mnist_vit`` builder)."""
    return ViT()
