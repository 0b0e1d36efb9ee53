"""Status per subsidiary and data-quality index per source system. Not API."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink import formula as _formula
from perflink.catalog import Catalog
from perflink.common import SEVERITIES, SEVERITY_RANK
from perflink.labels import t
from perflink.mapping._common import (
    entity_names,
    findings_frame,
    formula_words,
    quarter_months,
    root_entity,
)
from perflink.mapping._views import StatusResult


def quality_table(
    cells: pd.DataFrame, evaluations: pd.DataFrame, catalog: Catalog, *, green: float, amber: float
) -> pd.DataFrame:
    """Per source system: expected, present, failing values and the index (review quarter)."""
    cols = ["source_system", "owner", "expected_values", "present", "missing", "failing",
            "completeness", "pass_rate", "dq_index", "status"]  # fmt: skip
    if cells.empty:
        return pd.DataFrame(columns=cols)
    failing = pd.DataFrame(columns=["entity_id", "period", "metric_id"])
    if len(evaluations):
        br = evaluations[(evaluations["status"] == "breach") & evaluations["in_quarter"]]
        if len(br):
            used = {
                r.id: sorted(_formula.parse(r.lhs).names | _formula.parse(r.rhs).names)
                for r in catalog.rules
            }
            br = br[["entity_id", "period", "rule_id"]].assign(metric_id=br["rule_id"].map(used))
            failing = br.explode("metric_id")[
                ["entity_id", "period", "metric_id"]
            ].drop_duplicates()
    key = ["entity_id", "period", "metric_id"]
    c = cells.merge(failing.assign(_fail=True), on=key, how="left")
    c["_fail"] = c["_fail"].fillna(False).astype(bool) & c["present"]
    out = (
        c.groupby("source_system")
        .agg(
            owner=("owner", lambda s: " / ".join(sorted(set(map(str, s))))),
            expected_values=("present", "size"),
            present=("present", "sum"),
            failing=("_fail", "sum"),
        )
        .reset_index()
    )
    out["missing"] = out["expected_values"] - out["present"]
    out["completeness"] = out["present"] / out["expected_values"]
    out["pass_rate"] = np.where(
        out["present"] > 0, (out["present"] - out["failing"]) / out["present"].clip(lower=1), np.nan
    )
    out["dq_index"] = (out["present"] - out["failing"]) / out["expected_values"]
    # the report's status words (perflink.common.ACTUAL_STATUSES): the index against its
    # target dq_green, narrowly missed down to dq_amber
    out["status"] = np.where(
        out["dq_index"] >= green, "met", np.where(out["dq_index"] >= amber, "near_miss", "missed")
    )
    return out[cols].sort_values("dq_index", kind="stable", ignore_index=True)


def status_table(
    parts: list[pd.DataFrame], entities: pd.DataFrame | None, quarter: pd.Period, lang: str
) -> StatusResult:
    """Per subsidiary: its units' findings of the quarter and the worst severity among them
    (``severity``: critical ... low, ``none`` without findings)."""
    group = root_entity(entities)
    cols = ["entity_id", "name", "units", "findings", "critical", "high", "medium", "low",
            "severity", "worst"]  # fmt: skip
    if entities is None or entities.empty or "kind" not in entities:
        return StatusResult(pd.DataFrame(columns=cols), lang, group)
    kind = dict(zip(entities["entity_id"], entities["kind"], strict=True))
    parent = dict(zip(entities["entity_id"], entities["parent_id"], strict=True))

    def subsidiary(eid: str) -> str:
        cur, hops = eid, 0
        while isinstance(cur, str) and cur and hops < 50:
            if kind.get(cur) == "subsidiary":
                return cur
            cur, hops = parent.get(cur), hops + 1
        return ""

    labels = {str(quarter), *map(str, quarter_months(quarter))}
    frames = [p for p in parts if len(p)]
    f = findings_frame(pd.concat(frames, ignore_index=True)) if frames else findings_frame([])
    f = f[f["period"].isin(labels) & (f["severity"] != "info") & (f["entity_id"] != "")]
    f = f.assign(subsidiary=f["entity_id"].map(subsidiary))
    subs = entities.loc[entities["kind"] == "subsidiary", "entity_id"].tolist()
    names = entity_names(entities, lang)
    n_units = pd.Series([subsidiary(e) for e in entities["entity_id"]]).value_counts()
    rows = []
    # one grouping, not a scan of every finding per subsidiary (hundreds in a large group);
    # each group keeps the findings' order, so its first message is the same
    by_sub = dict(tuple(f.groupby("subsidiary", sort=False)))
    for sub in subs:
        part = by_sub.get(sub, f.iloc[:0])
        counts = part["severity"].value_counts()
        worst = min((SEVERITY_RANK[s] for s in part["severity"]), default=9)
        rows.append(
            dict(
                entity_id=sub,
                name=names.get(sub, sub),
                units=int(n_units.get(sub, 1)) - 1,
                findings=len(part),
                **{s: int(counts.get(s, 0)) for s in SEVERITIES[:-1]},
                severity=SEVERITIES[worst] if worst < len(SEVERITIES) else "none",
                worst=part["message"].iloc[0] if len(part) else "",
            )
        )
    return StatusResult(pd.DataFrame(rows, columns=cols), lang, group)


def rule_overview(
    evaluations: pd.DataFrame, findings: pd.DataFrame, catalog: Catalog, lang: str
) -> pd.DataFrame:
    """One row per rule: its name, the rule in words, unit-months checked, breaches in the
    quarter and before, and the units with a breach in the quarter."""
    cols = ["rule_id", "rule", "test", "checks", "breaches_quarter", "breaches_before",
            "units_breached"]  # fmt: skip
    rows = []
    ev = evaluations if len(evaluations) else pd.DataFrame(columns=["rule_id", "status"])
    for rule in catalog.rules:
        mine = ev[ev["rule_id"] == rule.id]
        breach = mine[mine["status"] == "breach"]
        in_q = breach[breach["in_quarter"].astype(bool)] if len(breach) else breach
        tol = f"{rule.tolerance:.0%}"
        rows.append(
            dict(
                rule_id=rule.id,
                rule=rule.name(lang),
                test=t(
                    "mapping.text.test",
                    lang,
                    lhs=formula_words(rule.lhs, catalog, lang),
                    sign=t(f"mapping.value.check_sign.{rule.check}", lang),
                    rhs=formula_words(rule.rhs, catalog, lang),
                    tol=f"±{tol}" if rule.check == "approx" else tol,
                ),
                checks=len(mine),
                breaches_quarter=len(in_q),
                breaches_before=len(breach) - len(in_q),
                units_breached=int(in_q["entity_id"].nunique()) if len(in_q) else 0,
            )
        )
    return pd.DataFrame(rows, columns=cols)
