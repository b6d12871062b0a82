"""The reference target: the artifact is the verified .sir model, run by spikec's interpreter."""

from __future__ import annotations

from pathlib import Path

from spikec.target import Artifact, Capabilities, Lowered, Target


class InterpTarget(Target):
    """Runs anything the interpreter has a kernel for (float64 reference semantics)."""

    name = "interp"
    description = "spikec's reference interpreter (numpy; torch on CPU/CUDA), float semantics"

    def capabilities(self) -> Capabilities:
        from spikec.interp.kernels import KERNELS

        return Capabilities(node_kinds=frozenset(k.kind for k in KERNELS))

    def emit(self, lowered: Lowered, out_dir: Path) -> Artifact:
        from spikec.text import save_sir

        out_dir.mkdir(parents=True, exist_ok=True)
        save_sir(lowered.graph, out_dir / "model.sir")
        files = tuple(sorted(p.name for p in out_dir.iterdir()))
        return Artifact(self.name, out_dir, files)
