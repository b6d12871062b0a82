"""Run spikec's writers against real failing file systems: full, read-only, and without write permission.

Started by ``tests/test_writers.py`` in its own mount namespace (``unshare -m``, or ``unshare -rm`` when not
root), so the small tmpfs file systems it mounts vanish with it. For each case (a spikec command line
writing ``outputs`` into ``{out}``) it first runs the command on a roomy tmpfs to learn what the outputs
take, then, with an older version of every output in place, on

* ``full``: a tmpfs with room for the old outputs and only a fraction of the new ones (ENOSPC part-way);
* ``readonly``: a tmpfs remounted read-only (EROFS);
* ``noperm``: a folder of mode 0555, the commands run as ``nobody`` (EACCES; only with ``--drop``, as root).

It prints one JSON object: the mount point (an empty folder once the namespace ends) and, per run, the
exit code, the error line, whether every old output is unchanged and which names appeared.

``python tests/disk_faults.py SPEC.json [--drop]``; SPEC has ``inputs`` (name → path, copied to ``{in}``),
``cases`` (``name``, ``argv``, ``outputs``) and ``fractions``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PAGE = 4096
NOBODY = 65534


def mount(where: Path, *options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)], check=True)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def pages(files: dict[str, bytes]) -> int:
    return sum(-(-len(data) // PAGE) for data in files.values())


def run(argv: list[str]) -> tuple[int, dict[str, Any]]:
    from spikec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--json"])
    return code, json.loads(out.getvalue())


def place_old(folder: Path, outputs: list[str], fresh: Path) -> None:
    """An older version of each output in ``folder``: a marker file, or the artifact with its report marked."""
    for name in outputs:
        target = folder / name
        if (fresh / name).is_dir():
            shutil.copytree(fresh / name, target)
            report = json.loads((target / "report.json").read_text())
            (target / "report.json").write_text(json.dumps({**report, "old": True}))
        else:
            target.write_bytes(b"an older output, which must survive\n")


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    drop = "--drop" in sys.argv
    base = Path(tempfile.mkdtemp(prefix="spikec-faults-"))
    mount(base, "size=256m", "mode=0755")
    given = base / "in"
    given.mkdir()
    for name, path in spec["inputs"].items():
        shutil.copy(path, given / name)

    def argv_for(case: dict[str, Any], folder: Path) -> list[str]:
        return [a.replace("{in}", str(given)).replace("{out}", str(folder)) for a in case["argv"]]

    plans = []
    for case in spec["cases"]:
        fresh = base / "fresh" / case["name"]
        fresh.mkdir(parents=True)
        code, report = run(argv_for(case, fresh))
        assert code == 0, (case["name"], report)
        new = snapshot(fresh)
        scratch = base / "old" / case["name"]
        scratch.mkdir(parents=True)
        place_old(scratch, case["outputs"], fresh)
        old = snapshot(scratch)
        folders = []
        for fraction in spec["fractions"]:  # room for the old outputs and this fraction of the new
            folder = base / "full" / case["name"] / str(fraction)
            mount(folder, f"size={PAGE * (pages(old) + int(fraction * pages(new)))}", "mode=0777")
            place_old(folder, case["outputs"], fresh)
            folders.append((f"full {fraction}", folder))
        readonly = base / "readonly" / case["name"]
        mount(readonly, "size=64m", "mode=0777")
        place_old(readonly, case["outputs"], fresh)
        subprocess.run(["mount", "-o", "remount,ro", str(readonly)], check=True)
        folders.append(("readonly", readonly))
        if drop:
            noperm = base / "noperm" / case["name"]
            noperm.mkdir(parents=True)
            place_old(noperm, case["outputs"], fresh)
            noperm.chmod(0o555)
            folders.append(("noperm", noperm))
        plans.append((case, folders))
    if drop:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    results = []
    for case, folders in plans:
        for fault, folder in folders:
            before = snapshot(folder)
            code, report = run(argv_for(case, folder))
            after = snapshot(folder)
            results.append(
                {
                    "case": case["name"],
                    "fault": fault,
                    "code": code,
                    "error": report.get("error", ""),
                    "kept": after == before,
                    "appeared": sorted(set(os.listdir(folder)) - {n.split("/")[0] for n in before}),
                }
            )
    print(json.dumps({"mount_point": str(base), "results": results}))


if __name__ == "__main__":
    main()
