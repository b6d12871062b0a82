"""``python -m acme_sim DIR --inputs X.npz --steps T --out out.npz``: run a configuration on the simulator.

``X.npz`` holds one ``(T, N, *shape)`` integer array per input name (an ``.npy`` for a single input);
``out.npz`` gets each output, and every group's sent values and membrane as ``group/<name>``,
``membrane/<name>``. Needs only numpy: the chip's configuration can be run without spikec.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from acme_sim.config import ConfigError, read_config
from acme_sim.simulator import simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acme_sim", description="Run an ACME-1 configuration.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--inputs", type=Path, required=True)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        config = read_config(args.directory)
        loaded = np.load(args.inputs, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            inputs = {config.inputs[0].name: loaded}
        else:
            with loaded:
                inputs = {k: loaded[k] for k in loaded.files}
        steps = args.steps or min(x.shape[0] for x in inputs.values())
        result = simulate(config, inputs, steps)
    except (ConfigError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    arrays = dict(result.outputs)
    arrays |= {f"group/{k}": v for k, v in result.sent.items()}
    arrays |= {f"membrane/{k}": v for k, v in result.membrane.items()}
    np.savez(args.out, **arrays)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
