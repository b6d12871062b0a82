"""Find targets through the ``spikec.targets`` entry-point group (built-ins included).

A vendor publishes ``[project.entry-points."spikec.targets"] mychip = "pkg.module:MyTarget"``;
spikec lists it by name without importing it, and imports it only when used.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from spikec.errors import TargetError
from spikec.target import Target

GROUP = "spikec.targets"


def target_entry_points() -> dict[str, EntryPoint]:
    """Name -> entry point; two distributions claiming one name is an error naming both."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found and found[ep.name].value != ep.value:
            raise TargetError(
                f"target name '{ep.name}' is claimed twice: by {found[ep.name].value} and by "
                f"{ep.value}; uninstall one of the packages"
            )
        found[ep.name] = ep
    return dict(sorted(found.items()))


def load_target(name: str) -> Target:
    """Import and instantiate the target called ``name``."""
    eps = target_entry_points()
    if name not in eps:
        raise TargetError(f"no target named '{name}'; installed: {', '.join(eps) or 'none'}")
    try:
        cls = eps[name].load()
    except Exception as err:  # a broken plugin must not take the CLI down with a traceback
        raise TargetError(f"target '{name}' ({eps[name].value}) failed to load: {type(err).__name__}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, Target)):
        raise TargetError(f"target '{name}' ({eps[name].value}) is not a spikec.target.Target subclass")
    return cls()
