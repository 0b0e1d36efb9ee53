"""Speed and quality of the panel anomaly detection (perflink.anomaly.detect_anomalies).

Speed: the whole detection (all four detectors, explanations, ranking) on a generated group
of ``--entities`` units x ``--months`` months (default 2,000 x 48), timed after loading the
inputs (loading is measured separately).  Quality: on the default sample with seeds 0, 1, 2,
the rank of each planted anomaly of the anomaly task (and the recognition gap) in the
quarter's ranked list; on the clean sample (seeds 0-4), flags per 100 entity-metric-months
of the quarter and how many are high or critical (the goal: none critical, at most 1 per 100).

Run from the repository root::

    .venv/bin/python benchmarks/anomaly_panel_bench.py
    .venv/bin/python benchmarks/anomaly_panel_bench.py --entities 500 --months 36 --skip-quality
    .venv/bin/python benchmarks/anomaly_panel_bench.py --big-dir /tmp/anomaly/big  # reuse a sample
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perflink.anomaly import detect_anomalies  # noqa: E402
from perflink.review import open_review  # noqa: E402
from perflink.sample import generate  # noqa: E402

RECALLED = ("expense_spike", "yield_drop", "known_event", "recognition_gap")


def _detect(params: Path):
    review = open_review(params, language="en")
    t0 = time.perf_counter()
    facts, entities, catalog, adj = (
        review.facts,
        review.entities,
        review.catalog,
        review.adjustments,
    )
    t1 = time.perf_counter()
    res = detect_anomalies(
        facts,
        entities,
        catalog,
        quarter=review.quarter,
        adjustments=adj,
        options=review.params.anomaly,
        language="en",
    )
    t2 = time.perf_counter()
    return res, len(facts), t1 - t0, t2 - t1


def speed(entities: int, months: int, big_dir: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if big_dir:
            params = Path(big_dir) / "params.yaml"
        else:
            params = generate(Path(tmp) / "big", entities=entities, months=months, seed=0)
        res, n_facts, t_load, t_detect = _detect(params)
    s = res.stats
    print(f"speed: {n_facts:,} facts ({params.parent})")
    print(f"  load inputs      {t_load:6.1f} s")
    print(
        f"  detect_anomalies {t_detect:6.1f} s  ({s['flags']} findings, {s['high']} high/critical,"
    )
    print(f"                   {s['per_100']} per 100 of {s['points']:,} entity-metric-months)")


CLEAN_SEEDS = (0, 1, 2, 3, 4)


def quality() -> None:
    print("quality on the default sample (rank of each planted anomaly in the quarter's list):")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (0, 1, 2):
            params = generate(Path(tmp) / f"s{seed}", seed=seed)
            res, *_ = _detect(params)
            truth = yaml.safe_load((params.parent / "truth.yaml").read_text(encoding="utf-8"))
            t = res.table
            parts = []
            for p in truth["problems"]:
                if p["kind"] not in RECALLED:
                    continue
                hit = t[
                    (t["entity_id"] == p["entity_id"])
                    & t["metric_id"].isin(p["metric_ids"])
                    & t["period"].astype(str).isin(p["periods"])
                ]
                rank = int(hit["rank"].min()) if len(hit) else None
                parts.append(f"{p['kind']}={rank}")
            print(f"  seed {seed}: " + ", ".join(parts) + f"  ({len(t)} findings)")
        for seed in CLEAN_SEEDS:
            params = generate(Path(tmp) / f"clean{seed}", seed=seed, clean=True)
            res, *_ = _detect(params)
            s = res.stats
            critical = int((res.table["severity"] == "critical").sum())
            print(
                f"  clean seed {seed}: {s['flags']} findings in {s['points']} entity-metric-months"
                f" = {s['per_100']} per 100; high/critical {s['high']}, critical {critical}"
            )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entities", type=int, default=2000)
    ap.add_argument("--months", type=int, default=48)
    ap.add_argument("--big-dir", default=None, help="reuse a generated sample folder")
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args(argv)
    speed(args.entities, args.months, args.big_dir)
    if not args.skip_quality:
        quality()


if __name__ == "__main__":
    main()
