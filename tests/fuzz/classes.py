"""The mutation classes by name and the classes that apply to each format (``fuzz.mutate`` says what each
does), and the fresh copy of a seed a case damages."""

from __future__ import annotations

import shutil
from pathlib import Path

from fuzz.mutate import (
    Mutation,
    flip,
    hdf5_field,
    hdf5_outside,
    hdf5_structure,
    sidecar_field,
    sir_field,
    sir_structure,
    splice,
    truncate,
)
from fuzz.mutate_binary import (
    npy_field,
    onnx_field,
    onnx_outside,
    onnx_work,
    pickle_payload,
    pt_field,
    report_field,
    text_junk,
)

MUTATIONS: dict[str, Mutation] = {
    "flip": flip,
    "truncate": truncate,
    "splice": splice,
    "junk": text_junk,
    "sir-field": sir_field,
    "sir-structure": sir_structure,
    "sidecar-field": sidecar_field,
    "hdf5-field": hdf5_field,
    "hdf5-structure": hdf5_structure,
    "hdf5-outside": hdf5_outside,
    "onnx-field": onnx_field,
    "onnx-outside": onnx_outside,
    "onnx-work": onnx_work,
    "npy-field": npy_field,
    "pickle": pickle_payload,
    "pt-field": pt_field,
    "report-field": report_field,
}
BYTES = ["flip", "truncate", "splice", "junk"]
CLASSES: dict[str, list[str]] = {
    "sir": [*BYTES, "sir-field", "sir-structure"],
    "sir-sidecar": [*BYTES, "sidecar-field", "pickle"],
    "nir": [*BYTES, "hdf5-field", "hdf5-structure", "hdf5-outside"],
    "netx": [*BYTES, "hdf5-field", "hdf5-structure", "hdf5-outside"],
    "onnx": [*BYTES, "onnx-field", "onnx-outside", "onnx-work"],
    "npy": [*BYTES, "npy-field", "pickle"],
    "npz": [*BYTES, "npy-field", "pickle"],
    "pt": [*BYTES, "pt-field", "pickle"],
    "report": [*BYTES, "report-field"],
}


def copy_seed(seed_path: Path, case_dir: Path) -> Path:
    """A fresh copy of the seed's folder under ``case_dir``; the copy of the seed file."""
    shutil.copytree(seed_path.parent, case_dir / "case", symlinks=True)
    return case_dir / "case" / seed_path.name
