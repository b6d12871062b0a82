"""Regenerate docs/onnx-support.md: the ONNX ops spikec imports and its ONNX conformance results.

    .venv/bin/python docs/gen_onnx_support.py          # rewrite docs/onnx-support.md
    .venv/bin/python docs/gen_onnx_support.py --check  # exit 1 if the committed file is stale

The conformance cases are read from ../shared/data/onnx/node (beside the repository);
tests/test_onnx_conformance.py checks that the committed page equals ``render(run_all(...))``.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = REPO.parent / "shared" / "data" / "onnx" / "node"
PAGE = REPO / "docs" / "onnx-support.md"

# How each supported op lowers (the page's op table; every supported op needs a line).
LOWERING = {
    "Abs": "`Unary(abs)`",
    "Add": "`Add` (two activations of one shape), `Bias` (constant), else `Binary(add)`",
    "Attention": "decomposed: heads split (`Reshape`/`Transpose`), past K/V `Concat`, GQA `Gather`, "
    "`Scale`, `MatMul`, softcap (`Unary(tanh)`), additive mask (`Binary`/`Constant`), `Softmax`, `Where`",
    "AveragePool": "`AvgPool` (1–2-d, symmetric pads, pads counted), else `Pool(avg)`",
    "BatchNormalization": "`BatchNorm` (channels on per-sample axis 0), else `Scale`+`Bias`; inference only",
    "Cast": "dropped (to a float type), `Unary(nonzero)` (to bool), `Unary(trunc)` (to an integer type)",
    "Ceil": "`Unary(ceil)`",
    "Celu": "`Unary(celu)`",
    "Clip": "`Clip` (constant bounds), else `Binary(max/min)`",
    "Concat": "`Concat` (constants become `Constant` sources)",
    "Constant": "folded: a constant",
    "ConstantOfShape": "folded (constant shape)",
    "Conv": "`Conv` (1–2-d); asymmetric pads: a `Pad` first",
    "ConvTranspose": "`ConvTranspose` (1–3-d; `output_shape`, `auto_pad` resolved to pads)",
    "Cos": "`Unary(cos)`",
    "Div": "`Scale(1/c)` (constant divisor), else `Binary(div)`",
    "Dropout": "dropped (inference); the mask output is a `Constant` of ones",
    "Elu": "`Unary(elu)`",
    "Equal": "`Binary(eq)` (1.0/0.0)",
    "EyeLike": "folded (constant input)",
    "Erf": "`Unary(erf)`",
    "Exp": "`Unary(exp)`",
    "Expand": "`Binary(mul)` by a `Constant` of ones",
    "Flatten": "`Flatten` (axis 1 with a batch axis), else `Reshape`",
    "Floor": "`Unary(floor)`",
    "Gather": "`Gather` (constant indices); rows of a constant table by a graph input's token ids: `TokenInput`",
    "GatherElements": "`Reshape` + `Gather` by flat indices (constant)",
    "GatherND": "`Reshape` + `Gather` (constant indices, batch_dims=0, no batch axis)",
    "Gelu": "`GELU`",
    "Gemm": "`Dense` (+bias) for a constant B, else `MatMul` (+`Transpose`, `Scale`, `Binary`)",
    "GlobalAveragePool": "`AvgPool` over the whole plane (1–2-d), else `Reduce(mean)`",
    "GlobalMaxPool": "`MaxPool` over the whole plane (1–2-d), else `Reduce(max)`",
    "Greater": "`Binary(gt)`",
    "GreaterOrEqual": "`Binary(ge)`",
    "HardSigmoid": "`Unary(hard_sigmoid)`",
    "HardSwish": "`Unary(hard_swish)`",
    "Identity": "dropped",
    "If": "the taken branch, inlined (the condition must fold to a constant: constants and static shapes)",
    "IsInf": "`Unary(isinf)` (both signs)",
    "IsNaN": "`Unary(isnan)`",
    "Not": "`Unary(not)`",
    "InstanceNormalization": "`LayerNorm` over the spatial axes + `Scale` + `Bias`",
    "LayerNormalization": "`LayerNorm`; Mean/InvStdDev outputs from `Reduce`/`Binary`/`Unary`",
    "LeakyRelu": "`Unary(leaky_relu)`",
    "Less": "`Binary(lt)`",
    "LessOrEqual": "`Binary(le)`",
    "LRN": "`LRN` (cross-channel window, any size)",
    "Log": "`Unary(log)`",
    "LogSoftmax": "`Reduce`/`Binary`/`Unary` (x − max − log Σ exp)",
    "MatMul": "`Dense` for a constant 2-d right operand, else `MatMul`",
    "Max": "`Binary(max)` chain",
    "MaxPool": "`MaxPool` (1–2-d, symmetric pads), else `Pool(max)`; not the Indices output",
    "Mean": "`Add` + `Scale(1/n)`",
    "Min": "`Binary(min)` chain",
    "Mish": "`Unary(mish)`",
    "Mul": "`Scale` (constant), else `Binary(mul)`",
    "Neg": "`Unary(neg)`",
    "Pad": "`Pad` (constant, reflect, edge and wrap modes; pads >= 0)",
    "PRelu": "`Unary(leaky_relu)` (one slope), else `ReLU` + `Clip(max=0)`·`Scale(slope)` summed (`Add`)",
    "Pow": "`Binary(pow)`",
    "Range": "folded (constant inputs)",
    "RMSNormalization": "`Binary`/`Reduce`/`Bias`/`Unary` + `Scale`",
    "Reciprocal": "`Unary(reciprocal)`",
    "ReduceL1": "`Unary(abs)` + `Reduce(sum)`",
    "ReduceL2": "`Binary(mul)` + `Reduce(sum)` + `Unary(sqrt)`",
    "ReduceMax": "`Reduce(max)`",
    "ReduceMean": "`Reduce(mean)`",
    "ReduceMin": "`Reduce(min)`",
    "ReduceProd": "`Reduce(prod)`",
    "ReduceSum": "`Reduce(sum)`",
    "ReduceSumSquare": "`Binary(mul)` + `Reduce(sum)`",
    "Relu": "`ReLU`",
    "Reshape": "`Reshape` (the target may come from folded `Shape` chains)",
    "Round": "`Unary(round)` (half to even)",
    "Selu": "`Unary(selu)`",
    "Shape": "a constant (static per-sample shape; batch size tracked symbolically)",
    "Sigmoid": "`Unary(sigmoid)`",
    "Sign": "`Unary(sign)`",
    "Sin": "`Unary(sin)`",
    "Size": "a constant",
    "Slice": "`Slice` (constant starts/ends/axes/steps, negative steps too)",
    "Softmax": "`Softmax` (opset < 13: over the flattened trailing axes)",
    "Softplus": "`Unary(softplus)`",
    "Softsign": "`Unary(softsign)`",
    "Split": "one `Slice` per output",
    "Sqrt": "`Unary(sqrt)`",
    "Squeeze": "`Reshape`",
    "Sub": "`Bias(−c)` / `Scale(−1)`+`Bias` (constant), else `Binary(sub)`",
    "Sum": "`Add` (equal shapes), else `Binary(add)` chain",
    "Swish": "`Unary(swish)`",
    "Tanh": "`Unary(tanh)`",
    "ThresholdedRelu": "`Unary(thresholded_relu)`",
    "Tile": "`Concat` of copies",
    "Transpose": "`Transpose`",
    "Unsqueeze": "`Reshape`",
    "Where": "`Where`",
}

HEADER = """# ONNX support

