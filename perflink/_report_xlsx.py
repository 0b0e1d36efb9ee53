"""One look for perflink's Excel workbooks (``review.xlsx``, ``scorecard.xlsx``).

Not API: :func:`perflink.summary.write_workbook` and
:func:`perflink.scoring.write_scorecard_xlsx` write through :func:`write_sheet`.

What finance opens, forwards and prints, in the report language only: headers and coded
values in the words of the HTML pages (``report.col.*`` / ``report.value.*``, else
``workbook.*`` of ``perflink/data/labels/workbook.yaml``); numbers stay numbers, shown with
the format of their unit (a rate as ``86.7%``, money ``#,##0.0`` with the unit in the header
or a unit column, each cell of a column mixing metrics in its own row's unit); column widths
from the content, long text wrapped; evidence links live; the header row frozen, filtered
and repeated on every printed page; A4 landscape, fitted to the page width. Text cells are
string cells whatever they start with (``write_string``): no text read from the inputs ever
becomes a formula.

Written with XlsxWriter (``constant_memory``: a row at a time), about three times as fast as
openpyxl's write-only cells on a large group's scorecard; reading stays with openpyxl.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import unicodedata
import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from perflink import labels
from perflink.errors import ReportError
from perflink.units import parse_unit, unit_label

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.workbook import Workbook
    from xlsxwriter.worksheet import Worksheet

__all__ = [
    "AMOUNT",
    "INT",
    "PCT",
    "SCORE",
    "Sheet",
    "header_text",
    "number_format",
    "open_files_for",
    "value_text",
    "write_sheet",
]

#: Files a process keeps open besides a workbook's sheets (kernel sockets, logs, libraries).
_SPARE_FILES = 256


def open_files_for(sheets: int, *, name: str) -> None:
    """Let this process keep a file open per sheet of a streamed workbook.

    XlsxWriter's ``constant_memory`` mode keeps each sheet's rows in an open temporary file
    until the workbook is closed, so a scorecard of 1,429 subsidiaries needs 1,429 files
    open at once: past the common soft limit of 1,024 it stopped with "Too many open
    files". The soft limit is raised up to the hard one where that is needed.

    Raises
    ------
    ReportError
        The hard limit is too low: the message names the workbook and the limit to set.
    """
    try:
        import resource
    except ImportError:  # not on Windows, whose limit is not per process in this way
        return
    need = sheets + _SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or need <= soft:
        return
    if hard != resource.RLIM_INFINITY and need > hard:
        raise ReportError(
            f"{name}: {sheets} sheets, written with a file open per sheet, need {need} open "
            f"files; this process may open at most {hard}. Raise the limit (for example "
            f"`ulimit -n {need}` in the shell that starts perflink, or LimitNOFILE={need} in "
            "a systemd unit) and run the review again."
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


#: Number formats. Rates are fractions (0.867 -> 86.7%); amounts have one decimal as the
#: page tables show them; a score has the decimals of the page's plain numbers (95.27,
#: 111.0: :func:`perflink.units.format_plain`).
PCT = "0.0%"
AMOUNT = "#,##0.0"
PRICE = "#,##0.00"
INT = "#,##0"
PLAIN = "0"
SCORE = "[>=100]#,##0.0;0.00"
DECIMAL = "0.0"

#: Columns whose values are codes shown as words; lists hold several codes ("peer,spike").
_CODED = {
    "severity", "status", "kind", "center_type", "category", "basis", "scope", "rule",
    "source_task", "finding_kind", "loop_status", "budget_basis", "action_id",
}  # fmt: skip
#: Where a coded column's words live on the pages (after report.value.<col>); the
#: workbook's own words (workbook.value.<col>) come last.
_MORE_KEYS = {
    "source_task": ("report.task.{v}",),
    "finding_kind": (
        "scoring.finding.{v}", "mapping.value.check.{v}", "report.value.kind.{v}",
        "workbook.value.finding_kind.{v}",
    ),
    "action_id": ("summary.action_name.{v}",),
    "rule": ("scoring.rule.{v}",),
    "kind": ("scoring.kind.{v}",),
    "rule_id": ("scoring.finding.{v}", "workbook.value.finding_kind.{v}"),
    "subject": (
        "scoring.finding.{v}", "workbook.value.finding_kind.{v}", "workbook.value.rule_id.{v}",
    ),
}  # fmt: skip
#: Coded columns that also hold the input's own codes (a catalog's rule ids): a code without
#: words stays as written.
_OPEN_CODES = {"rule_id", "subject"}
#: Columns holding lists of codes of another column: column -> the column whose words they use.
_LISTS = {"tasks": "source_task", "also": "kind"}
#: Where a header's words live after workbook.col / report.col (a task's own columns).
_HEADER_PREFIXES = ("summary", "mapping", "forecast", "anomaly", "kpi", "scoring")
# a unit in brackets at the end of a header: "奖金（万元）", "Bonus (CNY 10k)"
_BRACKETED = re.compile(r"\s*[（(]([^（）()]+)[)）]\s*$")
_CODE = re.compile(r"[a-z][a-z0-9_]*")
#: A link a workbook makes live: a report page next to it (``kpi.html#anchor``), nothing else.
_PAGE_LINK = re.compile(r"[\w.-]+\.html(#\S*)?")
#: Widest a column gets (characters; CJK count two); long text wraps within it.
_MAX_WIDTH = 20
_TEXT_WIDTH = 50
_LINK_WIDTH = 40
_MIN_WIDTH = 6
#: A header wraps onto lines of at least this many characters before it widens a column.
_HEADER_WIDTH = 14
#: Height of one line of 11-point text, and the most lines a row grows to.
_LINE_POINTS = 15.0
_WRAP_CJK = 1.85
_WRAP_OTHER = 0.9
_MAX_LINES = 12
#: Rows looked at to size a column (a workbook may hold thousands).
_SAMPLE_ROWS = 500
#: Characters XML cannot hold: control characters other than tab, LF, CR (openpyxl's
#: ILLEGAL_CHARACTERS_RE).
_ILLEGAL = re.compile(r"[\000-\010\013\014\016-\037]")
#: Excel's most hyperlinks on one sheet: a link past it is written as its text.
_MAX_LINKS = 65_530
#: Formats of date-time and date values (openpyxl's defaults).
_DATETIME = "yyyy-mm-dd h:mm:ss"
_DATE = "yyyy-mm-dd"


@functools.cache
def _label(key: str, lang: str) -> str | None:
    try:
        return labels.t(key, lang)
    except labels.LabelError:
        return None


def header_text(col: str, lang: str, *, unit: str | None = None, task: str | None = None) -> str:
    """A column's header in ``lang``: ``workbook.col.<col>``, else the page's header (the
    ``task``'s own ``<task>.col.<col>``, else ``report.col.<col>``, else another task's),
    else ``workbook.alt.<col>``, else the column name in words.

    ``unit`` (a catalog unit) is named in brackets (``奖金（万元）``, ``Bonus (CNY 10k)``),
    replacing a money unit the label was written with or filling its ``{unit}`` field.
    """
    text = _label(f"workbook.col.{col}", lang)
    if text is None and task is not None:
        text = _label(f"{task}.col.{col}", lang)
    if text is None:
        text = labels.column_label(col, lang)
    if text == col:
        found = (_label(f"{p}.col.{col}", lang) for p in _HEADER_PREFIXES)
        text = next((h for h in found if h is not None), None)
        text = text or _label(f"workbook.alt.{col}", lang) or _words(col, lang)
    return _with_unit(text, unit, lang)


def _with_unit(text: str, unit: str | None, lang: str) -> str:
    if unit is None:
        return text.replace("（{unit}）", "").replace(" ({unit})", "").replace("{unit}", "")
    words = unit_label(unit, lang)
    if "{unit}" in text:
        return text.replace("{unit}", words)
    m = _BRACKETED.search(text)
    if m and parse_unit(m[1].strip()).is_money:
        text = text[: m.start()]
    return labels.t("workbook.col.with_unit", lang, label=text, unit=words)


def _words(code: str, lang: str) -> str:
    """An unlabelled code as words at least in English (``rule_drift`` -> ``Rule drift``)."""
    if lang != "en" or not _CODE.fullmatch(code):
        return code
    return code.replace("_", " ").capitalize()


@functools.cache
def value_text(col: str, value: str, lang: str) -> str:
    """A coded value of ``col`` in words (``severity`` ``critical`` -> 严重 / Critical), as
    the pages show it; a code without words is shown as written (in English, as words)."""
    for key in _keys(col, value):
        if (text := _label(key, lang)) is not None:
            return text
    return _words(value, lang)


def _keys(col: str, value: str) -> list[str]:
    """Label keys of a coded value, the pages' first: report.value, the task's, workbook."""
    more = [k.format(v=value) for k in _MORE_KEYS.get(col, ())]
    return [f"report.value.{col}.{value}", *more, f"workbook.value.{col}.{value}"]


def _known(col: str, value: str, lang: str) -> str:
    """A value of a column of mixed codes: in words where it is perflink's code, else as is."""
    for key in _keys(col, value):
        if (text := _label(key, lang)) is not None:
            return text
    return value


