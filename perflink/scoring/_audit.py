"""Adjustment audit: every metric and score an approved adjustment moves (not API).

An approved adjustment changes the metric it names and, through the catalog's formulas,
every metric derived from it; a flow it adds carries its cost at the unit's own ratio
(:mod:`perflink.kpi._panels`). The audit has one row per adjustment x window x metric of the
adjusted unit whose window value moved: ``before``, ``change``, ``after`` in the metric's
unit, and for scored metrics their score before and after; ``carried_ratio`` names the ratio a
carried cost moved by. ``weighted_before`` / ``weighted_after`` are the weighted scores of the
unit's scored metrics that moved (the same on every row of one adjustment and window).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflink._report_format import fmt_number
from perflink.catalog import Catalog
from perflink.common import window_months
from perflink.kpi import format_gap
from perflink.labels import t

APPROVED = ["entity_id", "period", "metric_id", "amount", "reason", "approved_by"]
COLUMNS = [
    *APPROVED,
    "scope",
    "moved_id",
    "before",
    "change",
    "after",
    "carried_ratio",
    "score_before",
    "score",
    "weighted_before",
    "weighted_after",
    "message",
]
_EPS = 1e-9


def audit_table(card, adjustments, decomposition, catalog: Catalog, lang: str) -> pd.DataFrame:
    """The adjustment_audit table (see the module docstring)."""
    panels = decomposition.panels
    if adjustments is None or adjustments.empty or panels is None:
        return pd.DataFrame(columns=COLUMNS)
    q = pd.Period(decomposition.quarter, "Q")
    names = decomposition.names
    carried = panels.carried if panels.carried is not None else pd.DataFrame()
    rows = []
    for adj in adjustments.itertuples():
        ratios = {}
        if len(carried):
            mine = carried[
                (carried["entity_id"] == adj.entity_id)
                & (carried["metric_id"] == adj.metric_id)
                & (carried["period"].astype(str) == str(adj.period))
            ]
            ratios = dict(zip(mine["cost_id"], mine["ratio"], strict=True))
        for scope in ("quarter", "ytd"):
            start, end = window_months(q, scope)
            month = pd.Period(adj.period, "M")
            if not start <= month <= end:
                continue
            before = panels.window(panels.actual, catalog, start, end)
            after = panels.window(panels.adjusted, catalog, start, end)
            if adj.entity_id not in before.index:
                continue
            b, a = before.loc[adj.entity_id], after.loc[adj.entity_id]
            moved = [
                m
                for m in catalog.metrics
                if m in b and np.isfinite(a[m] - b[m]) and abs(a[m] - b[m]) > _EPS * (1 + abs(b[m]))
            ]
            if not moved:
                continue
            part = card[(card["entity_id"] == adj.entity_id) & (card["scope"] == scope)]
            scored = part.set_index("metric_id")
            hit = part[part["metric_id"].isin(moved)]
            w_before = float((hit["weight"] * hit["score_before"]).sum())
            w_after = float((hit["weight"] * hit["score"]).sum())
            head = _head(adj, catalog, names, lang, ratios, w_before, w_after)
            for m in moved:
                has = m in scored.index
                rows.append(
                    {
                        **{c: getattr(adj, c) for c in APPROVED},
                        "period": str(adj.period),
                        "scope": scope,
                        "moved_id": m,
                        "before": float(b[m]),
                        "change": float(a[m] - b[m]),
                        "after": float(a[m]),
                        "carried_ratio": ratios.get(m, np.nan),
                        "score_before": float(scored.at[m, "score_before"]) if has else np.nan,
                        "score": float(scored.at[m, "score"]) if has else np.nan,
                        "weighted_before": w_before,
                        "weighted_after": w_after,
                        "message": head + _line(m, b[m], a[m], catalog, lang),
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def _head(adj, catalog: Catalog, names: dict, lang: str, ratios: dict, wb: float, wa: float):
    metric = catalog.metrics[adj.metric_id]
    amount = format_gap(float(adj.amount), metric.unit, lang)  # the metric's own unit, signed
    text = t(
        "scoring.audit.head",
        lang,
        name=names.get(adj.entity_id, adj.entity_id),
        period=str(adj.period),
        metric=metric.name(lang),
        amount=amount,
        reason=adj.reason,
        approver=adj.approved_by,
        before=fmt_number(wb, None, lang),  # as the table beside it rounds the same figure
        after=fmt_number(wa, None, lang),
    )
    for cost, ratio in ratios.items():
        if np.isfinite(ratio):
            text += t(
                "scoring.audit.carried",
                lang,
                cost=catalog.metrics[cost].name(lang),
                base=metric.name(lang),
                ratio=fmt_number(ratio, "pct", lang),
            )
        else:
            text += t("scoring.audit.no_ratio", lang, cost=catalog.metrics[cost].name(lang))
    return text


def _line(metric: str, before: float, after: float, catalog: Catalog, lang: str) -> str:
    unit = catalog.metrics[metric].unit
    return t(
        "scoring.audit.moved",
        lang,
        metric=catalog.metrics[metric].name(lang),
        before=fmt_number(before, unit, lang),
        change=format_gap(after - before, unit, lang),
        after=fmt_number(after, unit, lang),
    )