Generated by `docs/gen_onnx_support.py` from the ONNX operator conformance cases in
`../shared/data/onnx/node` (do not edit by hand; `tests/test_onnx_conformance.py` fails when this
page is stale). The front end is `spikec.frontends.onnx.import_onnx(path_or_model, *, batch_axis=None,
constants=None, input_shapes=None)`; `spikec import model.onnx` and `spikec run model.onnx --input X.npy`
use it.

## How a model is imported

1. `onnx.checker.check_model` (a failure is a `FrontendError` naming the file and the checker's
   message), the opset upgrade (below), then `onnx.shape_inference.infer_shapes`.
2. Nodes are lowered in graph order. A node whose inputs are all constants (initializers,
   `Constant` nodes, `Shape`/`Size` of an activation, results of such nodes) is evaluated alone
   in a one-node model of the source's opsets, with `onnx.reference` (so an op folds as its
   opset defines it: an opset-9 `Unsqueeze` reads its `axes` attribute), and becomes a constant:
   the `Shape → Gather → Concat → Reshape` chains of `torch.onnx.export` fold away. Any op can
   fold, supported or not. `GatherElements` folds with spikec's own numpy (`onnx.reference` 1.23
   fails on more than 64 entries along the axis, as in Hugging Face BERT's `token_type_ids`).
