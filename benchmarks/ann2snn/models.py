"""The two benchmark ANNs as torch modules, their loaders, and an MNIST IDX reader.

No spikec dependency: this file is imported by the peer benchmark (``peers.py``, run in
``benchmarks/.venv-peers``) and may be imported by the spikec side of the benchmark too.
``load_mnist_test`` and the split helpers need only numpy; the model loaders need torch,
and ``load_onnx_mnist_conv`` / ``check_onnx_mnist_conv`` also need ``onnx`` /
``onnxruntime``.

Paths are resolved from the repository root (``../shared/data`` beside the checkout),
whatever the current directory is.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily so that the IDX reader works without it
    import torch
    from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT.parent / "shared" / "data"
MNIST_DIR = DATA / "mnist"
ONNX_MNIST_CONV = DATA / "onnx" / "mnist-conv" / "model.onnx"
SINABS_MNIST_PARAMS = DATA / "sinabs" / "mnist_params.pt"

#: The benchmark split of the 10,000 MNIST test images: the first N_CALIB calibrate, the rest evaluate.
N_CALIB = 1000
TIME_STEPS = (4, 8, 16, 32, 64)


# --------------------------------------------------------------------------------------------- MNIST


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array of its declared dtype and shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if dtype_code not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{dtype_code:02x}")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(dtypes[dtype_code])
    count = int(np.prod(shape)) if shape else 1
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=4 + 4 * ndim)
    if len(raw) != 4 + 4 * ndim + count * dtype.itemsize:
        raise ValueError(f"{path}: size does not match header shape {shape}")
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist_test(directory: str | Path = MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images as float32 (N,1,28,28) raw 0..255 pixels, and int64 labels (N,)."""
    directory = Path(directory)
    images = read_idx(directory / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(directory / "t10k-labels-idx1-ubyte.gz")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    return images.astype(np.float32)[:, None, :, :], labels.astype(np.int64)


def split_calib_eval(
    images: np.ndarray, labels: np.ndarray, n_calib: int = N_CALIB
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The benchmark split: (calibration images, (evaluation images, evaluation labels))."""
    return images[:n_calib], (images[n_calib:], labels[n_calib:])


# --------------------------------------------------------------------------------------------- models


def onnx_mnist_conv_module() -> nn.Sequential:
    """Architecture of the ONNX model zoo MNIST CNN (weights not loaded).

    Conv(1→8, 5×5, SAME) + bias → ReLU → MaxPool 2 → Conv(8→16, 5×5, SAME) + bias → ReLU → MaxPool 3
    → Flatten → Linear(256→10) + bias. The ONNX graph's separate ``Add`` nodes become conv biases.
    """
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(8, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(3, 3),
        nn.Flatten(),
        nn.Linear(256, 10),
    )


def load_onnx_mnist_conv(path: str | Path = ONNX_MNIST_CONV) -> nn.Sequential:
    """The ONNX model zoo MNIST CNN rebuilt as a torch module with the ONNX initializers as weights."""
    import onnx
    import torch
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # Check the graph is the one this rebuild assumes (node types, order and pad mode).
    ops = [n.op_type for n in model.graph.node if n.op_type != "Reshape" or n.input[0] != "Parameter193"]
    expected = ["Conv", "Add", "Relu", "MaxPool", "Conv", "Add", "Relu", "MaxPool", "Reshape", "MatMul", "Add"]
    if ops != expected:
        raise ValueError(f"{path}: unexpected graph {ops}")
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv" and attrs.get("auto_pad") != b"SAME_UPPER":
            raise ValueError(f"{path}: conv {node.name} is not SAME_UPPER")
    net = onnx_mnist_conv_module()
    sd = {
        "0.weight": init["Parameter5"],
        "0.bias": init["Parameter6"].reshape(8),
        "3.weight": init["Parameter87"],
        "3.bias": init["Parameter88"].reshape(16),
        # MatMul (1,256)x(256,10): the (16,4,4,10) initializer flattened in C order matches Flatten of (16,4,4).
        "7.weight": init["Parameter193"].reshape(256, 10).T.copy(),
        "7.bias": init["Parameter194"].reshape(10),
    }
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()})
    return net.eval()


def check_onnx_mnist_conv(net: nn.Module, images: np.ndarray, path: str | Path = ONNX_MNIST_CONV) -> dict[str, Any]:
    """Compare the torch rebuild with onnxruntime on ``images`` (N,1,28,28), one image at a time
    (the ONNX input is fixed at batch 1). Returns the max abs logit difference and argmax agreement."""
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    ref = np.concatenate([sess.run(None, {name: img[None].astype(np.float32)})[0] for img in images])
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))).numpy()
    return {
        "images": len(images),
        "max_abs_diff": float(np.abs(out - ref).max()),
        "max_abs_logit": float(np.abs(ref).max()),
        "argmax_agree": int((out.argmax(1) == ref.argmax(1)).sum()),
        "onnxruntime": ort.__version__,
    }


def sinabs_mnist_module() -> nn.Sequential:
    """Architecture of the sinabs MNIST net (bias-free; indices match the state_dict keys 0,3,6,10,12)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 20, 5, 1, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2, 2),
        nn.Conv2d(20, 32, 5, 1, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2, 2),
        nn.Conv2d(32, 128, 3, 1, bias=False),
        nn.ReLU(),
        nn.AvgPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(128, 500, bias=False),
        nn.ReLU(),
        nn.Linear(500, 10, bias=False),
    )


def load_sinabs_mnist(path: str | Path = SINABS_MNIST_PARAMS) -> nn.Sequential:
    """The sinabs MNIST net with its trained weights (the file was saved from CUDA; mapped to CPU)."""
    import torch

    net = sinabs_mnist_module()
    net.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    return net.eval()


#: name -> loader, in benchmark order. Both take raw 0..255 pixels shaped (N,1,28,28).
MODELS = {
    "onnx-mnist-conv": load_onnx_mnist_conv,
    "sinabs-mnist": load_sinabs_mnist,
}


def ann_accuracy(net: nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 1000) -> float:
    """Top-1 accuracy of a torch classifier on raw-pixel images."""
    import torch

    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x: torch.Tensor = torch.from_numpy(images[i : i + batch])
            correct += int((net(x).argmax(1).numpy() == labels[i : i + batch]).sum())
    return correct / len(images)
