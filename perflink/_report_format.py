"""Number, money, period formatting and DataFrame -> HTML for :mod:`perflink.report`.

Not API: import the public names from :mod:`perflink.report`.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from perflink.common import MATERIALITY, SEVERITY_RANK
from perflink.errors import LabelError, ReportError
from perflink.labels import _check_lang, column_label, t, value_label
from perflink.units import format_plain, format_value, parse_unit

MISSING = "—"
"""Shown for missing values (None, NaN, NaT, pd.NA)."""

# Columns whose values are codes with labels in report.yaml (report.value.<col>.<code>).
_CODED = ("severity", "status", "kind", "center_type", "category")
# Default units of standard columns (rates are fractions, see docs/architecture.md).
_DEFAULT_UNITS = {"completion": "pct", "weight": "pct"}
# Integer columns that are identifiers, not quantities: no thousands separator.
_ID_INTS = ("year", "tier", "rank")
# Interactive tables (see frame_html): rows per page, and the most rows a page carries.
PAGE_ROWS = 25
"""A table with more rows than this is searchable, sortable and paginated in the HTML report."""
TABLE_MAX_ROWS = 600
"""Default row cap of :func:`frame_html`; the full table is in ``tables/`` and review.xlsx.

A page carries what a reader can search and sort (tables come sorted worst first), 24 screens
of 25 rows: at 2,000 units six tables of 2,000-5,000 rows made the KPI page 13 MB, capped at
1,000 rows 5.8 MB (0.9 MB of it the chart bundle), at 600 rows under 5 MB
(benchmarks/scale_bench.py). The sample's longest table (its scorecard, 552 rows) shows whole."""
INTERACTIVE = "interactive"
"""Value of the ``data-pl-table`` attribute that marks a table for the report page's script."""
# DataTables language option -> label key (report.table.dt.*): the words of a table's controls
_DT_LANGUAGE = {
    "search": "search",
    "info": "info",
    "infoEmpty": "info_empty",
    "infoFiltered": "info_filtered",
    "lengthMenu": "length_menu",
    "zeroRecords": "zero_records",
    "emptyTable": "empty_table",
}


def datatables_language(lang: str) -> dict[str, object]:
    """DataTables' ``language`` option in ``lang`` (search box, pager, row counts): the same
    words on report pages and in JupyterLab."""
    return {opt: t(f"report.table.dt.{key}", lang) for opt, key in _DT_LANGUAGE.items()}


_NUM_CLASS = ' class="num"'
# Short names some callers use for catalog units (see perflink.units for the registry).
_UNIT_ALIASES = {"pct": "ratio", "pcs": "件", "persons": "人", "days": "天"}


def _is_missing(x: object) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    return isinstance(x, float | np.floating) and math.isnan(x)


