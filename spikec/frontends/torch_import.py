"""PyTorch front end: a module plus an example input → SIR, through PyTorch's own ONNX exporter.

``from_torch`` runs ``torch.onnx.export(..., dynamo=True)`` (torch.export underneath) in memory
and hands the ONNX model to spikec's ONNX front end. One lowering path serves both front ends,
and PyTorch maintains the decomposition of its ops into ONNX (docs/torch-frontend.md says why).

Files: a ``.pt``/``.pth`` is read with ``torch.load(weights_only=True)`` only. A state_dict holds
weights but no architecture, so the architecture comes from code the user trusts
(``--arch file.py:build``); a pickled full module, and ``.pt2`` archives (whose loader unpickles
arbitrary objects), are refused with an explanation of how to export instead.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import pickle
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from spikec.errors import FrontendError, SpikecError
from spikec.frontends.onnx.batch_plan import BatchAxis
from spikec.ir.graph import Graph

EXPORT_HINT = (
    "save the weights with torch.save(model.state_dict(), 'model.pt') and import with "
    "`spikec import model.pt --arch file.py:build --input-shape C,H,W`, call "
    "spikec.frontends.torch_import.from_torch(model, example_input) from Python, or export ONNX with "
    "torch.onnx.export(model, (x,), 'model.onnx', dynamo=True)"
)


def _torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise FrontendError("the PyTorch front end needs torch: pip install 'spikec[torch]'") from err
    return torch


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs optional-dependency notes (torchvision ops) and warnings; keep them out."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def from_torch(module: Any, example_input: Any, *, batch_axis: BatchAxis = None) -> Graph:
    """Import ``module`` (an ``nn.Module``) traced on ``example_input`` (a tensor, batch first).

    The module is put in eval mode; the result is a verified graph whose nodes carry
    ``onnx:``/``torch:`` origins. ``batch_axis`` is passed to the ONNX front end. SpikingJelly and
    snnTorch neuron modules become SIR neurons and the graph is one time step of the model
    (docs/torch-frontend.md); the module is restored after the export.
    """
    torch = _torch()
    from spikec.frontends import torch_snn
    from spikec.frontends.onnx import import_onnx

    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    inputs = tuple(torch.as_tensor(x, dtype=torch.float32) for x in inputs)
    module.eval()
    # SNN neurons (SpikingJelly, snnTorch) become one spikec.<Kind> node each; the exported graph is one step
    with torch_snn.prepared(module) as sites:
        try:
            torch_snn.refuse_unknown_state(module, inputs)  # runs one forward pass first
        except SpikecError:
            raise
        except Exception as err:  # the module's own code failed on the example: a wrong shape, usually
            shapes = ", ".join(str(tuple(x.shape)) for x in inputs)
            raise FrontendError(
                f"{type(module).__name__} fails on an example input of shape {shapes}: {type(err).__name__}: "
                f"{_first_line(err)}; check the input shape (--input-shape is per sample, without the batch axis)"
            ) from None
        table = torch_snn.translation_table() if sites else None
        try:
            with _quiet_exporter(), torch.no_grad():
                program = torch.onnx.export(module, inputs, dynamo=True, verbose=False, custom_translation_table=table)
        except Exception as err:  # the exporter raises many types; the user needs the torch message
            raise FrontendError(
                f"torch.onnx.export could not trace {type(module).__name__}: {type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}"
            ) from err
    model = program.model_proto
    neuron_origins = torch_snn.finish(model, sites)
    graph = import_onnx(model, batch_axis=batch_axis)
    return _with_torch_origins(graph, {**_module_paths(model), **neuron_origins})


def _module_paths(model: Any) -> dict[str, str]:
    """ONNX node name → ``torch:<module path> (<Module class>)`` from the exporter's metadata."""
    paths: dict[str, str] = {}
    for node in model.graph.node:
        meta = {p.key: p.value for p in node.metadata_props}
        scopes = _literal_list(meta.get("pkg.torch.onnx.name_scopes", "[]"))
        classes = _literal_list(meta.get("pkg.torch.onnx.class_hierarchy", "[]"))
        module_path = ".".join(s for s in scopes[:-1] if s)
        owner = classes[-2].rsplit(".", 1)[-1] if len(classes) >= 2 else node.op_type
        paths[node.name] = f"torch:{module_path or '<top>'} ({owner})"
    return paths


def _literal_list(text: str) -> list[str]:
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _with_torch_origins(graph: Graph, paths: Mapping[str, str]) -> Graph:
    nodes = {}
    for name, node in graph.nodes.items():
        onnx_name = node.origin.removeprefix("onnx:")
        nodes[name] = node.replace(origin=paths[onnx_name]) if onnx_name in paths else node
    return graph.replace(nodes=nodes)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


