"""Bounds on what an untrusted file (or an option) may make spikec do: nesting, number sizes, memory.

The memory budget is ``$SPIKEC_MEMORY_LIMIT`` (bytes, or with a unit: ``512M``, ``8G``, ``1.5T``) when set,
else the memory the system reports available (Linux ``MemAvailable``), else the physical memory. Work that
would need more — a run of too many steps, an ONNX ``Tile`` of 10⁸ repeats, an ``.npy`` declaring 10¹²
elements — is refused before anything is allocated, with the estimate and the option that reduces it
(``ResourceLimit``); the estimates count the large arrays, not Python's overhead.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from spikec.errors import ResourceLimit, UsageError

MAX_NESTING = 64  # nested graphs (.sir subgraphs, NIR graphs): real models nest a few levels
MAX_INT_DIGITS = 19  # an integer in a model file fits int64 (|n| < 2**63)
INT64_MAX = 2**63 - 1
ENV = "SPIKEC_MEMORY_LIMIT"
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
FALLBACK_BUDGET = 16 * 2**30


def format_bytes(n: float) -> str:
    """``3.2 GB`` style (binary units)."""
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def parse_size(text: str) -> int:
    """``'8G'``, ``'512MB'``, ``'1.5T'`` or a plain number of bytes → bytes; ``UsageError`` otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(f"${ENV}={text!r}: write a size such as 8G, 512M or 1000000000 (bytes)")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> tuple[int, str]:
    """The bytes spikec may allocate for one piece of work, and how messages name that budget."""
    configured = os.environ.get(ENV)
    if configured:
        return parse_size(configured), f"${ENV} allows"
    available = _available()
    if available is None:
        return FALLBACK_BUDGET, f"spikec allows by default (set ${ENV} to change it)"
    return available, f"available (set ${ENV} to change the budget)"


def check_memory(needed: float, what: str, fix: str) -> None:
    """``ResourceLimit`` when ``needed`` bytes exceed the budget: "``what`` needs about X of memory, more than
    the Y available; ``fix``"."""
    budget, source = memory_budget()
    if needed > budget:
        raise ResourceLimit(
            f"{what} needs about {format_bytes(needed)} of memory, more than the {format_bytes(budget)} {source}; {fix}"
        )


def elements(shape: tuple[int, ...] | list[int]) -> int:
    """The number of elements of ``shape`` (an exact Python int: no overflow)."""
    return math.prod(int(d) for d in shape)


def int_text(text: str) -> int | None:
    """The int64 value of the integer ``text`` (``[+-]digits``), or None when it has too many digits for
    int64 (parsing 5,000 digits is slow, and Python refuses more than 4,300)."""
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > MAX_INT_DIGITS:
        return None
    value = int(text)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def shown(value: object, limit: int = 60) -> str:
    """A value from a file as one short line for a message: ``repr`` (an array's as a list, a group's as its
    member names), whitespace collapsed, cut at ``limit`` characters."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        value = value.tolist()
    # an HDF5 group where a dataset belongs: its member names
    text = f"a group of {sorted(map(str, value))}" if isinstance(value, dict) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
