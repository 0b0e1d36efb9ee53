"""Timing benchmark for ``perflink review`` on the bundled sample group, against its floor.

Measures, in one run:

- wall time of ``python -m perflink review`` (a child process, as a user runs it);
- the **floor**: the same command, same params and runner, on notebooks that only open the
  review and load its inputs (each bundled notebook's title, ``parameters`` cell and
  ``open_review`` cell, then ``review.inputs``): kernel start and stop, input snapshot,
  page export and publishing, but no task work. The floor notebooks are derived from the
  bundled ones at run time, so their parameters cells can never drift from the real ones;
- the **ratio** full / floor (issue 17's goal: at most 1.5);
- time per notebook, from each run's ``manifest.json``;
- peak memory (max RSS) of this process and of its largest child (the CLI process or
  a kernel), from ``resource.getrusage``.

The machine may be shared, so ``--repeat N`` alternates floor and full runs N times and
prints the medians; the ratio of medians is less sensitive to load than one pair.

The sample is generated into a temporary folder (``perflink.sample.generate``, seed 0)
and the reports written there too, so the working tree is not touched.

Run from the repository root::

    .venv/bin/python benchmarks/review_bench.py              # all tasks, jobs = CPU count
    .venv/bin/python benchmarks/review_bench.py --repeat 3   # medians of 3 floor/full pairs
    .venv/bin/python benchmarks/review_bench.py --jobs 1     # serial, to see the parallel gain
    .venv/bin/python benchmarks/review_bench.py --notebooks tests/fixtures/notebooks \
        --tasks alpha,beta,summary                           # runner overhead only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: What a floor notebook does after opening the review: load the inputs (the snapshot the
#: runner wrote), which every task needs before any work of its own.
FLOOR_CELL = "_ = review.inputs  # load the run's inputs; no task work"


def floor_notebooks(notebooks: Path, folder: Path) -> Path:
    """Write, into ``folder``, one floor notebook per task notebook of ``notebooks``.

    Each keeps the original's metadata (kernelspec), its cells up to and including the first
    code cell after the ``parameters`` cell (imports and ``perflink.open_review(...)``), with
    every other code line after ``open_review`` dropped, and ends with :data:`FLOOR_CELL`.
    """
    import nbformat
    from nbformat.v4 import new_code_cell

    folder.mkdir(parents=True, exist_ok=True)
    for src in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        cells, seen_params = [], False
        for cell in nb.cells:
            if cell.cell_type != "code":
                if not seen_params:
                    cells.append(cell)  # the title
                continue
            if "parameters" in cell.get("metadata", {}).get("tags", []):
                seen_params = True
                cells.append(cell)
            elif seen_params:
                cells.append(_open_only(cell))
                break
        cells.append(new_code_cell(FLOOR_CELL))
        nb.cells = cells
        nbformat.write(nb, folder / src.name)
    return folder


def _open_only(cell):
    """The open-review cell without anything after the ``open_review(...)`` call."""
    lines = cell.source.splitlines()
    keep, depth, opened = [], 0, False
    for line in lines:
        if opened and depth == 0:
            break
        keep.append(line)
        if "open_review(" in line:
            opened = True
        if opened:
            depth += line.count("(") - line.count(")")
    cell = cell.copy()
    cell.source = "\n".join(keep)
    cell.outputs = []
    return cell


def _review(params: Path, out: Path, args, notebooks: Path) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "perflink", "review", "--params", str(params)]
    cmd += ["--out", str(out)]
    if args.jobs:
        cmd += ["--jobs", str(args.jobs)]
    if args.tasks:
        cmd += ["--tasks", args.tasks]
    if notebooks != ROOT / "notebooks":
        cmd += ["--notebooks", str(notebooks)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(
            f"review_bench: perflink review exited {proc.returncode} ({notebooks}):\n"
            f"{proc.stderr[-2000:]}"
        )
    quarter_dirs = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    manifest = json.loads((quarter_dirs[0] / "manifest.json").read_text(encoding="utf-8"))
    return wall, manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=None, help="notebooks at the same time")
    parser.add_argument("--tasks", default=None, help="comma-separated tasks (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="floor/full pairs (medians)")
    parser.add_argument(
        "--notebooks", type=Path, default=ROOT / "notebooks", help="task notebooks folder"
    )
    args = parser.parse_args()

    notebooks = args.notebooks.resolve()
    if not sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        print(f"review_bench: no task notebooks in {notebooks} yet; nothing to time.")
        return 0
    from perflink.sample import generate

    walls: dict[str, list[float]] = {"floor": [], "full": []}
    manifests: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="review_bench-") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        params = generate(tmp_path / "sample", seed=0)
        gen_s = time.perf_counter() - t0
        floor = floor_notebooks(notebooks, tmp_path / "floor_notebooks")
        for i in range(args.repeat):
            for kind, nbs in (("floor", floor), ("full", notebooks)):
                out = tmp_path / f"reports-{kind}-{i}"
                wall, manifests[kind] = _review(params, out, args, nbs)
                walls[kind].append(wall)

    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"cpu count: {os.cpu_count()}, jobs: {args.jobs or 'default'}, load: {_load()}")
    print(f"sample generation: {gen_s:.1f} s")
    for kind in ("floor", "full"):
        tasks = manifests[kind]["tasks"]
        wall = statistics.median(walls[kind])
        runs = ", ".join(f"{w:.1f}" for w in walls[kind])
        busy = sum(t["duration_s"] for t in tasks)
        print(
            f"{kind}: perflink review wall time {wall:.1f} s (runs: {runs}; {len(tasks)} notebooks)"
        )
        for t in tasks:
            print(f"  {t['name']:<10} {t['status']:<7} {t['duration_s']:7.1f} s")
        print(f"  sum of notebook times: {busy:.1f} s (parallel gain {busy / wall:.2f}x over wall)")
    ratio = statistics.median(walls["full"]) / statistics.median(walls["floor"])
    print(f"full review / floor: {ratio:.2f} (goal: at most 1.5)")
    print(f"peak RSS: this process {self_mb:.0f} MB, largest child {child_mb:.0f} MB")
    return 0


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # not on every platform
        return "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
