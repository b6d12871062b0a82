"""The pass ``akida-map{device=NAME}``: map the lowered model onto one of akida's virtual devices.

``device`` names a virtual device of the akida package (``akida.virtual_devices``: ``SixNodesIPv2``, the
default, ``TwoNodesIPv2``, ``FourNodesIPv2``, ``TwelveNodesIPv2``; the IP v1 devices ``AKD1000``,
``AKD1500``, ``TwoNodesIPv1`` are refused, as the engine refuses them: "The IP version of the model and
device must be identical." — this target emits IP v2 layers). A copy of the model is mapped with
``hw_only=True`` (``emit.map_copy``); the result (NPs by type, program size, or the engine's reason it does not
map) is the pass's side result, which ``emit`` writes into ``report.json``. The graph is unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spikec.errors import TargetError
from spikec.ir.graph import Graph
from spikec.pipeline import PassResult

DEFAULT_DEVICE = "SixNodesIPv2"
MODEL_IP = "v2"  # the IP version of the layers this target emits
DEVICES = ("TwoNodesIPv2", "FourNodesIPv2", "SixNodesIPv2", "TwelveNodesIPv2", "AKD1000", "AKD1500", "TwoNodesIPv1")


@dataclasses.dataclass(frozen=True)
class MapResult(PassResult):
    """The unchanged graph and ``mapping``: what ``emit.map_copy`` found on the device."""

    mapping: dict[str, Any] = dataclasses.field(default_factory=dict)


def device_version(akida: Any, name: str) -> tuple[Any, str]:
    """The virtual device ``name`` and its IP version ("v1", "v2"), or a ``TargetError`` naming the choices."""
    if name not in DEVICES:
        raise TargetError(
            f"akida-map: device {name!r} is not one of akida's virtual devices ({', '.join(DEVICES)}); "
            f"e.g. --pass-option akida-map.device={DEFAULT_DEVICE}"
        )
    device = getattr(akida, name)()
    return device, str(device.version.ip_version).rsplit(".", 1)[-1]


def akida_map(graph: Graph, *, device: str = DEFAULT_DEVICE) -> MapResult:
    """Map the Akida dialect graph onto the virtual ``device`` (module docstring): NPs by type, program size."""
    from spikec.plugins import load_target
    from spikec.targets.akida.emit import build_model, map_copy

    akida = load_target("akida").require("akida", "pip install 'spikec[akida]' (akida 2.19.3, numpy only)")
    _, version = device_version(akida, device)
    if version != MODEL_IP:
        ok = ", ".join(d for d in DEVICES if d.endswith("IPv2"))
        raise TargetError(
            f"akida-map: device {device} is Akida IP {version}, the model's layers are IP {MODEL_IP}: the engine "
            f'requires "The IP version of the model and device must be identical."; choose one of {ok}'
        )
    return MapResult(graph, False, mapping=map_copy(build_model(graph), graph, device))
