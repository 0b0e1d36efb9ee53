"""Shared chart style: the perflink altair theme, status colours and axis number formats.

Task modules build their own charts (in their ``Result.chart()``) and use these helpers so
every chart looks alike and reads in Chinese and in print. :func:`perflink.report.configure`
enables the theme; call :func:`theme` yourself when building charts outside a report.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from perflink.errors import PerflinkError
from perflink.labels import _check_lang, value_label

__all__ = [
    "FONT",
    "SEVERITY_COLORS",
    "STATUS_COLORS",
    "THEME_NAME",
    "fmt_axis_money",
    "for_chart",
    "severity_scale",
    "status_scale",
    "theme",
]

THEME_NAME = "perflink"

FONT = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC", '
    '"Hiragino Sans GB", "Segoe UI", Arial, sans-serif'
)
"""Font list for chart text: CJK fonts first so Chinese labels never fall back to boxes."""

STATUS_COLORS: dict[str, str] = {"green": "#2e7d32", "amber": "#f0a202", "red": "#c62828"}
"""Traffic-light colours for the ``status`` codes green (on track), amber (at risk), red."""

SEVERITY_COLORS: dict[str, str] = {
    "critical": "#8e0000",
    "high": "#c62828",
    "medium": "#f0a202",
    "low": "#7cb342",
    "info": "#78909c",
}
"""Colours for findings ``severity``, most severe first."""

_PALETTE = ["#0b5cad", "#e07b00", "#2e7d32", "#8e44ad", "#c62828", "#00838f", "#6d4c41"]


def _config() -> dict:
    """The theme dict: readable font sizes at A4 print size, quiet gridlines."""
    return {
        "config": {
            "font": FONT,
            "view": {"stroke": None, "continuousWidth": 520, "continuousHeight": 300},
            "title": {"fontSize": 15, "anchor": "start", "offset": 10},
            "axis": {
                "labelFontSize": 12,
                "titleFontSize": 12,
                "titleFontWeight": "normal",
                "gridColor": "#e5e8eb",
                "domainColor": "#8c959f",
                "tickColor": "#8c959f",
                "labelLimit": 220,
            },
            "legend": {"labelFontSize": 12, "titleFontSize": 12, "labelLimit": 220},
            "header": {"labelFontSize": 12, "titleFontSize": 13},
            "text": {"fontSize": 12},
            "range": {"category": _PALETTE},
            "numberFormat": ",.4~g",
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


def fmt_axis_money(lang: str | None = None, *, title: str | None = None) -> alt.Axis:
    """Axis for amounts in 万元: zh labels 万/亿 (``8,000万``, ``1.2亿``), en ``CNY 1.5m``.

    Parameters
    ----------
    lang
        ``"zh"`` or ``"en"`` (default: current language).
    title
        Axis title; ``None`` leaves altair's default (the field name or encoding title).

    Raises
    ------
    ParamsError
        If ``lang`` is not supported.
    """
    lang = _check_lang(lang)
    if lang == "zh":
        expr = (
            "abs(datum.value) >= 10000 ? format(datum.value / 10000, ',.4~r') + '亿' "
            ": format(datum.value, ',.4~r') + '万'"
        )
    else:
        # 1 万元 = 10,000 CNY: value / 100 is CNY millions.
        expr = (
            "abs(datum.value) >= 100 ? 'CNY ' + format(datum.value / 100, ',.4~r') + 'm' "
            ": 'CNY ' + format(datum.value * 10, ',.4~r') + 'k'"
        )
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
    """A chart that only says ``text`` (e.g. "nothing to show"), where a result is empty."""
    return alt.Chart(pd.DataFrame({"text": [text]})).mark_text(size=14).encode(text="text:N")
