"""A corpus of real architectures (random weights, tiny widths) walked through spikec's front ends.

``models`` builds them, ``export`` writes them with torch's two ONNX exporters, ``walk`` runs each
(model, export variant) through ``spikec import``/``run``/``eval`` and records what happened.
``python -m tests.corpus.walk MODEL VARIANT`` runs one case; docs/gen_model_support.py renders the
walk as docs/model-support.md; tests/test_model_corpus.py asserts it.
"""
