"""Small CNNs with the structures real networks have, built from the corpus' torchvision-style blocks
(tests/corpus/cnn.py) at 16×16 inputs, for the Loihi 2 lowering tests (tests/test_loihi_cnn.py).

Two changes where spikec's conversion (not the Loihi lowering) cannot take torchvision's own choice: ReLU
instead of MobileNetV2's ReLU6 (threshold-balance takes ReLU only), and ShuffleNetV2 units of stride 2 only
(torchvision's stride-1 unit splits channels with ``chunk``, a Slice threshold-balance carries no scale through);
the channel shuffle itself is torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from corpus import cnn
from torch import nn

SIZE = 16


def _relu(module: nn.Module) -> nn.Module:
    """The module with every ReLU6 replaced by a ReLU."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU6):
            setattr(module, name, nn.ReLU(inplace=True))
        else:
            _relu(child)
    return module


def _head(cin: int) -> list[nn.Module]:
    return [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(cin, cnn.CLASSES)]


def resnet_basic() -> nn.Module:
    """ResNet-18's blocks: an identity shortcut, then a strided block with a 1×1 projection shortcut."""
    return nn.Sequential(cnn.conv_bn(3, 8, 3), cnn.BasicBlock(8, 8, 1), cnn.BasicBlock(8, 16, 2), *_head(16))


def resnet_bottleneck() -> nn.Module:
    """ResNet-50's bottleneck blocks (1×1, 3×3, 1×1 ×4) with projection shortcuts, one strided."""
    return nn.Sequential(cnn.conv_bn(3, 8, 3), cnn.Bottleneck(8, 4, 1), cnn.Bottleneck(16, 4, 2), *_head(16))


def resnet_wide() -> nn.Module:
    """ResNet blocks wide enough for relays: a basic and a bottleneck block whose 1×1 projection shortcuts,
    delayed per synapse, would store more than relay neurons delaying their input (targets/loihi2/delay_relay.py)."""
    return nn.Sequential(cnn.conv_bn(3, 16, 3, 2), cnn.BasicBlock(16, 64, 2), cnn.Bottleneck(64, 32, 2), *_head(128))


def densenet() -> nn.Module:
    """DenseNet: dense layers concatenating onto their input, a BN–ReLU–1×1–avgpool transition, BN–ReLU head."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        cnn.DenseLayer(8, 4), cnn.DenseLayer(12, 4),
        nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.Conv2d(16, 8, 1, bias=False), nn.AvgPool2d(2),
        cnn.DenseLayer(8, 4), nn.BatchNorm2d(12), nn.ReLU(inplace=True), *_head(12),
    )  # fmt: skip


def inception() -> nn.Module:
    """GoogLeNet's modules: four branches concatenated; the second module max-pools the first one's Concat."""
    return nn.Sequential(cnn.conv_bn(3, 8, 3), nn.MaxPool2d(2), cnn.InceptionBlock(8, 4, 4, 4, 4),
                         cnn.InceptionBlock(16, 4, 4, 4, 4), *_head(16))  # fmt: skip


def mobilenet_v2() -> nn.Module:
    """MobileNetV2: strided stem, inverted residuals (depthwise 3×3, strided, linear bottleneck + residual)."""
    return _relu(nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(inplace=True),
        cnn.InvertedResidual(8, 8, 1, 1), cnn.InvertedResidual(8, 12, 2, 4), cnn.InvertedResidual(12, 12, 1, 4),
        nn.Conv2d(12, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True), *_head(16),
    ))  # fmt: skip


class ShuffleNet(nn.Module):
    """ShuffleNetV2: stem conv + maxpool, two strided units (two branches, Concat, channel shuffle), conv5."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(cnn.conv_bn(3, 8, 3), nn.MaxPool2d(2), cnn.ShuffleUnit(8, 16, 2),
                                  cnn.ShuffleUnit(16, 24, 2), cnn.conv_bn(24, 16, 1))  # fmt: skip
        self.head = nn.Sequential(*_head(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def squeezenet() -> nn.Module:
    """SqueezeNet 1.1: fire modules (squeeze, 1×1 and 3×3 expands concatenated), a 1×1 conv classifier with ReLU
    and a global average pool as the output (no Linear)."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(inplace=True), cnn.Fire(8, 4, 8), nn.MaxPool2d(2),
        cnn.Fire(16, 4, 8), nn.Conv2d(16, cnn.CLASSES, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
    )  # fmt: skip


CNNS: dict[str, Callable[[], nn.Module]] = {
    "resnet-basic": resnet_basic,
    "resnet-bottleneck": resnet_bottleneck,
    "resnet-wide": resnet_wide,
    "densenet": densenet,
    "inception": inception,
    "mobilenet-v2": mobilenet_v2,
    "shufflenet-v2": ShuffleNet,
    "squeezenet": squeezenet,
}


def spikes(samples: int, seed: int) -> np.ndarray:
    """Binary images (N, 3, 16, 16): pixels that are spikes already, as Loihi's binary input layer takes them."""
    return (np.random.default_rng(seed).random((samples, 3, SIZE, SIZE)) < 0.5).astype(np.float32)


def export(name: str, path: Path, seed: int = 0) -> Path:
    """CNNS[name] with seeded random weights (BatchNorm statistics too), exported as a user would."""
    torch.manual_seed(seed)
    model = CNNS[name]()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    model.eval()
    torch.onnx.export(model, torch.from_numpy(spikes(1, seed)), path, dynamo=False)
    return path
