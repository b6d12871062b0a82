"""Progress bars on stderr for the long stages of a command (calibration, conversion, emission, verification).

A command reports through the ``spikec.coding.Progress`` callable, ``(stage, done, total)``: ``ProgressBars`` draws
one rich bar per stage with its counts, the time elapsed and the time left. A stage written ``"stage: detail"``
is one bar whose detail changes (``conversion: partition``: the pass now running); ``total`` 0 means the amount of
work is unknown (a bar that pulses until the stage reports ``done == total``). The bars are drawn only on a
terminal: ``spikec.cli.main`` opens ``progress_bars`` around each command, and it yields None (nothing printed)
with ``--json`` or when stderr is not a terminal (a pipe, a CI log, a file); the bars are erased when the command
ends, before its result is printed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from spikec.coding import Progress

if TYPE_CHECKING:
    from rich.console import Console

_ACTIVE: ContextVar[ProgressBars | None] = ContextVar("spikec_progress_bars", default=None)


class ProgressBars:
    """A ``Progress`` callable drawing a bar per stage on ``console`` (started on the first report)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        self.bars = RichProgress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=True,  # the command's result follows; the bars are for the wait
        )
        self.tasks: dict[str, Any] = {}  # stage -> rich's task id
        self.started = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        name, _, detail = stage.partition(": ")
        amount = total if total > 0 else None  # 0: unknown, a pulsing bar
        if not self.started:
            self.bars.start()
            self.started = True
        if name not in self.tasks:
            self.tasks[name] = self.bars.add_task(name, total=amount, detail=detail)
        self.bars.update(self.tasks[name], completed=done, total=amount, detail=detail)

    def close(self) -> None:
        """Stop drawing and erase the bars (idempotent)."""
        if self.started:
            self.bars.stop()
            self.started = False


@contextlib.contextmanager
def progress_bars(enabled: bool = True, console: Console | None = None) -> Iterator[ProgressBars | None]:
    """The bars for one command, or None where nothing is drawn: not ``enabled`` (``--json``), or a console that is
    not a terminal (default: stderr, a terminal only if ``sys.stderr.isatty()``). ``stderr_progress`` finds them."""
    bars = None
    if enabled and console is None and sys.stderr.isatty():  # only isatty decides, not rich's FORCE_COLOR & co.
        from rich.console import Console

        console = Console(stderr=True, force_terminal=True)
    if enabled and console is not None and console.is_terminal:
        bars = ProgressBars(console)
    token = _ACTIVE.set(bars)
    try:
        yield bars
    finally:
        _ACTIVE.reset(token)
        if bars is not None:
            bars.close()


def stderr_progress() -> Progress | None:
    """The bars of the running command (``progress_bars``), or None when none are drawn."""
    return _ACTIVE.get()
