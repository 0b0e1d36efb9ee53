"""Scale benchmark: the full quarterly review on 250 ... 5,000 units x 48 months.

For each size it generates a sample group (``perflink.sample.generate``, seed 0, 48 months
ending 2026-09), runs ``python -m perflink review`` on it in a child process, as a
scheduled run would, and prints:

- fact rows, generation time (``perflink sample-data`` in a child process);
- wall time per task (from the run's ``manifest.json``; tasks overlap, ``jobs`` notebooks
  run at the same time) and the wall time of the whole run;
- peak memory: the largest sum of resident memory over this process and all its
  descendants (the CLI, the kernels, joblib or Dask workers), sampled every 0.2 s
  with psutil;
- report size: the largest HTML page and the whole report folder;
- growth: seconds per 1,000 units relative to the smallest size (1.0 = linear).

``--executor dask`` starts a ``dask.distributed.LocalCluster`` with one single-threaded
worker per core in this process and runs the review with
``executor: {kind: dask, address: <its address>}``; ``--executor both`` runs each size
both ways and prints the Dask/local ratio of the total wall time.

Goals (issue #9): 2,000 units under 10 minutes with peak memory under 4 GiB on a 2-core
machine, near-linear growth, Dask within 20% of local on the same cores.

Run from the repository root::

    .venv/bin/python benchmarks/scale_bench.py                          # 250 .. 5,000, local
    .venv/bin/python benchmarks/scale_bench.py --sizes 250,2000 --executor both
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TASKS = ("mapping", "kpi", "forecast", "anomaly", "summary")


class PeakMemory:
    """Largest total RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak = self._total()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _generate(folder: Path, entities: int, months: int) -> tuple[float, int]:
    # A child process, so that this process stays small and the peak memory is the review's.
    cmd = [sys.executable, "-m", "perflink", "sample-data", str(folder)]
    cmd += ["--entities", str(entities), "--months", str(months)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    with (folder / "facts.csv").open("rb") as fh:
        rows = sum(1 for _ in fh) - 1
    return seconds, rows


def _params(sample: Path, address: str | None) -> Path:
    params = yaml.safe_load((sample / "params.yaml").read_text(encoding="utf-8"))
    if address:
        params["executor"] = {"kind": "dask", "address": address}
    path = sample / ("params-dask.yaml" if address else "params-local.yaml")
    path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    return path


def _run_review(params: Path, out: Path, tasks: str | None) -> dict:
    cmd = [sys.executable, "-m", "perflink", "review", "--params", str(params), "--out", str(out)]
    if tasks:
        cmd += ["--tasks", tasks]
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"scale_bench: the review failed (exit {proc.returncode}): {cmd}")
    report = next(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    pages = {p.name: p.stat().st_size for p in report.glob("*.html")}
    total = sum(p.stat().st_size for p in report.rglob("*") if p.is_file())
    return {
        "wall": wall,
        "peak": mem.peak,
        "tasks": {t["name"]: t["duration_s"] for t in manifest["tasks"]},
        "largest_page": max(pages.items(), key=lambda kv: kv[1]),
        "report_bytes": total,
    }


def _row(size: int, rows: int, gen: float, kind: str, r: dict) -> str:
    times = " ".join(f"{r['tasks'].get(t, float('nan')):8.1f}" for t in TASKS)
    page, page_bytes = r["largest_page"]
    return (
        f"{size:6d} {rows:9d} {gen:6.1f} {kind:6s} {times} {r['wall']:8.1f} "
        f"{r['peak'] / 2**30:7.2f} {page_bytes / 2**20:6.1f} ({page}) "
        f"{r['report_bytes'] / 2**20:7.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="250,500,1000,2000,5000", help="units per run")
    parser.add_argument("--months", type=int, default=48, help="months of history")
    parser.add_argument("--executor", choices=("local", "dask", "both"), default="local")
    parser.add_argument("--tasks", default=None, help="comma-separated tasks (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep samples/reports here")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["local", "dask"] if args.executor == "both" else [args.executor]

    cluster = None
    if "dask" in kinds:
        from dask.distributed import LocalCluster

        cores = os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None
        )
    print(
        f"scale_bench: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB, "
        f"{args.months} months, executor {args.executor}"
    )
    head = " ".join(f"{t[:8]:>8s}" for t in TASKS)
    print(
        f"{'units':>6s} {'facts':>9s} {'gen_s':>6s} {'exec':6s} {head} {'wall_s':>8s} "
        f"{'peak_GiB':>7s} {'page_MB':>6s} {'report_MB':>7s}"
    )
    base = None
    walls: dict[tuple[int, str], float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="perflink-scale-") as tmp:
            root = args.keep or Path(tmp)
            for size in sizes:
                sample = root / f"sample-{size}"
                gen, rows = _generate(sample, size, args.months)
                for kind in kinds:
                    address = cluster.scheduler_address if kind == "dask" else None
                    r = _run_review(
                        _params(sample, address), root / f"reports-{size}-{kind}", args.tasks
                    )
                    walls[size, kind] = r["wall"]
                    print(_row(size, rows, gen, kind, r), flush=True)
                per_k = walls[size, kinds[0]] / size * 1000
                base = base or per_k
                print(
                    f"{'':6s} growth: {per_k:.1f} s per 1,000 units = {per_k / base:.2f} x the first size"
                )
                if len(kinds) == 2:
                    ratio = walls[size, "dask"] / walls[size, "local"]
                    print(f"{'':6s} dask/local wall time: {ratio:.2f}")
    finally:
        if cluster is not None:
            cluster.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