3. Every other node goes to the handler registered for its op type (one small function per op,
   `@handler("Relu")`, in `spikec/frontends/onnx/handlers_*.py`). An op without a handler raises
   `FrontendError` naming the op type, the ONNX node and the supported ops. Every SIR node has
   `origin="onnx:<node name or op type>"`.
4. Nodes no output depends on are dropped (an unused graph input with a warning).

**Opsets.** The handlers read default-domain (`ai.onnx`) opsets {MIN} to {MAX}: every supported op
as those opsets define it (the attribute forms of opsets 9–12 and the input forms after them).
A model of an older opset is upgraded to opset {MIN} with `onnx.version_converter`, one opset at a
time with shapes inferred before each step, on the weight-less skeleton of the model (the
converter serialises the model several times; the weights are put back by name), so the upgrade
costs no copy of the weights. A conversion the converter cannot make (e.g. opset-8
`BatchNormalization` with `spatial=0`) is a `FrontendError` naming both opsets. A model of an
opset newer than {MAX} is refused with a `FrontendError` naming its opset and the supported range.

**The batch axis.** SIR shapes are per sample; the run-time batch is added in front. Which axis
of each graph input is the batch axis (`--batch-axis auto`, `batch_axis=None`): its one symbolic
dimension when every input has one (a dynamic-batch export, the batch on any axis), else axis 0
when all inputs agree on its static size — any size: a model exported with a batch of 2 has a
batch of 2 as long as no op mixes its samples; if one does, the import is retried with no batch
axis (the whole tensor is one sample). `--batch-axis N` puts it on axis N of every input,
`--batch-axis none` says there is none. The front end then tracks the batch through the graph
(`spikec/frontends/onnx/layout.py`): a Transpose moves it (`nn.MultiheadAttention` works
sequence-first), a Reshape may merge it with neighbouring axes and split it out again (the
`(batch·heads, L, d)` of SDPA exports, `(L·batch, E)` before an output projection), a broadcast
constant must be the same for every sample (a class token expanded to the batch). An op that
truly mixes samples — a reduction, Softmax, Concat, Slice or Gather along the batch, a reshape
that interleaves samples, a matrix product contracting it — raises `FrontendError` naming the
node and the batch axes taken. With a static batch of 1 nothing can mix: such an op simply runs on
the one sample. With a symbolic batch, `Shape` values are computed for two trial batch sizes, so
`Shape → Gather → Concat → Reshape` chains are resolved in both. An output must hold the batch as
an axis of its own (a warning says so when it is not axis 0: spikec's arrays put it first). Any
other dynamic dimension is an error naming the input and the axis: export with a static shape, or
pass `input_shapes={"x": (-1, 3, 32, 32)}` (`-1`: a symbolic batch). Graph inputs listed in
`constants={"name": array}` become constants (for inputs that are really parameters).

**Values.** The interpreter computes in float64 (float32 on request). Graph inputs may be float,
integer or boolean tensors (integers and booleans are exact as float64); `Cast` to bool is `x ≠ 0`,
to an integer type truncates. Integer **token ids** that look up rows of a constant table (`Gather`
of an embedding: BERT, GPT-2) make that input a `TokenInput`: `spikec run/eval/compile` take the
int64 ids, the lookup runs on the host as the input encoder (the import summary and reports say
so), and ids outside the table are an `InputError` naming the input and the range. Weights,
biases, normalisation statistics, shapes, axes, indices and pads must be constants. Zero-size
tensors are refused.

## Ops

"""

CONFORMANCE = """
## Conformance

Each case is `model.onnx` with stored inputs and outputs. The cases feed every operand as a graph
input (weights and shapes too), so the walk (`spikec/frontends/onnx/conformance.py`) imports each
case up to five times and keeps the first import that does not raise `FrontendError`: (1) all
inputs live; (2) non-float inputs and inputs holding ±inf bound as constants; (3) all inputs but
the first bound; (3) again with `batch_axis=True`, then `False`. An imported case is evaluated
once (numpy, float64) and must match every stored output to rtol 1e-4, atol 1e-5 (2e-3 for
float16 outputs; atol 1e-4 for `test_averagepool_2d_ceil_last_window_starts_on_pad`, whose stored
output is rounded to 4 decimals — onnxruntime and `onnx.reference` agree with spikec to 1e-7).
A case that does not import is unsupported, with the reason of import (1)–(3).

The cases here include none of `LRN`, `PRelu` or the reflect/edge/wrap modes of `Pad`: ONNX's
own cases of those ops (`test_lrn`, `test_lrn_default`, `test_prelu_example`,
`test_prelu_broadcast`, `test_*_pad`), generated from the installed `onnx` package, run through
the same walk in `tests/test_onnx_classic_ops.py` (all pass; the int32 reflect/edge/wrap cases
are unsupported as integer inputs and pass on float data).

"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(results: list) -> str:
    """The whole page for a list of ``conformance.CaseResult``."""
    from spikec.frontends.onnx import supported_ops
    from spikec.frontends.onnx.opsets import MAX_OPSET, MIN_OPSET

    ops = supported_ops()
    missing = sorted(set(ops) - set(LOWERING))
    if missing:
        raise SystemExit(f"docs/gen_onnx_support.py: no LOWERING line for {missing}")
    header = HEADER.replace("{MIN}", str(MIN_OPSET)).replace("{MAX}", str(MAX_OPSET))
    lines = [header, f"{len(ops)} op types have handlers:\n", "| ONNX op | SIR |", "|---|---|"]
    lines += [f"| {op} | {LOWERING[op]} |" for op in ops]
    passed = [r for r in results if r.status == "pass"]
    unsupported = [r for r in results if r.status == "unsupported"]
    other = [r for r in results if r.status not in ("pass", "unsupported")]
    lines.append(CONFORMANCE)
    lines.append(
        f"**{len(passed)} supported (all pass), {len(unsupported)} unsupported, {len(results)} cases**"
        + (f"; {len(other)} FAILING" if other else "")
        + ".\n"
    )
    per_op: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for r in results:
        for op in r.ops:
            per_op[op][r.status] += 1
    lines += ["### By op\n", "| op | cases | supported | unsupported |", "|---|---|---|---|"]
    for op in sorted(per_op):
        c = per_op[op]
        lines.append(f"| {op} | {sum(c.values())} | {c['pass']} | {sum(c.values()) - c['pass']} |")
    lines += [
        "",
        "### By case\n",
        "| case | ops | result | inputs bound / batch_axis | reason |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        how = ", ".join(r.bound) if r.bound else "–"
        if r.batch_axis is not None:
            how += f"; batch_axis={r.batch_axis}"
        status = {"pass": "supported", "unsupported": "unsupported"}.get(r.status, r.status.upper())
        reason = _cell(r.reason.split("; supported ops:")[0]) if r.status != "pass" else ""
        lines.append(f"| {r.name} | {', '.join(r.ops)} | {status} | {how if r.status == 'pass' else ''} | {reason} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO))
    from spikec.frontends.onnx.conformance import run_all

    text = render(run_all(CASES))
    if "--check" in argv:
        if PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE} is stale: run .venv/bin/python docs/gen_onnx_support.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
