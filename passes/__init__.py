"""Built-in passes, one per module, named in ``PASSES`` (pass name -> ``"module:function"``).

``spikec.pipeline`` registers this table and imports a pass's module only when the pass is first used
or listed; a pass module registers nothing itself. A target brings its own passes the same way, as a
table handed to ``spikec.pipeline.register_passes``. Modules whose names start with ``_`` are helpers
shared by the passes, not passes.
"""

PASSES: dict[str, str] = {
    "attention-phases": "spikec.passes.attention_phases:attention_phases",
    "avgpool-to-sumpool": "spikec.passes.avgpool_to_sumpool:avgpool_to_sumpool",
    "check-spikes": "spikec.passes.check_spikes:check_spikes_pass",
    "compensate-attention": "spikec.passes.compensate_attention:compensate_attention",
    "decode-output": "spikec.passes.decode_output:decode_output",
    "encode-input": "spikec.passes.encode_input:encode_input",
    "exact-spiking": "spikec.passes.exact_spiking:exact_spiking",
    "flatten-tokens": "spikec.passes.flatten_tokens:flatten_tokens",
    "fold-batchnorm": "spikec.passes.fold_batchnorm:fold_batchnorm",
    "fuse": "spikec.passes.fuse:fuse",
    "fuse-gelu": "spikec.passes.fuse_gelu:fuse_gelu",
    "fuse-spiking-attention": "spikec.passes.fuse_spiking_attention:fuse_spiking_attention",
    "init-membrane": "spikec.passes.init_membrane:init_membrane",
    "inline-subgraphs": "spikec.passes.inline_subgraphs:inline_subgraphs",
    "maxpool-before-relu": "spikec.passes.maxpool_before_relu:maxpool_before_relu",
    "output-softmax": "spikec.passes.output_softmax:output_softmax",
    "partition": "spikec.passes.partition:partition",
    "quantize": "spikec.passes.quantize:quantize",
    "quantize-activations": "spikec.passes.quantize_activations:quantize_activations",
    "rate-maxpool": "spikec.passes.rate_maxpool:rate_maxpool",
    "relu-to-if": "spikec.passes.relu_to_if:relu_to_if",
    "spike-input": "spikec.passes.spike_input:spike_input",
    "threshold-balance": "spikec.passes.threshold_balance:threshold_balance",
}
