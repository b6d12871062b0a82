"""The error hierarchy. Every user-facing failure is a ``SpikecError``; the CLI maps it to exit 1 (2 for a
``UsageError``). Any other exception reaching the CLI is a bug in spikec: exit 3, "internal error".

Messages say what happened, where (file:line:col, node, op) and what to do about it.
"""

from __future__ import annotations


class SpikecError(Exception):
    """Base class of every error spikec raises on bad input or an unsupported model."""

    exit_code = 1


class ParseError(SpikecError):
    """A textual model (.sir) or a model file could not be read.

    ``file``, ``line`` and ``col`` locate the problem (1-based); the message shows the line and a caret.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str = "<string>",
        line: int = 0,
        col: int = 0,
        source_line: str = "",
    ) -> None:
        self.file, self.line, self.col, self.source_line = file, line, col, source_line
        where = f"{file}:{line}:{col}: " if line else f"{file}: "
        text = where + message
        if source_line:
            text += f"\n    {source_line}\n    {' ' * max(col - 1, 0)}^"
        super().__init__(text)


class FrontendError(SpikecError):
    """A source model uses something the front end cannot import (names the op and the node)."""


class FileError(SpikecError):
    """A file cannot be read as what it should be: missing, not a regular file (a directory, a FIFO, a
    device), unreadable, too large, truncated or corrupt (``spikec.safe_read``). Names the file (and the
    dataset, member or field) and what to do."""


class UnsafeFile(FileError):
    """A file asks spikec to read outside itself (HDF5 external storage, virtual datasets, external or soft
    links; ONNX external data outside the model's folder) or to load code (an HDF5 filter plugin): refused,
    naming the dataset or tensor."""


class ResourceLimit(SpikecError):
    """The work asked for needs more memory than spikec may use (``spikec.safe_read.limits``): names the
    estimate, the budget and the option that reduces the work."""


class VerifyError(SpikecError):
    """The IR is inconsistent: a bad parameter, a shape mismatch on an edge, a dangling node."""


class ShapeError(VerifyError):
    """A node cannot take an input of the given shape (raised by ``Node.infer_shape``)."""


class PassError(SpikecError):
    """A pass failed; the message names the pass and the passes that ran before it."""


class InterpError(SpikecError):
    """Executing a node failed; the message names the node, its kind and its origin."""


class TargetError(SpikecError):
    """A target cannot take the model (unsupported node kind, bit width, missing vendor software)."""


class DoesNotFit(TargetError):
    """The model exceeds a resource of the target (names the resource, layer, amount, and the fix)."""


class InputError(SpikecError):
    """A user-supplied array (input, calibration set) has the wrong shape, dtype or values."""


class OutputError(SpikecError):
    """An output cannot be written (a full disk, a read-only or forbidden folder, a name too long), or an
    output folder holds files spikec did not write. Nothing was half-written: the old file is kept.
    ``os_error`` is the ``OSError`` behind it, if any."""

    os_error: OSError | None = None


class UsageError(SpikecError):
    """An option that does not apply to what it was given with (a reader option for another model format).

    The CLI exits 2, as for any bad usage."""

    exit_code = 2


class SpikecWarning(UserWarning):
    """Something was repaired or assumed (an off-spec file, a default filled in): the model still
    loads, and the CLI prints the warning (and lists it under ``warnings`` with ``--json``)."""
