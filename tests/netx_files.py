"""Hand-written netx ``.net`` files for the tests: layers as lava-dl writes them (``layer/<i>/<key>``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py


def write_net(path: Path, layers: list[dict[str, Any]]) -> None:
    """One HDF5 group per layer; a dict value (the ``neuron`` group) becomes a subgroup of datasets."""
    with h5py.File(path, "w") as f:
        for i, layer in enumerate(layers):
            group = f.create_group(f"layer/{i}")
            for key, value in layer.items():
                if isinstance(value, dict):
                    sub = group.create_group(key)
                    for k, v in value.items():
                        sub.create_dataset(k, data=v)
                else:
                    group.create_dataset(key, data=value)
