"""The reference interpreter: steps a graph over time, one kernel call per node per step.

Like ``torch.fx.Interpreter``: nodes run in topological order, values live in an environment
keyed by node name and are dropped after their last use, and a failure is re-raised as
"while executing node 'lif3' (LIF) from <origin>". Inputs are (T, batch, *shape) arrays.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from spikec.errors import InputError, InterpError, SpikecError
from spikec.interp.backend import Backend, Tensor, make_backend
from spikec.interp.kernels import KERNELS, KernelContext, State
from spikec.interp.multistep import MultiStep, Records
from spikec.interp.scans import SCANS, Scanned
from spikec.ir.graph import Graph
from spikec.ir.node import Inputs
from spikec.safe_read.limits import check_memory, elements

TRACED_STATE = ("v", "i")  # state variables recorded as "<node>.<var>" when tracing
VALUE_BYTES = 8  # recorded values are float64


def run_bytes(graph: Graph, steps: int, batch: int, *, inputs: bool = False, recorded: Iterable[str] = ()) -> int:
    """The bytes a run's large arrays take: ``steps · batch · 8`` per value of each recorded node (a traced
    neuron's ``v`` and ``i`` too) and, with ``inputs``, of each input (padded or encoded in memory).

    ``bytes = T · B · 8 · (Σ_inputs |shape| + Σ_recorded |shape| · (1 + |TRACED_STATE|))`` for stateful nodes."""
    flat = graph.inline_subgraphs()
    values = sum(elements(flat.nodes[n].feed_shape()) for n in flat.inputs) if inputs else 0
    for name in recorded:
        if name in flat.nodes:
            copies = 1 + (len(TRACED_STATE) if flat.nodes[name].stateful else 0)
            values += elements(flat.types[name]) * copies
    return steps * batch * VALUE_BYTES * values


def check_run_memory(graph: Graph, steps: int, batch: int, fix: str, **what: Any) -> None:
    """``ResourceLimit`` naming ``fix`` (the option that shortens the run) when ``run_bytes`` is over the
    memory budget (``spikec.safe_read.limits``)."""
    needed = run_bytes(graph, steps, batch, **what)
    samples = f"{batch} sample{'s' if batch != 1 else ''}"
    check_memory(needed, f"a run of {steps:,} steps × {samples} (its inputs and recorded values)", fix)


@dataclasses.dataclass
class RunResult:
    """Outputs (T, batch, *shape) by Output node name, and traces by ``node`` / ``node.var``."""

    outputs: dict[str, np.ndarray]
    traces: dict[str, np.ndarray]
    steps: int
    batch: int
    backend: str
    notes: list[str] = dataclasses.field(default_factory=list)


def prepare_inputs(
    graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray], steps: int | None = None
) -> tuple[dict[str, np.ndarray], int, list[str]]:
    """Bring user arrays to (T, batch, *shape) per Input node; see docs/semantics.md "Layout".

    Accepted per input of shape S: (T, B, *S); (T, *S) (batch of one); (T,) when S == (1,).
    ``steps`` longer than the input pads with zeros; shorter truncates.
    """
    names = graph.inputs
    if isinstance(inputs, Mapping):
        arrays = dict(inputs)
    elif len(names) == 1:
        arrays = {names[0]: inputs}
    else:
        raise InputError(f"the graph has inputs {list(names)}: pass one array per input (name=file.npy)")
    unknown = sorted(set(arrays) - set(names))
    missing = [n for n in names if n not in arrays]
    if unknown or missing:
        problems = ([f"inputs {unknown} are not graph inputs"] if unknown else []) + (
            [f"inputs {missing} are missing"] if missing else []
        )
        raise InputError(f"{' and '.join(problems)}; graph inputs: {list(names)}")
    out: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for name in names:
        node = graph.nodes[name]
        out[name] = _layout(name, np.asarray(arrays[name]), node.feed_shape())
        node.check_feed(name, out[name])
    lengths = {a.shape[0] for a in out.values()}
    batches = {a.shape[1] for a in out.values()}
    if len(lengths) > 1 or len(batches) > 1:
        raise InputError(f"inputs differ in length or batch: {[a.shape for a in out.values()]}")
    length = lengths.pop()
    total = length if steps is None else steps
    if total < 1:
        raise InputError(f"--steps must be >= 1, got {total}")
    if total > length:  # padding allocates the whole (total, batch, *shape) input
        check_run_memory(graph, total, batches.pop(), "run fewer --steps", inputs=True, recorded=graph.outputs)
    if total != length:
        verb = "padded with zeros" if total > length else "truncated"
        notes.append(f"input has {length} steps; {verb} to {total}")
        for name, a in out.items():
            if total > length:
                pad = np.zeros((total - length, *a.shape[1:]), a.dtype)
                out[name] = np.concatenate([a, pad])
            else:
                out[name] = a[:total]
    return out, total, notes


def _layout(name: str, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if a.dtype.kind not in "fiub":
        raise InputError(f"input '{name}': dtype {a.dtype} is not numeric")
    if a.ndim == len(shape) + 2 and a.shape[2:] == shape:
        out = a
    elif a.ndim == len(shape) + 1 and a.shape[1:] == shape:
        out = a[:, None]
    elif shape == (1,) and a.ndim == 1:
        out = a[:, None, None]
    else:
        raise InputError(
            f"input '{name}' has shape {a.shape}, but the graph expects per-sample shape {shape}: "
            f"give (T, batch, {', '.join(map(str, shape))}) or (T, {', '.join(map(str, shape))})"
        )
    if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise InputError(f"input '{name}' holds NaN or inf values")
    return out


SCHEDULES = ("multistep", "step")


class Interpreter:
    """Runs a graph over time; override ``run_node`` to observe or change kernel calls, ``observe`` to see each
    node's values over the steps.

    ``schedule="multistep"`` (the default, spikec.interp.multistep) runs stateless nodes on all steps at once and
    steps only stateful nodes and feedback loops; ``"step"`` runs every node once per step, in graph order.
    Both give the same results (docs/architecture.md, "The interpreter").
    """

    def __init__(self, graph: Graph, backend: Backend, schedule: str = "multistep") -> None:
        if schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {schedule!r}: use one of {list(SCHEDULES)}")
        self.graph = graph.inline_subgraphs()
        self.xp = backend
        self.schedule = schedule
        self.order = self.graph.order
        self._recurrent_srcs = {e.src for e in self.graph.edges if e.recurrent}
        self._free_after = self._frees()

    def _frees(self) -> list[list[str]]:
        """Per position in ``order``: the values no later node of this step reads (dropped there)."""
        position = {n: i for i, n in enumerate(self.order)}
        last = {n: position[n] for n in self.order}
        for e in self.graph.edges:
            if not e.recurrent:
                last[e.src] = max(last[e.src], position[e.dst])
        frees: list[list[str]] = [[] for _ in self.order]
        for name, i in last.items():
            if name not in self._recurrent_srcs:  # kept for the next step's recurrent edges
                frees[i].append(name)
        return frees

    def run(
        self,
        inputs: Mapping[str, np.ndarray],
        steps: int,
        *,
        trace: Iterable[str] = (),
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        traced = set(trace)
        batch = next(iter(inputs.values())).shape[1]
        check_run_memory(
            self.graph, steps, batch, "run fewer steps (--steps, --timesteps) or a smaller batch (--batch-size)",
            recorded=set(self.graph.outputs) | traced,
        )  # fmt: skip
        contexts = {
            name: KernelContext(self.xp, self.graph.dt, batch, self.graph.types[name], node)
            for name, node in self.graph.nodes.items()
        }
        keep = set(self.graph.outputs) | traced
        if self.schedule == "step":
            records = self._run_stepwise(inputs, steps, contexts, keep, traced)
        else:
            records = MultiStep(self, contexts, batch).run(inputs, steps, keep, traced)
        contexts.clear()  # the parameters in the backend's dtype (copies of the weights) go
        stacked = {k: np.concatenate(v) for k, v in records.items()}
        outputs = {n: stacked[n, ""] for n in self.graph.outputs}
        # Key traces by node name, not by splitting on '.': names may hold dots (inlined subgraphs
        # are "outer.inner"). A node's own output wins over another node's "<name>.<var>" state.
        traces = {name: a for (name, var), a in stacked.items() if not var and name in traced}
        for (name, var), a in stacked.items():
            if var and name in traced:
                traces.setdefault(f"{name}.{var}", a)
        return outputs, traces

    def _run_stepwise(
        self,
        inputs: Mapping[str, np.ndarray],
        steps: int,
        contexts: dict[str, KernelContext],
        keep: set[str],
        traced: set[str],
    ) -> Records:
        """Every node once per step, in graph order (the ``step`` schedule)."""
        states: dict[str, State] = {name: {} for name in self.order}
        previous: dict[str, Tensor] = {}
        records: Records = {}  # (node, state var or ''): steps, each (1, batch, *shape)
        feeds = {name: self.xp.asarray(a) for name, a in inputs.items()}
        for t in range(steps):
            env: dict[str, Tensor] = {}
            for i, name in enumerate(self.order):
                ctx = contexts[name]
                ctx.feed = feeds[name][t] if name in feeds else None
                x = self._gather(name, env, previous, ctx)
                env[name] = self.run_node(name, x, states, ctx)
                self.observe(name, self.xp.reshape(env[name], (1, *env[name].shape)))
                if name in keep:
                    records.setdefault((name, ""), []).append(self.xp.to_numpy(env[name])[None])
                if name in traced:
                    self.record_state(records, name, states[name])
                for done in self._free_after[i]:
                    del env[done]
            previous = {src: env[src] for src in self._recurrent_srcs}
        return records

    def _gather(self, name: str, env: dict[str, Tensor], previous: dict[str, Tensor], ctx: KernelContext) -> Any:
        node = self.graph.nodes[name]
        if node.inputs is Inputs.NONE:
            return None
        values: list[Tensor] = []
        for e in self.graph.in_edges(name):
            if e.recurrent:
                value = previous.get(e.src)
                values.append(self.xp.zeros((ctx.batch, *self.graph.types[e.src])) if value is None else value)
            else:
                values.append(env[e.src])
        if node.inputs is Inputs.ORDERED:
            return values
        total = values[0]
        for v in values[1:]:
            total = total + v
        return total

    def run_node(self, name: str, x: Any, states: dict[str, State], ctx: KernelContext) -> Tensor:
        """One kernel call: one step, or (multi-step, stateless kinds) all steps folded into ``ctx.batch``."""
        node = self.graph.nodes[name]
        if type(node) not in KERNELS:
            raise InterpError(f"{self.graph.describe(name)}: no interpreter kernel for kind {node.kind}")
        with self.executing(name):
            y, states[name] = KERNELS[type(node)](node, x, states[name], ctx)
        return y

    def run_scan(
        self, name: str, x: Tensor, steps: int, states: dict[str, State], ctx: KernelContext, trace: bool
    ) -> Scanned | None:
        """The node's scan over ``steps`` steps (``SCANS``), or None where its kind has none or it does not apply."""
        node = self.graph.nodes[name]
        scan = SCANS.get(type(node))
        if scan is None:
            return None
        with self.executing(name):
            return scan(node, x, states[name], ctx, steps, trace)

    @contextlib.contextmanager
    def executing(self, name: str) -> Iterator[None]:
        """Re-raise a kernel's failure as ``InterpError`` naming the node (and where it came from)."""
        try:
            yield
        except SpikecError as err:
            raise InterpError(f"while executing {self.graph.describe(name)}: {err}") from err
        except KeyError as err:
            raise InterpError(f"while executing {self.graph.describe(name)}: {err!r}") from err
        except Exception as err:
            raise InterpError(f"while executing {self.graph.describe(name)}: {type(err).__name__}: {err}") from err

    def observe(self, name: str, values: Tensor) -> None:
        """Called with each node's output over consecutive steps, (steps, batch, *shape), in time order."""

    def record_state(self, records: Records, name: str, state: State) -> None:
        """Append one step of a traced node's ``TRACED_STATE`` variables."""
        for var in TRACED_STATE:
            if var in state:
                records.setdefault((name, var), []).append(self.xp.to_numpy(state[var])[None])


