"""Hugging Face ``transformers`` models built from config objects (random weights, no download), tiny
widths. Each is wrapped to return its logits tensor (the ``ModelOutput`` field a user exports); GPT-2's
language model returns the next-token logits (the last position), as generation reads them.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE, CLASSES, VOCAB, SEQ = 32, 10, 100, 16
_TEXT = {"vocab_size": VOCAB, "max_position_embeddings": 2 * SEQ, "num_labels": CLASSES}


class Logits(nn.Module):
    """``model(x).logits`` (``last``: the last position's, ``[:, -1]``)."""

    def __init__(self, model: nn.Module, last: bool = False) -> None:
        super().__init__()
        self.model, self.last = model, last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x).logits
        return logits[:, -1] if self.last else logits


def vit() -> nn.Module:
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                       image_size=IMAGE, patch_size=8, num_labels=CLASSES)  # fmt: skip
    return Logits(ViTForImageClassification(config))


def deit() -> nn.Module:
    from transformers import DeiTConfig, DeiTForImageClassification

    config = DeiTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        image_size=IMAGE, patch_size=8, num_labels=CLASSES)  # fmt: skip
    return Logits(DeiTForImageClassification(config))


def bert() -> nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **_TEXT)
    return Logits(BertForSequenceClassification(config))


def distilbert() -> nn.Module:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    config = DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **_TEXT)
    return Logits(DistilBertForSequenceClassification(config))


def gpt2() -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=VOCAB, n_positions=2 * SEQ, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    return Logits(GPT2LMHeadModel(config), last=True)


def resnet() -> nn.Module:
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic",
                          num_labels=CLASSES)  # fmt: skip
    return Logits(ResNetForImageClassification(config))


def convnext() -> nn.Module:
    from transformers import ConvNextConfig, ConvNextForImageClassification

    config = ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], patch_size=4, image_size=IMAGE,
                            num_labels=CLASSES)  # fmt: skip
    return Logits(ConvNextForImageClassification(config))


def mobilenet_v2() -> nn.Module:
    from transformers import MobileNetV2Config, MobileNetV2ForImageClassification

    config = MobileNetV2Config(depth_multiplier=0.25, image_size=IMAGE, num_labels=CLASSES)
    return Logits(MobileNetV2ForImageClassification(config))


def swin() -> nn.Module:
    from transformers import SwinConfig, SwinForImageClassification

    config = SwinConfig(image_size=IMAGE, patch_size=4, embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                        window_size=4, num_labels=CLASSES)  # fmt: skip
    return Logits(SwinForImageClassification(config))
