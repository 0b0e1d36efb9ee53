"""Benchmark: KPI decomposition and scoring at scale (prints wall-clock figures).

Usage: .venv/bin/python benchmarks/kpi_bench.py [SAMPLE_DIR]
SAMPLE_DIR defaults to a generated 2,000-unit x 48-month sample in a temporary folder
(``perflink sample-data DIR --entities 2000 --months 48``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import perflink
import perflink.kpi
import perflink.scoring
from perflink.sample import generate


def main() -> None:
    if len(sys.argv) > 1:
        params = Path(sys.argv[1]) / "params.yaml"
    else:
        params = generate(Path(tempfile.mkdtemp()) / "big", entities=2000, months=48, seed=0)
    t0 = time.perf_counter()
    review = perflink.open_review(params, language="en")
    review.inputs  # noqa: B018 - load outside the timed part
    t1 = time.perf_counter()
    dec = perflink.kpi.decompose_review(review)
    t2 = time.perf_counter()
    scores = perflink.scoring.score_review(review, dec)
    t3 = time.perf_counter()
    n = review.entities.shape[0]
    print(f"entities (all levels): {n}, facts rows: {len(review.facts):,}")
    print(f"load inputs:   {t1 - t0:6.1f} s")
    print(f"decompose:     {t2 - t1:6.1f} s  ({len(dec.attribution):,} attribution rows)")
    print(f"score + bonus: {t3 - t2:6.1f} s  ({len(scores.scorecard):,} scorecard rows)")
    print(f"decomposition + scoring: {t3 - t1:6.1f} s (goal < 60 s)")


if __name__ == "__main__":
    main()
