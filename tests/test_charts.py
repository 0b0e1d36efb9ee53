"""Tests for perflink.charts: theme, colour scales, money axis."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from perflink import charts
from perflink.errors import ParamsError, PerflinkError


def test_theme_registers_and_enables():
    assert charts.theme() == "perflink"
    assert alt.theme.active == "perflink"
    spec = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x").to_dict()
    assert "Noto Sans CJK SC" in spec["config"]["font"]


def test_theme_without_enable_keeps_active_theme():
    alt.theme.enable("default")
    try:
        charts.theme(enable=False)
        assert alt.theme.active == "default"
        assert "perflink" in alt.theme.names()
    finally:
        charts.theme()


def test_status_and_severity_scales():
    scale = charts.status_scale().to_dict()
    assert scale["domain"] == ["green", "amber", "red"]
    assert len(scale["range"]) == 3
    assert charts.status_scale(labelled=True, lang="zh").to_dict()["domain"] == [
        "达标", "预警", "未达标"
    ]  # fmt: skip
    assert charts.severity_scale().to_dict()["domain"][0] == "critical"


def test_scales_bad_language():
    with pytest.raises(ParamsError):
        charts.status_scale(labelled=True, lang="xx")


def test_fmt_axis_money():
    zh = charts.fmt_axis_money("万元", "zh", title="营业收入").to_dict()
    assert "亿" in zh["labelExpr"] and zh["title"] == "营业收入"
    assert "CNY" in charts.fmt_axis_money("万元", "en").to_dict()["labelExpr"]
    usd = charts.fmt_axis_money("kUSD", "en").to_dict()["labelExpr"]
    assert "USD" in usd and "CNY" not in usd
    with pytest.raises(ParamsError):
        charts.fmt_axis_money("万元", "jp")
    with pytest.raises(PerflinkError):
        charts.fmt_axis_money("万元", "zh", title=3)
    with pytest.raises(PerflinkError, match="not a unit of money"):
        charts.fmt_axis_money("persons", "en")


def test_for_chart_turns_periods_into_strings():
    df = pd.DataFrame({"period": pd.period_range("2026-07", periods=2, freq="M"), "v": [1.0, 2.0]})
    out = charts.for_chart(df)
    assert out["period"].tolist() == ["2026-07", "2026-08"]
    assert isinstance(df["period"].dtype, pd.PeriodDtype)  # input unchanged
    alt.Chart(out).mark_line().encode(x="period:O", y="v").to_dict()  # serialisable
    with pytest.raises(PerflinkError):
        charts.for_chart([1, 2])


def test_message_chart_says_its_text():
    spec = charts.message("本季度无异常").to_dict()
    assert spec["mark"]["type"] == "text"
    assert spec["datasets"][next(iter(spec["datasets"]))] == [{"text": "本季度无异常"}]


def test_charts_import_without_compiling_the_iri_grammar():
    """perflink keeps jsonschema from importing rfc3987_syntax (0.9 s per kernel), and
    altair still validates a chart."""
    import subprocess
    import sys

    code = (
        "import sys, perflink.charts, altair as alt, pandas as pd\n"
        "assert sys.modules['rfc3987_syntax'] is None\n"
        "alt.Chart(pd.DataFrame({'a': [1]})).mark_bar().encode(x='a:Q').to_dict()\n"
        "try:\n"
        "    alt.Chart(pd.DataFrame({'a': [1]})).mark_bar(size='big').to_dict()\n"
        "except Exception:\n"
        "    print('invalid refused')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "invalid refused" in out.stdout
