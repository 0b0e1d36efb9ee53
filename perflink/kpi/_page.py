"""A table as the KPI page shows it: worded headers and codes, units, an optional note (not API).

The page's reading layer holds short tables (the group and its subsidiaries, the largest
findings) and its appendix the full ones; both are :class:`PageTable` objects so that
:func:`perflink.report.show` shows them (``appendix=True`` for the long ones) and a notebook
user sees the same table in JupyterLab.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from perflink._report_format import TABLE_MAX_ROWS, frame_html
from perflink.labels import spaced, t
from perflink.results import TaskResult, note_html

#: Subsidiaries a short table of the page lists at most (the appendix tables list them all):
#: the page reads the same for a group of 7 subsidiaries and one of 300.
TOP_SUBSIDIARIES = 12


@dataclass(frozen=True)
class PageTable(TaskResult):
    """One table of the KPI page, ready to show.

    Attributes
    ----------
    table : the rows as the page shows them (names, not ids; codes already in words).
    language : ``"zh"`` or ``"en"``.
    units : column -> unit of the numbers (see :func:`perflink.report.fmt_number`).
    headers : column -> header in the page language, for columns without a standard label.
    title : label key of the ``<h4>`` heading (format fields in ``title_fields``), or None.
    title_fields : values of the title's format fields.
    notes : HTML notes shown above the table (already escaped).
    max_rows : rows shown at most (the saved tables hold them all).
    interactive : searchable and paginated on screen (None: when long).
    """

    table: pd.DataFrame = field(repr=False)
    language: str = "zh"
    units: Mapping[str, str] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    title: str | None = None
    title_fields: Mapping[str, object] = field(default_factory=dict, repr=False)
    notes: str = field(default="", repr=False)
    max_rows: int = TABLE_MAX_ROWS
    interactive: bool | None = None

    def _repr_html_(self) -> str:
        table = self.table
        if "message" in table and self.language == "zh":  # sentences the code wrote
            table = table.assign(message=[spaced(m, "zh") for m in table["message"]])
        head = ""
        if self.title is not None:
            head = self._heading(self.title, **self.title_fields)
        units = {c: u for c, u in self.units.items() if c in table.columns}
        body = frame_html(
            table,
            lang=self.language,
            units=units,
            max_rows=self.max_rows,
            interactive=self.interactive,
            headers={c: h for c, h in self.headers.items() if c in table.columns},
        )
        return head + self.notes + body


def shown_of(shown: int, total: int, lang: str) -> str:
    """Note under a short table: "the N largest of M; all in the appendix table"."""
    if shown >= total:
        return ""
    return note_html("kpi.page.top", lang, shown=f"{shown:,}", total=f"{total:,}")


def free_text_header(col_label: str, lang: str) -> str:
    """Header of a column of user-entered text, marked as shown as entered."""
    return t("kpi.page.as_entered", lang, label=col_label)
