r"""The binary-spike path on the trained binary ViT: float accuracy, then SNN accuracy per T.

    .venv/bin/python benchmarks/vit/binary_snn.py [--timesteps 4 8 16 32] [--eval 2000] [--calib 512]
        [--json benchmarks/vit/results/binary_snn.json]

``evaluate_float()`` (run by ``train.py --arch binary``): the float accuracy of ``vit_binary_mnist``
on the 2,000 held-out images with torch (BatchNorm unfolded), onnxruntime and spikec's interpreter
(BatchNorm folded into the Linear layers before export; all three must agree).

``main``: ``spikec.convert_binary`` calibrates on ``--calib`` images drawn (seeded) from the training
split and converts; one SNN run of max(T) steps gives, at every T, the accuracy on the last ``--eval``
held-out images, the agreement with the float ANN's predictions, and for each attention node the
*product error*: the SNN's time-averaged per-step product :math:`\overline{q_t k_t^\top v_t}\,s'`
against the same product of its own time-averaged rates :math:`\bar q\,\bar k^\top \bar v\,s'`
(:math:`\sum|\cdot - \cdot| / \sum|\bar q \bar k^\top \bar v|`): the part of the conversion error
that comes from multiplying spike trains step by step rather than their rates.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from benchmarks.vit.data import EVAL, TRAIN, mnist_split  # noqa: E402

WEIGHTS = HERE / "vit_binary_mnist.pt"
ONNX = HERE / "vit_binary_mnist.onnx"


def evaluate_float() -> dict[str, Any]:
    """Float accuracy on the 2,000 held-out images with torch, onnxruntime and spikec (must agree)."""
    import onnxruntime as ort
    import torch

    from benchmarks.vit.model import BinaryViT
    from spikec.frontends.onnx import import_onnx
    from spikec.interp import evaluate

    x, y = mnist_split(EVAL)
    model = BinaryViT()
    model.load_state_dict(torch.load(WEIGHTS, weights_only=True))
    with torch.no_grad():
        logits = {"torch": model.eval()(torch.as_tensor(x)).numpy()}
    session = ort.InferenceSession(str(ONNX), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits["onnxruntime"] = np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
    graph = import_onnx(ONNX)
    out = graph.outputs[0]
    logits["spikec"] = np.concatenate([evaluate(graph, x[i : i + 250]).outputs[out] for i in range(0, len(x), 250)])
    result: dict[str, Any] = {"images": len(x)}
    scale = np.abs(logits["torch"]).max(axis=1, keepdims=True)
    for key, value in logits.items():
        result[f"{key}_accuracy"] = float((value.argmax(1) == y).mean())
        if key != "torch":
            result[f"{key}_max_logit_error"] = float((np.abs(value - logits["torch"]) / scale).max())
            result[f"{key}_same_predictions"] = bool(np.array_equal(value.argmax(1), logits["torch"].argmax(1)))
    return result


def attention_product(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int, scale: float) -> np.ndarray:
    """``concat_h(Q_h K_hᵀ V_h)·s`` for (B, N, D) arrays (the SpikingSelfAttention equation)."""
    b, n, d = q.shape
    split = [t.reshape(b, t.shape[1], heads, d // heads).transpose(0, 2, 1, 3) for t in (q, k, v)]
    y = (split[0] @ split[1].transpose(0, 1, 3, 2)) @ split[2] * scale
    return y.transpose(0, 2, 1, 3).reshape(b, n, d)


def main(argv: list[str] | None = None) -> int:
    from spikec.coding import simulate
    from spikec.convert_binary import convert_binary
    from spikec.frontends.onnx import import_onnx
    from spikec.interp import evaluate

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=ONNX)
    p.add_argument("--timesteps", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--calib", type=int, default=512, help="calibration images drawn from the training split")
    p.add_argument("--eval", type=int, default=2000, help="evaluate on the last N of the 2,000 held-out images")
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument(
        "--phases", choices=["random", "aligned"], default="aligned", help="attention-phases (random) or not"
    )
    p.add_argument("--attention", choices=["compensated", "per-step"], default="compensated")
    p.add_argument("--backend", default="numpy")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)

    train_x, _ = mnist_split(TRAIN)
    calib = train_x[np.random.default_rng(0).choice(len(train_x), args.calib, replace=False)]
    x, y = mnist_split(EVAL)
    x, y = x[-args.eval :], y[-args.eval :]
    graph = import_onnx(args.model)
    horizon = max(args.timesteps)
    start = time.perf_counter()
    snn, report = convert_binary(
        graph,
        calib,
        timesteps=horizon,
        percentile=args.percentile,
        phases=args.phases,
        attention=args.attention,
        measure_rates=False,
    )
    convert_seconds = time.perf_counter() - start
    out = graph.outputs[0]
    attention = {a["name"]: a for a in report.attention}
    operands = {name: [e.src for e in snn.in_edges(name)] for name in attention}
    counted = sorted({*attention, *(s for srcs in operands.values() for s in srcs)})
    ann_pred, answers, sums = [], [], {n: [] for n in counted}
    start = time.perf_counter()
    for i in range(0, len(x), args.batch_size):
        batch = x[i : i + args.batch_size]
        ann_pred.append(evaluate(graph, batch).outputs[out].argmax(-1))
        sim = simulate(snn, batch, timesteps=horizon, count=counted, backend=args.backend, batch_size=len(batch))
        answers.append(sim.answers[out].argmax(-1))  # (T, B)
        for n in counted:
            sums[n].append(sim.counts[n] / horizon)
        print(f"  {i + len(batch)}/{len(x)} images ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    snn_seconds = time.perf_counter() - start
    ann = np.concatenate(ann_pred)
    pred = np.concatenate(answers, axis=1)
    means = {n: np.concatenate(v) for n, v in sums.items()}
    products = {}
    for name, a in attention.items():
        q, k, v = (means[s] for s in operands[name])
        of_rates = attention_product(q, k, v, a["heads"], a["scale"])
        products[name] = {
            "origin": a["origin"],
            "scale": a["scale"],
            "product_error": float(np.abs(means[name] - of_rates).sum() / max(np.abs(of_rates).sum(), 1e-30)),
            "mean_ratio": float(means[name].sum() / max(of_rates.sum(), 1e-30)),
        }
    result = {
        "model": args.model.name,
        "images": len(x),
        "calibration_images": len(calib),
        "percentile": args.percentile,
        "encoding": "direct current into an IF encoding layer (spike-input)",
        "phases": args.phases,
        "attention": args.attention,
        "ann_accuracy": float((ann == y).mean()),
        "snn": {
            str(t): {"accuracy": float((pred[t - 1] == y).mean()), "agreement": float((pred[t - 1] == ann).mean())}
            for t in args.timesteps
        },
        "attention_products": products,
        "binary_spikes": report.binary_spikes,
        "convert_seconds": round(convert_seconds, 1),
        "snn_seconds": round(snn_seconds, 1),
    }
    print(f"float ANN {100 * result['ann_accuracy']:.2f}% on {len(x)} images")
    for t, r in result["snn"].items():
        print(f"  T={t:>3}: SNN {100 * r['accuracy']:.2f}%, agrees with the ANN on {100 * r['agreement']:.1f}%")
    for name, r in products.items():
        print(f"  {name}: product error {r['product_error']:.3f}, mean ratio {r['mean_ratio']:.3f} (T={horizon})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
