"""The multi-step schedule: which nodes run on all time steps at once, and which must step together.

A node at step t reads its forward inputs at step t and its recurrent inputs at step t − 1. Over
all edges (forward and recurrent) the graph's strongly connected components are its feedback loops:
the nodes of a loop must advance one step at a time, together (a *stepped* block). Every other node
is a block of its own and runs over a whole chunk of steps at once: a stateless kind as one kernel call
with time folded into the batch (one matmul over T·batch rows), a stateful one as a scan over time
of its precomputed inputs. Blocks run in a topological order of the components, so every block finds
its inputs for the whole chunk; a recurrent edge between two blocks reads its source shifted by one step.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable

from spikec.ir.graph import Graph
from spikec.safe_read.limits import elements

# One node's values over a chunk stay under this: arrays the C heap reuses from chunk to chunk (glibc maps larger
# ones afresh, and every first touch of a fresh page faults), large enough for one product over many rows.
CHUNK_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class Block:
    """Nodes in graph order; ``stepped`` for a feedback loop (or a node feeding itself back)."""

    names: tuple[str, ...]
    stepped: bool


def plan(graph: Graph) -> list[Block]:
    """The blocks of ``graph`` (already inlined) in an order where each block's inputs come first."""
    position = {name: i for i, name in enumerate(graph.order)}
    successors: dict[str, list[str]] = {name: [] for name in graph.order}
    for e in graph.edges:
        successors[e.src].append(e.dst)
    component = _components(graph.order, successors)
    members: dict[int, list[str]] = {}
    for name in graph.order:
        members.setdefault(component[name], []).append(name)
    looped = {e.src for e in graph.edges if e.recurrent and e.src == e.dst}
    # topological order of the components, ties broken by the earliest member in graph order
    after: dict[int, set[int]] = {c: set() for c in members}
    indegree = dict.fromkeys(members, 0)
    for e in graph.edges:
        a, b = component[e.src], component[e.dst]
        if a != b and b not in after[a]:
            after[a].add(b)
            indegree[b] += 1
    ready = [(position[members[c][0]], c) for c, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    blocks: list[Block] = []
    while ready:
        _, c = heapq.heappop(ready)
        names = tuple(members[c])
        blocks.append(Block(names, stepped=len(names) > 1 or names[0] in looped))
        for d in after[c]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(ready, (position[members[d][0]], d))
    return blocks


def _components(order: Iterable[str], successors: dict[str, list[str]]) -> dict[str, int]:
    """Strongly connected components (Tarjan's algorithm, iterative: graphs may be thousands of nodes deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    component: dict[str, int] = {}
    counter = 0
    for root in order:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            nexts = successors[node]
            if i < len(nexts):
                work.append((node, i + 1))
                nxt = nexts[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = index[node]
                    if member == node:
                        break
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return component


def chunk_steps(graph: Graph, steps: int, batch: int, itemsize: int) -> int:
    """Steps per chunk: as many as keep the largest node's values over the chunk within ``CHUNK_BYTES`` (all steps
    of a small layer; one step at the least, the stepwise footprint)."""
    per_step = batch * itemsize * max(1, max((elements(graph.types[name]) for name in graph.order), default=1))
    return max(1, min(steps, CHUNK_BYTES // per_step))
