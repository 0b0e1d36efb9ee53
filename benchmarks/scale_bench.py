"""Scale benchmark: the full quarterly review on 42 ... 10,000 units x 48 months.

For each size it generates a sample group (``perflink sample-data``, seed 0, 48 months
ending 2026-09) in a child process, runs ``python -m perflink review`` on it in another,
as a scheduled run would, and prints:

- fact rows, generation time and the generator's peak memory (can the sample generator
  itself build a group of this size on this machine?);
- wall time per task (from the run's ``manifest.json``; tasks overlap, ``jobs`` notebooks
  run at the same time) and the wall time of the whole run;
- peak memory: the largest sum of resident memory over this process and all its
  descendants (the CLI, the kernels, joblib or Dask workers), sampled every 0.2 s
  with psutil;
- CPU seconds per kind of process over the run (kernels, the ``perflink review`` process,
  Dask or joblib workers, this process: with Dask, the scheduler and its client) and their
  total as a share of the cores over the wall time: where a slower run spent its time;
- report size: the largest HTML page and the whole report folder;
- growth: seconds per 1,000 units at each size over the same at the base size
  (``--growth-base``, default 2,000 units when it is among the sizes, else the first size):
  1.0 = linear, 1.2 = 20 % more time per unit than at the base.

``--executor dask`` starts a ``dask.distributed.LocalCluster`` with one single-threaded
worker per core (``--dask-workers`` to set another number) in this process and runs the
review with ``executor: {kind: dask, address: <its address>}``; ``--executor both`` runs
each size both ways and prints the Dask/local ratio of the total wall time. After a Dask
run it prints how the cluster's time split, from the scheduler's task stream: tasks, the
workers' compute seconds, seconds moving data between workers (transfer), and seconds
deserialising the tasks' inputs (the blocks of series a kernel sends), with the busy share
of the workers over the run's wall time.

Goals (issue 17), printed next to the figures: 2,000 units under 60 s and 2 GiB, largest
page under 5 MB and report folder under 60 MB; 10,000 units under 5 minutes and 4 GiB,
growth from 2,000 to 10,000 within 1.2 x linear; Dask within 10 % of local.

The machine may be shared: the load average is printed with each row, and wall times are
only comparable between rows run under similar load.

Run from the repository root::

    .venv/bin/python benchmarks/scale_bench.py --sizes 42,2000,10000    # local
    .venv/bin/python benchmarks/scale_bench.py --sizes 250,2000 --executor both
    .venv/bin/python benchmarks/scale_bench.py --sizes 2000 --executor dask --dask-workers 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
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
    """Largest total RSS of this process and its descendants, sampled in a thread; and the
    CPU seconds each kind of process used meanwhile (:meth:`cpu`)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._first: dict[int, float] = {}  # CPU seconds when first seen
        self._last: dict[int, float] = {}  # ... when last seen
        self._kind: dict[int, str] = {}

    def _total(self) -> int:
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
                times = proc.cpu_times()
                used = times.user + times.system
                if proc.pid not in self._first:
                    self._first[proc.pid] = used if proc.pid in self._before else 0.0
                # until it is known: a child seen between fork and exec shows this command,
                # and an exiting one may no longer show its own
                if self._kind.get(proc.pid, "other") == "other":
                    self._kind[proc.pid] = _kind_of(proc, me) or "other"
                self._last[proc.pid] = used
        return total

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) per kind of process over the measured block: a
        process is sampled every ``interval``, so one that ends loses its last fraction of
        a second, and one that lives less than that may be missed."""
        out: dict[str, float] = {}
        for pid, kind in self._kind.items():
            out[kind] = out.get(kind, 0.0) + self._last[pid] - self._first[pid]
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        me = psutil.Process()
        self._before = {p.pid for p in [me, *me.children(recursive=True)]}
        self.peak = self._total()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _kind_of(proc: psutil.Process, me: psutil.Process) -> str | None:
    """What a process of the measured tree is, for :meth:`PeakMemory.cpu` (None: not yet
    known, a child between fork and exec)."""
    if proc.pid == me.pid:
        return "this process"  # with a Dask run: the scheduler and its client
    try:
        args = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    if args == me.cmdline():
        return None
    cmd = " ".join(args)
    if "ipykernel" in cmd:
        return "kernels"
    if "perflink review" in cmd or "perflink sample-data" in cmd:
        return "perflink"
    if proc.ppid() == me.pid or "multiprocessing" in cmd:
        return "workers"  # the LocalCluster's nannies and workers, or joblib's
    return "other"  # e.g. the chart bundle's child process


def _cpu_line(cpu: dict[str, float], wall: float) -> str:
    order = ["kernels", "perflink", "workers", "this process", "other"]
    parts = [f"{k} {cpu[k]:.1f}" for k in order if cpu.get(k, 0.0) >= 0.05]
    total = sum(cpu.values())
    cores = os.cpu_count() or 1
    return (
        f"cpu s: {', '.join(parts)}; total {total:.1f} = {total / (cores * wall):.0%} of "
        f"{cores} cores x {wall:.1f} s wall"
    )


def _generate(folder: Path, entities: int, months: int) -> tuple[float, int, int]:
    """Seconds, fact rows and peak memory (bytes) of ``perflink sample-data``."""
    # A child process, so that this process stays small and the peak memory is the review's.
    cmd = [sys.executable, "-m", "perflink", "sample-data", str(folder)]
    cmd += ["--entities", str(entities), "--months", str(months)]
    t0 = time.perf_counter()
    with PeakMemory() as mem:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(
            f"scale_bench: the sample generator failed at {entities} units "
            f"(exit {proc.returncode}, peak {mem.peak / 2**30:.2f} GiB): {cmd}"
        )
    with (folder / "facts.csv").open("rb") as fh:
        rows = sum(1 for _ in fh) - 1
    return seconds, rows, mem.peak


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
        raise SystemExit(
            f"scale_bench: the review failed (exit {proc.returncode}) after {wall:.0f} s, "
            f"peak {mem.peak / 2**30:.2f} GiB so far: {cmd}"
        )
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
        "cpu": mem.cpu(),
    }


@contextlib.contextmanager
def _cluster(workers: int):
    """A client of a fresh LocalCluster of ``workers`` single-threaded worker processes."""
    from dask.distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.get_task_stream()  # registers the scheduler's task-stream plugin before the run
        yield client


def _task_stream(client, since: float, wall: float, workers: int) -> str:
    """How the cluster's time split since ``since`` (epoch seconds), from the task stream."""
    actions: dict[str, float] = {}
    records = client.get_task_stream(start=since)
    for rec in records:
        for part in rec.get("startstops", ()):
            actions[part["action"]] = (
                actions.get(part["action"], 0.0) + part["stop"] - part["start"]
            )
    compute = actions.pop("compute", 0.0)
    moved = actions.pop("transfer", 0.0)
    rest = " ".join(f"{k} {v:.1f} s" for k, v in sorted(actions.items()))
    return (
        f"{len(records)} tasks: compute {compute:.1f} s, transfer {moved:.1f} s"
        f"{', ' + rest if rest else ''}; workers busy {compute / (workers * wall):.0%} of "
        f"{workers} x {wall:.1f} s wall"
    )


