"""Scorecards, assessment scores, tenure progress and bonus linkage (notebook 02).

:func:`run` scores an open review (after :func:`perflink.kpi.run`, whose decomposition it
reuses). :func:`scorecard` scores every entity on its centre type's scheme (an
entity-specific scheme overrides the default; subsidiaries and the group use the
profit-centre scheme) for the review quarter and year-to-date, applies approved adjustments with an audit line, checks the
schemes against the policy (:func:`perflink.catalog.check_schemes`: a broken scheme is a
finding, not a crash), links scores to bonuses (base x coefficient of the YTD score) and
compares payouts with the bonus pools. Scoring basis (issue 15 item 4): each metric is
compared with its target on its catalog basis (``scoring_basis``): by ratio for positive
amounts, in points for rates and growth, in points of ``|target|`` for a target at or below
zero; the completion shown is :func:`perflink.kpi.completion` (only where a ratio means
something, 0-200%), the scheme rules score :func:`perflink.kpi.attainment` and every score
stays within 0 .. 100 x the scheme's cap; status (met / narrowly missed / missed) is
:func:`perflink.common.actual_status` with the review's ``status:`` block. Scoring rules: see
:mod:`perflink.scoring._rules`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from perflink import kpi
from perflink.catalog import Catalog, check_schemes
from perflink.common import task_options, window_months
from perflink.errors import InputError
from perflink.execution import releases_memory
from perflink.kpi import DecompositionResult, compare
from perflink.labels import t, value_label
from perflink.options import KpiOptions, StatusOptions
from perflink.scoring._audit import audit_table
from perflink.scoring._exec import tenure_table
from perflink.scoring._manager import manager_table
from perflink.scoring._result import ManagerAssessmentResult, ScorecardResult
from perflink.scoring._rules import coefficient, parse_params, score_frame
from perflink.scoring._tenure import bonus_table, findings_table
from perflink.scoring._xlsx import write_scorecard_xlsx

if TYPE_CHECKING:
    from perflink.review import Review

__all__ = [
    "ManagerAssessmentResult",
    "ScorecardResult",
    "assess_managers",
    "assess_managers_review",
    "coefficient",
    "run",
    "scheme_names",
    "score_review",
    "scorecard",
    "write_scorecard_xlsx",
]


def scorecard(
    decomposition: DecompositionResult,
    schemes: pd.DataFrame,
    entities: pd.DataFrame,
    catalog: Catalog,
    *,
    adjustments: pd.DataFrame | None = None,
    bonus: pd.DataFrame | None = None,
    options: KpiOptions | None = None,
    lang: str | None = None,
    status: StatusOptions | None = None,
) -> ScorecardResult:
    """Score every entity on its scheme, link the scores to bonuses and check the pools.

    Parameters
    ----------
    decomposition : result of :func:`perflink.kpi.decompose` (its panels are reused).
    schemes : schemes table (``scheme_id, center_type, entity_id, metric_id, weight, category,
        rule, floor, cap, rule_params``).
    entities : entities table (``entity_id, parent_id, kind, center_type, manager``, names).
    catalog : the metric catalog (directions, policy).
    adjustments : approved adjustments (``entity_id, period, metric_id, amount, reason,
        approved_by``): each changes the metric it names, the costs it carries at the unit's
        own ratio and, through the formulas, every derived metric (the decomposition's
        adjusted panel); the audit lists before, change and after of every metric and score
        it moves (:mod:`perflink.scoring._audit`).
    bonus : bonus table (``entity_id, year, base_bonus, pool_budget``, in the catalog's
        money unit :attr:`perflink.catalog.Catalog.money_unit`).
    options : the ``kpi:`` params block (tenure targets).
    lang : message language; default the decomposition's (the review's language).
    status : the ``status:`` params block (met / narrowly missed / missed; the points basis
        is scaled to it); default :class:`perflink.options.StatusOptions`.

    Returns
    -------
    ScorecardResult
        ``scorecard`` rows carry ``basis`` (ratio / points), ``gap`` (actual - target, metric
        unit), ``completion_before`` / ``completion`` (shown only where a ratio means
        something), ``attainment_before`` / ``attainment`` (what the rules score),
        ``score_before`` / ``score`` and ``status``.

    Raises
    ------
    InputError
        The decomposition has no panels, or a scheme row has an unknown rule or bad
        ``rule_params``.
    ParamsError
        A tenure target (``options.tenure``) names a metric the catalog lacks or an entity
        without data in this review.
    """
    options = (options or KpiOptions()).for_catalog(catalog)
    status = status or StatusOptions()
    lang = decomposition.language if lang is None else lang  # language flows from the review
    panels = decomposition.panels
    if panels is None:
        raise InputError(
            "scorecard: the decomposition has no panels (built without them, or let go by "
            "DecompositionResult.release_panels); run perflink.kpi.run(review) again and score "
            "that result."
        )
    q = pd.Period(decomposition.quarter, "Q")
    assign = _assign(schemes, entities)
    rows = []
    for scope in ("quarter", "ytd"):
        start, end = window_months(q, scope)
        vals = {
            "actual_before": panels.window(panels.actual, catalog, start, end),
            "actual": panels.window(panels.adjusted, catalog, start, end),
            "target": panels.window(panels.target[scope], catalog, start, end),
            "target_original": panels.window(panels.target_original[scope], catalog, start, end),
        }
        part = assign.copy()
        for name, frame in vals.items():
            stacked = frame.stack(future_stack=True).rename(name)
            part = part.join(stacked, on=["entity_id", "metric_id"])
        part.insert(1, "scope", scope)
        rows.append(part)
    card = pd.concat(rows, ignore_index=True)
    card.insert(1, "period", str(q))
    card["adjustment"] = card["actual"] - card["actual_before"]
    before = compare(
        card["actual_before"], card["target"], card["metric_id"], catalog, status=status
    )
    after = compare(card["actual"], card["target"], card["metric_id"], catalog, status=status)
    card["basis"] = after["basis"]
    card["gap"] = after["gap"]
    card["completion_before"] = before["completion"]
    card["completion"] = after["completion"]
    card["attainment_before"] = before["attainment"]
    card["attainment"] = after["attainment"]
    card["score_before"] = score_frame(card.assign(completion=card["attainment_before"]))
    card["score"] = score_frame(card.assign(completion=card["attainment"]))
    card["status"] = after["status"]
    card["weighted_score"] = card["weight"] * card["score"]
    card = card.drop(columns=["params"])
    totals = _totals(card)
    audit = audit_table(card, adjustments, decomposition, catalog, lang)
    checks = check_schemes(schemes, catalog.policy, lang=lang)
    bonus_df = bonus_table(totals, bonus, entities, catalog, q.year)
    tenure = tenure_table(options, decomposition, entities, catalog, q, lang, status)
    names = scheme_names(schemes, decomposition.names, lang)
    findings = findings_table(
        checks, bonus_df, decomposition, entities, q, lang, catalog.money_unit, names
    )
    return ScorecardResult(
        quarter=str(q),
        language=lang,
        scorecard=card,
        totals=totals,
        audit=audit,
        bonus=bonus_df,
        tenure=tenure,
        scheme_checks=checks,
        findings=findings,
        names=decomposition.names,
        parents=dict(zip(entities["entity_id"], entities["parent_id"], strict=True)),
        money_unit=catalog.money_unit,
        target_changes=decomposition.target_changes,
        tenure_declared=len(options.tenure),
        metric_names=decomposition.metric_names,
        scheme_names=names,
    )


def scheme_names(schemes: pd.DataFrame, names: dict, lang: str) -> dict[str, str]:
    """Scheme id -> the scheme in words: a unit's own scheme by the unit's name, a centre
    type's scheme by the centre type (the schemes table has codes, not names).

    Parameters
    ----------
    schemes : schemes table (reads ``scheme_id, center_type, entity_id``).
    names : entity id -> display name.
    lang : ``"zh"`` or ``"en"``.

    Returns
    -------
    dict
        One entry per scheme id; a scheme with neither unit nor centre type keeps its id.

    Raises
    ------
    InputError
        If ``schemes`` lacks ``scheme_id``.
    """
    if "scheme_id" not in schemes:
        raise InputError("scheme_names: the schemes table has no scheme_id column")
    out = {}
    for sid, part in schemes.groupby("scheme_id", sort=True):
        units = part["entity_id"].dropna() if "entity_id" in part else pd.Series(dtype=object)
        centres = part["center_type"].dropna() if "center_type" in part else units.iloc[:0]
        if len(units):
            unit = str(units.iloc[0])
            out[sid] = t("scoring.scheme.own", lang, unit=names.get(unit, unit))
        elif len(centres):
            centre = value_label("center_type", str(centres.iloc[0]), lang)
            out[sid] = t("scoring.scheme.centre", lang, centre=centre)
        else:
            out[sid] = str(sid)
    return out


@releases_memory
def run(
    review: Review,
    *,
    options: KpiOptions | None = None,
    decomposition: DecompositionResult | None = None,
) -> ScorecardResult:
    """Score the review's entities, link the scores to bonuses (notebook 02's second step).

    :func:`scorecard` on the review's inputs and language. Scoring reads the ``kpi:`` params
    block (the same options as the decomposition it builds on).

    Parameters
    ----------
    review : perflink.review.Review
        The open review (:func:`perflink.open_review`). Reads ``review.schemes``,
        ``review.entities``, ``review.adjustments``, ``review.bonus``,
        ``review.catalog``, ``review.language`` and ``review.params.kpi`` (and, to
        decompose, what :func:`perflink.kpi.run` reads).
    options : KpiOptions, optional
        Overrides the review's ``kpi:`` params block (None: use it); also used for the
        decomposition when it is computed here.
    decomposition : DecompositionResult, optional
        The review's :func:`perflink.kpi.run` result (its panels are reused); computed
        with ``options`` when not given.

    Returns
    -------
    ScorecardResult
        ``.to_frame()`` is the ``scorecard`` table; ``.bonus``, ``.tenure``, ``.audit``
        and ``.findings`` the ``bonus``, ``tenure``, ``adjustment_audit`` and
        ``kpi_findings`` tables.

    Raises
    ------
    InputError, ParamsError
        As :func:`scorecard` and :func:`perflink.kpi.run`.
    """
    opts = task_options(review, "kpi", options)
    if decomposition is None:
        decomposition = kpi.run(review, options=opts)
    return scorecard(
        decomposition,
        review.schemes,
        review.entities,
        review.catalog,
        adjustments=review.adjustments,
        bonus=review.bonus,
        options=opts,
        lang=review.language,
        status=review.params.status,
    )


def score_review(review: Review, decomposition: DecompositionResult) -> ScorecardResult:
    """The name of :func:`run` before every task had one entry point; kept for callers."""
    return run(review, decomposition=decomposition)


def assess_managers(
    scores: ScorecardResult,
    entities: pd.DataFrame,
    catalog: Catalog,
    *,
    options: KpiOptions | None = None,
) -> ManagerAssessmentResult:
    """Assess every department manager on business process, financial result and efficiency.

    The three dimensions are the scheme categories (business, financial, management) of the
    manager's unit scorecard: each dimension's score is the weight-averaged score of its
    metrics, its weight the scheme's weight of that category (the unit's own scheme if it has
    one, else its centre type's), and the manager score the weighted dimension scores. The
    weights are checked against the policy for the unit's centre type; a breach is a ``high``
    finding that says which bound is broken (see :mod:`perflink.scoring._manager`).
    Executives (subsidiary managers) get their tenure rows of the review year instead.

    Parameters
    ----------
    scores : result of :func:`scorecard` (reads ``scorecard``, ``tenure``, ``names``).
    entities : entities table (reads ``entity_id, kind, center_type, manager``).
    catalog : the metric catalog (its ``policy`` and metric names).
    options : the ``kpi:`` params block (``manager_scope``, ``manager_fail_score``,
        ``manager_warn_score``, ``manager_top_n``).

    Returns
    -------
    ManagerAssessmentResult
        One row per department with a manager (``to_frame()``), scores 0 .. 100 x cap.

    Raises
    ------
    InputError
        The entities table lacks a column the assessment reads, or the scorecard has no rows
        of the requested scope.
    """
    options = (options or KpiOptions()).for_catalog(catalog)
    missing = [c for c in ("entity_id", "kind", "center_type", "manager") if c not in entities]
    if missing:
        raise InputError(
            f"assess_managers: the entities table has no column(s) {missing}; "
            "check entities.csv against docs/data-contract.md"
        )
    scope = options.manager_scope
    if not (scores.scorecard["scope"] == scope).any():
        raise InputError(
            f"assess_managers: the scorecard has no rows of scope {scope!r} "
            "(params kpi.manager_scope); run perflink.scoring.scorecard first"
        )
    managers = manager_table(
        scores.scorecard,
        entities,
        catalog.policy,
        scope=scope,
        fail_score=options.manager_fail_score,
        warn_score=options.manager_warn_score,
        names=scores.names,
        lang=scores.language,
        schemes=scores.scheme_names,
    )
    ten = scores.tenure
    year = pd.Period(scores.quarter, "Q").year
    execs = ten[ten["year"] == year].reset_index(drop=True) if len(ten) else ten
    lang = scores.language
    return ManagerAssessmentResult(
        quarter=scores.quarter,
        language=lang,
        scope=scope,
        managers=managers,
        executives=execs,
        names=scores.names,
        metric_names={m: catalog.metrics[m].name(lang) for m in catalog.metrics},
        metric_units={m: catalog.metrics[m].unit for m in catalog.metrics},
        top_n=options.manager_top_n,
        tenure_declared=scores.tenure_declared,
        policy=catalog.policy,
    )


def assess_managers_review(review: Any, scores: ScorecardResult) -> ManagerAssessmentResult:
    """:func:`assess_managers` on an opened review with its entities, catalog and options."""
    return assess_managers(scores, review.entities, review.catalog, options=review.params.kpi)


def _assign(schemes: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """One row per entity x scheme metric: the override if any, else the centre default."""
    sc = schemes.copy()
    sc["params"] = [
        parse_params(p, rule=r, where=f"schemes.csv row {i + 2} ({s}, {m})")
        for i, (p, r, s, m) in enumerate(
            zip(sc["rule_params"], sc["rule"], sc["scheme_id"], sc["metric_id"], strict=True)
        )
    ]
    keep = ["scheme_id", "metric_id", "category", "weight", "rule", "floor", "cap", "params"]
    default = sc[sc["entity_id"].isna()]
    override = sc[sc["entity_id"].notna()]
    ent = entities[["entity_id", "kind", "center_type"]].copy()
    ent["center"] = ent["center_type"].where(ent["kind"] == "department", "profit")
    out = ent.merge(
        default.drop(columns=["entity_id", "center_type"]).assign(center=default["center_type"]),
        on="center",
        how="inner",
    )
    out = out[["entity_id", *keep]]
    if len(override):
        out = out[~out["entity_id"].isin(set(override["entity_id"]))]
        out = pd.concat([out, override[["entity_id", *keep]]], ignore_index=True)
    return out.sort_values(["entity_id", "scheme_id"], kind="stable", ignore_index=True)


def _totals(card: pd.DataFrame) -> pd.DataFrame:
    """Per entity x scope: total score before/after adjustment and completion by category.

    A category's completion is the weight-averaged attainment of its metrics, each clipped to
    [0, its scheme cap] as its score is, so a rate scored in points or a target near zero
    counts as its score does (never as an unbounded ratio).
    """
    keys = ["entity_id", "period", "scope", "scheme_id"]
    capped = card["attainment"].clip(lower=0.0, upper=card["cap"].astype(float))
    c = card.assign(
        w_ok=card["weight"].where(card["score"].notna()),
        wc=card["weight"] * capped,
        wsb=card["weight"] * card["score_before"],
    )
    g = c.groupby(keys, sort=True)
    out = pd.DataFrame(
        {
            "score": g["weighted_score"].sum(min_count=1) / g["w_ok"].sum() * g["weight"].sum(),
            "score_before": g["wsb"].sum(min_count=1) / g["w_ok"].sum() * g["weight"].sum(),
            "weight": g["weight"].sum(),
        }
    )
    by_cat = c.groupby([*keys, "category"])
    comp = (by_cat["wc"].sum(min_count=1) / by_cat["w_ok"].sum()).unstack("category")
    for cat in ("business", "financial", "management"):
        out[f"{cat}_completion"] = comp.get(cat, np.nan)
    return out.reset_index()
