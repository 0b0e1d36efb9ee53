"""Can leadership trust the figures? Interval coverage, probability calibration, clean groups.

Prints, for groups generated with seeds the tests do not use (issue 15's benchmarks):

``coverage``
    The forecast made as of each origin quarter (default 2025Q1-Q3) against the realised full
    year (the same forecast run as of 2025Q4, whose year-to-date actual *is* the full year,
    so "realised" follows exactly the definitions the forecast projects). Per metric and
    level (unit = department, subsidiary, group): how many rows, the share whose 80% and
    95% intervals held the realised figure (goals 75-85% and 92-97%), and the projection's
    error (``wape``: summed absolute error over the summed realised figures), with the 95%
    interval of each coverage over groups (``ci80``, ``ci95``: the seeds resampled) and a
    verdict: in the goal band, outside it within sampling noise, or off. Then the calibration of
    the probability of meeting budget: rows binned by the probability shown, and of each bin
    the share that met budget; and how the error follows the gap between the projection and
    the budget (where the budget foretold the year better than the projection, the rows
    shown far from budget are the ones that miss on its side). The groups' history is the
    generator's 45 months ending 2026-09 unless ``--months`` says otherwise: the forecasts at
    the 2025 origins then see 27-33 months, and their calibration windows fewer.
``clean``
    Groups generated ``--clean`` (no planted problem): findings of every task by severity,
    high findings per 50 units (goal: no critical and at most one high per 50 units), and
    the message of each critical or high finding, so a reader can tell a material miss of an
    actual target (a fact of the quarter, noise around a budget included) from a flag.
``recall``
    Groups generated with their planted problems (``truth.yaml``), reviewed in-process
    (``perflink.summary.run`` without a tables folder runs every task): per planted problem,
    the tasks whose findings match it (same entity; one of its metrics, or its rule, mapping
    or scheme; one of its months or their quarter) at their worst severity, and whether it is
    in the summary's ranked top list (goal: every problem found and ranked on every seed). An
    approved known event counts when it is found explained (its month flagged on any metric
    with the adjustment as the explanation) and either stays out of the list or is carried
    as evidence by the item it bears on (the unit's projected miss of the metric it cut):
    the event itself is no problem to act on, and must not be ranked as an unexplained miss.

Run from the repository root::

    .venv/bin/python benchmarks/trust_bench.py                      # every part, seeds 11-13
    .venv/bin/python benchmarks/trust_bench.py --part coverage --seeds 11,12,13,14,15
    .venv/bin/python benchmarks/trust_bench.py --part clean --sizes 42,120
    .venv/bin/python benchmarks/trust_bench.py --part recall --seeds 11,12,13,14,15
    .venv/bin/python benchmarks/trust_bench.py --example retail --seeds 21,22,23  # the other company
    .venv/bin/python benchmarks/trust_bench.py --part coverage --months 69   # from 2021-01
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perflink.sample import EXAMPLES  # noqa: E402
from perflink.sample import generate as _generate  # noqa: E402

#: The generated groups' history: ``MONTHS`` months ending at ``END`` (the generator's defaults).
MONTHS, END = (inspect.signature(_generate).parameters[k].default for k in ("months", "end"))
LEVELS = {"department": "unit", "subsidiary": "subsidiary", "group": "group"}
BINS = [0.0, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0001]


def _review(params: Path, quarter: str):
    import perflink

    return perflink.open_review(params, quarter=quarter)


def _deviation(params: Path, quarter: str) -> pd.DataFrame:
    from perflink import forecast

    review = _review(params, quarter)
    table = forecast.run(review).deviation.to_frame()
    kinds = review.entities.set_index("entity_id")["kind"]
    table = table.assign(level=table["entity_id"].map(kinds).map(LEVELS).fillna("unit"))
    return table


def coverage(
    seeds: list[int],
    origins: list[str],
    realised_q: str,
    work: Path,
    example: str = "sample",
    months: int = MONTHS,
) -> None:
    """Print interval coverage per metric x level and the calibration of p_meet_budget."""
    from perflink import sample
    from perflink.catalog import load_catalog

    rows = []
    for seed in seeds:
        params = sample.generate(work / f"cov{seed}", seed=seed, example=example, months=months)
        catalog = load_catalog(params.parent / "catalog")
        real = _deviation(params, realised_q).set_index(["entity_id", "metric_id"])["ytd_actual"]
        for origin in origins:
            dev = _deviation(params, origin)
            dev = dev.join(real.rename("realised"), on=["entity_id", "metric_id"])
            lower = {m for m, spec in catalog.metrics.items() if spec.direction == "lower"}
            lower_better = dev["metric_id"].isin(lower)
            met = np.where(
                lower_better, dev["realised"] <= dev["budget"], dev["realised"] >= dev["budget"]
            )
            rows.append(dev.assign(seed=seed, origin=origin, met=met))
    df = pd.concat(rows, ignore_index=True).dropna(subset=["realised", "lo_80", "hi_80"])
    df["in80"] = df["realised"].between(df["lo_80"], df["hi_80"])
    df["in95"] = df["realised"].between(df["lo_95"], df["hi_95"])
    first = pd.Period(END, "M") - (months - 1)
    print(
        f"\n== Interval coverage of the realised full year ({len(seeds)} seeds x origins {origins};"
        f" history from {first}: {(pd.Period(origins[0], 'Q').asfreq('M', 'end') - first).n + 1}"
        f" months at the first origin)"
    )
    print("   goals: 80% interval 75-85%, 95% interval 92-97%")
    df["abs_err"] = (df["realised"] - df["projected"]).abs()
    df["abs_real"] = df["realised"].abs()
    table = (
        df.groupby(["metric_id", "level"])
        .agg(
            n=("in80", "size"),
            cover80=("in80", "mean"),
            cover95=("in95", "mean"),
            abs_err=("abs_err", "sum"),
            abs_real=("abs_real", "sum"),
        )
        .reset_index()
    )
    # the projection's full-year error, summed over the rows (weighted absolute % error)
    table["wape"] = table.pop("abs_err") / table.pop("abs_real")
    table["ok"] = table["cover80"].between(*BANDS["in80"]) & table["cover95"].between(
        *BANDS["in95"]
    )
    table = table.merge(_seed_bootstrap(df), on=["metric_id", "level"], how="left")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1%}"))
    tally = table["verdict"].value_counts()
    print(
        "   cells: "
        + ", ".join(f"{tally.get(v, 0)} {v}" for v in ("in band", "within noise", "off"))
        + f" (of {len(table)})"
    )
    print(
        "   ci80/ci95: 95% interval of the coverage over groups (the seeds resampled with\n"
        "   replacement, 2,000 times: rows of one group share its years and its shocks, so the\n"
        "   seeds, not the rows, are the independent draws); verdict: 'in band' when the\n"
        "   coverage is in the goal band, 'within noise' when outside it but its interval\n"
        "   reaches the band, 'off' when the whole interval lies outside."
    )
    by_origin = df.groupby(["origin", "level"]).agg(
        cover80=("in80", "mean"), cover95=("in95", "mean")
    )
    print("\nby origin and level:\n" + by_origin.to_string(float_format=lambda v: f"{v:.1%}"))
    cal = df.dropna(subset=["p_meet_budget"]).copy()
    cal["bin"] = pd.cut(cal["p_meet_budget"], BINS, right=False)
    out = cal.groupby("bin", observed=True).agg(
        n=("met", "size"), shown=("p_meet_budget", "mean"), met=("met", "mean")
    )
    print("\n== Calibration of the probability of meeting budget (rows binned by the p shown)")
    print(out.to_string(float_format=lambda v: f"{v:.1%}"))
    profit = catalog.role("profit")
    if profit:
        part = cal[cal["metric_id"] == profit]
        out = part.groupby("bin", observed=True).agg(
            n=("met", "size"), shown=("p_meet_budget", "mean"), met=("met", "mean")
        )
        print(f"\n   the profit metric ({profit}) only:")
        print(out.to_string(float_format=lambda v: f"{v:.1%}"))
    by_level = cal.groupby(["level", "bin"], observed=True).agg(
        n=("met", "size"), shown=("p_meet_budget", "mean"), met=("met", "mean")
    )
    print("\n   by level:\n" + by_level.to_string(float_format=lambda v: f"{v:.1%}"))
    _budget_gap(df)


#: Goal bands of the 80% and 95% intervals' coverage (issue 15).
BANDS = {"in80": (0.75, 0.85), "in95": (0.92, 0.97)}


def _seed_bootstrap(df: pd.DataFrame, draws: int = 2000) -> pd.DataFrame:
    """Per metric and level, the 95% interval of the 80% and 95% intervals' coverage over
    groups (``seed`` resampled with replacement) and a verdict against :data:`BANDS`."""
    seeds = np.sort(df["seed"].unique())
    pick = np.random.default_rng(0).integers(0, len(seeds), size=(draws, len(seeds)))
    rows = []
    for (metric, level), part in df.groupby(["metric_id", "level"]):
        per = part.groupby("seed")[["in80", "in95"]].agg(["sum", "size"]).reindex(seeds)
        per = per.fillna(0.0)
        row = {"metric_id": metric, "level": level}
        verdicts = []
        for col, (lo, hi) in BANDS.items():
            hits = per[(col, "sum")].to_numpy()[pick].sum(axis=1)
            size = per[(col, "size")].to_numpy()[pick].sum(axis=1)
            cover = hits[size > 0] / size[size > 0]
            low, high = np.quantile(cover, [0.025, 0.975])
            row[f"ci{col[2:]}"] = f"{low:.0%}-{high:.0%}"
            point = part[col].mean()
            verdicts.append(
                "in band" if lo <= point <= hi else "within noise" if high >= lo and low <= hi
                else "off"
            )  # fmt: skip
        order = ("off", "within noise", "in band")
        row["verdict"] = min(verdicts, key=order.index)
        rows.append(row)
    return pd.DataFrame(rows)


def _budget_gap(df: pd.DataFrame) -> None:
    """Print how the forecast's error follows the gap between its projection and the budget.

    ``corr`` and ``slope`` of the error (realised - projected) on the gap (budget - projected),
    both over the forecast rest of the year and clipped to +-1: a slope of 0.8 means the
    realised year ended 80% of the way from the projection to the budget, i.e. the budget
    foretold the year better than the projection. ``miss80``: of the rows shown a
    probability of meeting budget of at least 95% (or under 5%), the share whose realised
    year fell outside the 80% interval on the budget's side (about 10% when calibrated).
    """
    rest = df["forecast_rest"].abs().where(lambda v: v > 0)
    err = ((df["realised"] - df["projected"]) / rest).clip(-1, 1)
    gap = ((df["budget"] - df["projected"]) / rest).clip(-1, 1)
    toward = np.where(gap >= 0, df["realised"] > df["hi_80"], df["realised"] < df["lo_80"])
    p = df["p_meet_budget"]
    data = df.assign(err=err, gap=gap, toward=toward, extreme=(p >= 0.95) | (p < 0.05))
    rows = []
    for (metric, level), part in data.dropna(subset=["err", "gap"]).groupby(["metric_id", "level"]):
        x, y = part["gap"].to_numpy(), part["err"].to_numpy()
        slope = float(np.polyfit(x, y, 1)[0]) if len(part) > 2 and x.std() > 0 else np.nan
        ext = part[part["extreme"]]
        rows.append(
            {
                "metric_id": metric,
                "level": level,
                "n": len(part),
                "corr": float(np.corrcoef(x, y)[0, 1]) if len(part) > 2 else np.nan,
                "slope": slope,
                "n_extreme": len(ext),
                "miss80": float(ext["toward"].mean()) if len(ext) else np.nan,
            }
        )
    print("\n== Forecast error against the gap to budget (both over the forecast rest of year)")
    print("   slope 0: the budget adds nothing to the projection; 1: the year ends at budget")
    table = pd.DataFrame(rows)
    print(
        table.to_string(
            index=False,
            formatters={
                "corr": "{:.2f}".format,
                "slope": "{:.2f}".format,
                "miss80": "{:.1%}".format,
            },
        )
    )


def clean(
    seeds: list[int], sizes: list[int], work: Path, example: str = "sample", months: int = MONTHS
) -> None:
    """Print findings by severity per task on --clean groups, and each high or critical one."""
    from perflink import anomaly, forecast, kpi, mapping, sample

    # scoring's findings are the KPI task's (kpi_findings): counted once, under kpi
    tasks = {"mapping": mapping.run, "kpi": kpi.run, "forecast": forecast.run,
             "anomaly": anomaly.run}  # fmt: skip
    counts, worst = [], []
    for size in sizes:
        for seed in seeds:
            shape = {"entities": size} if example == "sample" else {"example": example}
            params = sample.generate(
                work / f"clean{size}_{seed}", seed=seed, clean=True, months=months, **shape
            )
            review = _review(params, "")
            units = int((review.entities["kind"] == "department").sum())
            for name, run in tasks.items():
                findings = run(review).findings_table()
                if findings is None or findings.empty:
                    continue
                for sev, n in findings["severity"].value_counts().items():
                    counts.append(
                        dict(size=size, seed=seed, units=units, task=name, severity=sev, n=n)
                    )
                top = findings[findings["severity"].isin(["critical", "high"])]
                worst.append(top.assign(size=size, seed=seed, task=name))
    df = pd.DataFrame(counts)
    print(f"\n== Clean groups (no planted problem): findings by severity, seeds {seeds}")
    pivot = df.pivot_table(
        index=["size", "task"], columns="severity", values="n", aggfunc="sum", fill_value=0
    )
    print(pivot.to_string())
    per = df.groupby(["size", "seed"]).apply(
        lambda g: pd.Series(
            {
                "units": g["units"].iloc[0],
                "critical": g.loc[g["severity"] == "critical", "n"].sum(),
                "high": g.loc[g["severity"] == "high", "n"].sum(),
            }
        ),
        include_groups=False,
    )
    per["high_per_50_units"] = per["high"] / per["units"] * 50
    print("\nper group (goal: critical 0, high per 50 units <= 1):")
    print(per.to_string(float_format=lambda v: f"{v:.2f}"))
    worst = pd.concat(worst, ignore_index=True) if worst else pd.DataFrame()
    if not worst.empty:
        # what each one says: a material miss of an actual target is a fact of the quarter
        # (noise around a budget is still a miss), a statistical flag is an inference
        print("\neach critical or high finding (its message, cut at 160 characters):")
        for r in worst.itertuples():
            # an anomaly has no rule: its kind (spike, peer, linkage, ...) says which check
            rule = r.rule_id if isinstance(r.rule_id, str) else getattr(r, "kind", "")
            print(f"  {r.size} {r.seed} {r.task} {r.severity} {rule}: {str(r.message)[:160]}")


# task -> the tables of its findings in SummaryInputs (scoring's are kpi_findings)
RECALL_TABLES = {
    "mapping": ("validation_findings", "driver_strength"),
    "kpi": ("kpi_findings",),
    "forecast": ("forecast_deviation",),
    "anomaly": ("anomalies",),
}
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def _matches(df: pd.DataFrame, problem: dict) -> pd.Series:
    """Rows of a findings table (or the ranked list) about ``problem`` of truth.yaml."""
    if df is None or df.empty or "entity_id" not in df:
        return pd.Series(False, index=getattr(df, "index", None), dtype=bool)

    def col(name: str) -> pd.Series:
        return df[name].astype(object).where(df[name].notna(), "").astype(str) if name in df \
            else pd.Series("", index=df.index)  # fmt: skip

    subjects = set(problem["metric_ids"]) | {
        str(problem[k]) for k in ("rule_id", "mapping_id", "scheme_id") if problem.get(k)
    }
    subjects.add(problem["kind"])  # bonus_overrun, a rule of its own name
    about = pd.Series(False, index=df.index)
    for name in ("metric_id", "rule_id", "mapping_id", "scheme_id", "subject", "finding_kind"):
        about |= col(name).isin(subjects)
    if not problem["metric_ids"] and "metric_id" in df:
        about |= col("metric_id") == ""  # a scheme or bonus problem names no metric
    months = [str(m) for m in problem["periods"]]
    if months:
        quarters = {str(pd.Period(m, "M").asfreq("Q")) for m in months}
        when = col("period").isin(set(months) | quarters)
        if "periods" in df:
            when |= col("periods").map(lambda s: bool(set(s.split(", ")) & set(months)))
    else:
        when = pd.Series(True, index=df.index)
    return (col("entity_id") == problem["entity_id"]) & about & when


def recall(seeds: list[int], work: Path, example: str = "sample") -> None:
    """Print, per planted problem, which tasks found it and whether the summary ranks it."""
    import yaml

    from perflink import sample, summary

    rows = []
    for seed in seeds:
        params = sample.generate(work / f"recall{seed}", seed=seed, example=example)
        truth = yaml.safe_load((params.parent / "truth.yaml").read_text(encoding="utf-8"))
        result = summary.run(_review(params, ""))
        tables = result.inputs.tables
        ranked, top = result.findings.table, result.findings.top
        for p in truth["problems"]:
            found, explained = [], False
            for task, names in RECALL_TABLES.items():
                sev = []
                for name in names:
                    df = tables.get(name)
                    if df is None or "severity" not in df:
                        continue
                    df = df[df["severity"].isin(SEVERITY_ORDER)]
                    match = _matches(df, p)
                    if p["kind"] == "known_event" and "explained_by" in df:
                        # the event's month flagged on any metric with the adjustment as
                        # its explanation (a closure moves costs and ratios too)
                        match |= _matches(df.assign(metric_id=p["metric_ids"][0]), p) & (
                            df["explained_by"].fillna("") != ""
                        )
                    hit = df[match.to_numpy()]
                    if "explained_by" in hit:
                        explained |= bool((hit["explained_by"].fillna("") != "").any())
                    sev += list(hit["severity"])
                if sev:
                    found.append(f"{task}:{min(sev, key=SEVERITY_ORDER.index)}")
            in_top = _matches(top, p)
            # an item in the list that carries the event as evidence says the miss includes
            # an approved event (the unit's full-year miss is real; the event is not hidden)
            carried = (
                bool((in_top & top["evidence"].astype(str).str.contains("anomaly")).any())
                if len(top)
                else False
            )
            if "loop_status" in ranked:
                ranked = ranked[ranked["loop_status"] != "resolved"]
            in_list = _matches(ranked, p)
            rank = ranked.loc[in_list[in_list].index, "rank"].min() if in_list.any() else None
            rows.append(
                dict(
                    seed=seed,
                    id=p["id"],
                    kind=p["kind"],
                    entity=p["entity_id"],
                    expected=p["task"],
                    found_by=", ".join(found) or "-",
                    explained=explained,
                    rank=rank,
                    in_top=bool(in_top.any()),
                    carried=carried,
                )
            )
    df = pd.DataFrame(rows)
    event = df["kind"] == "known_event"
    df["ok"] = np.where(
        event,
        df["explained"] & (~df["in_top"] | df["carried"]),
        (df["found_by"] != "-") & df["in_top"],
    )
    print(f"\n== Planted-problem recall, seeds {seeds} (ranked list: summary top list)")
    print(df.to_string(index=False))
    print("\nper seed: found / in the top list / ok (of the problems planted)")
    per = df.assign(found=df["found_by"] != "-").groupby("seed")[["found", "in_top", "ok"]]
    print(per.sum().astype(int).assign(planted=df.groupby("seed").size()).to_string())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--part", choices=["coverage", "clean", "recall", "all"], default="all")
    ap.add_argument("--seeds", default="11,12,13", help="sample seeds (tests use 0-2)")
    ap.add_argument("--origins", default="2025Q1,2025Q2,2025Q3")
    ap.add_argument(
        "--realised", default="2025Q4", help="quarter whose YTD actual is the full year"
    )
    ap.add_argument("--sizes", default="42", help="units of the clean groups")
    ap.add_argument(
        "--months",
        type=int,
        default=MONTHS,
        help=f"months of history of each group, ending {END} (coverage: the history the "
        "forecasts at the origins have is this less the months after them)",
    )
    ap.add_argument(
        "--example",
        choices=list(EXAMPLES),
        default="sample",
        help="which built-in company to generate (retail: a fixed shape of 23 centres)",
    )
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.example == "retail" and sizes != [42]:
        ap.error("--sizes applies to the sample only: the retail example has a fixed shape")
    print(f"example: {args.example}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trust_bench_") as tmp:
        if args.part in ("coverage", "all"):
            coverage(
                seeds, args.origins.split(","), args.realised, Path(tmp), args.example, args.months
            )
        if args.part in ("clean", "all"):
            clean(seeds, sizes, Path(tmp), args.example, args.months)
        if args.part in ("recall", "all"):
            recall(seeds, Path(tmp), args.example)
    print(f"\n(trust_bench: {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
