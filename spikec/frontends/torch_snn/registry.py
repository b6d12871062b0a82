"""The registry of framework neuron modules spikec recognises during PyTorch import.

A mapper turns one neuron module (SpikingJelly ``LIFNode``, snnTorch ``Leaky``, ...) into the SIR
neuron whose discrete update is the framework's own (docs/torch-frontend.md has the table). Time
constants are given **in steps** (dt = 1); the ONNX handler scales them to the graph's dt.

Mappers are keyed by the module's exact class, written ``"package.module.ClassName"`` so that
spikec never imports a framework: a user's subclass may change the dynamics, so it is not
matched by its base class (it gets the "unknown stateful module" error instead).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from spikec.errors import FrontendError
from spikec.ir.node import Node
from spikec.registry import Registry

Mapper = Callable[[Any], Node]
NEURON_MAPPERS: Registry[str, Mapper] = Registry("neuron mapper")

# Base classes of framework modules that keep state between steps: an instance of one whose exact
# class has no mapper is refused (its dynamics are unknown to spikec).
STATEFUL_BASES = (
    "spikingjelly.activation_based.base.MemoryModule",
    "snntorch._neurons.neurons.SpikingNeuron",
)


def class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def neuron_mapper(*class_names: str) -> Callable[[Mapper], Mapper]:
    """Register ``fn`` as the mapper of each fully qualified module class in ``class_names``."""
    return NEURON_MAPPERS.register(*class_names)


def mapper_for(module: Any) -> Mapper | None:
    return NEURON_MAPPERS.get(class_name(type(module)))


def stateful_framework_base(module: Any) -> str | None:
    """The framework's stateful base class ``module`` derives from, if any."""
    names = {class_name(c) for c in type(module).__mro__}
    return next((b for b in STATEFUL_BASES if b in names), None)


def supported_classes() -> list[str]:
    return sorted(NEURON_MAPPERS)


class Unsupported(FrontendError):
    """A recognised neuron module uses an option spikec cannot reproduce exactly."""