def _load_weights(path: Path) -> Mapping[str, Any]:
    from spikec.safe_read import check_file, check_memory

    size = check_file(path, expect="PyTorch file").st_size
    if size == 0:
        raise FrontendError(f"{path}: the file is empty: not a PyTorch state_dict (save one with torch.save)")
    check_memory(2 * size, f"{path}", "give a smaller state_dict")  # the file's bytes and the tensors
    torch = _torch()
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as err:
        raise FrontendError(
            f"{path}: refused: the file pickles Python objects (probably a whole nn.Module), and spikec "
            f"never unpickles code from a model file. Instead, {EXPORT_HINT}"
        ) from err
    except Exception as err:  # torch.load raises many types on a damaged file (weights_only: never code)
        raise FrontendError(
            f"{path}: not a readable PyTorch file ({type(err).__name__}: {_first_line(err)}); is it truncated?"
        ) from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]  # a training checkpoint
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FrontendError(f"{path}: holds a {type(obj).__name__}, not a state_dict of tensors; {EXPORT_HINT}")
    return obj


def _load_builder(spec: str) -> Any:
    """``'path/to/file.py:build'`` or ``'package.module:build'`` → the callable (user-trusted code)."""
    location, sep, name = spec.rpartition(":")
    if not sep or not location or not name:
        raise FrontendError(f"--arch {spec!r}: write FILE.py:FUNCTION or package.module:FUNCTION")
    try:
        if location.endswith(".py"):
            from spikec.safe_read import check_file

            file = Path(location)
            check_file(file, "--arch", expect="Python file")
            module_spec = importlib.util.spec_from_file_location(f"spikec_arch_{file.stem}", file)
            if module_spec is None or module_spec.loader is None:
                raise FrontendError(f"--arch {spec!r}: cannot load {file}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(location)
    except SpikecError:
        raise
    except SyntaxError as err:
        raise FrontendError(f"--arch {spec!r}: {err.filename}:{err.lineno}: syntax error: {err.msg}") from None
    except ModuleNotFoundError as err:
        hint = " (a file is written FILE.py:FUNCTION)" if not location.endswith(".py") else ""
        raise FrontendError(f"--arch {spec!r}: no module named {err.name!r}{hint}") from None
    except Exception as err:  # the user's module failed while it was imported
        raise FrontendError(
            f"--arch {spec!r}: importing {location} raised {type(err).__name__}: {_first_line(err)}"
        ) from None
    builder = getattr(module, name, None)
    if not callable(builder):
        raise FrontendError(f"--arch {spec!r}: {location} has no callable named {name!r}")
    return builder


def _build_module(spec: str) -> Any:
    """The ``nn.Module`` the ``--arch`` function returns; its failures are the user's code's, named as such."""
    builder = _load_builder(spec)
    try:
        module = builder()
    except Exception as err:  # user-trusted code: report what it raised, not a traceback
        raise FrontendError(f"--arch {spec!r}: calling it raised {type(err).__name__}: {_first_line(err)}") from None
    if not isinstance(module, _torch().nn.Module):
        raise FrontendError(f"--arch {spec!r}: returned a {type(module).__name__}, not a torch.nn.Module")
    return module


def import_torch_file(
    path: str | Path,
    *,
    arch: str | None = None,
    input_shape: Sequence[int] | None = None,
    batch_axis: BatchAxis = None,
) -> Graph:
    """Import a ``.pt``/``.pth`` state_dict into the architecture built by ``arch`` (see module doc)."""
    path = Path(path)
    if path.suffix == ".pt2":
        raise FrontendError(
            f"{path}: refused: loading a torch.export archive unpickles arbitrary objects "
            f"(torch.export.load uses weights_only=False). Instead, {EXPORT_HINT}"
        )
    weights = _load_weights(path)
    if arch is None:
        keys = ", ".join(list(weights)[:6])
        raise FrontendError(
            f"{path}: a state_dict ({len(weights)} tensors: {keys}, ...) holds weights but no architecture; "
            "pass --arch FILE.py:FUNCTION (a function you trust that returns the nn.Module) and --input-shape"
        )
    if not input_shape:
        raise FrontendError(f"{path}: --input-shape is needed to trace the module (per sample, e.g. 1,28,28)")
    module = _build_module(arch)
    try:
        module.load_state_dict(weights)
    except (RuntimeError, TypeError, ValueError, KeyError) as err:
        raise FrontendError(f"{path}: the weights do not fit {arch}: {_first_line(err)} ...") from None
    example = _torch().zeros((1, *input_shape))
    try:
        return from_torch(module, example, batch_axis=batch_axis)
    except FrontendError as err:
        if str(path) in str(err):
            raise
        raise FrontendError(f"{path}: {err}") from None
