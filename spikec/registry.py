"""One table type for the project's rules by key: node kind → kernel, ONNX op type → handler, class name → mapper.

A ``Registry`` is a dict filled by its ``register`` decorator, which refuses a key registered twice (naming the
key): two modules claiming one node kind or op type is a bug that would otherwise go to whichever imports last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Registry(dict[K, V], Generic[K, V]):
    """Rules by key; ``what`` names a rule in the duplicate-key error ("kernel", "ONNX op handler")."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def register(self, *keys: K) -> Callable[[V], V]:
        """A decorator entering the decorated rule under each of ``keys``."""

        def add(rule: V) -> V:
            for key in keys:
                if key in self:
                    raise TypeError(f"{self.what} for {label(key)} registered twice")
                self[key] = rule
            return rule

        return add


def label(key: Any) -> str:
    """A key as its error names it: a node class by its ``kind``, anything else as text."""
    return str(getattr(key, "kind", key))
