"""Fan-in splitting on the layers that do not fit a Loihi 2 core: VGG-11's classifier (first FC 25,088 -> 4,096)
and ResNet-50's and DenseNet-121's readouts (global average pool + FC, 100,352 and 50,176 -> 1,000).

Each model is built in torch with random weights (the layers named, fed by a layer of neurons of the shape the
real network has there: a depthwise 2x2/stride-2 convolution, as VGG's last max-pool, or 1x1, as the last
block's output), exported by torch.onnx, converted (percentile, T=32) and lowered with the loihi2 pipeline:
quantize, split-fanin, partition. Reported per model: time per pass, cores against the lower bound of the
model before splitting (every weight, presynaptic neuron and routed neuron once) and of the split model,
relays, and peak RSS. The table is in targets/loihi2/docs/loihi2-mapping.md ("Fan-in splitting").

.venv/bin/python benchmarks/fanin/measure.py [NAME ...] [--group N] [--json results/fanin.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikec.demand import layer_demands
from spikec.methods import ConversionOptions, choose_method
from spikec.models import load_model
from spikec.passes._bounds import resource_bound
from spikec.pipeline import PassManager
from spikec.plugins import load_target
from spikec.resources import resource_model

T = 32


def vgg11_classifier() -> tuple[nn.Module, tuple[int, ...]]:
    """VGG-11's last pool (a depthwise 2x2/2 conv on 512x14x14) and its classifier 25,088 -> 4,096 -> 4,096 -> 1,000."""
    pool = nn.Conv2d(512, 512, 2, stride=2, groups=512)
    head = [nn.Linear(25088, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000)]
    return nn.Sequential(pool, nn.ReLU(), nn.Flatten(), *head), (512, 14, 14)


def readout(channels: int) -> Callable[[], tuple[nn.Module, tuple[int, ...]]]:
    def build() -> tuple[nn.Module, tuple[int, ...]]:
        last = nn.Conv2d(channels, channels, 1, groups=channels)  # the last block's output neurons
        pool = nn.AvgPool2d(7)  # global average pooling of the 7x7 map, as an AveragePool
        return nn.Sequential(last, nn.ReLU(), pool, nn.Flatten(), nn.Linear(channels, 1000)), (channels, 7, 7)

    return build


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[int, ...]]]] = {
    "vgg11-classifier": vgg11_classifier,
    "resnet50-readout": readout(2048),
    "densenet121-readout": readout(1024),
}


def measure(name: str, group: int) -> dict[str, object]:
    torch.manual_seed(0)
    module, shape = MODELS[name]()
    module.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.onnx"
        torch.onnx.export(module, (torch.rand(1, *shape),), path, dynamo=True, external_data=False)
        graph = load_model(path)
    calib = (np.random.default_rng(0).random((8, *shape)) < 0.2).astype(np.float32)
    start = time.perf_counter()
    snn, _ = choose_method("percentile", True).convert(graph, calib, ConversionOptions(timesteps=T), rates=False)
    seconds = {"convert": time.perf_counter() - start}
    options = ["quantize.reset_to_zero=true", "quantize.max_rel_error=0.35", f"split-fanin.group={group}"]
    steps = load_target("loihi2").pipeline(options)
    results: dict[str, object] = {}
    clock = [time.perf_counter()]

    def observe(step: str, result: object) -> None:
        now = time.perf_counter()
        seconds[step] = now - clock[0]
        clock[0] = now
        results[step] = result

    for step in steps:  # one by one, so the graph before split-fanin is at hand for its lower bound
        if step.startswith("split-fanin"):
            model = resource_model("loihi2")
            before = resource_bound(layer_demands(snn, model), model.capacity())
        clock[0] = time.perf_counter()
        snn = PassManager([step]).run(snn, observe=observe)
    core_map = results["partition"].core_map  # type: ignore[attr-defined]
    split = results["split-fanin"].report  # type: ignore[attr-defined]
    lower = max(before.values())
    row = {
        "model": name,
        "cores": core_map.cores_used,
        "chips": core_map.chips_used,
        "lower_bound_unsplit": lower,
        "binding_unsplit": max(before, key=lambda r: before[r]),
        "lower_bound_split": core_map.lower_bound,
        "tile_bound_split": core_map.tile_bound,
        "over_unsplit_percent": round(100 * (core_map.cores_used / lower - 1), 1),
        "group": split["group"],
        "relays": sum(s["relays"] for layer in split["split"] for s in layer["synapses"]),
        "split": [(layer["layer"], s["fan_in"]) for layer in split["split"] for s in layer["synapses"]],
        "latency_added": split["latency_added"],
        "seconds": {k.split("{")[0]: round(v, 1) for k, v in seconds.items()},
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", default=list(MODELS))
    parser.add_argument("--group", type=int, default=0, help="split-fanin{group=N} (0: a quarter of a core's axons)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    rows = []
    for name in args.names:
        row = measure(name, args.group)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
