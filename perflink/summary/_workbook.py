"""The finance / HR workbook ``reports/<quarter>/review.xlsx`` (not API; see perflink.summary).

One sheet per table people act on; two header rows (Chinese, English), frozen; filters;
number formats; status and severity coloured by conditional formatting on the cell's own
value (so sorting and filtering never break it); values only, no formulas: every text
cell is a string cell, whatever it starts with (``_report_tables.xlsx_row``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from perflink import labels
from perflink._report_format import ReportError
from perflink._report_tables import atomic_write, xlsx_row
from perflink.charts import SEVERITY_COLORS, STATUS_COLORS, STATUS_WORD_COLORS
from perflink.units import parse_unit, unit_label

#: Sheet order: (key, table source). ``findings``/``actions`` come from the summary result.
SHEETS: tuple[str, ...] = (
    "findings", "actions", "scorecard", "bonus", "forecast_deviation", "anomalies",
)  # fmt: skip

_PCT = {
    "completion", "completion_before", "weight", "deviation_pct", "p_meet_budget",
    "deviation_assessment_pct", "p_meet_assessment", "overrun_pct", "coefficient",
    "lead_vs_budget", "lead_vs_last_year", "dq_index", "fc_error_pct",
}  # fmt: skip
#: Amounts of money in the catalog's money unit (their headers name it).
_AT_STAKE = {
    "at_stake", "at_stake_risk", "base_bonus", "bonus", "pool_budget", "payout", "overrun",
}  # fmt: skip
#: Amounts in each row's metric unit (the sheet gets a ``unit`` column after ``metric_id``).
_METRIC_AMOUNTS = {
    "ytd_actual", "forecast_rest", "projected", "lo_80", "hi_80", "lo_95", "hi_95", "budget",
    "deviation", "assessment", "deviation_assessment", "gap",
}  # fmt: skip
_MONEY = _AT_STAKE | _METRIC_AMOUNTS
# a unit in brackets at the end of a header: "奖金（万元）", "Bonus (CNY 10k)"
_BRACKETED = re.compile(r"\s*[（(]([^（）()]+)[)）]\s*$")
_SCORE = {"score", "score_before", "weighted_score"}
#: Colours of every status code a sheet may hold: the status words (met ... off track) and,
#: while a task table still has them, the older green / amber / red codes.
_STATUS_FILLS = {**STATUS_COLORS, **STATUS_WORD_COLORS}
_DROP = {"source_refs", "explanation"}
_HEADER_PREFIXES = ("summary", "mapping", "forecast", "anomaly", "kpi", "scoring")


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


def money_header(col: str, lang: str, unit: str | None) -> str:
    """Header of a money column naming the catalog's money unit ``unit`` in ``lang``
    (``奖金（千美元）``, ``Bonus (USD k)``), whatever unit its label was written with."""
    text = header(col, lang)
    if unit is None:
        return text
    words = unit_label(unit, lang)
    if "{unit}" in text:
        return text.replace("{unit}", words)
    m = _BRACKETED.search(text)
    if m and parse_unit(m[1].strip()).is_money:
        text = text[: m.start()]
    return f"{text}（{words}）" if lang == "zh" else f"{text} ({words})"


def _with_units(df: pd.DataFrame, units: Mapping[str, str]) -> pd.DataFrame:
    """``df`` with a ``unit`` column after ``metric_id`` when it holds amounts in each
    metric's own unit (a forecast of sales in kUSD next to one of orders)."""
    if "metric_id" not in df or "unit" in df or not (_METRIC_AMOUNTS & set(df.columns)):
        return df
    at = list(df.columns).index("metric_id") + 1
    return df.assign(unit=df["metric_id"].map(lambda m: units.get(m, ""))).reindex(
        columns=[*df.columns[:at], "unit", *df.columns[at:]]
    )


