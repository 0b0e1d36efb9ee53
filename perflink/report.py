"""Presenting results: notebook display helpers, saved tables and offline HTML pages.

Notebooks hold no logic; they call these functions::

    perflink.report.configure(language="zh", tables_dir=Path("reports/2026Q3/tables"))
    perflink.report.heading("kpi.heading.scores")
    perflink.report.show(result)                  # a Result, DataFrame or altair chart
    perflink.report.show(details, appendix=True)  # on screen; in print a pointer to review.xlsx
    perflink.report.save_table(findings, "kpi_findings", findings=True)
    perflink.report.glossary("elasticity", "r2")  # "Terms used on this page", at its end

A page has a reading layer (what a leader reads: sentences, charts, short tables) and an
appendix: long tables shown with ``appendix=True``, which the printed page replaces by one line
pointing to the workbook. Printed in Chromium on A4, pages follow perflink.css: no forced page
breaks, headings kept with what follows, tables fitted to the width.

Language: :func:`configure` sets the page language once per notebook; only this report layer
(:func:`heading`, :func:`text`, :func:`show` of a plain table, the chart time locale) reads
it. Results carry their own ``language`` (the review's, passed by the task functions) and
never read the page language (:class:`perflink.results.TaskResult`).

The runner then calls :func:`render_task_html` for each executed notebook and
:func:`render_index` for the landing page. Pages load nothing from outside the file: each chart is
its Vega-Lite spec, drawn by the reader's browser with the vega-embed bundle inlined once per
page (so labels are measured with the reader's fonts), and the CSS is embedded.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import altair as alt
import pandas as pd
from IPython.display import HTML, Markdown
from IPython.display import display as _display

from perflink import _report_lab, charts, labels
from perflink._report_format import (
    MISSING,
    PAGE_ROWS,
    TABLE_MAX_ROWS,
    ReportError,
    appendix_html,
    fmt_bytes,
    fmt_duration,
    fmt_money,
    fmt_number,
    fmt_period,
    frame_html,
    glossary_html,
)
from perflink._report_html import render_index, render_task_html
from perflink._report_tables import write_table
from perflink.common import SEVERITIES, check_findings

__all__ = [
    "MISSING",
    "PAGE_ROWS",
    "SEVERITIES",
    "TABLE_MAX_ROWS",
    "ReportError",
    "appendix_html",
    "configure",
    "fmt_bytes",
    "fmt_duration",
    "fmt_money",
    "fmt_number",
    "fmt_period",
    "glossary",
    "glossary_html",
    "heading",
    "render_index",
    "render_task_html",
    "save_table",
    "show",
    "tables_dir",
    "text",
]

_state: dict[str, Path | None] = {"tables_dir": None}
_TIME_LOCALES = {"zh": "zh-CN", "en": "en-US"}  # d3 time-format locales bundled in vl-convert


def configure(*, language: str, tables_dir: Path | None) -> None:
    """Set up a notebook session for the report (the first cell calls this via open_review).

    Enables perflink's chart renderer (:func:`perflink.charts.enable_renderer`: each chart is
    its Vega-Lite spec drawn by the reader's browser offline; in JupyterLab the output carries
    the bundle itself) and the perflink chart theme, sets the report language for labels and formats, and sets the folder
    :func:`save_table` writes to.

    Parameters
    ----------
    language
        ``"zh"`` or ``"en"``.
    tables_dir
        Folder for ``<name>.csv`` / ``<name>.parquet``; ``None`` (JupyterLab exploration) makes
        :func:`save_table` a no-op.

    Raises
    ------
    ParamsError
        If ``language`` is not supported.
    ReportError
        If ``tables_dir`` exists and is not a folder.
    """
    labels.set_language(language)
    if tables_dir is not None:
        tables_dir = Path(tables_dir)
        if tables_dir.exists() and not tables_dir.is_dir():
            raise ReportError(f"configure: tables_dir {tables_dir} exists and is not a folder.")
    _state["tables_dir"] = tables_dir
    charts.theme()
    # Charts are laid out by the reader's browser (vega-embed inlined; bundle per output in Lab).
    charts.enable_renderer(inline_bundle=tables_dir is None)
    # Month names on time axes in the report language ("七月", not "July", on a zh page).
    alt.renderers.set_embed_options(time_format_locale=_TIME_LOCALES[labels.get_language()])


def tables_dir() -> Path | None:
    """The folder :func:`save_table` writes to, or ``None`` if tables are not saved."""
    return _state["tables_dir"]


def save_table(df: pd.DataFrame, name: str, *, findings: bool = False) -> None:
    """Save a result table as ``<tables_dir>/<name>.csv`` and ``<name>.parquet``.

    Returns nothing, so that a notebook cell ending in ``save_table(...)`` does not also print
    the raw frame into the report.

    The CSV is UTF-8 with a BOM (Excel opens Chinese correctly) with ``\\n`` line ends; the
    index is written only if it is named. Periods are written as strings (``"2026-09"``) in
    both files. Both files are written to a temporary name and then renamed, so a reader never
    sees half a file. When :func:`configure` set ``tables_dir=None`` nothing is written.

    Parameters
    ----------
    df
        The table. With ``findings=True`` it must have ``entity_id``, ``period``,
        ``metric_id`` or ``rule_id``, ``severity`` (one of :data:`SEVERITIES`) and ``message``.
    name
        File stem, e.g. ``"kpi_scores"`` (letters, digits, ``_``, ``-``, ``.``).
    findings
        Check the findings contract before writing.

    Raises
    ------
    ReportError
        If ``df`` is not a DataFrame, ``name`` is not a plain stem, or a findings table
        breaks the contract (names the missing columns or bad severity values and rows).
    """
    folder = _state["tables_dir"]
    if folder is None:
        if not isinstance(df, pd.DataFrame):
            raise ReportError(
                f"save_table({name!r}): expected a pandas DataFrame, got {type(df).__name__}."
            )
        if findings:
            check_findings(df, name)
        return
    write_table(df, name, folder, findings=findings)


def _escaped(fmt: Mapping[str, object]) -> dict[str, str]:
    # Format values may be user data (entity names): they must show as text, not markup.
    return {k: html.escape(str(v)) for k, v in fmt.items()}


def heading(key: str, level: int = 2, **fmt: object) -> None:
    """Display the label ``key`` as a Markdown heading (``level`` 1-6) in the page language.

    The page language is the one :func:`configure` set (``open_review`` calls it); this
    notebook helper is the only kind of code that reads it.
    """
    if not isinstance(level, int) or not 1 <= level <= 6:
        raise ReportError(f"heading({key!r}): level must be an integer 1-6, got {level!r}.")
    _display(Markdown("#" * level + " " + labels.t(key, **_escaped(fmt))))


def text(key: str, **fmt: object) -> None:
    """Display the label ``key`` as Markdown (a paragraph of narrative) in the page language.

    The page language is the one :func:`configure` set, as for :func:`heading`.
    """
    _display(Markdown(labels.t(key, **_escaped(fmt))))


def glossary(*terms: str, lang: str | None = None, metrics: Sequence[object] = ()) -> None:
    """Display the page's "本页术语 / Terms used on this page" box, one line per term.

    Each term's line is the label ``glossary.<term>`` (one plain sentence, zh and en). Shared
    terms (shapley, elasticity, r2, p_value, robust_z, mase, interval, ...) are in
    ``report.yaml``; a page adds its own as ``glossary.<term>`` in its labels file. Call it
    at the end of a page's reading layer, naming every statistical term the page still uses.

    Parameters
    ----------
    *terms
        Term keys, e.g. ``"robust_z", "money_at_stake"``; shown in this order, once each.
    lang
        Language (default: the current one).
    metrics
        Catalog metrics (:class:`perflink.catalog.Metric`) the page uses by a name a reader
        may not know (EVA, ROE): one line each with the metric's name and the definition
        from the company's metric dictionary, after the terms.

    Raises
    ------
    ReportError
        If nothing is given, a term has no ``glossary.<term>`` label (naming the term), or a
        metric is not a catalog metric.
    """
    _display(HTML(glossary_html(terms, lang=lang, metrics=metrics)))


def show(
    obj: object,
    *,
    units: Mapping[str, str] | None = None,
    max_rows: int = TABLE_MAX_ROWS,
    interactive: bool | None = None,
    lang: str | None = None,
    appendix: bool = False,
) -> None:
    """Display a Result, DataFrame, Series or altair chart in the notebook / HTML report.

    A DataFrame becomes an HTML table with localised column headers (``entity_id`` ->
    单位编号), localised codes (severity, status), formatted periods and numbers (rates as
    percent), every value HTML-escaped; a named index becomes columns. Results display
    through their ``_repr_html_``; charts through altair's active renderer (SVG in reports).

    Parameters
    ----------
    obj
        What to show.
    units
        Column -> unit for numbers (see :func:`fmt_number`), e.g. ``{"value": "money"}``.
        ``completion`` and ``weight`` default to ``"pct"``.
    max_rows
        Show at most this many rows (a note says how many were left out; the full table is
        what :func:`save_table` writes).
    interactive
        Make the table searchable, sortable and paginated, in the HTML report (DataTables,
        inlined in the page) and in JupyterLab (the DataTables bundle of ``itables``, loaded
        offline once per session). Default: when it shows more than :data:`PAGE_ROWS` rows.
        In JupyterLab every table also keeps short text on one line and gives long text
        columns room, so rows are not one character wide.
    lang
        Language (default: the current one; a Result keeps its own).
    appendix
        The table is an appendix, not part of what a leader reads: on screen it shows as
        usual; the printed page carries instead one line, in the page language, saying the
        full table is in the review workbook (review.xlsx) and the ``tables/`` folder. For
        tables and Results, not charts.

    Raises
    ------
    ReportError
        If ``obj`` cannot be displayed, ``units`` names a column the table lacks, or
        ``appendix=True`` is given for a chart.
    """
    if isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if isinstance(obj, pd.DataFrame):
        html_text = frame_html(
            obj, lang=lang, units=units, max_rows=max_rows, interactive=interactive
        )
        if appendix:
            html_text = appendix_html(html_text, lang=lang, rows=len(obj))
        _display(HTML(_for_lab(html_text, lang) if _in_lab() else html_text))
    elif isinstance(obj, alt.TopLevelMixin):
        if appendix:
            raise ReportError(
                "show: appendix=True is for long tables; a chart prints as it is (show it "
                "without appendix, or leave it out of the page)."
            )
        _display(obj)
    elif hasattr(obj, "_repr_html_"):
        lab = _in_lab()
        if not (appendix or lab):
            _display(obj)
            return
        own = _own_language(obj, lang)
        html_text = obj._repr_html_()
        if appendix:
            html_text = appendix_html(html_text, lang=own, rows=_rows(obj))
        _display(HTML(_for_lab(html_text, own) if lab else html_text))
    else:
        raise ReportError(
            f"show: cannot display a {type(obj).__name__}; pass a Result, DataFrame, Series "
            "or altair chart (use text() for narrative)."
        )


def _in_lab() -> bool:
    """Exploring in JupyterLab: a kernel, and no tables folder (a report run always has one)."""
    return _state["tables_dir"] is None and _report_lab.in_kernel()


def _for_lab(html_text: str, lang: str | None) -> str:
    """Tables as JupyterLab shows them: long ones paginated and searchable (itables' bundle,
    offline), text columns wide enough to read (see :mod:`perflink._report_lab`)."""
    if _report_lab.has_interactive(html_text):
        _report_lab.load_itables()
    return _report_lab.lab_html(html_text, lang=lang or labels.get_language())


def _own_language(obj: object, lang: str | None) -> str | None:
    """A Result's own language (its page text is in it), else ``lang``."""
    own = getattr(obj, "language", None)
    return own if own in labels.LANGUAGES else lang


def _rows(obj: object) -> int | None:
    """Rows of a Result's shown table, or ``None`` when it has no single table."""
    view = getattr(obj, "view", None)
    try:
        df = view() if callable(view) else None
    except Exception:  # a Result made of several parts may have no single view
        return None
    return len(df) if isinstance(df, pd.DataFrame) else None
