"""The base every task result derives from: :class:`TaskResult`.

A result is a frozen dataclass holding tables (pandas DataFrames) and the ``language`` of its
labels. The base gives what every result shares, so a new result writes only what is new
(as scikit-learn's Display objects share a mixin and statsmodels' summaries one renderer):

- :meth:`~TaskResult.to_frame`: a copy of the main table (the field named by ``_frame``);
- :meth:`~TaskResult._repr_html_`: an optional heading (``_title``), then :meth:`view` as
  one escaped, localised table through :func:`perflink._report_format.frame_html` (the one
  table renderer), or a note (``_empty``) when there is nothing to show;
- :meth:`~TaskResult._empty_chart`: the chart of an empty result (:func:`perflink.charts.message`);
- :meth:`~TaskResult.tables` and :meth:`~TaskResult.findings_table`: what the result saves
  and its findings, for the runner and the summary.

Presentation only: results never compute; computing modules build them. This module is part
of the shared core: it imports labels, charts and the formatting helpers, never a task or
:mod:`perflink.report`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import altair as alt
import pandas as pd

from perflink import charts
from perflink._report_format import TABLE_MAX_ROWS, frame_html
from perflink.errors import ParamsError
from perflink.labels import LANGUAGES, t

__all__ = ["QuarterResult", "TableResult", "TaskResult", "note_html"]

_NO_UNITS: Mapping[str, str] = MappingProxyType({})


def note_html(key: str, lang: str, **fmt: object) -> str:
    """A short localised note (``<p class="pl-note">``), the label ``key`` escaped."""
    return f'<p class="pl-note">{html.escape(t(key, lang, **fmt))}</p>'


@dataclass(frozen=True)
class TaskResult:
    """Base of every task result: a frozen dataclass with a main table and a ``language``.

    A subclass is a ``@dataclass(frozen=True)`` that declares its fields, among them
    ``language: str`` (``"zh"`` or ``"en"``, checked on creation: the review's language, passed
    by the task function, never a global), and sets the class attributes it needs:

    ``_frame``
        Name of the field holding the main table (default ``"table"``);
        :meth:`to_frame` returns a copy of it.
    ``_title``
        Label key of the ``<h4>`` heading of its HTML (format field ``quarter`` when the
        result has a ``quarter`` field), or ``None``.
    ``_empty``
        Label key of the note shown instead of an empty table, and of the text of
        :meth:`_empty_chart`, or ``None``.
    ``_units``
        Column -> unit of the HTML table (see :func:`perflink.report.fmt_number`); columns
        the shown table lacks are ignored.
    ``_table_name``
        Name of the table it saves (``tables/<name>.csv``), or ``None``.
    ``_findings``
        Name of the field holding its findings (findings contract), or ``None``.

    It then overrides what differs: :meth:`view` (the table as people read it),
    :meth:`chart`, :meth:`_table` (e.g. task-specific column labels) or, for a result made of
    several parts, :meth:`_repr_html_`.

    Raises
    ------
    ParamsError
        On creation, if ``language`` is not one of :data:`perflink.labels.LANGUAGES`.
    """

    _frame: ClassVar[str] = "table"
    _title: ClassVar[str | None] = None
    _empty: ClassVar[str | None] = None
    _units: ClassVar[Mapping[str, str]] = _NO_UNITS
    _table_name: ClassVar[str | None] = None
    _findings: ClassVar[str | None] = None

    def __post_init__(self) -> None:
        lang = getattr(self, "language", None)
        if lang not in LANGUAGES:
            raise ParamsError(
                f"{type(self).__name__}: language {lang!r} is not supported; use one of "
                f"{', '.join(LANGUAGES)} (the review's `language`)."
            )

    # -- tables -----------------------------------------------------------------------------

    def to_frame(self) -> pd.DataFrame:
        """A copy of the main table (the field named by ``_frame``)."""
        return getattr(self, self._frame).copy()

    def view(self) -> pd.DataFrame:
        """The table its HTML shows (default: the main table)."""
        return getattr(self, self._frame)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables this result saves, name -> table (``{}`` if it saves none)."""
        return {} if self._table_name is None else {self._table_name: self.to_frame()}

    def findings_table(self) -> pd.DataFrame | None:
        """Its findings table (findings contract), or ``None`` if it has none."""
        if self._findings is None:
            return None
        value = getattr(self, self._findings)
        return value() if callable(value) else value

    # -- presentation -----------------------------------------------------------------------

    def chart(self) -> alt.TopLevelMixin:
        """A chart of the result; the base draws only the empty-result message."""
        return self._empty_chart()

    def _empty_chart(self) -> alt.Chart:
        """The chart of an empty result: the ``_empty`` note as text."""
        return charts.message(t(self._empty or "report.chart.empty", self.language))

    def _heading(self, key: str | None = None, **fmt: object) -> str:
        """``<h4>`` with the label ``key`` (default ``_title``), or ``""`` without one."""
        key = key or self._title
        if key is None:
            return ""
        own = vars(self)  # the dataclass fields
        if "quarter" not in fmt and "quarter" in own:
            fmt["quarter"] = own["quarter"]
        return f"<h4>{html.escape(t(key, self.language, **fmt))}</h4>"

    def _note(self, key: str, **fmt: object) -> str:
        """A localised note (see :func:`note_html`)."""
        return note_html(key, self.language, **fmt)

    def _table(
        self,
        df: pd.DataFrame,
        *,
        units: Mapping[str, str] | None = None,
        max_rows: int = TABLE_MAX_ROWS,
        **options: Any,
    ) -> str:
        """``df`` as HTML through :func:`~perflink._report_format.frame_html`.

        Units: the class's ``_units`` for the columns ``df`` has, then ``units``; other
        keyword options (``order``, ``interactive``) are passed on.
        """
        cols = {str(c) for c in df.columns}
        merged = {c: u for c, u in self._units.items() if c in cols}
        merged.update(units or {})
        df, headers = self._labelled(df)
        if headers:
            options["headers"] = {**headers, **options.get("headers", {})}
        return frame_html(df, lang=self.language, units=merged, max_rows=max_rows, **options)

    def _labelled(self, df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
        """Hook for a task's own labels: the table with its codes labelled, and column ->
        header for the columns only this task has. The base keeps the standard labels."""
        return df, {}

    def _repr_html_(self) -> str:
        df = self.view()
        if df.empty and self._empty is not None:
            return self._note(self._empty)
        return self._heading() + self._table(df)


@dataclass(frozen=True)
class TableResult(TaskResult):
    """A result that is one table in one language, the common case.

    Attributes
    ----------
    table : DataFrame
        The main table (:meth:`to_frame` returns a copy).
    language : str
        ``"zh"`` or ``"en"``.
    """

    table: pd.DataFrame = field(repr=False)
    language: str


@dataclass(frozen=True)
class QuarterResult(TaskResult):
    """A result of one review quarter: its first fields are ``quarter`` and ``language``.

    Attributes
    ----------
    quarter : str
        The review quarter, ``"2026Q3"`` (the ``{quarter}`` of its heading).
    language : str
        ``"zh"`` or ``"en"``.
    """

    quarter: str
    language: str
