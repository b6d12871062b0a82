"""The target interface: everything a chip brings to spikec, behind one small class.

A target is one package (a folder under ``targets/`` for the built-ins, any installed distribution for a
vendor's) published in the ``spikec.targets`` entry-point group. Its class says, as data, what it brings:

- ``dialect``: the module that defines its node kinds and their interpreter kernels (imported when the
  target is loaded, or when a graph needs one of them: ``spikec.plugins.load_dialects``);
- ``passes``: extra passes by name (``"module:function"``), found by the pass registry;
- ``formats``: model file formats it reads and writes (a chip toolchain's network file), with their reader options;
- ``resources``: its resource model (a TOML data file in the package, ``spikec.resources``);
- ``layout``: a line saying how its software holds arrays, when that differs from spikec's (T, batch, *shape)
  (``spikec run --layout NAME``, with ``inputs_from_layout`` and ``output_to_layout``);
- ``preferred_method``: the conversion method ``spikec compile --calib`` uses when ``--method`` is not given
  (None: ``percentile``; a chip that runs quantized ANNs names ``ann``);
- ``verify_options``: the optional ``spikec verify`` options its ``verify`` takes beyond the common ones
  (``labels``: accuracy against the float model it keeps; ``timeout``: seconds its vendor run may take);
- ``quantize_options``: the options of the shared ``quantize`` pass only it takes (e.g. ``align``: how a neuron
  reads sources of different latency);
- ``compile_flags``: ``spikec compile`` flags of its own (``TargetFlag``), each a spelling of one of its pipeline's
  pass options (``--chip-version 1`` for ``--pass-option quantize.ip_version=1``; ``spikec.cli_args``);

and implements what only it knows: ``quantize`` (the shared ``quantize{target=NAME}`` pass calls it),
``default_pipeline``, ``legalize``, ``emit``, ``verify`` and ``check_fixed`` (``spikec run --fixed NAME``),
and ``conversion_defaults``: the conversion settings its chip can run (a reset it has, a max-pool it can
compute, the input range its quantizer must take), each with its reason, which the conversion methods
use where the user gave no value of their own (``spikec.methods.Method.settle``).
``verify``'s report carries the lines ``spikec verify`` prints, so the command line names no chip.
``lower`` runs the pipeline and keeps each pass's side results (the partition's core map), which ``emit``
consumes: nothing is computed twice. Vendor SDKs are imported inside these methods (``require``), never
when the class is imported, so ``spikec --help`` and ``spikec targets`` import none.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from spikec.errors import TargetError
from spikec.ir.graph import Graph

if TYPE_CHECKING:
    import numpy as np

    from spikec.coding import Progress
    from spikec.methods import ConversionOptions
    from spikec.pipeline import PassResult
    from spikec.resources import ResourceModel


def first_outside(graph: Graph, kinds: Collection[str]) -> str | None:
    """The first node of ``graph`` (topological order) whose kind is not in ``kinds``, or None."""
    return next((name for name in graph.order if graph.nodes[name].kind not in kinds), None)


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """Node kinds a target accepts (``None``: all) and free-form limits from its resource model.

    ``binary_spikes_only``: the chip moves only 0/1 events between cores, so every synaptic op
    must read spikes; such a target calls ``spikec.spike_check.require_binary_spikes`` in
    ``legalize``, which raises ``TargetError`` naming each offender and the pass that fixes it.
    """

    node_kinds: frozenset[str] | None = None
    limits: dict[str, Any] = dataclasses.field(default_factory=dict)
    binary_spikes_only: bool = False


@dataclasses.dataclass(frozen=True)
class ReaderOption:
    """A command-line option a format's reader takes: ``--reset-interval N`` → ``reset_interval=N``."""

    name: str  # the reader's keyword (``reset_interval``); the CLI spells it ``--reset-interval``
    help: str
    type: Callable[[str], Any] = str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


FLAG = re.compile(r"--[a-z][a-z0-9]*(-[a-z0-9]+)*")


