"""``spikec timesteps MODEL --calib X.npy [--data X.npy --labels Y.npy]``: how many time steps the converted SNN needs.

The ANN is converted as ``spikec eval`` converts it (rate coding, spikec's defaults); each spiking layer's effective
dimension on the calibration samples gives its T by the published rule, beside the rate-coding bound at that T
(``spikec.timesteps``, docs/timesteps.md). With ``--data``/``--labels`` the SNN runs once to the largest T and its
accuracy after 1, 2, 4, … steps (and at the predicted T) is shown beside the ANN's, with ``spikec eval``'s code
(``spikec.compare``): prediction and measurement side by side. ``--report DIR`` records them in the report of an
artifact ``spikec compile`` wrote from the same model and calibration (converted with the settings that report
records: ``spikec.report.advice``) and draws its report.html again.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from spikec.cli_args import add_model_args, model_options, model_suffixes
from spikec.errors import InputError

TOLERANCE_PP = 1.0  # the measured T: the first whose SNN accuracy is within this many points of the ANN's


def add_timesteps_args(p: argparse.ArgumentParser) -> None:
    add_model_args(p, f"the model ({model_suffixes()}): an ANN to convert")
    p.add_argument("--calib", metavar="X.npy", help="calibration samples (N, *input shape) (required)")
    p.add_argument("--data", metavar="X.npy", help="samples (N, *input shape) to measure accuracy against T on")
    p.add_argument("--labels", metavar="Y.npy", help="class indices (N,) of --data")
    p.add_argument(
        "--max-timesteps", type=int, metavar="T",
        help="with --data: the longest run measured (default: the power of two at or above twice the advice, >= 8)",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--report", metavar="DIR",
        help="with --data: record advice and accuracy against T in DIR/report.json (an artifact spikec compile wrote "
        "from this model and --calib) and draw DIR/report.html again",
    )  # fmt: skip


def _inputs(args: argparse.Namespace) -> None:
    """The usage mistakes caught before any file is read (each an ``InputError``)."""
    if args.calib is None:
        raise InputError(
            "spikec timesteps estimates each layer's effective dimension from calibration activations: pass "
            "--calib X.npy (samples (N, *input shape))"
        )
    if args.labels is not None and args.data is None:
        raise InputError("--labels given without --data: pass the samples they label as --data X.npy")
    if args.data is not None and args.labels is None:
        raise InputError("--data given without --labels: pass their class indices as --labels Y.npy")
    if args.max_timesteps is not None and args.max_timesteps < 1:
        raise InputError(f"--max-timesteps must be >= 1, got {args.max_timesteps}")
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.report is not None and args.data is None:
        raise InputError(
            "--report records the accuracy measured against T: pass --data X.npy --labels Y.npy (the compile already "
            "wrote the advice alone into its report)"
        )


def timesteps_command(args: argparse.Namespace) -> dict[str, Any]:
    from spikec.arrays import load_array
    from spikec.cli_compile import stderr_progress
    from spikec.coding import as_samples
    from spikec.compare import check_labels, class_count, compare
    from spikec.compiler import load_source
    from spikec.methods import METHODS, ConversionOptions
    from spikec.report import advice as advice_report
    from spikec.timesteps import advise, default_max_timesteps, measured_timesteps

    _inputs(args)
    into = None if args.report is None else advice_report.open_report(Path(args.report))
    calib_array = load_array(args.calib, "--calib")
    data = None if args.data is None else load_array(args.data, "--data")
    labels = None if args.labels is None else load_array(args.labels, "--labels")
    graph = load_source(args.model, model_options(args))
    if graph.is_spiking:
        kinds = sorted({node.kind for node in graph.nodes.values() if node.stateful}) or ["a recurrent edge"]
        raise InputError(
            f"{args.model} is already spiking ({', '.join(kinds)}): spikec timesteps advises on an ANN to convert; "
            f"give the ReLU network it was made from"
        )
    calib = as_samples(graph, calib_array, f"--calib {args.calib}")
    if data is not None:
        x = as_samples(graph, data, f"--data {args.data}")
        y = check_labels(labels, x.shape[0], f"--labels {args.labels}", classes=class_count(graph))
    progress = None if args.json else stderr_progress()
    if into is None:
        method = METHODS["percentile"]
        options = ConversionOptions(timesteps=1, batch_size=args.batch_size, progress=progress)
    else:  # convert as the compile that wrote the report did
        method = into.method
        options = into.conversion_options(batch_size=args.batch_size, progress=progress)
    snn, conversion = method.convert(graph, calib, options, rates=False)
    if into is not None:
        into.check_layers(conversion, str(args.model))
    if not conversion.layers:
        raise InputError(
            f"{args.model}: no layer becomes spiking neurons when converted (rate coding turns each ReLU or clipped "
            f"ReLU into integrate-and-fire neurons, and this model has none): timestep advice needs at least one"
        )
    advice = advise(conversion.ann, conversion.layers, calib, init=conversion.init, batch_size=args.batch_size)
    result: dict[str, Any] = {
        "model": str(args.model),
        "calibration": {"samples": int(calib.shape[0]), "source": str(args.calib)},
        **advice.to_dict(),
    }
    if data is not None:
        longest = args.max_timesteps or default_max_timesteps(advice.timesteps)
        # with spikec's default reset by subtraction and threshold 1 the SNN is the same for every T: one run
        measured = compare(
            graph, snn, dataclasses.replace(conversion, timesteps=longest), x, y, backend=options.backend,
            batch_size=args.batch_size, progress=progress, at=[advice.timesteps],
        )  # fmt: skip
        result["measured"] = {
            "samples": measured.samples,
            "source": str(args.data),
            "ann_accuracy": measured.ann_accuracy,
            "max_timesteps": longest,
            "by_timesteps": {str(t): a for t, a in measured.by_timesteps.items()},
            "predicted_timesteps": advice.timesteps,
            "accuracy_at_predicted": measured.by_timesteps.get(advice.timesteps),
            "tolerance_pp": TOLERANCE_PP,
            "timesteps_within_tolerance": measured_timesteps(
                measured.ann_accuracy, measured.by_timesteps, TOLERANCE_PP
            ),
        }
    if into is not None:
        into.record(advice_report.section(advice, source=str(args.calib), compiled_timesteps=into.steps,
                                          measured=result["measured"]))  # fmt: skip
        result["report"] = str(into.path)
    return result


def print_timesteps(r: dict[str, Any]) -> None:
    rule = r["rule"]
    print(
        f"timestep advice for {r['model']} ({r['calibration']['samples']} calibration samples): "
        f"T = round({rule['C']} log10 d_eff) per layer ({rule['source']}; C in {rule['C_interval']})"
    )
    print(f"  {'layer':<16} {'features':>8} {'d_eff':>8} {'T':>3} {'T (C CI)':>9} {'threshold':>10} "
          f"{'bound':>10}  (bound: |rate·θ - mean input| <= θ·max(f, 1-f)/T, f = {r['bound']['init']:g})")  # fmt: skip
    for layer in r["layers"]:
        low, high = layer["timesteps_interval"]
        print(
            f"  {layer['name']:<16} {layer['features']:>8} {layer['effective_dimension']:>8.2f} "
            f"{layer['timesteps']:>3} {f'{low}-{high}':>9} {layer['threshold']:>10.4g} {layer['bound']:>10.4g}"
        )
    print(f"  model: T = {r['timesteps']} (the largest layer's: {r['limiting_layer']})")
    m = r.get("measured")
    if m is None:
        return
    steps = "  ".join(f"T={t}: {100 * a:.2f}%" for t, a in m["by_timesteps"].items())
    print(f"  measured on {m['samples']} samples: ANN {100 * m['ann_accuracy']:.2f}%, SNN [{steps}]")
    found = m["timesteps_within_tolerance"]
    shown = f"T = {found}" if found is not None else f"none up to T = {m['max_timesteps']}"
    print(
        f"  predicted T = {m['predicted_timesteps']} ({100 * m['accuracy_at_predicted']:.2f}%); measured: first T "
        f"within {m['tolerance_pp']:g} pp of the ANN: {shown}"
    )
    if "report" in r:
        print(f"  recorded in {r['report']} (timestep_advice); report.html beside it drawn again")
