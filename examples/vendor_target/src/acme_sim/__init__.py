"""ACME-1's own software: its configuration format and a reference simulator (numpy only; no spikec).

This package stands for a chip vendor's SDK. It is written from the chip's specification below and knows
nothing of spikec: spikec's ``acme1`` target (``acme_spikec``) writes configurations in this format and
checks its own interpreter against this simulator (``spikec verify``). In a real plugin the SDK would be a
separate distribution; the template ships it beside the plugin so that everything runs offline.

The ACME-1 chip (a made-up chip; the figures are in ``acme_spikec/resources.toml``)
----------------------------------------------------------------------------------
A network is a list of *neuron groups* evaluated in order at every time step. Group g has n neurons, each
with a signed 24-bit membrane ``v``, a threshold ``θ`` (1 .. 2²³ − 1), a bias ``b`` (signed 16-bit) and an
initial membrane ``v₀``; the group has one leak shift ``k`` (0 .. 15) and is either *spiking* or a
*readout*. Its synapses come from sources (a host input, or an earlier group's spikes) through 8-bit signed
weight matrices ``W`` (−128 .. 127, rows = the group's neurons). Host inputs are integers 0 .. 255.

Each step, for each group in order, with ``x_s`` the source's value at this step (0/1 spikes, or the host's
integers):

    I = Σ_s W_s · x_s
    v ← sat(v − [k > 0]·(v >> k) + I + b),      sat clips to [−2²³, 2²³ − 1], >> is the arithmetic shift
    spiking:  z = [v ≥ θ],  v ← v − z·θ  (reset by subtraction),  the group sends z
    readout:  the group sends v (it never fires)

At step 0 every ``v`` is ``v₀``. Groups are placed on cores (at most 256 neurons per core); a group whose
neurons span several cores computes each core's rows of ``W`` there. ``config.py`` gives the file format.
"""

from acme_sim.config import FORMAT, ConfigError, Group, NetworkConfig, Synapse, read_config, write_config
from acme_sim.simulator import V_MAX, V_MIN, SimResult, simulate

__all__ = [
    "FORMAT",
    "V_MAX",
    "V_MIN",
    "ConfigError",
    "Group",
    "NetworkConfig",
    "SimResult",
    "Synapse",
    "read_config",
    "simulate",
    "write_config",
]
