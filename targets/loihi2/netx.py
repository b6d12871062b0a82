"""Read lava-dl netx ``.net`` files (HDF5) as Loihi-dialect SIR, with h5py only (the writer: ``netx_export``).

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

import h5py
import numpy as np

from spikec.errors import FrontendError, SpikecWarning, UsageError
from spikec.ir import Flatten, Graph, Input, Node, Output
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
        return str(self.fields.get("type", "?"))

    def fail(self, problem: str) -> FrontendError:
        return FrontendError(f"{self.file}: netx layer {self.index} ({self.type}): {problem}")

    def get(self, key: str) -> Any:
        if key not in self.fields:
            raise self.fail(f"required dataset '{key}' is missing")
        return self.fields[key]

    def pair(self, key: str, default: int) -> tuple[int, int]:
        value = np.atleast_1d(np.asarray(self.fields.get(key, default), np.int64))
        return (int(value[0]),) * 2 if value.size == 1 else (int(value[0]), int(value[1]))


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("ascii")
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        flat = value.ravel()
        return _decode(flat[0]) if flat.size else ""
    return value


def _read_group(group: h5py.Group) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in group.items():
        out[key] = _read_group(item) if isinstance(item, h5py.Group) else _decode(item[()])
    return out


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
        config = layer.fields.get("neuron", NO_NEURON)
        kind = str(config.get("type", "?"))
        origin = f"{self.file}:layer/{layer.index}"
        try:
            build = NEURONS[kind]
        except KeyError:
            raise layer.fail(f"neuron type {kind!r} is not supported; supported: {sorted(NEURONS)}") from None
        node, bits = build(self, layer, config, bias, shape, first)
        self.add(name, dataclasses.replace(node, origin=origin))
        self.message_bits = bits
        self.shape = shape
        self.neuron_layers += 1


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
        du=int(c.get("iDecay", 0)) - 1,
        dv=int(c.get("vDecay", 0)),
        vth=np.asarray(int(c.get("vThMant", 0)), np.int64),
        bias_mant=_bias(bias, shape),
        bias_exp=np.asarray(LIF_BIAS_EXP, np.int64),
        input_mode=(InputMode.BIAS if first else InputMode.CURRENT).value,
        reset_interval=interval,
        reset_offset=offset,
    )
    return node, int(c.get("messageBits", 0))


def _sdnn(b: _Builder, layer: _Layer, c: dict[str, Any], bias: np.ndarray | None, shape: Any, first: bool) -> Any:
    bits = int(c.get("messageBits", 16))
    b.sdnn_layers.append(layer.index)
    vth = np.asarray(int(c.get("vThMant", 0)), np.int64)
    if first:
        return LoihiDelta(vth=vth, spike_exp=SDNN_EXP, state_exp=SDNN_EXP), bits
    if "sigma_output" in c:
        return LoihiSigma(), bits
    return LoihiSigmaDelta(vth=vth, bias=_bias(bias, shape), spike_exp=SDNN_EXP, state_exp=SDNN_EXP), bits


NEURONS: dict[str, Callable[..., Any]] = {"CUBA": _lif, "LOIHI": _lif, "SDNN": _sdnn}


def _input(b: _Builder, layer: _Layer) -> None:
    shape = tuple(int(s) for s in np.atleast_1d(layer.get("shape")))
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
    mant, bits, exp, mode = optimize_weight_bits(layer.get(key), where)
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
    out = int(np.prod(layer.get("shape")))
    weight = np.asarray(layer.get("weight"))
    if "weight/imag" in layer.fields or isinstance(layer.fields.get("weight"), dict):
        raise layer.fail("complex weights (weight/real, weight/imag) are not supported")
    if weight.ndim == 1:
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
    b.neuron(layer, name, layer.fields.get("bias"), (out,), first=False)
    if layer.type == "dense_rec":
        # the neuron's spikes come back through weight_rec one step later, as in Lava's loop
        rec = _dense_synapse(b, layer, "weight_rec", b.message_bits, buffered=0)
        if rec.weight.shape != (out, out):
            raise layer.fail(f"weight_rec must be ({out}, {out}), got {rec.weight.shape}")
        b.nodes[f"{name}_recurrent"] = rec
        b.edges += [(name, f"{name}_recurrent"), (f"{name}_recurrent", name, True)]


def _conv(b: _Builder, layer: _Layer) -> None:
    shape = tuple(int(s) for s in np.atleast_1d(layer.get("shape")))
    weight = np.asarray(layer.get("weight"))
    weight = weight.reshape(weight.shape[:4])
    if not np.array_equal(weight, np.round(weight)):
        raise layer.fail("conv weights must be integers (Loihi synaptic weights)")
    if b.shape is None:
        raise layer.fail("a conv layer needs an input layer before it (netx cannot infer its input shape)")
    synapse = LoihiConv(
        weight=weight.astype(np.int64),
        stride=layer.pair("stride", 1),
        padding=layer.pair("padding", 0),
        dilation=layer.pair("dilation", 1),
        groups=int(layer.fields.get("groups", 1)),
        num_message_bits=b.message_bits,
        origin=f"{b.file}:layer/{layer.index}",
    )
    got = synapse.infer_shape([b.shape])
    if got != shape:
        raise layer.fail(f"the convolution gives shape {got}, but the layer declares {shape}")
    b.add(f"layer{layer.index}_synapse", synapse)
    b.neuron(layer, f"layer{layer.index}", layer.fields.get("bias"), shape, first=False)


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
    try:
        with h5py.File(path, "r") as f:
            if "layer" not in f:
                raise FrontendError(f"{path}: not a netx file (no /layer group)")
            groups = f["layer"]
            layers = [_Layer(int(k), _read_group(groups[k]), str(path)) for k in sorted(groups, key=int)]
    except OSError as err:
        raise FrontendError(f"{path}: cannot read as HDF5 ({err})") from err
    b = _Builder(path.name, reset_interval, reset_offset)
    for layer in layers:
        handler = LAYERS.get(layer.type)
        if handler is None:
            raise layer.fail(f"layer type {layer.type!r} is not supported; supported: {sorted(LAYERS)}")
        handler(b, layer)
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
