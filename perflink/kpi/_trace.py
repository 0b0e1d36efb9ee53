"""Missed tier-1 targets traced down to their business cause (not API).

A missed target that the approved adjustments (through the formulas) bring to met or narrowly
missed stays a finding at ``info`` severity and says so: the review ranks the adjusted figure.

For a tier-1 metric whose status is ``missed`` (:func:`perflink.common.actual_status` with the
review's ``status:`` block: below ``near_miss`` of its target by ratio, or more than
``near_miss_points`` below it in points), the trace takes the tier-2 driver
with the most adverse contribution, then among that driver's statistical (mapping) drivers the
most adverse one and, one step further, that driver's own most adverse mapping driver
(sales <- orders <- new customers, as the catalog maps them); without an adverse mapping
driver it falls back to the identity drivers (quantity, price).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink._report_format import fmt_number
from perflink.catalog import Catalog
from perflink.common import MATERIALITY as _MATERIALITY
from perflink.kpi._basis import compare, format_gap
from perflink.labels import t

COLUMNS = [
    "entity_id",
    "period",
    "metric_id",
    "rule_id",
    "severity",
    "message",
    "scope",
    "value",
    "expected",
    "completion",
    "gap",
    "driver_id",
    "cause_id",
    "cause_completion",
    "cause_contribution",
    "sub_cause_id",
]

#: A missed tier-1 target is ``high`` when its shortfall is material to the whole group: a
#: money metric missed by at least this share of the group's profit target of the same
#: window (the catalog's ``role: profit`` metric; without one, the metric's own group target)
#: -- 5% of profit, the usual overall materiality of an audit. Every other missed target
#: (a rate, a growth, a per-head figure, or a money shortfall below that) is ``medium``:
#: a unit's noise around its budget is not a group-level problem, and a rate's money is in
#: the profit finding of the same entity. A metric built on the profit (growth, a return,
#: per head, EVA), or one the profit is built from (a contribution), missed where the
#: entity's profit is missed too is ``low``: the same problem, whose finding is the profit's.
MATERIALITY = _MATERIALITY  # perflink.common.MATERIALITY, shared with the forecast


def _worst(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = rows[rows["adverse"] < 0]
    if rows.empty:
        return rows
    return rows.loc[rows.groupby(keys)["adverse"].idxmin()]


def missed_findings(tier1, attribution, catalog: Catalog, entities, status, lang) -> pd.DataFrame:
    """Findings for missed tier-1 targets (base target), with the traced cause."""
    miss = tier1[(tier1["base"] == "target") & (tier1["status"] == "missed")]
    if miss.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["entity_id", "scope", "metric_id"]
    # the rows and columns the trace reads, before the join: the whole attribution of a
    # 2,000-unit group joined at once took half a GB
    used = ["driver_id", "parent_id", "link", "tier", "lag", "contribution", "driver_actual",
            "driver_base"]  # fmt: skip
    # the rows of the missed targets picked from the keys of the rows read before the
    # columns are copied (what an inner merge on the keys kept, in the same order: the keys
    # of ``miss`` are unique): copies of half the table, then of its rows read, took 0.3 GB
    # at 10,000 units
    rows = (attribution["base"] == "target") & ~attribution["driver_id"].str.startswith("_")
    rows &= (attribution["lag"] == 0) | (attribution["link"] == "mapping")
    read = attribution.loc[rows.to_numpy(), keys]
    missed = pd.MultiIndex.from_frame(read).isin(pd.MultiIndex.from_frame(miss[keys]))
    a = attribution.loc[read.index[missed], [*keys, *used]].reset_index(drop=True)
    del read
    sign = a["metric_id"].map(lambda m: 1.0 if catalog.metrics[m].direction == "higher" else -1.0)
    a = a.assign(adverse=a["contribution"] * sign)
    tier2 = _worst(a[(a["link"] == "formula") & (a["tier"] == 2)], keys)
    tier2 = tier2[[*keys, "driver_id"]]
    kids = a.merge(tier2.rename(columns={"driver_id": "parent_id"}), on=[*keys, "parent_id"])
    cause = _worst(kids[kids["link"] == "mapping"], keys)
    fallback = _worst(kids[kids["link"] == "identity"], keys)
    cause = pd.concat([cause, fallback]).drop_duplicates(keys, keep="first")
    cause = cause[[*keys, "driver_id", "contribution", "driver_actual", "driver_base"]]
    cause = cause.rename(
        columns={
            "driver_id": "cause_id",
            "contribution": "cause_contribution",
            "driver_actual": "cause_actual",
            "driver_base": "cause_base",
        }
    )
    sub = a.merge(
        cause[[*keys, "cause_id"]].rename(columns={"cause_id": "parent_id"}),
        on=[*keys, "parent_id"],
    )
    sub = _worst(sub[sub["link"] == "mapping"], keys)[[*keys, "driver_id"]]
    sub = sub.rename(columns={"driver_id": "sub_cause_id"})
    out = miss.merge(tier2, on=keys, how="left").merge(cause, on=keys, how="left")
    out = out.merge(sub, on=keys, how="left")
    has_cause = out["cause_id"].notna()
    cause_ids = out["cause_id"].where(has_cause, out["metric_id"])
    cause = compare(out["cause_actual"], out["cause_base"], cause_ids, catalog, status=status)
    out["cause_completion"] = cause["completion"].where(has_cause)
    out["cause_gap"] = cause["gap"].where(has_cause)
    out["rule_id"] = "tier1_missed"
    out["value"], out["expected"] = out["actual"], out["target"]  # the metric's own unit
    out["severity"] = severity(out, tier1, catalog, entities)
    col = "name_zh" if lang == "zh" else "name_en"
    names = dict(zip(entities["entity_id"], entities[col], strict=False))
    out["message"] = [_message(r, catalog, names, lang) for r in out.itertuples()]
    if "status_adjusted" in out:  # an approved adjustment (through the formulas) meets it
        cleared = out["status_adjusted"].isin(["met", "near_miss"]).to_numpy()
        out.loc[cleared, "severity"] = "info"
        unit = out["metric_id"].map(lambda m: catalog.metrics[m].unit)
        out.loc[cleared, "message"] = [
            msg
            + t(
                "kpi.finding.adjusted",
                lang,
                actual=fmt_number(a, "pct" if u == "ratio" else u, lang),
                status=t(f"report.value.status.{st}", lang),
            )
            for msg, a, u, st in zip(
                out.loc[cleared, "message"],
                out.loc[cleared, "actual_adjusted"],
                unit[cleared],
                out.loc[cleared, "status_adjusted"],
                strict=True,
            )
        ]
    return out[COLUMNS].reset_index(drop=True)


def severity(
    out: pd.DataFrame, tier1: pd.DataFrame, catalog: Catalog, entities: pd.DataFrame
) -> np.ndarray:
    """``high`` for a money shortfall material to the group (:data:`MATERIALITY`), else
    ``medium``, for missed tier-1 rows of ``out``."""
    roots = entities.loc[entities["parent_id"].isna(), "entity_id"]
    if out.empty or roots.empty:
        return np.full(len(out), "medium", dtype=object)
    rows = tier1[(tier1["entity_id"] == roots.iloc[0]) & (tier1["base"] == "target")]
    group = rows.set_index(["scope", "metric_id"])["target"].abs()
    profit = catalog.role("profit")
    money = out["metric_id"].map(lambda m: catalog.metrics[m].unit_info.is_money)
    profit_money = profit is not None and catalog.metrics[profit].unit_info.is_money

    def scale(scope: str, metric: str) -> float:
        key = (scope, profit if profit_money else metric)
        return float(group.get(key, np.nan))

    bases = np.array([scale(sc, m) for sc, m in zip(out["scope"], out["metric_id"], strict=True)])
    with np.errstate(invalid="ignore"):
        material = money.to_numpy(dtype=bool) & (out["gap"].abs().to_numpy() >= MATERIALITY * bases)
    sev = np.where(material, "high", "medium").astype(object)
    # one problem, one finding at its severity: a metric built on the profit (its growth,
    # its return on a balance, per head, after a capital charge) or one the profit is built
    # from (a contribution, a gross margin) missed where the profit itself is missed is
    # that miss seen again: low, evidence beside the profit finding, which traces the
    # same shortfall to the same cause (a clean retail group's contribution and operating
    # income were two high findings of one sales shortfall)
    if profit is not None:
        keys = list(zip(out["entity_id"], out["scope"], strict=True))
        profit_missed = {k for k, m in zip(keys, out["metric_id"], strict=True) if m == profit}
        parts = _inputs(profit, catalog)
        follows = [
            m != profit and k in profit_missed and (m in parts or profit in _inputs(m, catalog))
            for k, m in zip(keys, out["metric_id"], strict=True)
        ]
        sev = np.where(follows, "low", sev)
    return sev


def _inputs(metric: str, catalog: Catalog, depth: int = 0) -> set[str]:
    """Every metric ``metric``'s formula reads, directly or through derived metrics."""
    formula = catalog.formulas.get(metric)
    if formula is None or depth > 20:
        return set()
    out = set(formula.names)
    for name in formula.names:
        out |= _inputs(name, catalog, depth + 1)
    return out


