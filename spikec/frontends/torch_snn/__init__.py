"""Recognise SNN framework neuron modules (SpikingJelly, snnTorch) during PyTorch import.

``spikec.frontends.torch_import.from_torch`` calls ``prepared`` around the export: each recognised
neuron becomes one ``spikec.<Kind>`` ONNX node carrying its parameters, lowered to the SIR neuron
whose discrete update is the framework's (docs/torch-frontend.md). Nothing here imports a
framework; mappers are keyed by class name and read the module's attributes.

To support another neuron class, register a mapper from the module to a SIR neuron (time
constants in steps)::

    @neuron_mapper("mypkg.neurons.MyLIF")
    def my_lif(module) -> Node:
        return LIF(tau=np.asarray(module.tau), v_threshold=np.asarray(module.threshold))
"""

from spikec.frontends.torch_snn import snntorch, spikingjelly  # noqa: F401 - importing registers the mappers
from spikec.frontends.torch_snn.export import (
    DOMAIN,
    NeuronSite,
    finish,
    prepared,
    refuse_unknown_state,
    translation_table,
)
from spikec.frontends.torch_snn.registry import NEURON_MAPPERS, neuron_mapper, supported_classes

__all__ = [
    "DOMAIN",
    "NEURON_MAPPERS",
    "NeuronSite",
    "finish",
    "neuron_mapper",
    "prepared",
    "refuse_unknown_state",
    "supported_classes",
    "translation_table",
]
