"""Shared pieces of :mod:`perflink.mapping`: findings frames, names, periods, number text.

Not API: import from :mod:`perflink.mapping`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import pandas as pd

from perflink import labels
from perflink._report_format import fmt_figure, fmt_number, fmt_significant
from perflink.catalog import Catalog, Rule
from perflink.common import SEVERITY_RANK, parse_quarter, require_columns
from perflink.errors import InputError, PerflinkError

FINDING_COLUMNS: tuple[str, ...] = (
    "entity_id",
    "period",
    "metric_id",
    "rule_id",
    "check",
    "severity",
    "value",
    "expected",
    "deviation",
    "message",
    "source_refs",
)
"""Columns of every findings table of :mod:`perflink.mapping` (``validation_findings``)."""

_DOWNGRADE = {"critical": "high", "high": "medium", "medium": "low", "low": "low", "info": "info"}
_FACT_COLUMNS = ("entity_id", "period", "metric_id", "value")


def lang_of(lang: str | None) -> str:
    """The language to write messages in (default: the current report language)."""
    return labels._check_lang(lang)


def downgrade(severity: str) -> str:
    """One severity level lower (used for findings before the review quarter)."""
    return _DOWNGRADE[severity]


quarter_of = parse_quarter  # the review quarter as a ``Q`` Period (ParamsError otherwise)


def quarter_months(quarter: pd.Period) -> pd.PeriodIndex:
    """The three months of a quarter."""
    return pd.period_range(quarter.asfreq("M", "start"), quarter.asfreq("M", "end"), freq="M")


def upto(facts: pd.DataFrame, month: pd.Period) -> pd.DataFrame:
    """The facts of ``month`` and before: ``facts`` itself when none is later (a review's
    facts end with its quarter), instead of a copy of a million rows and their texts."""
    keep = facts["period"] <= month
    return facts if keep.all() else facts[keep]


def check_facts(facts: object, what: str) -> pd.DataFrame:
    """Raise :class:`InputError` unless ``facts`` is a facts table with monthly periods."""
    require_columns(facts, _FACT_COLUMNS, table=f"{what}: facts")
    if facts.empty:
        raise InputError(
            f"{facts.attrs.get('source', 'the facts input')}: the facts table has no data rows; "
            "nothing to validate. Add the facts (one row per entity, month and metric) or point "
            "inputs.facts in the review params at the right file."
        )
    dtype = facts["period"].dtype
    if dtype != pd.PeriodDtype("M"):
        raise InputError(
            f"{what}: facts column 'period' must be monthly pandas Periods (Period[M]), got "
            f"{facts['period'].dtype}; load facts with perflink.io.load_inputs"
        )
    return facts


def check_catalog_arg(catalog: object, what: str) -> Catalog:
    if not isinstance(catalog, Catalog):
        raise PerflinkError(
            f"{what}: catalog must be a perflink Catalog (perflink.catalog.load_catalog), "
            f"got {type(catalog).__name__}"
        )
    return catalog


def entity_names(entities: pd.DataFrame | None, lang: str) -> dict[str, str]:
    """entity_id -> display name in ``lang`` (empty when no entities table is given)."""
    if entities is None or entities.empty:
        return {}
    col = "name_zh" if lang == "zh" else "name_en"
    if col not in entities:
        return {}
    return dict(
        zip(entities["entity_id"], entities[col].fillna(entities["entity_id"]), strict=True)
    )


def parents(entities: pd.DataFrame | None) -> dict[str, str]:
    """entity_id -> parent_id for entities that have a parent."""
    if entities is None or entities.empty or "parent_id" not in entities:
        return {}
    sub = entities.dropna(subset=["parent_id"])
    return dict(zip(sub["entity_id"], sub["parent_id"], strict=True))


def root_entity(entities: pd.DataFrame | None) -> str:
    """The group (entity without a parent), or ``""`` when unknown."""
    if entities is None or entities.empty or "parent_id" not in entities:
        return ""
    roots = entities.loc[entities["parent_id"].isna(), "entity_id"]
    return str(roots.iloc[0]) if len(roots) == 1 else ""


def checked_metric(rule: Rule, catalog: Catalog) -> str:
    """The metric a rule checks: the side naming a single metric (lhs first)."""
    lhs = catalog_parse(rule.lhs)
    rhs = catalog_parse(rule.rhs)
    if len(lhs.inputs) == 1:
        return lhs.inputs[0]
    if len(rhs.inputs) == 1:
        return rhs.inputs[0]
    return (lhs.inputs or rhs.inputs or ("",))[0]


def rule_unit(rule: Rule, catalog: Catalog) -> str | None:
    """The catalog unit both sides of ``rule`` are stated in, or None when it cannot be told.

    A side that is one metric (``net_sales``, ``sum(returns_amount, 6)``) gives its unit; else
    the unit the right side's metrics share (``net_sales + returns_amount``): a rule compares
    like with like, so the other side is in the same unit.
    """
    sides = [catalog_parse(rule.lhs).inputs, catalog_parse(rule.rhs).inputs]
    for names in (*[s for s in sides if len(s) == 1], sides[1], sides[0]):
        units = {catalog.metrics[n].unit for n in names if n in catalog.metrics}
        if len(units) == 1 and len(names) == len([n for n in names if n in catalog.metrics]):
            return units.pop()
    return None


def fmt_amount(x: float, unit: str | None, lang: str) -> str:
    """A rule side's value in message text: with its unit's words when the unit is known."""
    return fmt_number(x, unit, lang) if unit is not None and math.isfinite(x) else fmt_num(x)


def count_text(n: int, what: str, lang: str) -> str:
    """``n`` things in words with the right plural: ``"1 unit"``, ``"4 units"``, ``"4 个单位"``
    (``what``: ``units`` or ``months``, labels ``mapping.n.<what>``)."""
    return (
        labels.t(f"mapping.n.{what}_one", lang)
        if n == 1
        else labels.t(f"mapping.n.{what}", lang, n=n)
    )


def lag_text(lag: int, lang: str) -> str:
    """A mapping's lag in words: ``"lag 1 month"``, ``"lag 2 months"``, ``"same month"``."""
    if lag == 0:
        return labels.t("mapping.n.lag_none", lang)
    return count_text(lag, "lag", lang)


