"""Inputs read once per run: one raw read and check of the six inputs versus one snapshot read.

Before issue 13 every notebook read and checked the raw inputs itself (5 reads per run); now
``perflink review`` reads them once (:func:`perflink._review_inputs.load`), writes a Parquet
snapshot, and each kernel reads that. This prints, for a generated sample of N units:

- the time of one read + check (catalog included);
- the time to write the snapshot, and its size;
- the time to read the snapshot (best of 3), what each kernel now does;
- the loading time of a 5-notebook run before and after.

Run from the repository root::

    .venv/bin/python benchmarks/inputs_bench.py --units 2000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=2000, help="units in the sample (42..)")
    parser.add_argument("--notebooks", type=int, default=5, help="notebooks per run")
    args = parser.parse_args()

    from perflink import _review_inputs as ri
    from perflink.catalog import load_catalog
    from perflink.params import load_params
    from perflink.sample import generate

    with tempfile.TemporaryDirectory(prefix="inputs_bench-") as tmp:
        t0 = time.perf_counter()
        params = load_params(generate(Path(tmp) / "sample", entities=args.units, seed=0))
        print(f"sample of {args.units:,} units generated in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        inputs, notes = ri.load(params, load_catalog(params.catalog_dir))
        raw = time.perf_counter() - t0
        print(f"facts rows: {len(inputs.facts):,}")
        print(f"read + check the inputs once (catalog included): {raw:.2f} s")
        snap = Path(tmp) / "snapshot"
        t0 = time.perf_counter()
        ri.write_snapshot(inputs, notes, snap, quarter=params.quarter)
        write = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in snap.iterdir()) / 1e6
        print(f"write the snapshot: {write:.2f} s ({size:.1f} MB)")
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            ri.read_snapshot(snap, params)
            reads.append(time.perf_counter() - t0)
        read = min(reads)
        print(f"read the snapshot (each kernel): {read:.2f} s")
    n = args.notebooks
    print(
        f"loading per run of {n} notebooks: before {n} x {raw:.1f} = {n * raw:.1f} s; "
        f"after {raw:.1f} + {write:.2f} + {n} x {read:.2f} = {raw + write + n * read:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
