"""Time the raw path: ``python benchmarks/raw_bench.py [--units N] [--months M] [--lines L]``.

Writes synthetic raw extracts with the sample's raw writer (contract, shipment, GL and
collection lines for N units × M months, about L lines per unit-month and metric plus the
cancelled/draft and non-revenue GL lines the catalog filters out; defaults give ~20 million
lines), then runs :func:`perflink.raw.aggregate_raw` with the bundled catalog in a child
process, so its peak memory is measured apart from the writer's. Prints lines, seconds and
peak memory of each step, and checks the aggregated totals against the written values.
Goal (issue 9): 20 million raw lines aggregated to facts in under a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from perflink._sample_raw import RAW_METRICS, write_raw
from perflink.catalog import load_catalog
from perflink.raw import aggregate_raw


def _peak_mib() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: Linux carries ru_maxrss across
    fork+exec, so a child would report the writer's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _aggregate(folder: Path) -> None:
    catalog = load_catalog(Path(str(resources.files("perflink") / "data" / "catalog")))
    start = time.perf_counter()
    facts = aggregate_raw(catalog, folder)
    wall = time.perf_counter() - start
    peak = _peak_mib()
    lines = int(facts["source_ref"].str.extract(r":(\d+) ")[0].astype(int).sum())
    totals = facts.groupby("metric_id")["value"].sum().to_dict()
    print(json.dumps(dict(wall=wall, peak=peak, rows=len(facts), lines=lines, totals=totals)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--lines", type=float, default=48.0)
    parser.add_argument("--aggregate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.aggregate:
        _aggregate(args.aggregate)
        return
    rng = np.random.default_rng(0)
    periods = pd.period_range(end="2026-09", periods=args.months, freq="M")
    shape = (args.units, args.months)
    values = {m: np.round(rng.uniform(50, 900, shape), 2) for m in RAW_METRICS}
    values["shipped_qty"] = np.round(rng.uniform(100, 20_000, shape))
    ids = np.array([f"U{i:05d}" for i in range(args.units)])
    vat = np.zeros(args.units, bool)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        written = write_raw(
            Path(tmp), values, ids, periods, vat_units=vat, seed=0, lines=args.lines
        )
        write_wall = time.perf_counter() - start
        write_peak = _peak_mib()
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.parquet"))
        out = subprocess.run(
            [sys.executable, __file__, "--aggregate", tmp],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    agg = json.loads(out.strip().splitlines()[-1])
    worst = max(abs(agg["totals"][m] - values[m].sum()) for m in RAW_METRICS)
    print(f"raw path: {args.units} units x {args.months} months, ~{args.lines:g} lines/unit-month")
    print(f"  lines written     {written:12,d}   ({size / 2**20:.0f} MiB Parquet)")
    print(f"  write time        {write_wall:12.1f} s   peak {write_peak:6.0f} MiB")
    print(f"  lines aggregated  {agg['lines']:12,d}   (after 'where' filters)")
    print(f"  facts rows        {agg['rows']:12,d}")
    print(f"  aggregate time    {agg['wall']:12.1f} s   (goal < 60 s)")
    print(f"  aggregate peak    {agg['peak']:12.0f} MiB (child process: DuckDB + facts)")
    print(f"  totals check      max |sum(facts) - sum(values)| = {worst:.4f}")


if __name__ == "__main__":
    main()
