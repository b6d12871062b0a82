"""The Loihi 2 zoo benchmark's models (benchmarks/loihi_zoo/models.py) are torchvision's architectures: the same
parameter counts as torchvision's published models, and each runs a forward pass at its input size."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_spec = importlib.util.spec_from_file_location(
    "loihi_zoo_models", Path(__file__).resolve().parents[1] / "benchmarks" / "loihi_zoo" / "models.py"
)
assert _spec is not None and _spec.loader is not None
_zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_zoo)
MODELS = _zoo.MODELS

TORCHVISION_PARAMETERS = {  # torchvision.models.<name>().parameters(), 1,000 classes
    "resnet18-224": 11_689_512,
    "resnet50-224": 25_557_032,
    "mobilenetv2-224": 3_504_872,
    "squeezenet1.1-224": 1_235_496,
    "densenet121-224": 7_978_856,
    "vgg11-224": 132_863_336,
    "shufflenetv2-224": 2_278_604,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMETERS))
def test_zoo_models_have_torchvisions_parameter_counts(name: str) -> None:
    module, shape = MODELS[name]()
    assert shape == (3, 224, 224)
    assert sum(p.numel() for p in module.parameters()) == TORCHVISION_PARAMETERS[name]


@pytest.mark.parametrize("name", ["resnet18-32", "densenet121-32", "vit-binary-16"])
def test_the_small_zoo_models_classify_ten_classes(name: str) -> None:
    module, shape = MODELS[name]()
    with torch.no_grad():
        assert module.eval()(torch.zeros(2, *shape)).shape == (2, 10)