def _as_float(x: object, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ReportError(f"{what}: expected a number, got {x!r} ({type(x).__name__}).")
    return float(x)


def _by_size(x: float, steps: tuple[tuple[float, str], ...], small: str = ".3g") -> str:
    """``x`` in the format of the first ``(bound, spec)`` with ``|x| >= bound``, else ``small``."""
    a = abs(x)
    return format(x, next((spec for bound, spec in steps if a >= bound), small))


def fmt_figure(x: object, spec: str) -> str:
    """A figure in message text: ``format(x, spec)``, or ``"—"`` if missing or not finite.

    ``fmt_figure(0.0523, "+.1%")`` -> ``"+5.2%"``; ``fmt_figure(87.25, ".1f")`` -> ``"87.2"``.

    Raises
    ------
    ReportError
        If ``x`` is not a number.
    """
    if _is_missing(x) or not math.isfinite(_as_float(x, f"fmt_figure value ({spec})")):
        return MISSING
    return format(x, spec)


def fmt_significant(x: object) -> str:
    """A figure of any size in message text, to about three significant digits.

    ``12345.6`` -> ``"12,346"``, ``52.34`` -> ``"52.3"``, ``0.01234`` -> ``"0.0123"``;
    ``"—"`` if missing or not finite.

    Raises
    ------
    ReportError
        If ``x`` is not a number.
    """
    if _is_missing(x):
        return MISSING
    value = _as_float(x, "fmt_significant value")
    return _by_size(value, ((1000, ",.0f"), (10, ",.1f"))) if math.isfinite(value) else MISSING


def fmt_money(x: object, unit: str, lang: str | None = None) -> str:
    """Format an amount of money given in the catalog unit ``unit`` (``万元``, ``kUSD``, ...).

    zh: ``fmt_money(12345, "万元")`` -> ``"1.23 亿元"``, ``(208.2, "kUSD")`` -> ``"20.8 万美元"``;
    en: ``"CNY 123.5 m"``, ``"USD 208.2 k"``. Missing -> ``"—"``. See :mod:`perflink.units`.

    Raises
    ------
    ReportError
        If ``x`` is not a number or ``unit`` is not a unit of money.
    """
    if not parse_unit(unit).is_money:
        raise ReportError(f"fmt_money: {unit!r} is not a unit of money (see perflink.units).")
    return fmt_number(x, unit, lang)


def fmt_number(x: object, unit: str | None = None, lang: str | None = None) -> str:
    """Format a number for a report, with its unit.

    Parameters
    ----------
    x
        The number, in ``unit``. Rates are fractions (0.952 -> ``"95.2%"``).
    unit
        ``None`` (plain number with thousands separators) or a catalog unit read by
        :func:`perflink.units.parse_unit`: money (``万元``, ``kUSD``: see :func:`fmt_money`),
        rates (``ratio``, ``%``, ``pct``: fraction shown as percent, 1 decimal), money per
        something (``元/件``), quantities (``件``, ``persons``, ``days``); a unit the registry
        does not know is appended as written.
    lang
        ``"zh"`` or ``"en"``; default the current language.

    Raises
    ------
    ReportError
        If ``x`` is not a number.
    """
    lang = _check_lang(lang)
    if _is_missing(x):
        return MISSING
    value = _as_float(x, f"fmt_number value (unit {unit!r})")
    if unit is None:
        return format_plain(value)
    if not math.isfinite(value):
        return format_plain(value)
    return format_value(value, parse_unit(_UNIT_ALIASES.get(unit, unit)), lang)


def fmt_period(p: object, lang: str | None = None) -> str:
    """Format a period: ``Period('2026-09', 'M')`` -> ``"2026年9月"`` / ``"Sep 2026"``.

    Quarters give ``"2026年第3季度"`` / ``"2026 Q3"``, years ``"2026年"`` / ``"2026"``. Strings are
    parsed with :class:`pandas.Period` (``"2026Q3"``, ``"2026-09"``). Missing -> ``"—"``.

    Raises
    ------
    ReportError
        If ``p`` is not a period or a string pandas can read as one.
    """
    lang = _check_lang(lang)
    if _is_missing(p):
        return MISSING
    if isinstance(p, str):
        try:
            p = pd.Period(p)
        except (ValueError, TypeError):
            raise ReportError(
                f"fmt_period: cannot read {p!r} as a period; use e.g. '2026-09' or '2026Q3'."
            ) from None
    if not isinstance(p, pd.Period):
        raise ReportError(f"fmt_period: expected a pandas Period or string, got {p!r}.")
    code = p.freqstr.split("-")[0]
    if code.startswith("M"):
        return f"{p.year}年{p.month}月" if lang == "zh" else p.strftime("%b %Y")
    if code.startswith("Q"):
        return f"{p.year}年第{p.quarter}季度" if lang == "zh" else f"{p.year} Q{p.quarter}"
    if code.startswith(("Y", "A")):
        return f"{p.year}年" if lang == "zh" else str(p.year)
    return str(p)


def fmt_duration(seconds: object, lang: str | None = None) -> str:
    """Format a duration in seconds: ``83`` -> ``"1 分 23 秒"`` / ``"1 min 23 s"``."""
    lang = _check_lang(lang)
    if _is_missing(seconds):
        return MISSING
    s = _as_float(seconds, "duration (seconds)")
    if s < 60:
        return t("report.duration.s", lang, s=f"{s:.1f}" if s < 10 else f"{s:.0f}")
    total = round(s)
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return t("report.duration.hms", lang, h=h, m=m)
    return t("report.duration.ms", lang, m=m, s=sec)


def fmt_timestamp(value: object, lang: str | None = None) -> str:
    """A run's time for a reader, in the run machine's local time with its UTC offset.

    ``"2026-11-30T15:04:20+08:00"`` -> ``"2026年11月30日 15:04（UTC+08:00）"`` /
    ``"30 Nov 2026, 15:04 (UTC+08:00)"``; missing or unreadable -> ``"—"``.
    """
    lang = _check_lang(lang)
    if _is_missing(value) or not str(value).strip():
        return MISSING
    try:
        stamp = pd.Timestamp(str(value))
    except (ValueError, TypeError):
        return MISSING
    offset = stamp.strftime("%z") if stamp.tzinfo is not None else ""
    zone = f"UTC{offset[:3]}:{offset[3:]}" if offset else ""
    if lang == "zh":
        text = f"{stamp.year}年{stamp.month}月{stamp.day}日 {stamp:%H:%M}"
        return f"{text}（{zone}）" if zone else text
    text = f"{stamp.day} {stamp:%b %Y, %H:%M}"
    return f"{text} ({zone})" if zone else text


def fmt_bytes(n: object) -> str:
    """Format a file size: ``2048`` -> ``"2.0 KB"``."""
    if _is_missing(n):
        return MISSING
    size = _as_float(n, "file size (bytes)")
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return MISSING  # unreachable; keeps type checkers happy


def _cell(col: str, value: object, unit: str | None, lang: str) -> tuple[str, bool]:
    """Formatted text and whether it is numeric (right-aligned)."""
    if _is_missing(value):
        return MISSING, False
    if col in _CODED and isinstance(value, str):
        return value_label(col, value, lang), False
    if isinstance(value, pd.Period):
        return fmt_period(value, lang), False
    if isinstance(value, bool | np.bool_):
        return str(bool(value)), False
    if isinstance(value, numbers.Integral) and unit is None:
        return (str(value) if col in _ID_INTS else f"{int(value):,}"), True
    if isinstance(value, numbers.Real):
        return fmt_number(value, unit, lang), True
    return str(value), False


def _order_key(col: str, value: object) -> str | None:
    """What an interactive table sorts a cell by, when its text would sort wrongly.

    Numbers sort by value ("1.23 亿元" above "523.4 万元"), periods by date ("2026-10" after
    "2026-09"), severities from critical to info; other text sorts as shown.
    """
    if _is_missing(value):
        return ""  # DataTables sorts an empty key as -Infinity: missing values stay together
    if col == "severity" and value in SEVERITY_RANK:  # most severe first
        return str(SEVERITY_RANK[value])
    if isinstance(value, pd.Period):
        return str(value)
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        # 9 significant digits order any two amounts a reader can tell apart, in few bytes
        return f"{x:.9g}" if math.isfinite(x) else ("Infinity" if x > 0 else "-Infinity")
    return None


def _th_attrs(col: str, numeric: set[str], keyed: set[str]) -> str:
    """Header attributes; on interactive tables they tell the script how a column sorts.

    No ``title`` naming the column's id: a reader hovering a header would see code
    (``n_obs``, ``mapping_id``)."""
    attrs = ' scope="col"'
    if col in numeric:
        attrs += _NUM_CLASS + ' data-pl-sort="num"'
    elif col in keyed:
        attrs += ' data-pl-sort="key"'
    return attrs


APPENDIX = "pl-appendix"
"""Class of the block :func:`appendix_html` writes (perflink.css swaps it for its note in print)."""


def appendix_html(inner: str, *, lang: str | None = None, rows: int | None = None) -> str:
    """Wrap a long table's HTML as an appendix: shown on screen, a one-line pointer in print.

    The printed page carries, instead of the table, one line in the page language saying the
    full table is in the review workbook (review.xlsx) and the ``tables/`` folder (label
    ``report.table.appendix``, or ``report.table.appendix_rows`` naming its ``rows``). The
    pointer is hidden by an inline style, so JupyterLab (which has no perflink.css) shows only
    the table; the report page's print stylesheet hides the table and shows the pointer.
    With ``rows=0`` there is nothing to point to: ``inner`` (an "empty" note) is returned
    as it is and prints.

    Raises
    ------
    ReportError
        If ``inner`` is not a string or ``rows`` is not a whole number >= 0.
    """
    if not isinstance(inner, str):
        raise ReportError(f"appendix_html: expected the table's HTML as text, got {inner!r}.")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise ReportError(f"appendix_html: rows must be a whole number >= 0, got {rows!r}.")
    if rows == 0:  # nothing left out: what shows in its place (a note) prints as it is
        return inner
    lang = _check_lang(lang)
    note = (
        t("report.table.appendix", lang)
        if rows is None
        else t("report.table.appendix_rows", lang, rows=f"{rows:,}")
    )
    return (
        f'<div class="{APPENDIX}">{inner}'
        f'<p class="pl-appendix-note" role="note" style="display:none">{html.escape(note)}</p>'
        "</div>"
    )


_TERM = re.compile(r"[a-z][a-z0-9_]*")
# Figures some glossary sentences quote, so they say what the code does.
_GLOSSARY_FIELDS = {"materiality": f"{MATERIALITY:.0%}"}


def glossary_html(
    terms: Sequence[str], *, lang: str | None = None, metrics: Sequence[object] = ()
) -> str:
    """The "Terms used on this page" box: one line per term, from label ``glossary.<term>``.

    Each label is one plain sentence ``"<term>: <explanation>"`` (zh ``"<术语>：<解释>"``);
    the part before the first colon is set in bold. Terms repeated are shown once, in the
    order given. ``metrics`` (catalog metrics: ``.name(lang)`` and ``.definition``) add one
    line each, the metric's name and its definition as the company's dictionary writes it:
    a metric is the company's own, so no label can define it.

    Raises
    ------
    ReportError
        If neither a term nor a metric is given, a term is not a lower-case key, there is no
        label ``glossary.<term>`` (naming the term and where to add it), or a metric has no
        name and definition.
    """
    lang = _check_lang(lang)
    if isinstance(terms, str) or (not terms and not metrics):
        raise ReportError(
            f"glossary: give the terms the page uses, e.g. glossary('elasticity', 'r2'); "
            f"got {terms!r}."
        )
    lines = []
    for term in dict.fromkeys(terms):
        if not isinstance(term, str) or not _TERM.fullmatch(term):
            raise ReportError(
                f"glossary: term {term!r} is not a term key (lower-case letters, digits and _, "
                "e.g. 'robust_z')."
            )
        try:
            sentence = t(f"glossary.{term}", lang, **_GLOSSARY_FIELDS)
        except LabelError:
            raise ReportError(
                f"glossary: unknown term {term!r}: no label 'glossary.{term}'. Define it "
                "(zh and en, one plain sentence) in perflink/data/labels/report.yaml for a "
                "shared term, or in the page's own labels file."
            ) from None
        lines.append(_glossary_line(sentence))
    colon = "：" if lang == "zh" else ": "
    for metric in metrics:
        try:
            name, definition = metric.name(lang), str(metric.definition)
        except (AttributeError, TypeError):
            raise ReportError(
                f"glossary: metrics must be catalog metrics (with a name and a definition), "
                f"got {metric!r}."
            ) from None
        lines.append(f"<li><b>{html.escape(name)}</b>{colon}{html.escape(definition)}</li>")
    title = html.escape(t("report.glossary.title", lang))
    return (
        f'<aside class="pl-glossary" role="note"><p class="pl-glossary-title">{title}</p>'
        f"<ul>{''.join(dict.fromkeys(lines))}</ul></aside>"
    )


def _glossary_line(sentence: str) -> str:
    """``<li><b>term</b>: explanation</li>``, the term being what precedes the first colon."""
    match = re.match(r"(.{1,40}?)(：|: )(.*)", sentence, re.DOTALL)
    if match is None:
        return f"<li>{html.escape(sentence)}</li>"
    term, colon, rest = match.groups()
    return f"<li><b>{html.escape(term)}</b>{colon}{html.escape(rest)}</li>"


SHORT_ROWS = 15
"""A table of at most this many rows is kept on one printed page (class ``pl-short``)."""
# Text columns whose longest cell has more characters than these get room to wrap by words
# in print (classes pl-wrap, pl-long in perflink.css) instead of one character per line.
_WRAP_CHARS, _LONG_CHARS = 16, 48
# Print layouts of perflink.css, each as (A4 printable width of 186 mm in em of its table font,
# minimum width of a pl-wrap column, of a pl-long column, the most a short text column needs
# when it may wrap, or None when it may not): 8 pt; pl-wide, 7 pt. A cell's padding is ~1 em.
_LAYOUTS = (("", 66.0, 14.0, 22.0, None), (" pl-wide", 75.0, 10.0, 14.0, 4.0))
_PAD_EM = 1.0


def _text_em(text: str) -> float:
    """Width of one line of ``text`` in em: a CJK character is 1, a Latin one about 0.55."""
    return sum(1.0 if ord(ch) >= 0x2E80 else 0.55 for ch in text)


def _column_layout(rows: list[list[tuple[str, bool]]], headers: list[str]) -> tuple[list[str], str]:
    """Class attribute of each column's text cells, and the table's print-width class.

    Long text columns (``pl-wrap``, ``pl-long``) get a minimum width in print so that they
    wrap by words, not one character per line; amounts and short text stay on one line. A
    table that would not fit the A4 printable width so is ``pl-wide`` (smaller type, short
    text may wrap, long text narrower), and one that would not fit even so ``pl-xwide``
    (amounts and headers may wrap too), so that nothing is cut on the right.
    """
    n_cols = len(headers)
    longest = [0] * n_cols
    widest = [0.0] * n_cols
    numeric = [False] * n_cols
    for row in rows:
        for i, (text, is_number) in enumerate(row):
            widest[i] = max(widest[i], _text_em(text))
            numeric[i] = numeric[i] or is_number
            if not is_number:
                longest[i] = max(longest[i], len(text))
    kinds = [
        "long" if n > _LONG_CHARS else ("wrap" if n > _WRAP_CHARS else "short") for n in longest
    ]
    classes = [
        ' class="pl-long"' if k == "long" else (' class="pl-wrap"' if k == "wrap" else "")
        for k in kinds
    ]
    # headers break at spaces only (perflink.css): a header is as wide as its longest word
    heads = [max((_text_em(w) for w in h.split()), default=0.0) for h in headers]
    for name, page, wrap, long, short_max in _LAYOUTS:
        total = 0.0
        for i, kind in enumerate(kinds):
            if kind == "long":
                width = long
            elif kind == "wrap":
                width = wrap
            elif short_max is not None and not numeric[i]:
                width = min(widest[i], short_max)
            else:
                width = widest[i]
            total += max(width, heads[i]) + _PAD_EM
        if total <= page:
            return classes, name
    return classes, " pl-xwide"


def frame_html(
    df: pd.DataFrame,
    *,
    lang: str | None = None,
    units: Mapping[str, str] | None = None,
    max_rows: int = TABLE_MAX_ROWS,
    interactive: bool | None = None,
    order: Mapping[str, Sequence[object]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> str:
    """Render a DataFrame as an escaped, localised HTML table (see :func:`perflink.report.show`).

    A table showing more than :data:`PAGE_ROWS` rows (or any table with ``interactive=True``)
    is marked ``data-pl-table="interactive"``: the report page makes it searchable, sortable
    and paginated (DataTables, inlined by :func:`perflink.report.render_task_html`), sorting
    numbers, periods and severities by the ``data-order`` value written on each cell. In
    JupyterLab it stays a plain table. ``interactive=False`` keeps a table plain.
    ``order`` gives, for columns already formatted as text (amounts of mixed units such as
    "1.23 亿元" and "523.4 万元"), the values they sort by: column -> one value per row.
    ``headers`` gives the shown header of columns that have their own (a task's label for
    a column it alone has): column -> text; other columns show :func:`column_label`.
    This is the one table renderer: results render through it (see
    :class:`perflink.results.TaskResult`).
    """
    if not isinstance(df, pd.DataFrame):
        raise ReportError(f"expected a pandas DataFrame, got {type(df).__name__}.")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 0:
        raise ReportError(f"max_rows must be a whole number of rows >= 0, got {max_rows!r}.")
    lang = _check_lang(lang)
    if any(name is not None for name in df.index.names):
        df = df.reset_index()
    col_units = {**_DEFAULT_UNITS, **(units or {})}
    unknown = set(units or {}) - {str(c) for c in df.columns}
    if unknown:
        raise ReportError(
            f"units given for column(s) {sorted(unknown)} that are not in the table "
            f"(columns: {[str(c) for c in df.columns]})."
        )
    cols = [str(c) for c in df.columns]
    order = dict(order or {})
    wrong = {c: len(v) for c, v in order.items() if c not in cols or len(v) != len(df)}
    if wrong:
        raise ReportError(
            f"order given for column(s) {sorted(wrong)} that are not in the table or do not "
            f"have one value per row ({len(df)} rows; got {wrong})."
        )
    shown = df.head(max_rows)
    marked = len(shown) > PAGE_ROWS if interactive is None else bool(interactive)
    # Sort keys per column (interactive tables): DataTables takes a column's keys from its
    # data-order attributes only if the first row has one, so a keyed column keys every cell.
    keys: dict[int, list[str | None]] = {}
    if marked:
        for i, col in enumerate(cols):
            values = list(order[col])[: len(shown)] if col in order else shown.iloc[:, i]
            column = [_order_key(col, v) for v in values]
            if any(column):
                keys[i] = column
    numeric_cols: set[str] = set()
    rows = [
        [_cell(col, value, col_units.get(col), lang) for col, value in zip(cols, row, strict=True)]
        for row in shown.itertuples(index=False, name=None)
    ]
    shown_headers = {c: column_label(c, lang) for c in cols} | dict(headers or {})
    wrap, width = _column_layout(rows, [shown_headers[c] for c in cols])
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, (col, (text, numeric)) in enumerate(zip(cols, row, strict=True)):
            attrs = _NUM_CLASS if numeric else wrap[i]
            if i in keys:
                key = keys[i][r]
                attrs += f' data-order="{html.escape(text if key is None else key)}"'
                if numeric or col in order:
                    numeric_cols.add(col)
            cells.append(f"<td{attrs}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    keyed_cols = {cols[i] for i in keys} - numeric_cols  # periods, severities: sorted as text
    head = "".join(
        f"<th{_th_attrs(c, numeric_cols, keyed_cols)}>{html.escape(shown_headers[c])}</th>"
        for c in cols
    )
    note = ""
    if len(df) > max_rows:
        note = (
            '<p class="pl-table-note">'
            + html.escape(t("report.table.more_rows", lang, shown=max_rows, total=len(df)))
            + "</p>"
        )
    # pl-fit: its cells carry the print layout classes (perflink.css); pl-short: never split.
    short = " pl-fit" + (" pl-short" if len(shown) <= SHORT_ROWS else "") + width
    table = f'<table class="pl-table{short}">'
    if marked:
        table = f'<table class="pl-table pl-interactive{short}" data-pl-table="{INTERACTIVE}">'
    return (
        f'<div class="pl-table-wrap">{table}'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>{note}"
    )
