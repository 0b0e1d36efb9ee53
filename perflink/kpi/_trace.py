"""Missed tier-1 targets traced down to their business cause (not API).

For a tier-1 metric below ``miss_threshold`` of its target, the trace takes the tier-2 driver
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
from perflink.labels import t

COLUMNS = [
    "entity_id",
    "period",
    "metric_id",
    "rule_id",
    "severity",
    "message",
    "scope",
    "completion",
    "gap",
    "driver_id",
    "cause_id",
    "cause_completion",
    "cause_contribution",
    "sub_cause_id",
]


def _worst(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rows = rows[rows["adverse"] < 0]
    if rows.empty:
        return rows
    return rows.loc[rows.groupby(keys)["adverse"].idxmin()]


def missed_findings(tier1, attribution, catalog: Catalog, entities, options, lang) -> pd.DataFrame:
    """Findings for red tier-1 completions (base target), with the traced cause."""
    miss = tier1[(tier1["base"] == "target") & (tier1["status"] == "red")]
    if miss.empty:
        return pd.DataFrame(columns=COLUMNS)
    keys = ["entity_id", "scope", "metric_id"]
    a = attribution[attribution["base"] == "target"]
    a = a.merge(miss[keys], on=keys, how="inner")
    sign = a["metric_id"].map(lambda m: 1.0 if catalog.metrics[m].direction == "higher" else -1.0)
    a = a.assign(adverse=a["contribution"] * sign)
    a = a[~a["driver_id"].str.startswith("_") & ((a["lag"] == 0) | (a["link"] == "mapping"))]
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
    out["cause_completion"] = out["cause_actual"] / out["cause_base"]
    out["gap"] = out["actual"] - out["target"]
    out["rule_id"] = "tier1_missed"
    low = out["completion"] < options.miss_threshold - 0.10
    out["severity"] = np.where(low, "high", "medium")
    col = "name_zh" if lang == "zh" else "name_en"
    names = dict(zip(entities["entity_id"], entities[col], strict=False))
    out["message"] = [_message(r, catalog, names, lang) for r in out.itertuples()]
    return out[COLUMNS].reset_index(drop=True)


def _message(r, catalog: Catalog, names: dict, lang: str) -> str:
    def name(m):
        return catalog.metrics[m].name(lang) if isinstance(m, str) else "—"

    unit = catalog.metrics[r.metric_id].unit
    fmt = "pct" if unit == "ratio" else unit
    text = t(
        "kpi.finding.missed",
        lang,
        entity=names.get(r.entity_id, r.entity_id),
        scope=t(f"kpi.scope.{r.scope}", lang),
        metric=name(r.metric_id),
        completion=fmt_number(r.completion, "pct", lang),
        actual=fmt_number(r.actual, fmt, lang),
        target=fmt_number(r.target, fmt, lang),
    )
    if isinstance(r.driver_id, str):
        text += t("kpi.finding.driver", lang, driver=name(r.driver_id))
    if isinstance(r.cause_id, str):
        text += t(
            "kpi.finding.cause",
            lang,
            cause=name(r.cause_id),
            completion=fmt_number(r.cause_completion, "pct", lang),
            contribution=fmt_number(r.cause_contribution, fmt, lang),
        )
    if isinstance(r.sub_cause_id, str):
        text += t("kpi.finding.sub_cause", lang, cause=name(r.sub_cause_id))
    return text
