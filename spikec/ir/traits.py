"""Traits: facts about a node kind, declared on its class.

A kind states what it is once, where it is defined, and every pass or analysis asks
``node.has_trait(Neuron)`` (or ``get_trait`` for a trait with fields) instead of keeping its own
list of kind names (xDSL's op traits)::

    class LIF(_Neuron):
        kind = "LIF"
        traits = frozenset({Neuron(), EmitsSpikes()})

A trait is a frozen dataclass; its fields parametrise the fact (``Neuron(compartments=2)``,
``Additive(when=...)``). Traits are inherited like any class attribute; a subclass that differs
assigns its own ``traits``.

**Role** (exactly one per kind that sits inside a graph; graph inputs and kinds holding a nested
graph have none): what the kind is on event-driven hardware. ``spikec.spike_check`` derives its
binary-spike rules from it, ``spikec.demand`` its neuron layers.

- ``Neuron``: integrates its input over time, one neuron per element, and emits spikes or its membrane;
- ``Synaptic``: applies weights, or multiplies inputs together; event-driven only on spike inputs;
- ``Routing``: moves, selects, sums or rescales values without multiplying two of them;
- ``NonEvent``: has no event-driven form (runs on the host, or a pass replaces it).

**Values**: ``EmitsSpikes`` (the output is 0/1 spikes), ``EmitsCounts`` (integer graded spikes),
``Additive`` (f(a + b) = f(a) + f(b)), ``Product`` (linear in each operand), ``ScalePassesThrough`` (a
positive scale moves through it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spikec.ir.node import Node


@dataclasses.dataclass(frozen=True)
class Trait:
    """Base of every trait: a hashable fact about a node kind."""

    def describe(self) -> str:
        return type(self).__name__


# -- roles ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Neuron(Trait):
    """Integrates its (summed) input over time, one neuron per input element (output shape = input shape).

    A layer of them is placed on a core's neurons (``spikec.demand``), ``compartments`` per neuron.
    Without ``EmitsSpikes`` it outputs its membrane (a readout: LI, I).
    """

    compartments: int = 1


@dataclasses.dataclass(frozen=True)
class Synaptic(Trait):
    """Applies weights to its inputs or multiplies them together (Dense, Conv, MatMul, SumPool, attention).

    Event-driven only when every input is a spike train.
    """


@dataclasses.dataclass(frozen=True)
class Routing(Trait):
    """Moves, selects, sums or rescales values without multiplying two of them (Reshape, Concat, Add, Delay).

    Legal on any values. ``rescales``: the values are scaled or shifted (Scale, Bias, BatchNorm), so
    spikes in are reals out; otherwise each output is an input value or a sum of them.
    """

    rescales: bool = False


@dataclasses.dataclass(frozen=True)
class NonEvent(Trait):
    """No event-driven form (Softmax, LayerNorm, GELU, ReLU): computed on the host or converted away."""


ROLES: tuple[type[Trait], ...] = (Neuron, Synaptic, Routing, NonEvent)


# -- facts about the values ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EmitsSpikes(Trait):
    """The output is spikes: 0 or 1 per element and step; −1, 0 or 1 when the node's ``polarity`` is bipolar."""

    def signed(self, node: Node) -> bool:
        """Whether ``node`` also emits −1 spikes."""
        return str(getattr(node, "polarity", "unipolar")) == "bipolar"


@dataclasses.dataclass(frozen=True)
class EmitsCounts(Trait):
    """The output is integers: graded spikes (a message of an integer value per element and step), as sigma-delta
    neurons send; exact on chips that move integer messages, not on binary-event ones."""


@dataclasses.dataclass(frozen=True)
class Additive(Trait):
    r"""Additive in its (summed) input, :math:`f(a + b) = f(a) + f(b)`, for nodes where ``when(node)`` holds.

    ``when`` states the condition on the node's fields (a Pad only with value 0, a Dense without
    bias); None: always. The exact SNN passes increments through such nodes unchanged.
    """

    when: Callable[[Any], bool] | None = None

    def holds(self, node: Node) -> bool:
        return self.when is None or bool(self.when(node))


def _no_slots(node: Any) -> tuple[int, ...]:
    return ()


@dataclasses.dataclass(frozen=True)
class Product(Trait):
    """A product of its operands, linear in each (MatMul, Binary mul): with a Constant operand at one of
    ``constant_slots(node)`` (edge positions) it is linear in the other operand."""

    constant_slots: Callable[[Any], tuple[int, ...]] = _no_slots

    def slots(self, node: Node) -> tuple[int, ...]:
        return tuple(self.constant_slots(node))


@dataclasses.dataclass(frozen=True)
class ScalePassesThrough(Trait):
    r"""Positively homogeneous per channel: a positive scale on the input comes out as a scale on the output,
    :math:`f(\sigma \odot x) = \sigma' \odot f(x)` (σ' is σ laid out as the output: reshaped, transposed,
    concatenated). ``threshold-balance`` carries activation scales through such nodes, ``fuse`` moves a Scale
    past them. ``when`` states the condition on the node's fields (a ``Pad`` only with value 0)."""

    when: Callable[[Any], bool] | None = None

    def holds(self, node: Node) -> bool:
        return self.when is None or bool(self.when(node))


def check_traits(cls: type, traits: frozenset[Trait]) -> None:
    """Raise ``TypeError`` naming the kind if ``traits`` holds something that is not a trait or two roles."""
    name = getattr(cls, "kind", "") or cls.__name__
    if not isinstance(traits, frozenset):
        raise TypeError(f"node kind {name!r}: traits must be a frozenset of Trait objects, got {type(traits).__name__}")
    strays = [t for t in traits if not isinstance(t, Trait)]
    if strays:
        raise TypeError(f"node kind {name!r}: {strays!r} in traits are not spikec.ir.traits.Trait objects")
    roles = sorted(t.describe() for t in traits if isinstance(t, ROLES))
    if len(roles) > 1:
        raise TypeError(f"node kind {name!r} declares {len(roles)} roles ({', '.join(roles)}); a kind has one")
