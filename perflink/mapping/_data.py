"""Data completeness and reconciliation rules (勾稽关系) for :mod:`perflink.mapping`. Not API."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import formula as _formula
from perflink import panel
from perflink.catalog import Catalog
from perflink.common import Lineage, facts_with_refs
from perflink.labels import t
from perflink.mapping._common import (
    checked_metric,
    downgrade,
    entity_names,
    fmt_amount,
    fmt_num,
    fmt_pct,
    formula_words,
    quarter_months,
    rule_unit,
    upto,
)

_MIN_HISTORY = 3  # months of history before the quarter needed to infer an entity's own set


def expected_set(
    facts: pd.DataFrame,
    entities: pd.DataFrame | None,
    catalog: Catalog,
    quarter: pd.Period,
    share: float,
) -> pd.DataFrame:
    """Which metrics each entity is expected to report, and since when.

    Returns columns ``entity_id, metric_id, first_period, history_months, share, basis``
    (``history``: reported in at least ``share`` of its months before the quarter;
    ``center_type``: too little history, so the set of its centre type is used).
    """
    q0 = quarter.asfreq("M", "start")
    # the columns read, not copies of every text of a million fact rows
    known = facts.loc[
        facts["metric_id"].isin(catalog.reported), ["entity_id", "period", "metric_id", "value"]
    ]
    first = known.groupby("entity_id")["period"].min()
    before = known.loc[(known["period"] < q0) & known["value"].notna(), ["entity_id", "metric_id"]]
    counts = before.groupby(["entity_id", "metric_id"]).size().rename("n").reset_index()
    span = (q0 - first).map(lambda d: max(d.n, 0)).rename("history_months")
    counts = counts.join(span, on="entity_id")
    counts["share"] = counts["n"] / counts["history_months"].clip(lower=1)
    own = counts[(counts["history_months"] >= _MIN_HISTORY) & (counts["share"] >= share)]
    out = own.assign(basis="history")[
        ["entity_id", "metric_id", "history_months", "share", "basis"]
    ]

    short = sorted(set(first.index) - set(own["entity_id"]))
    if short and entities is not None and "center_type" in entities:
        ctype = entities.set_index("entity_id")["center_type"]
        ok = own.assign(center_type=own["entity_id"].map(ctype))
        n_type = ok.groupby("center_type")["entity_id"].nunique()
        per = ok.groupby(["center_type", "metric_id"])["entity_id"].nunique()
        per = per[per / per.index.get_level_values(0).map(n_type) >= 0.5].reset_index()
        add = pd.DataFrame({"entity_id": short, "center_type": [ctype.get(e) for e in short]})
        add = add.merge(per[["center_type", "metric_id"]], on="center_type")
        add = add.assign(history_months=add["entity_id"].map(span), share=np.nan)
        out = pd.concat([out, add.assign(basis="center_type")[out.columns]], ignore_index=True)
    out = out.assign(first_period=out["entity_id"].map(first))
    cols = ["entity_id", "metric_id", "first_period", "history_months", "share", "basis"]
    return out[cols].sort_values(["entity_id", "metric_id"], ignore_index=True)


def source_of(facts: pd.DataFrame, catalog: Catalog) -> pd.Series:
    """(entity_id, metric_id) -> source system of its rows (catalog's when none)."""
    if "source_system" in facts:
        got = (
            facts[["entity_id", "metric_id", "source_system"]]
            .dropna(subset=["source_system"])
            .groupby(["entity_id", "metric_id"])["source_system"]
            .first()
        )
    else:
        got = pd.Series(dtype=object)
    return got


def completeness(
    facts: pd.DataFrame,
    entities: pd.DataFrame | None,
    catalog: Catalog,
    quarter: pd.Period,
    *,
    history: int,
    share: float,
    lang: str,
    lineage: Lineage | None = None,
) -> tuple[list[dict], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Missing and duplicated values: (findings rows, per-system summary, cells, expected set).
    ``lineage``: the facts of some entities with their ``source_ref``, for facts read without
    it (:meth:`perflink.review.Review.fact_lineage`)."""
    exp = expected_set(facts, entities, catalog, quarter, share)
    months = quarter_months(quarter)
    q0, q1 = months[0], months[-1]
    window = pd.period_range(q0 - history, q1, freq="M")
    src = source_of(facts, catalog)
    metrics = catalog.metrics

    # Work on integer month ordinals: boxing ~10^6 Period objects is the slow part.
    w0, w1, q0i = window[0].ordinal, q1.ordinal, q0.ordinal
    per = facts["period"].array.asi8
    ok = facts["value"].notna().to_numpy() & (per >= w0) & (per <= w1)
    ent_codes, ent_uniq = pd.factorize(pd.concat([facts["entity_id"], exp["entity_id"]]))
    met_codes, met_uniq = pd.factorize(pd.concat([facts["metric_id"], exp["metric_id"]]))
    n_f, span_m = len(facts), w1 - w0 + 1
    n_met = max(len(met_uniq), 1)

    def code(e: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
        return (e.astype(np.int64) * n_met + m) * span_m + (p - w0)

    have = np.unique(code(ent_codes[:n_f][ok], met_codes[:n_f][ok], per[ok]))
    # expected cells: each expected pair over the window, from the entity's first month
    reps = span_m
    e_rep = np.repeat(ent_codes[n_f:], reps)
    m_rep = np.repeat(met_codes[n_f:], reps)
    p_rep = np.tile(np.arange(w0, w1 + 1), len(exp))
    first = np.repeat(pd.PeriodIndex(exp["first_period"], freq="M").asi8, reps)
    keep = p_rep >= first
    e_rep, m_rep, p_rep = e_rep[keep], m_rep[keep], p_rep[keep]
    is_present = np.isin(code(e_rep, m_rep, p_rep), have, assume_unique=False)
    in_q = p_rep >= q0i
    keep = in_q | ~is_present  # the quarter's cells (for the index) and every gap
    cells = pd.DataFrame(
        {
            "entity_id": np.asarray(ent_uniq, dtype=object)[e_rep[keep]],
            "metric_id": np.asarray(met_uniq, dtype=object)[m_rep[keep]],
            "period": pd.PeriodIndex.from_ordinals(p_rep[keep], freq="M"),
            "present": is_present[keep],
            "in_quarter": in_q[keep],
        }
    )
    cat_src = {m: metrics[m].source_system for m in metrics}
    cells["source_system"] = _fast_source(cells, src, cat_src)
    owners = {m: metrics[m].owner for m in metrics}
    cells["owner"] = cells["metric_id"].map(owners).fillna("")

    names = entity_names(entities, lang)
    miss = cells[~cells["present"]]
    rows = []
    for e, m, p, s, o, inq in zip(
        miss["entity_id"],
        miss["metric_id"],
        miss["period"],
        miss["source_system"],
        miss["owner"],
        miss["in_quarter"],
        strict=True,
    ):
        rows.append(
            dict(
                entity_id=e,
                period=str(p),
                metric_id=m,
                rule_id="",
                check="missing",
                severity="high" if inq else "low",
                message=t(
                    "mapping.msg.missing",
                    lang,
                    entity=names.get(e, e),
                    eid=e,
                    period=str(p),
                    metric=metrics[m].name(lang) if m in metrics else m,
                    system=s,
                    owner=o,
                ),
                source_system=s,
                owner=o,
            )
        )
    dup_key = ["entity_id", "period", "metric_id"]
    dups = facts[facts.duplicated(dup_key, keep=False)]
    if len(dups):
        rows_of = facts_with_refs(dups, dups["entity_id"].unique(), lineage)
        if rows_of is not dups:  # the same rows read again with their refs, in the same order
            dups = rows_of[rows_of.duplicated(dup_key, keep=False)]
    for (e, p, m), part in dups.groupby(dup_key, sort=True):
        refs = ";".join(part["source_ref"].dropna().astype(str)) if "source_ref" in part else ""
        rows.append(
            dict(
                entity_id=e,
                period=str(p),
                metric_id=m,
                rule_id="",
                check="duplicated",
                severity="high" if p >= q0 else "low",
                value=float(part["value"].iloc[0]),
                message=t(
                    "mapping.msg.duplicated",
                    lang,
                    entity=names.get(e, e),
                    eid=e,
                    period=str(p),
                    metric=metrics[m].name(lang) if m in metrics else m,
                    n=len(part),
                    values=", ".join(fmt_num(v) for v in part["value"]),
                ),
                source_refs=refs,
                source_system=str(part["source_system"].iloc[0]) if "source_system" in part else "",
                owner=metrics[m].owner if m in metrics else "",
            )
        )
    quarter_cells = cells[cells["in_quarter"]]
    summary = (
        quarter_cells.groupby(["source_system", "owner"])
        .agg(expected=("present", "size"), present=("present", "sum"))
        .reset_index()
    )
    summary["missing"] = summary["expected"] - summary["present"]
    summary["completeness"] = summary["present"] / summary["expected"]
    return rows, summary, cells, exp


def _fast_source(cells: pd.DataFrame, src: pd.Series, cat_src: dict) -> np.ndarray:
    idx = pd.MultiIndex.from_frame(cells[["entity_id", "metric_id"]])
    got = src.reindex(idx).to_numpy(dtype=object)
    fallback = cells["metric_id"].map(cat_src).to_numpy(dtype=object)
    return np.where(pd.isna(got), fallback, got)


def rules(
    facts: pd.DataFrame,
    entities: pd.DataFrame | None,
    catalog: Catalog,
    quarter: pd.Period,
    expected: pd.DataFrame,
    *,
    history: int,
    drift_z: float,
    lang: str,
    lineage: Lineage | None = None,
) -> tuple[list[dict], pd.DataFrame]:
    """Evaluate every rule per entity and month: (findings rows, evaluations); ``lineage`` as
    in :func:`completeness`."""
    months = quarter_months(quarter)
    q0, q1 = months[0], months[-1]
    start = q0 - history
    needed = sorted(
        {n for r in catalog.rules for s in (r.lhs, r.rhs) for n in _formula.parse(s).names}
    )
    wide = panel.to_wide(upto(facts, q1), metrics=needed)
    periods = wide.index.get_level_values("period")
    ents = wide.index.get_level_values("entity_id")
    in_window = (periods >= start) & (periods <= q1)
    exp_pairs = set(zip(expected["entity_id"], expected["metric_id"], strict=True))
    names = entity_names(entities, lang)
    evals, rows = [], []
    for rule in catalog.rules:
        lhs_f, rhs_f = _formula.parse(rule.lhs), _formula.parse(rule.rhs)
        used = sorted(lhs_f.names | rhs_f.names)
        ent_ok = {e for e in set(ents) if all((e, m) in exp_pairs for m in used)}
        mask = in_window & np.asarray(ents.isin(list(ent_ok)))
        if rule.scope == "quarter":
            mask &= np.asarray(periods.month % 3 == 0)
        if not mask.any():
            continue
        lhs_all = lhs_f.evaluate_frame(wide).to_numpy()
        rhs_all = rhs_f.evaluate_frame(wide).to_numpy()
        lhs, rhs = lhs_all[mask], rhs_all[mask]
        tol = rule.tolerance
        with np.errstate(all="ignore"):
            dev = np.where(rhs != 0, lhs / rhs - 1.0, np.nan)
        finite = np.isfinite(lhs) & np.isfinite(rhs)
        if rule.check == "approx":
            ok = finite & (rhs != 0)
            breach = ok & (np.abs(dev) > tol + 1e-12)
        elif rule.check == "le":
            ok = finite
            breach = ok & (lhs > rhs * (1 + tol) + 1e-9 * np.abs(rhs))
        else:
            ok = finite
            breach = ok & (lhs < rhs * (1 - tol) - 1e-9 * np.abs(rhs))
        status = np.where(~ok, "cannot_evaluate", np.where(breach, "breach", "pass"))
        per = periods[mask]
        frame = pd.DataFrame(
            {
                "entity_id": ents[mask],
                "period": per,
                "rule_id": rule.id,
                "lhs": lhs,
                "rhs": rhs,
                "deviation": dev,
                "status": status,
                "in_quarter": per >= q0,
            }
        )
        if rule.check == "approx" and rule.scope == "month":
            frame["drift_z"] = _drift(lhs_all, rhs_all, ents, periods, q0)[mask]
            drift = (
                (frame["status"] == "pass")
                & frame["in_quarter"]
                & (frame["drift_z"].abs() > drift_z)
                & (frame["deviation"].abs() > tol / 2)
            )
            frame.loc[drift, "status"] = "drift"
        evals.append(frame)
        bad = frame[frame["status"] != "pass"]
        if bad.empty:
            continue
        refs = _refs(facts, bad, used, lineage)
        metric = checked_metric(rule, catalog)
        unit = rule_unit(rule, catalog)
        sides = {  # the two sides named by what they are (metric names, math signs)
            "lhs_words": formula_words(rule.lhs, catalog, lang),
            "rhs_words": formula_words(rule.rhs, catalog, lang),
        }
        for row, ref in zip(bad.itertuples(index=False), refs, strict=True):
            label = str(row.period.asfreq("Q")) if rule.scope == "quarter" else str(row.period)
            fmt = dict(
                entity=names.get(row.entity_id, row.entity_id),
                eid=row.entity_id,
                period=label,
                rule=rule.name(lang),
                rid=rule.id,
                lhs=fmt_amount(row.lhs, unit, lang),
                rhs=fmt_amount(row.rhs, unit, lang),
                dev=fmt_pct(row.deviation),
                tol=f"{tol:.0%}",
                **sides,
            )
            check = "rule"
            if row.status == "cannot_evaluate":
                severity, key, check = "info", "mapping.msg.rule_cannot", "rule_cannot_evaluate"
                fmt["why"] = t(
                    "mapping.msg.why_zero" if row.rhs == 0 else "mapping.msg.why_missing", lang
                )
            elif row.status == "drift":
                severity, key, check = "low", "mapping.msg.rule_drift", "rule_drift"
                fmt["z"] = f"{row.drift_z:.1f}"
            else:
                severity = rule.severity if row.in_quarter else downgrade(rule.severity)
                key = f"mapping.msg.rule_{rule.check}"
            rows.append(
                dict(
                    entity_id=row.entity_id,
                    period=label,
                    metric_id=metric,
                    rule_id=rule.id,
                    check=check,
                    severity=severity,
                    value=row.lhs,
                    expected=row.rhs,
                    deviation=row.deviation,
                    message=t(key, lang, **fmt),
                    source_refs=ref,
                )
            )
    cols = ["entity_id", "period", "rule_id", "lhs", "rhs", "deviation", "status", "in_quarter"]
    ev = pd.concat(evals, ignore_index=True) if evals else pd.DataFrame(columns=cols)
    return rows, ev


def _drift(lhs, rhs, ents, periods, q0: pd.Period, months: int = 24) -> np.ndarray:
    """Robust z of log(lhs / rhs) against the entity's own last ``months`` before the quarter."""
    with np.errstate(all="ignore"):
        d = pd.Series(np.log(lhs / rhs), index=ents)
    hist = np.asarray((periods < q0) & (periods >= q0 - months))
    h = d[hist & np.isfinite(d.to_numpy())]
    g = h.groupby(level=0)
    med = g.median()
    mad = (h - med.reindex(h.index).to_numpy()).abs().groupby(level=0).median() * 1.4826
    ok = (g.size() >= 6) & (mad > 0)
    med, mad = med[ok], mad[ok]
    z = (d.to_numpy() - med.reindex(ents).to_numpy()) / mad.reindex(ents).to_numpy()
    return np.where(np.isfinite(z), z, np.nan)


def _refs(
    facts: pd.DataFrame, bad: pd.DataFrame, metrics: list[str], lineage: Lineage | None = None
) -> list[str]:
    """``source_ref`` of the fact rows a rule read for each (entity, month) of ``bad``."""
    facts = facts_with_refs(facts, bad["entity_id"].unique(), lineage)
    if "source_ref" not in facts:
        return [""] * len(bad)
    keys = bad[["entity_id", "period"]].reset_index(drop=True).reset_index(names="_row")
    # one mask and the four columns read: not two copies of every column of the facts
    keep = facts["metric_id"].isin(metrics) & facts["source_ref"].notna()
    keep &= facts["entity_id"].isin(set(bad["entity_id"]))
    sub = facts.loc[keep, ["entity_id", "period", "metric_id", "source_ref"]]
    got = keys.merge(sub, on=["entity_id", "period"])
    got = got.sort_values(["_row", "metric_id"])
    joined = got.groupby("_row")["source_ref"].agg(lambda s: ";".join(map(str, s)))
    return [joined.get(i, "") for i in range(len(bad))]
