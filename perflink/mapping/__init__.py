"""Business–finance mapping validation (notebook 01): can the business, financial and
assessment data be trusted to describe the same reality (业务有痕迹、财务有依据、考核有支撑),
and does each business driver really drive the finance result it is mapped to?

Each part works on plain frames, so an analyst can run it on any data::

    cat = perflink.mapping.check_catalog(catalog)                 # 1. catalog integrity
    comp = perflink.mapping.check_completeness(facts, entities, catalog, quarter="2026Q3")
    rules = perflink.mapping.check_rules(facts, catalog, quarter="2026Q3")     # 3. 勾稽关系
    cal = perflink.mapping.check_calibers(facts, catalog, quarter="2026Q3")    # 4. 口径
    drv = perflink.mapping.driver_strength(facts, catalog, quarter="2026Q3")   # 5. drivers
    dq = perflink.mapping.data_quality(comp, rules, catalog)      # index per source system

and :func:`run` runs them all for a review with its ``mapping:`` options (``validate`` is
its former name). Every finding has ``entity_id, period, metric_id, rule_id, check,
severity, value, expected, deviation, message, source_refs`` (:data:`FINDING_COLUMNS`);
periods are strings (``"2026-09"`` for a month, ``"2026Q3"`` for a quarter-level finding,
empty for the catalog).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from perflink.catalog import Catalog, Rule
from perflink.common import Lineage
from perflink.errors import PerflinkError
from perflink.execution import advance, progress, releases_memory
from perflink.mapping import _caliber, _catalog, _data, _drivers
from perflink.mapping._common import (
    FINDING_COLUMNS,
    check_catalog_arg,
    check_facts,
    entity_names,
    findings_frame,
    lang_of,
    quarter_of,
)
from perflink.mapping._common import rule_unit as _rule_unit
from perflink.mapping._results import (
    CaliberResult,
    CatalogCheckResult,
    CompletenessResult,
    RuleCheckResult,
)
from perflink.mapping._status import quality_table, rule_overview, status_table
from perflink.mapping._views import (
    DataQualityResult,
    DriverStrengthResult,
    FindingsResult,
    MappingFindingsResult,
    StatusResult,
    ValidationResult,
)
from perflink.options import MappingOptions

if TYPE_CHECKING:
    from perflink.review import Review

__all__ = [
    "FINDING_COLUMNS",
    "CaliberResult",
    "CatalogCheckResult",
    "CompletenessResult",
    "DataQualityResult",
    "DriverStrengthResult",
    "FindingsResult",
    "MappingFindingsResult",
    "RuleCheckResult",
    "StatusResult",
    "ValidationResult",
    "check_calibers",
    "check_catalog",
    "check_completeness",
    "check_rules",
    "data_quality",
    "driver_strength",
    "rule_unit",
    "run",
    "validate",
]

_DEFAULTS = MappingOptions()
#: Checks run() makes, each counted on its progress bar: catalog, completeness, rules,
#: calibers, driver strength, then the status table (with the data-quality index).
_CHECKS = 6


def check_catalog(catalog: Catalog, *, lang: str | None = None) -> CatalogCheckResult:
    """Catalog integrity: fields, references, units, tier coverage, formulas.

    Parameters
    ----------
    catalog : the metric catalog.
    lang : language of the messages (default: the current report language).

    Returns
    -------
    CatalogCheckResult
        Findings for: a metric field (definition, caliber, unit, owner, source system) empty or
        a placeholder; a unit the unit registry does not know (:func:`perflink.units.parse_unit`);
        a mapping naming an undefined metric, or whose driver and target are money (or money
        per the same thing) of one currency in different scales (元 vs 万元, USD vs kUSD); a
        tier-1 metric that does
        not reach a tier-2 metric; a tier-2 metric without tier-3 drivers (mapping or
        decomposition, directly or through its formula inputs); a formula or rule that does
        not parse, names unknown metrics or forms a cycle.
    """
    catalog = check_catalog_arg(catalog, "check_catalog")
    lang = lang_of(lang)
    return CatalogCheckResult(findings_frame(_catalog.run(catalog, lang)), lang)


def rule_unit(rule: str | Rule, catalog: Catalog) -> str | None:
    """The catalog unit a reconciliation rule's two sides are stated in.

    A side that is one metric (``net_sales``, ``sum(returns_amount, 6)``) gives its unit;
    else the unit every metric of the right side shares (``net_sales + returns_amount``):
    a rule compares like with like. Rule breach messages state both sides in it, and the
    summary prices a breach (``|value - expected|``) in money when it is a money unit.

    Parameters
    ----------
    rule : a rule of the catalog, or its id (``R01``).
    catalog : the metric catalog.

    Returns
    -------
    str or None
        A catalog unit text (``万元``, ``kUSD``, ``orders``), or None when the sides' unit
        cannot be told from the catalog.

    Raises
    ------
    PerflinkError
        If ``catalog`` is not a Catalog or the rule id is not one of its rules
        (:class:`~perflink.errors.CatalogError`).
    """
    catalog = check_catalog_arg(catalog, "rule_unit")
    if not isinstance(rule, Rule):
        rule = catalog.rule(str(rule))
    return _rule_unit(rule, catalog)


def check_completeness(
    facts: pd.DataFrame,
    entities: pd.DataFrame | None,
    catalog: Catalog,
    *,
    quarter: str | pd.Period,
    history: int = _DEFAULTS.completeness_months,
    expected_share: float = _DEFAULTS.expected_share,
    lang: str | None = None,
    lineage: Lineage | None = None,
) -> CompletenessResult:
    """Which expected entity × metric × month values are missing (or duplicated).

    An entity is expected to report a metric when it reported it in at least
    ``expected_share`` of its months before the quarter (from its first month); entities
    with under three months of history take the metrics most entities of their
    ``center_type`` report (needs ``entities``). Missing values in the quarter are ``high``,
    in the ``history`` months before ``low``. Duplicated (entity, period, metric) rows are
    found only in raw facts (:func:`perflink.io.load_inputs` rejects them). Lateness is not
    checked: the data contract has no report timestamp.

    Parameters
    ----------
    facts : facts table (reads ``entity_id, period (Period[M]), metric_id, value`` and, if
        present, ``source_system, source_ref``).
    entities : entities table (``entity_id, name_zh, name_en, parent_id, center_type``) or None.
    catalog : the metric catalog (owners, source systems, reported metrics).
    quarter : the review quarter, e.g. ``"2026Q3"``.
    history : months before the quarter checked for gaps.
    expected_share : share of months that makes a metric expected (0-1].
    lang : message language.
    lineage : the facts of some entity ids with every input column
        (:meth:`perflink.review.Review.fact_lineage`), for ``facts`` read without
        ``source_ref``: the duplicated rows name their sources from it.

    Returns
    -------
    CompletenessResult
    """
    facts = check_facts(facts, "check_completeness")
    catalog = check_catalog_arg(catalog, "check_completeness")
    q, lang = quarter_of(quarter), lang_of(lang)
    _positive("history", history, allow_zero=True)
    if not 0 < expected_share <= 1:
        raise PerflinkError(
            f"check_completeness: expected_share must be in (0, 1], got {expected_share}"
        )
    rows, summary, cells, exp = _data.completeness(
        facts, entities, catalog, q, history=history, share=expected_share, lang=lang,
        lineage=lineage,
    )  # fmt: skip
    quarter_cells = cells[cells["in_quarter"]].drop(columns="in_quarter").reset_index(drop=True)
    summary = summary.rename(columns={"expected": "expected_values"})
    return CompletenessResult(
        findings_frame(rows, extra=("source_system", "owner")), summary, exp, quarter_cells, lang
    )


def check_rules(
    facts: pd.DataFrame,
    catalog: Catalog,
    *,
    quarter: str | pd.Period,
    entities: pd.DataFrame | None = None,
    history: int = _DEFAULTS.rule_history_months,
    expected: pd.DataFrame | None = None,
    expected_share: float = _DEFAULTS.expected_share,
    drift_z: float = _DEFAULTS.drift_z,
    lang: str | None = None,
    lineage: Lineage | None = None,
) -> RuleCheckResult:
    """Evaluate every reconciliation rule (勾稽关系) per entity and month.

    Month rules are checked in every month of the quarter and the ``history`` months before;
    quarter rules at quarter-end months, on the rule's own expressions (e.g. rolling
    12-month sums). ``approx``: breach when ``|lhs / rhs - 1| > tolerance``; ``le``: when
    ``lhs > rhs × (1 + tolerance)``; ``ge``: when ``lhs < rhs × (1 - tolerance)``. A rule on
    metrics an entity does not report is not applicable (no row); a zero right side of an
    ``approx`` rule or a missing input is ``cannot_evaluate`` (info), never a number.
    Breaches before the quarter get one severity level less than the rule's. A month of the
    quarter that passes a monthly ``approx`` rule but whose log(lhs / rhs) lies more than
    ``drift_z`` robust SDs (median / MAD of the entity's previous 24 months) from its usual
    level, beyond half the tolerance, is reported as ``rule_drift`` (low): a step change
    hiding just inside the tolerance.

    Parameters
    ----------
    facts : facts table (``entity_id, period, metric_id, value``, optional ``source_ref``).
    catalog : the catalog with the rules.
    quarter : the review quarter.
    entities : entities table for names in messages (optional).
    history : months before the quarter to evaluate.
    expected : the expected set (``entity_id, metric_id``), e.g.
        ``check_completeness(...).expected``; computed from ``facts`` when None.
    expected_share : used when ``expected`` is None.
    drift_z : robust z beyond which a passing month is reported as drift.
    lang : message language.
    lineage : as in :func:`check_completeness`: where a breach's ``source_refs`` come from
        when ``facts`` lack ``source_ref``.

    Returns
    -------
    RuleCheckResult
    """
    facts = check_facts(facts, "check_rules")
    catalog = check_catalog_arg(catalog, "check_rules")
    q, lang = quarter_of(quarter), lang_of(lang)
    _positive("history", history, allow_zero=True)
    if expected is None:
        expected = _data.expected_set(facts, entities, catalog, q, expected_share)
    rows, evals = _data.rules(
        facts, entities, catalog, q, expected, history=history, drift_z=drift_z, lang=lang,
        lineage=lineage,
    )  # fmt: skip
    findings = findings_frame(rows)
    overview = rule_overview(evals, findings, catalog, lang)
    rule_names = {r.id: r.name(lang) for r in catalog.rules}
    return RuleCheckResult(
        findings, evals, lang, overview, entity_names(entities, lang), rule_names
    )


def check_calibers(
    facts: pd.DataFrame,
    catalog: Catalog,
    *,
    quarter: str | pd.Period,
    entities: pd.DataFrame | None = None,
    months: int = _DEFAULTS.caliber_months,
    timing_months: int = _DEFAULTS.timing_months,
    min_shift: float = _DEFAULTS.caliber_min_shift,
    factor_tolerance: float = _DEFAULTS.factor_tolerance,
    timing_min_gain: float = _DEFAULTS.timing_min_gain,
    expected: pd.DataFrame | None = None,
    lang: str | None = None,
) -> CaliberResult:
    """Detect systematic caliber (口径) mismatches between the two sides of ``approx`` rules.

    Ratio test: per unit and per parent (its units pooled), the ratio of the two sides'
    totals over the last ``months`` months (``sum(x, k)`` read as the monthly ``x``) with a
    95% jackknife interval over months. A ratio further from 1 than ``min_shift`` and the
    rule's own tolerance, whose interval excludes 1, is systematic; a known factor within
    ``factor_tolerance`` (or inside the interval) names the cause (severity high; medium
    without a known cause). Known factors come from the catalog: a tax either way (``1 +
    rate``) only when a metric of the rule names the tax in its caliber or definition (VAT,
    GST, sales tax; the rates its text states, else for VAT the standard rates of the
    catalog's currency, :data:`perflink.units.VAT_RATES`), and unit slips ×10 to
    ×10000 either way, worded in the rule's money unit (元 instead of 万元, USD instead of
    kUSD). Units of a parent flagged for the same
    cause are not repeated. Timing test (month-scope rules): in each half of the last
    ``timing_months`` months, the lag k in -2..2 maximising the correlation of month-on-month
    log changes of the two sides; the same non-zero k in both halves, with correlation >= 0.6
    and at least ``timing_min_gain`` above the same-month correlation, is a timing mismatch
    (the checked metric recorded k months early or late; severity high).

    Parameters
    ----------
    facts, catalog, quarter, entities, expected, lang : as in :func:`check_rules`.
    months, timing_months, min_shift, factor_tolerance, timing_min_gain : see above.

    Returns
    -------
    CaliberResult
    """
    facts = check_facts(facts, "check_calibers")
    catalog = check_catalog_arg(catalog, "check_calibers")
    q, lang = quarter_of(quarter), lang_of(lang)
    if months < 6 or timing_months < 12:
        raise PerflinkError(
            f"check_calibers: months must be >= 6 and timing_months >= 12, got {months} and "
            f"{timing_months}"
        )
    if expected is None:
        expected = _data.expected_set(facts, entities, catalog, q, _DEFAULTS.expected_share)
    rows, ratios, timing = _caliber.run(
        facts,
        entities,
        catalog,
        q,
        expected,
        months=months,
        timing_months=timing_months,
        min_shift=min_shift,
        factor_tolerance=factor_tolerance,
        timing_min_gain=timing_min_gain,
        lang=lang,
    )
    factors = _caliber.factors_text(catalog, lang)
    return CaliberResult(findings_frame(rows), ratios, timing, lang, factors=factors)


def driver_strength(
    facts: pd.DataFrame,
    catalog: Catalog,
    *,
    quarter: str | pd.Period,
    entities: pd.DataFrame | None = None,
    months: int = _DEFAULTS.driver_months,
    min_obs: int = _DEFAULTS.min_obs,
    min_entities: int = _DEFAULTS.min_entities,
    alpha: float = _DEFAULTS.alpha,
    stability_z: float = _DEFAULTS.stability_z,
    min_elasticity: float = _DEFAULTS.min_elasticity,
    min_r2: float = _DEFAULTS.min_r2,
    lang: str | None = None,
) -> DriverStrengthResult:
    """Estimate how strongly each mapped business driver moves its finance target.

    For each mapping: ``target_t`` on ``driver_{t-lag}`` over the last ``months`` months,
    both in logs when all their values are positive (else levels, the coefficient scaled to
    an elasticity at the means), demeaned within entity (fixed effects), OLS with standard
    errors clustered by entity (statsmodels, t with G-1 df). When the target has other
    mapped drivers, a partial regression controlling for them is fitted too. Verdict:
    ``confirmed`` when either model gives the expected sign at ``p < alpha`` and explains
    at least ``min_r2`` of the target's variation within units (else ``weak``: significant
    but too small to steer by);
    ``wrong_sign`` when the fuller model (partial where there is one: a driver that barely
    moves takes on the volume beside it when fitted alone) gives the opposite sign
    significantly; a mapping not confirmed is judged and shown on that model: ``weak`` when
    the 95% interval rules out an elasticity of ``min_elasticity`` in the expected
    direction; ``inconclusive`` when it does not (the driver varies too little to tell);
    ``unstable`` when confirmed but the two halves of the window (last year vs this year)
    differ by ``|z| > stability_z`` and by sign or a factor over 2;
    ``insufficient_data`` with fewer than ``min_obs`` usable observations or
    ``min_entities`` entities (no estimate is made up).

    Beside this monthly elasticity the table carries ``elasticity_quarter``, the figure the
    KPI decomposition prices a driver's deviation with (:func:`perflink.kpi.estimate_elasticities`:
    year-over-year log changes of 3-month totals, pooled over all history up to the quarter,
    slope through the origin, no controls), so both pages name the same two numbers. They
    differ by design: an effect spread over several months makes the monthly elasticity at
    one lag the smaller; a driver that barely moves year over year beside other drivers of
    the same target makes the uncontrolled quarterly slope unreliable.

    Parameters
    ----------
    facts : facts table (``entity_id, period, metric_id, value``).
    catalog : catalog with the mappings (driver, target, sign, lag).
    quarter : the review quarter (the window ends at its last month).
    entities : unused except for symmetry with the other checks (may be None).
    months, min_obs, min_entities, alpha, stability_z, min_elasticity, min_r2 : see above.
    lang : message language.

    Returns
    -------
    DriverStrengthResult
    """
    facts = check_facts(facts, "driver_strength")
    catalog = check_catalog_arg(catalog, "driver_strength")
    q, lang = quarter_of(quarter), lang_of(lang)
    if months < 12 or min_obs < 4 or min_entities < 2 or not 0 < alpha < 0.5 or not 0 <= min_r2 < 1:
        raise PerflinkError(
            "driver_strength: need months >= 12, min_obs >= 4, min_entities >= 2, "
            f"0 < alpha < 0.5 and 0 <= min_r2 < 1; got months={months}, min_obs={min_obs}, "
            f"min_entities={min_entities}, alpha={alpha}, min_r2={min_r2}"
        )
    table = _drivers.run(
        facts,
        entities,
        catalog,
        q,
        months=months,
        min_obs=min_obs,
        min_entities=min_entities,
        alpha=alpha,
        stability_z=stability_z,
        min_elasticity=min_elasticity,
        min_r2=min_r2,
        lang=lang,
    )
    return DriverStrengthResult(table, lang)


def data_quality(
    completeness: CompletenessResult,
    rules: RuleCheckResult,
    catalog: Catalog,
    *,
    green: float = _DEFAULTS.dq_green,
    amber: float = _DEFAULTS.dq_amber,
    lang: str | None = None,
) -> DataQualityResult:
    """Data-quality index per source system for the review quarter.

    ``dq_index`` = share of the expected values (from ``completeness``) that are present and
    not read by a breached rule in the same entity-month (from ``rules``).

    Returns
    -------
    DataQualityResult
        ``status`` ``met`` when ``dq_index >= green`` (its target), ``near_miss`` when
        ``>= amber``, else ``missed`` (the report's status words).
    """
    if not isinstance(completeness, CompletenessResult) or not isinstance(rules, RuleCheckResult):
        raise PerflinkError(
            "data_quality: pass the results of check_completeness and check_rules, got "
            f"{type(completeness).__name__} and {type(rules).__name__}"
        )
    if not 0 < amber <= green <= 1:
        raise PerflinkError(
            f"data_quality: need 0 < amber <= green <= 1, got amber={amber}, green={green}"
        )
    catalog = check_catalog_arg(catalog, "data_quality")
    table = quality_table(completeness.cells, rules.evaluations, catalog, green=green, amber=amber)
    return DataQualityResult(table, lang_of(lang))


@progress("mapping checks", _CHECKS, unit="check")
@releases_memory
def run(review: Review, *, options: MappingOptions | None = None) -> ValidationResult:
    """Run every mapping check for a review (notebook 01's entry point).

    Catalog integrity, completeness, reconciliation rules, calibers, driver strength and the
    data-quality index, each with the review's quarter and language.

    Parameters
    ----------
    review : perflink.review.Review
        The open review (:func:`perflink.open_review`). Reads ``review.facts``,
        ``review.entities``, ``review.catalog``, ``review.quarter``, ``review.language``
        and ``review.params.mapping``.
    options : MappingOptions, optional
        Overrides the review's ``mapping:`` params block (None: use it).

    Returns
    -------
    ValidationResult
        ``.to_frame()`` is the ``validation_findings`` table; ``.drivers`` and ``.quality``
        give ``driver_strength`` and ``data_quality``.

    Raises
    ------
    PerflinkError
        If ``review`` is not an open review, or an option is out of range.
    """
    for attr in ("facts", "entities", "catalog", "quarter", "language"):
        if not hasattr(review, attr):
            raise PerflinkError(
                f"mapping.run: expected a Review from perflink.open_review(...), got "
                f"{type(review).__name__} without '{attr}'"
            )
    opt = options or getattr(getattr(review, "params", None), "mapping", None) or _DEFAULTS
    facts, ents, cat, lang = review.facts, review.entities, review.catalog, review.language
    q = quarter_of(review.quarter)
    lineage = getattr(review, "fact_lineage", None)  # a run's facts come without source_ref
    cat_res = check_catalog(cat, lang=lang)
    advance()
    comp = check_completeness(
        facts, ents, cat, quarter=q, history=opt.completeness_months,
        expected_share=opt.expected_share, lang=lang, lineage=lineage,
    )  # fmt: skip
    advance()
    rules = check_rules(
        facts, cat, quarter=q, entities=ents, history=opt.rule_history_months,
        expected=comp.expected, drift_z=opt.drift_z, lang=lang, lineage=lineage,
    )  # fmt: skip
    advance()
    cal = check_calibers(
        facts, cat, quarter=q, entities=ents, months=opt.caliber_months,
        timing_months=opt.timing_months, min_shift=opt.caliber_min_shift,
        factor_tolerance=opt.factor_tolerance, timing_min_gain=opt.timing_min_gain,
        expected=comp.expected, lang=lang,
    )  # fmt: skip
    advance()
    drv = driver_strength(
        facts, cat, quarter=q, entities=ents, months=opt.driver_months, min_obs=opt.min_obs,
        min_entities=opt.min_entities, alpha=opt.alpha, stability_z=opt.stability_z,
        min_elasticity=opt.min_elasticity, min_r2=opt.min_r2, lang=lang,
    )  # fmt: skip
    advance()
    dq = data_quality(comp, rules, cat, green=opt.dq_green, amber=opt.dq_amber, lang=lang)
    partial = [cat_res.findings, comp.findings, rules.findings, cal.findings]
    status = status_table(partial, ents, q, lang)
    advance()
    return ValidationResult(str(q), cat_res, comp, rules, cal, drv, dq, status, lang)


def validate(review: Review, *, options: MappingOptions | None = None) -> ValidationResult:
    """The name of :func:`run` before every task had one entry point; kept for callers."""
    return run(review, options=options)


def _positive(name: str, value: int, *, allow_zero: bool = False) -> None:
    if not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise PerflinkError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, got {value!r}"
        )
