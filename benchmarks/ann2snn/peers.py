"""Peer side of the ANN→SNN conversion benchmark: sinabs and SpikingJelly on the same models,
calibration images and time steps as spikec's conversion.

Run in the peer environment (``make bench-env``), from the repository root::

    benchmarks/.venv-peers/bin/python benchmarks/ann2snn/peers.py

It writes ``benchmarks/ann2snn/results/peers.json``. Protocol (shared with the spikec side):
MNIST test set, the first 1,000 images calibrate, the remaining 9,000 evaluate; raw 0..255
pixels; T in {4, 8, 16, 32, 64}. The SNN's class at T is the argmax of its output layer summed over
steps 1..T. Each batch is simulated once from reset for max(T) steps, and the accuracy at every T is
read at step T of that run: a network's state at step T does not depend on later steps, so this is the
same as a separate T-step run (SpikingJelly's own MNIST example reads its accuracies the same way).
``seconds`` for a T is the wall time spent simulating steps 1..T over all 9,000 images.

A peer that cannot be imported or run gets records with ``accuracy: null`` and the exact error
text; nothing is estimated.
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # SpikingJelly's calibration loop wraps the loader in tqdm

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models as M

RESULTS = Path(__file__).resolve().parent / "results" / "peers.json"
BATCH = 1000  # images simulated together, one time step per call
Encoder = Callable[[torch.Tensor, int], torch.Tensor]  # (raw images, step) -> network input at that step


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def relu_param_pairs(net: nn.Sequential) -> tuple[list[str], list[str]]:
    """(ReLU child names, name of the parameterised child feeding each ReLU) of a flat Sequential."""
    outputs, params = [], []
    last_param = None
    for name, child in net.named_children():
        if any(True for _ in child.parameters(recurse=False)):
            last_param = name
        if isinstance(child, nn.ReLU):
            if last_param is None:
                raise ValueError(f"ReLU {name} has no parameterised layer before it")
            outputs.append(name)
            params.append(last_param)
    return outputs, params


# --------------------------------------------------------------------------------------------- peers


@dataclass
class Peer:
    """One peer configuration. ``convert`` runs once per model (normalisation/calibration on the 1,000
    calibration images) and returns the network to simulate plus notes; ``simulate`` runs one batch from
    reset for T steps, yielding the output summed over steps 1..t after every step t."""

    name: str
    dist: str  # PyPI distribution whose version is reported
    description: str  # normalisation / neuron / reset
    input_encoding: str
    convert: Callable[[nn.Module, torch.Tensor, np.ndarray, np.ndarray], tuple[nn.Module, dict[str, Any]]]
    simulate: Callable[[nn.Module, torch.Tensor, int, Encoder], Iterator[torch.Tensor]]
    encoder: Callable[[], Encoder]  # a fresh encoder per (model, peer) run


# sinabs ---------------------------------------------------------------------------------------------

SINABS_PERCENTILE = 99.0  # sinabs.utils.normalize_weights' default


def sinabs_convert(
    ann: nn.Module, calib: torch.Tensor, eval_x: np.ndarray, eval_y: np.ndarray
) -> tuple[nn.Module, dict[str, Any]]:
    """sinabs' documented recipe (its docs/tutorials/weight_scaling.md): normalise the ANN's activations with
    ``sinabs.utils.normalize_weights`` on the calibration images, then ``sinabs.from_model``."""
    import sinabs.utils

    norm = copy.deepcopy(ann).eval()
    assert isinstance(norm, nn.Sequential)
    outputs, params = relu_param_pairs(norm)
    sinabs.utils.normalize_weights(
        norm, calib, output_layers=outputs, param_layers=params, percentile=SINABS_PERCENTILE
    )
    notes = {
        "normalize_weights": {"output_layers": outputs, "param_layers": params, "percentile": SINABS_PERCENTILE},
        # normalize_weights rescales each layer's weights *and bias* by 1/percentile of that layer's output as
        # seen after the earlier layers were rescaled, so a bias meets inputs scaled by 1/λ_{l-1} but is not
        # multiplied by λ_{l-1}: exact for bias-free nets, a changed network otherwise. Measured here:
        "normalized_ann_accuracy": M.ann_accuracy(norm, eval_x, eval_y),
    }
    snn = sinabs_stepper(norm)
    # Step-by-step calls vs sinabs' native time-flattened call, T=8, 200 evaluation images, direct input.
    x = torch.from_numpy(eval_x[:200])
    with torch.no_grad():
        *_, stepped = sinabs_simulate(snn, x, 8, direct)
        native = sinabs_time_flattened(norm, x, 8)
    notes["stepwise_vs_native_T8"] = {
        "max_abs_diff": float((stepped - native).abs().max()),
        "max_abs_output": float(native.abs().max()),
        "argmax_agree": f"{int((stepped.argmax(1) == native.argmax(1)).sum())}/200",
    }
    return snn, notes


def sinabs_stepper(norm: nn.Module) -> nn.Module:
    """The converted network, fed one time step per call (its IAF states persist between calls until
    ``sinabs.reset_states``); see ``sinabs_time_flattened`` for the check that this equals sinabs' native
    (batch×time)-flattened simulation."""
    import sinabs

    # from_model defaults: IAFSqueeze, spike_threshold=1.0, spike_fn=MultiSpike, reset_fn=MembraneSubtract,
    # min_v_mem=-1.0, add_spiking_output=False (the last Linear's output is read out, summed over time).
    net = sinabs.from_model(copy.deepcopy(norm), input_shape=(1, 28, 28), num_timesteps=1)
    return net.spiking_model.eval()


def sinabs_time_flattened(norm: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    """sinabs' native way (its MNIST tutorial): one call on (batch×T, ...) input; summed output (batch, 10)."""
    import sinabs

    snn = sinabs.from_model(copy.deepcopy(norm), input_shape=(1, 28, 28), num_timesteps=T).spiking_model.eval()
    sinabs.reset_states(snn)
    B = x.shape[0]
    out = snn(x.unsqueeze(1).expand(B, T, *x.shape[1:]).reshape(B * T, *x.shape[1:]))
    return out.unflatten(0, (B, T)).sum(1)


