"""``check-spikes``: prove which values are binary spikes and list the ops a binary-event chip cannot run.

An analysis, not a rewrite: the graph comes back unchanged. ``strict=true`` fails with a
``PassError`` listing every offender (node, kind, origin, the pass that makes it legal);
otherwise each offender becomes one ``SpikecWarning`` and, from Python, ``on_report`` receives the
whole ``spikec.spike_check.SpikeReport``. ``inputs`` declares how graph inputs are fed (``real``,
or ``binary``/``ternary`` after ``encode-input{mode=poisson}``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from spikec.errors import PassError, SpikecWarning
from spikec.ir.graph import Graph
from spikec.pipeline import PassResult
from spikec.spike_check import SpikeClass, SpikeReport, check_spikes


def check_spikes_pass(
    graph: Graph,
    *,
    strict: bool = False,
    inputs: str = "real",
    allow_ternary: bool = False,
    on_report: Callable[[SpikeReport], None] | None = None,
) -> PassResult:
    """Binary-spike analysis: strict=true fails on any synaptic op with non-spike input or non-event op."""
    report = check_spikes(graph, inputs=SpikeClass.parse(inputs), allow_ternary=allow_ternary)
    if on_report is not None:
        on_report(report)
    if strict and not report.ok:
        raise PassError(report.summary())
    for offender in report.offenders:
        warnings.warn(f"check-spikes: {offender.describe()}", SpikecWarning, stacklevel=2)
    return PassResult(graph, False)
