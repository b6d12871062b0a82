"""The Akida dialects in textual SIR (``.sir``): a graph of each Akida kind prints, parses back and prints the same
text, and the parsed graph runs to the same integers; the two conv kinds print their fields in the order the
``.sir`` files written so far use: the layer's own fields, then ``ConvGeometry``'s (declared once for both)."""

from __future__ import annotations

import numpy as np
import pytest
from akida_networks import backend_case

from spikec.interp import run
from spikec.ir import Graph
from spikec.ir.structure import Input, Output
from spikec.targets.akida.dialect import AkidaConv
from spikec.targets.akida.dialect_v1 import AkidaV1Conv
from spikec.text import parse_graph, print_graph, to_text

KINDS = ("AkidaConv", "AkidaDense", "AkidaAdd", "AkidaConcat", "AkidaV1Conv", "AkidaV1Dense")


@pytest.mark.parametrize("kind", KINDS)
def test_a_graph_of_each_akida_kind_round_trips_through_its_text(kind: str) -> None:
    graph, feed = backend_case(kind)
    assert kind in {node.kind for node in graph.nodes.values()}
    text, tensors = print_graph(graph, sidecar_name="model.npz")
    back = parse_graph(text, tensors=tensors)
    text2, tensors2 = print_graph(back, sidecar_name="model.npz")
    assert text2 == text and tensors2.keys() == tensors.keys()
    for name, value in tensors.items():
        assert (value.dtype, value.tobytes()) == (tensors2[name].dtype, tensors2[name].tobytes()), name
    ours = run(graph, feed, steps=1).outputs["y"]
    theirs = run(back, feed, steps=1).outputs["y"]
    assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def _printed(node: AkidaConv | AkidaV1Conv) -> str:
    graph = Graph({"x": Input(shape=(1, 4, 4)), "c": node, "y": Output()}, [("x", "c"), ("c", "y")])
    (line,) = [line.strip() for line in to_text(graph).splitlines() if line.strip().startswith("%c =")]
    return line


GEOMETRY = (
    'weight=i64[1,1,3,3]{1, 1, 1, 1, 1, 1, 1, 1, 1}, stride=1, pads=[1, 1, 1, 1], padding="", groups=1, pool="max", '
    "pool_size=2, pool_stride=2, input_layer=1)"
)


def test_the_conv_kinds_print_the_layers_fields_then_the_geometry() -> None:
    one, geometry = np.ones(1, np.int64), dict(pads=(1, 1, 1, 1), pool="max", pool_size=2, pool_stride=2)
    kernel = np.ones((1, 1, 3, 3), np.int64)
    v2 = AkidaConv(weight=kernel, bias=one, bias_shift=0 * one, output_scales=one, output_shift=0 * one,
                   input_shift=0 * one, input_layer=1, weights_bits=8, **geometry)  # fmt: skip
    v1 = AkidaV1Conv(weight=kernel, threshold=one, act_step=np.ones(1), input_layer=1, weights_bits=8, **geometry)
    assert _printed(v2) == (
        "%c = AkidaConv(bias=i64[1]{1}, bias_shift=i64[1]{0}, output_scales=i64[1]{1}, output_shift=i64[1]{0}, "
        "input_shift=i64[1]{0}, relu=1, output_bits=4, weights_bits=8, " + GEOMETRY
    )
    assert _printed(v1) == (
        "%c = AkidaV1Conv(threshold=i64[1]{1}, act_step=f64[1]{1.0}, activation=1, act_bits=4, weights_bits=8, "
        + GEOMETRY
    )
