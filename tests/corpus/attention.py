"""Attention models built from torch's own modules: ``nn.MultiheadAttention`` (batch first or not, with an
attention mask and a key padding mask), ``nn.TransformerEncoderLayer``/``nn.TransformerEncoder`` (post- and
pre-norm) and ``F.scaled_dot_product_attention(is_causal=True)``. Each reads (batch, 8, 16) tokens and ends
in a mean over the sequence and a linear classifier, so ``spikec eval`` has classes to compare.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SEQ, DIM, HEADS, CLASSES = 8, 16, 2, 10
PADDED = 2  # trailing positions the key padding mask hides


class Classifier(nn.Module):
    """mean over the sequence axis, then Linear(DIM, CLASSES)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(DIM, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean(dim=1))


def causal_mask() -> torch.Tensor:
    """(SEQ, SEQ) bool, True above the diagonal: position i may not attend to j > i."""
    return torch.triu(torch.ones(SEQ, SEQ, dtype=torch.bool), diagonal=1)


class SelfAttention(nn.Module):
    """y = head(x + MHA(x, x, x)); with ``masks``, a causal attn_mask and a key_padding_mask that hides the
    last ``PADDED`` positions of every sample (expanded over the batch). ``batch_first=False`` modules get
    (seq, batch, dim): the model transposes its (batch, seq, dim) input, as such models do."""

    def __init__(self, batch_first: bool, masks: bool) -> None:
        super().__init__()
        self.batch_first, self.masks = batch_first, masks
        self.attn = nn.MultiheadAttention(DIM, HEADS, batch_first=batch_first)
        self.head = Classifier()
        self.register_buffer("attn_mask", causal_mask())
        padding = torch.zeros(1, SEQ, dtype=torch.bool)
        padding[:, SEQ - PADDED :] = True
        self.register_buffer("padding", padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.batch_first else x.transpose(0, 1)
        kwargs = {}
        if self.masks:
            kwargs = {"attn_mask": self.attn_mask, "key_padding_mask": self.padding.expand(x.shape[0], -1)}
        out, _ = self.attn(h, h, h, need_weights=False, **kwargs)
        out = out if self.batch_first else out.transpose(0, 1)
        return self.head(x + out)


def mha() -> nn.Module:
    return SelfAttention(batch_first=True, masks=False)


def mha_masked() -> nn.Module:
    return SelfAttention(batch_first=True, masks=True)


def mha_seq_first() -> nn.Module:
    return SelfAttention(batch_first=False, masks=True)


class Encoder(nn.Module):
    """``encoder(x[, mask])`` then the classifier; ``causal`` passes a causal mask."""

    def __init__(self, encoder: nn.Module, causal: bool) -> None:
        super().__init__()
        self.encoder, self.causal = encoder, causal
        self.head = Classifier()
        self.register_buffer("mask", causal_mask())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.causal:
            return self.head(self.encoder(x, mask=self.mask, is_causal=True))
        return self.head(self.encoder(x))


def encoder_layer() -> nn.Module:
    """One post-norm ``nn.TransformerEncoderLayer`` (ReLU feed-forward), batch first."""
    layer = nn.TransformerEncoderLayer(DIM, HEADS, dim_feedforward=32, batch_first=True)
    return Encoder(layer, causal=False)


def encoder_prenorm() -> nn.Module:
    """``nn.TransformerEncoder`` of two pre-norm GELU layers with a final LayerNorm and a causal mask."""
    layer = nn.TransformerEncoderLayer(DIM, HEADS, dim_feedforward=32, activation="gelu", batch_first=True,
                                       norm_first=True)  # fmt: skip
    return Encoder(nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(DIM), enable_nested_tensor=False), causal=True)


class CausalSDPA(nn.Module):
    """GPT-style block: fused qkv projection, heads split, ``F.scaled_dot_product_attention(is_causal=True)``,
    heads merged, output projection, residual; then the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.head = Classifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (t.view(b, s, HEADS, d // HEADS).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(b, s, d)
        return self.head(x + self.proj(y))


def sdpa_causal() -> nn.Module:
    return CausalSDPA()
