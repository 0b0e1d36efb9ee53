"""The finance / HR workbook ``reports/<quarter>/review.xlsx`` (not API; see perflink.summary).

One sheet per table people act on, in the report language (one header row, codes in words,
metric ids as metric names; :mod:`perflink._report_xlsx` gives both workbooks one look):
numbers formatted with their units, widths from the content, long text wrapped, evidence
links live, header frozen, filtered and repeated on every printed page (A4 landscape, fit
to the page width); status and severity coloured by conditional formatting on the cell's
own words (so sorting and filtering never break it); values only, no formulas: every text
cell is a string cell, whatever it starts with (:func:`perflink._report_xlsx.write_sheet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from perflink import labels
from perflink._report_format import ReportError
from perflink._report_tables import atomic_write
from perflink._report_xlsx import (
    AMOUNT,
    DECIMAL,
    PCT,
    PLAIN,
    SCORE,
    Sheet,
    header_text,
    write_sheet,
)
from perflink.charts import SEVERITY_COLORS, STATUS_COLORS, STATUS_WORD_COLORS

#: Sheet order: (key, table source). ``findings``/``actions`` come from the summary result.
SHEETS: tuple[str, ...] = (
    "findings", "actions", "scorecard", "bonus", "forecast_deviation", "anomalies",
)  # fmt: skip

_PCT = {
    "completion", "completion_before", "weight", "deviation_pct", "p_meet_budget",
    "deviation_assessment_pct", "p_meet_assessment", "overrun_pct", "coefficient",
    "lead_vs_budget", "lead_vs_last_year", "dq_index", "fc_error_pct", "floor", "cap",
}  # fmt: skip
#: Amounts of money in the catalog's money unit (their headers name it).
_AT_STAKE = {
    "at_stake", "at_stake_risk", "base_bonus", "bonus", "pool_budget", "payout", "overrun",
    "effect",
}  # fmt: skip
#: Amounts in each row's metric unit (the sheet gets a ``unit`` column after ``metric_id``):
#: a forecast of sales in kUSD next to one of orders, a yield anomaly next to a cost one.
_METRIC_AMOUNTS = {
    "ytd_actual", "forecast_rest", "projected", "lo_80", "hi_80", "lo_95", "hi_95", "budget",
    "deviation", "assessment", "deviation_assessment", "gap", "value", "expected", "lower",
    "upper", "actual_before", "actual", "target", "target_original", "adjustment",
}  # fmt: skip
#: At stake of a forecast row is its shortfall in the metric's own unit.
_PER_ROW_AT_STAKE = {"forecast_deviation"}
_SCORE = {"score", "score_before", "weighted_score"}
_INTS = {"rank", "n_periods", "quarters_open", "year", "lead_months"}
#: Colours of every status code a sheet may hold: the status words (met ... off track) and,
#: while a task table still has them, the older green / amber / red codes.
_STATUS_FILLS = {**STATUS_COLORS, **STATUS_WORD_COLORS}
#: Left out: source document ids (in tables/), the explanation the message repeats, the
#: scoring inputs the page does not show either (it shows completion), and the metric name
#: column a sheet already shows in its metric column.
_DROP = {"source_refs", "explanation", "attainment", "attainment_before", "metric"}
_HEADER_PREFIXES = ("summary", "mapping", "forecast", "anomaly", "kpi", "scoring")
#: The task whose table a sheet is (its page's headers first).
_TASKS = {
    "findings": "summary", "actions": "summary", "scorecard": "scoring", "bonus": "scoring",
    "forecast_deviation": "forecast", "anomalies": "anomaly",
}  # fmt: skip
#: Columns holding metric ids (shown as the metric's name).
_METRIC_COLS = ("metric_id", "feature", "subject")


def header(col: str, lang: str) -> str:
    """Column header in ``lang``: ``report.col.<col>``, else ``<task>.col.<col>``, else col."""
    text = labels.column_label(col, lang)
    if text != col:
        return text
    for prefix in _HEADER_PREFIXES:
        try:
            return labels.t(f"{prefix}.col.{col}", lang)
        except labels.LabelError:
            continue
    return col


def _with_units(df: pd.DataFrame, units: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with a ``unit`` column after ``metric_id`` when it holds amounts in each
    metric's own unit (a forecast of sales in kUSD next to one of orders)."""
    if "metric_id" not in df or "unit" in df or not (_METRIC_AMOUNTS & set(df.columns)):
        return df
    at = list(df.columns).index("metric_id") + 1
    return df.assign(unit=df["metric_id"].map(lambda m: units.get(m, ""))).reindex(
        columns=[*df.columns[:at], "unit", *df.columns[at:]]
    )


def _sheet_tables(result: Any) -> dict[str, pd.DataFrame]:
    inputs = result.inputs
    get = inputs.get if inputs is not None else (lambda name: None)
    # the summary's money at stake is risk only, a missed target priced by its YTD gap: the
    # header says so (a task sheet's at_stake keeps the task's own meaning)
    findings = result.findings.to_frame().rename(columns={"at_stake": "at_stake_risk"})
    tables = {
        "findings": findings,
        "actions": result.actions.to_frame(),
        "scorecard": get("scorecard"),
        "bonus": get("bonus"),
        "forecast_deviation": get("forecast_deviation"),
        "anomalies": get("anomalies"),
    }
    units = getattr(result, "units", None) or {}
    return {
        k: _with_units(v.drop(columns=[c for c in v.columns if c in _DROP]), units)
        for k, v in tables.items()
        if v is not None
    }


