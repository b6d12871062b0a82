"""Train the benchmark ViT on the first 8,000 MNIST test images and cache it in this folder.

    .venv/bin/python benchmarks/vit/train.py [--epochs 15] [--arch softmax|binary]

The only MNIST images available offline are the 10,000 of the official test set
(../shared/data/README.md), so the benchmark splits them: the first 8,000 train, the last 2,000
evaluate. Pixels are floats in [0, 1], shaped (1, 28, 28); no normalisation. Augmentation: a random
shift of up to 2 pixels (zero fill). AdamW with a one-cycle learning rate, seed 0, 2 threads.

Writes ``vit_mnist.pt`` (the state_dict) and ``vit_mnist.onnx`` (``torch.onnx.export(dynamo=True)``,
batch fixed to 1, opset 18), and prints train time and the float accuracy on the 2,000 held-out
images with torch, onnxruntime and spikec's interpreter on the imported ONNX (they must agree).

``--arch binary`` trains the binary-spike variant (``model.BinaryViT``, Spikformer-style attention,
BatchNorm, ReLU) with the same split, seed, optimiser and schedule; it writes
``vit_binary_mnist.{pt,onnx}`` (the ONNX with the token BatchNorms folded into their Linear layers)
and ``results/train_binary.json`` (float accuracy with torch, onnxruntime and spikec).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, so `benchmarks.vit` imports when run as a script

from benchmarks.vit.data import TRAIN, mnist_split  # noqa: E402
from benchmarks.vit.model import ARCHS, BinaryViT  # noqa: E402

WEIGHTS = HERE / "vit_mnist.pt"
ONNX = HERE / "vit_mnist.onnx"
BINARY_WEIGHTS = HERE / "vit_binary_mnist.pt"
BINARY_ONNX = HERE / "vit_binary_mnist.onnx"
SEED = 0


def shift(x: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by a random whole number of pixels in [-max_shift, max_shift], zero fill."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)
    dy, dx = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen)).unbind(0)
    rows = (dy[:, None] + torch.arange(h)[None]).view(n, 1, h, 1).expand(n, 1, h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None]).view(n, 1, 1, w).expand(n, 1, h, w)
    return out.gather(3, cols)


def train(epochs: int, batch: int = 128, lr: float = 2e-3, arch: str = "softmax") -> tuple[torch.nn.Module, float]:
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    x, y = (torch.as_tensor(a) for a in mnist_split(TRAIN))
    model = ARCHS[arch]()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), batch):
            idx = order[i : i + batch]
            loss = F.cross_entropy(model(shift(x[idx], gen)), y[idx].long(), label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} ({elapsed:.0f} s)", flush=True)
    return model.eval(), time.perf_counter() - start


def export(model: torch.nn.Module, path: Path) -> None:
    """ONNX of ``model`` (eval mode, batch 1, opset 18, dynamo exporter, weights inline)."""
    with torch.no_grad():
        torch.onnx.export(
            model.eval(),
            (torch.zeros(1, 1, 28, 28),),
            str(path),
            dynamo=True,
            opset_version=18,
            input_names=["image"],
            output_names=["logits"],
            external_data=False,
        )


def export_binary(weights: Path = BINARY_WEIGHTS, onnx_path: Path = BINARY_ONNX) -> BinaryViT:
    """Load the trained binary variant, fold its token BatchNorms into the Linear layers, export ONNX."""
    model = BinaryViT()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval().fold_batchnorm()
    export(model, onnx_path)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--arch", choices=sorted(ARCHS), default="softmax")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, seconds = train(args.epochs, arch=args.arch)
    if args.arch == "binary":
        torch.save(model.state_dict(), BINARY_WEIGHTS)
        export_binary()
        from benchmarks.vit.binary_snn import evaluate_float

        result = {"train_seconds": round(seconds, 1), "epochs": args.epochs, **evaluate_float()}
        print(json.dumps(result, indent=2))
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "train_binary.json").write_text(json.dumps(result, indent=2) + "\n")
        return
    torch.save(model.state_dict(), WEIGHTS)
    export(model, ONNX)
    from benchmarks.vit.evaluate import evaluate_all

    result = {"train_seconds": round(seconds, 1), "epochs": args.epochs, **evaluate_all()}
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "train.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