def _list_text(col: str, value: str, lang: str) -> str:
    """``anomaly, mapping`` -> 异常检测、业务–财务映射验证; ``task:kind, ...`` pairs likewise."""
    sep = labels.t("workbook.value.list_sep", lang)
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if col == "evidence":
        out = []
        for p in parts:
            task, _, kind = p.partition(":")
            out.append(
                labels.t(
                    "workbook.value.pair",
                    lang,
                    task=value_text("source_task", task, lang),
                    kind=value_text("finding_kind", kind, lang),
                )
            )
        return sep.join(out)
    return sep.join(value_text(_LISTS[col], p, lang) for p in parts)


def number_format(unit: str | None) -> str:
    """The Excel number format of values in a catalog ``unit`` (None: a plain amount)."""
    if unit is None or unit == "":
        return AMOUNT
    u = parse_unit(unit)
    if u.is_rate:
        return PCT
    return PRICE if u.kind == "money_per" else AMOUNT


@dataclass(frozen=True)
class Sheet:
    """How one table becomes one worksheet.

    Attributes
    ----------
    formats : column -> number format (:data:`PCT`, :data:`AMOUNT`, :data:`SCORE`, ...).
    units : column -> catalog unit of the whole column: its header names the unit and its
        cells take the unit's format (``bonus`` in ``万元``).
    row_unit : name of the column holding each row's catalog unit (a table mixing metrics);
        it is shown as the unit's words. ``row_unit_columns`` take each row's format.
    row_unit_columns : columns in each row's unit.
    headers : column -> header text of columns this sheet names itself.
    names : column -> {code: name}: ids shown as names (``metric_id`` -> the metric).
    links : columns holding a link (``kpi.html#...``) shown as the linked page's title
        with a live hyperlink.
    wrap : columns of long text (always wrapped, wide); other text wraps when it is long.
    freeze_cols : columns kept in view when scrolling right (ids and names).
    colors : column -> {code: "#rrggbb"}: cells of that code filled (conditional
        formatting on the cell's own words, so sorting and filtering never break it).
    task : the task whose table this is: its own headers (``<task>.col.<col>``) first, as
        its page shows them.
    """

    formats: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)
    row_unit: str | None = None
    row_unit_columns: Collection[str] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    names: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    links: Collection[str] = ()
    wrap: Collection[str] = ("message", "other_messages", "explained_by", "reason")
    freeze_cols: int = 0
    colors: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    task: str | None = None