def run(
    graph: Graph,
    inputs: np.ndarray | Mapping[str, np.ndarray],
    *,
    steps: int | None = None,
    backend: str | Backend = "numpy",
    trace: bool | Iterable[str] = False,
    dtype: str = "float64",
    device: str | None = None,
    schedule: str = "multistep",
) -> RunResult:
    """Run ``graph`` on ``inputs`` for ``steps`` steps and return outputs (and traces).

    ``trace=True`` records every node's output (and ``v``/``i`` state) per step; a list of
    node names records only those. ``schedule``: see ``Interpreter``.
    """
    xp = make_backend(backend, dtype=dtype, device=device) if isinstance(backend, str) else backend
    feeds, total, notes = prepare_inputs(graph, inputs, steps)
    interp = Interpreter(graph, xp, schedule)
    if trace is True:
        names: list[str] = list(interp.order)
    elif trace is False:
        names = []
    elif isinstance(trace, str):  # one name, not its characters
        names = [trace]
    else:
        names = list(trace)
        unknown = [n for n in names if n not in interp.graph.nodes]
        if unknown:
            raise InputError(f"cannot trace {unknown}: no such nodes; nodes: {list(interp.order)}")
    outputs, traces = interp.run(feeds, total, trace=names)
    batch = next(iter(feeds.values())).shape[1]
    return RunResult(outputs, traces, total, batch, xp.name, notes)


