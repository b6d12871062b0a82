"""Coverage-guided fuzzing of spikec's readers with atheris (libFuzzer), from the campaign's seed files.

    .venv/bin/pip install atheris          # a wheel for CPython 3.11 on x86-64 Linux; not in the test install
    .venv/bin/python benchmarks/fuzz/atheris_readers.py --seconds 120 --out benchmarks/fuzz/atheris.json
    .venv/bin/python benchmarks/fuzz/atheris_readers.py --targets sir,npy --seconds 30

Each target writes the fuzzer's bytes to a file of its format and reads it as the command a user types
does (``tests/fuzz/seeds.py``); spikec and lark are instrumented for coverage. HDF5 files are walked in
the fuzzing process, not in the child process spikec uses, so that libFuzzer sees the walk's coverage: a
libhdf5 loop then shows as a libFuzzer timeout (spikec itself kills its child and refuses the file). A
``SpikecError`` is the expected refusal. Any other exception is a finding: its type, message and input are saved under
``--work`` and the run goes on; a crash, a timeout (``-timeout``, 20 s) or memory over ``-rss_limit_mb``
stops libFuzzer, which saves the input, and the driver starts it again for the rest of the time. The
memory budget is set to 1 GB (``SPIKEC_MEMORY_LIMIT``) so that what spikec allows stays under libFuzzer's
4 GB limit. The counts (runs, coverage, findings) go to ``--out``; docs/security.md records them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

SUFFIX = {
    "sir": ".sir",
    "npy": ".npy",
    "npz": ".npz",
    "nir": ".nir",
    "netx": ".net",
    "onnx": ".onnx",
    "report": ".json",
    "pt": ".pt",
}
SEED_FORMAT = {
    "sir": "sir",
    "npy": "npy",
    "npz": "npz",
    "nir": "nir",
    "netx": "netx",
    "onnx": "onnx",
    "report": "report",
    "pt": "pt",
}
MAX_LEN = 300_000


def fuzz_one(target: str, work: Path, argv: list[str]) -> None:
    """Inside the libFuzzer process: instrument, then fuzz ``target`` with ``argv`` (libFuzzer's options)."""
    import atheris

    with atheris.instrument_imports(include=["spikec", "lark"]):
        import spikec.arrays
        import spikec.cli_verify
        import spikec.models
        import spikec.text.parser
        from spikec.errors import SpikecError
    import warnings

    warnings.simplefilter("ignore")
    if target in ("nir", "netx"):  # walk HDF5 in this process, so libFuzzer sees its coverage (spikec forks)
        import spikec.safe_read.hdf5 as hdf5

        hdf5.isolated = lambda read, *args, **_: read(*args)  # type: ignore[assignment]
    folder = work / target / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("report.json" if target == "report" else f"model{SUFFIX[target]}")
    findings = work / target / "findings"
    findings.mkdir(exist_ok=True)
    if target == "pt":
        from fuzz.seeds import ARCH

        (folder / "arch.py").write_text(ARCH, encoding="utf-8")

    def read(p: Path) -> Any:
        if target in ("npy", "npz"):
            return spikec.arrays.load_arrays(p, "--input")
        if target == "report":
            return spikec.cli_verify.load_report(p.parent)
        if target == "pt":
            return spikec.models.load_model(p, arch=f"{folder / 'arch.py'}:build", input_shape=(1, 6, 6))
        return spikec.models.load_model(p)

    def test_one_input(data: bytes) -> None:
        path.write_bytes(data)
        try:
            read(path)
        except SpikecError:
            pass
        except Exception as err:  # a finding: record it and go on
            key = f"{type(err).__name__}-{abs(hash(str(err).splitlines()[0] if str(err) else '')) % 10**8}"
            record = findings / key
            if not record.exists():
                record.mkdir()
                (record / "input").write_bytes(data)
                (record / "error.txt").write_text(f"{type(err).__name__}: {err}"[:2000], encoding="utf-8")

    atheris.Setup([sys.argv[0], *argv], test_one_input)
    atheris.Fuzz()


def corpus(target: str, work: Path) -> Path:
    """The target's seed corpus: the campaign's valid file of its format."""
    from fuzz.seeds import write_seeds

    folder = work / target / "corpus"
    if not folder.exists():
        folder.mkdir(parents=True)
        seed = write_seeds(work / target / "seed", [SEED_FORMAT[target]])[SEED_FORMAT[target]]
        source = seed.path.with_suffix(".sir") if target == "sir-sidecar" else seed.path
        (folder / f"seed{SUFFIX[target]}").write_bytes(source.read_bytes())
    return folder


def drive(target: str, seconds: float, work: Path) -> dict[str, Any]:
    """Run ``target`` for ``seconds``, restarting libFuzzer after a crash, timeout or out-of-memory."""
    seeds = corpus(target, work)
    env = {**os.environ, "SPIKEC_MEMORY_LIMIT": "1G"}
    deadline = time.monotonic() + seconds
    stops: list[str] = []
    runs, cov, ft = 0, 0, 0
    while (left := deadline - time.monotonic()) > 5:
        argv = [
            sys.executable,
            __file__,
            "--run",
            target,
            "--work",
            str(work),
            "--",
            f"-max_total_time={int(left)}",
            "-timeout=20",
            "-rss_limit_mb=4096",
            f"-max_len={MAX_LEN}",
            f"-artifact_prefix={work / target}/",
            "-print_final_stats=1",
            str(seeds),
        ]
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        log = result.stderr
        done = re.findall(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+)", log)
        stats = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
        runs += int(stats[-1]) if stats else int(done[-1][0]) if done else 0
        last = re.findall(r"cov: (\d+) ft: (\d+)", log)
        if last:
            cov, ft = max(cov, int(last[-1][0])), max(ft, int(last[-1][1]))
        if result.returncode != 0:
            kind = re.search(r"ERROR: libFuzzer: ([\w-]+)", log) or re.search(r"(Traceback|Segmentation fault)", log)
            stops.append(kind.group(1) if kind else f"exit {result.returncode}")
            (work / target / f"stop-{len(stops)}.log").write_text(log[-20000:], encoding="utf-8")
            if len(stops) >= 5:
                break
    findings = (
        sorted(p.name for p in (work / target / "findings").iterdir()) if (work / target / "findings").exists() else []
    )
    return {
        "target": target,
        "seconds": seconds,
        "runs": runs,
        "coverage": cov,
        "features": ft,
        "findings": findings,
        "stops": stops,
        "crash_inputs": sorted(p.name for p in (work / target).glob("crash-*")),
        "timeout_inputs": sorted(p.name for p in (work / target).glob("timeout-*")),
        "oom_inputs": sorted(p.name for p in (work / target).glob("oom-*")),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--targets", default=",".join(SUFFIX), help="comma-separated (default: all)")
    p.add_argument("--seconds", type=float, default=60.0, help="fuzzing time per target")
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--run", metavar="TARGET", help=argparse.SUPPRESS)
    args, rest = p.parse_known_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="spikec-atheris-"))
    if args.run:
        fuzz_one(args.run, work, [a for a in rest if a != "--"])
        return
    results = []
    for target in args.targets.split(","):
        r = drive(target, args.seconds, work)
        results.append(r)
        print(
            json.dumps({k: v for k, v in r.items() if k != "findings"} | {"findings": len(r["findings"])}), flush=True
        )
    summary = {
        "command": f"benchmarks/fuzz/atheris_readers.py --seconds {args.seconds:g}",
        "work": str(work),
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
