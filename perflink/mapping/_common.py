"""Shared pieces of :mod:`perflink.mapping`: findings frames, names, periods, HTML tables.

Not API: import from :mod:`perflink.mapping`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from perflink import labels
from perflink._report_format import frame_html
from perflink.catalog import Catalog, Rule
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

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_DOWNGRADE = {"critical": "high", "high": "medium", "medium": "low", "low": "low", "info": "info"}
_FACT_COLUMNS = ("entity_id", "period", "metric_id", "value")
# columns whose codes have labels under mapping.value.<col>.<code>
_CODED = ("check", "cause", "strength", "model", "level")
# standard column names that mean something else here (``target`` is a metric id, not a value)
_OWN_HEADERS = ("target",)


def lang_of(lang: str | None) -> str:
    """The language to write messages in (default: the current report language)."""
    return labels._check_lang(lang)


def downgrade(severity: str) -> str:
    """One severity level lower (used for findings before the review quarter)."""
    return _DOWNGRADE[severity]


def quarter_of(quarter: str | pd.Period) -> pd.Period:
    """The review quarter as a ``Q`` Period; a clear error for anything else."""
    try:
        q = pd.Period(quarter, freq="Q")
    except (ValueError, TypeError):
        raise PerflinkError(
            f"quarter: cannot read {quarter!r} as a quarter; use e.g. '2026Q3'"
        ) from None
    return q


def quarter_months(quarter: pd.Period) -> pd.PeriodIndex:
    """The three months of a quarter."""
    return pd.period_range(quarter.asfreq("M", "start"), quarter.asfreq("M", "end"), freq="M")


def check_facts(facts: object, what: str) -> pd.DataFrame:
    """Raise :class:`InputError` unless ``facts`` is a facts table with monthly periods."""
    if not isinstance(facts, pd.DataFrame):
        raise InputError(f"{what}: facts must be a pandas DataFrame, got {type(facts).__name__}")
    missing = [c for c in _FACT_COLUMNS if c not in facts.columns]
    if missing:
        raise InputError(
            f"{what}: facts table lacks column(s) {', '.join(missing)}; it needs "
            f"{', '.join(_FACT_COLUMNS)} (and optionally source_system, source_ref)"
        )
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
    order = df["severity"].map(SEVERITY_ORDER).fillna(9)
    df = df.assign(_o=order).sort_values(
        ["_o", "check", "rule_id", "entity_id", "period", "metric_id"], kind="stable"
    )
    return df.drop(columns="_o").reset_index(drop=True)


def fmt_pct(x: float) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{x:+.1%}"


def fmt_num(x: float) -> str:
    if x is None or not np.isfinite(x):
        return "—"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:,.1f}"
    return f"{x:.3g}"


def table_html(
    df: pd.DataFrame, *, lang: str | None = None, pct: Iterable[str] = (), max_rows: int = 200
) -> str:
    """Escaped, localised HTML table; headers of mapping-only columns come from ``mapping.col.*``.

    Standard columns keep their ``report.col.*`` headers and coded values; columns only this
    module has are renamed to their ``mapping.col.<col>`` label before rendering.
    """
    lang = lang_of(lang)
    table = labels._load()
    rename = {}
    for col in df.columns:
        own = f"mapping.col.{col}" in table
        if own and (f"report.col.{col}" not in table or col in _OWN_HEADERS):
            rename[col] = labels.t(f"mapping.col.{col}", lang)
    out = df.copy()
    for col in out.columns:
        if col in _CODED:
            key = f"mapping.value.{col}."
            out[col] = out[col].map(
                lambda v, key=key: labels.t(key + str(v), lang) if key + str(v) in table else v
            )
    out = out.rename(columns=rename)
    units = {rename.get(c, c): "pct" for c in pct if c in df.columns}
    return frame_html(out, lang=lang, units=units, max_rows=max_rows)


def section_html(title: str, body: str) -> str:
    return f'<div class="pl-result"><h4>{html.escape(title)}</h4>{body}</div>'
