"""Report pages open offline in a real headless Chromium and read well (pytest -m browser)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from browser_utils import assert_readable, open_offline
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from perflink.report import render_index, render_task_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]

# The cells a task notebook would hold: narrative, configure, a table, a wide table, a chart,
# and a warning on stderr that must not reach the page.
_CELLS = [
    new_markdown_cell("# 关键绩效指标评审\n\n本页展示各单位的指标完成情况。\n\n## 完成率概览"),
    new_code_cell(
        "from pathlib import Path\n"
        "import warnings\n"
        "import altair as alt\n"
        "import pandas as pd\n"
        "from perflink import charts, report\n"
        "report.configure(language='zh', tables_dir=Path('tables'))"
    ),
    new_code_cell(
        "df = pd.DataFrame({\n"
        "    'entity_id': ['华东事业部', '华南事业部', '<b>总部</b>'],\n"
        "    'period': pd.period_range('2026-07', periods=3, freq='M'),\n"
        "    'completion': [0.952, 1.083, 0.71],\n"
        "    'value': [12345.6, 823.0, 96.5],\n"
        "    'severity': ['info', 'low', 'high'],\n"
        "})\n"
        "report.save_table(df, 'kpi_overview')\n"
        "report.show(df, units={'value': '万元'})"
    ),
    new_code_cell("warnings.warn('这条警告不应出现在报告中')"),
    new_code_cell(
        "wide = pd.DataFrame({f'指标{i:02d}_说明文字较长的列名': [1234567.891 * i] for i in range(40)})\n"
        "report.show(wide)"
    ),
    new_code_cell(
        "alt.Chart(charts.for_chart(df), title='各单位营业收入（万元）').mark_bar().encode(\n"
        "    x=alt.X('entity_id:N', title='单位'),\n"
        "    y=alt.Y('value:Q', axis=charts.fmt_axis_money('万元', 'zh'), title='营业收入'),\n"
        "    color=alt.Color('severity:N', scale=charts.severity_scale()),\n"
        ")"
    ),
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """Execute a small task notebook in a kernel, render its page and the index page."""
    nbclient = pytest.importorskip("nbclient")
    out = tmp_path_factory.mktemp("report")
    nb = new_notebook(
        cells=[c.copy() for c in _CELLS],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "papermill": {"parameters": {"quarter": "2026Q3"}},
        },
    )
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        nbclient.NotebookClient(
            nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(out)}}
        ).execute()
    finally:
        if env_path:
            os.environ["PYTHONPATH"] = env_path
        else:
            del os.environ["PYTHONPATH"]
    nbformat.write(nb, out / "01_kpi.ipynb")
    render_task_html(out / "01_kpi.ipynb", out / "01_kpi.html", language="zh", title="关键绩效指标")
    run = {
        "quarter": "2026Q3",
        "status": "ok",
        "created_at": "2026-10-08 09:00:00",
        "finished_at": "2026-10-08 09:03:12",
        "duration_s": 192.0,
        "language": "zh",
        "tasks": [
            {"name": "01_kpi", "html": "01_kpi.html", "status": "ok", "duration_s": 12.5},
            {"name": "<script>alert(1)</script>", "status": "failed", "duration_s": 1.0},
        ],
        "inputs": [{"name": "facts", "path": "data/facts.csv", "sha256": "ab" * 32, "bytes": 2048}],
        "versions": {"pandas": "3.1", "perflink": "0.1.0"},
        "params": {"quarter": "2026Q3", "db": {"password": "***"}},
    }
    render_index(run, out / "index.html", language="zh")
    return out


def test_task_page_reads_offline(browser, pages, tmp_path):  # noqa: F811 (fixture)
    check = open_offline(browser, pages / "01_kpi.html", shots_dir=tmp_path)
    assert_readable(
        check,
        min_charts=1,
        texts=["关键绩效指标评审", "完成率概览", "华东事业部", "95.2%", "1.23 亿元", "返回目录"],
        lang="zh-CN",
    )
    assert "<b>总部</b>" in check.text  # user data shows as text, not markup
    assert "警告" not in check.text  # stderr (warnings) is dropped
    assert "report.configure" not in check.text  # code is hidden
    assert check.screenshot.stat().st_size > 0


def test_index_page_reads_offline_and_links_task(browser, pages, tmp_path):  # noqa: F811
    check = open_offline(browser, pages / "index.html", shots_dir=tmp_path)
    assert_readable(check, texts=["季度经营业绩评审", "2026年第3季度", "01_kpi", "abababababab"])
    assert "<script>alert(1)</script>" in check.text  # escaped, shown as text
    assert (pages / "01_kpi.html").exists()
