"""The scorecard workbook (``scorecard.xlsx``): one sheet per subsidiary, plus the group."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from perflink._report_tables import atomic_write, xlsx_row
from perflink.labels import column_label, t, value_label
from perflink.scoring._result import ScorecardResult, _sheet


def write_scorecard_xlsx(result: ScorecardResult, path: str | Path | None = None) -> Path | None:
    """Write the scorecard as an Excel workbook, one sheet per subsidiary (plus the group).

    Parameters
    ----------
    result : the scorecard.
    path : target file; default ``scorecard.xlsx`` in the parent of the report's tables folder
        (:func:`perflink.report.tables_dir`). ``None`` there (no run) writes nothing.

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
    card = result.scorecard.copy()
    card.insert(1, "name", card["entity_id"].map(result.names))
    # status and basis in words (达成 / 略低于目标 / 未达成), as the page shows them
    if "status" in card:
        card["status"] = [
            value_label("status", v, lang) if isinstance(v, str) else v for v in card["status"]
        ]
    if "basis" in card:
        card["basis"] = [
            t(f"report.value.basis.{v}", lang) if isinstance(v, str) else v for v in card["basis"]
        ]
    card["sheet"] = [_sheet(e, result.parents) for e in card["entity_id"]]
    # openpyxl's write-only workbook streams each sheet: pandas' ExcelWriter looks every
    # sheet up again per sheet written, quadratic in the ~700 subsidiaries of a large group.
    book = Workbook(write_only=True)
    for sheet, part in card.groupby("sheet", sort=True):
        out = part.drop(columns=["sheet"])
        ws = book.create_sheet(title=_sheet_title(sheet))
        ws.freeze_panes = "C2"
        for i in range(1, out.shape[1] + 1):
            ws.column_dimensions[get_column_letter(i)].width = 14
        ws.append(xlsx_row(ws, [column_label(c, lang) for c in out.columns]))
        for row in out.itertuples(index=False, name=None):
            # text as string cells: a name or scheme id starting with '=' stays text
            ws.append(xlsx_row(ws, [_cell(v) for v in row]))
    atomic_write(path, book.save)
    return path


def _cell(value: object) -> object:
    """A scorecard value as openpyxl writes it: missing -> empty, periods as text."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Period):
        return str(value)
    return value.item() if isinstance(value, np.generic) else value


def _sheet_title(entity: object) -> str:
    """An entity id as an Excel sheet title: no ``[]:*?/\\``, no leading or trailing
    apostrophe, at most 31 characters (an id like ``S/1`` would fail the whole workbook)."""
    title = str(entity).translate(str.maketrans(dict.fromkeys("[]:*?/\\", "_")))
    return title.strip("'")[:31] or "_"
