"""The model zoo of the Loihi 2 benchmark, in plain torch (torchvision does not import beside the CPU torch
build here): each follows torchvision's module structure and sizes for its family, with random weights.

Random weights under torch's default initialisation (each conv's output ~2.5× smaller than its input) with
BatchNorm's default statistics (mean 0, variance 1: no normalisation) make activations vanish through depth:
MobileNetV2's pooled features are 10⁻⁷ of the classifier's bias, so its ANN answers argmax(bias) whatever
the input. ``batchnorm_statistics`` sets every BatchNorm's running statistics from a forward pass on random
inputs, as a briefly trained network would have them (measure.py does it before export): each layer's
activations then keep unit scale, and the classifier reads the input.

``MODELS[name]() -> (module, input shape)``; ImageNet models classify 1,000 classes, the 32×32 ResNet-18
and the ViT 10. The ViT is ``benchmarks/vit/model.py``'s ``BinaryViT`` (Spikformer-style: no softmax,
LayerNorm or GELU), small: 16×16 images, 16 tokens of 16 features, 2 blocks; it converts with
``--method binary`` (``METHODS``) and exports with the dynamo exporter (``DYNAMO``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ ReLU), 'same' padding."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


@torch.no_grad()
def batchnorm_statistics(module: nn.Module, shape: tuple[int, ...], samples: int = 8, seed: int = 0) -> nn.Module:
    """``module`` (in eval mode) with each BatchNorm's running mean and variance those of its input over
    ``samples`` random normal inputs of ``shape``, each layer normalised before the next is measured (one
    forward pass in training mode, cumulative averages)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, exactly that batch's statistics
    module.train()
    module(torch.randn(samples, *shape, generator=torch.Generator().manual_seed(seed)))
    return module.eval()


# -- ResNet (He et al. 2016; torchvision resnet18/resnet50) -------------------------------------------------
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, width, 3, stride), conv_bn(width, width, 3, relu=False))
        self.shortcut = conv_bn(cin, width, 1, stride, relu=False) if stride != 1 or cin != width else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = 4 * width
        self.body = nn.Sequential(
            conv_bn(cin, width, 1), conv_bn(width, width, 3, stride), conv_bn(width, cout, 1, relu=False)
        )
        self.shortcut = conv_bn(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block: type[BasicBlock | Bottleneck], layers: list[int], classes: int, small: bool) -> None:
        super().__init__()
        stem: list[nn.Module] = [conv_bn(3, 64, 3)] if small else [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
        blocks: list[nn.Module] = []
        cin = 64
        for i, n in enumerate(layers):
            width = 64 * 2**i
            for j in range(n):
                blocks.append(block(cin, width, 2 if j == 0 and i > 0 else 1))
                cin = width * block.expansion
        self.features = nn.Sequential(*stem, *blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# -- MobileNetV2 (Sandler et al. 2018) ---------------------------------------------------------------------
class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = [conv_bn(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, relu=False)]
        for m in layers:
            if isinstance(m, nn.Sequential) and isinstance(m[-1], nn.ReLU):
                m[-1] = nn.ReLU6(inplace=True)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2() -> nn.Module:
    settings = [  # expansion, channels, repeats, first stride
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]  # fmt: skip
    layers: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
    layers[0][-1] = nn.ReLU6(inplace=True)  # type: ignore[index]
    cin = 32
    for t, c, n, s in settings:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    last = conv_bn(cin, 1280, 1)
    last[-1] = nn.ReLU6(inplace=True)
    return nn.Sequential(*layers, last, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, 1000))


# -- SqueezeNet 1.1 (Iandola et al. 2016) ------------------------------------------------------------------
class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU(inplace=True))
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


def squeezenet1_1() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(64, 16, 64), Fire(128, 16, 64), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(128, 32, 128), Fire(256, 32, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(256, 48, 192), Fire(384, 48, 192), Fire(384, 64, 256), Fire(512, 64, 256),
        nn.Dropout(0.5), nn.Conv2d(512, 1000, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip


# -- DenseNet-121 (Huang et al. 2017) ----------------------------------------------------------------------
class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth), nn.ReLU(inplace=True), nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def densenet121(classes: int = 1000) -> nn.Module:
    growth, cin = 32, 64
    layers: list[nn.Module] = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    for i, n in enumerate((6, 12, 24, 16)):
        for _ in range(n):
            layers.append(DenseLayer(cin, growth))
            cin += growth
        if i < 3:
            layers += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cin // 2, 1, bias=False)]
            layers.append(nn.AvgPool2d(2, 2))
            cin //= 2
    layers += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    layers.append(nn.Linear(cin, classes))
    return nn.Sequential(*layers)


# -- VGG-11 (Simonyan & Zisserman 2015) --------------------------------------------------------------------
def vgg11() -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(), nn.Linear(4096, 1000),
    )  # fmt: skip


# -- ShuffleNetV2 1.0x (Ma et al. 2018) --------------------------------------------------------------------
def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = cout // 2
        if stride > 1:
            self.left = nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin, relu=False), conv_bn(cin, branch, 1))
        inner = cin if stride > 1 else branch
        self.right = nn.Sequential(
            conv_bn(inner, branch, 1), conv_bn(branch, branch, 3, stride, groups=branch, relu=False),
            conv_bn(branch, branch, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.right(b)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        return channel_shuffle(out, 2)


def shufflenet_v2() -> nn.Module:
    layers: list[nn.Module] = [conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for cout, repeats in ((116, 4), (232, 8), (464, 4)):
        for i in range(repeats):
            layers.append(ShuffleUnit(cin, cout, 2 if i == 0 else 1))
            cin = cout
    layers += [conv_bn(cin, 1024, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000)]
    return nn.Sequential(*layers)


def vit_binary_small() -> nn.Module:
    """``BinaryViT`` with 16×16 images, patches of 4, 16 features, 2 heads, 2 blocks; its BatchNorms given
    statistics a trained model would have, then folded (as benchmarks/vit exports it)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("vit_model", Path(__file__).parents[1] / "vit" / "model.py")
    assert spec is not None and spec.loader is not None
    vit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vit)
    model = vit.BinaryViT(image=16, patch=4, dim=16, depth=2, heads=2, mlp=32).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.fold_batchnorm()


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[int, ...]]]] = {
    "resnet18-32": lambda: (ResNet(BasicBlock, [2, 2, 2, 2], 10, small=True), (3, 32, 32)),
    "resnet18-224": lambda: (ResNet(BasicBlock, [2, 2, 2, 2], 1000, small=False), (3, 224, 224)),
    "resnet50-224": lambda: (ResNet(Bottleneck, [3, 4, 6, 3], 1000, small=False), (3, 224, 224)),
    "mobilenetv2-224": lambda: (mobilenet_v2(), (3, 224, 224)),
    "squeezenet1.1-224": lambda: (squeezenet1_1(), (3, 224, 224)),
    "densenet121-32": lambda: (densenet121(10), (3, 32, 32)),
    "densenet121-224": lambda: (densenet121(), (3, 224, 224)),
    "vgg11-224": lambda: (vgg11(), (3, 224, 224)),
    "shufflenetv2-224": lambda: (shufflenet_v2(), (3, 224, 224)),
    "vit-binary-16": lambda: (vit_binary_small(), (1, 16, 16)),
}
METHODS = {"vit-binary-16": "binary"}  # --method for the models that need one (the default: percentile)
DYNAMO = {"vit-binary-16"}  # exported with torch.onnx.export(dynamo=True), as benchmarks/vit does