@dataclasses.dataclass(frozen=True)
class TargetFlag:
    """A ``spikec compile`` flag a target adds: ``flag VALUE`` means ``--pass-option option=VALUE``. Given with
    another target it is a usage error naming this one; ``choices``: the values it takes (None: any)."""

    flag: str  # "--" and lowercase words joined by "-", best starting with the target's name
    option: str  # the pass option it sets, "PASS.KEY" (as --pass-option names it)
    help: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    def __post_init__(self) -> None:
        if not FLAG.fullmatch(self.flag):
            raise ValueError(f"TargetFlag {self.flag!r}: a flag is '--' and lowercase words joined by '-'")
        name, dot, key = self.option.partition(".")
        if not (name and dot and key) or "=" in self.option:
            raise ValueError(f"TargetFlag {self.flag}: option {self.option!r} must be PASS.KEY, e.g. quantize.bits")

    @property
    def dest(self) -> str:
        """Its attribute on the parsed command line (apart from spikec's own options')."""
        return "target_flag_" + self.flag[2:].replace("-", "_")


@dataclasses.dataclass(frozen=True)
class FileFormat:
    """A model file format a target reads and/or writes, chosen by file suffix.

    ``reader``: ``"module:function"`` taking ``(path, **options) -> Graph``, where ``options`` are the
    values of ``options`` (``None`` when not given); ``writer``: ``(graph, path) -> None``.
    """

    suffix: str
    description: str
    reader: str | None = None
    writer: str | None = None
    options: tuple[ReaderOption, ...] = ()


@dataclasses.dataclass(frozen=True)
class Artifact:
    """An emitted artifact: a directory of plain files plus the target that made it."""

    target: str
    directory: Path
    files: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Lowered:
    """A graph after the target's pipeline: the graph, a log line per step (``pass``, ``status``, maybe
    ``reason``), and the side results of the passes that have them (``partition`` → its core map), by pass
    name, for ``emit`` to use rather than recompute."""

    graph: Graph
    log: tuple[Mapping[str, str], ...] = ()
    results: Mapping[str, PassResult] = dataclasses.field(default_factory=lambda: MappingProxyType({}))


@dataclasses.dataclass(frozen=True)
class Choice:
    """A conversion setting a target chooses: the value, why, and whether its chip can run no other (``required``:
    a user's different value is an error that gives ``reason``, what the chip does instead)."""

    value: Any
    reason: str
    required: bool = False


@dataclasses.dataclass(frozen=True)
class ConversionDefaults:
    """What a target chooses for converting an ANN to run on it (``Target.conversion_defaults``).

    ``settings``: conversion options by ``spikec.methods.ConversionOptions`` field (``reset``, ``maxpool``,
    ``init``, ``encoding``, ...); ``pass_options``: options of its pipeline's passes by ``'pass.key'`` (as
    ``--pass-option`` names them), used unless the user gives that option."""

    settings: Mapping[str, Choice] = dataclasses.field(default_factory=dict)
    pass_options: Mapping[str, Choice] = dataclasses.field(default_factory=dict)


def _spelled(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, float) else str(value)