def _cells(df: pd.DataFrame) -> list[list[Any]]:
    out = df.copy()
    for c in out.columns:
        s = out[c]
        if isinstance(s.dtype, pd.PeriodDtype) or s.map(lambda v: isinstance(v, pd.Period)).any():
            out[c] = s.map(lambda v: str(v) if isinstance(v, pd.Period) else v)
    values = out.astype(object).where(out.notna(), None).to_numpy().tolist()
    return [[_plain(v) for v in row] for row in values]


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


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


def write_workbook(result: Any, *, path: str | Path | None = None) -> Path | None:
    """Write the finance / HR workbook and return its path (None when there is nowhere to write).

    Parameters
    ----------
    result : SummaryResult
        From :func:`perflink.summary.summarize`.
    path : str or Path, optional
        Where to write; default ``<tables_dir>/../review.xlsx`` (``reports/<quarter>/``).
        Without a tables folder (JupyterLab) and without ``path`` nothing is written.

    Sheets: ``findings`` (summary findings, ranked, with the review-loop columns),
    ``actions`` (suggestions), ``scorecard``, ``bonus``, ``forecast_deviation``,
    ``anomalies`` — each when its table exists. Row 1 holds Chinese headers, row 2 English
    headers (both frozen, filters on row 2); amounts ``#,##0.0``, rates ``0.0%``. Money at
    stake and bonus columns are in the catalog's money unit, which their headers name
    (``涉及金额（千美元）`` / ``At stake (USD k)``); sheets with amounts in each metric's own
    unit (the forecast) get a ``unit`` column after ``metric_id``.

    Raises
    ------
    ReportError
        If ``path`` is not an ``.xlsx`` file name.
    """
    from openpyxl import Workbook
    from openpyxl.formatting.rule import CellIsRule
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    if path is None:
        tdir = result.inputs.tables_dir if result.inputs is not None else None
        if tdir is None:
            return None
        path = Path(tdir).parent / "review.xlsx"
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise ReportError(f"write_workbook: {path} must end in .xlsx.")
    wb = Workbook()
    wb.remove(wb.active)
    bold = Font(bold=True)
    for key, df in _sheet_tables(result).items():
        ws = wb.create_sheet(labels.t(f"summary.sheet.{key}", "en")[:31])
        cols = [str(c) for c in df.columns]
        money = getattr(result, "money_unit", None)
        for lang in labels.LANGUAGES:  # bilingual header rows: HR and finance read either
            # with a unit column the amounts are in each row's unit, at stake included
            per_row = "unit" in cols and "metric_id" in cols
            heads = [money_header(c, lang, money) if c in _AT_STAKE and not per_row
                     else header(c, lang) for c in cols]  # fmt: skip
            ws.append(xlsx_row(ws, heads))
        for cell in (*ws[1], *ws[2]):
            cell.font = bold
        for row in _cells(df):  # text as string cells: a name starting '=' is no formula
            ws.append(xlsx_row(ws, row))
        last = ws.max_row
        ws.freeze_panes = "A3"
        if cols:
            ws.auto_filter.ref = f"A2:{get_column_letter(len(cols))}{max(last, 2)}"
        for i, c in enumerate(cols, start=1):
            letter = get_column_letter(i)
            fmt = "0.0%" if c in _PCT else "#,##0.0" if c in _MONEY or c in _SCORE else None
            if fmt and last > 2:
                for (cell,) in ws.iter_rows(min_row=3, max_row=last, min_col=i, max_col=i):
                    cell.number_format = fmt
            width = max(len(header(c, "en")), len(header(c, "zh")) * 2, 8)
            ws.column_dimensions[letter].width = min(width + 2, 60 if c == "message" else 24)
            colors = (
                SEVERITY_COLORS if c == "severity" else _STATUS_FILLS if c.startswith("status")
                else None
            )  # fmt: skip
            if colors and last > 2:
                for code, color in colors.items():
                    fill = PatternFill(
                        start_color=color[1:], end_color=color[1:], fill_type="solid"
                    )
                    ws.conditional_formatting.add(
                        f"{letter}3:{letter}{last}",
                        CellIsRule(operator="equal", formula=[f'"{code}"'], fill=fill,
                                   font=Font(color="FFFFFF")),
                    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, wb.save)
    return path
