"""The report's plots: matplotlib bar charts (and the accuracy against T) rendered to PNG and embedded as ``data:`` URIs
(no file, no network).

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


def accuracy_against_timesteps(
    by_timesteps: Mapping[int, float], *, ann: float, marks: Mapping[str, int], title: str
) -> str:
    """The SNN's accuracy (%) at each measured T (log₂ axis), the ANN's as a dashed line, and a vertical line at
    each of ``marks`` (label → T: the advised T, the compiled T), as a PNG ``data:`` URI."""
    from matplotlib.figure import Figure

    steps = sorted(by_timesteps)
    fig = Figure(figsize=(6.4, 3.4), dpi=80)
    ax = fig.subplots()
    ax.plot(steps, [100 * by_timesteps[t] for t in steps], marker="o", label="SNN (measured)")
    ax.axhline(100 * ann, color="grey", linestyle="--", label=f"ANN {100 * ann:.2f}%")
    for (label, t), style in zip(marks.items(), ("-", ":", "-."), strict=False):
        ax.axvline(t, color="C3" if style == "-" else "C2", linestyle=style, label=f"{label}: T = {t}")
    ax.set_xscale("log", base=2)
    ticks = sorted({*steps, *marks.values()})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("time steps T")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
