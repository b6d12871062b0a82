"""The untrusted-file campaign, seeded and counted: every format × mutation class × N cases.

    .venv/bin/python benchmarks/fuzz/campaign.py --cases 60            # all formats, ~15 min on 2 cores
    .venv/bin/python benchmarks/fuzz/campaign.py --cases 5 --formats sir,npy

The mutations, seeds and the judgement are the suite's (``tests/fuzz``). Cases run in worker processes
that report each result as a line of JSON: a worker that dies mid-case is a **crash**, one silent past
the case's limit is a **hang** (the worker is killed and replaced), and neither stops the campaign. Each
case's randomness comes from ``(--seed, format, class, index)``, so ``--replay FORMAT/CLASS/INDEX`` rebuilds
one case; the folders of bad cases are kept under ``--work``. The counts go to ``--out`` (JSON) and a
table on stdout (docs/security.md, "Reading untrusted files", records them).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

CASE_LIMIT = 20.0  # seconds a case may take inside the worker (the oracle's own alarm)
WATCHDOG = 90.0  # seconds without a word from a worker before it is killed (a hang the alarm missed)


def case_rng(seed: int, case: str) -> random.Random:
    return random.Random(f"{seed}/{case}")


def run_case(seed: int, case: str, seeds: dict[str, Any], work: Path, keep: bool) -> dict[str, Any]:
    """Copy the seed, mutate it, judge reading it (in this process)."""
    from fuzz.classes import MUTATIONS, copy_seed
    from fuzz.oracle import judge

    fmt, cls, _ = case.split("/")
    folder = work / "cases" / case.replace("/", "-")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    path = copy_seed(seeds[fmt].path, folder)
    try:
        target = MUTATIONS[cls](case_rng(seed, case), path)
    except Exception as err:  # a mutation that does not apply to this seed (counted apart, never judged)
        shutil.rmtree(folder, ignore_errors=True)
        return {"case": case, "kind": "skipped", "detail": f"mutation failed: {type(err).__name__}: {err}"[:300]}
    outcome = judge(seeds[fmt].read, target, folder, CASE_LIMIT)
    if outcome.kind in ("loaded", "refused") and not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return {"case": case, "kind": outcome.kind, "detail": outcome.detail, "seconds": round(outcome.seconds, 4)}


def worker(seed: int, work: Path, keep: bool) -> None:
    """Read case ids on stdin; for each, print one JSON result line."""
    from fuzz.seeds import Seed, reader

    warnings.simplefilter("ignore")
    manifest = json.loads((work / "seeds.json").read_text(encoding="utf-8"))
    seeds = {fmt: Seed(fmt, Path(path), reader(fmt, Path(path))) for fmt, path in manifest.items()}
    for line in sys.stdin:
        case = line.strip()
        if not case:
            continue
        print(json.dumps(run_case(seed, case, seeds, work, keep)), flush=True)


class Worker:
    """A worker process and the case it is on."""

    def __init__(self, args: argparse.Namespace) -> None:
        argv = [sys.executable, __file__, "--worker", "--seed", str(args.seed), "--work", str(args.work)]
        argv += ["--keep-all"] if args.keep_all else []
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.current: str | None = None
        self.since = time.monotonic()
        self.pending = b""  # bytes read from the worker's stdout that do not yet end a line

    def lines(self) -> list[str] | None:
        """The complete lines the worker wrote since the last call; None when it has died."""
        assert self.proc.stdout is not None
        chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not chunk:
            return None
        *done, self.pending = (self.pending + chunk).split(b"\n")
        return [line.decode("utf-8", "replace") for line in done]

    def send(self, case: str) -> None:
        assert self.proc.stdin is not None
        self.current, self.since = case, time.monotonic()
        self.proc.stdin.write(case.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def campaign(args: argparse.Namespace) -> dict[str, Any]:
    from fuzz.classes import CLASSES
    from fuzz.seeds import write_seeds

    args.work.mkdir(parents=True, exist_ok=True)
    seeds = write_seeds(args.work / "seeds", args.formats)  # once, before the workers start
    manifest = {fmt: str(seed.path) for fmt, seed in seeds.items()}
    (args.work / "seeds.json").write_text(json.dumps(manifest), encoding="utf-8")
    pending = collections.deque(
        f"{fmt}/{cls}/{i}" for i in range(args.cases) for fmt in args.formats for cls in CLASSES[fmt]
    )
    total = len(pending)
    results: list[dict[str, Any]] = []
    workers = [Worker(args) for _ in range(args.workers)]
    idle = list(workers)
    start, shown = time.monotonic(), 0
    while len(results) < total:
        while idle and pending:
            idle.pop().send(pending.popleft())
        busy = [w for w in workers if w.current is not None]
        streams = {w.proc.stdout: w for w in busy if w.proc.stdout is not None}
        ready, _, _ = select.select(list(streams), [], [], 5.0)
        for stream in ready:
            w = streams[stream]
            lines = w.lines()
            if lines is None:  # the worker died in the middle of its case
                code = w.proc.wait()
                results.append({"case": w.current, "kind": "crash", "detail": f"worker exit code {code}"})
                workers[workers.index(w)] = fresh = Worker(args)
                idle.append(fresh)
                continue
            for line in lines:
                if line.startswith("{"):
                    results.append(json.loads(line))
                    w.current = None
                    idle.append(w)
        for w in list(workers):
            if w.current is not None and time.monotonic() - w.since > WATCHDOG:
                w.kill()
                results.append({"case": w.current, "kind": "hang", "detail": f"no answer in {WATCHDOG:g} s"})
                workers[workers.index(w)] = fresh = Worker(args)
                idle.append(fresh)
        if len(results) >= shown + 100:
            shown = len(results)
            print(f"  {shown}/{total} cases, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    for w in workers:
        w.kill()
    return summarise(args, results, time.monotonic() - start)


def summarise(args: argparse.Namespace, results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    from fuzz.oracle import BAD

    counts: dict[str, dict[str, dict[str, int]]] = {}
    for r in results:
        fmt, cls, _ = str(r["case"]).split("/")
        cell = counts.setdefault(fmt, {}).setdefault(cls, {})
        cell[r["kind"]] = cell.get(r["kind"], 0) + 1
    totals = collections.Counter(r["kind"] for r in results)
    return {
        "command": f"benchmarks/fuzz/campaign.py --cases {args.cases} --seed {args.seed}",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "seconds": round(seconds, 1),
        "cases": len(results),
        "totals": {k: totals.get(k, 0) for k in ("loaded", "refused", "skipped", *BAD)},
        "by_format": counts,
        "bad": sorted((r for r in results if r["kind"] in BAD), key=lambda r: str(r["case"])),
    }


def table(summary: dict[str, Any]) -> str:
    from fuzz.oracle import BAD

    head = ["format", "class", "cases", "loaded", "refused", *BAD]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fmt, classes in summary["by_format"].items():
        for cls, cell in classes.items():
            n = sum(v for k, v in cell.items() if k != "skipped")
            rows.append("| " + " | ".join([fmt, cls, str(n), *(str(cell.get(k, 0)) for k in head[3:])]) + " |")
    return "\n".join(rows)


def main() -> None:
    from fuzz.classes import CLASSES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=20, help="cases per format and mutation class")
    p.add_argument("--formats", default=",".join(CLASSES), help="comma-separated (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=max(1, min(4, (os.cpu_count() or 2))))
    p.add_argument("--work", type=Path, default=None, help="scratch folder (bad cases are kept there)")
    p.add_argument("--out", type=Path, default=None, help="write the counts as JSON")
    p.add_argument("--keep-all", action="store_true", help="keep every case's folder")
    p.add_argument("--replay", metavar="FORMAT/CLASS/INDEX", help="run one case here and print its outcome")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.formats = args.formats.split(",")
    args.work = args.work or Path(tempfile.mkdtemp(prefix="spikec-campaign-"))
    if args.worker:
        worker(args.seed, args.work, args.keep_all)
        return
    if args.replay:
        from fuzz.seeds import write_seeds

        fmt = args.replay.split("/")[0]
        seeds = write_seeds(args.work / "seeds", [fmt])
        print(json.dumps(run_case(args.seed, args.replay, seeds, args.work, keep=True), indent=2))
        print(f"case folder: {args.work / 'cases' / args.replay.replace('/', '-')}")
        return
    summary = campaign(args)
    print(table(summary))
    print(json.dumps(summary["totals"]), f"in {summary['seconds']} s; work folder {args.work}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