def p_text(p: float, lang: str) -> str:
    """A p value as readers take it: ``"p < 0.001"`` or ``"p = 0.04"`` (never ``7.43e-19``)."""
    if not math.isfinite(p):
        return "—"
    if p < 0.001:
        return labels.t("mapping.p.small", lang)
    return labels.t("mapping.p.value", lang, p=f"{p:.3f}" if p < 0.01 else f"{p:.2f}")


def formula_words(text: str, catalog: Catalog, lang: str) -> str:
    """A rule side or formula with metric names and math signs (:func:`perflink.formula.in_words`)."""
    from perflink import formula

    return formula.in_words(text, catalog, lang=lang)


def catalog_parse(text: str):
    from perflink import formula

    return formula.parse(text)


def metric_name(catalog: Catalog, metric_id: str, lang: str) -> str:
    m = catalog.metrics.get(metric_id)
    return m.name(lang) if m is not None else metric_id


def findings_frame(
    rows: Iterable[Mapping] | pd.DataFrame, extra: Iterable[str] = ()
) -> pd.DataFrame:
    """A findings table with :data:`FINDING_COLUMNS` (+ ``extra``), most severe first."""
    cols = [*FINDING_COLUMNS, *extra]
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    df = df.reindex(columns=cols)
    for col in ("value", "expected", "deviation"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ("entity_id", "period", "metric_id", "rule_id", "check", "message", "source_refs"):
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    if df.empty:
        return df.reset_index(drop=True)
    order = df["severity"].map(SEVERITY_RANK).fillna(9)
    df = df.assign(_o=order).sort_values(
        ["_o", "check", "rule_id", "entity_id", "period", "metric_id"], kind="stable"
    )
    return df.drop(columns="_o").reset_index(drop=True)


def fmt_pct(x: float) -> str:
    """A relative deviation in message text: ``0.052`` -> ``"+5.2%"``."""
    return fmt_figure(x, "+.1%")


fmt_num = fmt_significant  # a figure in message text (one formatter, in _report_format)
