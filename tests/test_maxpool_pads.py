"""MaxPool of any pads, dilation and ceil mode: converted like the symmetric case (rate-maxpool's counts, Loihi's OR
layer) or refused with the reason; never pooled silently as raw spikes. The asymmetric case is Caffe2's
``pads = [0, 0, 1, 1]`` as zoo exports carry it, built with onnx.helper."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from spikec.cli import main
from spikec.coding import simulate
from spikec.convert import convert
from spikec.data.mnist import load_mnist
from spikec.errors import PassError
from spikec.frontends.onnx import import_onnx as load_onnx
from spikec.interp import evaluate
from spikec.ir import Graph, Input, Output, spatial
from spikec.targets.loihi2.or_pool import or_conv

STEPS = 32


def _pool_net(path: Path, pads: list[int], *, dilations: list[int] | None = None, ceil: int = 0) -> Path:
    """conv3x3(1→8) relu maxpool(k3, s2, pads) conv3x3(8→16) relu maxpool(k2, s2) gemm(→10), 28×28 input."""
    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(0, 0.4, (8, 1, 3, 3)), "b1": rng.normal(0, 0.05, 8),
        "w2": rng.normal(0, 0.15, (16, 8, 3, 3)), "b2": rng.normal(0, 0.05, 16),
        "w3": rng.normal(0, 0.1, (10, 16 * 7 * 7)), "b3": np.zeros(10),
    }  # fmt: skip
    pool = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": pads, "ceil_mode": ceil}
    if dilations:
        pool["dilations"] = dilations
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", **pool),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2], name="pool2"),
        helper.make_node("Flatten", ["p2"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "pool_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _agreement(graph: Graph, x: np.ndarray, **options: object) -> float:
    """ANN-vs-SNN argmax agreement after STEPS steps of the converted SNN."""
    snn, report = convert(graph, x[:64], timesteps=STEPS, measure_rates=False, **options)  # type: ignore[arg-type]
    wanted = next(iter(evaluate(graph, x).outputs.values())).argmax(-1)
    sim = simulate(snn, x, timesteps=STEPS, encoding=report.encoding, decoding=report.decoding,
                   scale=report.input_scale, seed=0)  # fmt: skip
    got = next(iter(sim.answers.values()))[-1].argmax(-1)
    return float(np.mean(got == wanted))


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "pads", "ceil"),
    [((3, 3), (2, 2), (1, 1), (0, 0, 1, 1), 0), ((3, 2), (2, 1), (1, 1), (1, 0, 0, 1), 1),
     ((2, 2), (2, 2), (2, 1), (0, 1, 1, 0), 0), ((3, 3), (3, 2), (1, 2), (2, 0, 0, 2), 1)],
)  # fmt: skip
def test_the_or_layer_conv_is_the_max_pool_of_spikes(
    kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int], pads: tuple[int, ...], ceil: int
) -> None:
    """Loihi's OR layer (a symmetric-padded depthwise conv of 0/1 taps, fire on > 0) equals the pool on 0/1 spikes."""
    pool = spatial.Pool(mode="max", kernel_size=kernel, stride=stride, dilation=dilation, pads=pads, ceil_mode=ceil)
    spikes = (np.random.default_rng(1).random((40, 3, 9, 8)) < 0.2).astype(np.float64)
    graph = Graph({"x": Input(shape=(3, 9, 8)), "p": pool, "y": Output()}, [("x", "p"), ("p", "y")])
    wanted = evaluate(graph, spikes).outputs["y"]
    window = or_conv(pool, (3, 9, 8))
    from spikec.ir import Conv

    conv = Conv(weight=window.weight.astype(np.float64), stride=window.stride, padding=window.padding, groups=3)
    counts = evaluate(Graph({"x": Input(shape=(3, 9, 8)), "c": conv, "y": Output()}, [("x", "c"), ("c", "y")]), spikes)
    assert np.array_equal((counts.outputs["y"] > 0).astype(np.float64), wanted)


@pytest.mark.slow
def test_asymmetric_pads_agree_like_symmetric_ones(data_dir: Path, tmp_path: Path) -> None:
    """The same weights with Caffe2's pads [0,0,1,1] and with [1,1,1,1] (same output size): the SNNs agree with
    their ANNs alike, with the counted max (rate) and with Loihi's OR of spikes, reset to zero."""
    images, _ = load_mnist(data_dir / "mnist")
    x = images[:128, None].astype(np.float64) / 255.0
    asym = load_onnx(_pool_net(tmp_path / "asym.onnx", [0, 0, 1, 1]))
    sym = load_onnx(_pool_net(tmp_path / "sym.onnx", [1, 1, 1, 1]))
    assert any(isinstance(n, spatial.Pool) for n in asym.nodes.values())  # imported as the general pool
    measured = {}
    for maxpool, extra in (("rate", {}), ("spikes", {"reset": "zero", "init": 0.0, "threshold": 1.0})):
        a, s = _agreement(asym, x, maxpool=maxpool, **extra), _agreement(sym, x, maxpool=maxpool, **extra)
        measured[maxpool] = (a, s)
    rate, spikes = measured["rate"], measured["spikes"]
    assert rate[0] >= rate[1] - 0.03 and min(rate) >= 0.9, measured
    # the OR of spikes over-estimates the max either way (docs/conversion.md); 128 samples: s.e. about 0.04
    assert spikes[0] >= spikes[1] - 0.08, measured
    print(f"\nagreement at T={STEPS}, asymmetric vs symmetric pads: {measured}")


def test_a_dilated_max_pool_is_refused_by_rate_maxpool_with_the_reason(tmp_path: Path) -> None:
    graph = load_onnx(_pool_net(tmp_path / "dil.onnx", [2, 2, 2, 2], dilations=[2, 2]))
    x = np.random.default_rng(0).random((16, 1, 28, 28))
    with pytest.raises(PassError, match=r"'pool1'.*dilation \(2, 2\).*--maxpool spikes"):
        convert(graph, x, timesteps=8)
    snn, _ = convert(graph, x, timesteps=8, maxpool="spikes")  # the OR of spikes takes any dilation
    assert any(isinstance(n, spatial.Pool) for n in snn.nodes.values())


@pytest.mark.slow
def test_asymmetric_pads_compile_for_loihi_and_verify_in_lava(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images, _ = load_mnist(data_dir / "mnist")
    np.save(tmp_path / "c.npy", images[:64, None].astype(np.float32))  # raw 0..255 pixels: graded input spikes
    model, out = _pool_net(tmp_path / "asym.onnx", [0, 0, 1, 1], ceil=1), tmp_path / "art"
    code = main(["compile", str(model), "--target", "loihi2", "--calib", str(tmp_path / "c.npy"), "--timesteps",
                 str(STEPS), "-o", str(out), "--json"])  # fmt: skip
    r = json.loads(capsys.readouterr().out)
    assert code == 0, r
    assert r["conversion_settings"]["encoding"]["value"] == "direct"  # integers enter as they are
    code = main(["verify", str(out), "--json"])
    v = json.loads(capsys.readouterr().out)
    assert code == 0 and v["mismatches"] == 0, v
