"""The model corpus (tests/corpus/): real architectures, exported by torch's exporters, through spikec.

Each (model, export variant) either is refused with a one-line error, or imports and matches onnxruntime
(a mismatch or an exception out of ``spikec.cli.main`` fails); the committed docs/model-support.md must be
what docs/gen_model_support.py renders from this walk (up to the numbers it only reports). Every case
exports its model once per session into a temporary directory.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import pytest
from corpus.export import VARIANTS, export
from corpus.models import MODELS
from corpus.walk import FAILING, CaseResult, Walker, cases, describe
from corpus.walk import main as walk_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def walker(tmp_path_factory: pytest.TempPathFactory) -> Walker:
    return Walker(tmp_path_factory.mktemp("corpus"))


@pytest.mark.slow
@pytest.mark.parametrize(("model", "variant"), cases(), ids=[f"{m}:{v}" for m, v in cases()])
def test_case_matches_onnxruntime_or_is_refused_in_one_line(walker: Walker, model: str, variant: str) -> None:
    r = walker.result(model, variant)
    assert r.status not in FAILING, describe(r)
    if r.status in ("refused", "export-failed"):
        assert r.error and "\n" not in r.error and "Traceback" not in r.error, describe(r)
    else:  # imported: it matched onnxruntime, and eval either ran or said why not
        assert r.rel_error is not None and r.rel_error < 1e-3, describe(r)
        assert (r.agreement is not None) != bool(r.eval_error), describe(r)


def test_corpus_covers_the_brief() -> None:
    families = {m.family for m in MODELS.values()}
    assert families == {"transformer", "cnn"}
    assert len(cases()) == sum(
        m.family in v.families for m in MODELS.values() for v in VARIANTS.values() if v.walked
    )  # fmt: skip
    assert {"vit", "deit", "bert", "distilbert", "gpt2", "mha", "alexnet", "shufflenet", "hf-swin"} <= set(MODELS)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_model_support", REPO / "docs" / "gen_model_support.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_committed_model_support_page_is_up_to_date(walker: Walker) -> None:
    gen = _generator()
    page = (REPO / "docs" / "model-support.md").read_text(encoding="utf-8")
    assert gen.mask(page) == gen.mask(gen.render(walker.all())), "run: .venv/bin/python docs/gen_model_support.py"


def test_page_mask_hides_only_the_reported_numbers() -> None:
    gen = _generator()
    r = CaseResult("vgg", "dynamo-b1", rel_error=3.8e-8, agreement=(7, 8), min_drift=0.9312)
    page = gen.render([r])
    assert "≤ 1e-7" in page and "7/8 agree, min drift 0.93" in page
    other = gen.render([CaseResult("vgg", "dynamo-b1", rel_error=2e-6, agreement=(8, 8), min_drift=0.99)])
    assert page != other and gen.mask(page) == gen.mask(other)
    refused = gen.render([CaseResult("vgg", "dynamo-b1", status="refused", step="import", error="model.onnx: no")])
    assert gen.mask(refused) != gen.mask(page)


def test_cause_groups_one_reason_across_models() -> None:
    gen = _generator()
    a = "model.onnx: ONNX node '/a/Conv' (Conv): got (2, 3, 32, 32) without a batch axis"
    b = "model.onnx: ONNX node 'node_conv2d' (Conv): got (2, 3, 33, 33) without a batch axis"
    assert gen.cause(a) == gen.cause(b) == "ONNX node '…' (Conv): got (…) without a batch axis"


@pytest.mark.slow
def test_walk_command_runs_one_case_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert walk_main(["vgg", "torchscript-b1", "--workdir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("vgg/torchscript-b1") and "1 cases in" in out
    assert (tmp_path / "w" / "vgg" / "torchscript-b1" / "model.onnx").is_file()
    assert walk_main(["squeezenet", "torchscript-opset9", "--export", str(tmp_path / "s.onnx")]) == 0
    assert onnx.load(str(tmp_path / "s.onnx")).opset_import[0].version == 9


def test_export_variants_write_what_they_say(tmp_path: Path) -> None:
    export(MODELS["mha"], VARIANTS["torchscript-dyn"], tmp_path / "m.onnx")
    x = onnx.load(str(tmp_path / "m.onnx")).graph.input[0]
    assert x.name == "x" and x.type.tensor_type.shape.dim[0].dim_param == "batch"
    ids = MODELS["bert"].inputs(2, seed=0)
    assert ids.dtype == np.int64 and ids.shape == (2, 16) and ids.max() < 100
