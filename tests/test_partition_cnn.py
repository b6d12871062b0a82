"""The proven bound on convolutions (passes/_bounds.ConvView) for a ResNet-18 downsampling block lowered to Loihi 2:
kernel copies per position block, position re-reads and channel-block fan-out (its shortcut relayed), checked by
hand and against the placement (no placement beats it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from corpus import cnn
from torch import nn

from spikec.convert import convert
from spikec.demand import layer_demands
from spikec.models import load_model
from spikec.passes._bounds import conv_view
from spikec.passes.partition import partition_graph
from spikec.pipeline import PassManager
from spikec.resources import resource_model

LOWER = ["fuse", "fold-batchnorm", "fuse-spiking-attention", "flatten-tokens",
         "quantize{target=loihi2,reset_to_zero=true,timesteps=64}"]  # fmt: skip


def test_a_downsampling_residual_block_is_bounded_by_its_kernels_and_relayed_shortcut(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(cnn.conv_bn(3, 64, 3), cnn.BasicBlock(64, 128, 2)).eval()
    path = tmp_path / "block.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(path), dynamo=False)
    calib = np.random.default_rng(0).normal(size=(4, 3, 16, 16)).astype(np.float32)
    float_snn, _ = convert(load_model(path), calib, timesteps=16, measure_rates=False)
    low = PassManager(LOWER).run(float_snn)
    loihi = resource_model("loihi2")
    capacity = loihi.capacity()
    block = next(layer for layer in layer_demands(low, loihi) if len(layer.connections) == 2)
    view = conv_view(block, capacity)
    assert view is not None and block.shape == (128, 8, 8)
    # conv2 (128 -> 128, 3x3) + the 1x1 stride-2 projection shortcut (64 inputs), both shared kernels of b1 and
    # b2 bits per weight: the shortcut, one synapse shorter than the body, reads its source through a relay layer
    # (targets/loihi2/delay_relay.py) rather than as Lava's DelaySparse (a weight and a delay per synapse)
    shared = {128 * 9 * b1 + 64 * b2 for b1 in range(1, 9) for b2 in range(1, 9)}
    assert view.kernel_bits in shared and view.neuron_bits == 0
    assert view.inputs == 128 + 64 and view.t_max == 8192 // 192 == 42
    assert view.k_max == min(128, 1_048_576 // (view.kernel_bits + view.neuron_bits))
    # memory: a core holds <= 42 positions, so each channel's kernel is stored >= 64/42 times per 64 positions
    whole = block.demand(block.box, 0)[2]
    floor = block.size * (view.kernel_bits / 42 + view.neuron_bits)
    assert floor > whole == 128 * view.kernel_bits + block.size * view.neuron_bits
    cm = partition_graph(low, "loihi2")
    assert cm.lower_bound <= cm.proven_bound <= cm.cores_used
    assert cm.proven_bound_by_resource["synaptic_memory_bits"] >= cm.bound_by_resource["synaptic_memory_bits"]
