"""The corpus: every model by name, with its family, where its code comes from and its input."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from . import attention, cnn, hf

SEED = 0


@dataclasses.dataclass(frozen=True)
class CorpusModel:
    """``build()`` returns the module in eval mode with weights drawn from ``torch.manual_seed(SEED)``.
    ``sample`` is one input's shape; ``vocab`` marks a token model (int64 ids in [0, vocab))."""

    name: str
    family: str  # "transformer" or "cnn"
    source: str  # what the user's code is built from
    builder: Callable[[], nn.Module]
    sample: tuple[int, ...]
    vocab: int | None = None

    def build(self) -> nn.Module:
        torch.manual_seed(SEED)
        module = self.builder()
        _randomise_norm_statistics(module)
        return module.eval()

    def inputs(self, batch: int, seed: int) -> np.ndarray:
        """``batch`` random inputs: standard normal float32, or int64 token ids."""
        rng = np.random.default_rng(seed)
        if self.vocab is not None:
            return rng.integers(0, self.vocab, size=(batch, *self.sample), dtype=np.int64)
        return rng.standard_normal((batch, *self.sample)).astype(np.float32)


def _randomise_norm_statistics(module: nn.Module) -> None:
    """Give BatchNorm layers non-trivial running statistics (fresh ones are mean 0, variance 1)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            with torch.no_grad():
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)


IMAGE = (3, 32, 32)
TOKENS = (attention.SEQ, attention.DIM)
_ALL = [
    CorpusModel("mha", "transformer", "torch nn.MultiheadAttention (batch_first=True)", attention.mha, TOKENS),
    CorpusModel("mha-masked", "transformer", "torch nn.MultiheadAttention (batch_first=True, attn_mask, "
                "key_padding_mask)", attention.mha_masked, TOKENS),
    CorpusModel("mha-seq-first", "transformer", "torch nn.MultiheadAttention (batch_first=False, attn_mask, "
                "key_padding_mask)", attention.mha_seq_first, TOKENS),
    CorpusModel("encoder-layer", "transformer", "torch nn.TransformerEncoderLayer (post-norm)", attention.encoder_layer,
                TOKENS),
    CorpusModel("encoder-prenorm", "transformer", "torch nn.TransformerEncoder (pre-norm, causal mask)",
                attention.encoder_prenorm, TOKENS),
    CorpusModel("sdpa-causal", "transformer", "torch F.scaled_dot_product_attention (is_causal=True)",
                attention.sdpa_causal, TOKENS),
    CorpusModel("vit", "transformer", "transformers ViTForImageClassification", hf.vit, IMAGE),
    CorpusModel("deit", "transformer", "transformers DeiTForImageClassification", hf.deit, IMAGE),
    CorpusModel("bert", "transformer", "transformers BertForSequenceClassification", hf.bert, (hf.SEQ,), hf.VOCAB),
    CorpusModel("distilbert", "transformer", "transformers DistilBertForSequenceClassification", hf.distilbert,
                (hf.SEQ,), hf.VOCAB),
    CorpusModel("gpt2", "transformer", "transformers GPT2LMHeadModel (next-token logits)", hf.gpt2, (hf.SEQ,),
                hf.VOCAB),
    CorpusModel("alexnet", "cnn", "torch, AlexNet-style (LocalResponseNorm)", cnn.alexnet, IMAGE),
    CorpusModel("resnet18", "cnn", "torch, ResNet-18-style (basic blocks)", cnn.resnet18, IMAGE),
    CorpusModel("resnet50", "cnn", "torch, ResNet-50-style (bottlenecks)", cnn.resnet50, IMAGE),
    CorpusModel("densenet", "cnn", "torch, DenseNet-style", cnn.densenet, IMAGE),
    CorpusModel("inception", "cnn", "torch, Inception-style", cnn.inception, IMAGE),
    CorpusModel("mobilenetv2", "cnn", "torch, MobileNetV2-style (ReLU6, depthwise)", cnn.mobilenet_v2, IMAGE),
    CorpusModel("shufflenet", "cnn", "torch, ShuffleNetV2-style (channel shuffle)", cnn.ShuffleNet, IMAGE),
    CorpusModel("squeezenet", "cnn", "torch, SqueezeNet-style (fire modules, ceil-mode pools)", cnn.squeezenet,
                IMAGE),
    CorpusModel("vgg", "cnn", "torch, VGG-style", cnn.vgg, IMAGE),
    CorpusModel("hf-resnet", "cnn", "transformers ResNetForImageClassification", hf.resnet, IMAGE),
    CorpusModel("hf-convnext", "cnn", "transformers ConvNextForImageClassification", hf.convnext, IMAGE),
    CorpusModel("hf-mobilenetv2", "cnn", "transformers MobileNetV2ForImageClassification", hf.mobilenet_v2, IMAGE),
    CorpusModel("hf-swin", "transformer", "transformers SwinForImageClassification", hf.swin, IMAGE),
]  # fmt: skip
MODELS: dict[str, CorpusModel] = {m.name: m for m in _ALL}
