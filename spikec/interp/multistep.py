"""Multi-step execution: the interpreter's default schedule (spikec.interp.schedule has the plan).

Time is cut into chunks (all steps when the values fit ``CHUNK_BYTES``). Within a chunk each block of the
plan runs once over all the chunk's steps, on values of shape (steps, batch, *shape):

* a stateless node: one kernel call with time folded into the batch, (steps·batch, *shape);
* a stateful node outside any loop: its scan over time (``SCANS``), else its kernel once per step;
* a feedback loop: its nodes one step at a time, together, as the stepwise schedule runs them.

A value the same at every step of the chunk (a direct input and the stateless nodes after it) is kept as
one step, (1, batch, *shape), and the nodes after it compute it once. The per-element arithmetic of each
kernel is unchanged, so results equal the stepwise schedule's: spikes and fixed point bit for bit, float
state within rounding (a matmul over more rows may sum in another order).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from spikec.interp.backend import Tensor
from spikec.interp.kernels import KernelContext, State
from spikec.interp.schedule import Block, chunk_steps, plan
from spikec.ir.node import Inputs

if TYPE_CHECKING:
    from spikec.interp.interpreter import Interpreter

Records = dict[tuple[str, str], list[np.ndarray]]


class MultiStep:
    """One run of ``interp``'s graph over ``steps`` steps in the multi-step schedule."""

    def __init__(self, interp: Interpreter, contexts: dict[str, KernelContext], batch: int) -> None:
        self.interp = interp
        self.graph = graph = interp.graph
        self.xp = interp.xp
        self.contexts = contexts
        self.batch = batch
        self.blocks = plan(graph)
        block_of = {name: i for i, block in enumerate(self.blocks) for name in block.names}
        last = dict(block_of)  # a value is dropped after the last block that reads it
        for e in graph.edges:
            last[e.src] = max(last[e.src], block_of[e.dst])
        self.free_after: list[list[str]] = [[] for _ in self.blocks]
        for name, i in last.items():
            self.free_after[i].append(name)
        self.shifted_srcs = {e.src for e in graph.edges if e.recurrent and block_of[e.src] != block_of[e.dst]}
        self.states: dict[str, State] = {name: {} for name in graph.order}
        self.carry: dict[str, Tensor] = {}  # a shifted source's last step of the previous chunk
        self.previous: dict[int, dict[str, Tensor]] = {}  # a loop's recurrent values of its last step

    def run(self, feeds: Mapping[str, np.ndarray], steps: int, keep: set[str], traced: set[str]) -> Records:
        records: Records = {}
        itemsize = self.xp.to_numpy(self.xp.zeros((1,))).itemsize
        chunk = chunk_steps(self.graph, steps, self.batch, itemsize)
        for start in range(0, steps, chunk):
            n = min(chunk, steps - start)
            env: dict[str, Tensor] = {}
            carry: dict[str, Tensor] = {}
            for i, block in enumerate(self.blocks):
                if block.stepped:
                    self._loop(i, block, env, n, records, traced)
                else:
                    (name,) = block.names
                    env[name] = self._whole(name, env, feeds, start, n, records, name in traced)
                for name in block.names:
                    whole = self._expand(env[name], n)
                    self.interp.observe(name, whole)
                    if name in keep:
                        records.setdefault((name, ""), []).append(self.xp.to_numpy(whole))
                    if name in self.shifted_srcs:
                        carry[name] = whole[-1]
                for done in self.free_after[i]:
                    del env[done]
            self.carry = carry
        return records

    # -- one node over the chunk ----------------------------------------------------------------------------------
    def _whole(
        self,
        name: str,
        env: dict[str, Tensor],
        feeds: Mapping[str, np.ndarray],
        start: int,
        n: int,
        records: Records,
        traced: bool,
    ) -> Tensor:
        node = self.graph.nodes[name]
        ctx = self.contexts[name]
        x = self._inputs(name, env, n)
        feed = None
        if name in feeds:
            part = feeds[name][start : start + n]
            feed = self.xp.asarray(part[:1] if _constant(part) else part)
        if not node.stateful:
            return self._folded(name, x, feed, ctx)
        if x is not None and not isinstance(x, list) and feed is None:
            scanned = self.interp.run_scan(name, x, n, self.states, ctx, traced)
            if scanned is not None:
                for var, values in scanned.traces.items():
                    records.setdefault((name, var), []).append(self.xp.to_numpy(values))
                return scanned.y
        return self._stepwise(name, x, n, ctx, records if traced else None)

    def _folded(self, name: str, x: Any, feed: Tensor | None, ctx: KernelContext) -> Tensor:
        """A stateless kernel once, on (steps·batch, *shape): every step a sample of a larger batch."""
        lengths = {int(v.shape[0]) for v in _tensors(x, feed)}
        length = max(lengths, default=1)
        rows = length * self.batch

        def folded(v: Tensor) -> Tensor:
            return self.xp.reshape(self._expand(v, length), (rows, *v.shape[2:]))

        ctx.feed = None if feed is None else folded(feed)
        ctx.batch, ctx.folded = rows, True
        try:
            y = self.interp.run_node(name, _apply(folded, x), self.states, ctx)
        finally:
            ctx.batch, ctx.folded, ctx.feed = self.batch, False, None
        return self.xp.reshape(y, (length, self.batch, *self.graph.types[name]))

    def _stepwise(self, name: str, x: Any, n: int, ctx: KernelContext, records: Records | None) -> Tensor:
        """A stateful node outside any loop, its kernel once per step on its inputs over the chunk."""
        ys = []
        for k in range(n):
            step = _apply(functools.partial(_step, k), x)
            ys.append(self.interp.run_node(name, step, self.states, ctx))
            if records is not None:
                self.interp.record_state(records, name, self.states[name])
        return self.xp.stack(ys)

    # -- a feedback loop ------------------------------------------------------------------------------------------
    def _loop(
        self, index: int, block: Block, env: dict[str, Tensor], n: int, records: Records, traced: set[str]
    ) -> None:
        """The loop's nodes step by step, as the stepwise schedule runs them."""
        members = set(block.names)
        inner = {e.src for name in block.names for e in self.graph.in_edges(name) if e.recurrent and e.src in members}
        previous = self.previous.get(index, {})
        outputs: dict[str, list[Tensor]] = {name: [] for name in block.names}
        for k in range(n):
            step: dict[str, Tensor] = {}
            for name in block.names:
                ctx = self.contexts[name]
                values = []
                for e in self.graph.in_edges(name):
                    if e.src in members:
                        value = previous.get(e.src) if e.recurrent else step[e.src]
                        values.append(self._zeros(e.src) if value is None else value)
                    elif e.recurrent:
                        values.append(self._at(env[e.src], k - 1, e.src))
                    else:
                        values.append(self._at(env[e.src], k, e.src))
                step[name] = y = self.interp.run_node(
                    name, _combine(self.graph.nodes[name].inputs, values), self.states, ctx
                )
                outputs[name].append(y)
                if name in traced:
                    self.interp.record_state(records, name, self.states[name])
            previous = {src: step[src] for src in inner}
        self.previous[index] = previous
        for name in block.names:
            env[name] = self.xp.stack(outputs[name])

    # -- values ---------------------------------------------------------------------------------------------------
    def _inputs(self, name: str, env: dict[str, Tensor], n: int) -> Any:
        node = self.graph.nodes[name]
        if node.inputs is Inputs.NONE:
            return None
        values = [self._shifted(e.src, env[e.src], n) if e.recurrent else env[e.src] for e in self.graph.in_edges(name)]
        if node.inputs is Inputs.ORDERED:
            length = max(int(v.shape[0]) for v in values)
            return [self._expand(v, length) for v in values]
        total = values[0]
        for v in values[1:]:  # (1, B, ...) broadcasts over the steps of (n, B, ...)
            total = total + v
        return total

    def _shifted(self, src: str, value: Tensor, n: int) -> Tensor:
        """``value`` one step later: the previous chunk's last step (zeros before step 0), then all but the last."""
        first = self.carry.get(src)
        first = self._zeros(src) if first is None else first
        head = self.xp.reshape(first, (1, *first.shape))
        return self.xp.concat([head, self._expand(value, n)[: n - 1]], 0) if n > 1 else head

    def _at(self, value: Tensor, k: int, src: str) -> Tensor:
        if k < 0:
            first = self.carry.get(src)
            return self._zeros(src) if first is None else first
        return value[k] if value.shape[0] > 1 else value[0]

    def _expand(self, value: Tensor, n: int) -> Tensor:
        if value.shape[0] == n:
            return value
        return self.xp.broadcast_to(value, (n, *value.shape[1:]))

    def _zeros(self, src: str) -> Tensor:
        return self.xp.zeros((self.batch, *self.graph.types[src]))


def _constant(part: np.ndarray) -> bool:
    """Whether every step of ``part`` (steps, batch, ...) equals its first (a direct input)."""
    return part.shape[0] > 1 and all(np.array_equal(part[k], part[0]) for k in range(1, part.shape[0]))


def _step(k: int, value: Tensor) -> Tensor:
    """Step ``k`` of a value over the chunk (its one step when it is the same at every step)."""
    return value[k] if value.shape[0] > 1 else value[0]


def _tensors(x: Any, feed: Tensor | None) -> list[Tensor]:
    found = [] if feed is None else [feed]
    if isinstance(x, list):
        return found + x
    return found + ([] if x is None else [x])


def _apply(fn: Any, x: Any) -> Any:
    if x is None:
        return None
    return [fn(v) for v in x] if isinstance(x, list) else fn(x)


def _combine(inputs: Inputs, values: list[Tensor]) -> Any:
    if inputs is Inputs.NONE:
        return None
    if inputs is Inputs.ORDERED:
        return values
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total
