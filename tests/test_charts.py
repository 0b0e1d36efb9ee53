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


# --- long names, legends, months (issue 19: charts that never clip) ---


def test_theme_leaves_legends_and_headers_whole_and_months_on_one_line():
    charts.theme()
    cfg = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().to_dict()["config"]
    assert cfg["legend"]["labelLimit"] == 0 and cfg["legend"]["titleLimit"] == 0
    assert cfg["legend"]["symbolLimit"] == 0  # every entry listed
    assert cfg["header"]["labelLimit"] == 0 and cfg["header"]["labelPadding"] > 0
    assert cfg["axisTemporal"]["format"] == "%Y-%m" == cfg["timeFormat"]
    assert cfg["axis"]["labelLimit"] == charts.AXIS_LABEL_LIMIT


def test_short_label_abbreviates_keeps_names_apart_and_index():
    names = pd.Series(
        ["华南制造有限公司一厂", "华南制造有限公司二厂", "西南销售", "East Manufacturing Co", None],
        index=list("abcde"),
    )
    out = charts.short_label(names, 14)
    assert list(out.index) == list("abcde") and pd.isna(out["e"])
    assert out["c"] == "西南销售"  # short names unchanged
    assert out["a"] == "华南制造…一厂" and out["b"] == "华南制造…二厂"  # the ends tell them apart
    assert out["d"] == "East Manufact…"
    widths = [charts._text_width(v) for v in out.dropna()]
    assert max(widths) <= 14
    assert out.dropna().is_unique
    # plain list in, Series out; names nothing shorter tells apart stay whole
    assert charts.short_label(["a" * 30, "a" * 31], 10).tolist() == ["a" * 30, "a" * 31]


def test_short_label_bad_input():
    with pytest.raises(PerflinkError, match="max_width"):
        charts.short_label(["x"], 3)
    with pytest.raises(PerflinkError, match="list of names"):
        charts.short_label("华南制造", 10)
    with pytest.raises(PerflinkError, match="text"):
        charts.short_label(["a", 3], 10)


def test_wrap_axis_breaks_long_labels_over_two_lines():
    expr = charts.wrap_axis(6, title="单位").to_dict()
    assert expr["title"] == "单位" and expr["labelLimit"] == 0
    import vl_convert

    df = pd.DataFrame({"n": ["华南制造有限公司一厂", "East Region Sales", "短名"], "v": [1, 2, 3]})
    chart = alt.Chart(df).mark_bar().encode(x=alt.X("n:N", axis=charts.wrap_axis(6)), y="v:Q")
    svg = vl_convert.vegalite_to_svg(chart.to_dict())
    for line in ("华南制造有限", "公司一厂", "East", "Regio…", "短名"):
        assert f">{line}<" in svg, line
    with pytest.raises(PerflinkError, match="chars"):
        charts.wrap_axis(2)
    with pytest.raises(PerflinkError, match="labelExpr"):
        charts.wrap_axis(8, labelExpr="datum.label")


# --- the browser renderer (perflink._charts_embed) ---

_MIME = "application/vnd.vegalite.v6+json"
_MONTHS = pd.DataFrame({"t": pd.date_range("2025-01-01", periods=12, freq="MS"), "v": range(12)})


def _zoom_params(spec: dict) -> list[dict]:
    return [p for p in _walk(spec) if isinstance(p, dict) and p.get("bind") == "scales"]


def _walk(obj):
    if isinstance(obj, dict):
        yield from obj.get("params", [])
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def test_enable_renderer_writes_spec_and_html_with_locale():
    from perflink import _charts_embed

    assert charts.enable_renderer(lang="zh", inline_bundle=False) == "perflink"
    assert alt.renderers.active == "perflink"
    data, meta = alt.Chart(_MONTHS).mark_line().encode(x="t:T", y="v:Q")._repr_mimebundle_()
    assert data[_MIME]["$schema"].endswith(".json") and "text/html" in data
    opts = meta[_MIME]["embed_options"]
    assert opts["renderer"] == "svg" and opts["actions"] is False
    assert opts["timeFormatLocale"]["months"][9] == "十月"
    assert 'class="pl-chart"' in data["text/html"]
    assert "window.vegaEmbed=" not in data["text/html"]  # report runs: the page inlines it
    charts.enable_renderer(lang="en", inline_bundle=True)
    data, meta = alt.Chart(_MONTHS).mark_bar().encode(x="t:T", y="v:Q")._repr_mimebundle_()
    assert meta[_MIME]["embed_options"]["timeFormatLocale"]["months"][9] == "October"
    assert data["text/html"].count("window.vegaEmbed=") == 1  # JupyterLab: offline, per output
    assert _charts_embed.bundle() in data["text/html"]


def test_enable_renderer_bad_language():
    with pytest.raises(ParamsError):
        charts.enable_renderer(lang="fr")