def _missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float | np.floating) and math.isnan(v)


def _plain(v: Any) -> Any:
    """A value as a cell holds it: numbers as numbers, periods as text, no NaN/inf."""
    if _missing(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Period):
        return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _link_text(url: str, lang: str) -> str:
    """The title of the page a report link points to (``anomaly.html#...`` -> 异常检测)."""
    stem = url.split("#", 1)[0].rsplit("/", 1)[-1].removesuffix(".html")
    return _label(f"report.task.{stem}", lang) or url


@functools.lru_cache(maxsize=1 << 16)  # names, words and figures repeat down a sheet
def _width(text: str, cjk: float = 2.0, other: float = 1.0) -> float:
    """Display width of ``text`` in Excel character units: a CJK character counts ``cjk``
    (two to size a column it must fit in; about 1.85 as it wraps, measured in LibreOffice,
    where other characters take about 0.9)."""
    return sum(cjk if unicodedata.east_asian_width(c) in "WF" else other for c in text)


def _shown(value: Any, fmt: str | None) -> str:
    """About the text Excel shows for ``value`` in ``fmt`` (to size the column)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if fmt == PCT:
        return f"{value * 100:,.1f}%"
    if fmt in (INT, PLAIN):
        return f"{value:,.0f}"
    if fmt == PRICE:
        return f"{value:,.2f}"
    return f"{value:,.1f}" if abs(value) >= 100 or fmt != SCORE else f"{value:,.2f}"


def write_sheet(
    book: Workbook, title: str, df: pd.DataFrame, *, lang: str, spec: Sheet | None = None
) -> Worksheet:
    """Add a worksheet ``title`` to the XlsxWriter ``book`` and write ``df`` to it: one header
    row in ``lang``, then the rows. Returns the worksheet.

    Works in XlsxWriter's ``constant_memory`` mode (the scorecard of a large group streams):
    every row is written once, in order, its height set before its cells. A title the book
    already has (Excel compares them ignoring case) gets a number, as openpyxl gave it
    (``S1`` -> ``S11``). Column order is ``df``'s. See the module docstring for what the
    sheet looks like.
    """
    spec = spec or Sheet()
    styles = _styles(book)
    ws = book.add_worksheet(_free_title(title, styles.titles))
    cols = [str(c) for c in df.columns]
    row_units: list[str | None] = [None] * len(df)
    if spec.row_unit is not None and spec.row_unit in df:
        row_units = [None if _missing(u) or u == "" else str(u) for u in df[spec.row_unit]]
    heads = [
        spec.headers.get(c) or header_text(c, lang, unit=spec.units.get(c), task=spec.task)
        for c in cols
    ]
    heads = _distinct(heads, cols, spec, lang)
    formats = {c: spec.formats[c] for c in cols if c in spec.formats}
    formats |= {c: number_format(u) for c, u in spec.units.items() if c in cols}
    wrap_cols = set(spec.wrap)
    links = set(spec.links)

    # the values as shown: codes as words, ids as names, units as words
    shown = []
    for c in cols:
        s = df[c].tolist()
        if c in spec.names:
            names = spec.names[c]
            s = [names.get(v, v) if isinstance(v, str) else v for v in s]
        if c == spec.row_unit:
            s = [unit_label(v, lang) if isinstance(v, str) and v else v for v in s]
        elif c in _CODED:
            s = [value_text(c, v, lang) if isinstance(v, str) and v else v for v in s]
        elif c in _OPEN_CODES:
            s = [_known(c, v, lang) if isinstance(v, str) and v else v for v in s]
        elif c in _LISTS or c == "evidence":
            s = [_list_text(c, v, lang) if isinstance(v, str) and v else v for v in s]
        s = [value_text("bool", str(v).lower(), lang) if isinstance(v, bool | np.bool_)
             else _plain(v) for v in s]  # fmt: skip
        shown.append(s)

    # widths from the header and the content; long text wraps in a wide column
    widths, wrapped = [], set()
    for i, c in enumerate(cols):
        sample = shown[i][:_SAMPLE_ROWS]
        fmts = [_cell_format(c, formats, spec, row_units, r) for r in range(len(sample))]
        content = max(
            (_width(_shown(v, f)) for v, f in zip(sample, fmts, strict=True) if v is not None),
            default=0,
        )
        if c in links:
            content = max((_width(_link_text(v, lang)) for v in sample if isinstance(v, str)),
                          default=content)  # fmt: skip
        head = _width(heads[i])
        width = max(content, min(head, _HEADER_WIDTH), _MIN_WIDTH) + 2
        # a link stays on one line (LibreOffice does not wrap a link): wide enough for its page
        cap = _TEXT_WIDTH if c in wrap_cols else _LINK_WIDTH if c in links else _MAX_WIDTH
        if c in wrap_cols or width > cap:
            wrapped.add(c)
        widths.append(min(width, cap))
    for i, w in enumerate(widths):
        ws.set_column(i, i, w)
    n = len(cols)
    if n:
        ws.freeze_panes(1, spec.freeze_cols)
    print_setup(ws, lang)

    # row heights set here: neither LibreOffice nor every Excel grows a row to its wrapped
    # text on opening a file (and constant_memory writes a row's height with the row)
    ws.set_row(0, _height(heads, widths))
    for i, h in enumerate(heads):
        ws.write_string(0, i, _text(h), styles.head)

    # per column once, not per cell (a large group's scorecard has ~700,000 cells): its own
    # format or each row's (row_unit_columns), wrapping, links
    own_fmt = [None if c in spec.row_unit_columns else formats.get(c) for c in cols]
    per_row = [c in spec.row_unit_columns for c in cols]
    wraps = [c in wrapped for c in cols]
    text_style = [styles.cell(None, w) for w in wraps]
    link_at = [i for i, c in enumerate(cols) if c in links]
    tall_at = [i for i, c in enumerate(cols) if c in wrapped]
    unit_fmt: dict[str | None, str] = {}
    live = 0
    for r in range(len(df)):
        row = r + 1
        values = [s[r] for s in shown]
        urls = {}
        for i in link_at:
            if isinstance(values[i], str) and _PAGE_LINK.fullmatch(values[i]):
                urls[i] = values[i]
                values[i] = _link_text(values[i], lang)
        if tall_at:
            ws.set_row(row, _height([values[i] for i in tall_at], [widths[i] for i in tall_at]))
        for i, v in enumerate(values):
            if v is None or v == "":
                continue
            if isinstance(v, str):
                # a string cell whatever the text starts with: never a formula or a link
                if i in urls and live < _MAX_LINKS:
                    live += 1
                    # kpi.html#tier1: the page as the link's target, the anchor its location,
                    # as Excel itself writes a link into a page
                    ws.write_url(row, i, "external:" + urls[i], styles.cell(None, wraps[i], True),
                                 string=_text(v))  # fmt: skip
                else:
                    ws.write_string(row, i, _text(v), text_style[i])
            elif isinstance(v, int | float):
                if per_row[i]:
                    u = row_units[r]
                    if u not in unit_fmt:
                        unit_fmt[u] = number_format(u)
                    fmt = unit_fmt[u]
                else:
                    fmt = own_fmt[i]
                ws.write_number(row, i, v, styles.cell(fmt, wraps[i]))
            elif isinstance(v, dt.datetime | dt.date):
                fmt = _DATETIME if isinstance(v, dt.datetime) else _DATE
                ws.write_datetime(row, i, v, styles.cell(fmt, wraps[i]))
            else:
                ws.write_string(row, i, _text(str(v)), text_style[i])

    last = len(df)  # zero-based index of the last row
    if n:
        ws.autofilter(0, 0, last, n - 1)
        ws.repeat_rows(0)
        ws.print_area(0, 0, last, n - 1)
    for c, colors in spec.colors.items():
        if c not in cols or last < 1:
            continue
        j = cols.index(c)
        for code, color in colors.items():
            word = value_text(c, code, lang) if c in _CODED else code
            ws.conditional_format(
                1, j, last, j,
                {"type": "cell", "criteria": "equal to", "value": _quoted(word),
                 "format": styles.fill(color)},
            )  # fmt: skip
    return ws


class _Styles:
    """The formats of one workbook, each made once (an XlsxWriter format belongs to its
    book), and the sheet titles it holds (lower case)."""

    def __init__(self, book: Workbook) -> None:
        self.book = book
        self.head = book.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.cells: dict[tuple[str | None, bool, bool], Format] = {}
        self.fills: dict[str, Format] = {}
        self.titles: set[str] = set()

    def cell(self, fmt: str | None, wrap: bool, link: bool = False) -> Format:
        """Top-aligned cells of number format ``fmt``, wrapped or not, a link or not."""
        key = (fmt, wrap, link)
        if key not in self.cells:
            props: dict[str, Any] = {"valign": "top"}
            if fmt:
                props["num_format"] = fmt
            if wrap:
                props["text_wrap"] = True
            if link:
                props["hyperlink"] = True  # Excel's Hyperlink cell style
            self.cells[key] = self.book.add_format(props)
        return self.cells[key]

    def fill(self, color: str) -> Format:
        """A conditional format: white text on ``color`` (``#rrggbb``)."""
        if color not in self.fills:
            self.fills[color] = self.book.add_format({"bg_color": color, "font_color": "#FFFFFF"})
        return self.fills[color]


_STYLES: weakref.WeakKeyDictionary[Workbook, _Styles] = weakref.WeakKeyDictionary()


def _styles(book: Workbook) -> _Styles:
    if book not in _STYLES:
        _STYLES[book] = _Styles(book)
    return _STYLES[book]


def _text(value: str) -> str:
    """``value`` without the characters XML cannot hold (control characters other than tab,
    CR, LF), shown as U+FFFD instead of failing the save."""
    return _ILLEGAL.sub("\ufffd", value) if _ILLEGAL.search(value) else value


def _utf16_cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-16 units (Excel's measure of a sheet title)."""
    while len(text.encode("utf-16-le")) > 2 * limit:
        text = text[:-1]
    return text


#: Characters Excel refuses in a sheet title.
_TITLE_BAD = str.maketrans(dict.fromkeys("[]:*?/\\", "_"))


def _free_title(title: str, taken: set[str]) -> str:
    """``title`` as Excel takes it: ``[]:*?/\\`` as ``_``, no leading or trailing apostrophe,
    at most 31 characters long (an entity id such as ``S/1`` would fail the whole workbook),
    made unique among ``taken`` (lower case; Excel compares titles ignoring case) with a
    number, and not ``History`` (Excel's own)."""
    title = _utf16_cut(title.translate(_TITLE_BAD).strip("'"), 31).strip("'") or "_"
    out, k = title, 0
    while out.lower() in taken or out.lower() == "history":
        k += 1
        out = _utf16_cut(title, 31 - len(str(k))) + str(k)
    taken.add(out.lower())
    return out


def _height(texts: list[Any], widths: list[float]) -> float:
    """Points of a row whose ``texts`` wrap in columns of ``widths`` (at most 12 lines)."""
    lines = 1
    for text, width in zip(texts, widths, strict=True):
        if isinstance(text, str) and text:
            per_line = max(width - 1.5, 1.0)
            parts = text.split("\n")
            n = sum(max(1, math.ceil(_width(p, _WRAP_CJK, _WRAP_OTHER) / per_line)) for p in parts)
            lines = max(lines, n)
    return _LINE_POINTS * min(lines, _MAX_LINES) + 2


def _quoted(text: str) -> str:
    """``text`` as a string literal of a conditional-format formula."""
    return '"' + text.replace('"', '""') + '"'


def _cell_format(
    col: str, formats: Mapping[str, str], spec: Sheet, row_units: list[str | None], row: int
) -> str | None:
    if col in spec.row_unit_columns:  # without a unit column: plain amounts
        return number_format(row_units[row])
    return formats.get(col)


def _distinct(heads: list[str], cols: list[str], spec: Sheet, lang: str) -> list[str]:
    """Headers made distinct (filters and pivot tables need them): a page word two columns
    share ("Entity" for the code and the name) gives way to ``workbook.alt.<col>``; a
    header still repeated gets a number."""
    out = list(heads)
    for i, c in enumerate(cols):
        if out.count(out[i]) > 1 and c not in spec.headers:
            alt = _label(f"workbook.alt.{c}", lang)
            if alt is not None and alt not in out:
                out[i] = _with_unit(alt, spec.units.get(c), lang)
    return [f"{h} {out[:i].count(h) + 1}" if h in out[:i] else h for i, h in enumerate(out)]


def print_setup(ws: Worksheet, lang: str) -> None:
    """A4 landscape, every column on the page width (as many pages down as it takes), the
    header row on every page (:func:`write_sheet`), narrow margins, grid lines and a
    "sheet, page n of m" footer."""
    ws.set_landscape()
    ws.set_paper(9)  # A4
    ws.fit_to_pages(1, 0)  # also sets the fit-to-page flag, without which Excel ignores it
    ws.hide_gridlines(0)  # 0: grid lines on screen and printed
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.5)
    ws.set_footer("&C" + labels.t("workbook.footer", lang))
