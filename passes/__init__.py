"""Built-in passes, one per module; importing this package registers them (spikec.pipeline).

Modules whose names start with ``_`` are helpers shared by the passes, not passes.
"""

from spikec.passes import (
    attention_phases,
    avgpool_to_sumpool,
    check_spikes,
    compensate_attention,
    decode_output,
    encode_input,
    exact_spiking,
    flatten_tokens,
    fold_batchnorm,
    fuse,
    fuse_gelu,
    fuse_spiking_attention,
    init_membrane,
    inline_subgraphs,
    maxpool_before_relu,
    partition,
    quantize,
    quantize_activations,
    rate_maxpool,
    relu_to_if,
    spike_input,
    threshold_balance,
)

__all__ = [
    "attention_phases",
    "avgpool_to_sumpool",
    "check_spikes",
    "compensate_attention",
    "decode_output",
    "encode_input",
    "exact_spiking",
    "flatten_tokens",
    "fold_batchnorm",
    "fuse",
    "fuse_gelu",
    "fuse_spiking_attention",
    "init_membrane",
    "inline_subgraphs",
    "maxpool_before_relu",
    "partition",
    "quantize",
    "quantize_activations",
    "rate_maxpool",
    "relu_to_if",
    "spike_input",
    "threshold_balance",
]
