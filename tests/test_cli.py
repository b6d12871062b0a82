"""The CLI contract: commands, --json, exit codes (0 ok, 1 user error, 2 usage), atomic outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikec import __version__
from spikec.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture()
def lif_input(data_dir: Path, tmp_path: Path) -> Path:
    x = np.loadtxt(data_dir / "nir" / "lif" / "lif_exact.csv", delimiter=",")[:, 0]
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


def test_python_m_spikec_and_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "spikec", "--version"], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == f"spikec {__version__}"


def test_a_reader_that_closes_the_pipe_gets_no_traceback() -> None:
    """``spikec passes | head -1``: the pipe is closed before spikec writes; it exits as it would have, quietly."""
    for argv in (["passes"], ["passes", "--json"]):
        proc = subprocess.Popen([sys.executable, "-m", "spikec", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait() == 0 and err == "", err


def test_targets_lists_interp_via_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_cli(capsys, "targets")
    assert code == 0
    rows = {r["name"]: r for r in report["targets"]}
    assert rows["interp"]["entry_point"] == "spikec.targets.interp:InterpTarget"
    assert "LIF" in rows["interp"]["node_kinds"]


def test_passes_lists_registered_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_cli(capsys, "passes")
    assert code == 0
    assert "inline-subgraphs" in {p["name"] for p in report["passes"]}


def test_import_writes_sir_that_runs_like_the_nir(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cnn.sir"
    code, report = run_cli(capsys, "import", str(data_dir / "nir" / "cnn" / "cnn_sinabs.nir"), "-o", str(out))
    assert code == 0, report
    assert report["kinds"]["IF"] == 5 and report["inputs"] == {"input": [2, 34, 34]}
    assert out.exists()
    x = (np.random.default_rng(0).uniform(size=(8, 1, 2, 34, 34)) < 0.3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for model, npz in ((out, "a.npz"), (data_dir / "nir" / "cnn" / "cnn_sinabs.nir", "b.npz")):
        code, _ = run_cli(capsys, "run", str(model), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / npz))
        assert code == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        np.testing.assert_array_equal(a["output"], b["output"])


def test_import_to_nir_round_trip(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(
        capsys, "import", str(data_dir / "nir" / "lif" / "lif_norse.nir"), "-o", str(tmp_path / "lif.nir")
    )
    assert code == 0
    code, report = run_cli(capsys, "import", str(tmp_path / "lif.nir"), "-o", str(tmp_path / "lif.sir"))
    assert code == 0 and report["kinds"] == {"Dense": 1, "LIF": 1, "Input": 1, "Output": 1}


def test_run_trace_and_torch_backend_agree(
    data_dir: Path, lif_input: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(data_dir / "nir" / "lif" / "lif_norse.nir")
    results = {}
    for backend in ("numpy", "torch"):
        code, report = run_cli(
            capsys,
            "run",
            model,
            "--input",
            str(lif_input),
            "--trace",
            "--backend",
            backend,
            "-o",
            str(tmp_path / f"{backend}.npz"),
        )
        assert code == 0
        assert report["backend"] == backend and report["outputs"]["output"]["spike_steps"] == [460, 510, 710, 760]
        assert "1.v" in report["traces"]
        results[backend] = np.load(tmp_path / f"{backend}.npz")
    np.testing.assert_allclose(results["numpy"]["trace/1.v"], results["torch"]["trace/1.v"], rtol=1e-6)


def test_run_pads_steps_and_says_so(data_dir: Path, lif_input: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = run_cli(
        capsys, "run", str(data_dir / "nir" / "lif" / "lif_norse.nir"), "--input", str(lif_input), "--steps", "1200"
    )
    assert code == 0 and report["steps"] == 1200
    assert any("padded" in n for n in report["notes"])


# -- bad input: exit 1, a message naming the file and node, nothing written --------------------------
def test_truncated_nir(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "trunc.nir"
    bad.write_bytes((data_dir / "nir" / "cnn" / "cnn_sinabs.nir").read_bytes()[:5000])
    code, report = run_cli(capsys, "import", str(bad), "-o", str(tmp_path / "o.sir"))
    assert code == 1 and "trunc.nir" in report["error"] and report["error_type"] == "FileError"
    assert not (tmp_path / "o.sir").exists()


def test_not_hdf5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "text.nir"
    bad.write_text("hello")
    code, report = run_cli(capsys, "import", str(bad))
    assert code == 1 and "text.nir" in report["error"] and "HDF5" in report["error"]


def test_sir_syntax_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.sir"
    bad.write_text("sir 1\ngraph dt=0.0001 {\n  %a = Input(shape=[2]\n}\n")
    code = main(["run", str(bad), "--input", "x.npy"])
    err = capsys.readouterr().err
    assert code == 1
    assert "bad.sir:4:1:" in err and "expected one of: ')', ','" in err and "\n    ^" in err


def test_edge_with_mismatched_shapes_in_sir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spikec.ir import Dense, Graph, Input, Output
    from spikec.text import to_text

    good = Graph(
        {"i": Input(shape=(3,)), "fc": Dense(weight=np.ones((2, 3))), "o": Output()}, [("i", "fc"), ("fc", "o")]
    )
    text = to_text(good).replace("Input(shape=[3])", "Input(shape=[4])")
    assert "shape=[4]" in text
    (tmp_path / "m.sir").write_text(text)
    code, report = run_cli(capsys, "import", str(tmp_path / "m.sir"), "-o", str(tmp_path / "o.sir"))
    assert code == 1
    assert "'fc' (Dense)" in report["error"] and "'i'" in report["error"]
    assert not (tmp_path / "o.sir").exists()


def test_nan_weights_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import nir

    w = np.ones((2, 2), np.float32)
    w[1, 1] = np.nan
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([2])),
            "fc": nir.Linear(weight=w),
            "output": nir.Output(output_type=np.array([2])),
        },
        edges=[("input", "fc"), ("fc", "output")],
    )
    nir.write(tmp_path / "nan.nir", g)
    code, report = run_cli(capsys, "import", str(tmp_path / "nan.nir"))
    assert code == 1 and "'fc' (Dense)" in report["error"] and "NaN" in report["error"]


def test_wrong_input_shape_for_run(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.zeros((5, 1, 3, 34, 34)))
    code, report = run_cli(
        capsys,
        "run",
        str(data_dir / "nir" / "cnn" / "cnn_sinabs.nir"),
        "--input",
        str(tmp_path / "x.npy"),
        "-o",
        str(tmp_path / "o.npz"),
    )
    assert code == 1 and report["error_type"] == "InputError"
    assert "input 'input'" in report["error"] and "(2, 34, 34)" in report["error"]
    assert not (tmp_path / "o.npz").exists()


def test_pickled_input_is_refused(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, report = run_cli(
        capsys, "run", str(data_dir / "nir" / "lif" / "lif_norse.nir"), "--input", str(tmp_path / "obj.npy")
    )
    assert code == 1 and "obj.npy" in report["error"]


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert "the following arguments are required: model, --input" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_unknown_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.xyz").write_text("")
    code, report = run_cli(capsys, "import", str(tmp_path / "m.xyz"))
    assert code == 1 and ".nir" in report["error"] and ".sir" in report["error"]


def test_opt_runs_passes_and_rejects_unknown_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spikec.ir import LIF, Dense, Edge, Graph, Input, Output, Subgraph
    from spikec.models import load_model, save_model

    inner = Graph({"i": Input(shape=(2,)), "l": LIF(tau=np.ones(1)), "o": Output()}, [("i", "l"), ("l", "o")])
    g = Graph(
        {"in": Input(shape=(2,)), "s": Subgraph(graph=inner), "w": Dense(weight=np.eye(2)), "o": Output()},
        [("in", "s"), ("s", "o"), ("s", "w"), Edge("w", "s", recurrent=True)],
    )
    save_model(g, tmp_path / "m.sir")
    code, report = run_cli(
        capsys, "opt", str(tmp_path / "m.sir"), "-p", "inline-subgraphs", "-o", str(tmp_path / "f.sir")
    )
    assert code == 0, report
    flat = load_model(tmp_path / "f.sir")
    assert "s.l" in flat.nodes and Edge("w", "s.l", recurrent=True) in flat.edges
    code, report = run_cli(capsys, "opt", str(tmp_path / "m.sir"), "-p", "no-such-pass", "-o", str(tmp_path / "x.sir"))
    assert code == 1 and "inline-subgraphs" in report["error"]
    assert not (tmp_path / "x.sir").exists()


def test_run_evaluates_an_ann_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from spikec.ir import Dense, Graph, Input, Output, ReLU
    from spikec.models import save_model

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(5, 4)), rng.normal(size=(3, 5))
    g = Graph(
        {"x": Input(shape=(4,)), "a": Dense(weight=w1), "r": ReLU(), "b": Dense(weight=w2), "y": Output()},
        [("x", "a"), ("a", "r"), ("r", "b"), ("b", "y")],
    )
    save_model(g, tmp_path / "ann.sir")
    x = rng.normal(size=(7, 4))
    np.save(tmp_path / "x.npy", x)
    code, report = run_cli(
        capsys, "run", str(tmp_path / "ann.sir"), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npz")
    )
    assert code == 0 and report["mode"] == "ann"
    want = np.maximum(x @ w1.T, 0) @ w2.T
    np.testing.assert_allclose(np.load(tmp_path / "y.npz")["y"], want, rtol=1e-12)
    assert report["outputs"]["y"]["argmax"] == want.argmax(1).tolist()
    code, report = run_cli(capsys, "run", str(tmp_path / "ann.sir"), "--input", str(tmp_path / "x.npy"), "--steps", "4")
    assert code == 1 and "evaluated once" in report["error"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], "the following arguments are required: model, --input"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "m.sir", "--input", "x.npy", "--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
        (["import", "m.sir", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_with_json_print_one_json_object(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 2 and report["ok"] is False and report["error_type"] == "UsageError"
    assert expected in report["error"] and report["usage"].startswith("usage: spikec")
    assert report["command"] == (argv[0] if argv and argv[0] in ("run", "import") else None)
    assert captured.err == ""


@pytest.mark.parametrize("flag", ["--js", "--jso"])
def test_json_abbreviated_as_argparse_allows_still_gives_json_on_a_usage_error(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "m.sir", "--input", "x.npy", "--steps", "abc", flag]) == 2
    assert json.loads(capsys.readouterr().out)["error_type"] == "UsageError"


def test_an_unexpected_exception_is_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug (here a command that indexes a missing key) exits 3 with one line asking for a report; the
    traceback only with --debug."""
    import spikec.cli as cli

    def buggy(args: object) -> dict:
        return {}["missing"]  # type: ignore[no-any-return]

    monkeypatch.setitem(cli.COMMANDS, "targets", buggy)
    assert main(["targets"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error in spikec" in err and "KeyError: 'missing'" in err
    assert "please report" in err and "--debug" in err and "Traceback" not in err
    code, report = run_cli(capsys, "targets")
    assert code == 3 and report["ok"] is False and report["error_type"] == "InternalError"
    assert main(["targets", "--debug"]) == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "internal error in spikec" in err
