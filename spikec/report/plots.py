"""The report's plots: matplotlib bar charts rendered to PNG and embedded as ``data:`` URIs (no file, no network).

matplotlib is optional (``pip install 'spikec[report]'``): without it ``available()`` is False and the page shows
its tables only. The PNGs carry no software version or date, so one report draws the same bytes every time.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

INSTALL = "pip install 'spikec[report]'"


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str,
    title: str,
    log: bool = False,
) -> str:
    """A bar chart of one or more ``series`` over ``labels`` (stacked when several), as a PNG ``data:`` URI."""
    from matplotlib.figure import Figure  # no pyplot: no global state, the caller's backend is left alone

    width = min(12.0, 2.5 + 0.45 * max(1, len(labels)))
    fig = Figure(figsize=(width, 3.2), dpi=80)
    ax = fig.subplots()
    bottom = [0.0] * len(labels)
    positions = list(range(len(labels)))
    for name, values in series.items():
        ax.bar(positions, list(values), bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(positions, [_short(label) for label in labels], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log and any(b > 0 for b in bottom):
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
