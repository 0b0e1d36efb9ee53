"""Tests for perflink.report: formatting, display helpers, saved tables, HTML pages."""

from __future__ import annotations

import re
from pathlib import Path

import altair as alt
import nbformat
import pandas as pd
import pytest
from bs4 import BeautifulSoup
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from perflink import labels, report
from perflink.errors import ParamsError, PerflinkError
from perflink.labels import LabelError
from perflink.report import (
    ReportError,
    fmt_bytes,
    fmt_duration,
    fmt_money,
    fmt_number,
    fmt_period,
    render_index,
    render_task_html,
    save_table,
)


@pytest.fixture(autouse=True)
def _reset_state():
    lang, folder = labels.get_language(), report.tables_dir()
    yield
    labels.set_language(lang)
    report._state["tables_dir"] = folder


@pytest.fixture
def shown(monkeypatch):
    """Capture what report.show/heading/text hand to IPython's display()."""
    out: list = []
    monkeypatch.setattr(report, "_display", out.append)
    return out


@pytest.fixture
def tables(tmp_path) -> Path:
    report.configure(language="zh", tables_dir=tmp_path / "tables")
    return tmp_path / "tables"


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "entity_id": ["D01", "<script>alert(1)</script>"],
            "period": pd.period_range("2026-08", periods=2, freq="M"),
            "metric_id": ["revenue", "margin"],
            "severity": ["high", "info"],
            "message": ["收入低于目标 12%", '毛利率, "偏低"'],
            "value": [12345.678, 0.1],
        }
    )


# --- formatting (expected strings worked out by hand from the rules in the docstrings) ---


@pytest.mark.parametrize(
    ("x", "unit", "lang", "expected"),
    [
        (12345, "万元", "zh", "1.23 亿元"),  # 12,345 万元 = 1.2345 亿元
        (523.4, "万元", "zh", "523.4 万元"),
        (2500, "万元", "zh", "2,500 万元"),
        (0.5, "万元", "zh", "0.50 万元"),
        (-15000, "万元", "zh", "-1.50 亿元"),
        (12345, "万元", "en", "CNY 123.5 m"),  # 12,345 × 10,000 = 123,450,000
        (4.5, "万元", "en", "CNY 45.0 k"),
        (200000, "万元", "en", "CNY 2.00 bn"),
        (0.05, "万元", "en", "CNY 500"),
        (2.69, "kUSD", "en", "USD 2.7 k"),  # 2,690 USD
        (2.69, "kUSD", "zh", "2,690 美元"),
        (208.2, "kUSD", "zh", "20.8 万美元"),  # 208,200 USD
        (208.2, "千美元", "en", "USD 208.2 k"),
        (3.2, "MUSD", "en", "USD 3.2 m"),
        (523, "元", "zh", "523 元"),
        (1.5, "亿元", "zh", "1.50 亿元"),
        (12.0, "kEUR", "zh", "1.2 万欧元"),
        (float("nan"), "万元", "zh", "—"),
        (None, "kUSD", "en", "—"),
    ],
)
def test_fmt_money(x, unit, lang, expected):
    assert fmt_money(x, unit, lang) == expected


def test_fmt_money_bad_value():
    with pytest.raises(ReportError, match="'abc'"):
        fmt_money("abc", "万元", "zh")
    with pytest.raises(ParamsError):
        fmt_money(1.0, "万元", "fr")
    with pytest.raises(ReportError, match="not a unit of money"):
        fmt_money(1.0, "persons", "en")


