"""Write an Akida artifact: ``model.fbz`` (built layer by layer with ``akida.Model``), ``model.sir``, the mapping.

``emit_artifact(graph, out_dir, quantized)`` writes, every file through ``spikec.fileio``:

* ``model.fbz``: ``model.save``'s file of the dialect graph: each node one layer (IP v2 ``InputConv2D``/``Conv2D``/
  ``DepthwiseConv2D``/``Dense1D``/``Add``/``Concatenate``, or IP v1 ``InputConvolutional``/``Convolutional``/
  ``FullyConnected``: ``emit_v1.py``; ``ADDERS`` by kind), its variables set with ``set_variable`` in Akida's
  layouts (``akida_weights``);
* ``model.sir`` (+ ``model.npz``): the dialect graph, what ``spikec verify`` runs in the interpreter;
* ``ann.sir`` (+ ``ann.npz``): the float ANN it was quantized from, whose predictions ``spikec verify`` compares;
* ``report.json`` (this target's part): per layer bits, scales, weight error (from ``quantize{target=akida}``),
  the Akida layer names, and the mapping of a COPY onto a virtual device of the model's IP version
  (``map(device, hw_only=True)``): NPs by type, program size, or the engine's error naming our node's origin.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import TargetError
from spikec.fileio import write_bytes, write_text
from spikec.ir import Graph
from spikec.targets.akida.dialect import AkidaAdd, AkidaConcat, AkidaConv, AkidaDense, same_pads
from spikec.targets.akida.dialect_v1 import AkidaV1Conv, AkidaV1Dense
from spikec.targets.akida.emit_v1 import add_v1_layer

MODEL = "model.fbz"
ANN = "ann.sir"  # the float ANN the model was quantized from (spikec verify compares predictions with it)
DEVICES = {"v1": "AKD1000", "v2": "SixNodesIPv2"}  # the virtual device a model of each IP version maps onto
V1_KINDS = (AkidaV1Conv, AkidaV1Dense)


def akida_weights(node: AkidaConv | AkidaDense, input_shape: tuple[int, ...]) -> np.ndarray:
    """SIR weights → Akida's: a conv (kH, kW, I, O) (flipped for Conv2D/DepthwiseConv2D, a real convolution in
    the engine; DepthwiseConv2D (kH, kW, C, 1)), a dense (H·W·C, O) over Akida's (X, Y, C) flatten."""
    w = np.asarray(node.weight)
    if isinstance(node, AkidaDense):
        if len(input_shape) == 3:
            c, h, v = input_shape
            return w.reshape(-1, c, h, v).transpose(2, 3, 1, 0).reshape(h * v * c, -1).astype(np.int8)
        return w.T.astype(np.int8)
    if not node.input_layer:
        w = w[:, :, ::-1, ::-1]
    if node.groups > 1:
        return w.transpose(2, 3, 0, 1).astype(np.int8)  # (kH, kW, C, 1)
    return w.transpose(2, 3, 1, 0).astype(np.int8)


def _layer(akida: Any, name: str, node: AkidaConv | AkidaDense, shape: tuple[int, ...]) -> Any:
    act = akida.ActivationType.ReLU if node.relu else akida.ActivationType.NoActivation
    if isinstance(node, AkidaDense):
        return akida.Dense1D(
            units=node.weight.shape[0],
            output_bits=node.output_bits,
            activation=act,
            weights_bits=node.weights_bits,
            name=name,
        )
    if node.same:  # the engine computes its own pads from the map: they must be the dialect's
        c, h, v = shape
        k, st = node.weight.shape[2], node.stride
        (t, b), (lft, r) = same_pads(h, k, st), same_pads(v, k, st)
        if tuple(node.pads) not in ((t, b, lft, r), (b, t, r, lft)):
            raise TargetError(
                f"layer '{name}': pads {tuple(node.pads)} are neither Akida's SAME {(t, b, lft, r)} nor SAME_UPPER "
                f"{(b, t, r, lft)} for a {k}x{k}/{st} conv of a {h}x{v} map; fix the dialect graph's pads"
            )
    pool = {"none": akida.PoolType.NoPooling, "max": akida.PoolType.Max, "global_avg": akida.PoolType.Average}
    common = dict(
        kernel_size=node.weight.shape[2],
        kernel_stride=node.stride,
        padding=akida.Padding.SameUpper if node.upper else akida.Padding.Same if node.same else akida.Padding.Valid,
        pool_type=pool[node.pool],
        pool_size=node.pool_size or -1,
        pool_stride=node.pool_stride or -1,
        output_bits=node.output_bits,
        activation=act,
        name=name,
    )
    if node.input_layer:
        c, h, v = shape
        return akida.InputConv2D(input_shape=(h, v, c), filters=node.weight.shape[0], **common)
    if node.groups > 1:
        return akida.DepthwiseConv2D(weights_bits=node.weights_bits, **common)
    return akida.Conv2D(filters=node.weight.shape[0], weights_bits=node.weights_bits, **common)


