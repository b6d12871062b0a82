"""Small helpers shared by the framework mappers: tensors and floats → float64 arrays."""

from __future__ import annotations

from typing import Any

import numpy as np


def array(value: Any) -> np.ndarray:
    """A Python number or a torch tensor (parameter or buffer) as a float64 numpy array."""
    if hasattr(value, "detach"):
        return np.asarray(value.detach().to("cpu").double().numpy(), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)
