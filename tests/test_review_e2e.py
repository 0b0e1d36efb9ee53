"""The whole quarterly review on the sample group, end to end, read in a real browser.

Uses the shared ``reviewed_quarters`` fixture (conftest.py): 2026Q3 in Chinese with a secret
in its params, then 2026Q4 in English. Every task notebook runs in both languages there, so
this module also checks each task's saved tables (they used to be checked by one papermill
run per task module).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from browser_utils import assert_readable, open_offline
from conftest import files_containing

pytestmark = [pytest.mark.slow, pytest.mark.kernel]

PAGES = {"index", "mapping", "kpi", "forecast", "anomaly", "summary"}
TABLES = {
    "mapping": {"validation_findings", "driver_strength", "data_quality"},
    "kpi": {"attribution", "scorecard", "bonus", "kpi_findings", "manager_assessment"},
    "forecast": {"forecast", "forecast_deviation", "forecast_backtest"},
    "anomaly": {"anomalies", "anomaly_counts"},
    "summary": {"summary_findings", "summary_actions", "summary_forecast_review"},
}
FINDINGS = {"validation_findings", "kpi_findings", "forecast_deviation", "anomalies"}


@pytest.mark.parametrize("quarter", ["q3", "q4"])
def test_report_is_published_with_every_page_and_table(reviewed_quarters, quarter):
    result = getattr(reviewed_quarters, quarter)
    folder = result.report_dir
    assert folder.parent == reviewed_quarters.reports
    assert {p.stem for p in folder.glob("*.html")} == PAGES
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "ok"
    assert [t["status"] for t in manifest["tasks"]] == ["ok"] * 5
    assert {i["name"] for i in manifest["inputs"]} >= {"entities", "facts", "targets"}
    tables = {p.stem for p in (folder / "tables").glob("*.parquet")}
    for task, names in TABLES.items():
        assert names <= tables, f"{task}: missing tables {sorted(names - tables)}"
    for name in tables:
        csv = folder / "tables" / f"{name}.csv"
        assert csv.read_bytes().startswith(b"\xef\xbb\xbf"), f"{csv.name}: no UTF-8 BOM"
    for name in FINDINGS:
        frame = pd.read_parquet(folder / "tables" / f"{name}.parquet")
        assert {"entity_id", "period", "severity", "message"} <= set(frame.columns), name
        assert {"metric_id", "rule_id"} & set(frame.columns), name
    assert (folder / "scorecard.xlsx").is_file() and (folder / "review.xlsx").is_file()


@pytest.mark.parametrize("quarter", ["q3", "q4"])
def test_executed_notebooks_carry_no_warning(reviewed_quarters, quarter):
    """A cron log watcher greps for warnings: a successful run's notebooks have none."""
    folder = getattr(reviewed_quarters, quarter).report_dir / "notebooks"
    notebooks = sorted(folder.glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        text = path.read_text(encoding="utf-8")
        for word in ("Warning:", "ERROR", "Traceback"):
            assert word not in text, f"{path.name}: {word!r} in an output"
        # progress bars are redrawn with "\r"; the runner turns them off in its kernels
        streams = [
            "".join(o["text"])
            for cell in json.loads(text)["cells"]
            for o in cell.get("outputs", [])
            if o["output_type"] == "stream"
        ]
        assert not any("\r" in s for s in streams), f"{path.name}: a progress bar in an output"


def test_secret_never_reaches_any_output_byte(reviewed_quarters):
    assert files_containing(reviewed_quarters.reports, reviewed_quarters.secret) == []


def test_language_of_each_report(reviewed_quarters):
    zh = (reviewed_quarters.q3.report_dir / "index.html").read_text(encoding="utf-8")
    en = (reviewed_quarters.q4.report_dir / "index.html").read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in zh and 'lang="en"' in en
    assert "季度" in zh and "Start here" in en


@pytest.mark.browser
@pytest.mark.parametrize("quarter", ["q3", "q4"])
def test_every_page_reads_offline_in_chromium(reviewed_quarters, browser, tmp_path, quarter):
    folder = getattr(reviewed_quarters, quarter).report_dir
    lang = "zh-CN" if quarter == "q3" else "en"
    for page in sorted(folder.glob("*.html")):
        check = open_offline(browser, page, shots_dir=tmp_path)
        assert_readable(check, lang=lang)
        if lang == "zh-CN":
            assert any("\u4e00" <= ch <= "\u9fff" for ch in check.text), f"{page.name}: no Chinese"
        if page.stem != "index":
            assert check.charts, f"{page.name}: a task page should show at least one chart"
