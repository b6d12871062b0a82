"""The template vendor target (examples/vendor_target) installed as a real distribution beside spikec (issue 12).

A fresh virtual environment sees this test environment's packages through a ``.pth`` line, and pip (offline:
``--no-deps --no-build-isolation --no-index``) installs into it spikec (editable, which gives the environment
its own ``spikec`` script), the template ``spikec-acme`` and the small plugin distributions of tests/plugins/.
Everything then runs as a user would type it, with that environment's ``spikec``: ``targets``, ``compile``
of a torch MLP exported to ONNX (converted with ``--calib``) and of an SNN, ``verify`` (the chip's own
simulator vs the interpreter, 0 mismatches), and the bad-input cases of issue 12. The template's own tests
(examples/vendor_target/tests) run in the same environment.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest
import torch

from spikec.artifact import record_hashes
from spikec.ir import IF, Dense, Graph, I, Input, Output
from spikec.text import save_sir

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "vendor_target"
PLUGINS = Path(__file__).resolve().parent / "plugins"
STEPS = 32


@dataclasses.dataclass(frozen=True)
class Env:
    """A virtual environment with spikec and some plugin distributions installed; ``src`` holds their copies."""

    root: Path
    src: Path

    def run(self, program: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        argv = [str(self.root / "bin" / program), *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=environ, timeout=300)

    def spikec(self, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run("spikec", *args, cwd=cwd)


def make_env(where: Path, *dists: Path) -> Env:
    """A venv at ``where`` seeing this environment's site-packages, with spikec and ``dists`` pip-installed.
    The distributions are built from copies, so nothing is written into the repository."""
    root, src = where / "venv", where / "src"
    venv.EnvBuilder(with_pip=False).create(root)
    purelib = Path(sysconfig.get_path("purelib", scheme="venv", vars={"base": str(root), "platbase": str(root)}))
    (purelib / "_spikec_test_env.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")
    copies = [shutil.copytree(d, src / d.name, ignore=skip) for d in dists]
    pip = [sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install", "--quiet", "--no-deps"]
    pip += ["--no-build-isolation", "--no-index", "--no-compile", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "-e", str(REPO), *map(str, copies)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return Env(root, src)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    plugins = [PLUGINS / name for name in ("broken_chip", "nosdk_chip", "dupkind_chip", "dupflag_chip")]
    return make_env(tmp_path_factory.mktemp("acme-env"), TEMPLATE, *plugins)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch MLP exported by torch.onnx (random weights), binary calibration images and sample inputs
    (T, N, 1, 8, 8), and a small float SNN as .sir."""
    path = tmp_path_factory.mktemp("acme-work")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 300), torch.nn.ReLU(), torch.nn.Linear(300, 10))
    torch.onnx.export(net.eval(), (torch.zeros(1, 1, 8, 8),), str(path / "mlp.onnx"), dynamo=True, verbose=False)
    rng = np.random.default_rng(0)
    np.save(path / "calib.npy", (rng.random((256, 1, 8, 8)) < 0.3).astype(np.float32))
    samples = (rng.random((32, 1, 8, 8)) < 0.3).astype(np.float32)
    np.save(path / "samples.npy", samples)
    np.save(path / "inputs.npy", np.repeat(samples[None], STEPS, axis=0))
    with torch.no_grad():
        np.save(path / "ann.npy", net(torch.from_numpy(samples)).numpy())
    nodes = {
        "x": Input(shape=(20,)),
        "fc1": Dense(weight=rng.normal(0, 0.4, (30, 20))),
        "n1": IF(reset="subtract", v_init=np.asarray(0.5)),
        "fc2": Dense(weight=rng.normal(0, 0.3, (5, 30))),
        "readout": I(),
        "y": Output(),
    }
    save_sir(Graph(nodes, list(itertools.pairwise(nodes))), path / "snn.sir")
    return path


@pytest.fixture(scope="module")
def artifact(env: Env, work: Path) -> Path:
    """``spikec compile mlp.onnx --target acme1 --calib ... --inputs ...``: the converted ANN on ACME-1."""
    args = ["--target", "acme1", "--calib", "calib.npy", "--timesteps", str(STEPS), "--inputs", "inputs.npy"]
    done = env.spikec("compile", "mlp.onnx", *args, "-o", "art", cwd=work)
    assert done.returncode == 0, done.stderr
    return work / "art"