def evaluate(
    graph: Graph,
    inputs: np.ndarray | Mapping[str, np.ndarray],
    *,
    backend: str | Backend = "numpy",
    trace: bool | Iterable[str] = False,
    dtype: str = "float64",
    device: str | None = None,
) -> RunResult:
    """Evaluate a graph without spiking state once, as the ANN: inputs and outputs are (batch, *shape).

    This is the oracle for the front ends (``spikec run`` uses it for graphs that are not spiking).
    Traces are (batch, *shape) too.
    """
    if graph.is_spiking:
        stateful = [n for n, node in graph.nodes.items() if node.stateful]
        raise InputError(f"the graph has spiking/stateful nodes {stateful[:5]}: step it over time with run()")
    arrays = inputs if isinstance(inputs, Mapping) else {name: inputs for name in graph.inputs[:1]}
    if not isinstance(inputs, Mapping) and len(graph.inputs) != 1:
        raise InputError(f"the graph has inputs {list(graph.inputs)}: pass one array per input by name")
    for name, a in arrays.items():
        expected = graph.nodes[name].feed_shape() if name in graph.nodes else None
        if expected is not None and np.ndim(a) != len(expected) + 1:
            dims = ", ".join(map(str, expected))
            raise InputError(f"input '{name}' has shape {np.shape(a)}; an ANN evaluation takes (batch, {dims})")
    result = run(
        graph,
        {k: np.asarray(v)[None] for k, v in arrays.items()},
        steps=1,
        backend=backend,
        trace=trace,
        dtype=dtype,
        device=device,
    )
    result.outputs = {k: v[0] for k, v in result.outputs.items()}
    result.traces = {k: v[0] for k, v in result.traces.items()}
    return result
