"""The whole quarterly review on the sample group, end to end, read in a real browser.

One review of the generated sample (all task notebooks, two kernels in parallel) is shared by
the tests of this module: published report, tables, manifest, no secret in any output byte,
every page offline-readable in headless Chromium, and an English run of one task.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pandas as pd
import pytest
import yaml
from browser_utils import assert_readable, open_offline
from conftest import files_containing

from perflink.runner import run_review
from perflink.sample import generate

pytestmark = [pytest.mark.slow, pytest.mark.kernel]

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TASKS = {"mapping", "kpi", "forecast", "anomaly", "summary"}
FINDINGS = {"validation_findings", "kpi_findings", "forecast_deviation", "anomalies"}


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    """Sample inputs with the facts folder behind a ${SECRET}, reviewed once into reports/."""
    if not NOTEBOOKS:
        pytest.skip("no task notebooks in notebooks/ yet")
    root = tmp_path_factory.mktemp("e2e")
    params_path = generate(root / "sample", seed=0)
    token = "e2e-" + secrets.token_hex(10)
    hidden = params_path.parent / token
    hidden.mkdir()
    (params_path.parent / "facts.csv").rename(hidden / "facts.csv")
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    params["inputs"]["facts"] = "${PERFLINK_E2E_DIR}/facts.csv"
    params_path.write_text(yaml.safe_dump(params, allow_unicode=True), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("PERFLINK_E2E_DIR", token)
    try:
        result = run_review(params_path, out_dir=root / "reports", jobs=2)
    finally:
        mp.undo()
    return result, root, token


def test_report_is_published_with_every_page_and_table(review):
    result, root, _ = review
    folder = root / "reports" / "2026Q3"
    assert result.report_dir == folder
    names = {p.stem for p in folder.glob("*.html")}
    assert {"index"} | {t for t in TASKS if any(t in nb.stem for nb in NOTEBOOKS)} <= names | {
        "index"
    }
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "ok"
    assert all(t["status"] == "ok" for t in manifest["tasks"])
    assert {i["name"] for i in manifest["inputs"]} >= {"entities", "facts", "targets"}
    tables = {p.stem for p in (folder / "tables").glob("*.parquet")}
    assert tables, "the task notebooks saved no tables"
    for parquet in (folder / "tables").glob("*.parquet"):
        csv = parquet.with_suffix(".csv")
        assert csv.read_bytes().startswith(b"\xef\xbb\xbf"), f"{csv.name}: no UTF-8 BOM"
    for name in FINDINGS & tables:
        frame = pd.read_parquet(folder / "tables" / f"{name}.parquet")
        assert {"entity_id", "period", "severity", "message"} <= set(frame.columns), name
        assert {"metric_id", "rule_id"} & set(frame.columns), name


def test_secret_never_reaches_any_output_byte(review):
    _, root, token = review
    assert files_containing(root / "reports", token) == []


@pytest.mark.browser
def test_every_page_reads_offline_in_chromium(review, browser, tmp_path):  # noqa: F811
    result, root, _ = review
    folder = root / "reports" / "2026Q3"
    pages = sorted(folder.glob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        check = open_offline(browser, page, shots_dir=tmp_path)
        assert_readable(check, lang="zh-CN")
        assert any("\u4e00" <= ch <= "\u9fff" for ch in check.text), f"{page.name}: no Chinese"
        if page.stem != "index":
            assert check.charts, f"{page.name}: a task page should show at least one chart"


def test_english_report(review, tmp_path):
    _, root, _ = review
    params_path = root / "sample" / "params.yaml"
    mp = pytest.MonkeyPatch()
    mp.setenv("PERFLINK_E2E_DIR", review[2])
    try:
        task = sorted(TASKS & {nb.stem.split("_", 1)[1].split("_")[0] for nb in NOTEBOOKS})
        result = run_review(
            params_path, out_dir=tmp_path / "reports", tasks=task[:1], language="en", jobs=1
        )
    finally:
        mp.undo()
    index = (result.report_dir / "index.html").read_text(encoding="utf-8")
    assert 'lang="en"' in index
