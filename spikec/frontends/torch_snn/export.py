"""Make recognised neuron modules survive ``torch.onnx.export`` as one ONNX node each.

``prepared(module)`` (a context manager) changes the user's module in place and restores it on exit:

1. every SpikingJelly module is set to single-step mode (``step_mode = "s"``): the exported graph
   is **one time step**, and spikec's interpreter supplies time;
2. every module whose exact class has a mapper (``registry.NEURON_MAPPERS``) is mapped to its SIR
   neuron and replaced by a ``NeuronPlaceholder``, whose forward is the custom op
   ``torch.ops.spikec.neuron(x, index)``; the exporter turns it into a ``spikec.export.Neuron``
   node (a translation registered with ``custom_translation_table``);
3. ``refuse_unknown_state``: one eager forward on the example checks that no module is left that
   keeps state between calls (a framework neuron without a mapper, or a user's own stateful
   module): such a module would be exported as if it had no state, so it is refused with its path.

``finish(model, sites)`` rewrites each placeholder node into ``spikec.<Kind>`` (domain ``spikec``)
carrying the SIR neuron's fields as attributes (arrays as float64 tensors, modes as strings,
time constants in steps), which ``spikec/frontends/onnx/handlers_spikec.py`` reads back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx

from spikec.errors import FrontendError
from spikec.frontends.torch_snn.registry import (
    Unsupported,
    mapper_for,
    stateful_framework_base,
    supported_classes,
)
from spikec.ir.node import FieldKind, Node

DOMAIN = "spikec"  # the domain of the neuron nodes in the ONNX model spikec hands its ONNX front end
EXPORT_DOMAIN = "spikec.export"  # the placeholder's domain while torch.onnx.export runs
SCHEMA = "(Tensor x, int index) -> Tensor"  # written out: this module's annotations are strings


@dataclasses.dataclass(frozen=True)
class NeuronSite:
    """One recognised neuron module: where it sits in the model and its SIR neuron."""

    path: str
    class_name: str
    node: Node
    extra_outputs: int  # framework outputs besides the spikes (snnTorch's mem, syn), not importable

    @property
    def origin(self) -> str:
        return f"torch:{self.path or '<top>'} ({self.class_name})"


def _torch() -> Any:
    import torch

    return torch


@functools.cache
def translation_table() -> dict[Any, Any]:
    """Define the ``spikec::neuron`` custom op and its ONNX translation (once per process)."""
    torch = _torch()
    import onnxscript
    from onnx.defs import OpSchema

    @torch.library.custom_op("spikec::neuron", mutates_args=(), schema=SCHEMA)
    def neuron(x: Any, index: int) -> Any:
        """Export-time stand-in for a neuron layer; run eagerly it outputs zeros (no spikes)."""
        return x.new_zeros(x.shape)

    @neuron.register_fake
    def _(x: Any, index: int) -> Any:
        return torch.empty_like(x)

    @torch.library.custom_op("spikec::neuron_state", mutates_args=(), schema=SCHEMA)
    def neuron_state(x: Any, index: int) -> Any:
        """Stand-in for a neuron's state output (snnTorch's mem/syn); importing a use of it fails."""
        return x.new_zeros(x.shape)

    @neuron_state.register_fake
    def _(x: Any, index: int) -> Any:
        return torch.empty_like(x)

    for op_type in ("Neuron", "NeuronState"):
        onnx.defs.register_schema(
            OpSchema(
                op_type,
                EXPORT_DOMAIN,
                1,
                inputs=[OpSchema.FormalParameter("x", "T")],
                outputs=[OpSchema.FormalParameter("y", "T")],
                type_constraints=[("T", ["tensor(float)", "tensor(double)"], "float tensors")],
                attributes=[OpSchema.Attribute("index", OpSchema.AttrType.INT, "the neuron site")],
            )
        )
    opset = onnxscript.values.Opset(EXPORT_DOMAIN, 1)

    def neuron_onnx(x: Any, index: int) -> Any:
        return opset.Neuron(x, index=index)

    def state_onnx(x: Any, index: int) -> Any:
        return opset.NeuronState(x, index=index)

    return {torch.ops.spikec.neuron.default: neuron_onnx, torch.ops.spikec.neuron_state.default: state_onnx}


@functools.cache
def _placeholder_class() -> type:
    torch = _torch()
    translation_table()

    class NeuronPlaceholder(torch.nn.Module):  # type: ignore[name-defined]
        """Stands for a recognised neuron module during export (see the module docstring)."""

        def __init__(self, index: int, site: NeuronSite) -> None:
            super().__init__()
            self.index, self.site = index, site

        def forward(self, x: Any, *state: Any, **kwargs: Any) -> Any:
            if any(s is not None for s in (*state, *kwargs.values())):
                raise FrontendError(
                    f"module '{self.site.path}' ({self.site.class_name}) is called with explicit state; spikec "
                    "imports one time step with the state kept inside the module: call it as layer(x) "
                    "(snnTorch: init_hidden=True, or let the layer keep mem itself)"
                )
            spikes = torch.ops.spikec.neuron(x, self.index)
            if not self.site.extra_outputs:
                return spikes
            return (spikes, *(torch.ops.spikec.neuron_state(x, self.index) for _ in range(self.site.extra_outputs)))

    return NeuronPlaceholder


def _extra_outputs(module: Any) -> int:
    """How many state tensors the framework module returns besides its spikes."""
    if stateful_framework_base(module) != "snntorch._neurons.neurons.SpikingNeuron":
        return 0
    if getattr(module, "init_hidden", False) and not getattr(module, "output", False):
        return 0
    return 2 if hasattr(module, "alpha") else 1  # Synaptic: (spk, syn, mem); Leaky: (spk, mem)


@contextlib.contextmanager
def prepared(module: Any) -> Iterator[list[NeuronSite]]:
    """Within the block, ``module`` is in single-step mode with its neurons replaced by placeholders.

    The module is changed in place (a deep copy fails on a module holding non-leaf state tensors
    after a run) and restored on exit, whatever happens inside.
    """
    modes = [(m, m.step_mode) for m in module.modules() if _is_spikingjelly(m) and hasattr(m, "step_mode")]
    swapped: list[tuple[str, Any]] = []
    try:
        for m, _ in modes:
            m.step_mode = "s"
        yield _swap_neurons(module, swapped)
    finally:
        for path, original in reversed(swapped):
            _replace(module, path, original)
        for m, mode in modes:
            m.step_mode = mode


def _is_spikingjelly(module: Any) -> bool:
    return type(module).__module__.startswith("spikingjelly.")


def _replace(root: Any, path: str, new: Any) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, new)


def _swap_neurons(module: Any, swapped: list[tuple[str, Any]]) -> list[NeuronSite]:
    found = [(path, m) for path, m in module.named_modules() if mapper_for(m) is not None]
    sites: list[NeuronSite] = []
    if not found:
        return sites
    placeholder = _placeholder_class()
    for path, m in found:
        cls = type(m).__name__
        if not path:
            raise FrontendError(f"the model is a single {cls}; wrap it in a module with the layers that feed it")
        mapper = mapper_for(m)
        assert mapper is not None
        try:
            node = mapper(m)
        except Unsupported as err:
            raise FrontendError(f"module '{path}' ({cls}): {err}") from None
        site = NeuronSite(path, cls, node, _extra_outputs(m))
        _replace(module, path, placeholder(len(sites), site))
        swapped.append((path, m))
        sites.append(site)
    return sites


def refuse_unknown_state(module: Any, inputs: tuple[Any, ...]) -> None:
    """Fail if a module of ``module`` (already prepared) keeps state between calls.

    A framework neuron without a mapper is recognised by its base class; any other module by
    running one forward and comparing every module's tensor attributes and buffers before and
    after it (a stateless module, e.g. BatchNorm in eval mode, changes none).
    """
    torch = _torch()
    for path, m in module.named_modules():
        base = stateful_framework_base(m)
        if base is not None:
            raise FrontendError(_unknown_message(path, m, f"it derives from {base}"))
    before = dict(_tensor_state(module))
    with torch.no_grad():
        module(*inputs)
    after = dict(_tensor_state(module))
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is None or new is None or old.shape != new.shape or not torch.equal(old, new):
            path, attr = key
            raise FrontendError(
                _unknown_message(path, module.get_submodule(path), f"its '{attr}' changed during one forward pass")
            )


def _tensor_state(module: Any) -> Iterator[tuple[tuple[str, str], Any]]:
    torch = _torch()
    for path, m in module.named_modules():
        for attr, value in vars(m).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
                yield (path, attr), value.detach().clone()
        for attr, value in m.named_buffers(recurse=False):
            if value is not None:
                yield (path, attr), value.detach().clone()


def _unknown_message(path: str, module: Any, why: str) -> str:
    cls = f"{type(module).__module__}.{type(module).__qualname__}"
    return (
        f"module '{path or '<top>'}' ({cls}) keeps state between time steps ({why}), and spikec does not know "
        f"its dynamics, so an export would run it as if it had none. Supported neuron classes: "
        f"{', '.join(supported_classes())}. Use one of them, or register a mapper for your class with "
        "spikec.frontends.torch_snn.neuron_mapper (docs/torch-frontend.md)"
    )


def finish(model: onnx.ModelProto, sites: list[NeuronSite]) -> dict[str, str]:
    """Rewrite the placeholder nodes of ``model`` (in place); returns ONNX node name → origin."""
    consumed = {name for n in model.graph.node for name in n.input} | {o.name for o in model.graph.output}
    origins: dict[str, str] = {}
    keep = []
    for n in model.graph.node:
        if n.domain != EXPORT_DOMAIN:
            keep.append(n)
            continue
        site = sites[onnx.helper.get_attribute_value(n.attribute[0])]
        if n.op_type == "NeuronState":
            if n.output[0] in consumed:
                raise FrontendError(
                    f"module '{site.path}' ({site.class_name}): the model uses its membrane/synaptic state output; "
                    "spikec imports a neuron layer's spikes only (the state lives inside the SIR neuron)"
                )
            continue
        n.domain, n.op_type = DOMAIN, site.node.kind
        del n.attribute[:]
        n.attribute.extend(neuron_attributes(site.node))
        origins[n.name] = site.origin
        keep.append(n)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    for opset in model.opset_import:
        if opset.domain == EXPORT_DOMAIN:
            opset.domain = DOMAIN
    return origins


def neuron_attributes(node: Node) -> list[onnx.AttributeProto]:
    """A SIR neuron's fields as ONNX attributes (float64 tensors and strings)."""
    kinds = node.field_kinds()
    attrs = []
    for name, value in node.params().items():
        if kinds[name] == FieldKind.ARRAY:
            tensor = onnx.numpy_helper.from_array(np.asarray(value, dtype=np.float64), name=name)
            attrs.append(onnx.helper.make_attribute(name, tensor))
        elif kinds[name] == FieldKind.STR:
            attrs.append(onnx.helper.make_attribute(name, str(value)))
        else:
            raise TypeError(f"{node.kind}.{name}: field kind {kinds[name]} has no ONNX attribute encoding")
    return attrs
