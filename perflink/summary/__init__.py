"""Leadership summary: four analyses turned into a few decisions (notebook 05, run last).

The summary reads the tables the other task notebooks saved in the run's tables folder
(``validation_findings``, ``driver_strength``, ``data_quality``, ``attribution``,
``scorecard``, ``bonus``, ``kpi_findings``, ``forecast``, ``forecast_deviation``,
``anomalies``) instead of recomputing them; a missing table (task not run) is reported and
the parts that need it are left out. In JupyterLab without a tables folder,
:func:`collect` runs every task through its entry point (``perflink.<task>.run``) instead.

Typical use (what notebook 05 does)::

    review = perflink.open_review(params_path, language=language, tables_dir=tables_dir)
    result = perflink.summary.run(review)     # = summarize(review, collect(review))
    perflink.report.show(result)              # the decision page (result.decisions)
    perflink.report.show(result.findings.head())  # the top of the ranked list
    perflink.summary.write_workbook(result)

The decision page (:class:`DecisionsResult`) says the group's profit metric this quarter
and year to date against target, and its full-year projection against budget, one
sentence each from the headline's figures, then the suggested actions as decisions ranked
by the ranked list's rule, each with money at stake, an owner (the entities table's
manager) and a link to its evidence.

Review loop: items carry a stable ``finding_id`` (:func:`problem_id`, a hash of the entity
and the metric / rule, without the period or the task). The ranked list is saved as
``summary_findings`` with ``first_seen`` and ``quarters_open``; next quarter's summary reads
it from ``reports/<previous quarter>/tables/`` and marks findings new, persisting or resolved,
and compares last quarter's ``forecast`` of this quarter with what happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from perflink import labels, panel
from perflink.common import check_findings, parse_quarter
from perflink.errors import InputError
from perflink.execution import releases_memory
from perflink.options import StatusOptions, SummaryOptions
from perflink.summary import _decisions as _d
from perflink.summary import _findings as _f
from perflink.summary import _headline as _h
from perflink.summary import _loop as _loop
from perflink.summary._collect import (
    ACTIONS,
    TABLES,
    SummaryInputs,
    _options,
    collect,
)
from perflink.summary._decisions import DecisionsResult
from perflink.summary._findings import finding_id, problem_id
from perflink.summary._results import (
    ActionsResult,
    ChainResult,
    FindingsResult,
    GroupTotalsResult,
    HeadlineResult,
    LoopResult,
    QualityResult,
    RankedFindingsResult,
    SummaryResult,
)
from perflink.summary._workbook import write_workbook
from perflink.units import convert, parse_unit

if TYPE_CHECKING:
    from perflink.review import Review

__all__ = [
    "ACTIONS",
    "TABLES",
    "ActionsResult",
    "GroupTotalsResult",
    "ChainResult",
    "DecisionsResult",
    "FindingsResult",
    "HeadlineResult",
    "LoopResult",
    "QualityResult",
    "RankedFindingsResult",
    "SummaryInputs",
    "SummaryResult",
    "collect",
    "compare_quarters",
    "finding_id",
    "forecast_review",
    "group_totals",
    "problem_id",
    "rank_findings",
    "run",
    "summarize",
    "write_workbook",
]


def rank_findings(
    inputs: SummaryInputs,
    entities: pd.DataFrame,
    catalog: Any,
    *,
    quarter: str | pd.Period,
    language: str | None = None,
    options: SummaryOptions | None = None,
) -> FindingsResult:
    """Merge every task's findings into one list of problems, ranked by one rule.

    Rows dated before the review quarter are history and left out. Rows about one problem
    -- the same entity and metric (else the same rule, scheme or mapping) in the quarter --
    become one item with a stable :func:`problem_id` in ``finding_id``, whichever tasks
    reported it (a recognition gap found by a mapping rule and by the anomaly detector is one
    item; ``evidence`` and ``tasks`` list what each task found). Rule breaches explained by
    a caliber finding on the same rule above them are folded into it; items below
    ``options.min_severity`` are left to the task pages.

    The ranking rule: severity first; then money at stake, most first (unpriced items last);
    then quarters open, most first; then the entity's place in the entities table and the
    metric's place in the catalog. Money at stake is in the catalog's money unit
    (:attr:`perflink.catalog.Catalog.money_unit`) and is never a favourable deviation: a
    missed target puts its year-to-date gap at stake (which includes the quarter's; the two
    are not added); a projected miss the expected full-year shortfall; a rule breach the gap
    between its sides when they are money (:func:`perflink.mapping.rule_unit`); an anomaly
    the amount the anomaly task priced, unless the move is favourable (a cost below what was
    expected). Gaps of non-money metrics (rates, headcounts) put no money at stake. An item
    reported by several tasks takes the largest of their amounts, not their sum.

    Parameters
    ----------
    inputs : SummaryInputs
        The tables (``validation_findings``, ``kpi_findings``, ``forecast_deviation``,
        ``anomalies``) and last quarter's ``summary_findings``.
    entities : DataFrame
        ``entity_id, name_zh, name_en, parent_id`` (its row order breaks ranking ties).
    catalog : Catalog
        The metrics' units (which are money, and their factor to the money unit), their
        direction and their order (which breaks ranking ties).
    quarter : the review quarter (``"2026Q3"``).
    language : ``"zh"`` or ``"en"``; default the report language the review was opened with.
    options : SummaryOptions, optional

    Returns
    -------
    FindingsResult
        ``table`` is the ``summary_findings`` table (see the class), ``top`` the top list
        (critical items are never cut by ``top_n`` or ``per_kind``).

    Raises
    ------
    InputError
        If a findings table lacks the findings columns.
    """
    opts = options or SummaryOptions()
    language = labels._check_lang(language)
    q = parse_quarter(quarter)
    names = _names(entities, language)
    factors = _money_factors(catalog)
    rule_factors = _rule_money_factors(catalog)
    parts = []
    higher = {m: spec.direction == "higher" for m, spec in catalog.metrics.items()}
    readers = {
        "validation_findings": lambda d: _f.from_validation(d, factors, rule_factors),
        "kpi_findings": lambda d: _f.from_kpi(d, factors),
        "forecast_deviation": lambda d: _f.from_forecast(d, factors, higher),
        "anomalies": lambda d: _f.from_anomalies(d, higher),
    }
    for name, read in readers.items():
        df = inputs.get(name)
        if df is None or df.empty:
            continue
        _check_columns(df, name)
        parts.append(read(df))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["period"])
    keep = _f.SEVERITY_RANK.get(opts.min_severity, len(_f.SEVERITY_RANK))
    if not rows.empty:
        rows = rows[_f.in_quarter(rows["period"], q).to_numpy()]
        rows = _f.fold_calibers(rows, panel.ancestors(entities))
        # evidence below min_severity stays on its task page: it neither makes an item nor
        # adds money to one
        kept = rows[(rows["severity"].map(_f.SEVERITY_RANK).fillna(99) <= keep).to_numpy()]
        rows = _f.with_explanations(kept, rows)
    merged = _f.merge(rows, names, language)
    looped = _loop.compare(merged, inputs.previous.get("summary_findings"), q)
    ranked = _f.rank(
        looped, entity_order=_positions(entities["entity_id"]), subject_order=_subjects(catalog)
    )
    open_ = ranked[ranked["loop_status"] != "resolved"]
    top = _f.top(open_, opts.top_n, per_kind=opts.per_kind)
    return FindingsResult(ranked, top, language, money_unit=catalog.money_unit)


def _positions(values: Any) -> dict[Any, int]:
    """Value -> its first position (the entities table's row order)."""
    out: dict[Any, int] = {}
    for i, v in enumerate(values):
        out.setdefault(v, i)
    return out


def _subjects(catalog: Any) -> dict[str, int]:
    """Subject -> position: the catalog's metrics in order, then its rules, then mappings."""
    ids = [*catalog.metrics, *(r.id for r in catalog.rules), *(m.id for m in catalog.mappings)]
    return _positions(ids)


def _money_factors(catalog: Any) -> dict[str, float]:
    """Money metric id -> factor taking its values to the catalog's money unit."""
    factors = {m: catalog.in_money_unit(m) for m in catalog.metrics}
    return {m: f for m, f in factors.items() if f is not None}


def _rule_money_factors(catalog: Any) -> dict[str, float]:
    """Rule id -> factor taking its sides to the money unit, for rules stated in money
    (:func:`perflink.mapping.rule_unit`: orders × order value vs sales is money although
    the metric it checks is a count)."""
    from perflink.mapping import rule_unit

    money = catalog.money_unit
    out = {}
    for rule in catalog.rules:
        unit = rule_unit(rule, catalog)
        if money is not None and unit is not None and parse_unit(unit).is_money:
            out[rule.id] = convert(1.0, unit, money)
    return out


def _check_columns(df: pd.DataFrame, name: str) -> None:
    hint = f"Re-run the task {TABLES.get(name, '?')!r} with this perflink version."
    check_findings(df, name, error=InputError, hint=hint, severities=False)


def compare_quarters(
    current: pd.DataFrame, previous: pd.DataFrame | None, *, quarter: str | pd.Period
) -> pd.DataFrame:
    """Mark findings new / persisting and add last quarter's resolved ones.

    ``current`` needs ``finding_id``; ``previous`` is last quarter's ``summary_findings``.
    Returns ``current`` with ``loop_status``, ``first_seen``, ``quarters_open`` plus the
    resolved rows. Raises :class:`InputError` if ``previous`` lacks the loop columns.
    """
    if "finding_id" not in current.columns:
        raise InputError("compare_quarters: current findings need a 'finding_id' column.")
    return _loop.compare(current, previous, parse_quarter(quarter))


def forecast_review(
    previous_forecast: pd.DataFrame | None,
    facts: pd.DataFrame,
    entities: pd.DataFrame,
    catalog: Any,
    *,
    quarter: str | pd.Period,
) -> pd.DataFrame:
    """How last quarter's forecast of this quarter turned out, per entity and metric.

    Actuals come from ``facts`` rolled up to subsidiaries and the group with derived metrics
    (:func:`perflink.panel.build`). Columns: ``entity_id, metric_id, period`` (quarter),
    ``forecast, actual`` (quarter totals), ``fc_error`` (actual - forecast), ``fc_error_pct``,
    ``fc_months``, ``fc_months_in_80``. Empty without a forecast.
    """
    q = parse_quarter(quarter)
    if previous_forecast is None or previous_forecast.empty:
        return _loop.forecast_error(pd.DataFrame(), pd.DataFrame(), q)
    need = {"entity_id", "metric_id", "period", "mean", "lo_80", "hi_80"}
    if need - set(previous_forecast.columns):
        raise InputError(
            f"previous forecast table lacks {', '.join(sorted(need - set(previous_forecast)))}."
        )
    metrics = sorted(set(previous_forecast["metric_id"]) & set(catalog.metrics))
    start, end = q.asfreq("M", "start") - 12, q.asfreq("M", "end")
    recent = facts[(facts["period"] >= start) & (facts["period"] <= end)]
    wide = panel.build(recent, entities, catalog)
    keep = [m for m in metrics if m in wide.columns]
    long = wide[keep].stack().rename("actual").reset_index()
    long.columns = ["entity_id", "period", "metric_id", "actual"]
    return _loop.forecast_error(previous_forecast, long, q)


def summarize(
    review: Any, inputs: SummaryInputs | None = None, *, options: SummaryOptions | None = None
) -> SummaryResult:
    """Build the leadership summary from the tasks' tables.

    Parameters
    ----------
    review : perflink.review.Review
        The open review; ``review.params.summary`` holds the options.
    inputs : SummaryInputs, optional
        From :func:`collect` (called here if not given).
    options : SummaryOptions, optional
        Overrides ``review.params.summary``.

    Returns
    -------
    SummaryResult
        The chain ends on ``summary.projection_metric`` (default: the catalog's profit
        metric, else its sales metric); without one it ends at the score and says why.
        Amounts at stake are in the catalog's money unit.

    Raises
    ------
    ParamsError
        If ``summary.actions`` names an unknown rule or ``summary.projection_metric`` is not
        a catalog metric.
    InputError
        If a task table is unreadable or lacks its columns.
    """
    opts = _options(review, options)
    inputs = inputs if inputs is not None else collect(review, options=opts)
    lang, q = review.language, review.quarter
    entities, catalog = review.entities, review.catalog
    root = _root(entities)
    names = _names(entities, lang)
    g = dict(status=_status_options(review))
    dev = inputs.get("forecast_deviation")
    card = inputs.get("scorecard")
    scores = _h.unit_scores(card, entities)
    headline = HeadlineResult(
        _h.tier1(inputs.get("attribution"), root, catalog, lang, **g),
        _h.projection(dev, root, catalog, lang, **g),
        scores,
        _h.distribution(scores),
        lang,
    )
    pm = opts.projection_metric or ""
    st = g["status"]
    chain = ChainResult(
        _h.chain(card, dev, entities, catalog, lang, metric_id=pm, **g), lang,
        metric=_h._metric_name(catalog, pm, lang) if pm else "", why=_h.chain_note(pm, dev),
        near_miss=st.near_miss, on_track=st.on_track, off_track=st.off_track,
    )  # fmt: skip
    findings = rank_findings(inputs, entities, catalog, quarter=q, language=lang, options=opts)
    open_ = findings.table[findings.table["loop_status"] != "resolved"]
    quality = inputs.get("data_quality")
    acts = _h.actions(open_, card, dev, quality, names, catalog, lang, opts, str(q), findings.top)
    skipped = tuple(_h.skipped_actions(opts.actions, catalog, lang))
    loop = _loop_result(inputs, findings.table, review, lang)
    units = {m: v.unit for m, v in catalog.metrics.items()}
    decided = _d.decisions(
        acts, open_, dev, quality, entities, catalog, lang, root=root,
        entity_order=_positions(entities["entity_id"]), subject_order=_subjects(catalog),
    )  # fmt: skip
    decisions = DecisionsResult(
        decided, lang,
        tier1_sentence=_d.tier1_sentence(headline.tier1, catalog, lang, group=names[root]),
        outlook_sentence=_d.outlook_sentence(
            headline.projection, catalog, lang, group=names[root], year=parse_quarter(q).year
        ),
        money_unit=catalog.money_unit, shown=_d.DECISIONS,
    )  # fmt: skip
    return SummaryResult(
        str(q), lang, headline, chain, findings, ActionsResult(acts, lang, skipped=skipped),
        QualityResult(quality if quality is not None else pd.DataFrame(), lang), loop,
        tuple(inputs.missing_tasks), inputs, money_unit=catalog.money_unit, units=units,
        decisions=decisions,
    )  # fmt: skip


@releases_memory
def run(review: Review, *, options: SummaryOptions | None = None) -> SummaryResult:
    """The leadership summary of a review (notebook 05's entry point).

    :func:`collect` then :func:`summarize`: the other tasks' tables are read from the run's
    tables folder (``review.tables_dir``; a task whose tables are missing is reported and
    left out) or, without one (JupyterLab), computed by every task's ``run``; an error
    inside a task then stops the summary.

    Parameters
    ----------
    review : perflink.review.Review
        The open review (:func:`perflink.open_review`). Reads ``review.entities``,
        ``review.facts``, ``review.catalog``, ``review.quarter``, ``review.language``,
        ``review.tables_dir``, ``review.params.summary`` (and, without a tables folder,
        what every task's ``run`` reads).
    options : SummaryOptions, optional
        Overrides the review's ``summary:`` params block (None: use it).

    Returns
    -------
    SummaryResult
        ``.to_frame()`` is the ``summary_findings`` table; ``.actions`` and ``.loop`` give
        ``summary_actions`` and ``summary_forecast_review``.

    Raises
    ------
    ParamsError
        If the summary options name an unknown rule or severity.
    InputError
        If a task table is unreadable or lacks its columns.
    """
    opts = _options(review, options)
    return summarize(review, collect(review, options=opts), options=opts)


def _status_options(review: Any) -> StatusOptions:
    """The review's ``status:`` block (one threshold set for every status of the report)."""
    found = getattr(getattr(review, "params", None), "status", None)
    return found if isinstance(found, StatusOptions) else StatusOptions()


def _loop_result(inputs: SummaryInputs, table: pd.DataFrame, review: Any, lang: str) -> LoopResult:
    prev = inputs.previous_dir
    if prev is None:
        empty = pd.DataFrame()
        return LoopResult(None, empty, table.iloc[0:0], empty, empty, lang)
    counts = (
        table.groupby(["loop_status", "source_task"]).size().rename("n").reset_index()
        if not table.empty
        else pd.DataFrame(columns=["loop_status", "source_task", "n"])
    )
    errors = forecast_review(
        inputs.previous.get("forecast"), review.facts, review.entities, review.catalog,
        quarter=review.quarter,
    )  # fmt: skip
    kinds = review.entities.set_index("entity_id")["kind"]
    acc = _loop.forecast_accuracy(errors, kinds)
    catalog = review.catalog
    return LoopResult(
        str(prev), counts, table, errors, acc, lang,
        metric_names={m: v.name(lang) for m, v in catalog.metrics.items()},
        entity_names=_names(review.entities, lang),
        units={m: v.unit for m, v in catalog.metrics.items()},
    )  # fmt: skip


def _root(entities: pd.DataFrame) -> str:
    roots = entities.loc[entities["parent_id"].isna(), "entity_id"]
    if roots.empty:
        raise InputError("entities: no row without parent_id (the group); add the group row.")
    return str(roots.iloc[0])


def _names(entities: pd.DataFrame, lang: str) -> dict[str, str]:
    return dict(zip(entities["entity_id"], entities[f"name_{lang}"], strict=True))


def group_totals(review: Any) -> GroupTotalsResult:
    """The whole group's tier-1 totals for a scoped review, when the params allow it.

    A scoped report shows one subsidiary's subtree only; with ``scope_group_totals: true`` it
    may also show the group's own figures for comparison. They are computed from the unscoped
    facts and carry no entity id or name (only metric, window and value), so nothing about
    the other subsidiaries reaches the report. Empty for unscoped reviews or when not allowed.

    Returns
    -------
    GroupTotalsResult
        ``metric_id, metric, scope`` (quarter / ytd), ``value`` in the metric's unit.
    """
    lang = review.language
    cols = ["metric_id", "metric", "unit", "scope", "value"]
    if review.scope is None or not review.params.scope_group_totals:
        return GroupTotalsResult(pd.DataFrame(columns=cols), lang)
    from perflink import panel

    catalog, inputs = review.catalog, review.unscoped_inputs
    wide = panel.build(inputs.facts, inputs.entities, catalog)
    root = _root(inputs.entities)
    q = parse_quarter(review.quarter)
    end = q.asfreq("M", "end")
    rows = []
    for scope, start in (
        ("quarter", q.asfreq("M", "start")),
        ("ytd", pd.Period(f"{q.year}-01", "M")),
    ):
        values = panel.window(wide, catalog, start, end).loc[root]
        for m in catalog.tier(1):
            metric = catalog.metric(m)
            rows.append((m, metric.name(lang), metric.unit, scope, float(values[m])))
    return GroupTotalsResult(pd.DataFrame(rows, columns=cols), lang)