@pytest.mark.parametrize(
    ("x", "unit", "lang", "expected"),
    [
        (0.952, "pct", "zh", "95.2%"),
        (1.0834, "%", "en", "108.3%"),
        (1234567, None, "zh", "1,234,567"),
        (1234.56, None, "en", "1,234.6"),
        (3.14159, None, "en", "3.14"),
        (0.012345, None, "en", "0.0123"),
        (1200, "pcs", "zh", "1,200 件"),
        (1200, "件", "en", "1,200 units"),
        (35.5, "元/件", "zh", "35.50 元/件"),
        (35.5, "元/件", "en", "35.50 CNY/unit"),
        (55.2, "USD/order", "zh", "55.20 美元/单"),
        (1.08, "万元/人", "en", "CNY 10.8 k/person"),
        (0.297, "万元/人", "zh", "0.297 万元/人"),
        (0.297, "万元/人", "en", "CNY 2.97 k/person"),
        (12345, "万元", "zh", "1.23 亿元"),
        (1234, "visits", "zh", "1,234 人次"),
        (12, "个", "en", "12"),
        (7, "kWh", "en", "7 kWh"),
        (pd.NA, "pct", "zh", "—"),
    ],
)
def test_fmt_number(x, unit, lang, expected):
    assert fmt_number(x, unit, lang) == expected


def test_fmt_number_bad_value():
    with pytest.raises(ReportError, match="expected a number"):
        fmt_number("95%", "pct", "zh")
    with pytest.raises(ReportError):
        fmt_number(True)


@pytest.mark.parametrize(
    ("p", "lang", "expected"),
    [
        (pd.Period("2026-09", "M"), "zh", "2026年9月"),
        (pd.Period("2026-09", "M"), "en", "Sep 2026"),
        ("2026Q3", "zh", "2026年第3季度"),
        ("2026Q3", "en", "2026 Q3"),
        (pd.Period("2026", "Y"), "zh", "2026年"),
        (pd.NaT, "en", "—"),
    ],
)
def test_fmt_period(p, lang, expected):
    assert fmt_period(p, lang) == expected


def test_fmt_period_bad_value():
    with pytest.raises(ReportError, match="'Q3 of 2026'"):
        fmt_period("Q3 of 2026", "zh")
    with pytest.raises(ReportError):
        fmt_period(2026, "zh")


def test_fmt_duration_and_bytes():
    assert fmt_duration(83, "zh") == "1 分 23 秒"
    assert fmt_duration(83, "en") == "1 min 23 s"
    assert fmt_duration(4.25, "en") == "4.2 s"
    assert fmt_duration(7260, "zh") == "2 小时 1 分"
    assert fmt_bytes(2048) == "2.0 KB"
    assert fmt_bytes(500) == "500 B"
    with pytest.raises(ReportError):
        fmt_duration("slow")
    with pytest.raises(ReportError):
        fmt_bytes("big")


# --- configure / display helpers ---


def test_configure_sets_language_renderer_and_tables(tmp_path):
    report.configure(language="en", tables_dir=tmp_path / "t")
    assert labels.get_language() == "en"
    assert alt.renderers.active == "perflink"  # charts drawn by the reader's browser
    assert alt.theme.active == "perflink"
    assert report.tables_dir() == tmp_path / "t"
    report.configure(language="zh", tables_dir=None)
    assert report.tables_dir() is None


def test_time_axes_name_months_in_the_report_language(tmp_path):
    months = pd.DataFrame({"t": pd.date_range("2025-01-01", periods=24, freq="MS"), "v": 1.0})
    chart = alt.Chart(months).mark_line().encode(x="t:T", y="v:Q")
    report.configure(language="zh", tables_dir=None)
    zh = chart._repr_mimebundle_()
    report.configure(language="en", tables_dir=None)
    en = chart._repr_mimebundle_()
    # the browser draws the chart with the time-format locale the output carries
    mime = "application/vnd.vegalite.v6+json"
    zh_opts, en_opts = (b[1][mime]["embed_options"] for b in (zh, en))
    assert zh_opts["timeFormatLocale"]["months"][6] == "七月"
    assert en_opts["timeFormatLocale"]["months"][6] == "July"


def test_configure_bad_input(tmp_path):
    with pytest.raises(ParamsError, match="'english'"):
        report.configure(language="english", tables_dir=None)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="not a folder"):
        report.configure(language="zh", tables_dir=tmp_path / "file")


