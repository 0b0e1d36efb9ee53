"""The workbooks finance opens, forwards and prints: review.xlsx and scorecard.xlsx.

Issue 19 item 7: one language per workbook (headers and codes in words), numbers formatted
with their units, widths and wrap, live evidence links, print setup (A4 landscape, fit to
width, header row repeated). Small results are built here; the full run's workbook is
checked in test_summary.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils.cell import absolute_coordinate

from perflink import labels
from perflink._report_xlsx import PCT, SCORE, header_text, number_format, value_text
from perflink.errors import ReportError
from perflink.scoring import write_scorecard_xlsx
from perflink.summary import write_workbook

LONG = "华东制造第一工厂良品率自2026年8月起出现水平移位：本月 86.7%，此前水平约 93.6%。" * 3
#: Columns holding codes of the inputs (ids, periods), not words: exempt from the zh check.
ZH_CODES = {
    "问题编号",
    "单位编号",
    "规则编号",
    "考核方案",
    "期间",
    "涉及期间",
    "首次发现",
    "来源系统",
}
ASCII_WORD = re.compile(r"[A-Za-z_]{2,}")


def _catalog() -> SimpleNamespace:
    names = {"revenue": ("营业收入", "Revenue"), "yield_rate": ("良品率", "Yield")}
    units = {"revenue": "万元", "yield_rate": "ratio"}
    return SimpleNamespace(
        metrics={
            m: SimpleNamespace(unit=units[m], name=lambda lang, m=m: names[m][lang == "en"])
            for m in names
        }
    )


def _summary(lang: str, tmp_path: Path) -> SimpleNamespace:
    findings = pd.DataFrame(
        {
            "finding_id": ["F-1", "F-2"],
            "source_task": ["kpi", "anomaly"],
            "finding_kind": ["tier1_missed", "anomaly"],
            "entity_id": ["S01", "S01D02"],
            "entity": ["华东制造有限公司", "华东制造第一工厂"],
            "period": ["2026Q3", "2026-08"],
            "metric_id": ["revenue", "yield_rate"],
            "rule_id": ["tier1_missed", None],
            "severity": ["critical", "high"],
            "at_stake": [808.4, 1010.4],
            "message": [LONG, "短说明"],
            "evidence_link": ["kpi.html#tier1", "anomaly.html#list"],
            "evidence": ["kpi:tier1_missed, forecast:projected_miss", "anomaly:anomaly"],
            "tasks": ["kpi, forecast", "anomaly"],
            "loop_status": ["new", "new"],
        }
    )
    scorecard = pd.DataFrame(
        {
            "entity_id": ["S01", "S01"],
            "scope": ["quarter", "ytd"],
            "scheme_id": ["SCH-P", "SCH-P"],
            "metric_id": ["revenue", "yield_rate"],
            "category": ["financial", "business"],
            "weight": [0.25, 0.1],
            "rule": ["linear", "step"],
            "floor": [0.6, 0.6],
            "cap": [1.2, 1.2],
            "actual": [2819.2, 0.867],
            "target": [2540.2, 0.9],
            "completion": [1.109822514137988, None],
            "score": [110.98, 95.27],
            "status": ["met", "missed"],
        }
    )
    bonus = pd.DataFrame(
        {"entity_id": ["S01"], "year": [2026], "kind": ["pool"], "payout": [120.0],
         "pool_budget": [100.0], "overrun": [20.0], "overrun_pct": [0.2]}
    )  # fmt: skip
    forecast = pd.DataFrame(
        {
            "entity_id": ["S01"],
            "metric_id": ["revenue"],
            "projected": [22360.15],
            "budget": [23663.4],
            "deviation_pct": [-0.055],
            "lead_months": [3],
            "lead_vs_budget": [-0.08],
            "budget_basis": ["monthly"],
            "status": ["off_track"],
            "severity": ["medium"],
            "message": ["营业收入预计全年 2.24 亿元"],
        }
    )
    anomalies = pd.DataFrame(
        {
            "rank": [1, 2],
            "entity_id": ["S01D02", "S01D02"],
            "entity": ["华东制造第一工厂"] * 2,
            "period": ["2026-08"] * 2,
            "metric_id": ["yield_rate", "revenue"],
            "metric": ["良品率", "营业收入"],
            "kind": ["level_shift", "linkage"],
            "severity": ["critical", "high"],
            "value": [0.8668, 1190.74],
            "expected": [0.9357, 1082.06],
            "score": [-11.11, 11.35],
            "at_stake": [675.5, 108.7],
            "favourable": [False, False],
            "also": ["multivariate,peer", ""],
            "parent_id": ["S01", "S01"],
            "message": [LONG, LONG],
        }
    )
    tables = {"scorecard": scorecard, "bonus": bonus, "forecast_deviation": forecast,
              "anomalies": anomalies}  # fmt: skip
    actions = pd.DataFrame(
        {"action_id": ["budget"], "entity_id": ["S01"], "rule_id": ["R01"],
         "severity": ["medium"], "message": ["建议调整预算"]}
    )  # fmt: skip
    return SimpleNamespace(
        language=lang,
        findings=SimpleNamespace(to_frame=lambda: findings),
        actions=SimpleNamespace(to_frame=lambda: actions),
        inputs=SimpleNamespace(get=tables.get, tables_dir=tmp_path / "tables"),
        money_unit="万元",
        units={"revenue": "万元", "yield_rate": "ratio"},
    )


def _review_book(lang: str, tmp_path: Path) -> openpyxl.Workbook:
    path = write_workbook(_summary(lang, tmp_path), catalog=_catalog())
    assert path == tmp_path / "review.xlsx"
    return openpyxl.load_workbook(path)


def _column(ws, header: str) -> list:
    heads = [c.value for c in ws[1]]
    assert header in heads, (ws.title, header, heads)
    return [row[heads.index(header)] for row in ws.iter_rows(min_row=2)]


def test_review_workbook_in_chinese_has_no_codes(tmp_path):
    wb = _review_book("zh", tmp_path)
    assert wb.sheetnames == ["问题清单", "建议措施", "考核表", "奖金", "预测偏差", "异常"]
    for ws in wb.worksheets:
        heads = [c.value for c in ws[1]]
        assert not [h for h in heads if ASCII_WORD.search(h)], (ws.title, heads)
        assert len(set(heads)) == len(heads), heads
        words = [c.value for row in ws.iter_rows(min_row=2) for c, h in zip(row, heads, strict=True)
                 if isinstance(c.value, str) and h not in ZH_CODES]  # fmt: skip
        assert not [w for w in words if ASCII_WORD.search(w)], (ws.title, words)
    findings = wb["问题清单"]
    assert [c.value for c in _column(findings, "问题类型")] == ["一级指标未达成", "数据异常"]
    assert _column(findings, "严重程度")[0].value == "严重"
    assert _column(findings, "指标")[1].value == "良品率"  # the metric's name, not its id
    assert _column(findings, "发现该问题的分析")[0].value.count("、") == 1
    card = wb["考核表"]
    rules = [value_text("rule", r, "zh") for r in ("linear", "step")]  # the KPI page's words
    assert [c.value for c in _column(card, header_text("rule", "zh", task="scoring"))] == rules
    assert not [r for r in rules if ASCII_WORD.search(r)]
    assert _column(card, "指标类别")[0].value == "财务类"
    assert _column(card, "口径期间")[1].value == "年初至今"
    assert header_text("floor", "zh", task="scoring") in [c.value for c in card[1]]
    assert "超支比例" in [c.value for c in wb["奖金"][1]]
    fc_heads = [c.value for c in wb["预测偏差"][1]]
    words = {header_text(c, "zh") for c in ("lead_months", "lead_vs_budget", "unit")}
    assert words <= set(fc_heads) and "计量单位" in words
    assert _column(wb["异常"], "有利方向")[0].value == "否"


def test_review_workbook_in_english_has_distinct_headers(tmp_path):
    wb = _review_book("en", tmp_path)
    assert wb.sheetnames[-2:] == ["Forecast deviation", "Anomalies"]
    for ws in wb.worksheets:
        heads = [c.value for c in ws[1]]
        assert len(set(heads)) == len(heads), (ws.title, heads)
        assert not [h for h in heads if "_" in h], heads
    heads = [c.value for c in wb["Findings"][1]]
    assert heads[3:5] == ["Entity", "Entity name"]  # was "Entity, Entity"
    assert _column(wb["Findings"], "Kind of finding")[0].value == "Tier-1 target missed"
    rule = _column(wb["Scorecard"], header_text("rule", "en", task="scoring"))[0].value
    assert rule == value_text("rule", "linear", "en") != "linear"


def test_review_workbook_formats_numbers_with_their_units(tmp_path):
    wb = _review_book("zh", tmp_path)
    card = wb["考核表"]
    done = _column(card, "完成率")[0]
    assert done.number_format == PCT and done.value == pytest.approx(1.109822514137988)
    assert _column(card, "权重")[0].number_format == PCT
    actual = _column(card, "实际值")
    assert [c.number_format for c in actual] == ["#,##0.0", PCT]  # each row in its unit
    assert [c.value for c in _column(card, "计量单位")] == ["万元", "%"]
    assert _column(card, "得分")[0].number_format == SCORE
    risk = [c for c in wb["问题清单"][1] if c.value.startswith("风险金额")][0]
    assert "万元" in risk.value  # the money unit in the header
    assert wb["问题清单"].cell(2, risk.column).number_format == "#,##0.0"
    anomalies = wb["异常"]
    assert [c.number_format for c in _column(anomalies, "数值")] == [PCT, "#,##0.0"]
    risk = [c for c in anomalies[1] if c.value.startswith("风险金额")][0]
    assert "万元" in risk.value and anomalies.cell(2, risk.column).number_format == "#,##0.0"
    assert _column(wb["预测偏差"], "偏差率")[0].number_format == PCT
    assert _column(wb["奖金"], "超支比例")[0].number_format == PCT


def test_review_workbook_widths_wrap_and_live_links(tmp_path):
    wb = _review_book("zh", tmp_path)
    ws = wb["问题清单"]
    heads = [c.value for c in ws[1]]
    msg = heads.index("说明") + 1
    letter = openpyxl.utils.get_column_letter(msg)
    assert ws.column_dimensions[letter].width >= 40
    assert ws.cell(2, msg).alignment.wrap_text
    # rows grow to their wrapped text (LibreOffice does not on opening the file)
    assert ws.row_dimensions[2].height > 2 * ws.row_dimensions[3].height
    assert ws.column_dimensions["A"].width < 20  # ids stay narrow
    link = _column(ws, "证据页面")
    assert link[0].hyperlink is not None and _href(link[0]) == "kpi.html#tier1"
    assert link[0].value != "kpi.html#tier1"  # the page's title, in words
    assert _href(link[1]) == "anomaly.html#list"


def _href(cell) -> str:
    """Where a link cell points: the page (the link's target) and its anchor (its location,
    as Excel writes a link into a page)."""
    link = cell.hyperlink
    return link.target + (f"#{link.location}" if link.location else "")


def _assert_print_setup(ws, freeze: str = "A2", lang: str = "en") -> None:
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == 9  # A4
    # one page wide: fitToWidth left out of the file is its default, 1 (ECMA-376)
    assert int(ws.page_setup.fitToWidth or 1) == 1 and int(ws.page_setup.fitToHeight) == 0
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.print_title_rows == "$1:$1"
    last = f"{openpyxl.utils.get_column_letter(ws.max_column)}{ws.max_row}"
    assert ws.print_area == f"'{ws.title}'!$A$1:{absolute_coordinate(last)}"
    assert ws.freeze_panes == freeze
    assert ws.auto_filter.ref == f"A1:{last}"
    assert ws.print_options.gridLines
    assert (ws.page_margins.left, ws.page_margins.right) == (0.4, 0.4)
    assert (ws.page_margins.top, ws.page_margins.bottom) == (0.5, 0.5)
    assert ws.oddFooter.center.text == labels.t("workbook.footer", lang)


def test_review_workbook_print_setup(tmp_path):
    for ws in _review_book("en", tmp_path).worksheets:
        _assert_print_setup(ws)


def _scores(lang: str) -> SimpleNamespace:
    card = pd.DataFrame(
        {
            "entity_id": ["S01", "S01D01", "S01D01"],
            "period": ["2026Q3"] * 3,
            "scope": ["quarter", "quarter", "ytd"],
            "scheme_id": ["SCH-PROFIT"] * 3,
            "metric_id": ["revenue", "revenue", "yield_rate"],
            "category": ["financial", "financial", "business"],
            "weight": [0.25, 0.25, 0.1],
            "rule": ["linear", "linear", "threshold"],
            "floor": [0.6, 0.6, 0.6],
            "cap": [1.2, 1.2, 1.2],
            "actual": [2819.204999999999, 100.0, 0.867],
            "target": [2540.2, 110.0, 0.9],
            "basis": ["ratio", "ratio", "points"],
            "completion": [1.109822514137988, 0.909, None],
            "attainment": [1.109822514137988, 0.909, 0.96],
            "score": [110.98225, 90.9, 95.27],
            "status": ["met", "missed", "near_miss"],
        }
    )
    return SimpleNamespace(
        language=lang,
        scorecard=card,
        names={"S01": "华东制造有限公司", "S01D01": "华东制造销售一部", "G": "集团"},
        parents={"S01": "G", "S01D01": "S01", "G": None},
    )


def test_scorecard_workbook_formatted_like_the_page(tmp_path):
    path = write_scorecard_xlsx(_scores("zh"), tmp_path / "scorecard.xlsx", catalog=_catalog())
    ws = openpyxl.load_workbook(path)["S01"]
    heads = [c.value for c in ws[1]]
    assert not [h for h in heads if ASCII_WORD.search(h)], heads  # one language
    assert len(set(heads)) == len(heads)
    done = _column(ws, "完成率")
    assert done[0].value == pytest.approx(1.109822514137988) and done[0].number_format == PCT
    actual = _column(ws, "实际值")
    assert actual[0].value == pytest.approx(2819.205) and actual[0].number_format == "#,##0.0"
    assert actual[2].number_format == PCT  # a yield, in its own unit
    assert [c.value for c in _column(ws, "计量单位")] == ["万元", "万元", "%"]
    assert _column(ws, "指标")[2].value == "良品率"
    assert [c.value for c in _column(ws, "状态")] == ["达成", "未达成", "略低于目标"]
    assert _column(ws, header_text("rule", "zh", task="scoring"))[2].value == value_text(
        "rule", "threshold", "zh"
    )
    assert _column(ws, "得分")[0].number_format == SCORE
    _assert_print_setup(ws, freeze="C2", lang="zh")


def test_scorecard_workbook_in_english(tmp_path):
    path = write_scorecard_xlsx(_scores("en"), tmp_path / "scorecard.xlsx", catalog=_catalog())
    ws = openpyxl.load_workbook(path)["S01"]
    heads = [c.value for c in ws[1]]
    assert heads[:2] == ["Entity", "Entity name"]
    assert len(set(heads)) == len(heads) and not [h for h in heads if "_" in h]
    assert _column(ws, "Metric")[0].value == "Revenue"
    assert _column(ws, "Status")[0].value == "Met"


def test_scorecard_workbook_without_catalog_keeps_amounts_plain(tmp_path):
    path = write_scorecard_xlsx(_scores("zh"), tmp_path / "scorecard.xlsx")
    ws = openpyxl.load_workbook(path)["S01"]
    assert "计量单位" not in [c.value for c in ws[1]]
    assert _column(ws, "实际值")[0].number_format == "#,##0.0"
    assert _column(ws, "完成率")[0].number_format == PCT


def test_helpers_words_and_formats():
    assert header_text("lead_vs_budget", "zh") == "先行指标较预算"
    assert header_text("bonus", "en", unit="kUSD") == "Bonus (USD k)"
    assert header_text("brand_new_column", "en") == "Brand new column"
    assert value_text("severity", "critical", "zh") == "严重"
    assert value_text("finding_kind", "rule", "en") == "Rule breach"  # the mapping page's
    assert value_text("status", "Custom Words", "en") == "Custom Words"  # not a code: as is
    assert number_format("ratio") == PCT and number_format("万元") == "#,##0.0"
    assert number_format("元/件") == "#,##0.00"


def test_workbook_bad_path_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match=r"\.xlsx"):
        write_workbook(_summary("zh", tmp_path), path=tmp_path / "review.csv")


def test_only_report_page_links_are_live(tmp_path):
    import xlsxwriter

    from perflink._report_xlsx import Sheet, write_sheet

    df = pd.DataFrame({"evidence_link": ["kpi.html#a", "http://x.invalid/", "=HYPERLINK(1)"]})
    with xlsxwriter.Workbook(tmp_path / "t.xlsx") as book:
        write_sheet(book, "Sheet", df, lang="en", spec=Sheet(links=("evidence_link",)))
    ws = openpyxl.load_workbook(tmp_path / "t.xlsx")["Sheet"]
    cells = [row[0] for row in ws.iter_rows(min_row=2)]
    assert _href(cells[0]) == "kpi.html#a"
    assert [c.hyperlink for c in cells[1:]] == [None, None]
    assert cells[2].value == "=HYPERLINK(1)" and cells[2].data_type == "s"  # text, as read


def test_status_colours_are_conditional_formats_on_the_words(tmp_path):
    from perflink.charts import STATUS_WORD_COLORS

    path = write_scorecard_xlsx(_scores("zh"), tmp_path / "scorecard.xlsx", catalog=_catalog())
    ws = openpyxl.load_workbook(path)["S01"]
    heads = [c.value for c in ws[1]]
    letter = openpyxl.utils.get_column_letter(heads.index("状态") + 1)
    fills = {}
    for cf in ws.conditional_formatting:
        assert str(cf.sqref) == f"{letter}2:{letter}{ws.max_row}"
        for rule in cf.rules:
            assert rule.type == "cellIs" and rule.operator == "equal"
            fill = rule.dxf.fill  # a solid fill of a conditional format: its bgColor
            fills[rule.formula[0]] = fill.bgColor.rgb[-6:].upper()
            assert rule.dxf.font.color.rgb[-6:].upper() == "FFFFFF"
    want = {
        f'"{value_text("status", k, "zh")}"': v[1:].upper() for k, v in STATUS_WORD_COLORS.items()
    }
    assert fills == want


def test_sheet_titles_stay_distinct_and_text_stays_text(tmp_path):
    card = pd.DataFrame(
        {"entity_id": ["S/1", "S_1", "s_1"], "score": [1.0, 2.0, 3.0]}
    )  # fmt: skip
    result = SimpleNamespace(
        scorecard=card,
        names={"S/1": "a\x01b", "S_1": "=1+1", "s_1": ""},
        parents={"S/1": "G", "S_1": "G", "s_1": "G", "G": None},
        language="en",
    )
    wb = openpyxl.load_workbook(write_scorecard_xlsx(result, tmp_path / "scorecard.xlsx"))
    assert [t.lower() for t in wb.sheetnames] == ["s_1", "s_11", "s_12"]
    names = [ws.cell(2, 2) for ws in wb.worksheets]
    assert [c.value for c in names] == ["a\ufffdb", "=1+1", None]  # no formula, no bad XML
    assert names[1].data_type == "s"


def test_a_workbook_of_many_sheets_may_keep_a_file_open_per_sheet(monkeypatch):
    # XlsxWriter's constant_memory keeps every sheet's temporary file open: a scorecard of
    # 1,429 subsidiaries stopped at the common soft limit of 1,024 open files
    resource = pytest.importorskip("resource")
    from perflink._report_xlsx import open_files_for

    limits = {"now": (1024, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda _: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _, v: limits.update(now=v))
    open_files_for(100, name="scorecard.xlsx")
    assert limits["now"] == (1024, 4096)  # enough already: untouched
    open_files_for(1500, name="scorecard.xlsx")
    assert limits["now"] == (1756, 4096)  # the soft limit raised within the hard one
    limits["now"] = (1024, 1100)
    with pytest.raises(ReportError, match=r"scorecard\.xlsx: 1500 sheets.*ulimit -n 1756"):
        open_files_for(1500, name="scorecard.xlsx")