def layers_of(graph: Graph) -> list[str]:
    return [n for n in graph.order if type(graph.nodes[n]) in ADDERS]


def ip_version(graph: Graph) -> str:
    """The IP version of the graph's layers: "v1" where they are IP v1 kinds, else "v2"."""
    return "v1" if any(isinstance(graph.nodes[n], V1_KINDS) for n in layers_of(graph)) else "v2"


def build_model(graph: Graph) -> Any:
    """The ``akida.Model`` of a dialect graph, every variable set; each layer's inbounds are its in-edges' layers."""
    import akida

    model = akida.Model()
    for name in layers_of(graph):
        node = graph.nodes[name]
        sources = [e.src for e in graph.in_edges(name)]
        inbounds = [model.get_layer(s) for s in sources if s not in graph.inputs]
        try:
            ADDERS[type(node)](akida, model, name, node, tuple(graph.types[sources[0]]), inbounds)
        except (ValueError, RuntimeError) as err:  # the engine's own checks: name our node with them
            raise TargetError(
                f"{graph.describe(name)}: the akida engine refused its layer: {' '.join(str(err).split())}"
            ) from None
    return model


def _add_merge(
    akida: Any, model: Any, name: str, node: AkidaAdd | AkidaConcat, shape: tuple[int, ...], inbounds: list[Any]
) -> None:
    """An ``Add`` (its shifts set) or ``Concatenate`` of ``inbounds``."""
    if isinstance(node, AkidaConcat):
        model.add(akida.Concatenate(name=name), inbounds)
        return
    model.add(akida.Add(output_bits=node.output_bits, name=name), inbounds)
    layer = model.layers[-1]
    for field, dtype in (("a_shift", np.uint8), ("b_shift", np.uint8), ("output_shift", np.int8)):
        layer.set_variable(field, np.asarray(getattr(node, field)).astype(dtype))


def _add_layer(
    akida: Any, model: Any, name: str, node: AkidaConv | AkidaDense, shape: tuple[int, ...], inbounds: list[Any]
) -> None:
    """Add ``node``'s layer to ``model`` (reading ``inbounds``) and set every variable (Akida's layouts)."""
    if inbounds:
        model.add(_layer(akida, name, node, shape), inbounds)
    else:
        model.add(_layer(akida, name, node, shape))
    layer = model.layers[-1]
    layer.set_variable("weights", akida_weights(node, shape))
    for field, dtype in (
        ("bias", np.int8),
        ("bias_shift", np.uint8),
        ("output_scales", np.uint8),
        ("output_shift", np.int8),
    ):
        layer.set_variable(field, np.asarray(getattr(node, field)).astype(dtype))
    if "input_shift" in layer.get_variable_names():
        shift = np.asarray(node.input_shift)
        if isinstance(node, AkidaDense) and len(shape) == 3:  # per input, in Akida's (X, Y, C) order
            shift = shift.reshape(shape).transpose(1, 2, 0).reshape(-1)
        layer.set_variable("input_shift", shift.astype(np.uint8))


ADDERS: dict[type, Callable[..., None]] = {  # by dialect kind: add its layer to the model, variables set
    AkidaConv: _add_layer, AkidaDense: _add_layer, AkidaAdd: _add_merge, AkidaConcat: _add_merge,
    AkidaV1Conv: add_v1_layer, AkidaV1Dense: add_v1_layer,
}  # fmt: skip