def test_show_dataframe_localised_escaped(shown):
    report.configure(language="zh", tables_dir=None)
    report.show(_frame(), units={"value": "万元"})
    html = shown[0].data
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    for text in ("单位编号", "期间", "严重程度", "高", "提示", "2026年8月", "1.23 亿元"):
        assert text in html
    cells = BeautifulSoup(html, "html.parser").select("td.num")
    assert [c.get_text() for c in cells] == ["1.23 亿元", "0.10 万元"]


def test_show_other_objects_and_row_limit(shown):
    chart = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x")
    report.show(chart)
    assert shown[-1] is chart
    report.show(pd.Series([1, 2, 3], name="value"), max_rows=2, lang="en")
    assert "showing the first 2 of 3 rows" in shown[-1].data
    frame = pd.DataFrame({"x": [1]}).set_index(pd.Index(["a"], name="entity_id"))
    report.show(frame, lang="en")
    assert '<th scope="col">Entity</th>' in shown[-1].data
    assert "entity_id" not in shown[-1].data  # not even as a header's hover text


def test_show_bad_input(shown):
    with pytest.raises(ReportError, match="cannot display a int"):
        report.show(3)
    with pytest.raises(ReportError, match="'nope'"):
        report.show(_frame(), units={"nope": "pct"})


def test_show_appendix_prints_a_pointer_instead_of_the_table(shown):
    report.configure(language="zh", tables_dir=None)
    report.show(_frame(), units={"value": "万元"}, appendix=True)
    soup = BeautifulSoup(shown[-1].data, "html.parser")
    block = soup.select_one("div.pl-appendix")
    # on screen: the table as show() draws it without appendix
    assert block.select_one("table.pl-table") is not None
    assert "1.23 亿元" in block.get_text()
    # the print pointer: hidden on screen by an inline style (JupyterLab has no perflink.css)
    note = block.select_one("p.pl-appendix-note")
    assert note["style"] == "display:none"
    assert note.get_text() == (
        "此处的明细表（2 行）不打印：完整表格见评审工作簿 review.xlsx 及 tables/ 文件夹。"
    )
    report.show(_frame(), lang="en", appendix=True)
    note = BeautifulSoup(shown[-1].data, "html.parser").select_one("p.pl-appendix-note")
    assert note.get_text().startswith("This detail table (2 rows) is not printed")
    # without appendix: no pointer
    report.show(_frame())
    assert "pl-appendix" not in shown[-1].data


def test_show_appendix_of_a_result_uses_its_language(shown):
    from perflink.results import TableResult

    report.configure(language="zh", tables_dir=None)
    result = TableResult(table=_frame(), language="en")
    report.show(result, appendix=True)
    soup = BeautifulSoup(shown[-1].data, "html.parser")
    assert soup.select_one("div.pl-appendix table.pl-table") is not None
    assert "Severity" in soup.get_text()
    assert soup.select_one(".pl-appendix-note").get_text().startswith("This detail table (2 rows)")


def test_print_css_swaps_appendix_tables_for_their_pointer():
    from perflink._report_html import _css

    css = _css()
    rule = css[css.index(".pl-appendix >") :]
    assert "display: none !important" in rule and "display: block !important" in rule
    assert css.rindex("@media print", 0, css.index(".pl-appendix >")) > 0


def test_show_appendix_bad_input(shown):
    chart = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x")
    with pytest.raises(ReportError, match="appendix=True is for long tables"):
        report.show(chart, appendix=True)
    with pytest.raises(ReportError, match="rows must be a whole number"):
        report.appendix_html("<table></table>", rows=-1)
    with pytest.raises(ReportError, match="expected the table's HTML"):
        report.appendix_html(None)


