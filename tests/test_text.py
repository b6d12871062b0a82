"""The textual form (.sir): printer/parser round trips, the sidecar, golden files, errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spikec.errors import FileError, ParseError, VerifyError
from spikec.ir import (
    IF,
    LI,
    LIF,
    AvgPool,
    Clip,
    Conv,
    CubaLI,
    CubaLIF,
    Delay,
    Dense,
    Edge,
    Flatten,
    Graph,
    I,
    Input,
    MaxPool,
    Node,
    Output,
    ReLU,
    Scale,
    Subgraph,
    SumPool,
    Threshold,
)
from spikec.text import load_sir, parse_graph, print_graph, save_sir, to_text

GOLDEN = Path(__file__).parent / "golden"
Shape = tuple[int, ...]
Draw = Callable[[st.SearchStrategy[Any]], Any]

# -- strategies ---------------------------------------------------------------------------------
names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,5}", fullmatch=True)
origins = st.one_of(
    st.just(""),
    st.text(alphabet=st.sampled_from('ab"\\#\n\t\r\x00\x7f\u2028é漢😀 @{}%'), max_size=8),
    st.text(max_size=6),
)


def floats_for(dtype: np.dtype, lo: float | None, hi: float | None) -> st.SearchStrategy[float]:
    if dtype == np.float32:  # bounds must be exact float32 values
        lo, hi = (None if b is None else float(np.float32(b)) for b in (lo, hi))
    width = 32 if dtype == np.float32 else 64
    return st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False)


def array(draw: Draw, shape: Shape, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    return draw(hnp.arrays(dtype, shape, elements=floats_for(dtype, lo, hi)))


def param(draw: Draw, shape: Shape, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """A neuron parameter that broadcasts to ``shape``: a scalar, a (1,) or the full shape."""
    pshape = draw(st.sampled_from([(), (1,), shape]))
    return array(draw, pshape, lo, hi)


def tau(draw: Draw, shape: Shape) -> np.ndarray:
    return param(draw, shape, 1e-6, 1e3)


def reset(draw: Draw) -> str:
    return str(draw(st.sampled_from(["value", "subtract", "none"])))


def _dense(draw: Draw, shape: Shape) -> Node:
    n_out = draw(st.integers(1, 12))
    weight = array(draw, (n_out, shape[-1]), -10, 10)
    bias = array(draw, (n_out,)) if draw(st.booleans()) else None
    return Dense(weight=weight, bias=bias)


def _scale(draw: Draw, shape: Shape) -> Node:
    if draw(st.booleans()):
        dtype = draw(st.sampled_from([np.int8, np.int32, np.uint8, np.bool_, np.int64]))
        return Scale(scale=draw(hnp.arrays(dtype, draw(st.sampled_from([(), shape])))))
    return Scale(scale=param(draw, shape))


ONE_D: dict[str, Callable[[Draw, Shape], Node]] = {
    "Dense": _dense,
    "Scale": _scale,
    "ReLU": lambda d, s: ReLU(),
    "Clip": lambda d, s: Clip(
        min=d(st.floats(max_value=0.0) | st.just(-math.inf)),
        max=d(st.floats(min_value=0.0) | st.just(math.inf)),
    ),
    "LIF": lambda d, s: LIF(
        tau=tau(d, s),
        r=param(d, s),
        v_leak=param(d, s),
        v_threshold=param(d, s),
        v_reset=param(d, s),
        reset=reset(d),
    ),
    "IF": lambda d, s: IF(r=param(d, s), v_threshold=param(d, s), reset=reset(d)),
    "CubaLIF": lambda d, s: CubaLIF(tau_syn=tau(d, s), tau_mem=tau(d, s), w_in=param(d, s), reset=reset(d)),
    "LI": lambda d, s: LI(tau=tau(d, s), v_leak=param(d, s)),
    "CubaLI": lambda d, s: CubaLI(tau_syn=tau(d, s), tau_mem=tau(d, s), r=param(d, s)),
    "I": lambda d, s: I(r=param(d, s)),
    "Threshold": lambda d, s: Threshold(threshold=param(d, s)),
    "Delay": lambda d, s: Delay(delay=param(d, s, 0.0, 1.0)),
}


def _conv(draw: Draw, shape: Shape) -> Node:
    k = draw(st.integers(1, 3))
    weight = array(draw, (draw(st.integers(1, 3)), shape[0], k, k), -1, 1)
    bias = array(draw, (weight.shape[0],)) if draw(st.booleans()) else None
    stride = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
    return Conv(weight=weight, bias=bias, stride=stride, padding=(k // 2, k // 2))


def _pool(draw: Draw, shape: Shape) -> Node:
    kind = draw(st.sampled_from([SumPool, AvgPool, MaxPool]))
    k = draw(st.integers(1, min(2, *shape[1:])))
    return kind(kernel_size=(k, k), stride=draw(st.sampled_from([(), (1, 1)])))


@st.composite
def graphs(draw: Draw, depth: int = 0) -> Graph:
    """A random valid graph: Input -> (conv part ->) chain of 1-D kinds -> Output."""
    spatial = depth == 0 and draw(st.booleans())
    shape: Shape = (
        (draw(st.integers(1, 3)), draw(st.integers(3, 7)), draw(st.integers(3, 7)))
        if spatial
        else (draw(st.integers(1, 40)),)
    )
    chain: list[Node] = [Input(shape=shape)]
    shapes = [shape]  # output shape of each chain node
    if spatial:
        chain.append(_conv(draw, shape))
        shapes.append(chain[-1].infer_shape([shapes[-1]]))
        if draw(st.booleans()):
            chain.append(_pool(draw, shapes[-1]))
            shapes.append(chain[-1].infer_shape([shapes[-1]]))
        chain.append(Flatten())
        shapes.append(chain[-1].infer_shape([shapes[-1]]))
    for kind in draw(st.lists(st.sampled_from(sorted(ONE_D)), min_size=1, max_size=4)):
        chain.append(ONE_D[kind](draw, shapes[-1]))
        shapes.append(chain[-1].infer_shape([shapes[-1]]))
        if depth == 0 and draw(st.integers(0, 5)) == 0:
            chain.append(Subgraph(graph=draw(_inner(shapes[-1]))))
            shapes.append(shapes[-1])
    chain.append(Output())
    shapes.append(shapes[-1])
    chain = [n.replace(origin=draw(origins)) for n in chain]
    labels = draw(st.lists(names, min_size=len(chain), max_size=len(chain), unique=True))
    edges = [Edge(a, b) for a, b in itertools.pairwise(labels)]
    n = len(chain)  # (src, dst) pairs where src's output has the shape that dst sums:
    pairs = [(j, i) for i in range(1, n) for j in range(n) if shapes[j] == shapes[i - 1]]
    if draw(st.booleans()):  # a skip connection or a feedback edge
        j, i = draw(st.sampled_from(pairs))
        edges.append(Edge(labels[j], labels[i], recurrent=j >= i))
    nodes = draw(st.permutations(list(zip(labels, chain, strict=True))))  # any node order
    return Graph(dict(nodes), draw(st.permutations(edges)), dt=draw(dts))


dts = st.floats(1e-6, 1.0) | st.just(1e-4)


@st.composite
def _inner(draw: Draw, shape: Shape) -> Graph:
    kind = draw(st.sampled_from(["LIF", "IF", "ReLU", "Scale"]))
    labels = draw(st.lists(names, min_size=3, max_size=3, unique=True))
    nodes = [Input(shape=shape), ONE_D[kind](draw, shape), Output(origin=draw(origins))]
    edges = [(labels[0], labels[1]), (labels[1], labels[2])]
    return Graph(dict(zip(labels, nodes, strict=True)), edges, dt=draw(dts))


def all_arrays(graph: Graph) -> Iterator[tuple[str, np.ndarray | None]]:
    for name, node in graph.nodes.items():
        if isinstance(node, Subgraph):
            yield from all_arrays(node.graph)
        for field in node.array_fields():
            yield f"{name}.{field}", getattr(node, field)


def assert_bit_identical(a: Graph, b: Graph) -> None:
    assert a == b
    for (na, x), (nb, y) in zip(all_arrays(a), all_arrays(b), strict=True):
        assert na == nb
        if x is None or y is None:
            assert x is None and y is None
        else:
            assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes()), na


# -- round trips ----------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_round_trip(graph: Graph) -> None:
    text, tensors = print_graph(graph, sidecar_name="model.npz")
    back = parse_graph(text, tensors=tensors)
    assert_bit_identical(back, graph)
    text2, tensors2 = print_graph(back, sidecar_name="model.npz")
    assert text2 == text
    assert tensors2.keys() == tensors.keys()
    inline = to_text(graph)
    assert "@tensor" not in inline
    assert to_text(parse_graph(inline)) == inline
    assert_bit_identical(parse_graph(inline), graph)


ALL_DTYPES = [
    np.float32,
    np.float64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.bool_,
]


@given(hnp.arrays(st.sampled_from(ALL_DTYPES), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
@settings(max_examples=80, deadline=None)
def test_array_values_bit_exact(values: np.ndarray) -> None:
    """Any value (incl. -0.0, subnormals, inf, int extremes) reads back to the same bits."""
    if values.dtype.kind == "f":  # nan is written 'nan': payload and sign are not kept
        values = np.where(np.isnan(values), np.nan, values).astype(values.dtype)
    graph = Graph(
        {"in": Input(shape=(1,)), "s": Scale(scale=values), "out": Output()},
        [("in", "s"), ("s", "out")],
        verify=False,
    )
    back = parse_graph(to_text(graph), verify=False)
    assert_bit_identical(back, graph)


def test_prints_nodes_in_node_order_and_quotes_odd_names() -> None:
    graph = Graph(
        {"0": Input(shape=(2,)), "out": Output(), "a-b": ReLU(origin='x "y"\n')},
        [("0", "a-b"), ("a-b", "out")],
    )
    text = to_text(graph)
    assert text.splitlines()[2:5] == [
        "  %0 = Input(shape=[2])",
        "  %out = Output()",
        '  %"a-b" = ReLU() @"x \\"y\\"\\n"',
    ]
    assert parse_graph(text) == graph


# -- sidecar ------------------------------------------------------------------------------------
def big_graph() -> Graph:
    w = np.arange(60, dtype=np.float32).reshape(20, 3) / 7
    return Graph(
        {
            "in": Input(shape=(3,)),
            "fc": Dense(weight=w, bias=np.zeros(20, np.float32)),
            "lif": LIF(tau=np.full(20, 0.01)),
            "out": Output(),
        },
        [("in", "fc"), ("fc", "lif"), ("lif", "out")],
    )


def test_sidecar_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "net.sir"
    save_sir(big_graph(), path)
    text = path.read_text()
    assert 'sidecar "net.npz"' in text and '@tensor("fc.weight", sha256="' in text
    assert sorted(np.load(tmp_path / "net.npz").files) == ["fc.bias", "fc.weight", "lif.tau"]
    assert_bit_identical(load_sir(path), big_graph())
    first = (tmp_path / "net.npz").read_bytes()
    save_sir(big_graph(), path)
    assert (tmp_path / "net.npz").read_bytes() == first  # reproducible bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz", "net.sir"]  # no temp files


def test_sidecar_deflates_integer_fields_and_stores_float_weights(tmp_path: Path) -> None:
    """A fixed-point layer's int64 mantissas with zero rows (a DenseNet part's conv: 4.3 GB of model.npz before)
    are deflated; float weights, which barely shrink, are stored as they are. Both read back bit for bit."""
    import zipfile

    from spikec.targets.loihi2.dialect import LoihiConv

    weight = np.zeros((256, 32, 3, 3), np.int64)
    weight[64:96] = np.random.default_rng(0).integers(-255, 256, size=(32, 32, 3, 3))
    graph = Graph({"in": Input(shape=(32, 8, 8)), "conv": LoihiConv(weight=weight, padding=(1, 1)), "out": Output()},
                  [("in", "conv"), ("conv", "out")])  # fmt: skip
    save_sir(graph, tmp_path / "fixed.sir")
    save_sir(big_graph(), tmp_path / "float.sir")
    (conv,) = zipfile.ZipFile(tmp_path / "fixed.npz").infolist()
    assert conv.compress_type == zipfile.ZIP_DEFLATED and conv.compress_size < conv.file_size / 20
    stored = {i.filename: i.compress_type for i in zipfile.ZipFile(tmp_path / "float.npz").infolist()}
    assert stored["fc.weight.npy"] == zipfile.ZIP_STORED
    assert np.array_equal(load_sir(tmp_path / "fixed.sir").nodes["conv"].weight, weight)  # type: ignore[attr-defined]


def test_small_graph_writes_no_sidecar(tmp_path: Path) -> None:
    graph = Graph({"in": Input(shape=(2,)), "out": Output()}, [("in", "out")])
    save_sir(graph, tmp_path / "tiny.sir")
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.sir"]
    assert load_sir(tmp_path / "tiny.sir") == graph


def test_stale_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "net.sir"
    save_sir(big_graph(), path)
    arrays = dict(np.load(tmp_path / "net.npz"))
    np.savez(tmp_path / "net.npz", **{**arrays, "fc.weight": arrays["fc.weight"] + 1})
    with pytest.raises(ParseError, match=r"stale or corrupt") as info:
        load_sir(path)
    assert "'fc.weight'" in str(info.value) and f"{path}:5:" in str(info.value)
    del arrays["lif.tau"]
    np.savez(tmp_path / "net.npz", **arrays)
    with pytest.raises(ParseError, match=r"tensor 'lif.tau' is missing from the sidecar"):
        load_sir(path)


def test_missing_or_corrupt_sidecar(tmp_path: Path) -> None:
    path = tmp_path / "net.sir"
    save_sir(big_graph(), path)
    (tmp_path / "net.npz").unlink()
    with pytest.raises(ParseError, match=r"sidecar file '.*net\.npz' is missing"):
        load_sir(path)
    (tmp_path / "net.npz").write_bytes(b"not a zip")
    with pytest.raises(FileError, match=r"net\.sir's sidecar .*net\.npz: not a readable \.npz archive"):
        load_sir(path)


def test_unreadable_text_file(tmp_path: Path) -> None:
    with pytest.raises(FileError, match=r"nope\.sir: no such file$"):
        load_sir(tmp_path / "nope.sir")
    (tmp_path / "bad.sir").write_bytes(b"sir 1\xff")
    with pytest.raises(FileError, match=r"bad\.sir: is not UTF-8 text \(byte 5 is b'\\xff'\)"):
        load_sir(tmp_path / "bad.sir")


def test_pickled_sidecar_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "net.sir"
    save_sir(big_graph(), path)
    np.savez(tmp_path / "net.npz", **{"fc.weight": np.array([object()], dtype=object)})
    with pytest.raises(FileError, match=r"holds Python objects \(dtype object\), which spikec never unpickles"):
        load_sir(path)


def test_text_with_tensors_needs_them() -> None:
    text, _ = print_graph(big_graph())
    with pytest.raises(ParseError, match=r"no tensors were given"):
        parse_graph(text)


# -- golden files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.sir")), ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    graph = parse_graph(text, file=str(path))
    assert to_text(graph) == text
    assert load_sir(path) == graph


def test_golden_files_exist() -> None:
    assert len(list(GOLDEN.glob("*.sir"))) >= 3


def test_doc_example_parses() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "sir-format.md").read_text(encoding="utf-8")
    example = doc.split("## Example\n\n```\n", 1)[1].split("```", 1)[0]
    graph = parse_graph(example)
    assert [e.recurrent for e in graph.edges] == [False, False, False, True]


def test_sidecar_name_must_be_local(tmp_path: Path) -> None:
    path = tmp_path / "net.sir"
    save_sir(big_graph(), path)
    path.write_text(path.read_text().replace('sidecar "net.npz"', 'sidecar "../net.npz"'))
    with pytest.raises(ParseError, match=r"must be a file name next to the \.sir file"):
        load_sir(path)


# -- errors ---------------------------------------------------------------------------------------
SMALL = """sir 1
graph dt=0.0001 {
  %in = Input(shape=[3])
  %d = Dense(weight=f32[2,3]{1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, bias=none)
  %out = Output()
  %in -> %d
  %d -> %out
}
"""


def parse_error(text: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_graph(text, file="m.sir")
    return info.value


def test_syntax_error_position_and_expected() -> None:
    err = parse_error(SMALL.replace("%in -> %d", "%in %d"))
    assert (err.file, err.line, err.col) == ("m.sir", 6, 7)
    assert str(err).splitlines() == [
        "m.sir:6:7: unexpected '%d'; expected one of: '->', '~>', '='",
        "      %in %d",
        "          ^",
    ]


def test_unexpected_character_and_end_of_file() -> None:
    err = parse_error(SMALL.replace("%in -> %d", "%in $ %d"))
    assert (err.line, err.col) == (6, 7) and "unexpected character '$'" in str(err)
    err = parse_error(SMALL[: SMALL.rindex("}")])
    assert err.line == 7 and "unexpected end of file; expected one of: '}'" in str(err)


def test_unknown_kind_lists_known_kinds() -> None:
    err = parse_error(SMALL.replace("Dense(", "Dens("))
    assert (err.line, err.col) == (4, 8)
    assert "unknown node kind 'Dens' (did you mean Dense?)" in str(err)
    assert "known kinds: " in str(err) and "LIF" in str(err) and "Conv" in str(err)


def test_unknown_and_missing_fields_list_valid_fields() -> None:
    err = parse_error(SMALL.replace("bias=none", "bais=none"))
    assert "Dense has no field 'bais'; fields of Dense: weight, bias" in str(err)
    assert (err.line, err.col) == (4, 61)
    err = parse_error(SMALL.replace("Input(shape=[3])", "Input()"))
    assert "Input node %in is missing field 'shape'; fields of Input: shape" in str(err)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("bias=none", "bias=1.0", "field 'bias' of Dense node %d expects an array"),
        ("shape=[3]", "shape=[3.5]", "expected an integer, got 3.5"),
        ("shape=[3]", 'shape="3"', "expects a list of integers like [1, 2], got a string"),
        ("{1.0, 2.0, 3.0, 4.0, 5.0, 6.0}", "{1.0, 2.0}", "f32[2,3] needs 6 values, got 2"),
        ("{1.0, 2.0, 3.0, 4.0, 5.0, 6.0}", "{1, 2, 3, 4, 5, true}", "expected a number"),
        ("f32[2,3]{1.0, 2.0", "f32[2,3]{1e39, 2.0", "1e39 is out of range for f32"),
        ("%in -> %d", "%in -> %e", "there is no node named %e (nodes: %in, %d, %out)"),
        ("%out = Output()", "%d = Output()", "node %d is defined twice (first on line 4)"),
        ("bias=none", "bias=none, bias=none", "field 'bias' is given twice"),
        ("Output()", 'Output() @"\\q"', "unknown escape '\\q' in string"),
        ("sir 1", "sir 2", "unsupported .sir version 2"),
    ],
)
def test_value_errors(old: str, new: str, message: str) -> None:
    assert old in SMALL
    err = parse_error(SMALL.replace(old, new))
    assert message in str(err) and err.line > 0 and "^" in str(err)


def test_bad_array_element_is_located_across_lines() -> None:
    text = SMALL.replace("{1.0, 2.0, 3.0,", "{1.0, 2.0,  # first row\n    3.0,").replace("5.0", "x5")
    err = parse_error(text)
    assert (err.line, err.col) == (5, 15)
    assert "expected a number for f32 array values, got 'x5'" in str(err)
    assert parse_graph(text.replace("x5", "5.0")).nodes["d"] == parse_graph(SMALL).nodes["d"]


def test_shape_mismatch_names_both_nodes_and_the_line() -> None:
    with pytest.raises(VerifyError) as info:
        parse_graph(SMALL.replace("shape=[3]", "shape=[4]"), file="m.sir")
    message = str(info.value)
    assert message.startswith("m.sir:4:3: ") and "'d'" in message and "'in'" in message


def test_verify_error_in_subgraph_points_into_it() -> None:
    text = """sir 1
graph dt=0.0001 {
  %in = Input(shape=[2])
  %sub = Subgraph(graph=graph dt=0.0001 {
    %x = Input(shape=[2])
    %y = Dense(weight=f64[1,3]{1.0, 2.0, 3.0}, bias=none)
    %o = Output()
    %x -> %y
    %y -> %o
  })
  %out = Output()
  %in -> %sub
  %sub -> %out
}
"""
    with pytest.raises(VerifyError, match=r"^m\.sir:6:5: edge into node 'y'"):
        parse_graph(text, file="m.sir")
