r"""Delaying a convolution's input in relay neurons instead of in its synapses.

A synapse that must arrive ``d`` steps late (a residual's shorter path, targets/loihi2/layer.py) can hold the
delay itself: for a ``LoihiConv`` that is Lava's ``DelaySparse`` over the conv's connectivity, which stores
every synapse with its weight and 6-bit delay, :math:`O \cdot \frac{C}{g} \cdot k_h k_w \cdot (b + 6)` bits per
output position instead of one shared kernel. Or the *source* can be delayed, and the conv stays a shared-kernel
``LoihiConv`` (Lava ``Conv``) reading the delayed copy:

* a **relay layer** is the OR layer of a 1×1 window: a depthwise 1×1 ``LoihiConv`` of ones (``groups = C``)
  into a ``LoihiLIF`` with ``du = dv = 4095`` (no memory) and ``vth = 0``, so it fires exactly when its
  one input spiked: :math:`r_t = s_{t-1-d'}` for binary spikes ``s`` (one synapse step, plus the relay
  synapse's own delay ``d'``);
* a delay ``d`` is one relay whose identity synapse delays the remaining :math:`d - 1` (an identity
  ``DelaySparse``: one synapse of ``1 + 6`` bits per neuron), or a chain of ``d`` relays without delays.

``choose`` prices the forms with the target's demand model (targets/loihi2/demand.py's synapse ops and the
resource file's core capacities) as cores' worth of synaptic memory plus cores' worth of neurons:

.. math:: \mathrm{cost} = \frac{\text{synaptic bits}}{\text{bits per core}}
          + \max\Big(\frac{\text{neurons}}{\text{neurons per core}},
                       \frac{\text{state bytes}}{\text{bytes per core}}\Big)

with a shared kernel counted once on each of the cores the reading layer's neurons need at least. It keeps the
per-synapse delay where that is cheapest (identity shortcuts, small maps). Relays of binary spikes are exact, so
the float SNN's output does not change; a graded source cannot be relayed by a LIF and keeps the synaptic delay.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import numpy as np

from spikec.demand import DemandContext
from spikec.resources import ResourceModel, resource_model
from spikec.targets.loihi2.alignment import RelaysOutnumberNeurons
from spikec.targets.loihi2.dialect import LoihiConv, LoihiLIF
from spikec.targets.loihi2.neurons import NO_CURRENT
from spikec.targets.loihi2.signals import Signal

if TYPE_CHECKING:
    from spikec.targets.loihi2.layer import Lowering

Shape3 = tuple[int, int, int]


@functools.cache
def _model() -> ResourceModel:
    return resource_model("loihi2")


def identity_conv(channels: int, delay: int) -> LoihiConv:
    """The relay's synapse: a depthwise 1×1 conv of ones over ``channels`` channels, ``delay`` steps late."""
    return LoihiConv(weight=np.ones((channels, 1, 1, 1), np.int64), groups=channels, delay=delay)


def _synapse_bits(conv: LoihiConv, in_shape: Shape3, out_shape: Shape3, copies: int) -> float:
    """Synaptic bits of ``conv`` over its whole output by the demand model; a shared kernel ``copies`` times."""
    from spikec.targets.loihi2.demand import _loihi_conv

    model = _model()
    ctx = DemandContext(1.0, model, 8, model.synapses["sparse_index_bits"].value)
    op = _loihi_conv("", conv, [in_shape], out_shape, 0, ctx)
    box = tuple((0, n) for n in out_shape)
    return float(op.memory_bits(box)) * (1 if conv.delay else copies)


def _cores(bits: float, neurons: int) -> float:
    """Cores' worth of synaptic memory, neurons and LIF state (module docstring)."""
    model = _model()
    state = model.neuron_state_bytes.get("LoihiLIF", model.neuron_state_bytes["default"]).value
    held = max(neurons / model.core["neurons"].value, neurons * state / model.core["neuron_state_bytes"].value)
    return bits / model.core["synaptic_memory_bits"].value + held


def costs(conv: LoihiConv, in_shape: Shape3, out_shape: Shape3, delay: int) -> dict[int, float]:
    """Cores' worth of each way to delay ``conv``'s input by ``delay`` steps, by the number of relay layers:
    0 (the conv's own per-synapse delay), 1 (a relay whose identity synapse delays ``delay − 1``), ``delay``
    (a chain of relays). Only the parts that differ are counted: the conv, the relays and their synapses."""
    copies = math.ceil(math.prod(out_shape) / _model().core["neurons"].value)
    shared = LoihiConv(weight=conv.weight, stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                       groups=conv.groups)  # fmt: skip
    delayed = LoihiConv(weight=conv.weight, stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                        groups=conv.groups, delay=delay)  # fmt: skip
    conv_bits = _synapse_bits(shared, in_shape, out_shape, copies)
    neurons = math.prod(in_shape)
    relay_copies = math.ceil(neurons / _model().core["neurons"].value)

    def relay(step_delay: int) -> float:
        return _synapse_bits(identity_conv(in_shape[0], step_delay), in_shape, in_shape, relay_copies)

    options = {0: _cores(_synapse_bits(delayed, in_shape, out_shape, copies), 0),
               1: _cores(conv_bits + relay(delay - 1), neurons)}  # fmt: skip
    if delay > 1:
        options[delay] = _cores(conv_bits + delay * relay(0), delay * neurons)
    return options


def choose(conv: LoihiConv, source: Signal, out_shape: tuple[int, ...], delay: int) -> int:
    """How many relay layers delay ``conv``'s input best (0: keep the synaptic delay; ``costs``)."""
    if delay <= 0 or source.message_bits != 0 or len(source.shape) != 3 or len(out_shape) != 3:
        return 0
    in_shape = (source.shape[0], source.shape[1], source.shape[2])
    options = costs(conv, in_shape, (out_shape[0], out_shape[1], out_shape[2]), delay)
    return min(options, key=lambda k: (options[k], k))


def delayed(low: Lowering, source: Signal, delay: int, relays: int) -> Signal:
    """``source``'s spikes ``delay`` steps later through ``relays`` relay layers (1: the last ``delay − 1`` steps
    on its identity synapse; ``delay``: a chain); relays already emitted for the same source and delay are reused."""
    from spikec.targets.loihi2.layer import start_reset

    name = f"{source.name}.relay{delay}"
    if name in low.nodes:
        return Signal(name, source.shape, source.max_abs, 0, source.latency + delay, source.early)
    previous = source if relays == 1 else delayed(low, source, delay - 1, relays - 1)
    step_delay = delay - 1 if relays == 1 else 0
    latency = previous.latency + 1 + step_delay
    channels = source.shape[0]
    low.relay_neurons += math.prod(source.shape)
    if low.relay_budget is not None and low.relay_neurons > low.relay_budget:
        raise RelaysOutnumberNeurons(name)
    syn = low.emit(f"{name}.synapse", identity_conv(channels, step_delay), previous.name)
    lif = LoihiLIF(du=NO_CURRENT, dv=NO_CURRENT, vth=np.asarray(0), **start_reset(latency, source.early))
    low.emit(name, lif, syn)
    low.layers.append({"name": name, "kind": "relay", "lowered": f"relay layer (identity conv delay {step_delay} + "
                                                                  "LIF vth=0): delays a conv's input"})  # fmt: skip
    return Signal(name, source.shape, source.max_abs, 0, latency, source.early)
