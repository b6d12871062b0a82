"""Quantization-aware fine-tuning of the benchmark ViT for the exact SNN path at ``L`` levels.

    .venv/bin/python benchmarks/vit/qat.py [--levels 16] [--epochs 2] [--lr 3e-4]

Post-training quantization to L=16 levels costs the ViT ~5.7 pp (README); fine-tuning with the
quantizers in the forward pass recovers it. The quantizers sit where spikec's
``quantize-activations`` will put its ``Quantize`` nodes, found on the torch FX graph by the same
rule (``passes/quantize_activations.py``): after every op that is not additive — LayerNorm, GELU,
softmax, a product of two activations — and after every ``Linear`` whose output reaches such an op
through view/reshape/transpose/indexing. Each one is the same clip-floor quantizer

    s = (M − m)/(L − 1),  lo = round(m/s),  q = clip(⌊x/s + ½⌋, lo, lo + L − 1),  y = s·q

with [m, M] the 0.1/99.9 percentiles of the tensor on a calibration batch (refreshed every
epoch), and a straight-through gradient inside the range (zero outside). The fine-tuned float
weights are what get exported: spikec calibrates its own quantizers on them afterwards, so the
ONNX model stays a plain float ViT.

Writes ``vit_mnist_qat{L}.pt`` / ``.onnx`` next to this file and ``results/qat{L}.json``.
"""

from __future__ import annotations

import argparse
import json
import operator
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import fx, nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from benchmarks.vit.data import EVAL, TRAIN, mnist_split  # noqa: E402
from benchmarks.vit.model import mnist_vit  # noqa: E402
from benchmarks.vit.train import SEED, WEIGHTS, shift  # noqa: E402

PERCENTILE = 99.9
# ops the SNN cannot pass increments through (spikec: _exact_rules.is_additive is False)
NONADDITIVE_MODULES = (nn.LayerNorm, nn.GELU, nn.ReLU)
NONADDITIVE_FUNCTIONS = {torch.softmax, F.softmax, F.gelu, F.layer_norm, operator.matmul, torch.matmul}
# ops that only move or pick values: a Linear seen through them still counts as the op's weighted input
SHAPE_METHODS = {"reshape", "view", "transpose", "permute", "flatten", "contiguous"}


class FakeQuant(nn.Module):
    """Clip-floor quantizer with a straight-through gradient; the range comes from :meth:`calibrate`."""

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = levels
        self.register_buffer("step", torch.ones(()))
        self.register_buffer("lo", torch.zeros(()))
        self.observe = False
        self.seen: list[torch.Tensor] = []

    def calibrate(self) -> None:
        values = torch.cat([t.flatten() for t in self.seen]).double()
        if len(values) > 1_000_000:
            values = values[torch.randperm(len(values), generator=torch.Generator().manual_seed(0))[:1_000_000]]
        m = min(float(torch.quantile(values, 1 - PERCENTILE / 100)), 0.0)
        big = max(float(torch.quantile(values, PERCENTILE / 100)), 0.0)
        step = (big - m) / (self.levels - 1) or 1.0
        self.step.fill_(step)
        self.lo.fill_(round(m / step))
        self.seen = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observe:
            self.seen.append(x.detach())
            return x
        hi = self.lo + self.levels - 1
        scaled = x / self.step
        q = torch.clamp(torch.floor(scaled + 0.5), self.lo, hi)
        inside = (scaled >= self.lo - 0.5) & (scaled <= hi + 0.5)
        # straight-through: forward is s·q, gradient passes where the value is in range
        return torch.where(inside, x, x.detach()) + (q * self.step - x).detach()


def _is_nonadditive(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), NONADDITIVE_MODULES)
    if node.op == "call_function":
        if node.target in (operator.matmul, torch.matmul):  # only a product of two activations
            return all(isinstance(a, fx.Node) for a in node.args[:2])
        return node.target in NONADDITIVE_FUNCTIONS
    return False


