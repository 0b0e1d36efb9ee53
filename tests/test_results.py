"""The result base (perflink.results), the shared definitions (perflink.common) and errors."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
from dataclasses import FrozenInstanceError, dataclass
from types import SimpleNamespace

import pandas as pd
import pytest

import perflink
from perflink import common, errors, labels
from perflink.errors import InputError, ParamsError, ReportError
from perflink.results import TaskResult

TASKS = ("mapping", "kpi", "scoring", "forecast", "anomaly", "summary")


def _task_classes():
    """Every class defined in a task package (its __init__ and private modules)."""
    for task in TASKS:
        pkg = importlib.import_module(f"perflink.{task}")
        names = [pkg.__name__] + [
            f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)
        ]
        for name in names:
            module = importlib.import_module(name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == name:
                    yield cls


def _is_result(cls: type) -> bool:
    return cls.__name__.endswith("Result") or "_repr_html_" in vars(cls)


def test_every_result_class_derives_from_the_base():
    results = [c for c in _task_classes() if _is_result(c)]
    assert len(results) >= 25  # the walk found the task results (it can fail)
    stray = [f"{c.__module__}.{c.__qualname__}" for c in results if not issubclass(c, TaskResult)]
    assert stray == []


def test_result_names_are_unique_and_old_names_stay_importable():
    names = [c.__name__ for c in set(_task_classes()) if issubclass(c, TaskResult)]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert perflink.mapping.FindingsResult is perflink.mapping.MappingFindingsResult
    assert perflink.summary.FindingsResult is perflink.summary.RankedFindingsResult
    assert perflink.summary.SummaryResult.__module__ == "perflink.summary._results"


def test_results_call_the_field_language():
    concrete = [c for c in _task_classes() if issubclass(c, TaskResult) and dataclasses.fields(c)]
    assert len(concrete) >= 25
    for cls in concrete:  # intermediate bases (MappingResult, SummaryPart) have no fields
        names = {f.name for f in dataclasses.fields(cls)}
        assert "language" in names and "lang" not in names, cls.__name__


@dataclass(frozen=True)
class _Demo(TaskResult):
    table: pd.DataFrame
    language: str

    _empty = "report.chart.empty"
    _units = {"completion": "pct", "absent": "money"}
    _table_name = "demo"
    _findings = "table"


def _demo_table() -> pd.DataFrame:
    return pd.DataFrame({"entity_id": ["A1"], "completion": [0.952], "severity": ["high"]})


def test_base_gives_to_frame_tables_findings_and_html():
    res = _Demo(_demo_table(), "en")
    frame = res.to_frame()
    frame.loc[0, "entity_id"] = "changed"
    assert res.table.loc[0, "entity_id"] == "A1"  # a copy
    assert list(res.tables()) == ["demo"]
    assert res.findings_table() is res.table
    page = res._repr_html_()
    assert "95.2%" in page and "A1" in page  # units of the columns it has; others ignored
    assert labels.value_label("severity", "high", "en") in page
    with pytest.raises(FrozenInstanceError):
        res.language = "zh"


def test_base_empty_result_shows_a_note_and_a_message_chart():
    res = _Demo(_demo_table().iloc[0:0], "en")
    assert res._repr_html_() == '<p class="pl-note">No data</p>'
    assert "No data" in json.dumps(res.chart().to_dict())
    assert _Demo(_demo_table().iloc[0:0], "zh")._repr_html_() == '<p class="pl-note">无数据</p>'


def test_base_rejects_an_unknown_language():
    with pytest.raises(ParamsError, match="'fr'.*zh, en"):
        _Demo(_demo_table(), "fr")


def test_result_language_decides_its_labels_not_the_global(monkeypatch):
    from perflink.mapping import DataQualityResult

    table = pd.DataFrame(
        {"source_system": ["ERP"], "dq_index": [0.9], "status": ["green"], "owner": ["fin"]}
    )
    labels.set_language("zh")
    try:
        page = DataQualityResult(table, "en")._repr_html_()
    finally:
        labels.set_language("zh")
    assert labels.column_label("source_system", "en") in page
    assert labels.column_label("source_system", "zh") not in page
    assert labels.value_label("status", "green", "en") in page
    assert "90.0%" in page
    zh = DataQualityResult(table, "zh")._repr_html_()
    assert labels.column_label("source_system", "zh") in zh


def test_summary_result_in_english_has_english_headers():
    from perflink.summary import ChainResult

    table = pd.DataFrame(
        {
            "entity": ["Unit A"],
            "business_completion": [0.9],
            "financial_completion": [1.1],
            "score": [95.0],
            "fy_deviation_pct": [-0.05],
            "status": ["near_miss"],
        }
    )
    page = ChainResult(table, "en")._repr_html_()
    assert labels.column_label("business_completion", "en") in page
    assert labels.column_label("business_completion", "zh") not in page
    assert "90.0%" in page and "-5.0%" in page


# -- shared definitions ----------------------------------------------------------------------


def test_severity_scale_is_one_ordered_scale():
    assert common.SEVERITIES == ("critical", "high", "medium", "low", "info")
    assert [common.SEVERITY_RANK[s] for s in common.SEVERITIES] == [0, 1, 2, 3, 4]
    assert common.severities_from("high") == ("critical", "high")
    assert common.severities_from("info") == common.SEVERITIES
    from perflink import report
    from perflink._report_tables import SEVERITIES

    assert report.SEVERITIES is SEVERITIES is common.SEVERITIES


def test_severities_from_rejects_an_unknown_level():
    with pytest.raises(ParamsError, match="'severe' is not one of critical"):
        common.severities_from("severe")


@pytest.mark.parametrize(
    "value", ["2026Q3", " 2026Q3 ", pd.Period("2026Q3", "Q")], ids=["str", "spaces", "period"]
)
def test_parse_quarter_reads_a_quarter(value):
    assert common.parse_quarter(value) == pd.Period("2026Q3", "Q")


@pytest.mark.parametrize(
    "value", ["2026-09", "Q5", "2026Q5", 2026, None, pd.Period("2026-09", "M")]
)
def test_parse_quarter_rejects_anything_else_with_params_error(value):
    with pytest.raises(ParamsError, match="is not a quarter.*'2026Q3'"):
        common.parse_quarter(value)


def test_the_quarter_parsers_of_the_tasks_are_the_shared_one():
    from perflink import params

    with pytest.raises(ParamsError, match="'2026-13' is not a quarter"):
        params.parse_quarter("2026-13")
    assert params.parse_quarter("2026Q1") == pd.Period("2026Q1", "Q")


def test_require_columns_names_the_table_and_the_columns():
    df = pd.DataFrame({"entity_id": ["A"], "period": ["2026-09"]})
    common.require_columns(df, ["entity_id"], table="facts")  # works: nothing raised
    with pytest.raises(InputError) as info:
        common.require_columns(df, ["entity_id", "metric_id", "value"], table="facts")
    msg = str(info.value)
    assert "facts table lacks column(s) metric_id, value" in msg
    assert "has: entity_id, period" in msg and "perflink.load_inputs" in msg
    with pytest.raises(InputError, match="entities table must be a pandas DataFrame, got list"):
        common.require_columns([], ["entity_id"], table="entities")


def test_task_options_prefers_given_options_else_the_review_block():
    review = SimpleNamespace(
        params=SimpleNamespace(kpi="from-params"), quarter="2026Q3", language="en", executor="x"
    )
    assert common.task_options(review, "kpi") == "from-params"
    assert common.task_options(review, "kpi", "given") == "given"
    keywords = common.review_keywords(review, "kpi", executor=False)
    assert keywords == {"quarter": "2026Q3", "options": "from-params", "language": "en"}
    assert common.review_keywords(review, "kpi", "given")["executor"] == "x"


def test_task_options_rejects_what_is_not_an_open_review():
    with pytest.raises(ParamsError, match="forecast: expected a review from perflink.open_review"):
        common.task_options(object(), "forecast")
    with pytest.raises(ParamsError, match="'anomaly:' block"):
        common.review_keywords(SimpleNamespace(params=SimpleNamespace()), "anomaly")


def test_check_findings_contract_and_error_type():
    good = pd.DataFrame(
        {"entity_id": ["A"], "period": ["2026-09"], "rule_id": ["r"], "severity": ["low"]}
        | {"message": ["m"]}
    )
    common.check_findings(good, "t")  # works
    with pytest.raises(ReportError, match="'t' lacks column\\(s\\) message"):
        common.check_findings(good.drop(columns="message"), "t")
    with pytest.raises(InputError, match="metric_id or rule_id.*Re-run it"):
        common.check_findings(
            good.drop(columns="rule_id"), "t", error=InputError, hint="Re-run it."
        )
    bad = good.assign(severity=["severe"])
    with pytest.raises(ReportError, match="'severe' at row\\(s\\) 1"):
        common.check_findings(bad, "t")
    common.check_findings(bad, "t", severities=False)  # columns only


# -- errors ----------------------------------------------------------------------------------


def test_report_and_label_errors_live_in_errors_and_stay_importable():
    from perflink import _report_format, report

    assert report.ReportError is _report_format.ReportError is errors.ReportError
    assert labels.LabelError is errors.LabelError
    assert issubclass(errors.ReportError, errors.PerflinkError)
    assert issubclass(errors.LabelError, errors.PerflinkError)
    with pytest.raises(errors.LabelError, match="no.such.key"):
        labels.t("no.such.key", "en")


@pytest.fixture
def no_page_language():
    """Make any read of the page language fail: results must use their own."""
    saved = labels._current["lang"]
    labels._current["lang"] = "no-page-language"
    yield
    labels._current["lang"] = saved


def test_results_never_read_the_page_language(no_page_language):
    from perflink.anomaly import AnomalyCounts
    from perflink.forecast import BacktestResult
    from perflink.mapping import DataQualityResult, StatusResult
    from perflink.summary import ActionsResult, ChainResult, GroupTotalsResult, LoopResult

    empty = pd.DataFrame()
    quality = pd.DataFrame(
        {"source_system": ["ERP"], "dq_index": [0.9], "status": ["missed"], "owner": ["fin"]}
        | {"completeness": [0.95], "pass_rate": [0.94]}
    )
    chain = pd.DataFrame(
        {
            "entity_id": ["S1"],
            "entity": ["Unit A"],
            "business_completion": [0.9],
            "financial_completion": [1.1],
            "score": [95.0],
            "fy_deviation_pct": [-0.05],
            "status_business": ["near_miss"],
            "status_financial": ["met"],
            "status_score": ["near_miss"],
            "status_projection": ["off_track"],
            "status": ["off_track"],
        }
    )
    backtest = pd.DataFrame(
        {"metric_id": ["m"], "level": ["unit"], "mase": [0.8], "mase_snaive": [1.0]}
        | {"coverage_80": [0.78], "fy_coverage_80": [0.8], "fy_coverage_95": [0.93]}
    )
    results = [
        DataQualityResult(quality, "en"),
        StatusResult(
            pd.DataFrame({"entity_id": ["S1"], "findings": [2], "severity": ["high"]}).assign(
                name="A"
            ),
            "en",
        ),  # fmt: skip
        ChainResult(chain, "en"),
        BacktestResult(backtest, "en"),
        AnomalyCounts(pd.DataFrame(columns=["parent_id", "subsidiary", "n"]), "en"),
        ActionsResult(empty, "en"),
        LoopResult(None, empty, empty, empty, empty, "en"),
        GroupTotalsResult(empty, "en"),
    ]
    for res in results:
        page = res._repr_html_()
        assert page is not None
        json.dumps(res.chart().to_dict())
    with pytest.raises(KeyError):  # the guard works: reading the page language fails
        labels.t("report.chart.empty")
