"""Report pages in a real headless Chromium, offline (pytest -m browser), and the helpers
that check what a reader sees (tests/browser_utils.py).

A task page with a 3,000-row table (rendered by render_task_html from an 'executed' notebook
written by hand, so no kernel is needed) must be searchable, paginated and sortable by the
money values rather than their text, speak the page language, and print every row; an
appendix table prints as one line pointing to the workbook. On the full sample review, no zh
page shows code, and each page prints within its A4 page limit.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pandas as pd
import pytest
from browser_utils import (
    assert_readable,
    find_identifiers,
    offline_page,
    open_offline,
    pdf_text,
    print_page_count,
)
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from perflink._report_format import PAGE_ROWS, appendix_html, fmt_money, frame_html
from perflink.report import render_task_html

N = 3000
ROWS = "table.pl-table tbody tr"


def _units() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    df = pd.DataFrame(
        {
            "entity_id": [f"U{i:04d}" for i in range(N)],
            "name_zh": [f"单位{i}" for i in range(N)],
            "severity": rng.choice(["critical", "high", "medium", "low", "info"], N),
            # 万元 from 0.01 to ~10 亿元: the text ("1.23 亿元" vs "523.4 万元") sorts wrongly
            "value": rng.lognormal(4, 3, N),
            "completion": rng.uniform(0.5, 1.3, N),
        }
    )
    df.loc[10, "value"] = np.nan
    return df


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    df = _units()
    for lang in ("zh", "en"):
        table = frame_html(df, lang=lang, units={"value": "万元"}, max_rows=N)
        nb = new_notebook(
            cells=[
                new_markdown_cell("## 明细 / Detail"),
                new_code_cell(
                    "show(df)", outputs=[new_output("display_data", data={"text/html": table})]
                ),
            ],
            metadata={"papermill": {"parameters": {"quarter": "2026Q3"}}},
        )
        nbformat.write(nb, out / f"{lang}.ipynb")
        render_task_html(out / f"{lang}.ipynb", out / f"{lang}.html", language=lang, title="t")
    return out, df


def _ready(page) -> None:
    page.wait_for_function("document.documentElement.dataset.plTables === '1'")


def _column(page, n: int):
    return page.locator(f"{ROWS} td:nth-child({n})")


@pytest.mark.browser
def test_search_paging_and_numeric_sort_zh(browser, pages):
    # DataTables redraws after a short timer: expect() retries until the page shows the text.
    from playwright.sync_api import expect

    out, df = pages
    with offline_page(browser, out / "zh.html") as opened:
        page = opened.page
        _ready(page)
        info = page.locator(".dt-info")
        expect(page.locator(ROWS)).to_have_count(PAGE_ROWS)
        expect(info).to_have_text("第 1–25 行，共 3,000 行")
        expect(page.locator(".dt-search")).to_contain_text("搜索")
        expect(page.locator(".dt-length")).to_contain_text("每页")

        page.fill(".dt-search input", "U012")  # U0120 .. U0129
        expect(_column(page, 1)).to_have_text([f"U{i:04d}" for i in range(120, 130)])
        expect(info).to_contain_text("从 3,000 行中筛选")
        page.fill(".dt-search input", "单位2999")
        expect(_column(page, 1)).to_have_text(["U2999"])
        page.fill(".dt-search input", "")
        expect(page.locator(ROWS)).to_have_count(PAGE_ROWS)

        page.locator(".dt-paging-button.next").click()
        expect(info).to_have_text("第 26–50 行，共 3,000 行")
        expect(_column(page, 1).first).to_have_text("U0025")

        value = page.locator("thead th", has_text="数值")
        value.click()  # ascending: the missing value first, then the smallest amounts
        smallest = df["value"].nsmallest(PAGE_ROWS - 1)
        expect(_column(page, 4)).to_have_text(
            ["—", *(fmt_money(v, "万元", "zh") for v in smallest)]
        )
        value.click()  # descending: the largest amounts (亿元 above 万元), by value not text
        top = df["value"].nlargest(PAGE_ROWS)
        expect(_column(page, 1)).to_have_text([f"U{i:04d}" for i in top.index])
        expect(_column(page, 4)).to_have_text([fmt_money(v, "万元", "zh") for v in top])

        page.locator("thead th", has_text="严重程度").click()
        expect(_column(page, 3)).to_have_text(["严重"] * PAGE_ROWS)  # critical first
    assert opened.page_errors == [] and opened.console_errors == [] and opened.blocked == []


@pytest.mark.browser
def test_print_shows_every_row_without_controls(browser, pages):
    from playwright.sync_api import expect

    out, _ = pages
    with offline_page(browser, out / "zh.html") as opened:
        page = opened.page
        _ready(page)
        page.emulate_media(media="print")
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        assert page.locator(ROWS).count() == N  # drawn before the print starts
        for control in (".dt-search", ".dt-paging", ".dt-length", ".dt-info"):
            expect(page.locator(control)).to_be_hidden()
        page.evaluate("window.dispatchEvent(new Event('afterprint'))")
        page.emulate_media(media="screen")
        expect(page.locator(ROWS)).to_have_count(PAGE_ROWS)
        expect(page.locator(".dt-search")).to_be_visible()
    assert opened.page_errors == []


@pytest.mark.browser
def test_english_page_reads_offline(browser, pages, tmp_path):
    out, _ = pages
    check = open_offline(browser, out / "en.html", shots_dir=tmp_path, pdf=False)
    assert_readable(check, texts=["Rows 1–25 of 3,000", "Search:", "rows per page"], lang="en")
    assert "U0024" in check.text and "U0025" not in check.text  # one page on screen


def _page(out, name: str, lang: str, *htmls: str):
    cells = [new_markdown_cell("## 明细 / Detail")]
    cells += [
        new_code_cell("show(x)", outputs=[new_output("display_data", data={"text/html": h})])
        for h in htmls
    ]
    nb = new_notebook(cells=cells, metadata={"papermill": {"parameters": {"quarter": "2026Q3"}}})
    nbformat.write(nb, out / f"{name}.ipynb")
    render_task_html(out / f"{name}.ipynb", out / f"{name}.html", language=lang, title="t")
    return out / f"{name}.html"


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_appendix_table_prints_as_a_pointer_to_the_workbook(browser, tmp_path, lang):
    from playwright.sync_api import expect

    df = _units().head(400)
    kept = pd.DataFrame({"entity_id": ["KEEP1", "KEEP2"], "value": [1.0, 2.0]})
    long = appendix_html(frame_html(df, lang=lang), lang=lang, rows=len(df))
    html_path = _page(tmp_path, lang, lang, frame_html(kept, lang=lang), long)
    pointer = {"zh": "完整表格见评审工作簿 review.xlsx", "en": "the full table is in the review"}
    with offline_page(browser, html_path) as opened:
        page = opened.page
        _ready(page)
        # on screen: the appendix table (paged), no pointer
        expect(page.locator(".pl-appendix .dt-search")).to_be_visible()
        expect(page.locator(".pl-appendix-note")).to_be_hidden()
        pdf = tmp_path / f"{lang}.pdf"
        pages = print_page_count(page, pdf)
        page.emulate_media(media="print")
        expect(page.locator(".pl-appendix table")).to_be_hidden()
        expect(page.locator(".pl-appendix-note")).to_be_visible()
        expect(page.locator(".pl-appendix-note")).to_contain_text(pointer[lang])
    assert opened.page_errors == []
    # 400 rows would take about 10 A4 pages; the pointer and the short table fit on one
    assert pages == 1
    text = pdf_text(pdf)
    if text is None:
        pytest.skip("neither pypdf nor pdftotext is installed to read the PDF's text")
    flat = " ".join(text.split())
    assert pointer[lang] in flat
    assert "KEEP2" in flat  # the table that is not an appendix prints
    assert "U0001" not in flat and "U0399" not in flat  # the appendix table does not


# --- find_identifiers (no browser needed) ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("净利润 net_profit 未达标", ["net_profit"]),
        ("状态：tier1_missed", ["tier1_missed"]),
        ("表头 mapping_id、target_id、n_obs", ["mapping_id", "target_id", "n_obs"]),
        ("见 kpi.heading.scores 与 summary.h.x", ["kpi.heading.scores", "summary.h.x"]),
        ("请在 mappings.yaml 中补充驱动因素", ["mappings.yaml"]),
        ("已写入 scorecard.xlsx。", ["scorecard.xlsx"]),
        ("规则 linear/step/threshold", ["linear/step/threshold"]),
        ("文件在 reports/2026Q3/tables 中", ["reports/2026Q3/tables"]),
        ("路径 /tmp/x/out.csv", ["out.csv", "/tmp/x/out.csv"]),
        (
            "PosixPath('<reports folder>/.tmp-2026Q3-ab/scorecard.xlsx')",
            ["PosixPath(", "scorecard.xlsx"],
        ),
        (
            "结果 <perflink.kpi.KpiResult object at 0x7f3a2c>",
            ["<perflink.kpi.KpiResult object at 0x7f3a2c>"],
        ),
        ("方案 SCH-PROFIT 的得分", ["SCH-PROFIT"]),
        ("期间 Period('2026-09', 'M')", ["Period("]),
        ("按 shipped_qty * avg_unit_price / 10000", ["shipped_qty", "avg_unit_price"]),
    ],
)
def test_find_identifiers_flags_code(text, expected):
    found = find_identifiers(text)
    assert set(expected) <= set(found), found
    assert found  # never silent on code


@pytest.mark.parametrize(
    "text",
    [
        "集团净利润 2.35 亿元，完成率 95.3%，较上年 -6.6%。",
        "ROE、EVA、KPI、CRM 与 ERP 数据已核对；单位 kUSD。",
        "2026-09 与 2026/09 的数据，比例 1/2，得分 87.25。",
        "MASE 0.82，sMAPE 12%，R² 0.64，p 值 0.03，z 值 4.2。",
        "Shapley 归因；第 3 季度（Q3）；SHA-256；UTF-8；N/A。",
        "负责人 Alice Wang，原因（填报原文）：Customer delayed the order.",
        "发货数量 × 平均销售单价 ÷ 10000",
        "单位：万元/人、元/件",
        "来源系统 ERP-FI、ERP-CO、CRM-2",
    ],
)
def test_find_identifiers_leaves_words_numbers_units_and_acronyms(text):
    assert find_identifiers(text) == []
