"""Benchmark: the leadership summary at scale (prints wall-clock figures).

Usage: .venv/bin/python benchmarks/summary_bench.py [SAMPLE_DIR]
SAMPLE_DIR defaults to a generated 2,000-unit x 48-month sample in a temporary folder
(``perflink sample-data DIR --entities 2000 --months 48``). The other tasks' tables are
synthesised at the sizes they have on that sample (tens of thousands of findings and
scorecard rows, a full previous-quarter forecast), so only the summary's own work is timed:
merging and ranking, the review loop incl. forecast vs actual (panel roll-up), the workbook.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import perflink
from perflink import summary
from perflink.sample import generate


def _tables(review, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    ents = review.entities
    units = ents.loc[ents["kind"] == "department", "entity_id"].to_numpy()
    q = review.quarter
    months = [str(p) for p in pd.period_range(q.asfreq("M", "start") - 9, q.asfreq("M", "end"))]
    n = 20_000
    val = pd.DataFrame(
        {
            "entity_id": rng.choice(units, n),
            "period": rng.choice(months, n),
            "metric_id": rng.choice(["revenue", "production_cost", "opex"], n),
            "rule_id": rng.choice(["R01", "R02", "R04", "R05"], n),
            "check": "rule",
            "severity": rng.choice(["high", "medium", "low"], n),
            "value": rng.uniform(50, 150, n),
            "expected": 100.0,
            "deviation": 0.1,
            "message": "rule broken",
        }
    )
    kpi = pd.DataFrame(
        {
            "entity_id": np.repeat(units, 2),
            "period": str(q),
            "metric_id": "net_profit",
            "rule_id": "tier1_missed",
            "severity": "high",
            "message": "missed",
            "scope": np.tile(["quarter", "ytd"], len(units)),
            "completion": 0.8,
            "gap": rng.uniform(-200, -1, 2 * len(units)),
        }
    )
    metrics = ["revenue", "cogs", "opex", "net_profit"]
    dev = pd.DataFrame(
        {
            "entity_id": np.repeat(units, 4),
            "period": str(q),
            "metric_id": np.tile(metrics, len(units)),
            "projected": 900.0, "lo_80": 850.0, "hi_80": 950.0, "budget": 1000.0,
            "ytd_actual": 700.0, "deviation_pct": -0.1,
            "p_meet_budget": rng.uniform(0, 1, 4 * len(units)),
            "at_stake": rng.uniform(0, 300, 4 * len(units)),
            "kind": "department",
            "severity": rng.choice(["high", "medium", "info", "info"], 4 * len(units)),
            "message": "projected miss",
        }
    )  # fmt: skip
    m = 3_000
    anom = pd.DataFrame(
        {
            "entity_id": rng.choice(units, m),
            "period": rng.choice(months[-3:], m),
            "metric_id": rng.choice(["opex", "revenue", "yield_rate"], m),
            "kind": "spike",
            "severity": rng.choice(["high", "medium", "low"], m),
            "at_stake": rng.uniform(0, 100, m),
            "explained_by": "",
            "message": "spike",
        }
    )
    scheme = ["net_profit", "revenue", "cash_collected", "new_contract_amount"]
    scheme += ["new_customers", "on_time_delivery_rate", "mgmt_task_completion"]
    k = len(units) * len(scheme) * 2
    card = pd.DataFrame(
        {
            "entity_id": np.repeat(units, len(scheme) * 2),
            "period": str(q),
            "scope": np.tile(np.repeat(["quarter", "ytd"], len(scheme)), len(units)),
            "scheme_id": "SCH-PROFIT",
            "metric_id": np.tile(scheme, 2 * len(units)),
            "category": "financial",
            "weight": 1 / len(scheme),
            "completion": rng.uniform(0.7, 1.2, k),
            "score": rng.uniform(60, 120, k),
            "weighted_score": rng.uniform(8, 17, k),
        }
    )
    qm = [str(p) for p in pd.period_range(q.asfreq("M", "start"), q.asfreq("M", "end"))]
    fc = pd.DataFrame(
        {
            "entity_id": np.repeat(ents["entity_id"].to_numpy(), 12),
            "metric_id": np.tile(np.repeat(metrics, 3), len(ents)),
            "period": np.tile(qm, 4 * len(ents)),
            "mean": 100.0, "lo_80": 80.0, "hi_80": 120.0,
        }
    )  # fmt: skip
    return dict(
        validation_findings=val, kpi_findings=kpi, forecast_deviation=dev, anomalies=anom,
        scorecard=card, forecast=fc,
    )  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1:
        params = Path(sys.argv[1]) / "params.yaml"
    else:
        params = generate(Path(tempfile.mkdtemp()) / "big", entities=2000, months=48, seed=0)
    review = perflink.open_review(params, language="zh")
    review.inputs  # noqa: B018 - load outside the timed part
    tables = _tables(review, np.random.default_rng(0))
    full = {name: tables.get(name) for name in summary.TABLES}
    origin = {n: "table" if d is not None else "missing" for n, d in full.items()}
    t0 = time.perf_counter()
    first = summary.summarize(review, summary.SummaryInputs(full, origin))
    t1 = time.perf_counter()
    prev = first.to_frame()
    prev = prev.sample(frac=0.7, random_state=0)  # some findings get resolved
    inputs = summary.SummaryInputs(
        full, origin, None, {"summary_findings": prev, "forecast": tables["forecast"]},
        Path(tempfile.mkdtemp()),
    )  # fmt: skip
    t2 = time.perf_counter()
    second = summary.summarize(review, inputs)
    t3 = time.perf_counter()
    out = summary.write_workbook(second, path=Path(tempfile.mkdtemp()) / "review.xlsx")
    t4 = time.perf_counter()
    n_units = int((review.entities["kind"] == "department").sum())
    rows = sum(len(d) for d in tables.values())
    print(f"units: {n_units:,}, facts rows: {len(review.facts):,}, task rows: {rows:,}")
    print(f"summarize (no previous):        {t1 - t0:6.1f} s ({len(first.to_frame()):,} findings)")
    print(
        f"summarize (loop + fc vs actual): {t3 - t2:6.1f} s "
        f"({len(second.loop.forecast_errors):,} forecast errors)"
    )
    print(f"write review.xlsx:               {t4 - t3:6.1f} s ({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