def test_zoom_only_on_time_series():
    from perflink._charts_embed import with_zoom

    line = alt.Chart(_MONTHS).mark_line().encode(x="t:T", y="v:Q")
    bar = alt.Chart(_MONTHS).mark_bar().encode(x="t:T", y="v:Q")
    ordinal = alt.Chart(_MONTHS.assign(p="x")).mark_line().encode(x="p:O", y="v:Q")
    zoomed = with_zoom(line.to_dict())
    assert len(_zoom_params(zoomed)) == 1
    # zoomable views clip their marks: points stay whole on the edge; no x padding (a tick
    # inside it drew its label past the chart); a y axis from zero keeps its baseline
    assert "scale" not in zoomed["encoding"]["x"] and "scale" not in zoomed["encoding"]["y"]
    dots = with_zoom((line + line.mark_circle()).to_dict())
    assert dots["layer"][1]["mark"] == {"type": "circle", "clip": False}
    free_y = (
        alt.Chart(_MONTHS).mark_line().encode(x="t:T", y=alt.Y("v:Q", scale=alt.Scale(zero=False)))
    )
    assert with_zoom(free_y.to_dict())["encoding"]["y"]["scale"]["padding"] > 0
    assert _zoom_params(with_zoom(bar.to_dict())) == []
    assert _zoom_params(with_zoom(ordinal.to_dict())) == []
    # a layer gets one selection; a facet's inner view and each concatenated view their own
    layered = with_zoom((bar + line).to_dict())
    assert len(_zoom_params(layered)) == 1 and "params" not in layered["layer"][0]
    faceted = with_zoom(line.facet("v:N").to_dict())
    assert len(_zoom_params(faceted)) == 1 and "params" in faceted["spec"]
    both = with_zoom((line | line).to_dict())
    names = [p["name"] for p in _zoom_params(both)]
    assert len(names) == 2 and len(set(names)) == 2
    # a chart that binds scales itself is left as it is
    own = line.interactive().to_dict()
    assert with_zoom(own) == own


def test_chart_json_has_no_nan_and_cannot_close_its_script():
    from perflink._charts_embed import script_json

    text = script_json({"a": float("nan"), "b": [float("inf"), 1.5], "c": "</script><!--"})
    assert text == '{"a": null, "b": [null, 1.5], "c": "\\u003c/script\\u003e\\u003c!--"}'


def test_task_page_draws_charts_with_one_inlined_bundle(tmp_path):
    import nbformat
    from bs4 import BeautifulSoup
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from perflink.report import render_task_html

    charts.enable_renderer(lang="zh", inline_bundle=False)
    bundles = [
        alt.Chart(_MONTHS).mark_line().encode(x="t:T", y="v:Q")._repr_mimebundle_()
        for _ in range(2)
    ]
    cells = [
        new_code_cell("c", outputs=[new_output("display_data", data=data, metadata=meta)])
        for data, meta in bundles
    ]
    nb = new_notebook(cells=cells)
    nbformat.write(nb, tmp_path / "c.ipynb")
    render_task_html(tmp_path / "c.ipynb", tmp_path / "c.html", language="zh", title="t")
    page = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert page.count("window.vegaEmbed=") == 1  # the bundle once, whatever the chart count
    soup = BeautifulSoup(page, "html.parser")
    boxes = soup.select(".pl-chart[data-pl-spec]")
    assert len(boxes) == 2
    for box in boxes:
        spec = soup.find(id=box["data-pl-spec"])
        assert spec["type"] == "application/json" and '"$schema"' in spec.get_text()
    assert "十月" in soup.find(id="pl-chart-options").get_text()  # month names of the page
    # a page without charts carries no bundle
    nbformat.write(new_notebook(cells=[new_code_cell("x")]), tmp_path / "n.ipynb")
    render_task_html(tmp_path / "n.ipynb", tmp_path / "n.html", language="zh", title="t")
    assert "vegaEmbed" not in (tmp_path / "n.html").read_text(encoding="utf-8")


def test_bundle_is_vl_converts_built_in_a_child_process(monkeypatch) -> None:
    # Built in a child process (vl-convert's V8 engine would keep ~120 MB in the review's
    # own process), the script is vl-convert's own, for the Vega-Lite version altair writes.
    import vl_convert

    from perflink import _charts_embed

    monkeypatch.setitem(_charts_embed._state, "bundle", None)
    built = _charts_embed.bundle()
    version = _charts_embed._vl_version(vl_convert)
    assert built == vl_convert.javascript_bundle(vl_version=version)
    assert _charts_embed.bundle() is built  # once per process


def test_bundle_that_cannot_be_built_is_a_clear_error(monkeypatch) -> None:
    from perflink import _charts_embed

    monkeypatch.setitem(_charts_embed._state, "bundle", None)
    monkeypatch.setattr(_charts_embed, "_BUILD", "import sys; sys.exit('V8 out of memory')")
    with pytest.raises(PerflinkError, match=r"V8 out of memory.*pip install --force-reinstall"):
        _charts_embed.bundle()
    assert _charts_embed._state["bundle"] is None
