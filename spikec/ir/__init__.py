"""The spiking IR (SIR): node kinds in three dialects (structure, ann, snn) and the Graph."""

from spikec.ir.ann import (
    Add,
    AvgPool,
    Clip,
    Concat,
    Conv,
    Dense,
    Flatten,
    Identity,
    MaxPool,
    ReLU,
    Reshape,
    Scale,
    SumPool,
    Transpose,
)
from spikec.ir.graph import DEFAULT_DT, Edge, Graph
from spikec.ir.node import NODE_KINDS, Array, Inputs, Level, Node, Shape, node_kind
from spikec.ir.norm import BatchNorm
from spikec.ir.snn import IF, LI, LIF, CubaLI, CubaLIF, Delay, I, Reset, Threshold
from spikec.ir.structure import Input, Output, Subgraph

__all__ = [
    "DEFAULT_DT",
    "IF",
    "LI",
    "LIF",
    "NODE_KINDS",
    "Add",
    "Array",
    "AvgPool",
    "BatchNorm",
    "Clip",
    "Concat",
    "Conv",
    "CubaLI",
    "CubaLIF",
    "Delay",
    "Dense",
    "Edge",
    "Flatten",
    "Graph",
    "I",
    "Identity",
    "Input",
    "Inputs",
    "Level",
    "MaxPool",
    "Node",
    "Output",
    "ReLU",
    "Reset",
    "Reshape",
    "Scale",
    "Shape",
    "Subgraph",
    "SumPool",
    "Threshold",
    "Transpose",
    "node_kind",
]