def sinabs_simulate(snn: nn.Module, x: torch.Tensor, T: int, encode: Encoder) -> Iterator[torch.Tensor]:
    import sinabs

    sinabs.reset_states(snn)
    out = torch.zeros(())
    for t in range(T):
        out = out + snn(encode(x, t))
        yield out


def direct(x: torch.Tensor, t: int) -> torch.Tensor:
    return x


def make_bernoulli(seed: int) -> Encoder:
    gen = torch.Generator().manual_seed(seed)

    def encode(x: torch.Tensor, t: int) -> torch.Tensor:
        # The sinabs MNIST tutorial's encoding: a spike with probability pixel/255 at each step. The spike
        # carries 255 so that the expected input equals the raw-pixel input the ANN was normalised with.
        return (torch.rand(x.shape, generator=gen) < x / 255.0).to(x.dtype) * 255.0

    return encode


# SpikingJelly ---------------------------------------------------------------------------------------


def make_spikingjelly_convert(mode: str) -> Callable[..., tuple[nn.Module, dict[str, Any]]]:
    def convert(
        ann: nn.Module, calib: torch.Tensor, eval_x: np.ndarray, eval_y: np.ndarray
    ) -> tuple[nn.Module, dict[str, Any]]:
        from spikingjelly.activation_based import ann2snn

        # One calibration batch of all 1,000 images: the VoltageHook's momentum average then reduces to the
        # statistic (max or percentile) over exactly the calibration set.
        recipe = ann2snn.RateCodingRecipe(dataloader=[calib], mode=mode)
        snn = ann2snn.Converter(recipe, device="cpu").convert(copy.deepcopy(ann))
        scales = {
            name: float(m.scale)
            for name, m in snn.named_modules()
            if type(m).__name__ == "VoltageScaler" and name.endswith("scaler1")
        }
        return snn.eval(), {"recipe": f"RateCodingRecipe(mode={mode!r})", "thresholds": scales}

    return convert


def spikingjelly_simulate(snn: nn.Module, x: torch.Tensor, T: int, encode: Encoder) -> Iterator[torch.Tensor]:
    from spikingjelly.activation_based import functional

    functional.reset_net(snn)
    out = torch.zeros(())
    for t in range(T):
        out = out + snn(encode(x, t))
        yield out


