"""A target declaring the ``spikec compile`` flag the template ``acme1`` declares (``--acme-weight-bits``)."""

from spikec.target import Target, TargetFlag


class DupFlagTarget(Target):
    name = "dupflag"
    description = "declares acme1's --acme-weight-bits as well"
    compile_flags = (TargetFlag("--acme-weight-bits", "quantize.weight_bits", help="weight bits, again"),)
