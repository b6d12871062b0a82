"""spikec: a neuromorphic compiler from ANN/SNN models to spiking IR and neuromorphic chips."""

from spikec.errors import SpikecError
from spikec.ir import Edge, Graph

__version__ = "0.1.0"

__all__ = ["Edge", "Graph", "SpikecError", "__version__"]
