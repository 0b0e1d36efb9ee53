"""Shared chart style: the perflink altair theme, status colours and axis number formats.

Task modules build their own charts (in their ``Result.chart()``) and use these helpers so
every chart looks alike and reads in Chinese and in print. :func:`perflink.report.configure`
enables the theme and the renderer; call :func:`theme` yourself when building charts outside
a report.

Charts are laid out by the reader's browser (:func:`enable_renderer`: vega-embed, inlined, no
network), so their text is measured with the fonts it is drawn with. Long names still need
room: :func:`short_label` abbreviates them (keep the full name in the tooltip) and
:func:`wrap_axis` breaks axis labels over two lines; the theme leaves legends and facet headers
unlimited and writes months as ``2025-10``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import altair as alt
import numpy as np
import pandas as pd

from perflink import _charts_embed
from perflink.errors import PerflinkError
from perflink.labels import _check_lang, t, value_label
from perflink.units import axis_label_expr

__all__ = [
    "FONT",
    "SEVERITY_COLORS",
    "STATUS_COLORS",
    "STATUS_WORD_COLORS",
    "THEME_NAME",
    "density",
    "fmt_axis_money",
    "enable_renderer",
    "for_chart",
    "ranked_title",
    "severity_scale",
    "short_label",
    "status_scale",
    "theme",
    "wrap_axis",
]

THEME_NAME = "perflink"

FONT = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", '
    '"Hiragino Sans GB", "Segoe UI", Arial, sans-serif'
)
"""Font list for chart text: CJK fonts first so Chinese labels never fall back to boxes."""

STATUS_COLORS: dict[str, str] = {"green": "#2e7d32", "amber": "#f0a202", "red": "#c62828"}
#: Colours of the status vocabulary (perflink.common.ACTUAL_STATUSES / OUTLOOK_STATUSES):
#: the same three colours, so a status word and its colour always agree.
STATUS_WORD_COLORS: dict[str, str] = {
    "met": STATUS_COLORS["green"],
    "near_miss": STATUS_COLORS["amber"],
    "missed": STATUS_COLORS["red"],
    "on_track": STATUS_COLORS["green"],
    "at_risk": STATUS_COLORS["amber"],
    "off_track": STATUS_COLORS["red"],
}
"""Traffic-light colours for the ``status`` codes green (on track), amber (at risk), red."""

SEVERITY_COLORS: dict[str, str] = {
    "critical": "#8e0000",
    "high": "#c62828",
    "medium": "#f0a202",
    "low": "#7cb342",
    "info": "#78909c",
}
"""Colours for findings ``severity``, most severe first."""

AXIS_LABEL_LIMIT = 240
"""Widest axis label in pixels (about 18 Chinese characters); longer ones end in an ellipsis."""
MONTH_FORMAT = "%Y-%m"
"""d3 time format of months on axes and in tooltips (``2025-10``, the same in zh and en)."""

_PALETTE = ["#0b5cad", "#e07b00", "#2e7d32", "#8e44ad", "#c62828", "#00838f", "#6d4c41"]


def _config() -> dict:
    """The theme dict: readable font sizes at A4 print size, quiet gridlines, nothing cut.

    Legends and facet headers have no width limit (a cut "未达标" or "On trac" reads as
    another word); legends list every entry; months read ``2025-10`` (one line: "十月" over
    "2025" overlapped); axis labels stop at 240 px with an ellipsis, so a chart of long names
    should use :func:`short_label` or :func:`wrap_axis` and show the full name in its tooltip.
    """
    return {
        "config": {
            "font": FONT,
            "view": {"stroke": None, "continuousWidth": 520, "continuousHeight": 300},
            "title": {"fontSize": 15, "anchor": "start", "offset": 10, "limit": 0},
            "axis": {
                "labelFontSize": 12,
                "titleFontSize": 12,
                "titleFontWeight": "normal",
                "gridColor": "#e5e8eb",
                "domainColor": "#8c959f",
                "tickColor": "#8c959f",
                "labelLimit": AXIS_LABEL_LIMIT,
            },
            "axisTemporal": {"format": MONTH_FORMAT},
            "legend": {
                "labelFontSize": 12,
                "titleFontSize": 12,
                "labelLimit": 0,
                "titleLimit": 0,
                "symbolLimit": 0,
            },
            "header": {
                "labelFontSize": 12,
                "titleFontSize": 13,
                "labelLimit": 0,
                "labelPadding": 8,
                "titlePadding": 8,
            },
            "facet": {"spacing": 24},
            "text": {"fontSize": 12},
            "range": {"category": _PALETTE},
            "numberFormat": ",.4~g",
            "timeFormat": MONTH_FORMAT,
        }
    }


def theme(*, enable: bool = True) -> str:
    """Register the perflink altair theme (and enable it unless ``enable=False``).

    Returns
    -------
    str
        The theme name, ``"perflink"``.
    """
    alt.theme.register(THEME_NAME, enable=enable)(_config)
    return THEME_NAME


def enable_renderer(*, lang: str | None = None, inline_bundle: bool = True) -> str:
    """Show altair charts through the perflink renderer: drawn by the reader's browser, offline.

    Each chart output holds its Vega-Lite spec (``application/vnd.vegalite.v6+json``; the
    HTML report draws those with one inlined vega-embed bundle per page) and an HTML form for
    JupyterLab, where charts stay interactive: tooltips, and zoom and pan along x on time
    series (drag, mouse wheel; double-click resets). Charts draw as SVG without the action
    menu, with month and day names in ``lang``.

    Parameters
    ----------
    lang
        ``"zh"`` or ``"en"`` (default: current language).
    inline_bundle
        Put the vega-embed bundle (about 0.9 MB) in every chart's HTML output, so a notebook
        draws its charts in JupyterLab with no network (the default, for exploring). ``False``
        for report runs: the HTML page inlines the bundle once and the executed notebook
        stays small.

    Returns
    -------
    str
        The renderer name, ``"perflink"``.

    Raises
    ------
    PerflinkError
        If ``lang`` is not supported.
    """
    _charts_embed.enable(lang=_check_lang(lang), inline_bundle=inline_bundle)
    return _charts_embed.RENDERER_NAME


def _is_wide(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _text_width(text: str) -> int:
    return sum(2 if _is_wide(ch) else 1 for ch in text)


def _head(text: str, width: int) -> str:
    out, used = [], 0
    for ch in text:
        used += 2 if _is_wide(ch) else 1
        if used > width:
            break
        out.append(ch)
    return "".join(out)


def _tail(text: str, width: int) -> str:
    return _head(text[::-1], width)[::-1]


_ELLIPSIS = "…"


def short_label(values: pd.Series | Iterable[str], max_width: int = 20) -> pd.Series:
    """Names shortened to fit an axis: at most ``max_width`` wide, kept apart, full ones intact.

    A Chinese character counts 2, a Latin letter 1, so ``max_width=20`` keeps about ten
    Chinese characters or twenty letters. A longer name keeps its beginning and ends in "…";
    when two names would then read alike ("东方机械有限公司一厂", "东方机械有限公司二厂") both
    keep their end instead ("东方机械…一厂"), so no two different names share a label. Put
    the short label on the axis and the full name in the tooltip::

        df["entity_short"] = charts.short_label(df["entity"])
        alt.Chart(df).mark_bar().encode(
            y=alt.Y("entity_short:N", title=None), x="value:Q",
            tooltip=[alt.Tooltip("entity:N", title=...), ...],
        )

    Parameters
    ----------
    values
        Names: a Series (the index is kept) or any list of strings; missing values stay
        missing.
    max_width
        Widest label, in Latin-letter widths (at least 6).

    Returns
    -------
    pandas.Series
        The labels, same length and index as ``values``.

    Raises
    ------
    PerflinkError
        If ``values`` is not a list of strings or ``max_width`` is below 6.
    """
    if isinstance(max_width, bool) or not isinstance(max_width, int) or max_width < 6:
        raise PerflinkError(f"short_label: max_width must be an integer >= 6, got {max_width!r}.")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise PerflinkError(
            f"short_label: expected a Series or list of names, got {type(values).__name__}."
        )
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    bad = [v for v in series if not (isinstance(v, str) or pd.isna(v))]
    if bad:
        raise PerflinkError(f"short_label: names must be text, got {bad[0]!r}.")
    names = [v for v in dict.fromkeys(series) if isinstance(v, str)]
    room = max_width - 1  # the ellipsis takes one width
    short = {n: n if _text_width(n) <= max_width else _head(n, room) + _ELLIPSIS for n in names}
    by_label: dict[str, list[str]] = {}
    for name, label in short.items():
        by_label.setdefault(label, []).append(name)
    for group in by_label.values():
        if len(group) < 2:
            continue
        others = set(short.values()) - {short[n] for n in group}
        for tail in range(2, room):  # the distinguishing end, as short as tells them apart
            cands = {
                n: n
                if _text_width(n) <= max_width
                else _head(n, room - tail) + _ELLIPSIS + _tail(n, tail)
                for n in group
            }
            if len(set(cands.values())) == len(group) and not others & set(cands.values()):
                break
        else:
            cands = {n: n for n in group}  # nothing shorter tells them apart: show them whole
        short.update(cands)
    return series.map(lambda v: short.get(v, v) if isinstance(v, str) else v)


def wrap_axis(chars: int = 10, **axis: object) -> alt.Axis:
    """Axis whose labels break over two lines of at most ``chars`` characters, then "…".

    For category axes whose names are long: English breaks at the last space that fits,
    Chinese after ``chars`` characters. Two lines need about 32 px per category on a y axis
    (``alt.Y(..., scale=alt.Scale(...))`` or a chart ``height`` of 32 px per row), none extra
    on an x axis. Keep the full name in the tooltip.

    Parameters
    ----------
    chars
        Characters per line (at least 4).
    **axis
        Other ``alt.Axis`` properties (``title``, ``orient``, ...); not ``labelExpr``.

    Raises
    ------
    PerflinkError
        If ``chars`` is below 4 or ``labelExpr`` is given.
    """
    if isinstance(chars, bool) or not isinstance(chars, int) or chars < 4:
        raise PerflinkError(f"wrap_axis: chars must be an integer >= 4, got {chars!r}.")
    if "labelExpr" in axis:
        raise PerflinkError("wrap_axis: labelExpr is what wrap_axis sets; do not pass one.")
    lab = "datum.label"
    cut = f"lastindexof(substring({lab}, 0, {chars + 1}), ' ')"
    brk = f"({cut} > 0 ? {cut} : {chars})"
    rest = f"trim(substring({lab}, {brk}))"
    second = f"(length({rest}) <= {chars} ? {rest} : substring({rest}, 0, {chars - 1}) + '…')"
    expr = f"length({lab}) <= {chars} ? {lab} : [substring({lab}, 0, {brk}), {second}]"
    return alt.Axis(labelExpr=expr, labelLimit=0, **axis)


def _code_scale(colors: dict[str, str], col: str, lang: str | None) -> alt.Scale:
    lang = _check_lang(lang)
    return alt.Scale(
        domain=[value_label(col, code, lang) for code in colors], range=list(colors.values())
    )


def status_scale(*, labelled: bool = False, lang: str | None = None) -> alt.Scale:
    """Colour scale for ``status`` green/amber/red.

    Parameters
    ----------
    labelled
        ``False``: the domain is the codes (``green``, ...); ``True``: the localised labels
        (达标/预警/未达标), for charts whose data already holds the labels.
    lang
        Language of the labels (default: current language).
    """
    if labelled:
        return _code_scale(STATUS_COLORS, "status", lang)
    return alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values()))


def severity_scale(*, labelled: bool = False, lang: str | None = None) -> alt.Scale:
    """Colour scale for findings ``severity`` (critical ... info); see :func:`status_scale`."""
    if labelled:
        return _code_scale(SEVERITY_COLORS, "severity", lang)
    return alt.Scale(domain=list(SEVERITY_COLORS), range=list(SEVERITY_COLORS.values()))


def fmt_axis_money(unit: str, lang: str | None = None, *, title: str | None = None) -> alt.Axis:
    """Axis for amounts in the catalog money unit ``unit`` (``万元``, ``kUSD``, ...).

    zh labels in 万/亿 of the currency (``8,000万``, ``1.2亿``), en ``CNY 1.5m``,
    ``USD 250k`` (:func:`perflink.units.axis_label_expr`); the title should name the
    currency in zh (:func:`perflink.units.unit_label`).

    Parameters
    ----------
    unit
        The catalog unit of the values on the axis; it must be a unit of money.
    lang
        ``"zh"`` or ``"en"`` (default: current language).
    title
        Axis title; ``None`` leaves altair's default (the field name or encoding title).

    Raises
    ------
    PerflinkError
        If ``unit`` is not money, ``title`` is not a string or ``lang`` is not supported.
    """
    lang = _check_lang(lang)
    expr = axis_label_expr(unit, lang)
    if expr is None:
        raise PerflinkError(f"fmt_axis_money: {unit!r} is not a unit of money (perflink.units).")
    kwargs = {"labelExpr": expr}
    if title is not None:
        if not isinstance(title, str):
            raise PerflinkError(f"fmt_axis_money: title must be a string, got {title!r}.")
        kwargs["title"] = title
    return alt.Axis(**kwargs)


def for_chart(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` that altair can serialise: Period columns become strings (``"2026-09"``).

    Vega-Lite has no period type; use ``alt.X("period:O")`` (or ``:T`` after ``to_timestamp``).

    Raises
    ------
    PerflinkError
        If ``df`` is not a DataFrame.
    """
    if not isinstance(df, pd.DataFrame):
        raise PerflinkError(f"for_chart: expected a pandas DataFrame, got {type(df).__name__}.")
    out = df.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.PeriodDtype):
            out[col] = out[col].astype("string")
    return out


