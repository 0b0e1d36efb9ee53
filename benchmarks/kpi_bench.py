"""Benchmark: KPI decomposition and scoring at scale (prints wall-clock figures).

Usage: .venv/bin/python benchmarks/kpi_bench.py [SAMPLE_DIR]  (also times scorecard.xlsx)
SAMPLE_DIR defaults to a generated 2,000-unit x 48-month sample in a temporary folder
(``perflink sample-data DIR --entities 2000 --months 48``).
"""

from __future__ import annotations

import os
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
    t1, c1 = time.perf_counter(), time.process_time()
    dec = perflink.kpi.decompose_review(review)
    t2, c2 = time.perf_counter(), time.process_time()
    scores = perflink.scoring.score_review(review, dec)
    managers = perflink.scoring.assess_managers_review(review, scores)
    t3, c3 = time.perf_counter(), time.process_time()
    # the notebook's last step, and at 2,000 units its largest: one sheet per subsidiary
    book = perflink.scoring.write_scorecard_xlsx(
        scores, Path(tempfile.mkdtemp()) / "scorecard.xlsx", catalog=review.catalog
    )
    t4, c4 = time.perf_counter(), time.process_time()
    n = review.entities.shape[0]
    print(f"entities (all levels): {n}, facts rows: {len(review.facts):,}")
    print(f"load inputs:   {t1 - t0:6.1f} s")
    print(
        f"decompose:     {t2 - t1:6.1f} s wall, {c2 - c1:6.1f} s CPU  ({len(dec.attribution):,} rows)"
    )
    print(
        f"score + bonus + managers: {t3 - t2:6.1f} s wall, {c3 - c2:6.1f} s CPU  "
        f"({len(scores.scorecard):,} scorecard rows, {len(managers.managers):,} managers)"
    )
    print(f"decomposition + scoring: {t3 - t1:6.1f} s wall, {c3 - c1:6.1f} s CPU (goal < 60 s)")
    print(
        f"scorecard.xlsx: {t4 - t3:6.1f} s wall, {c4 - c3:6.1f} s CPU  "
        f"({book.stat().st_size / 1e6:.1f} MB)"
    )
    # wall time depends on what else runs on the machine; CPU time of this process does not
    print(f"load average during the run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
