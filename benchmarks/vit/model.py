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


# -- the binary-spike variant ---------------------------------------------------------------------
class LinearBN(nn.Module):
    """``BN(W x + b)`` over the channels of a (B, S, d) token tensor; ``fold()`` merges BN into W, b.

    In eval mode BN is the affine map ``γ (y - μ) / √(σ² + ε) + β``, so with ``a = γ / √(σ² + ε)``:
    ``W' = diag(a) W`` and ``b' = a (b - μ) + β``.
    """

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)
        self.bn: nn.Module = nn.BatchNorm1d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        if isinstance(self.bn, nn.BatchNorm1d):
            y = self.bn(y.reshape(-1, y.shape[-1])).reshape(y.shape)
        return y

    @torch.no_grad()
    def fold(self) -> None:
        if not isinstance(self.bn, nn.BatchNorm1d):
            return
        bn = self.bn
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        self.linear.weight.mul_(a[:, None])
        self.linear.bias.copy_(a * (self.linear.bias - bn.running_mean) + bn.bias)
        self.bn = nn.Identity()


class SpikingAttention(nn.Module):
    """Spikformer SSA in ANN form: ``q, k, v = ReLU(BN(W x))``, ``ReLU(concat_h (q_h k_hᵀ) v_h · s)``.

    No softmax: q, k, v are non-negative (spike rates after conversion), so every product is an
    accumulate of spikes. The ReLU after the product is Spikformer's ``attn_lif``. The output
    projection ``BN(Wₒ a)`` is added to the residual stream by the block.
    """

    def __init__(self, dim: int, heads: int, scale: float = 0.125) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} does not split into {heads} heads")
        self.heads, self.scale = heads, scale
        self.q, self.k, self.v = LinearBN(dim, dim), LinearBN(dim, dim), LinearBN(dim, dim)
        self.out = LinearBN(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:  # (B, S, d) -> (B, h, S, d/h)
            return torch.relu(t).reshape(b, s, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        y = (q @ k.transpose(-2, -1)) @ v * self.scale
        return self.out(torch.relu(y.transpose(1, 2).reshape(b, s, d)))


class BinaryBlock(nn.Module):
    """Post-activation block on a non-negative residual stream (membrane shortcut after conversion).

        x ← ReLU(x + BN(Wₒ SSA(x)))        x ← ReLU(x + BN(W₂ ReLU(BN(W₁ x))))

    Every ``Add`` is followed by a ReLU, so after conversion the residual sum is the input current
    of an IF neuron and the stream between blocks is binary spikes.
    """

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.attn = SpikingAttention(dim, heads)
        self.fc1 = LinearBN(dim, mlp)
        self.fc2 = LinearBN(mlp, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(x + self.attn(x))
        return torch.relu(x + self.fc2(torch.relu(self.fc1(x))))


class BinaryViT(nn.Module):
    """A ViT every synaptic op of which reads binary spikes after rate conversion (Spikformer-style).

    Patch embedding ``ReLU(BN(conv_p(img)))``, then a 3×3 convolution ``ReLU(BN(conv₃(·)))`` on the
    token grid (Spikformer's relative position embedding: its zero padding tells tokens where they
    are, no learned position table), ``depth`` ``BinaryBlock``\\ s, and a linear head on all tokens
    flattened (position-aware readout; no class token, no LayerNorm, no softmax, no GELU).
    ``fold_batchnorm()`` merges every BN of the blocks into its Linear before ONNX export.
    """

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
        tokens = (image // patch) ** 2
        self.embed = nn.Sequential(nn.Conv2d(channels, dim, patch, stride=patch), nn.BatchNorm2d(dim), nn.ReLU())
        self.rpe = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.BatchNorm2d(dim), nn.ReLU())
        self.blocks = nn.Sequential(*(BinaryBlock(dim, heads, mlp) for _ in range(depth)))
        self.head = nn.Linear(tokens * dim, classes)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.rpe(self.embed(img)).flatten(2).transpose(1, 2)  # (B, N, d)
        return self.head(self.blocks(x).flatten(1))

    def fold_batchnorm(self) -> BinaryViT:
        """Merge the token BNs into their Linear layers in place (eval form; the conv BNs stay for spikec)."""
        for m in self.modules():
            if isinstance(m, LinearBN):
                m.fold()
        return self


def binary_vit() -> BinaryViT:
    """The binary-spike benchmark variant (same width, depth, heads and MLP as ``mnist_vit``)."""
    return BinaryViT()


ARCHS = {"softmax": mnist_vit, "binary": binary_vit}