def test_glossary_box_one_line_per_term(shown):
    report.configure(language="zh", tables_dir=None)
    report.glossary("robust_z", "materiality", "robust_z")
    soup = BeautifulSoup(shown[-1].data, "html.parser")
    box = soup.select_one("aside.pl-glossary")
    assert box.select_one(".pl-glossary-title").get_text() == "本页术语"
    lines = box.select("li")
    assert len(lines) == 2  # a repeated term shows once
    assert lines[0].b.get_text() == "稳健 z 分值"
    assert lines[0].get_text().startswith("稳健 z 分值：本月数值偏离该单位往常水平")
    assert "5%" in lines[1].get_text()  # common.MATERIALITY, not a hard-coded figure
    report.glossary("elasticity", "p_value", lang="en")
    soup = BeautifulSoup(shown[-1].data, "html.parser")
    assert soup.select_one(".pl-glossary-title").get_text() == "Terms used on this page"
    assert [b.get_text() for b in soup.select("li b")] == ["Elasticity", "p-value"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_shared_glossary_term_is_one_plain_sentence(lang):
    shared = [
        "shapley",
        "identity_gap",
        "unexplained",
        "elasticity",
        "r2",
        "p_value",
        "lag",
        "robust_z",
        "mahalanobis",
        "mase",
        "smape",
        "wape",
        "interval",
        "probability_of_budget",
        "calibration",
        "caliber",
        "completion",
        "points_gap",
        "materiality",
        "money_at_stake",
        "backtest",
    ]
    html = report.glossary_html(shared, lang=lang)
    soup = BeautifulSoup(html, "html.parser")
    lines = soup.select("li")
    assert len(lines) == len(shared)
    colon = "：" if lang == "zh" else ": "
    for li in lines:
        text = li.get_text()
        assert li.b is not None and colon in text, text  # "term: sentence"
        assert "_" not in text and "{" not in text, text  # no code, no unfilled field
        assert text.count("。" if lang == "zh" else ". ") <= 1, text  # one sentence


def test_glossary_explains_metrics_from_the_company_catalog(shown):
    from perflink.catalog import Metric

    metric = Metric(
        id="m1", name_zh="经营增加值", name_en="Value added", definition="扣除资本成本后的利润",
        caliber="c", unit="万元", owner="o", source_system="ERP", direction="higher", tier=1,
        category="financial",
    )  # fmt: skip
    report.glossary("completion", metrics=[metric], lang="en")
    lines = BeautifulSoup(shown[-1].data, "html.parser").select("li")
    assert [li.get_text() for li in lines][1] == "Value added: 扣除资本成本后的利润"
    report.glossary(metrics=[metric], lang="zh")
    assert BeautifulSoup(shown[-1].data, "html.parser").li.get_text() == (
        "经营增加值：扣除资本成本后的利润"
    )
    with pytest.raises(ReportError, match="must be catalog metrics"):
        report.glossary("completion", metrics=["m1"])


def test_glossary_bad_input(shown):
    with pytest.raises(ReportError, match="unknown term 'no_such_term'"):
        report.glossary("elasticity", "no_such_term")
    with pytest.raises(ReportError, match="give the terms"):
        report.glossary()
    with pytest.raises(ReportError, match="not a term key"):
        report.glossary("Robust Z")
    assert shown == []


def test_frame_html_marks_the_print_layout():
    from perflink._report_format import SHORT_ROWS, frame_html

    df = pd.DataFrame(
        {
            "entity_id": ["D01", "D02"],
            "message": [
                "收入低于目标，差额主要来自华东地区的两家门店，需核对来源系统的收入确认口径后再行考核，并在下季度复核结果",
                "短",
            ],
            "note": ["一句中等长度的说明文字，约有二十个字左右", "x"],
            "value": [1.5, 2.5],
        }
    )
    soup = BeautifulSoup(frame_html(df, lang="zh"), "html.parser")
    table = soup.table
    # laid out by the renderer, short: kept on one printed page; four columns fit A4
    assert {"pl-table", "pl-fit", "pl-short"} <= set(table["class"])
    assert not {"pl-wide", "pl-xwide"} & set(table["class"])
    first = table.select("tbody tr")[0].select("td")
    assert first[0].get("class") is None  # short text: one line
    assert first[1]["class"] == ["pl-long"]  # over 48 characters: wraps within 22em
    assert first[2]["class"] == ["pl-wrap"]  # over 16 characters: wraps within 14em
    assert first[3]["class"] == ["num"]
    long = pd.DataFrame({"value": range(SHORT_ROWS + 1)})
    assert "pl-short" not in BeautifulSoup(frame_html(long), "html.parser").table["class"]


def test_frame_html_marks_tables_too_wide_for_a4():
    from perflink._report_format import frame_html

    amounts = {f"c{i}": [123456.7] for i in range(6)}
    narrow = frame_html(pd.DataFrame(amounts), lang="zh", units=dict.fromkeys(amounts, "万元"))
    assert "pl-wide" not in narrow
    many = {f"c{i}": [123456.7] for i in range(11)}  # 11 x "12.35 亿元": 70 em, 7 pt fits
    wide = frame_html(pd.DataFrame(many), lang="zh", units=dict.fromkeys(many, "万元"))
    assert "pl-wide" in BeautifulSoup(wide, "html.parser").table["class"]
    lots = {f"c{i}": [123456.7] for i in range(20)}
    xwide = frame_html(pd.DataFrame(lots), lang="zh", units=dict.fromkeys(lots, "万元"))
    assert "pl-xwide" in BeautifulSoup(xwide, "html.parser").table["class"]


def test_heading_and_text(shown):
    report.configure(language="en", tables_dir=None)
    report.heading("report.index.tasks", level=3)
    report.text("report.page.quarter", quarter="<b>Q3</b>")
    assert shown[0].data == "### Report pages"
    assert shown[1].data == "Review period: &lt;b&gt;Q3&lt;/b&gt;"


def test_heading_and_text_bad_input(shown):
    with pytest.raises(ReportError, match="level"):
        report.heading("report.index.tasks", level=7)
    with pytest.raises(LabelError, match="kpi.missing"):
        report.text("kpi.missing")


# --- save_table ---


def test_save_table_csv_bom_periods_and_parquet_round_trip(tables):
    df = _frame()
    assert save_table(df, "kpi_findings", findings=True) is None
    raw = (tables / "kpi_findings.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" not in raw
    text = raw.decode("utf-8-sig")
    assert text.splitlines()[0] == "entity_id,period,metric_id,severity,message,value"
    assert "2026-08" in text and '"毛利率, ""偏低"""' in text
    back = pd.read_parquet(tables / "kpi_findings.parquet")
    assert back["period"].tolist() == ["2026-08", "2026-09"]
    pd.testing.assert_frame_equal(
        back.drop(columns="period"), df.drop(columns="period"), check_dtype=False
    )
    assert sorted(p.name for p in tables.iterdir()) == ["kpi_findings.csv", "kpi_findings.parquet"]


def test_save_table_is_deterministic(tables, tmp_path):
    save_table(_frame(), "a")
    first = [(tables / f"a.{ext}").read_bytes() for ext in ("csv", "parquet")]
    report.configure(language="en", tables_dir=tmp_path / "again")
    save_table(_frame(), "a")
    second = [(tmp_path / "again" / f"a.{ext}").read_bytes() for ext in ("csv", "parquet")]
    assert first == second


def test_save_table_named_index_written(tables):
    df = pd.DataFrame({"score": [1.5, 2.0]}, index=pd.Index(["D01", "D02"], name="entity_id"))
    save_table(df, "scores")
    assert (tables / "scores.csv").read_text(encoding="utf-8-sig") == (
        "entity_id,score\nD01,1.5\nD02,2.0\n"
    )
    save_table(df.reset_index(drop=True), "plain")
    assert (tables / "plain.csv").read_text(encoding="utf-8-sig") == "score\n1.5\n2.0\n"


def test_save_table_noop_without_tables_dir(tmp_path, monkeypatch):
    report.configure(language="zh", tables_dir=None)
    monkeypatch.chdir(tmp_path)
    df = _frame()
    assert save_table(df, "x") is None
    assert list(tmp_path.iterdir()) == []


def test_save_table_findings_contract(tables):
    with pytest.raises(
        ReportError, match="metric_id or rule_id.*severity|severity.*metric_id or rule_id"
    ):
        save_table(_frame().drop(columns=["metric_id", "severity"]), "f", findings=True)
    bad = _frame().assign(severity=["high", "urgent"])
    with pytest.raises(ReportError, match=r"'urgent' at row\(s\) 2"):
        save_table(bad, "f", findings=True)
    ok = _frame().rename(columns={"metric_id": "rule_id"})
    save_table(ok, "f", findings=True)
    assert (tables / "f.csv").exists()


def test_save_table_bad_input(tables):
    with pytest.raises(ReportError, match="not a plain file stem"):
        save_table(_frame(), "../escape")
    with pytest.raises(ReportError, match="not a plain file stem"):
        save_table(_frame(), "x.csv")
    with pytest.raises(ReportError, match="DataFrame"):
        save_table([1, 2], "x")
    assert not (tables / "x.csv").exists()


# --- HTML pages ---


def _external_urls(soup: BeautifulSoup) -> list[str]:
    urls = [
        el.get(attr, "") for attr in ("src", "href") for el in soup.find_all(attrs={attr: True})
    ]
    return [u for u in urls if re.match(r"^(https?:)?//", u.strip(), re.I)]


@pytest.fixture
def executed_nb(tmp_path) -> Path:
    """An 'executed' notebook with outputs written by hand (no kernel needed)."""
    svg = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50">'
        '<rect width="100" height="50"/><text x="5" y="20">营业收入</text></svg>'
    )
    nb = new_notebook(
        cells=[
            new_markdown_cell("# 指标评审\n\n## 第一节"),
            new_code_cell("secret_code_here = 1"),
            new_code_cell(
                "report.show(df)",
                outputs=[
                    new_output("stream", name="stderr", text="UserWarning: 噪声\n"),
                    new_output("stream", name="stdout", text="stdout stays\n"),
                    new_output("display_data", data={"text/html": "<p>table here</p>"}),
                ],
            ),
            new_code_cell(
                "chart", outputs=[new_output("display_data", data={"image/svg+xml": svg})]
            ),
        ],
        metadata={"papermill": {"parameters": {"quarter": "2026Q3"}}},
    )
    path = tmp_path / "01_kpi.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize(
    ("lang", "html_lang", "quarter"), [("zh", "zh-CN", "2026年第3季度"), ("en", "en", "2026 Q3")]
)
def test_render_task_html_offline_code_hidden(executed_nb, tmp_path, lang, html_lang, quarter):
    out = tmp_path / "out" / "01_kpi.html"
    render_task_html(executed_nb, out, language=lang, title="KPI <评审>")
    page = out.read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "html.parser")
    assert soup.html["lang"] == html_lang
    assert _external_urls(soup) == []
    assert soup.find_all("script") == [] and soup.find_all("link") == []
    assert "secret_code_here" not in page and "report.show" not in page
    assert soup.select(".jp-InputArea, .jp-InputPrompt, .jp-OutputPrompt") == []
    assert "噪声" not in page and "stdout stays" in page
    assert soup.select_one(".pl-chart svg text").get_text() == "营业收入"
    assert "<?xml" not in page
    assert soup.title.get_text() == "KPI <评审>"
    assert soup.select_one(".pl-back")["href"] == "index.html"
    assert quarter in soup.select_one(".pl-header").get_text()
    css = soup.style.get_text()
    for rule in (
        "@page { size: A4;",
        "break-inside: avoid",
        "break-after: avoid",
        "orphans: 3; widows: 3;",
        "Noto Sans CJK SC",
        "max-width: 1100px",
    ):
        assert rule in css
    assert "break-before: page" not in css  # no section is forced onto a new page


