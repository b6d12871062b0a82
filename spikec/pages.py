"""Memory pages for large arrays: spikec's commands turn numpy's huge-page advice off.

numpy asks Linux for transparent huge pages on every large array (``madvise(MADV_HUGEPAGE)``). Where the
kernel compacts memory to grant them on request (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``,
common on virtual machines), the first write to each new large array waits for that compaction. On the 2-core
build machine, filling a new 800 MB array took 11.9 s with the advice and 0.32 s without it, and a ResNet-50
compile allocates hundreds of such arrays (ResNet-50 @224: 250 s with the advice, 158 s without; its system
time fell from 108 s to 20 s).
``NUMPY_MADVISE_HUGEPAGE=0`` is numpy's own switch, read once at import; the commands apply the same setting
after import, unless the user has set that variable (``NUMPY_MADVISE_HUGEPAGE=1`` keeps the advice).
"""

from __future__ import annotations

import os

VARIABLE = "NUMPY_MADVISE_HUGEPAGE"


def without_hugepage_advice() -> bool:
    """Stop numpy advising huge pages for the arrays it allocates from now on, unless ``NUMPY_MADVISE_HUGEPAGE``
    is set (the user's choice stands). True when the advice is off afterwards."""
    if VARIABLE in os.environ:
        return os.environ[VARIABLE].strip() == "0"
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if setter is None:  # a numpy without the switch: nothing to turn off
        return False
    setter(False)
    return True
