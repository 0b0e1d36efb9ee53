"""Headline figures, the per-subsidiary chain and suggested actions (not API; see summary).

Everything here reads the tables the other tasks saved (``attribution``, ``scorecard``,
``forecast_deviation``, ``data_quality``) and only combines them; no analysis is redone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from perflink import labels
from perflink._report_format import fmt_figure, fmt_number
from perflink.catalog import Catalog
from perflink.common import (
    ACTUAL_STATUSES,
    OUTLOOK_STATUSES,
    actual_status,
    outlook_status,
    severities_from,
)
from perflink.kpi import compare
from perflink.options import StatusOptions

#: Colour rank of every status word (0 green, 1 amber, 2 red): the worst of a chain's steps.
STATUS_RANK: dict[str, int] = {
    **{s: i for i, s in enumerate(ACTUAL_STATUSES)},
    **{s: i for i, s in enumerate(OUTLOOK_STATUSES)},
}


def worst(*cols: pd.Series) -> pd.Series:
    """Row-wise the status of the worst step (by colour: red before amber before green;
    the first such step on ties); missing ignored."""
    frame = pd.concat([c.astype(object) for c in cols], axis=1)
    ranks = frame.apply(lambda c: c.map(STATUS_RANK)).astype(float)

    def pick(i: int) -> object:
        r = ranks.iloc[i]
        if r.isna().all():
            return None
        return frame.iloc[i, int(np.nanargmax(r.to_numpy()))]

    return pd.Series([pick(i) for i in range(len(frame))], index=frame.index, dtype=object)


def _in_zh(name: str, lang: str) -> str:
    """A name to set between Chinese characters: a space on each side that is Latin
    (``全年 EBIT 预计``), as Chinese typesetting spaces Latin words."""
    if lang != "zh" or not name:
        return name
    left = " " if name[:1].isascii() and not name[:1].isspace() else ""
    right = " " if name[-1:].isascii() and not name[-1:].isspace() else ""
    return left + name + right


def _tidy(text: str) -> str:
    """One space where a padded name meets a space of the template."""
    return re.sub(r" {2,}", " ", text).strip()


def _higher(metric_ids: pd.Series, catalog: Catalog) -> pd.Series:
    return metric_ids.map(
        lambda m: m not in catalog.metrics or catalog.metrics[m].direction == "higher"
    )


def outlook(deviation: pd.DataFrame, catalog: Catalog, status: StatusOptions) -> np.ndarray:
    """Outlook status of forecast rows: from ``p_meet_budget`` and the deviation signed so
    that positive is favourable (:func:`perflink.common.outlook_status`)."""
    sign = np.where(_higher(deviation["metric_id"], catalog), 1.0, -1.0)
    dev = sign * pd.to_numeric(deviation["deviation_pct"], errors="coerce").to_numpy(float)
    p = pd.to_numeric(deviation["p_meet_budget"], errors="coerce").to_numpy(float)
    return outlook_status(p, dev, options=status)


def tier1(
    attribution: pd.DataFrame | None,
    root: str,
    catalog: Catalog,
    lang: str,
    *,
    status: StatusOptions,
) -> pd.DataFrame:
    """The group's tier-1 results vs target for the quarter and year to date.

    ``status`` is :func:`perflink.common.actual_status` (met / near_miss / missed) on the
    metric's scoring basis: ``basis`` ``points`` (rates, growth: the gap in points) or
    ``ratio`` (completion = actual / target; NaN where the target is at or below zero,
    whose gap is then shown instead)."""
    cols = ["metric_id", "metric", "unit", "scope", "actual", "target", "basis", "completion"]
    cols += ["status"]
    if attribution is None or attribution.empty:
        return pd.DataFrame(columns=cols)
    a = attribution
    tier1_ids = set(catalog.tier(1)) if callable(getattr(catalog, "tier", None)) else set()
    sel = (a["entity_id"] == root) & (a["link"] == "total") & (a["base"] == "target")
    if tier1_ids:
        sel &= a["metric_id"].isin(tier1_ids)
    d = a[sel].rename(columns={"driver_actual": "actual", "driver_base": "target"})
    d = d[["metric_id", "scope", "actual", "target"]].reset_index(drop=True)
    # the KPI page's own comparison: same basis, completion range and status for the figure
    compared = compare(d["actual"], d["target"], d["metric_id"], catalog, status=status)
    d[["basis", "completion", "status"]] = compared[["basis", "completion", "status"]]
    d["metric"] = d["metric_id"].map(lambda m: _metric_name(catalog, m, lang))
    d["unit"] = d["metric_id"].map(lambda m: m in catalog.metrics and catalog.metrics[m].unit or "")
    return d[cols]


def _metric_name(catalog: Catalog, metric_id: str, lang: str) -> str:
    m = catalog.metrics.get(metric_id)
    return m.name(lang) if m is not None else str(metric_id)


def projection(
    deviation: pd.DataFrame | None,
    entity_id: str,
    catalog: Catalog,
    lang: str,
    *,
    status: StatusOptions,
) -> pd.DataFrame:
    """Projected full year vs budget with its 80% interval for one entity (the group);
    amounts in each metric's own ``unit``; ``status`` the outlook (:func:`outlook`: on track
    / at risk / off track from the probability of meeting budget shown beside it)."""
    cols = ["metric_id", "metric", "unit", "ytd_actual", "projected", "lo_80", "hi_80"]
    cols += ["budget", "deviation_pct", "p_meet_budget", "status"]
    if deviation is None or deviation.empty:
        return pd.DataFrame(columns=cols)
    d = deviation[deviation["entity_id"] == entity_id].copy()
    d["status"] = outlook(d, catalog, status) if len(d) else pd.Series(dtype=object)
    d["metric"] = d["metric_id"].map(lambda m: _metric_name(catalog, m, lang))
    d["unit"] = d["metric_id"].map(lambda m: m in catalog.metrics and catalog.metrics[m].unit or "")
    return d.reindex(columns=cols).reset_index(drop=True)


def unit_scores(scorecard: pd.DataFrame | None, entities: pd.DataFrame) -> pd.DataFrame:
    """Year-to-date total score per department (sum of weighted scores)."""
    cols = ["entity_id", "parent_id", "score"]
    if scorecard is None or scorecard.empty:
        return pd.DataFrame(columns=cols)
    s = scorecard[scorecard["scope"] == "ytd"].groupby("entity_id")["weighted_score"].sum()
    units = entities[entities["kind"] == "department"][["entity_id", "parent_id"]]
    out = units.merge(s.rename("score").reset_index(), on="entity_id", how="inner")
    return out[cols].reset_index(drop=True)


def distribution(scores: pd.DataFrame) -> pd.DataFrame:
    """Quantiles of the units' YTD scores: n, min, p25, median, p75, max, share >= 100."""
    cols = ["n_units", "score_min", "score_p25", "score_median", "score_p75", "score_max"]
    cols += ["share_100"]
    if scores.empty:
        return pd.DataFrame(columns=cols)
    s = scores["score"].astype(float)
    q = s.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).to_numpy()
    row = [int(s.size), *q.tolist(), float((s >= 100).mean())]
    return pd.DataFrame([row], columns=cols)