def test_render_task_html_bad_input(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        render_task_html(tmp_path / "missing.ipynb", tmp_path / "x.html", language="zh", title="x")
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportError, match="not a readable notebook"):
        render_task_html(bad, tmp_path / "x.html", language="zh", title="x")
    with pytest.raises(ParamsError):
        render_task_html(bad, tmp_path / "x.html", language="de", title="x")
    assert not (tmp_path / "x.html").exists()


def _run() -> dict:
    return {
        "quarter": "2026Q3",
        "status": "failed",
        "created_at": "2026-10-08T09:00:00+08:00",
        "finished_at": "2026-10-08T09:01:23+08:00",
        "duration_s": 83.0,
        "language": "en",
        "tasks": [
            {
                "name": "01_kpi",
                "notebook": "01_kpi.ipynb",
                "html": "01_kpi.html",
                "status": "ok",
                "duration_s": 12.0,
                "title_key": "report.index.title",
            },
            {
                "name": "<script>alert(1)</script>",
                "status": "failed",
                "duration_s": 1.5,
                "title_key": "kpi.not_a_label",
            },
        ],  # fmt: skip
        "inputs": [
            {
                "name": "facts",
                "path": "in/facts.csv",
                "sha256": "0123456789abcdef" * 4,
                "bytes": 3 * 1024 * 1024,
                "rows": 12000,
            },
        ],  # fmt: skip
        "versions": {"pandas": "3.1.0", "<img src=x onerror=alert(1)>": "1"},
        "params": {"quarter": "2026Q3", "token": "***"},
    }


