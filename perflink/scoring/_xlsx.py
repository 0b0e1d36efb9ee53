"""The scorecard workbook (``scorecard.xlsx``): one sheet per subsidiary, plus the group.

Formatted as the KPI page's scorecard (:meth:`ScorecardResult.scorecard_view`): one header
row in the report language, names and words instead of codes, completion as a percent,
amounts and targets in each metric's own unit (a unit column names it), scores with the
page's decimals; frozen header and names, filters, A4 landscape print fitted to the page
width (:mod:`perflink._report_xlsx`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import xlsxwriter

from perflink._report_tables import atomic_write
from perflink._report_xlsx import PCT, SCORE, Sheet, header_text, open_files_for, write_sheet
from perflink.charts import STATUS_WORD_COLORS
from perflink.scoring._result import ScorecardResult, _sheet

if TYPE_CHECKING:
    from perflink.catalog import Catalog

#: Amounts in each row's metric unit.
_AMOUNTS = ("actual_before", "actual", "target", "target_original", "adjustment", "gap")
_FORMATS = {
    "weight": PCT, "floor": PCT, "cap": PCT, "completion_before": PCT, "completion": PCT,
    "score_before": SCORE, "score": SCORE, "weighted_score": SCORE,
}  # fmt: skip


def write_scorecard_xlsx(
    result: ScorecardResult,
    path: str | Path | None = None,
    *,
    catalog: Catalog | None = None,
) -> Path | None:
    """Write the scorecard as an Excel workbook, one sheet per subsidiary (plus the group).

    Parameters
    ----------
    result : the scorecard.
    path : target file; default ``scorecard.xlsx`` in the parent of the report's tables folder
        (:func:`perflink.report.tables_dir`). ``None`` there (no run) writes nothing.
    catalog : the review's catalog (``review.catalog``): each metric's unit (its amounts are
        formatted in it: a rate as 86.7%) and name. Default the result's ``metric_units``
        and ``metric_names``; a metric without a unit is formatted as a plain amount.

    Returns
    -------
    Path of the workbook, or None when nothing was written. The file is written to a
    temporary name and renamed (atomic).
    """
    if path is None:
        from perflink.report import tables_dir

        folder = tables_dir()
        if folder is None:
            return None
        path = Path(folder).parent / "scorecard.xlsx"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lang = result.language
    units: Mapping[str, str] = dict(getattr(result, "metric_units", None) or {})
    metric_names: Mapping[str, str] = dict(getattr(result, "metric_names", None) or {})
    if catalog is not None:
        units = {m: spec.unit for m, spec in catalog.metrics.items()}
        metric_names = {m: spec.name(lang) for m, spec in catalog.metrics.items()}
    view = getattr(result, "scorecard_view", None)
    # the page's view: completion (not the attainment the rules score), basis in words
    card = view() if callable(view) else result.scorecard.copy()
    card.insert(1, "name", card["entity_id"].map(result.names))
    if "metric_id" in card and units:
        at = list(card.columns).index("metric_id") + 1
        card.insert(at, "unit", card["metric_id"].map(lambda m: units.get(m, "")))
    card["sheet"] = [_sheet(e, result.parents) for e in card["entity_id"]]
    spec = Sheet(
        formats=_FORMATS,
        row_unit="unit" if "unit" in card else None,
        row_unit_columns=_AMOUNTS,
        headers={"name": header_text("entity_name", lang)},
        # scheme ids in words where the result has them (as the page shows them)
        names={"metric_id": metric_names, "scheme_id": getattr(result, "scheme_names", None) or {}},
        freeze_cols=2,
        colors={"status": STATUS_WORD_COLORS},
        task="scoring",
    )
    parts = card.groupby("sheet", sort=True)

    def write(tmp: Path) -> None:
        # one workbook streamed a row at a time (XlsxWriter's constant_memory): pandas'
        # ExcelWriter looks every sheet up again per sheet written, quadratic in the ~700
        # subsidiaries of a large group
        open_files_for(parts.ngroups, name=path.name)
        with xlsxwriter.Workbook(str(tmp), {"constant_memory": True}) as book:
            for sheet, part in parts:
                # the entity id as the title: write_sheet makes it one Excel takes
                write_sheet(book, str(sheet), part.drop(columns=["sheet"]), lang=lang,
                            spec=spec)  # fmt: skip

    atomic_write(path, write)
    return path
