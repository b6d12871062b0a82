"""A target whose module cannot be imported: it imports a vendor SDK at the top, which is not installed."""

import broken_chip_vendor_sdk  # noqa: F401  (the mistake: an SDK import at module level)

from spikec.target import Target


class BrokenTarget(Target):
    name = "broken"
    description = "never loads"
