"""Read lava-dl netx ``.net`` files (HDF5) as Loihi-dialect SIR (the writer: ``netx_export``).

netx describes a chain of layers ``/layer/0``, ``/layer/1``, …; each has a ``type`` and a ``shape``
(torch order C, H, W) and, for a neuron layer, a ``neuron`` group. The reader does what lava-dl's
``netx.hdf5.Network`` does when it builds Lava processes, so the graph runs bit for bit as Lava:

* ``input``: the neuron (LIF for CUBA/LOIHI, Delta for SDNN) takes the network input; for LIF
  input layers netx feeds it through the neuron's bias ("the input must be handled through
  neuron's bias"), so the LoihiLIF gets ``input_mode="bias"``. Its ``weight``/``bias`` datasets are
  the user's input transform, not neuron parameters, and are not applied.
* ``dense`` / ``conv``: a synapse and a neuron. Dense weights go through netx's
  ``optimize_weight_bits`` (mantissa, exponent, bit width, sign mode); conv weights stay as they
  are (Lava's fixed-point Conv uses plain integers). ``bias`` becomes the LIF's ``bias_mant``
  (``bias_exp = 6``) or the SigmaDelta's ``bias``. A dense layer without a neuron group is netx's
  non-leaky integrator (iDecay 0, vDecay 4096, vThMant 2**17).
* ``dense_rec``: a dense layer whose neurons also receive their own spikes of the previous step
  through ``weight_rec`` (an unbuffered LoihiDense on a recurrent edge: Lava's loop latency).
* ``flatten``: the next dense layer sees (C, H, W) flattened in C order (netx's
  ``transpose([2, 1, 0]).flatten()`` of Lava's (X, Y, C)).
* neurons: ``CUBA``/``LOIHI`` → LoihiLIF (``du = iDecay - 1``, ``dv = vDecay``, ``vth = vThMant``);
  ``SDNN`` → LoihiDelta (input), LoihiSigma (``sigma_output``) or LoihiSigmaDelta (exponents 6).
  Synapses carry the previous layer's message bits (LIF ``messageBits`` or 0; SDNN 16).

``reset_interval`` reproduces netx's ``Network(reset_interval=…, reset_offset=…)``: the k-th neuron
layer resets u and v every interval steps with offset ``reset_offset + 1 + k`` (LIF layers; SDNN
layers have no reset, and lava-dl ignores it there with a warning, as does this reader). netx files
have no field for it, so the writer (``netx_export``) warns with the ``Network(...)`` arguments
that restore it.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikec.errors import FrontendError, SpikecError, SpikecWarning, UsageError, VerifyError
from spikec.ir import Flatten, Graph, Input, Node, Output
from spikec.safe_read import read_hdf5
from spikec.safe_read.limits import shown
from spikec.targets.loihi2.dialect import (
    InputMode,
    LoihiConv,
    LoihiDelta,
    LoihiDense,
    LoihiLIF,
    LoihiSigma,
    LoihiSigmaDelta,
    SignMode,
)

SDNN_EXP = 6  # netx's spike_exp and state_exp for sigma-delta neurons
LIF_BIAS_EXP = 6  # netx's bias_exp for LIF neurons
NO_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17, "refDelay": 1}


def optimize_weight_bits(weight: np.ndarray, where: str) -> tuple[np.ndarray, int, int, SignMode]:
    """netx's ``optimize_weight_bits``: integer weights → (mantissas, num_weight_bits, weight_exp, sign mode).

    The mantissas are ``w << s`` with exponent ``-s``, so Lava's Dense computes exactly ``Σ w·x``;
    ``s`` is the headroom left in the 8-bit (mixed: signed) mantissa, and the bit width drops the
    trailing zero bits all weights share. Weights that need more than 8 bits raise ``FrontendError``.
    """
    w = np.asarray(weight, np.float64)
    if not np.array_equal(w, np.round(w)):
        raise FrontendError(f"{where}: weights must be integers (netx stores 8-bit synaptic weights), e.g. {w.flat[0]}")
    hi, lo = float(np.max(w)), float(np.min(w))
    if hi == 0 and lo == 0:
        return w.astype(np.int64), 8, 0, SignMode.EXCITATORY
    if hi < 0:
        mode, signed, scale = SignMode.INHIBITORY, 0, -256 / lo
    elif lo >= 0:
        mode, signed, scale = SignMode.EXCITATORY, 0, 255 / hi
    else:
        mode, signed = SignMode.MIXED, 1
        scale = min(127 / hi, -128 / lo)
    scale_bits = int(np.floor(np.log2(scale))) + signed
    if scale_bits < 0:
        ranges = {SignMode.MIXED: "-256..254", SignMode.EXCITATORY: "0..255", SignMode.INHIBITORY: "-256..-1"}
        raise FrontendError(
            f"{where}: weights in [{lo:g}, {hi:g}] cannot be represented in Loihi's 8-bit mantissa "
            f"({mode.name.lower()} weights must lie in {ranges[mode]}); rescale the layer "
            f"(and its threshold) so the weights fit"
        )
    n = 8
    while n > 0 and np.sum(np.abs(w / 2**n - np.round(w / 2**n))) != 0:
        n -= 1
    n -= signed
    mantissas = w.astype(np.int64) << scale_bits
    return mantissas, 8 - scale_bits - n, -scale_bits, mode


@dataclasses.dataclass
class _Layer:
    """One ``/layer/<i>`` group as plain values, with its file and index for error messages."""

    index: int
    fields: dict[str, Any]
    file: str

    @property
    def type(self) -> str:
        kind = self.fields.get("type", "?")
        return kind if isinstance(kind, str) else shown(kind)

    def fail(self, problem: str) -> FrontendError:
        return FrontendError(f"{self.file}: netx layer {self.index} ({self.type}): {problem}")

    def get(self, key: str) -> Any:
        if key not in self.fields:
            raise self.fail(f"required dataset '{key}' is missing")
        return self.fields[key]

    def numbers(self, key: str) -> np.ndarray:
        """Dataset ``key`` as a numeric array of finite values."""
        value = np.asarray(self.get(key))
        if value.dtype.kind not in "biuf":
            raise self.fail(f"dataset '{key}' is {shown(value)}, not numbers")
        if not np.all(np.isfinite(value)):
            raise self.fail(f"dataset '{key}' holds NaN or infinite values")
        return value

    def integers(self, key: str, minimum: int) -> list[int]:
        """Dataset ``key`` as integers ``>= minimum`` (integral floats accepted, as lava-dl writes some)."""
        arr = np.atleast_1d(self.numbers(key)).reshape(-1)
        if not np.all(arr == np.round(arr)) or (arr.size and np.max(np.abs(arr.astype(np.float64))) > 2**62):
            raise self.fail(f"dataset '{key}' = {shown(arr)} must hold integers")
        values = [int(v) for v in arr.astype(np.int64)]
        if any(v < minimum for v in values):
            raise self.fail(f"dataset '{key}' = {shown(values)} must hold integers >= {minimum}")
        return values

    def shape(self) -> tuple[int, ...]:
        """The layer's ``shape``: positive integers."""
        return tuple(self.integers("shape", 1))

    def pair(self, key: str, default: int, minimum: int = 0) -> tuple[int, int]:
        if key not in self.fields:
            return (default, default)
        values = self.integers(key, minimum)
        if len(values) not in (1, 2):
            raise self.fail(f"dataset '{key}' = {shown(values)} needs one or two entries")
        return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])

    def neuron_config(self) -> dict[str, Any]:
        config = self.fields.get("neuron", NO_NEURON)
        if not isinstance(config, dict):
            raise self.fail("'neuron' is a dataset; netx stores a layer's neuron as a group of datasets")
        return config

    def neuron_int(self, config: dict[str, Any], key: str, default: int) -> int:
        """An integer field of the ``neuron`` group."""
        value = np.asarray(config.get(key, default))
        if value.dtype.kind not in "biuf" or value.size != 1 or not np.isfinite(value).all():
            raise self.fail(f"neuron field '{key}' is {shown(value)}, not one number")
        number = float(value.reshape(-1)[0])
        if number != round(number) or abs(number) > 2**62:
            raise self.fail(f"neuron field '{key}' = {number:g} must be an integer")
        return int(number)