def _row(size: int, rows: int, gen: tuple, kind: str, r: dict) -> str:
    times = " ".join(f"{r['tasks'].get(t, float('nan')):8.1f}" for t in TASKS)
    page, page_bytes = r["largest_page"]
    return (
        f"{size:6d} {rows:9d} {gen[0]:6.1f} {gen[1] / 2**30:7.2f} {kind:6s} {times} "
        f"{r['wall']:8.1f} {r['peak'] / 2**30:8.2f} {page_bytes / 2**20:7.1f} "
        f"{r['report_bytes'] / 2**20:9.1f} {_load():>5s} ({page})"
    )


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # not on every platform
        return "n/a"


#: units -> (wall s, peak GiB, largest page MB, report MB) the issue asks for.
GOALS = {2000: (60, 2, 5, 60), 10000: (300, 4, None, None)}


def _goals(size: int, r: dict) -> str:
    if size not in GOALS:
        return ""
    wall, peak, page, report = GOALS[size]
    checks = [
        ("wall", r["wall"], wall, "s"),
        ("peak", r["peak"] / 2**30, peak, "GiB"),
        ("page", r["largest_page"][1] / 2**20, page, "MB"),
        ("report", r["report_bytes"] / 2**20, report, "MB"),
    ]
    return "; ".join(
        f"{name} {value:.1f} {'<' if value < goal else '>='} {goal} {unit} "
        f"{'met' if value < goal else 'NOT met'}"
        for name, value, goal, unit in checks
        if goal is not None
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="42,2000,10000", help="units per run")
    parser.add_argument("--months", type=int, default=48, help="months of history")
    parser.add_argument("--executor", choices=("local", "dask", "both"), default="local")
    parser.add_argument(
        "--dask-workers",
        type=int,
        default=None,
        help="workers of the LocalCluster (default: cores)",
    )
    parser.add_argument("--tasks", default=None, help="comma-separated tasks (default: all)")
    parser.add_argument("--keep", type=Path, default=None, help="keep samples/reports here")
    parser.add_argument(
        "--growth-base", type=int, default=2000, help="size the growth is relative to"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = ["local", "dask"] if args.executor == "both" else [args.executor]
    base_size = args.growth_base if args.growth_base in sizes else sizes[0]

    workers = args.dask_workers or os.cpu_count() or 1
    print(
        f"scale_bench: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB, "
        f"{args.months} months, executor {args.executor}"
        + (f" ({workers} Dask workers)" if "dask" in kinds else "")
    )
    head = " ".join(f"{t[:8]:>8s}" for t in TASKS)
    print(
        f"{'units':>6s} {'facts':>9s} {'gen_s':>6s} {'gen_GiB':>7s} {'exec':6s} {head} "
        f"{'wall_s':>8s} {'peak_GiB':>8s} {'page_MB':>7s} {'report_MB':>9s} {'load':>5s} (page)"
    )
    walls: dict[tuple[int, str], float] = {}
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="perflink-scale-") as tmp:
        root = args.keep or Path(tmp)
        for size in sizes:
            sample = root / f"sample-{size}"
            gen_s, rows, gen_peak = _generate(sample, size, args.months)
            for kind in kinds:
                # the cluster lives only for its own run: its idle workers would count
                # in a local run's peak memory (they are this process's children)
                with _cluster(workers) if kind == "dask" else contextlib.nullcontext() as cl:
                    since = time.time()
                    r = _run_review(
                        _params(sample, cl.cluster.scheduler_address if cl else None),
                        root / f"reports-{size}-{kind}",
                        args.tasks,
                    )
                    walls[size, kind] = r["wall"]
                    results.setdefault(size, r)
                    print(_row(size, rows, (gen_s, gen_peak), kind, r), flush=True)
                    print(f"{'':6s} {kind}: {_cpu_line(r['cpu'], r['wall'])}")
                    if cl is not None:
                        split = _task_stream(cl, since, r["wall"], workers)
                        print(f"{'':6s} dask: {split}")
            if not args.keep:  # a 10,000-unit sample and its report take gigabytes
                shutil.rmtree(sample, ignore_errors=True)
                for kind in kinds:
                    shutil.rmtree(root / f"reports-{size}-{kind}", ignore_errors=True)
            if len(kinds) == 2:
                ratio = walls[size, "dask"] / walls[size, "local"]
                print(f"{'':6s} dask/local wall time: {ratio:.2f}")
    print(f"growth (seconds per 1,000 units over the same at {base_size} units; 1.0 = linear):")
    base = walls[base_size, kinds[0]] / base_size * 1000
    for size in sizes:
        per_k = walls[size, kinds[0]] / size * 1000
        print(f"  {size:6d} units: {per_k:7.1f} s per 1,000 units = {per_k / base:.2f} x")
    for size in sizes:
        if goals := _goals(size, results[size]):
            print(f"goals at {size} units: {goals}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