def test_spikec_targets_lists_the_template(env: Env, work: Path) -> None:
    """acme1 is listed; plugins that cannot load are listed with their error, and the command still succeeds."""
    done = env.spikec("targets", "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)["targets"]}
    assert {"acme1", "interp", "loihi2", "broken", "nosdk", "dupkind"} <= set(rows)
    assert rows["acme1"]["entry_point"] == "acme_spikec:Acme1Target"
    assert rows["acme1"]["node_kinds"] == ["AcmeDense", "AcmeLIF", "Flatten", "Input", "Output"]
    assert "spikec-broken-chip 0.1.0" in rows["broken"]["error"]
    assert "No module named 'broken_chip_vendor_sdk'" in rows["broken"]["error"]
    assert "error" not in rows["nosdk"]  # its SDK is needed only to emit
    assert "spikec.ir.snn.LIF" in rows["dupkind"]["error"]
    assert "dupkind_chip.dialect.ChipNeuron" in rows["dupkind"]["error"]


def test_a_targets_own_pass_is_listed_and_runs(env: Env, work: Path) -> None:
    """``Target.passes``: the chip's quantizer as a pass of its own, found through the entry point."""
    done = env.spikec("passes", "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)["passes"]}
    assert rows["acme1-quantize"]["owner"] == "target 'acme1'" and "timesteps" in rows["acme1-quantize"]["options"]
    done = env.spikec("opt", "snn.sir", "-p", "acme1-quantize{timesteps=16}", "-o", "q.sir", "--json", cwd=work)
    assert done.returncode == 0, done.stderr
    kinds = {line.split(" = ")[1].split("(")[0] for line in (work / "q.sir").read_text().splitlines() if " = " in line}
    assert {"AcmeDense", "AcmeLIF"} <= kinds


def test_converted_ann_compiles_places_and_verifies(env: Env, work: Path, artifact: Path) -> None:
    config = json.loads((artifact / "acme1.json").read_text())
    assert config["format"] == "acme1.config/1"
    hidden, readout = config["groups"]
    assert (hidden["size"], hidden["readout"], readout["size"], readout["readout"]) == (300, False, 10, True)
    assert len(hidden["cores"]) >= 2  # 300 neurons; a core holds 256
    report = json.loads((artifact / "report.json").read_text())
    assert report["target"] == "acme1" and report["artifact"]["cores_used"] >= 2

    done = env.spikec("verify", "art", cwd=work)
    assert done.returncode == 0, done.stderr
    summary = f"32 samples x {STEPS} steps, {32 * STEPS * 10} values compared: 0 mismatches, agreement 100.0%"
    assert summary in done.stdout
    done = env.spikec("verify", "art", "--layers", "--json", cwd=work)
    result = json.loads(done.stdout)
    assert done.returncode == 0 and result["mismatches"] == 0 and result["layers_compared"]
    groups = [hidden["name"], readout["name"]]
    assert set(result["values"]) >= {*groups, *(f"{g}.v" for g in groups)}
    assert result["compared"] == 32 * STEPS * (10 + 2 * (300 + 10))

    # the chip's configuration alone (python -m acme_sim, no spikec) answers what the torch ANN answers
    ran = env.run("python", "-m", "acme_sim", "art", "--inputs", "art/inputs.npz", "--out", "chip.npz", cwd=work)
    assert ran.returncode == 0, ran.stderr
    with np.load(work / "chip.npz") as out:
        chip = out[config["outputs"][0]["name"]][-1]
    ann = np.load(work / "ann.npy")
    assert np.corrcoef(chip.ravel(), ann.ravel())[0, 1] > 0.99
    assert np.mean(chip.argmax(axis=1) == ann.argmax(axis=1)) >= 0.9


def test_an_edited_configuration_is_caught(env: Env, work: Path, artifact: Path) -> None:
    """A file changed after compile is refused by its sha256 (report.json); with the record edited to match,
    the simulator runs the configuration files, not the graph: a changed weight is a mismatch (exit 1)."""
    edited = work / "edited"
    shutil.copytree(artifact, edited)
    weight_file = edited / json.loads((edited / "acme1.json").read_text())["groups"][1]["synapses"][0]["weight"]
    weight = np.load(weight_file)
    weight[3] = -weight[3]
    np.save(weight_file, weight)
    done = env.spikec("verify", "edited", cwd=work)
    assert done.returncode == 1 and "g1.s0.weight.npy: changed since spikec compile wrote it" in done.stderr
    record_hashes(edited)
    done = env.spikec("verify", "edited", cwd=work)
    assert done.returncode == 1
    assert "mismatches" in done.stderr and "differing" in done.stderr and "Traceback" not in done.stderr

    threshold_file = edited / "arrays" / "g0.threshold.npy"
    np.save(threshold_file, np.zeros_like(np.load(threshold_file)))
    record_hashes(edited)
    done = env.spikec("verify", "edited", cwd=work)
    assert done.returncode == 1 and "ACME-1 refuses the configuration" in done.stderr
    assert "field 'threshold' holds [0, 0], outside 1..8388607" in done.stderr


def test_an_snn_compiles_runs_in_fixed_point_and_verifies(env: Env, work: Path) -> None:
    done = env.spikec("compile", "snn.sir", "--target", "acme1", "--timesteps", "16", "-o", "snn_art", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "pass quantize{target=acme1}: ran" in done.stdout and "pass partition{target=acme1}: ran" in done.stdout
    done = env.spikec("verify", "snn_art", "--samples", "3", "--layers", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "3 samples x 16 steps" in done.stdout and "0 mismatches" in done.stdout
    np.save(work / "spikes.npy", (np.random.default_rng(2).random((16, 20)) < 0.3).astype(np.float64))
    done = env.spikec("run", "snn_art/model.sir", "--fixed", "acme1", "--input", "spikes.npy", "--json", cwd=work)
    assert done.returncode == 0, done.stderr


# -- bad input (issue 12) -------------------------------------------------------------------------------
def _refused(env: Env, work: Path, target: str) -> str:
    """``spikec compile snn.sir --target TARGET``: exit 1, one error line, no traceback, no output directory."""
    out = work / f"out_{target}"
    done = env.spikec("compile", "snn.sir", "--target", target, "--timesteps", "4", "-o", out, cwd=work)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert not out.exists()
    return done.stderr


def test_broken_entry_point_names_its_distribution_and_import_error(env: Env, work: Path) -> None:
    assert _refused(env, work, "broken") == (
        "error: target 'broken' from broken_chip:BrokenTarget (distribution spikec-broken-chip 0.1.0) failed to "
        "load: ModuleNotFoundError: No module named 'broken_chip_vendor_sdk'\n"
    )


def test_missing_sdk_says_how_to_install_it(env: Env, work: Path) -> None:
    assert _refused(env, work, "nosdk") == (
        "error: target 'nosdk' needs nosdk_vendor_sdk, which cannot be imported here (No module named "
        "'nosdk_vendor_sdk'): pip install nosdk-vendor-sdk==2.1 --index-url https://pypi.nosdk.example\n"
    )


def test_plugin_redefining_a_node_kind_names_both(env: Env, work: Path) -> None:
    error = _refused(env, work, "dupkind")
    assert error.startswith(
        "error: target 'dupkind' from dupkind_chip:DupKindTarget (distribution spikec-dupkind-chip 0.1.0): its "
        "dialect dupkind_chip.dialect failed to load: TypeError: node kind 'LIF' registered twice: "
        "<class 'spikec.ir.snn.LIF'> and <class 'dupkind_chip.dialect.ChipNeuron'>"
    )


def test_a_compile_flag_two_targets_declare_is_refused_naming_both(env: Env, work: Path) -> None:
    """The template's ``--acme-weight-bits`` (``Target.compile_flags``), declared by ``dupflag`` as well: the
    command line still parses, its help names both, and using the flag is a usage error naming both."""
    done = env.spikec("compile", "--help", cwd=work)
    assert done.returncode == 0, done.stderr
    assert "declared by targets 'acme1' and 'dupflag'" in " ".join(done.stdout.split())
    out = work / "out_dupflag"
    args = ["--target", "acme1", "--timesteps", "4", "--acme-weight-bits", "4", "-o", out]
    done = env.spikec("compile", "snn.sir", *args, cwd=work)
    assert done.returncode == 2 and not out.exists(), done.stderr
    assert done.stderr == (
        "error: --acme-weight-bits is declared by targets 'acme1' and 'dupflag', so it cannot say which it is for: "
        "uninstall one of their packages, or give the option it stands for (for 'acme1': --pass-option "
        "quantize.weight_bits=4; for 'dupflag': --pass-option quantize.weight_bits=4)\n"
    )
    done = env.spikec("compile", "snn.sir", *args[:4], "--pass-option", "quantize.weight_bits=4", "-o", out, cwd=work)
    assert done.returncode == 0, done.stderr  # the option itself is unambiguous


def test_two_distributions_claiming_one_target_name(tmp_path: Path) -> None:
    clash = make_env(tmp_path, TEMPLATE, PLUGINS / "acme_clone")
    done = clash.spikec("targets", cwd=tmp_path)
    assert done.returncode == 1
    assert "target name 'acme1' is claimed twice" in done.stderr
    assert "acme_spikec:Acme1Target (distribution spikec-acme 0.1.0)" in done.stderr
    assert "acme_clone:CloneTarget (distribution spikec-acme-clone 0.2.0)" in done.stderr


def test_the_templates_own_tests_pass(env: Env) -> None:
    done = env.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=env.src / TEMPLATE.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout
