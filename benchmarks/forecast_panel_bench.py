"""Benchmark the panel forecast (perflink.forecast.forecast_panel) on a large sample group.

Generates the sample group with 2,000 units x 48 months (cached in a temp folder), then
times forecast_panel (every unit, subsidiary and the group; revenue, cogs, opex and net
profit per path) and, with ``--backtest``, backtest_panel. Prints wall time, series per
second, peak memory (RSS) and the load average (the figures are only comparable at a
similar load). ``--profile N`` runs forecast_panel once more in this process (one
worker) under cProfile and prints its N top costs by own time and by cumulative time.

Usage (from the repo root)::

    .venv/bin/python benchmarks/forecast_panel_bench.py                 # 2000 x 48, 2 workers
    .venv/bin/python benchmarks/forecast_panel_bench.py --entities 500 --jobs 1
    .venv/bin/python benchmarks/forecast_panel_bench.py --backtest
    .venv/bin/python benchmarks/forecast_panel_bench.py --profile 15
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import perflink  # noqa: E402
from perflink import sample  # noqa: E402
from perflink.forecast import backtest_panel, forecast_panel  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=2000)
    ap.add_argument("--months", type=int, default=48)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--backtest", action="store_true")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="top N cProfile costs")
    args = ap.parse_args()
    folder = Path(tempfile.gettempdir()) / f"perflink-bench-{args.entities}x{args.months}"
    if not (folder / "params.yaml").is_file():
        t = time.perf_counter()
        sample.generate(folder, entities=args.entities, months=args.months, seed=0)
        print(f"sample generated in {time.perf_counter() - t:.1f} s: {folder}")
    review = perflink.open_review(folder / "params.yaml", language="en")
    t = time.perf_counter()
    facts, targets, entities = review.facts, review.targets, review.entities
    print(f"inputs loaded in {time.perf_counter() - t:.1f} s ({len(facts):,} fact rows)")

    print(f"load average before the runs: {os.getloadavg()[0]:.2f}")
    t = time.perf_counter()
    res = forecast_panel(
        facts, targets, entities, review.catalog, quarter=review.quarter, n_jobs=args.jobs
    )
    wall = time.perf_counter() - t
    dev = res.deviation.to_frame()
    n_series = int((res.to_frame()["method"] != "derived_paths").sum() // 3)
    print(
        f"forecast_panel: {wall:.1f} s wall with {args.jobs} worker(s) for "
        f"{dev['entity_id'].nunique():,} entities, {n_series:,} series "
        f"({n_series / wall:,.0f} series/s); deviation rows {len(dev):,}, "
        f"flagged {int(dev['severity'].isin(['high', 'medium']).sum())}"
    )
    if args.backtest:
        t = time.perf_counter()
        bt = backtest_panel(
            facts, entities, review.catalog, quarter=review.quarter, n_jobs=args.jobs
        )
        print(f"backtest_panel: {time.perf_counter() - t:.1f} s wall")
        print(bt.to_frame().round(3).to_string(index=False))
    if args.profile:
        profile(review, args.profile)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (main process): {rss:,.0f} MB; load average {os.getloadavg()[0]:.2f}")


def profile(review, top: int) -> None:
    """forecast_panel with one worker under cProfile: its ``top`` costs, own and cumulative."""
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    forecast_panel(
        review.facts,
        review.targets,
        review.entities,
        review.catalog,
        quarter=review.quarter,
        n_jobs=1,
    )
    prof.disable()
    print(f"forecast_panel under cProfile, 1 worker: {time.perf_counter() - t:.1f} s wall")
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


if __name__ == "__main__":
    main()