def message(text: str) -> alt.Chart:
    """A chart that only says ``text`` (e.g. "nothing to show"), where a result is empty.

    A newline in ``text`` starts a new line (keep a long sentence within the page width).
    """
    return (
        alt.Chart(pd.DataFrame({"text": [text]}))
        .mark_text(size=14, lineBreak="\n")
        .encode(text="text:N")
    )


def ranked_title(title: str, *, shown: int, total: int, by: str, lang: str | None = None):
    """Chart title that says when only the first ``shown`` of ``total`` items are drawn.

    Charts of a large group draw the group, its subsidiaries and the top units (by money at
    stake or severity) instead of one mark per unit; the subtitle says so, e.g.
    "前 8 项（共 286 项），按风险金额排序". Returns ``title`` unchanged when nothing is left out.

    Parameters
    ----------
    title
        The chart title.
    shown, total
        Items drawn and items there are.
    by
        What the items are ranked by, already localised (e.g. a column label).
    lang
        ``"zh"`` or ``"en"`` (default: current language).
    """
    if shown >= total:
        return title
    note = t("report.chart.top_n", _check_lang(lang), n=shown, total=total, by=by)
    return alt.TitleParams(text=title, subtitle=note)


def density(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    bins: int = 24,
    x_title: str,
    y_title: str,
    fmt: str = "%",
    lang: str | None = None,
) -> alt.Chart:
    """2-D histogram of many points (e.g. thousands of units): shaded cells, darker = more.

    Use it under a layer of the few marks a reader needs by name (group, subsidiaries, top
    units) instead of one dot per unit: the page stays small and the cloud stays readable.
    Counting is done here, so the chart carries at most ``bins`` x ``bins`` cells whatever
    the number of rows. Values beyond the 1st-99th percentile are counted in the edge cells,
    so a few outliers do not squash the rest.

    Parameters
    ----------
    df
        The points; rows where ``x`` or ``y`` is missing are left out.
    x, y
        Numeric columns to place the points by.
    bins
        Cells along each axis.
    x_title, y_title
        Axis titles.
    fmt
        d3 number format of the axis labels (default percent, for completion rates).
    lang
        Language of the legend title (default: current language).

    Raises
    ------
    PerflinkError
        If ``df`` is not a DataFrame or lacks ``x`` or ``y``.
    """
    if not isinstance(df, pd.DataFrame) or not {x, y} <= set(df.columns):
        raise PerflinkError(
            f"density: expected a DataFrame with columns {x!r} and {y!r}"
            + (f", got columns {list(df.columns)}." if isinstance(df, pd.DataFrame) else ".")
        )
    lang = _check_lang(lang)
    pts = df[[x, y]].apply(pd.to_numeric, errors="coerce").dropna()
    pts = pts[np.isfinite(pts).all(axis=1)]
    rows = []
    if len(pts):
        lo, hi = pts.quantile(0.01), pts.quantile(0.99)
        span = (hi - lo).where(hi > lo, 1e-9)
        xs = pts[x].clip(lo[x], hi[x])
        ys = pts[y].clip(lo[y], hi[y])
        counts, xe, ye = np.histogram2d(
            xs, ys, bins=bins, range=[[lo[x], lo[x] + span[x]], [lo[y], lo[y] + span[y]]]
        )
        for i, j in zip(*np.nonzero(counts), strict=True):
            rows.append(
                {"x0": xe[i], "x1": xe[i + 1], "y0": ye[j], "y1": ye[j + 1], "n": counts[i, j]}
            )
    cells = pd.DataFrame(rows, columns=["x0", "x1", "y0", "y1", "n"])
    n_title = t("report.chart.n_units", lang)
    return (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X("x0:Q", axis=alt.Axis(format=fmt), scale=alt.Scale(zero=False), title=x_title),
            x2="x1:Q",
            y=alt.Y("y0:Q", axis=alt.Axis(format=fmt), scale=alt.Scale(zero=False), title=y_title),
            y2="y1:Q",
            color=alt.Color("n:Q", scale=alt.Scale(scheme="greys"), title=n_title),
            tooltip=[alt.Tooltip("n:Q", title=n_title, format=",.0f")],
        )
    )
