"""The architecture of the sinabs MNIST ANN (synsense/sinabs tests/mnist_params.pt), for --arch.

    spikec import ../shared/data/sinabs/mnist_params.pt --arch examples/sinabs_mnist.py:build \\
        --input-shape 1,28,28 -o sinabs_mnist.sir

Conv(1→20,5)–ReLU–AvgPool2–Conv(20→32,5)–ReLU–AvgPool2–Conv(32→128,3)–ReLU–AvgPool2–Flatten–
Linear(128→500)–ReLU–Linear(500→10), bias-free; state_dict keys 0, 3, 6, 10, 12.
"""

from __future__ import annotations

import torch.nn as nn


def build() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(20, 32, 5, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(32, 128, 3, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 500, bias=False),
        nn.ReLU(),
        nn.Linear(500, 10, bias=False),
    )