PEERS = [
    Peer(
        name="sinabs",
        dist="sinabs",
        description=(
            f"sinabs.utils.normalize_weights(percentile={SINABS_PERCENTILE}) on the calibration images, then "
            "sinabs.from_model defaults: IAFSqueeze, threshold 1, MultiSpike (several spikes per step allowed), "
            "MembraneSubtract (soft reset), min_v_mem -1; MaxPool/AvgPool left as is on spikes; readout: sum of "
            "the last Linear's outputs over T"
        ),
        input_encoding="direct: the raw 0..255 image as input current at every step",
        convert=sinabs_convert,
        simulate=sinabs_simulate,
        encoder=lambda: direct,
    ),
    Peer(
        name="sinabs-bernoulli",
        dist="sinabs",
        description="as 'sinabs' (same normalised network), with the sinabs MNIST tutorial's rate-coded input",
        input_encoding="rate: Bernoulli spike with p = pixel/255 per step (spike value 255), torch seed 0",
        convert=sinabs_convert,
        simulate=sinabs_simulate,
        encoder=lambda: make_bernoulli(0),
    ),
    Peer(
        name="spikingjelly-max",
        dist="spikingjelly",
        description=(
            "ann2snn.Converter(RateCodingRecipe(mode='max')): each ReLU -> VoltageScaler(1/s) -> IFNode(threshold 1, "
            "v_reset=None: soft reset, one spike per step) -> VoltageScaler(s), s = max ReLU output on the "
            "calibration images; MaxPool left as is on scaled spikes; readout: sum of the last Linear over T"
        ),
        input_encoding="direct: the raw 0..255 image as input current at every step",
        convert=make_spikingjelly_convert("max"),
        simulate=spikingjelly_simulate,
        encoder=lambda: direct,
    ),
    Peer(
        name="spikingjelly-99.9%",
        dist="spikingjelly",
        description="as 'spikingjelly-max' with s = 99.9th percentile (the 'robust' mode of its MNIST example)",
        input_encoding="direct: the raw 0..255 image as input current at every step",
        convert=make_spikingjelly_convert("99.9%"),
        simulate=spikingjelly_simulate,
        encoder=lambda: direct,
    ),
]


# --------------------------------------------------------------------------------------------- driver


def error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).strip()


def evaluate(peer: Peer, snn: nn.Module, x: np.ndarray, y: np.ndarray, Ts: list[int]) -> dict[int, tuple[int, float]]:
    """Correct count and cumulative simulation seconds at each T in ``Ts``."""
    encode = peer.encoder()
    correct = dict.fromkeys(Ts, 0)
    seconds = dict.fromkeys(Ts, 0.0)
    with torch.no_grad():
        for i in range(0, len(x), BATCH):
            xb, yb = torch.from_numpy(x[i : i + BATCH]), y[i : i + BATCH]
            t0 = time.perf_counter()
            for t, out in enumerate(peer.simulate(snn, xb, max(Ts), encode), start=1):
                if t in correct:
                    seconds[t] += time.perf_counter() - t0
                    correct[t] += int((out.argmax(1).numpy() == yb).sum())
    return {T: (correct[T], seconds[T]) for T in Ts}