def test_render_index_content_and_escaping(tmp_path):
    out = tmp_path / "index.html"
    render_index(_run(), out, language="en")
    page = out.read_text(encoding="utf-8")
    soup = BeautifulSoup(page, "html.parser")
    assert soup.html["lang"] == "en"
    assert soup.find_all("script") == [] and soup.find_all("img") == []
    assert "<script>alert(1)</script>" in soup.get_text()
    assert _external_urls(soup) == []
    links = [a["href"] for a in soup.select("table.pl-tasks a")]
    assert links == ["01_kpi.html", "%3Cscript%3Ealert%281%29%3C/script%3E.html"]
    text = soup.get_text()
    for expected in (
        "2026 Q3",
        "Failed",
        "1 min 23 s",
        "0123456789ab",
        "3.0 MB",
        "12,000",
        "pandas",
        "3.1.0",
        "***",
        "8 Oct 2026, 09:00 (UTC+08:00)",  # local time and zone, not ISO
        "add up to more than the run's total",
    ):
        assert expected in text
    assert "2026-10-08T09" not in text
    assert "Quarterly performance review" in soup.select_one("table.pl-tasks").get_text()


def test_render_index_zh(tmp_path):
    render_index(_run(), tmp_path / "index.html", language="zh")
    soup = BeautifulSoup((tmp_path / "index.html").read_text(encoding="utf-8"), "html.parser")
    assert soup.html["lang"] == "zh-CN"
    assert "2026年第3季度" in soup.get_text() and "失败" in soup.get_text()
    assert "2026年10月8日 09:01（UTC+08:00）" in soup.get_text()


