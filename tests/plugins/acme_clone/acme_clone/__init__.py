"""Another distribution claiming the target name ``acme1``."""

from spikec.target import Target


class CloneTarget(Target):
    name = "acme1"
    description = "a second acme1"