def chain(
    scorecard: pd.DataFrame | None,
    deviation: pd.DataFrame | None,
    entities: pd.DataFrame,
    catalog: Catalog,
    lang: str,
    *,
    metric_id: str,
    status: StatusOptions,
) -> pd.DataFrame:
    """Per subsidiary: business completion -> financial completion -> score -> projected
    full-year deviation of ``metric_id``, each with a status, and the worst of them.

    The completions are the scheme-weighted attainments of the subsidiary's own metrics
    (year to date, each on its catalog scoring basis, ``attainment`` of the scorecard; its
    ``completion`` in older tables). The first three steps are actuals against target
    (:func:`perflink.common.actual_status` of the completion against 100%, the score against
    100 points: met / near_miss / missed);
    the projection is an outlook (:func:`outlook` from ``p_meet_budget``, shown beside it).

    ``metric_id`` ``""`` (no projection metric: the catalog has neither a profit nor a sales
    role) or a metric the forecast did not project leaves the last step empty."""
    subs = entities[entities["kind"] == "subsidiary"][["entity_id", "name_zh", "name_en"]]
    out = pd.DataFrame({"entity_id": subs["entity_id"].to_numpy()})
    out["entity"] = subs[f"name_{lang}"].to_numpy()
    out["business_completion"] = np.nan
    out["financial_completion"] = np.nan
    out["score"] = np.nan
    if scorecard is not None and not scorecard.empty:
        y = scorecard[(scorecard["scope"] == "ytd") & scorecard["entity_id"].isin(out["entity_id"])]
        # each metric on its scoring basis: the attainment the scheme scores where the
        # scorecard has it (a rate scored in points has no completion ratio), weighted over
        # the metrics that have a figure, so a missing one does not count as zero
        done = y["attainment"] if "attainment" in y else y["completion"]
        done = pd.to_numeric(done, errors="coerce")
        weight = y["weight"].where(done.notna(), 0.0)
        y = y.assign(wc=weight * done.fillna(0.0), weight=weight)
        by = y.groupby(["entity_id", "category"])[["wc", "weight"]].sum()
        comp = (by["wc"] / by["weight"].replace(0, np.nan)).unstack("category")
        for cat in ("business", "financial"):
            if cat in comp:
                out[f"{cat}_completion"] = out["entity_id"].map(comp[cat])
        out["score"] = out["entity_id"].map(y.groupby("entity_id")["weighted_score"].sum())
    out["projection_metric"] = metric_id
    out["fy_deviation_pct"] = np.nan
    out["p_meet_budget"] = np.nan
    if deviation is not None and not deviation.empty:
        d = deviation[deviation["metric_id"] == metric_id].set_index("entity_id")
        out["fy_deviation_pct"] = out["entity_id"].map(d["deviation_pct"])
        out["p_meet_budget"] = out["entity_id"].map(d["p_meet_budget"])

    def met(values: pd.Series, target: float) -> np.ndarray:
        return actual_status(values, target, points=False, higher=True, options=status)

    out["status_business"] = met(out["business_completion"], 1.0)
    out["status_financial"] = met(out["financial_completion"], 1.0)
    out["status_score"] = met(out["score"], 100.0)
    proj = out.assign(metric_id=metric_id, deviation_pct=out["fy_deviation_pct"])
    out["status_projection"] = outlook(proj, catalog, status) if len(out) else None
    out["status"] = worst(
        out["status_business"],
        out["status_financial"],
        out["status_score"],
        out["status_projection"],
    )
    return out


