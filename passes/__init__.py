"""Built-in passes, one per module; importing this package registers them (spikec.pipeline)."""

from spikec.passes import inline_subgraphs

__all__ = ["inline_subgraphs"]