def _message(r, catalog: Catalog, names: dict, lang: str) -> str:
    def name(m):
        return catalog.metrics[m].name(lang) if isinstance(m, str) else "—"

    unit = catalog.metrics[r.metric_id].unit
    fmt = "pct" if unit == "ratio" else unit
    common = dict(
        entity=names.get(r.entity_id, r.entity_id),
        scope=t(f"kpi.scope.{r.scope}", lang),
        metric=name(r.metric_id),
        actual=fmt_number(r.actual, fmt, lang),
        target=fmt_number(r.target, fmt, lang),
    )
    if np.isfinite(r.completion):
        text = t(
            "kpi.finding.missed", lang, completion=fmt_number(r.completion, "pct", lang), **common
        )
    else:  # a rate, a growth or a target at or near zero: the gap, not a ratio
        text = t("kpi.finding.missed_gap", lang, gap=format_gap(r.gap, unit, lang), **common)
    if isinstance(r.driver_id, str):
        text += t("kpi.finding.driver", lang, driver=name(r.driver_id))
    if isinstance(r.cause_id, str):
        contribution = fmt_number(r.cause_contribution, fmt, lang)
        if np.isfinite(r.cause_completion):
            done = fmt_number(r.cause_completion, "pct", lang)
            text += t(
                "kpi.finding.cause",
                lang,
                cause=name(r.cause_id),
                completion=done,
                contribution=contribution,
            )
        else:
            gap = format_gap(r.cause_gap, catalog.metrics[r.cause_id].unit, lang)
            text += t(
                "kpi.finding.cause_gap",
                lang,
                cause=name(r.cause_id),
                gap=gap,
                contribution=contribution,
            )
    if isinstance(r.sub_cause_id, str):
        text += t("kpi.finding.sub_cause", lang, cause=name(r.sub_cause_id))
    return text
