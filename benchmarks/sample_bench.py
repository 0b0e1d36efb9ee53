"""Time the sample generator at scale: ``python benchmarks/sample_bench.py [--entities N]``.

Prints wall time, peak memory and output size for N units × 48 months (default 2,000).
Goal (issue: foundation): 2,000 entities × 48 months in under a minute on the 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from perflink.sample import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=2000)
    parser.add_argument("--months", type=int, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        params = generate(Path(tmp) / "sample", entities=args.entities, months=args.months)
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in params.parent.rglob("*") if p.is_file())
        with open(params.parent / "facts.csv", encoding="utf-8") as fh:
            rows = sum(1 for _ in fh) - 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sample-data: {args.entities} entities x {args.months} months")
    print(f"  wall time     {wall:8.1f} s   (goal < 60 s)")
    print(f"  peak memory   {peak:8.0f} MiB")
    print(f"  facts rows    {rows:8d}")
    print(f"  output size   {size / 2**20:8.1f} MiB")


if __name__ == "__main__":
    main()