def markdown_tables(report: dict[str, Any]) -> str:
    """Accuracy (%) and simulation-seconds tables, model × peer rows, T columns, from a peers.json report."""
    Ts = report["protocol"]["T"]
    ann = {a["model"]: a["accuracy"] for a in report["ann"]}
    rows: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for r in report["results"]:
        rows.setdefault((r["model"], r["peer"]), {})[r["T"]] = r
    head = "| model | peer | " + " | ".join(f"T={T}" for T in Ts) + " |\n|---|---|" + "---:|" * len(Ts) + "\n"
    acc = head.replace("| model | peer |", "| model | peer (ANN) |")
    secs = head
    for (model, peer), by_T in rows.items():
        cells = [by_T[T]["accuracy"] for T in Ts]
        acc += (
            f"| {model} | {peer} ({100 * ann[model]:.2f}) | "
            + " | ".join("error" if c is None else f"{100 * c:.2f}" for c in cells)
            + " |\n"
        )
        secs += (
            f"| {model} | {peer} | "
            + " | ".join("—" if by_T[T]["seconds"] is None else f"{by_T[T]['seconds']:.0f}" for T in Ts)
            + " |\n"
        )
    return f"Accuracy (%), {report['protocol']['n_eval']} evaluation images\n\n{acc}\nSimulation seconds\n\n{secs}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="*", default=list(M.MODELS), choices=list(M.MODELS))
    ap.add_argument("--peers", nargs="*", default=[p.name for p in PEERS], choices=[p.name for p in PEERS])
    ap.add_argument("--T", nargs="*", type=int, default=list(M.TIME_STEPS))
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N of the 9,000 (smoke runs)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--table", action="store_true", help="print markdown tables of the --out report and exit")
    args = ap.parse_args(argv)
    if args.table:
        print(markdown_tables(json.loads(args.out.read_text())))
        return 0

    images, labels = M.load_mnist_test()
    calib_np, (eval_x, eval_y) = M.split_calib_eval(images, labels)
    if args.limit is not None:
        eval_x, eval_y = eval_x[: args.limit], eval_y[: args.limit]
    calib = torch.from_numpy(calib_np)

    report: dict[str, Any] = {
        "protocol": {
            "data": "MNIST t10k (../shared/data/mnist), raw 0..255 pixels, shape (N,1,28,28)",
            "calibration": f"test images [0, {M.N_CALIB})",
            "evaluation": f"test images [{M.N_CALIB}, {M.N_CALIB + len(eval_x)})",
            "n_eval": len(eval_x),
            "T": args.T,
            "readout": "argmax of the output layer summed over steps 1..T, read at step T of one max(T)-step run",
            "batch": BATCH,
        },
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            # Other processes on the machine slow the timings down; the 1-minute load average says how busy it was.
            "loadavg_start": os.getloadavg()[0],
        },
        "ann": [],
        "results": [],
    }

    for model_name in args.models:
        ann = M.MODELS[model_name]()
        entry: dict[str, Any] = {
            "model": model_name,
            "accuracy": M.ann_accuracy(ann, eval_x, eval_y),
            "accuracy_full_test_set": M.ann_accuracy(ann, images, labels),
        }
        if model_name == "onnx-mnist-conv":
            entry["onnxruntime_check"] = M.check_onnx_mnist_conv(ann, images[:200])
        report["ann"].append(entry)
        print(f"[{model_name}] ANN accuracy {entry['accuracy']:.4f} on {len(eval_x)} eval images", flush=True)

        for peer in (p for p in PEERS if p.name in args.peers):
            base = {
                "model": model_name,
                "peer": peer.name,
                "peer_version": version(peer.dist),
                "method": peer.description,
                "input_encoding": peer.input_encoding,
            }
            t0 = time.perf_counter()
            try:
                converted, notes = peer.convert(ann, calib, eval_x, eval_y)
            except Exception as exc:  # recorded verbatim, never estimated
                err = error_text(exc)
                print(f"[{model_name}] {peer.name}: conversion failed\n{err}", flush=True)
                for T in args.T:
                    report["results"].append({**base, "T": T, "accuracy": None, "seconds": None, "error": err})
                continue
            convert_s = time.perf_counter() - t0
            try:
                by_T = evaluate(peer, converted, eval_x, eval_y, args.T)
            except Exception as exc:
                err = error_text(exc)
                print(f"[{model_name}] {peer.name}: simulation failed\n{err}", flush=True)
                by_T = {T: (None, None) for T in args.T}
            else:
                err = None
            for T in args.T:
                correct, secs = by_T[T]
                acc = None if correct is None else correct / len(eval_x)
                report["results"].append(
                    {
                        **base,
                        "T": T,
                        "accuracy": acc,
                        "correct": correct,
                        "seconds": None if secs is None else round(secs, 2),
                        "convert_seconds": round(convert_s, 2),
                        "notes": notes,
                        "error": err,
                    }
                )
                if acc is not None:
                    print(f"[{model_name}] {peer.name:20s} T={T:3d}  acc {acc:.4f}  {secs:7.1f}s", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1) + "\n")  # partial results survive a crash

    report["environment"]["loadavg_end"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
