"""Timing benchmark for ``perflink review`` on the bundled sample group.

Measures, in one run:

- wall time of ``python -m perflink review`` (a child process, as a user runs it);
- time per notebook, from the run's ``manifest.json``;
- kernel start-up share: the time papermill needs to run a notebook holding only a
  ``parameters`` cell (start a kernel, run one cell, shut down), times the number of
  notebooks, over the sum of notebook times;
- peak memory (max RSS) of this process and of its largest child (the CLI process or
  a kernel), from ``resource.getrusage``.

The sample is generated into a temporary folder (``perflink.sample.generate``, seed 0)
and the report written there too, so the working tree is not touched.

Run from the repository root::

    .venv/bin/python benchmarks/review_bench.py              # all tasks, jobs = CPU count
    .venv/bin/python benchmarks/review_bench.py --jobs 1     # serial, to see the parallel gain
    .venv/bin/python benchmarks/review_bench.py --notebooks tests/fixtures/notebooks \
        --tasks alpha,beta,summary                           # runner overhead only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _empty_notebook_seconds(folder: Path) -> float:
    """Seconds to run a notebook with only a parameters cell (kernel start + stop)."""
    import nbformat
    import papermill as pm
    from nbformat.v4 import new_code_cell, new_notebook

    from perflink import _runner_exec as ex

    cell = new_code_cell('quarter: str = "2026Q3"  # review period')
    cell.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[cell])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    src = folder / "00_empty.ipynb"
    nbformat.write(nb, src)
    kernel = ex.pick_kernel(src)
    t0 = time.perf_counter()
    pm.execute_notebook(
        str(src), str(folder / "00_empty.out.ipynb"), kernel_name=kernel, progress_bar=False
    )
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=None, help="notebooks at the same time")
    parser.add_argument("--tasks", default=None, help="comma-separated tasks (default: all)")
    parser.add_argument(
        "--notebooks", type=Path, default=ROOT / "notebooks", help="task notebooks folder"
    )
    args = parser.parse_args()

    notebooks = args.notebooks.resolve()
    if not sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        print(f"review_bench: no task notebooks in {notebooks} yet; nothing to time.")
        return 0
    try:
        from perflink.sample import generate
    except ModuleNotFoundError:
        print("review_bench: perflink.sample is not available; cannot build the sample.")
        return 0

    with tempfile.TemporaryDirectory(prefix="review_bench-") as tmp:
        tmp_path = Path(tmp)
        t0 = time.perf_counter()
        params = generate(tmp_path / "sample", seed=0)
        gen_s = time.perf_counter() - t0

        cmd = [sys.executable, "-m", "perflink", "review", "--params", str(params)]
        cmd += ["--out", str(tmp_path / "reports")]
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
            print(f"review_bench: perflink review exited {proc.returncode}:\n{proc.stderr[-2000:]}")
            return 1
        quarter_dirs = [p for p in (tmp_path / "reports").iterdir() if not p.name.startswith(".")]
        manifest = json.loads((quarter_dirs[0] / "manifest.json").read_text(encoding="utf-8"))
        empty_s = _empty_notebook_seconds(tmp_path)

    tasks = manifest["tasks"]
    busy = sum(t["duration_s"] for t in tasks)
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"cpu count: {os.cpu_count()}, jobs: {args.jobs or 'default'}")
    print(f"sample generation: {gen_s:.1f} s")
    print(f"perflink review wall time: {wall:.1f} s ({len(tasks)} notebooks)")
    for t in tasks:
        print(f"  {t['name']:<10} {t['status']:<7} {t['duration_s']:7.1f} s")
    print(f"sum of notebook times: {busy:.1f} s (parallel gain {busy / wall:.2f}x over wall)")
    share = min(1.0, empty_s * len(tasks) / busy) if busy else float("nan")
    print(
        f"empty notebook (kernel start + stop): {empty_s:.2f} s -> kernel start-up share {share:.0%}"
    )
    print(f"peak RSS: this process {self_mb:.0f} MB, largest child {child_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