def test_render_index_bad_input(tmp_path):
    run = _run()
    del run["tasks"]
    with pytest.raises(ReportError, match="tasks"):
        render_index(run, tmp_path / "index.html", language="en")
    run = _run()
    run["tasks"].append({"status": "ok"})
    with pytest.raises(ReportError, match=r"run\['tasks'\]\[2\]"):
        render_index(run, tmp_path / "index.html", language="en")
    with pytest.raises(ParamsError):
        render_index(_run(), tmp_path / "index.html", language="xx")
    assert issubclass(ReportError, PerflinkError)


def test_render_task_html_refuses_remote_resources(executed_nb, tmp_path):
    nb = nbformat.read(executed_nb, as_version=4)
    html = '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script><div id="vis"></div>'
    nb.cells.append(
        new_code_cell("chart", outputs=[new_output("display_data", data={"text/html": html})])
    )
    nbformat.write(nb, executed_nb)
    with pytest.raises(ReportError, match="cdn.jsdelivr.net.*offline"):
        render_task_html(executed_nb, tmp_path / "x.html", language="zh", title="x")
    assert not (tmp_path / "x.html").exists()


def test_notebook_title_cell_is_not_repeated_on_the_page(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    nb = new_notebook(
        cells=[
            new_markdown_cell("# 标题 / Title for analysts"),
            new_code_cell(
                "x", outputs=[new_output("display_data", data={"text/markdown": "## 本页内容"})]
            ),
        ]
    )
    src = tmp_path / "t.ipynb"
    nbformat.write(nb, src)
    render_task_html(src, tmp_path / "t.html", language="zh", title="任务")
    page = (tmp_path / "t.html").read_text(encoding="utf-8")
    assert "Title for analysts" not in page
    assert "本页内容" in page


def test_index_leads_with_the_summary(tmp_path):
    run = {
        "quarter": "2026Q3",
        "status": "ok",
        "tasks": [
            {"name": "mapping", "html": "mapping.html", "status": "ok"},
            {"name": "summary", "html": "summary.html", "status": "ok"},
        ],
    }
    render_index(run, tmp_path / "index.html", language="en")
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'class="pl-lead"><a href="summary.html">Start here: ' in page
    assert page.index('href="summary.html"') < page.index('href="mapping.html"')


def test_index_says_when_a_report_is_scoped(tmp_path):
    run = {"quarter": "2026Q3", "status": "ok", "tasks": [], "scope": "S02"}
    render_index(run, tmp_path / "index.html", language="zh")
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "报告范围" in page and "<dd>S02</dd>" in page
    render_index({**run, "scope": None}, tmp_path / "group.html", language="zh")
    assert "报告范围" not in (tmp_path / "group.html").read_text(encoding="utf-8")


# -- figures in message text (one place: _report_format) -------------------------------------


@pytest.mark.parametrize(
    ("x", "spec", "text"),
    [(0.0523, "+.1%", "+5.2%"), (-0.1, "+.1%", "-10.0%"), (87.25, ".1f", "87.2"),
     (12345.6, ",.1f", "12,345.6"), (0.953, ".1%", "95.3%")],
)  # fmt: skip
def test_fmt_figure_formats_with_the_spec(x, spec, text):
    from perflink._report_format import fmt_figure

    assert fmt_figure(x, spec) == text


@pytest.mark.parametrize("x", [None, float("nan"), float("inf"), pd.NA])
def test_fmt_figure_and_fmt_significant_show_missing_as_a_dash(x):
    from perflink._report_format import MISSING, fmt_figure, fmt_significant

    assert fmt_figure(x, ".1f") == MISSING
    assert fmt_significant(x) == MISSING


@pytest.mark.parametrize(
    ("x", "text"),
    [(12345.6, "12,346"), (-1500.0, "-1,500"), (52.34, "52.3"), (10.0, "10.0"), (9.876, "9.88"),
     (0.01234, "0.0123"), (0, "0")],
)  # fmt: skip
def test_fmt_significant_keeps_about_three_digits(x, text):
    from perflink._report_format import fmt_significant

    assert fmt_significant(x) == text


def test_fmt_figure_and_fmt_significant_reject_text():
    from perflink._report_format import fmt_figure, fmt_significant

    with pytest.raises(ReportError, match="fmt_figure value.*'12'"):
        fmt_figure("12", ".1f")
    with pytest.raises(ReportError, match="fmt_significant value"):
        fmt_significant("12")


def test_fmt_number_days_in_both_languages():
    assert report.fmt_number(45.25, "days", "en") == "45.25 days"
    assert report.fmt_number(45.25, "天", "zh") == "45.25 天"
    with pytest.raises(ReportError, match="'many'"):
        report.fmt_number("many", "days", "en")