#: The catalog roles each suggested-action rule needs (a rule without them does not run).
ACTION_ROLES: dict[str, tuple[str, ...]] = {"collections": ("sales", "cash_collection")}


def skipped_actions(enabled: tuple[str, ...], catalog: Catalog, lang: str) -> list[str]:
    """One sentence per enabled action rule that cannot run because the catalog lacks a
    metric role it needs (the collections rule without a sales or cash-collection metric)."""
    notes = []
    for action, roles in ACTION_ROLES.items():
        missing = [r for r in roles if action in enabled and catalog.role(r) is None]
        if missing:
            sep = "、" if lang == "zh" else " or "
            notes.append(
                labels.t(
                    "summary.actions.skipped", lang,
                    rule=labels.t(f"summary.action_name.{action}", lang),
                    missing=sep.join(labels.t(f"summary.role.{r}", lang) for r in missing),
                )
            )  # fmt: skip
    return notes


def chain_note(metric_id: str, deviation: pd.DataFrame | None) -> str | None:
    """Label key of the sentence saying why the chain has no projection step, else None."""
    if not metric_id:
        return "summary.chain.no_projection"
    if deviation is None or deviation.empty or metric_id not in set(deviation["metric_id"]):
        return "summary.chain.not_forecast"
    return None


def actions(
    findings: pd.DataFrame,
    scorecard: pd.DataFrame | None,
    deviation: pd.DataFrame | None,
    quality: pd.DataFrame | None,
    names: Mapping[str, str],
    catalog: Catalog,
    lang: str,
    opts,
    quarter: str,
    top: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Suggested actions from the rules in ``summary.actions`` (labelled as suggestions).

    ``escalate`` looks only at the findings of the top list (``top``), the others at every
    open finding. ``collections`` compares the quarter's completion of the catalog's sales
    metric (``role: sales``) with its cash-collection metric (``role: cash_collection``);
    without both roles it does not run (:func:`skipped_actions` says so).

    Each row: ``action_id, entity_id, period, metric_id, rule_id, severity, message, basis``
    (the numbers the rule fired on) and ``finding_id`` where the action answers a finding.
    """
    rows: list[dict] = []
    enabled = set(opts.actions)

    def add(action, entity, *, metric=None, rule=None, severity="info", fid=None, **fmt):
        if isinstance(fmt.get("name"), str):  # a Latin name between Chinese words is spaced
            fmt["name"] = _in_zh(fmt["name"], lang)
        rows.append(
            dict(
                action_id=action,
                entity_id=entity,
                entity=names.get(str(entity), str(entity or "")),
                period=quarter,
                metric_id=metric,
                rule_id=rule,
                severity=severity,
                message=_tidy(labels.t(f"summary.action.{action}", lang, **fmt)),
                finding_id=fid,
                # the same suggestion as a decision for the decision page (short, imperative)
                decision=_tidy(labels.t(f"summary.decision.{action}", lang, **fmt)),
                source_system=fmt.get("system"),
            )
        )

    sales, cash = catalog.role("sales"), catalog.role("cash_collection")
    if "collections" in enabled and sales and cash and scorecard is not None and len(scorecard):
        q = scorecard[scorecard["scope"] == "quarter"]
        piv = q.pivot_table(index="entity_id", columns="metric_id", values="completion")
        if {sales, cash} <= set(piv.columns):
            hit = piv[
                (piv[sales] >= opts.sales_completion) & (piv[cash] < opts.collections_completion)
            ]
            for e, r in hit.iterrows():
                add(
                    "collections", e, metric=cash, severity="medium",
                    name=names.get(str(e), e), sales=f"{r[sales]:.0%}", cash=f"{r[cash]:.0%}",
                    sales_name=_metric_name(catalog, sales, lang),
                    cash_name=_metric_name(catalog, cash, lang),
                )  # fmt: skip
    if "budget" in enabled and deviation is not None and not deviation.empty:
        d = deviation[
            deviation["severity"].isin(severities_from("medium"))
            & ((1.0 - deviation["p_meet_budget"]) > opts.miss_probability)
            & deviation["kind"].isin(["group", "subsidiary"])
        ]
        for r in d.itertuples():
            add(
                "budget", r.entity_id, metric=r.metric_id, severity=r.severity,
                name=names.get(str(r.entity_id), r.entity_id),
                metric_name=_metric_name(catalog, r.metric_id, lang),
                p=fmt_number(1.0 - r.p_meet_budget, "pct", lang),
                dev=fmt_figure(r.deviation_pct, "+.1%"),
            )  # fmt: skip
    by_kind = {
        "caliber": ("mapping", "caliber"),
        "weak_driver": ("mapping", "driver"),
        "scheme": ("kpi", "scheme"),
        "bonus": ("kpi", "bonus_overrun"),
    }
    for action, (task, kind) in by_kind.items():
        if action not in enabled or findings.empty:
            continue
        sel = findings[(findings["source_task"] == task) & (findings["finding_kind"] == kind)]
        for r in sel.itertuples():
            add(
                action, r.entity_id, metric=r.metric_id, rule=r.rule_id, severity=r.severity,
                fid=r.finding_id, name=r.entity or r.entity_id or "",
                ref=_subject_words(action, r, catalog, lang),
            )  # fmt: skip
    if "data_quality" in enabled and quality is not None and not quality.empty:
        for r in quality[quality["dq_index"] < opts.dq_red].itertuples():
            add(
                "data_quality", None, severity="medium", system=r.source_system,
                index=f"{r.dq_index:.1%}", failing=int(r.failing), missing=int(r.missing),
            )  # fmt: skip
    top = findings if top is None else top
    if "escalate" in enabled and "quarters_open" in top:
        old = top[
            (top["quarters_open"] >= opts.escalate_quarters) & (top["loop_status"] == "persisting")
        ]
        for r in old.itertuples():
            add(
                "escalate", r.entity_id, metric=r.metric_id, rule=r.rule_id,
                severity=r.severity, fid=r.finding_id, name=r.entity or r.entity_id or "",
                n=int(r.quarters_open), since=r.first_seen,
            )  # fmt: skip
    cols = ["action_id", "entity_id", "entity", "period", "metric_id", "rule_id", "severity"]
    cols += ["message", "finding_id", "decision", "source_system"]
    return pd.DataFrame(rows, columns=cols)


def _subject_words(action: str, finding: object, catalog: Catalog, lang: str) -> str:
    """What a suggestion is about, in words of the page: a rule by its name, a mapping as
    "driver → finance metric" with metric names; never an id (a scheme is named by its
    unit, so it needs none)."""
    rule_id = getattr(finding, "rule_id", None)
    metric_id = getattr(finding, "metric_id", None)
    if action == "caliber" and isinstance(rule_id, str):
        known = {r.id: r for r in catalog.rules}
        if rule_id in known:
            return known[rule_id].name(lang)
    if action == "weak_driver":
        maps = {m.id: m for m in catalog.mappings}
        for key in (rule_id, getattr(finding, "subject", None)):
            if isinstance(key, str) and key in maps:
                m = maps[key]
                driver, target = (
                    _metric_name(catalog, m.driver, lang),
                    _metric_name(catalog, m.target, lang),
                )
                return f"{driver} → {target}"
    if isinstance(metric_id, str) and metric_id in catalog.metrics:
        return _metric_name(catalog, metric_id, lang)
    return ""