def _pairs(frames: list[pd.DataFrame], code: str, name: str) -> dict[str, str]:
    """code -> name from every table that has both columns (entity_id / entity, ...)."""
    out: dict[str, str] = {}
    for df in frames:
        if code in df and name in df:
            for c, n in zip(df[code], df[name], strict=True):
                if isinstance(c, str) and isinstance(n, str) and n:
                    out.setdefault(c, n)
    return out


def _spec(key: str, df: pd.DataFrame, result: Any, names: dict[str, dict[str, str]]) -> Sheet:
    """How the table ``key`` is shown: formats, units, names, links, colours."""
    cols = set(df.columns)
    money = getattr(result, "money_unit", None)
    per_row = "unit" in cols and "metric_id" in cols
    row_cols = _METRIC_AMOUNTS | (_AT_STAKE if key in _PER_ROW_AT_STAKE else set())
    units = {c: money for c in _AT_STAKE - row_cols if c in cols and money}
    formats = {c: PCT for c in _PCT} | {c: AMOUNT for c in _AT_STAKE}
    formats |= {c: PLAIN for c in _INTS} | {c: SCORE for c in _SCORE}
    headers = {}
    if key == "anomalies" and "score" in cols:  # a robust z, not an assessment score
        formats["score"] = DECIMAL
        headers["score"] = header_text("anomaly_score", result.language)
    colors = {c: _STATUS_FILLS for c in cols if str(c).startswith("status")}
    return Sheet(
        formats=formats,
        units=units,
        row_unit="unit" if per_row else None,
        row_unit_columns=row_cols if per_row else (),
        headers=headers,
        names={c: names["metric"] for c in _METRIC_COLS} | {"parent_id": names["entity"]},
        links=("evidence_link",),
        colors={"severity": SEVERITY_COLORS, **colors},
        task=_TASKS.get(key),
    )


def write_workbook(
    result: Any, *, path: str | Path | None = None, catalog: Any = None
) -> Path | None:
    """Write the finance / HR workbook and return its path (None when there is nowhere to write).

    Parameters
    ----------
    result : SummaryResult
        From :func:`perflink.summary.summarize`.
    path : str or Path, optional
        Where to write; default ``<tables_dir>/../review.xlsx`` (``reports/<quarter>/``).
        Without a tables folder (JupyterLab) and without ``path`` nothing is written.
    catalog : Catalog, optional
        The review's catalog (``review.catalog``): metric names in the report language.
        Without it the names the anomaly table carries are used; a metric without a name is
        shown by its id.

    Sheets (named in the report language): findings (summary findings, ranked, with the
    review-loop columns), actions (suggestions), scorecard, bonus, forecast deviation,
    anomalies — each when its table exists. One header row in the report language (frozen,
    filtered, repeated on printed pages); rates ``0.0%``, amounts ``#,##0.0``. Money at
    stake and bonus columns are in the catalog's money unit, which their headers name
    (``风险金额（千美元）`` / ``At stake (USD k)``); sheets with amounts in each metric's own
    unit (forecast, scorecard, anomalies) get a unit column after the metric and format each
    amount in its row's unit (a yield as 86.7%, a cost as 1,190.7).

    Raises
    ------
    ReportError
        If ``path`` is not an ``.xlsx`` file name.
    """
    import xlsxwriter

    if path is None:
        tdir = result.inputs.tables_dir if result.inputs is not None else None
        if tdir is None:
            return None
        path = Path(tdir).parent / "review.xlsx"
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise ReportError(f"write_workbook: {path} must end in .xlsx.")
    lang = getattr(result, "language", None) or labels.get_language()
    tables = _sheet_tables(result)
    raw = [v for k, v in _raw_tables(result).items() if v is not None]
    names = {
        "metric": {
            **_pairs(raw, "metric_id", "metric"),
            **dict(getattr(result, "metric_names", None) or {}),
            **({m: s.name(lang) for m, s in catalog.metrics.items()} if catalog else {}),
        },
        "entity": {
            **_pairs(raw, "entity_id", "entity"),
            **dict(getattr(result, "names", None) or {}),
        },
    }
    frames = {key: _named(df, names["entity"]) for key, df in tables.items()}

    def write(tmp: Path) -> None:
        with xlsxwriter.Workbook(str(tmp), {"constant_memory": True}) as book:
            for key, df in frames.items():
                title = labels.t(f"workbook.sheet.{key}", lang)
                write_sheet(book, title, df, lang=lang, spec=_spec(key, df, result, names))

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    return path


def _named(df: pd.DataFrame, entities: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with the entity's name after its id, when every entity of it has one."""
    if "entity_id" not in df or "entity" in df or not len(df):
        return df
    ids = df["entity_id"]
    if not all(isinstance(e, str) and e in entities for e in ids):
        return df
    out = df.copy()
    out.insert(list(df.columns).index("entity_id") + 1, "entity", ids.map(entities))
    return out


def _raw_tables(result: Any) -> dict[str, pd.DataFrame | None]:
    """The tables as read (with their name columns, before :data:`_DROP`)."""
    inputs = result.inputs
    get = inputs.get if inputs is not None else (lambda name: None)
    return {"findings": result.findings.to_frame(), "anomalies": get("anomalies")}
