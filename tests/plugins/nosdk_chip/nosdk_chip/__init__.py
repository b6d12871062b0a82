"""A target that loads (it imports its SDK lazily, as it should) but whose SDK is not installed."""

from pathlib import Path

from spikec.target import Artifact, Lowered, Target


class NoSdkTarget(Target):
    name = "nosdk"
    description = "needs the nosdk vendor SDK to emit"

    def emit(self, lowered: Lowered, out_dir: Path) -> Artifact:
        sdk = self.require(
            "nosdk_vendor_sdk", "pip install nosdk-vendor-sdk==2.1 --index-url https://pypi.nosdk.example"
        )
        sdk.write(lowered.graph, out_dir)
        return Artifact(self.name, out_dir, ())
