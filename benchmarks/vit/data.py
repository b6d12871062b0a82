"""The benchmark's MNIST split: the first 8,000 images of the official test set train, the last 2,000 evaluate.

Pixels are float32 in [0, 1], shaped (N, 1, 28, 28); labels int64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spikec.data.mnist import load_mnist

REPO = Path(__file__).resolve().parents[2]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"
TRAIN = slice(0, 8000)
EVAL = slice(8000, 10000)


def mnist_split(part: slice, mnist_dir: Path = MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 1, 28, 28) float32 in [0, 1] and labels (N,) int64 of ``part`` of the 10,000 images."""
    images, labels = load_mnist(mnist_dir)
    return (images[part, None] / np.float32(255)).astype(np.float32), labels[part].astype(np.int64)