def _feeds_nonadditive(gm: fx.GraphModule, node: fx.Node) -> bool:
    """``node``'s value reaches a non-additive op through shape-only ops."""
    for user in node.users:
        if _is_nonadditive(gm, user):
            return True
        moves = (user.op == "call_method" and user.target in SHAPE_METHODS) or user.target is operator.getitem
        if moves and _feeds_nonadditive(gm, user):
            return True
    return False


def quantization_sites(gm: fx.GraphModule) -> list[fx.Node]:
    """The FX nodes whose outputs get a FakeQuant (the rule of spikec's quantize-activations)."""
    sites = []
    for node in gm.graph.nodes:
        weighted = node.op == "call_module" and isinstance(gm.get_submodule(str(node.target)), nn.Linear)
        if _is_nonadditive(gm, node) or (weighted and _feeds_nonadditive(gm, node)):
            sites.append(node)
    return sites


def with_fake_quant(model: nn.Module, levels: int) -> tuple[fx.GraphModule, list[FakeQuant]]:
    """``model`` traced with a FakeQuant after every quantization site (shares the model's parameters)."""
    gm = fx.symbolic_trace(model)
    quants = []
    for i, node in enumerate(quantization_sites(gm)):
        name = f"fq{i}"
        quant = FakeQuant(levels)
        gm.add_submodule(name, quant)
        quants.append(quant)
        with gm.graph.inserting_after(node):
            q = gm.graph.call_module(name, (node,))
        node.replace_all_uses_with(q, delete_user_cb=lambda user, q=q: user is not q)  # type: ignore[misc]
    gm.recompile()
    return gm, quants


def calibrate(gm: fx.GraphModule, quants: list[FakeQuant], x: torch.Tensor) -> None:
    for q in quants:
        q.observe = True
    with torch.no_grad():
        for i in range(0, len(x), 256):
            gm(x[i : i + 256])
    for q in quants:
        q.observe = False
        q.calibrate()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 500]).argmax(-1) for i in range(0, len(x), 500)])
    return float((pred == y).double().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--levels", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--calib", type=int, default=512, help="calibration images from the training split")
    args = p.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    x, y = (torch.as_tensor(a) for a in mnist_split(TRAIN))
    ex, ey = (torch.as_tensor(a) for a in mnist_split(EVAL))
    model = mnist_vit()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    model.eval()
    gm, quants = with_fake_quant(model, args.levels)
    calib = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: args.calib]]
    calibrate(gm, quants, calib)
    before = {"float": accuracy(model, ex, ey), "fake_quant": accuracy(gm, ex, ey)}
    print(f"{len(quants)} quantizers at L={args.levels}; before: {before}", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps = args.epochs * ((len(x) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        gm.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), args.batch):
            idx = order[i : i + args.batch]
            loss = F.cross_entropy(gm(shift(x[idx], gen)), y[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        gm.eval()
        calibrate(gm, quants, calib)
        print(
            f"epoch {epoch + 1}/{args.epochs}: loss {total / len(x):.4f}, float {accuracy(model, ex, ey):.4f}, "
            f"fake-quant {accuracy(gm, ex, ey):.4f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    model.eval()
    after = {"float": accuracy(model, ex, ey), "fake_quant": accuracy(gm, ex, ey)}
    stem = HERE / f"vit_mnist_qat{args.levels}"
    torch.save(model.state_dict(), stem.with_suffix(".pt"))
    with torch.no_grad():
        torch.onnx.export(
            model, (torch.zeros(1, 1, 28, 28),), str(stem.with_suffix(".onnx")), dynamo=True, opset_version=18,
            input_names=["image"], output_names=["logits"], external_data=False,
        )  # fmt: skip
    result = {
        "levels": args.levels, "epochs": args.epochs, "lr": args.lr, "quantizers": len(quants),
        "train_seconds": round(time.perf_counter() - start, 1), "before": before, "after": after,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"qat{args.levels}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