def merge_pass_options(
    chosen: Mapping[str, Choice], given: Sequence[str], target: str
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The user's ``'pass.key=value'`` options plus the target's ``chosen`` ones the user did not give, and per
    option what was used and by whom (``user`` or ``target NAME`` with its reason)."""
    given_keys = {item.partition("=")[0].strip(): item.partition("=")[2].strip() for item in given}
    options = list(given)
    record: dict[str, dict[str, Any]] = {key: {"value": value, "by": "user"} for key, value in given_keys.items()}
    for key, choice in chosen.items():
        if key not in given_keys:
            options.append(f"{key}={_spelled(choice.value)}")
            record[key] = {"value": choice.value, "by": f"target {target}", "reason": choice.reason}
    return options, record


def pass_name(spec: str) -> str:
    """``'quantize{target=NAME}'`` → ``'quantize'``."""
    return spec.split("{", 1)[0].strip()


def with_pass_options(steps: Sequence[str], pass_options: Sequence[str], target: str) -> list[str]:
    """Add ``'pass.key=value'`` options to the steps of that pass: ``quantize{target=NAME}`` with
    ``quantize.input_max=255`` is ``quantize{target=NAME,input_max=255}``. An option naming a pass
    that is not in ``steps`` is an error listing the passes that are."""
    from spikec.pipeline import parse_pass_spec

    extra: dict[str, list[str]] = {}
    for item in pass_options:
        name, dot, setting = item.partition(".")
        if not dot or "=" not in setting:
            raise TargetError(f"--pass-option {item!r}: expected PASS.KEY=VALUE, e.g. quantize.input_max=255")
        extra.setdefault(name, []).append(setting)
    names = [pass_name(step) for step in steps]
    unknown = sorted(set(extra) - set(names))
    if unknown:
        raise TargetError(
            f"--pass-option for {', '.join(unknown)}: target '{target}' runs the passes {', '.join(names) or 'none'}"
        )
    out = []
    for step, name in zip(steps, names, strict=True):
        if name in extra:
            inner = step[len(name) :].strip().removeprefix("{").removesuffix("}")
            step = f"{name}{{{','.join(filter(None, [inner, *extra[name]]))}}}"
            parse_pass_spec(step)  # the options exist and parse; the error names the pass and option
        out.append(step)
    return out


class Target:
    """Base class of targets. Subclasses set ``name``/``description`` and what they bring (see the module
    docstring), and override the methods their chip needs."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    dialect: ClassVar[str | None] = None  # module defining the target's node kinds and kernels
    passes: ClassVar[Mapping[str, str]] = MappingProxyType({})  # pass name -> "module:function"
    formats: ClassVar[tuple[FileFormat, ...]] = ()
    resources: ClassVar[str | None] = None  # resource model file, relative to the target's package
    layout: ClassVar[str | None] = None  # its software's array layout in a line (None: it has none of its own)
    preferred_method: ClassVar[str | None] = None  # --method with --calib when none is given (None: percentile)
    verify_options: ClassVar[frozenset[str]] = frozenset()  # optional verify options it takes (e.g. labels)
    quantize_options: ClassVar[frozenset[str]] = frozenset()  # quantize options of its own it takes (e.g. align)
    compile_flags: ClassVar[tuple[TargetFlag, ...]] = ()  # spikec compile flags of its own, each a pass option

    # -- what the chip takes ------------------------------------------------------------------------
    def capabilities(self) -> Capabilities:
        return Capabilities()

    def resource_model(self) -> ResourceModel:
        """The target's resource model (``resources``); ``TargetError`` when it has none."""
        if self.resources is None:
            raise TargetError(f"target '{self.name}' has no resource model: it cannot be partitioned")
        from spikec.resources import load_resource_model

        module = importlib.import_module(type(self).__module__)
        return load_resource_model(Path(module.__file__ or "").parent / self.resources)

    def require(self, module: str, install: str) -> ModuleType:
        """Import ``module`` of the vendor's software, or ``TargetError`` saying how to install it."""
        try:
            return importlib.import_module(module)
        except ImportError as err:
            raise TargetError(
                f"target '{self.name}' needs {module}, which cannot be imported here ({err}): {install}"
            ) from None

    # -- from an ANN to a float SNN it can run ------------------------------------------------------
    def conversion_defaults(
        self, method: str, samples: np.ndarray | None, options: ConversionOptions, graph: Graph | None = None
    ) -> ConversionDefaults:
        """The settings this target chooses for converting ``graph`` (the ANN) with ``method`` (``--method``'s
        name) on the calibration ``samples`` (N, *shape) (None for ``--method snn``); ``options`` are the user's
        (None where not given). The base class chooses nothing: the methods' own defaults apply."""
        return ConversionDefaults()

    # -- from a float SNN to the chip ------------------------------------------------------------
    def quantize(self, graph: Graph, **options: Any) -> PassResult:
        """Lower a float SNN to the target's fixed point (the shared ``quantize{target=NAME}`` pass)."""
        raise TargetError(f"target '{self.name}' has no quantizer")

    def default_pipeline(self) -> list[str]:
        return []

    def pipeline(self, pass_options: Sequence[str] = ()) -> list[str]:
        """``default_pipeline`` with ``pass_options`` (``'pass.key=value'``, the CLI's ``--pass-option``) added."""
        return with_pass_options(self.default_pipeline(), pass_options, self.name)

    def lower(self, graph: Graph, pass_options: Sequence[str] = (), progress: Progress | None = None) -> Lowered:
        """Run the pipeline on ``graph``; the result keeps each pass's side results for ``emit``. ``progress``
        hears ``("conversion: PASS", done, passes)`` as each pass starts and ``("conversion", passes, passes)``."""
        from spikec.pipeline import PassManager, PassResult

        results: dict[str, PassResult] = {}
        steps = self.pipeline(pass_options)
        names = [pass_name(step) for step in steps]
        done = 0

        def report() -> None:
            if progress is not None and names:
                progress(f"conversion: {names[done]}" if done < len(names) else "conversion", done, len(names))

        def keep(name: str, result: PassResult) -> None:
            nonlocal done
            if type(result) is not PassResult:  # a subclass carries a side result (a report, a core map)
                results[name] = result
            done += 1
            report()

        report()
        graph = PassManager(steps).run(graph, observe=keep) if steps else graph
        return Lowered(graph, tuple({"pass": s, "status": "ran"} for s in steps), MappingProxyType(results))

    def legalize(self, graph: Graph) -> Graph:
        """Raise ``TargetError`` naming the first node the target cannot take (with ``binary_spikes_only``:
        ``NotBinarySpikes`` naming every non-spiking node and the pass or retraining that makes it legal)."""
        if self.capabilities().binary_spikes_only:
            from spikec.spike_check import require_binary_spikes

            require_binary_spikes(graph, self.name)
        kinds = self.capabilities().node_kinds
        name = None if kinds is None else first_outside(graph, kinds)
        if name is not None:
            raise TargetError(
                f"{graph.describe(name)}: target '{self.name}' does not take {graph.nodes[name].kind}; "
                f"it takes {', '.join(sorted(kinds or ()))}"
            )
        return graph

    def emit(self, lowered: Lowered, out_dir: Path) -> Artifact:
        """Write the artifact's files into ``out_dir`` (an empty directory spikec renames into place)."""
        raise TargetError(f"target '{self.name}' cannot emit artifacts yet")

    def summary(self, report: Mapping[str, Any]) -> list[str]:
        """A line or two for ``spikec compile``'s summary on what the artifact takes on the chip beyond the cores
        of the placement (which spikec prints): e.g. its processing units by type, from ``report`` (report.json's
        content, the target's own report under ``artifact``). The base class adds none."""
        return []

    def verify(self, artifact: Artifact, **options: Any) -> dict[str, Any]:
        """Run ``artifact`` in the vendor's software and compare it with the interpreter (``spikec verify``).

        ``options`` are the command line's: ``inputs`` (a path or None), ``steps`` (None: the report's),
        ``layers``, ``samples``, ``seed``, and those of ``verify_options`` the user gave (``timeout``,
        ``labels``). The report has at least ``target``, ``samples``, ``steps``, ``mismatches`` (values that
        differ; 0 when exact) and ``agreement`` (fraction of samples with the same prediction), and ``lines``:
        what the command line prints (the summary first; with mismatches, the first of them)."""
        raise TargetError(f"target '{self.name}' has no verification yet")

    # -- arrays as the chip's software holds them (``spikec run --layout NAME``) ----------------------------
    def inputs_from_layout(
        self, graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray], steps: int | None
    ) -> dict[str, np.ndarray]:
        """Inputs in the target's layout (one array for a one-input graph, else by input name) → spikec's
        (T, batch, *shape) by input name; ``steps`` is ``--steps`` (None when not given)."""
        raise TargetError(f"target '{self.name}' has no array layout of its own")

    def output_to_layout(self, array: np.ndarray) -> np.ndarray:
        """An output or trace in spikec's (T, batch, *shape) → the target's layout."""
        raise TargetError(f"target '{self.name}' has no array layout of its own")

    # -- the interpreter in the chip's arithmetic --------------------------------------------------
    def check_fixed(self, graph: Graph, inputs: Mapping[str, np.ndarray]) -> None:
        """Raise unless the interpreter runs ``graph`` on ``inputs`` bit for bit as the chip does
        (``spikec run --fixed NAME``): the graph must be in the target's fixed-point dialect."""
        raise TargetError(f"target '{self.name}' has no fixed-point mode: --fixed takes targets that have one")
