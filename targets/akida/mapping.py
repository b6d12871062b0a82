"""The pass ``akida-map{device=NAME}``: map the lowered model onto one of akida's virtual devices.

``device`` names a virtual device of the akida package (``akida.virtual_devices``): IP v2 ``TwoNodesIPv2``,
``FourNodesIPv2``, ``SixNodesIPv2``, ``TwelveNodesIPv2``; IP v1 ``AKD1000``, ``AKD1500``, ``TwoNodesIPv1``. Left
out, it is ``SixNodesIPv2`` for a model of IP v2 layers and ``AKD1000`` for one of IP v1 layers
(``quantize.ip_version=1``). A device of the other IP version is refused, as the engine refuses it: "The IP
version of the model and device must be identical.". A copy of the model is mapped with ``hw_only=True``
(``emit.map_copy``); the result (NPs by type, program size, or the engine's reason it does not map) is the pass's
side result, which ``emit`` writes into ``report.json``. The graph is unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from spikec.errors import TargetError
from spikec.ir.graph import Graph
from spikec.pipeline import PassResult

DEVICES = {  # akida's virtual devices and their IP version (the engine's ``device.version.ip_version``)
    "TwoNodesIPv2": "v2", "FourNodesIPv2": "v2", "SixNodesIPv2": "v2", "TwelveNodesIPv2": "v2",
    "AKD1000": "v1", "AKD1500": "v1", "TwoNodesIPv1": "v1",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class MapResult(PassResult):
    """The unchanged graph and ``mapping``: what ``emit.map_copy`` found on the device."""

    mapping: dict[str, Any] = dataclasses.field(default_factory=dict)


def device_version(akida: Any, name: str) -> tuple[Any, str]:
    """The virtual device ``name`` and its IP version ("v1", "v2"), or a ``TargetError`` naming the choices."""
    if name not in DEVICES:
        raise TargetError(
            f"akida-map: device {name!r} is not one of akida's virtual devices ({', '.join(DEVICES)}); "
            "e.g. --pass-option akida-map.device=SixNodesIPv2"
        )
    device = getattr(akida, name)()
    return device, str(device.version.ip_version).rsplit(".", 1)[-1]


def akida_map(graph: Graph, *, device: str = "") -> MapResult:
    """Map the Akida dialect graph onto the virtual ``device`` (module docstring): NPs by type, program size."""
    from spikec.plugins import load_target
    from spikec.targets.akida.emit import DEVICES as DEFAULTS
    from spikec.targets.akida.emit import build_model, ip_version, map_copy

    akida = load_target("akida").require("akida", "pip install 'spikec[akida]' (akida 2.19.3, numpy only)")
    model_ip = ip_version(graph)
    device = device or DEFAULTS[model_ip]
    _, version = device_version(akida, device)
    if version != model_ip:
        ok = ", ".join(d for d, ip in DEVICES.items() if ip == model_ip)
        raise TargetError(
            f"akida-map: device {device} is Akida IP {version}, the model's layers are IP {model_ip}: the engine "
            f'requires "The IP version of the model and device must be identical."; choose one of {ok}'
            + (" or compile for IP v1 (--akida-version 1)" if version == "v1" else "")
        )
    return MapResult(graph, False, mapping=map_copy(build_model(graph), graph, device))