def _decode(value: Any) -> Any:
    """A string dataset as ``str`` (netx stores some as one-element arrays)."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        flat = value.ravel()
        return _decode(flat[0]) if flat.size else ""
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    return value


class _Builder:
    """Accumulates nodes and edges of the chain while the layers are read."""

    def __init__(self, file: str, reset_interval: int, reset_offset: int) -> None:
        self.file = file
        self.nodes: dict[str, Node] = {}
        self.edges: list[tuple[str, str] | tuple[str, str, bool]] = []
        self.last: str | None = None
        self.shape: tuple[int, ...] | None = None
        self.message_bits = 0
        self.flatten_next = False
        self.reset_interval, self.reset_offset = reset_interval, reset_offset
        self.neuron_layers = 0
        self.lif_layers = 0
        self.sdnn_layers: list[int] = []

    def add(self, name: str, node: Node) -> None:
        self.nodes[name] = node
        if self.last is not None:
            self.edges.append((self.last, name))
        self.last = name

    def ensure_input(self, shape: tuple[int, ...]) -> None:
        if self.last is None:
            self.add("input", Input(shape=shape))
            self.shape = shape

    def neuron(self, layer: _Layer, name: str, bias: np.ndarray | None, shape: tuple[int, ...], *, first: bool) -> None:
        config = layer.neuron_config()
        kind = str(config.get("type", "?"))
        origin = f"{self.file}:layer/{layer.index}"
        try:
            build = NEURONS[kind]
        except KeyError:
            raise layer.fail(f"neuron type {shown(kind)} is not supported; supported: {sorted(NEURONS)}") from None
        node, bits = build(self, layer, config, bias, shape, first)
        self.add(name, dataclasses.replace(node, origin=origin))
        self.message_bits = bits
        self.shape = shape
        self.neuron_layers += 1


def _bias_field(layer: _Layer) -> np.ndarray | None:
    return layer.numbers("bias") if "bias" in layer.fields else None


def _bias(bias: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """A netx bias (scalar, per neuron, or per channel of a (C, H, W) layer) as a broadcastable array."""
    if bias is None:
        return np.zeros((), np.int64)
    b = np.asarray(bias)
    if len(shape) == 3 and b.shape == (shape[0],):
        b = b.reshape(shape[0], 1, 1)
    return np.round(b).astype(np.int64)


def _lif(b: _Builder, layer: _Layer, c: dict[str, Any], bias: np.ndarray | None, shape: Any, first: bool) -> Any:
    b.lif_layers += 1
    interval, offset = (b.reset_interval, b.reset_offset + 1 + b.neuron_layers) if b.reset_interval else (0, 0)
    node = LoihiLIF(
        du=layer.neuron_int(c, "iDecay", 0) - 1,
        dv=layer.neuron_int(c, "vDecay", 0),
        vth=np.asarray(layer.neuron_int(c, "vThMant", 0), np.int64),
        bias_mant=_bias(bias, shape),
        bias_exp=np.asarray(LIF_BIAS_EXP, np.int64),
        input_mode=(InputMode.BIAS if first else InputMode.CURRENT).value,
        reset_interval=interval,
        reset_offset=offset,
    )
    return node, layer.neuron_int(c, "messageBits", 0)


def _sdnn(b: _Builder, layer: _Layer, c: dict[str, Any], bias: np.ndarray | None, shape: Any, first: bool) -> Any:
    bits = layer.neuron_int(c, "messageBits", 16)
    b.sdnn_layers.append(layer.index)
    vth = np.asarray(layer.neuron_int(c, "vThMant", 0), np.int64)
    if first:
        return LoihiDelta(vth=vth, spike_exp=SDNN_EXP, state_exp=SDNN_EXP), bits
    if "sigma_output" in c:
        return LoihiSigma(), bits
    return LoihiSigmaDelta(vth=vth, bias=_bias(bias, shape), spike_exp=SDNN_EXP, state_exp=SDNN_EXP), bits


NEURONS: dict[str, Callable[..., Any]] = {"CUBA": _lif, "LOIHI": _lif, "SDNN": _sdnn}


def _input(b: _Builder, layer: _Layer) -> None:
    shape = layer.shape()
    b.ensure_input(shape)
    if "neuron" in layer.fields:
        b.neuron(layer, f"layer{layer.index}", None, shape, first=True)


def _flatten_if_needed(b: _Builder, layer: _Layer) -> None:
    if b.flatten_next and b.shape is not None and len(b.shape) > 1:
        b.add(f"layer{layer.index}_flatten", Flatten())
        b.shape = (int(np.prod(b.shape)),)
    b.flatten_next = False


def _dense_synapse(b: _Builder, layer: _Layer, key: str, num_message_bits: int, buffered: int = 1) -> LoihiDense:
    where = f"{b.file}: netx layer {layer.index} ({layer.type}, {key})"
    weight = layer.numbers(key)
    if weight.ndim != 2 or not weight.size:
        raise layer.fail(f"'{key}' has shape {list(weight.shape)}; a dense layer's weights are (out, in)")
    mant, bits, exp, mode = optimize_weight_bits(weight, where)
    return LoihiDense(
        weight=mant,
        weight_exp=exp,
        num_weight_bits=bits,
        sign_mode=int(mode),
        num_message_bits=num_message_bits,
        buffered=buffered,
        origin=f"{b.file}:layer/{layer.index}",
    )


def _dense(b: _Builder, layer: _Layer) -> None:
    out = int(np.prod(layer.shape()))
    if "weight/imag" in layer.fields or isinstance(layer.fields.get("weight"), dict):
        raise layer.fail("complex weights (weight/real, weight/imag) are not supported")
    weight = layer.numbers("weight")
    if weight.ndim == 1:
        if weight.size % out:
            raise layer.fail(f"{weight.size} weights do not split into {out} rows (the layer's shape)")
        weight = weight.reshape(out, -1)
    b.ensure_input((weight.shape[1],))
    _flatten_if_needed(b, layer)
    name = f"layer{layer.index}"
    if "delay" in layer.fields:
        raise layer.fail(
            "the 'delay' dataset is not imported: lava-dl's netx ignores it too, and whether it delays this "
            "layer's inputs or outputs is not defined by the format (LoihiDense.delay models Lava's DelayDense)"
        )
    layer.fields["weight"] = weight
    b.add(f"{name}_synapse", _dense_synapse(b, layer, "weight", b.message_bits))
    b.neuron(layer, name, _bias_field(layer), (out,), first=False)
    if layer.type == "dense_rec":
        # the neuron's spikes come back through weight_rec one step later, as in Lava's loop
        rec = _dense_synapse(b, layer, "weight_rec", b.message_bits, buffered=0)
        if rec.weight.shape != (out, out):
            raise layer.fail(f"weight_rec must be ({out}, {out}), got {rec.weight.shape}")
        b.nodes[f"{name}_recurrent"] = rec
        b.edges += [(name, f"{name}_recurrent"), (f"{name}_recurrent", name, True)]


def _conv(b: _Builder, layer: _Layer) -> None:
    shape = layer.shape()
    weight = layer.numbers("weight")
    if weight.ndim < 4 or any(d != 1 for d in weight.shape[4:]) or not weight.size:
        raise layer.fail(f"'weight' has shape {list(weight.shape)}; a conv layer's weights are (out, in, kH, kW[, 1])")
    weight = weight.reshape(weight.shape[:4])
    if not np.array_equal(weight, np.round(weight)) or np.max(np.abs(weight)) > 2**62:
        raise layer.fail("conv weights must be integers (Loihi synaptic weights)")
    if b.shape is None:
        raise layer.fail("a conv layer needs an input layer before it (netx cannot infer its input shape)")
    groups = layer.integers("groups", 1) if "groups" in layer.fields else [1]
    if len(groups) != 1:
        raise layer.fail(f"dataset 'groups' = {groups} must be one integer")
    synapse = LoihiConv(
        weight=weight.astype(np.int64),
        stride=layer.pair("stride", 1, minimum=1),
        padding=layer.pair("padding", 0),
        dilation=layer.pair("dilation", 1, minimum=1),
        groups=groups[0],
        num_message_bits=b.message_bits,
        origin=f"{b.file}:layer/{layer.index}",
    )
    try:
        got = synapse.infer_shape([b.shape])
    except SpikecError as err:
        raise layer.fail(f"the convolution cannot take its input of shape {b.shape}: {err}") from None
    if got != shape:
        raise layer.fail(f"the convolution gives shape {got}, but the layer declares {shape}")
    b.add(f"layer{layer.index}_synapse", synapse)
    b.neuron(layer, f"layer{layer.index}", _bias_field(layer), shape, first=False)


def _flatten(b: _Builder, layer: _Layer) -> None:
    b.flatten_next = True


LAYERS: dict[str, Callable[[_Builder, _Layer], None]] = {
    "input": _input,
    "dense": _dense,
    "dense_rec": _dense,
    "conv": _conv,
    "flatten": _flatten,
}


def import_netx(path: str | Path, *, reset_interval: int = 0, reset_offset: int = 0) -> Graph:
    """Read a netx ``.net`` file into a Loihi-dialect graph (Input → layers → Output).

    ``reset_interval`` > 0 (``--reset-interval``) zeroes the k-th neuron layer's u and v at the steps
    ``t ≡ reset_offset + 1 + k (mod reset_interval)``, as lava-dl's ``Network(reset_interval=…)``.
    """
    path = Path(path)
    if reset_interval < 0:
        raise UsageError(f"{path}: reset_interval (--reset-interval) must be at least 1, got {reset_interval}")
    if reset_offset and not reset_interval:
        raise UsageError(f"{path}: reset_offset (--reset-offset) needs reset_interval (--reset-interval)")
    data = read_hdf5(path, expect="netx file", fix="export the network again with lava-dl's netx")
    groups = data.get("layer")
    if not isinstance(groups, dict):
        raise FrontendError(f"{path}: not a netx file (no /layer group)")
    keys = [k for k in groups if not k.isdigit() or not isinstance(groups[k], dict)]
    if keys:
        raise FrontendError(f"{path}: /layer/{keys[0]} is not a layer group (netx numbers its layers 0, 1, ...)")
    layers = [_Layer(int(k), _decode(groups[k]), str(path)) for k in sorted(groups, key=int)]
    b = _Builder(path.name, reset_interval, reset_offset)
    for layer in layers:
        handler = LAYERS.get(layer.type)
        if handler is None:
            raise layer.fail(f"layer type {shown(layer.type)} is not supported; supported: {sorted(LAYERS)}")
        try:
            handler(b, layer)
        except VerifyError as err:  # a node the layer's values make invalid: name the file and layer
            raise layer.fail(str(err)) from None
    if b.last is None or b.last == "input":
        raise FrontendError(f"{path}: the network has no neuron layers")
    if reset_interval and not b.lif_layers:
        raise UsageError(
            f"{path}: reset_interval (--reset-interval) resets LIF (CUBA/LOIHI) layers, and this network has none "
            f"(SDNN neurons have no reset); drop the option"
        )
    if reset_interval and b.sdnn_layers:
        warnings.warn(
            f"{path}: SDNN layers {b.sdnn_layers} have no reset; reset_interval applies to the LIF layers only "
            f"(lava-dl ignores it there too)",
            SpikecWarning,
            stacklevel=2,
        )
    b.add("output", Output())
    return Graph(b.nodes, b.edges)


def spike_events_to_raster(events: np.ndarray, steps: int, neurons: int) -> np.ndarray:
    """slayer's numpy spike events (rows ``[neuron, channel, t_ms]``) as a (steps, neurons) 0/1 raster.

    As ``slayer.io.read_np_spikes(...).to_tensor(dim=(1, neurons, steps))`` bins them: step
    ``round(t)`` (half to even), events outside the window dropped.
    """
    events = np.asarray(events, np.float64)
    if events.ndim != 2 or events.shape[1] < 3:
        raise FrontendError(f"spike events must be rows [neuron, channel, t], got shape {events.shape}")
    t = np.round(events[:, 2]).astype(np.int64)
    x = np.round(events[:, 0]).astype(np.int64)
    keep = (t >= 0) & (t < steps) & (x >= 0) & (x < neurons)
    raster = np.zeros((steps, neurons))
    raster[t[keep], x[keep]] = 1.0
    return raster


def read_netx(path: str | Path, *, reset_interval: int | None = None, reset_offset: int | None = None) -> Graph:
    """The ``.net`` reader spikec's model loader calls (``Loihi2Target.formats``): options not given are None."""
    return import_netx(path, reset_interval=reset_interval or 0, reset_offset=reset_offset or 0)


def export_netx(graph: Graph, path: str | Path) -> None:
    """Write a Loihi-dialect chain as a netx ``.net`` file (``spikec.targets.loihi2.netx_export``)."""
    from spikec.targets.loihi2.netx_export import export_netx as write

    write(graph, path)