def map_copy(model: Any, graph: Graph, device: str = "") -> dict[str, Any]:
    """Map a copy of ``model`` onto the virtual ``device`` with ``hw_only=True``: NPs by type, program size; or the
    engine's error, with the origin of the node whose layer it names and what to change."""
    import akida

    device = device or DEVICES[ip_version(graph)]
    copy = akida.Model(layers=model.layers)
    try:
        copy.map(getattr(akida, device)(), hw_only=True)
    except Exception as err:  # the engine raises plain RuntimeError/ValueError with its reason
        return {"device": device, "mapped": False, "error": mapping_error(str(err), graph)}
    nps: Counter[str] = Counter()
    per_layer: dict[str, list[str]] = {}
    program = 0
    for seq in copy.sequences:
        program += len(seq.program or b"")
        for step in seq.passes:
            for layer in step.layers:
                kinds = [str(n.type).removeprefix("Type.") for n in (layer.mapping.nps if layer.mapping else [])]
                per_layer[layer.name] = kinds
                nps.update(kinds)
    return {
        "device": device,
        "mapped": True,
        "nps": dict(sorted(nps.items())),
        "np_total": sum(nps.values()),
        "program_bytes": program,
        "sequences": len(copy.sequences),
        "layers": per_layer,
    }


def mapping_error(message: str, graph: Graph) -> str:
    """The engine's message, each layer it names followed by our node's origin and a hint."""
    out = " ".join(message.split())
    for name in layers_of(graph):
        if f"'{name}'" in out:
            out += f" [layer '{name}' is {graph.describe(name)}]"
    hints = {  # IP v2's words and IP v1's (AKD1000)
        "Pooling size": "use 2x2 max-pools on hardware",  # "must be 1 or 2", "3 is not supported on NSoC_v2"
        "padding 'Same'": "use 'same' padding (k // 2, stride 1) in every conv after the first",
        "Only padding same is supported": "use 'same' padding (k // 2, stride 1) in every conv after the first",
        "max pooling cannot be the last layer": "follow a max-pooled conv by another conv, not a dense layer",
        "followed by a layer mapped on a CNP": "follow a max-pooled conv by another conv, not a dense layer",
        "must be followed by another convolutional": "follow a max-pooled conv by another conv, not a dense layer",
        "too large to fit in a FNP": "shrink the dense layer's input to at most 2048 values (more pooling)",
        "Global Average Pooling": "pool to at most 12x12 before a global average pool",
    }
    found = [h for key, h in hints.items() if key in out]
    if found:
        out += "; to map: " + "; ".join(dict.fromkeys(found))
    return out


def saved_bytes(model: Any) -> bytes:
    """``model.save``'s file (the compressed .fbz ``akida.Model(path)`` reads; ``to_buffer`` is not it), saved in a
    private temporary folder and read back, so that spikec.fileio writes the artifact's copy."""
    with tempfile.TemporaryDirectory(prefix="spikec-akida-") as tmp:
        path = Path(tmp) / MODEL
        model.save(str(path))
        return path.read_bytes()


def emit_artifact(
    graph: Graph,
    out_dir: Path,
    quantized: dict[str, Any] | None,
    ann: Graph | None = None,
    mapping: dict[str, Any] | None = None,
) -> list[str]:
    """Write the artifact files into ``out_dir``; their names (see the module docstring). ``mapping``: the pass
    ``akida-map``'s (on the device it was given), else a mapping onto ``DEVICES``' device of its IP version."""
    from spikec.text import save_sir

    model = build_model(graph)
    write_bytes(out_dir / MODEL, saved_bytes(model))
    save_sir(graph, out_dir / "model.sir")
    if ann is not None:
        save_sir(ann, out_dir / ANN)
    mapping = mapping if mapping is not None else map_copy(model, graph)
    report = {
        "format": "spikec.akida/1",
        "ip_version": ip_version(graph),
        "device": mapping["device"],
        "input_shape": list(model.input_shape),
        "output_shape": list(model.output_shape),
        "layers": [
            {"name": layer.name, "type": str(layer.parameters.layer_type).removeprefix("LayerType.")}
            for layer in model.layers
        ],
        "quantization": quantized or {},
        "mapping": mapping,
    }
    write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    return sorted(p.name for p in out_dir.iterdir())
