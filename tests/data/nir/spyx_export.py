"""Writes spyx_lif.nir with Spyx's own NIR exporter (spyx.nir.to_nir); run in a throwaway venv.

Spyx needs JAX (a different stack from the test environment's torch), so the file is committed and
this script records how it was made:

    python3.11 -m venv /tmp/spyxenv && /tmp/spyxenv/bin/pip install spyx==1.0.0 nir==1.0.8
    /tmp/spyxenv/bin/python tests/data/nir/spyx_export.py tests/data/nir/spyx_lif.nir

(installed: spyx 1.0.0, jax/jaxlib 0.10.2, flax 0.12.8, nir 1.0.8, numpy 2.4.6). The network is
Linear(4→6) → LIF → Linear(6→5) → RLIF(5) → Linear(5→3) → LIF with Spyx's default dt = 1. Three of the
first LIF's decays are set above 1, as unclipped training can leave them (Spyx clips beta to [0, 1]
only inside its forward pass); Spyx then writes tau = dt/(1 - beta) < 0. The RLIF becomes a nested
NIRGraph 'layer_3' whose inner nodes Spyx names 'layer_3.lif', 'layer_3.w_rec', 'layer_3.input' and
'layer_3.output'.
"""

import sys

import jax
import jax.numpy as jnp
import nir
import numpy as np
import spyx.nir
import spyx.nn as snn
from flax import nnx

rngs = nnx.Rngs(0)
model = snn.Sequential(
    nnx.Linear(4, 6, rngs=rngs),
    snn.LIF((6,), rngs=rngs),
    nnx.Linear(6, 5, rngs=rngs),
    snn.RLIF((5,), rngs=rngs),
    nnx.Linear(5, 3, rngs=rngs),
    snn.LIF((3,), rngs=rngs),
)
beta = np.array(model.layers[1].beta[...])
beta[:3] = [1.02, 1.05, 1.1]  # learned decays above 1
model.layers[1].beta[...] = jnp.asarray(beta)
graph = spyx.nir.to_nir(model, {"input": np.array([4])}, {"output": np.array([3])}, dt=1)
nir.write(sys.argv[1], graph)
print("jax", jax.__version__, "nodes", list(graph.nodes), "edges", graph.edges)
