"""The untrusted-file campaign: valid files of every format spikec reads, mutations of them, and the oracle.

``seeds`` writes valid files (most by other people's tools: nir.write, lava-dl's netx, torch's ONNX
exporter, numpy, torch.save); ``mutate`` and ``mutate_binary`` damage them by class (byte flips,
truncations, field values, structure, references outside the file, pickles, work; ``classes`` lists
them by format); ``oracle`` reads a file as the command a user types would and says what happened:
loaded, refused with one ``SpikecError`` line, a traceback, a hang, a leak (a secret's bytes read, a
file written outside the output) or an executed payload.

``tests/test_untrusted_campaign.py`` runs it under hypothesis; ``benchmarks/fuzz/campaign.py`` runs a
larger seeded campaign in a worker process (so a crash is counted, not fatal) and records the counts.
"""
