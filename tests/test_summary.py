"""Tests for perflink.summary: ids, ranking, review loop, forecast error, workbook, notebook.

Fast tests use tiny hand-made task tables. The slow tests run two full reviews (2026Q3,
then 2026Q4 on the same history extended by three months) and check the planted problems
of truth.yaml and the new / persisting / resolved comparison.
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import openpyxl
import pandas as pd
import pytest
from browser_utils import assert_readable, open_offline

import perflink
from perflink import summary
from perflink.catalog import Catalog, Metric, Rule, load_catalog
from perflink.charts import STATUS_WORD_COLORS
from perflink.common import SEVERITY_RANK
from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.options import StatusOptions, SummaryOptions
from perflink.sample import generate
from perflink.summary._loop import forecast_error

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_leadership_summary.ipynb"


# ----------------------------------------------------------------------------- tiny tables
def _entities() -> pd.DataFrame:
    rows = [
        ("G00", "集团", "Group", None, "group"),
        ("S01", "华东子公司", "East Co.", "G00", "subsidiary"),
        ("S01D01", "华东销售一部", "East Sales 1", "S01", "department"),
        ("S01D02", "华东工厂", "East Plant", "S01", "department"),
    ]
    df = pd.DataFrame(rows, columns=["entity_id", "name_zh", "name_en", "parent_id", "kind"])
    return df.astype({"parent_id": object})


CATALOG = load_catalog(Path(perflink.__file__).parent / "data" / "catalog")


def _validation() -> pd.DataFrame:
    cols = ["entity_id", "period", "metric_id", "rule_id", "check", "severity", "value"]
    cols += ["expected", "deviation", "message"]
    rows = [
        ("S01D01", "2026-07", "revenue", "R01", "rule", "high", 90.0, 100.0, -0.1, "gap Jul"),
        ("S01D01", "2026-08", "revenue", "R01", "rule", "medium", 95.0, 100.0, -0.05, "gap Aug"),
        ("S01D01", "2025-11", "revenue", "R01", "rule", "low", 1.0, 2.0, -0.5, "history"),
        ("S01", "2026Q3", "revenue", "R03", "caliber", "high", 1.13, 1.0, 0.13, "VAT"),
        ("S01D02", "2026Q3", "revenue", "R03", "rule", "medium", 113.0, 100.0, 0.13, "symptom"),
        ("S01D02", "2026-09", "headcount", "", "missing", "high", None, None, None, "missing"),
    ]
    return pd.DataFrame(rows, columns=cols)


def _kpi() -> pd.DataFrame:
    cols = ["entity_id", "period", "metric_id", "rule_id", "severity", "message", "scheme_id"]
    cols += ["value", "expected", "scope", "completion", "gap"]
    rows = [
        ("S01D01", "2026Q3", None, "scheme_financial_min", "high", "fin 40%", "SCH-X", 0.4, 0.5,
         None, None, None),
        ("S01D01", "2026Q3", None, "scheme_business_max", "high", "bus 45%", "SCH-X", 0.45, 0.4,
         None, None, None),
        ("S01", "2026Q3", None, "bonus_overrun", "critical", "pool over", None, 130.0, 100.0,
         None, None, None),
        ("S01D02", "2026Q3", "net_profit", "tier1_missed", "high", "np 80%", None, 0.8, None,
         "ytd", 0.8, -50.0),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _deviation() -> pd.DataFrame:
    cols = ["entity_id", "period", "metric_id", "projected", "lo_80", "hi_80", "budget"]
    cols += ["ytd_actual", "deviation_pct", "p_meet_budget", "at_stake", "kind", "severity"]
    cols += ["message"]
    rows = [
        ("G00", "2026Q3", "net_profit", 900.0, 850.0, 950.0, 1000.0, 700.0, -0.1, 0.05, 100.0,
         "group", "high", "group miss"),
        ("S01", "2026Q3", "net_profit", 900.0, 850.0, 950.0, 1000.0, 700.0, -0.1, 0.05, 100.0,
         "subsidiary", "high", "S01 miss"),
        ("S01D01", "2026Q3", "revenue", 500.0, 480.0, 520.0, 600.0, 400.0, -0.17, 0.0, 100.0,
         "department", "high", "unit miss"),
        ("S01D02", "2026Q3", "revenue", 500.0, 480.0, 520.0, 490.0, 400.0, 0.02, 0.9, 0.0,
         "department", "info", "fine"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def _anomalies() -> pd.DataFrame:
    cols = ["entity_id", "period", "metric_id", "kind", "severity", "at_stake", "explained_by"]
    cols += ["message"]
    rows = [
        ("S01D02", "2026-08", "opex", "spike", "high", 80.0, "", "opex +80%"),
        ("S01D01", "2026-07", "revenue", "spike", "high", 300.0, "typhoon", "revenue -35%"),
    ]
    return pd.DataFrame(rows, columns=cols)


def _inputs(previous: pd.DataFrame | None = None, **tables) -> summary.SummaryInputs:
    base = {
        "validation_findings": _validation(),
        "kpi_findings": _kpi(),
        "forecast_deviation": _deviation(),
        "anomalies": _anomalies(),
    }
    base.update(tables)
    full = {name: base.get(name) for name in summary.TABLES}
    origin = {n: "table" if d is not None else "missing" for n, d in full.items()}
    prev = {"summary_findings": previous, "forecast": None}
    return summary.SummaryInputs(full, origin, None, prev, None)


def _rank(inputs, **kw) -> summary.FindingsResult:
    return summary.rank_findings(
        inputs, _entities(), CATALOG, quarter="2026Q3", language="en", **kw
    )


# ----------------------------------------------------------------------------- finding ids
def test_finding_id_is_stable_and_ignores_the_period():
    a = summary.finding_id("mapping", "rule", "S01D01", "R01")
    assert a == summary.finding_id("mapping", "rule", "S01D01", "R01")
    assert a.startswith("F-") and len(a) == 12
    assert a != summary.finding_id("mapping", "rule", "S01D02", "R01")
    assert a != summary.finding_id("anomaly", "rule", "S01D01", "R01")
    # a summary item is one problem of one entity, whatever task reported it, in any quarter
    item = summary.problem_id("S01D01", "revenue")
    assert item.startswith("F-") and item != summary.problem_id("S01D02", "revenue")
    f = _rank(_inputs()).table
    rows = f[(f["entity_id"] == "S01D01") & f["evidence"].str.contains("mapping:rule")]
    assert rows["finding_id"].tolist() == [item]


def test_finding_id_rejects_empty_task():
    with pytest.raises(PerflinkError, match="task and kind"):
        summary.finding_id("", "rule", "S01", "R01")


# ----------------------------------------------------------------------------- ranking
def test_rank_findings_merges_folds_and_ranks():
    res = _rank(_inputs())
    f = res.table
    # the unit's revenue: a rule breach in two months (one piece of evidence, 10 + 5 at
    # stake) and a projected miss (100 at stake) are one item; the tasks' amounts price the
    # same problem, so the item takes the largest, not the sum
    r01 = f[(f["entity_id"] == "S01D01") & (f["subject"] == "revenue")]
    assert len(r01) == 1
    r01 = r01.iloc[0]
    # the typhoon anomaly the adjustment explains rides along as evidence (next test)
    assert r01["evidence"] == "forecast:projected_miss, mapping:rule, anomaly:anomaly"
    assert r01["tasks"] == "forecast, mapping, anomaly"
    assert r01["severity"] == "high" and r01["n_periods"] == 3
    assert r01["at_stake"] == pytest.approx(100.0)
    assert r01["message"] == "unit miss"
    assert "gap Jul" in r01["other_messages"] and "2026-08" in r01["other_messages"]
    assert "the money at stake is their total" in r01["other_messages"]  # 10 + 5
    # the history row (2025-11) is not open this quarter
    assert "2025-11" not in r01["periods"]
    # the R03 breach at the unit is explained by the subsidiary's caliber finding
    assert not ((f["entity_id"] == "S01D02") & (f["rule_id"] == "R03")).any()
    assert ((f["finding_kind"] == "caliber") & (f["entity_id"] == "S01")).any()
    # two scheme rules of one scheme are one finding about the scheme
    scheme = f[f["finding_kind"] == "scheme"]
    assert len(scheme) == 1 and scheme["subject"].iloc[0] == "SCH-X"
    # info forecast rows are not findings; explained anomalies drop to info
    assert "fine" not in " ".join(f["message"])
    # (below summary.min_severity = medium: it leads no item) ...
    assert not ((f["source_task"] == "anomaly") & (f["entity_id"] == "S01D01")).any()
    # ... but is shown as evidence of the unit's revenue item, without money
    assert "revenue -35%" in r01["other_messages"]
    for opts in (None, SummaryOptions(min_severity="info")):
        every = _rank(_inputs(), options=opts).table
        item = every[(every["entity_id"] == "S01D01") & (every["subject"] == "revenue")]
        assert "anomaly:anomaly" in item["evidence"].iloc[0]
        assert item["at_stake"].iloc[0] == pytest.approx(100.0)  # not the explained 300
    # ranked: the critical bonus overrun (money 30) first; ranks are 1..n; severity first,
    # then money at stake within a severity (unpriced last)
    assert f["rank"].tolist() == list(range(1, len(f) + 1))
    assert f.iloc[0]["finding_kind"] == "bonus_overrun"
    sev = f["severity"].map(SEVERITY_RANK)
    assert sev.is_monotonic_increasing
    for _, same in f.groupby("severity"):
        money = same["at_stake"].fillna(-1.0)
        assert money.is_monotonic_decreasing
    assert "priority" not in f
    assert (f["loop_status"] == "new").all() and (f["quarters_open"] == 1).all()
    assert f["evidence_link"].str.match(r"^(mapping|kpi|forecast|anomaly)\.html").all()


def test_an_explained_event_rides_on_an_item_but_makes_none_of_its_own():
    """An approved adjustment explains an anomaly: no problem to act on, so it never makes
    an item; where the same unit and metric have an item (its projected miss), the item
    carries it, so the list says the miss includes an approved event."""
    extra = pd.DataFrame(
        [("S01D02", "2026-07", "cogs", "spike", "critical", 50.0, "typhoon", "cogs -30%")],
        columns=_anomalies().columns,
    )
    f = _rank(_inputs(anomalies=pd.concat([_anomalies(), extra], ignore_index=True))).table
    assert not ((f["entity_id"] == "S01D02") & (f["subject"] == "cogs")).any()
    assert "cogs -30%" not in " ".join(f["other_messages"].astype(str))
    item = f[(f["entity_id"] == "S01D01") & (f["subject"] == "revenue")].iloc[0]
    assert "revenue -35%" in item["other_messages"] and item["severity"] == "high"


def test_an_adjustment_no_check_flagged_rides_on_the_item_of_its_unit_and_metric():
    """The anomaly task lists an approved adjustment whose figure no check flagged as an
    explained info row (kind ``adjustment``): the projected miss of the same unit and metric
    carries it, like an explained anomaly, and it makes no item of its own."""
    base = _anomalies().iloc[:1]  # no explained anomaly about S01D01's revenue
    bare = _rank(_inputs(anomalies=base)).table
    item = bare[(bare["entity_id"] == "S01D01") & (bare["subject"] == "revenue")].iloc[0]
    assert "adjusted" not in str(item["other_messages"])
    extra = pd.DataFrame(
        [("S01D01", "2026-09", "revenue", "adjustment", "info", np.nan, "store fire",
          "revenue adjusted, within range")],
        columns=_anomalies().columns,
    )  # fmt: skip
    f = _rank(_inputs(anomalies=pd.concat([base, extra], ignore_index=True))).table
    item = f[(f["entity_id"] == "S01D01") & (f["subject"] == "revenue")].iloc[0]
    assert "revenue adjusted, within range" in item["other_messages"]
    assert len(f) == len(bare)


def test_rank_findings_caps_each_kind():
    res = _rank(_inputs(), options=SummaryOptions(per_kind=1, top_n=50))
    counts = res.top.groupby(["source_task", "finding_kind"]).size()
    assert (counts == 1).all()
    assert len(res.top) == len(counts)
    # at most one finding per task, kind and entity
    full = _rank(_inputs(), options=SummaryOptions(per_kind=10, top_n=50)).top
    assert not full.duplicated(["source_task", "finding_kind", "entity_id"]).any()


def test_summary_options_are_checked(sample_review):
    params = sample_review.params
    bad = params.model_copy(update={"summary": SummaryOptions(min_severity="urgent")})
    review = perflink.review.Review(bad, language="en", tables_dir=None)
    with pytest.raises(ParamsError, match="min_severity"):
        summary.summarize(review, _inputs())


def test_rank_findings_rejects_table_without_findings_columns():
    bad = _validation().drop(columns=["severity"])
    with pytest.raises(InputError, match="validation_findings.*severity"):
        _rank(_inputs(validation_findings=bad))


def test_persisting_findings_rank_higher():
    first = _rank(_inputs()).table
    unit_miss = first[first["message"].str.startswith("unit miss")].iloc[0]
    group_miss = first[first["message"].str.startswith("group miss")].iloc[0]
    # equal severity and money: persistence decides
    prev = first[first["finding_id"] == unit_miss["finding_id"]].assign(quarters_open=2)
    again = _rank(_inputs(previous=prev)).table.set_index("finding_id")
    assert again.loc[unit_miss["finding_id"], "quarters_open"] == 3
    assert again.loc[unit_miss["finding_id"], "rank"] < again.loc[group_miss["finding_id"], "rank"]


# ----------------------------------------------------------------------------- review loop
def _prev_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "finding_id": ["F-a", "F-b", "F-c"],
            "entity_id": ["S01", "S01D01", "S01D02"],
            "severity": ["high", "medium", "low"],
            "message": ["a", "b", "c"],
            "loop_status": ["persisting", "new", "resolved"],
            "first_seen": ["2026Q1", "2026Q2", "2026Q1"],
            "quarters_open": [2, 1, 1],
        }
    )


def test_compare_quarters_new_persisting_resolved():
    cur = pd.DataFrame(
        {"finding_id": ["F-a", "F-d", "F-c"], "entity_id": ["S01", "G00", "S01D02"],
         "severity": ["high", "high", "low"], "message": ["a2", "d", "c again"]}
    )  # fmt: skip
    out = summary.compare_quarters(cur, _prev_table(), quarter="2026Q3").set_index("finding_id")
    assert out.loc["F-a", ["loop_status", "first_seen", "quarters_open"]].tolist() == [
        "persisting", "2026Q1", 3,
    ]  # fmt: skip
    assert out.loc["F-d", ["loop_status", "first_seen", "quarters_open"]].tolist() == [
        "new", "2026Q3", 1,
    ]  # fmt: skip
    # F-c was resolved last quarter: it is back, so it is new again
    assert out.loc["F-c", "loop_status"] == "new"
    # F-b was open last quarter and is gone now
    assert out.loc["F-b", ["loop_status", "message", "quarters_open"]].tolist() == [
        "resolved", "b", 1,
    ]  # fmt: skip
    assert len(out) == 4


def test_compare_quarters_without_previous_marks_all_new():
    cur = pd.DataFrame({"finding_id": ["F-a"], "severity": ["high"], "message": ["a"]})
    out = summary.compare_quarters(cur, None, quarter="2026Q3")
    assert out["loop_status"].tolist() == ["new"] and out["first_seen"].tolist() == ["2026Q3"]


def test_compare_quarters_rejects_bad_tables():
    cur = pd.DataFrame({"finding_id": ["F-a"]})
    with pytest.raises(InputError, match="quarters_open"):
        summary.compare_quarters(cur, _prev_table().drop(columns="quarters_open"), quarter="2026Q3")
    with pytest.raises(InputError, match="finding_id"):
        summary.compare_quarters(pd.DataFrame({"x": [1]}), None, quarter="2026Q3")


def test_forecast_error_against_hand_computed_numbers():
    months = ["2026-10", "2026-11", "2026-12"]
    fc = pd.DataFrame(
        {"entity_id": "S01", "metric_id": "revenue", "period": months,
         "mean": [100.0, 110.0, 120.0], "lo_80": [90.0, 100.0, 110.0],
         "hi_80": [110.0, 120.0, 130.0]}
    )  # fmt: skip
    act = pd.DataFrame(
        {"entity_id": "S01", "metric_id": "revenue",
         "period": pd.PeriodIndex(months, freq="M"), "actual": [105.0, 130.0, 118.0]}
    )  # fmt: skip
    out = forecast_error(fc, act, pd.Period("2026Q4", "Q"))
    row = out.iloc[0]
    # forecast 330, actual 353: error +23 = +6.97%; Nov (130 > 120) outside the 80% band
    assert row["forecast"] == pytest.approx(330.0) and row["actual"] == pytest.approx(353.0)
    assert row["fc_error"] == pytest.approx(23.0)
    assert row["fc_error_pct"] == pytest.approx(23.0 / 330.0)
    assert row["fc_months_in_80"] == 2 and row["period"] == "2026Q4"
    # an entity with a month missing is left out rather than compared on two months
    assert forecast_error(fc, act.iloc[:2], pd.Period("2026Q4", "Q")).empty


def test_forecast_review_rejects_a_forecast_without_intervals():
    fc = pd.DataFrame({"entity_id": ["S01"], "metric_id": ["revenue"], "period": ["2026-10"]})
    with pytest.raises(InputError, match="lacks"):
        summary.forecast_review(fc, pd.DataFrame(), _entities(), CATALOG, quarter="2026Q4")


# ----------------------------------------------------------------------------- sample based
@pytest.fixture(scope="module")
def sample_review(tmp_path_factory):
    root = tmp_path_factory.mktemp("summary_sample")
    generate(root / "s0", seed=0)
    return perflink.open_review(root / "s0" / "params.yaml", language="en", tables_dir=None)


def test_summarize_with_hand_made_tables(sample_review, tmp_path):
    inputs = _inputs()
    res = summary.summarize(sample_review, inputs)
    assert res.quarter == "2026Q3"
    assert res.missing == () and res.inputs.origin["scorecard"] == "missing"
    assert res.headline.tier1.empty and len(res.headline.projection) == 1
    acts = res.actions.to_frame()
    assert {"budget", "caliber", "scheme", "bonus"} <= set(acts["action_id"])
    assert acts["message"].str.startswith("Suggestion").all()
    for part in (res, res.headline, res.chain, res.findings, res.actions, res.quality, res.loop):
        assert isinstance(part._repr_html_(), str)
        part.chart().to_dict()
    path = summary.write_workbook(res, path=tmp_path / "review.xlsx")
    wb = openpyxl.load_workbook(path)  # one language, the review's (see test_workbooks.py)
    assert wb.sheetnames == ["Findings", "Actions", "Forecast deviation", "Anomalies"]
    ws = wb["Findings"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
    assert ws["A1"].value == "Finding id" and ws["A2"].value == res.to_frame()["finding_id"][0]
    assert ws.max_row == 1 + len(res.to_frame())


def test_summarize_rejects_unknown_action_rule(sample_review):
    params = sample_review.params
    bad = params.model_copy(update={"summary": SummaryOptions(actions=("nope",))})
    review = perflink.review.Review(bad, language="en", tables_dir=None)
    with pytest.raises(ParamsError, match="summary.actions"):
        summary.summarize(review, _inputs())


def test_collect_reads_tables_and_reports_missing(sample_review, tmp_path):
    folder = tmp_path / "2026Q3" / "tables"
    folder.mkdir(parents=True)
    _validation().to_parquet(folder / "validation_findings.parquet")
    got = summary.collect(sample_review, tables_dir=folder)
    assert got.origin["validation_findings"] == "table"
    assert got.origin["anomalies"] == "missing"
    assert got.missing_tasks == ["kpi", "forecast", "anomaly"]
    assert got.previous_dir is None


def test_collect_rejects_missing_folder(sample_review, tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        summary.collect(sample_review, tables_dir=tmp_path / "nope")


def test_write_workbook_rejects_a_non_xlsx_path(sample_review, tmp_path):
    res = summary.summarize(sample_review, _inputs())
    with pytest.raises(PerflinkError, match=r"\.xlsx"):
        summary.write_workbook(res, path=tmp_path / "review.csv")
    assert summary.write_workbook(res) is None  # no tables folder, no path: nothing written


# ----------------------------------------------------------------------------- full runs
@pytest.fixture(scope="module")
def two_quarters(reviewed_quarters):
    """Q3 (Chinese) then Q4 (English, same history + three months) in one reports folder."""
    rq = reviewed_quarters
    return rq.root, rq.q3, rq.q4, rq.truth3, rq.truth4


def _top(report: Path) -> pd.DataFrame:
    f = pd.read_parquet(report / "tables" / "summary_findings.parquet")
    opts = SummaryOptions()
    from perflink.summary._findings import top

    return top(f[f["loop_status"] != "resolved"], opts.top_n, per_kind=opts.per_kind)


# which finding of the summary shows each planted kind: (task, kind) and the entity it sits on
_EXPECT = {
    "caliber_vat": ("mapping", "caliber"),
    "recognition_gap": ("mapping", "rule"),
    "early_recognition": ("mapping", "timing"),
    "weak_driver": ("mapping", "driver"),
    "expense_spike": ("anomaly", "anomaly"),
    "yield_drop": ("anomaly", "anomaly"),
    "budget_miss": ("forecast", "projected_miss"),
    "missing_data": ("mapping", "missing"),
    "scheme_violation": ("kpi", "scheme"),
    "bonus_overrun": ("kpi", "bonus_overrun"),
}


def _found(findings: pd.DataFrame, problem: dict) -> pd.DataFrame:
    """Items carrying the task's evidence of ``problem`` (one item per problem: the
    recognition gap leads with the anomaly detector's evidence and carries the rule's)."""
    task, kind = _EXPECT[problem["kind"]]
    sel = findings["evidence"].str.split(", ").map(lambda ev: f"{task}:{kind}" in ev)
    return findings[sel & (findings["entity_id"] == problem["entity_id"])]


@pytest.mark.slow
def test_q3_top_findings_include_the_planted_problems(two_quarters):
    _, r3, _, truth3, _ = two_quarters
    top = _top(r3.report_dir)
    missed = [p["id"] for p in truth3["problems"] if p["kind"] in _EXPECT and _found(top, p).empty]
    assert missed == [], f"planted problems not in the top findings: {missed}"
    # one sentence with the numbers, in the report language
    bonus = _found(top, next(p for p in truth3["problems"] if p["kind"] == "bonus_overrun"))
    assert bonus["severity"].iloc[0] == "critical"
    assert any(ch.isdigit() for ch in bonus["message"].iloc[0])
    assert bonus["evidence_link"].iloc[0].startswith("kpi.html")
    # the typhoon is an approved adjustment: never a top finding
    event = next(p for p in truth3["problems"] if p["kind"] == "known_event")
    assert not ((top["source_task"] == "anomaly") & (top["entity_id"] == event["entity_id"])).any()


@pytest.mark.slow
def test_q4_review_loop_new_persisting_resolved(two_quarters):
    _, r3, r4, truth3, truth4 = two_quarters
    f4 = pd.read_parquet(r4.report_dir / "tables" / "summary_findings.parquet")
    by_id = {p["id"]: p for p in truth3["problems"]}
    status = {}
    for pid in ("P02", "P05", "P06", "P01", "P07", "P10", "P11"):
        rows = _found(f4, by_id[pid])
        status[pid] = set(rows["loop_status"])
    assert "resolved" in status["P02"] and "resolved" in status["P05"]
    assert "resolved" in status["P06"]
    for pid in ("P01", "P07", "P10", "P11"):
        assert status[pid] == {"persisting"}, (pid, status[pid])
        rows = _found(f4, by_id[pid])
        assert (rows["first_seen"] == "2026Q3").all() and (rows["quarters_open"] == 2).all()
    p12 = next(p for p in truth4["problems"] if p["id"] == "P12")
    assert set(_found(f4, p12)["loop_status"]) == {"new"}
    # last quarter's forecast of Q4 was checked against Q4 actuals
    fr = pd.read_parquet(r4.report_dir / "tables" / "summary_forecast_review.parquet")
    assert {"G00", "S01"} <= set(fr["entity_id"]) and fr["fc_error_pct"].notna().all()
    assert np.isfinite(fr["fc_error"]).all()


@pytest.mark.slow
def test_workbook_of_a_full_run(two_quarters):
    _, _, r4, _, _ = two_quarters
    wb = openpyxl.load_workbook(r4.report_dir / "review.xlsx")
    expected = ["Findings", "Actions", "Scorecard", "Bonus", "Forecast deviation", "Anomalies"]
    assert wb.sheetnames == expected  # Q4 is reviewed in English: one language
    tables = r4.report_dir / "tables"
    rows = {
        "findings": len(pd.read_parquet(tables / "summary_findings.parquet")),
        "scorecard": len(pd.read_parquet(tables / "scorecard.parquet")),
        "anomalies": len(pd.read_parquet(tables / "anomalies.parquet")),
    }
    for name, n in rows.items():
        ws = wb[name.capitalize()]
        assert ws.max_row == n + 1, name
        assert ws.freeze_panes == "A2"
        assert ws["B1"].value and ws["B2"].value and ws["B1"].value != ws["B2"].value
        assert not any(
            isinstance(c.value, str) and c.value.startswith("=") for row in ws.iter_rows()
            for c in row
        )  # fmt: skip
    assert wb["Findings"].conditional_formatting  # severity colours


@pytest.mark.slow
@pytest.mark.browser
def test_summary_page_reads_offline(browser, two_quarters, tmp_path):  # noqa: F811 (fixture)
    _, _, r4, _, _ = two_quarters
    check = open_offline(browser, r4.report_dir / "summary.html", shots_dir=tmp_path)
    # the reading layer keeps one chart (the chain); the rest are tables and sentences
    assert_readable(
        check, min_charts=1, texts=["Top findings", "Review loop", "Persisting findings"]
    )


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("quarter", ["q3", "q4"])
def test_summary_prints_to_three_pages_in_words(browser, two_quarters, tmp_path, quarter):  # noqa: F811
    """The sample's summary prints to at most 3 A4 pages, nothing cut on the right; the
    Chinese page (Q3) shows no code, its first printed page the decision page."""
    from browser_utils import (
        find_identifiers,
        offline_page,
        pdf_text,
        print_overflow,
        print_page_count,
        wait_until_drawn,
    )

    _, r3, r4, _, _ = two_quarters
    report = (r3 if quarter == "q3" else r4).report_dir
    with offline_page(browser, report / "summary.html") as opened:
        page = opened.page
        wait_until_drawn(page)
        text = page.inner_text("body")
        pdf = tmp_path / "summary.pdf"
        pages = print_page_count(page, pdf)
        assert pages <= 3, f"{quarter}: the summary prints to {pages} A4 pages"
        assert print_overflow(page) == []
    if quarter == "q3":
        assert find_identifiers(text) == []
        printed = pdf_text(pdf)
        if printed is not None:
            first = printed.split("\f")[0]
            assert "本季度净利润" in first and "全年净利润预计" in first
            assert "需要管理层决定的事项" in first and "四项分析的结果均已读取" not in printed


def test_score_histogram_counts_bins_for_any_group_size():
    # 12,000 units: altair refuses charts of more than 5,000 rows, so the bins are counted first.
    rng = np.random.default_rng(3)
    scores = pd.DataFrame(
        {
            "entity_id": [f"U{i}" for i in range(12_000)],
            "parent_id": "G",
            "score": rng.normal(95, 8, 12_000),
        }
    )
    empty = pd.DataFrame()
    headline = summary.HeadlineResult(empty, empty, scores, empty, language="en")
    spec = headline.chart().to_dict()
    rows = spec["datasets"][next(iter(spec["datasets"]))]
    assert sum(r["units"] for r in rows) == 12_000
    assert all(r["bin_end"] - r["bin_start"] == 5 for r in rows)
    assert all(r["bin_start"] % 5 == 0 for r in rows)
    none = summary.HeadlineResult(empty, empty, scores.iloc[:0], empty, language="zh")
    assert none.chart().to_dict()  # the empty-chart note, no error


# ----------------------------------------------------------------------------- any company
def _tiny_catalog(metrics: list[dict]) -> Catalog:
    """A catalog of a few metrics (every field but id/unit/role/tier filled the same way)."""
    base = dict(definition="d", caliber="c", owner="Finance", source_system="ERP")
    base |= dict(direction="higher", tier=2, category="financial")
    built = {m["id"]: Metric(**(base | m)) for m in metrics}
    return Catalog(metrics=built, mappings=[], rules=[], policy=CATALOG.policy)


#: A company in kUSD whose sales and collections metrics have its own ids.
_KUSD = [
    dict(id="turnover", name_en="Turnover", unit="kUSD", role="sales"),
    dict(id="cash_in", name_en="Cash received", unit="kUSD", role="cash_collection"),
    dict(id="ebit", name_en="EBIT", unit="kUSD", role="profit", tier=1),
    dict(id="staff", name_en="Staff", unit="persons"),
]


def _review(catalog: Catalog, lang: str = "en", options: SummaryOptions | None = None):
    params = SimpleNamespace(summary=options or SummaryOptions(), scope=None)
    return SimpleNamespace(
        params=params, catalog=catalog, language=lang, quarter="2026Q3",
        entities=_entities(), facts=pd.DataFrame(), tables_dir=None,
    )  # fmt: skip


def _scorecard(sales: str, cash: str, cash_done: float) -> pd.DataFrame:
    rows = []
    for scope in ("quarter", "ytd"):
        for metric, done in ((sales, 1.04), (cash, cash_done)):
            rows.append(("S01D01", scope, metric, "financial", 0.5, done, 50.0 * done))
    cols = ["entity_id", "scope", "metric_id", "category", "weight", "completion"]
    return pd.DataFrame(rows, columns=[*cols, "weighted_score"])


def _renamed(validation: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    return validation.assign(metric_id=validation["metric_id"].replace(names))


def test_summary_without_profit_or_sales_role_says_why_the_chain_stops():
    roleless = _tiny_catalog([{k: v for k, v in m.items() if k != "role"} for m in _KUSD])
    res = summary.summarize(_review(roleless), _inputs())
    assert res.chain.why == "summary.chain.no_projection" and res.chain.metric == ""
    page = res.chain.note()._repr_html_()
    assert "marks no metric as the profit" in page and "KeyError" not in page
    steps = {r["step"] for r in next(iter(res.chain.chart().to_dict()["datasets"].values()))}
    assert steps and not any("Projected" in s for s in steps)  # the chart ends at the score
    assert "projection" not in " ".join(res.chain.view().columns)
    # with a profit role the chain ends on its projection, named from the catalog
    res = summary.summarize(_review(_tiny_catalog(_KUSD)), _inputs())
    assert res.chain.metric == "EBIT" and res.chain.why == "summary.chain.not_forecast"


def test_summary_rejects_a_projection_metric_the_catalog_lacks():
    review = _review(_tiny_catalog(_KUSD), options=SummaryOptions(projection_metric="nope"))
    with pytest.raises(ParamsError, match="summary.projection_metric.*'nope'"):
        summary.summarize(review, _inputs())


def test_collections_action_follows_the_catalog_roles():
    cat = _tiny_catalog(_KUSD)
    res = summary.summarize(_review(cat), _inputs(scorecard=_scorecard("turnover", "cash_in", 0.9)))
    acts = res.actions.to_frame()
    row = acts[acts["action_id"] == "collections"]
    assert row["metric_id"].tolist() == ["cash_in"]
    assert "Turnover" in row["message"].iloc[0] and "Cash received" in row["message"].iloc[0]
    assert res.actions.skipped == ()
    # collections on target: the rule runs and does not fire
    ok = summary.summarize(_review(cat), _inputs(scorecard=_scorecard("turnover", "cash_in", 1.0)))
    assert "collections" not in set(ok.actions.to_frame()["action_id"])
    # no cash-collection role: the rule does not run, and the page says so once
    no_cash = [m if m["id"] != "cash_in" else {**m, "role": None} for m in _KUSD]
    res = summary.summarize(
        _review(_tiny_catalog(no_cash), "zh"),
        _inputs(scorecard=_scorecard("turnover", "cash_in", 0.9)),
    )
    assert "collections" not in set(res.actions.to_frame()["action_id"])
    assert len(res.actions.skipped) == 1 and "回款指标" in res.actions.skipped[0]
    assert res.actions._repr_html_().count("回款指标") == 1
    # not listed in summary.actions: nothing to say
    opts = SummaryOptions(actions=("budget",))
    quiet = summary.summarize(_review(_tiny_catalog(no_cash), options=opts), _inputs())
    assert quiet.actions.skipped == ()


@pytest.mark.parametrize(
    ("lang", "words", "header"),
    [("en", "USD", "At stake (USD k; "), ("zh", "美元", "风险金额（千美元；")],
)
def test_money_at_stake_in_a_kusd_company(lang, words, header, tmp_path):
    cat = _tiny_catalog(_KUSD)
    names = {"revenue": "turnover", "net_profit": "ebit", "headcount": "staff", "opex": "ebit"}
    inputs = _inputs(
        validation_findings=_renamed(_validation(), names),
        kpi_findings=_renamed(_kpi(), names),
        forecast_deviation=_renamed(_deviation(), names),
        anomalies=_renamed(_anomalies(), names),
    )
    res = summary.summarize(_review(cat, lang), inputs)
    assert res.findings.money_unit == "kUSD" and res.money_unit == "kUSD"
    page = res.findings._repr_html_()
    assert words in page and "万元" not in page and "CNY" not in page
    spec = res.findings.chart().to_dict()
    assert words in str(spec) and "CNY" not in str(spec) and "万元" not in str(spec)
    wb = openpyxl.load_workbook(summary.write_workbook(res, path=tmp_path / "r.xlsx"))
    heads = [c.value for c in wb["问题清单" if lang == "zh" else "Findings"][1]]
    assert any(str(h).startswith(header) for h in heads)
    assert not any("万元" in str(h) or "CNY" in str(h) for h in heads)
    fc = wb["预测偏差" if lang == "zh" else "Forecast deviation"]
    heads = [c.value for c in fc[1]]
    at = heads.index("计量单位" if lang == "zh" else "Unit") + 1
    assert heads[at - 2] == ("指标" if lang == "zh" else "Metric")
    assert fc.cell(2, at).value == ("千美元" if lang == "zh" else "USD k")  # the unit in words


def test_money_at_stake_is_converted_into_the_money_unit_and_rates_are_not_money():
    cat = _tiny_catalog(
        [
            dict(id="profit", name_zh="利润", unit="万元", role="profit", tier=1),
            dict(id="sales", name_zh="收入", unit="千元", role="sales"),
            dict(id="margin", name_zh="利润率", unit="ratio"),
        ]
    )
    val = _validation().iloc[:2].assign(metric_id="sales")  # gaps of 10 and 5 千元
    kpi = _kpi().iloc[3:].assign(metric_id="margin", gap=-0.05)  # a missed rate target
    inputs = _inputs(validation_findings=val, kpi_findings=kpi, anomalies=None)
    inputs.tables["forecast_deviation"] = None
    f = summary.rank_findings(inputs, _entities(), cat, quarter="2026Q3", language="zh").table
    rule = f[f["finding_kind"] == "rule"]
    assert rule["at_stake"].tolist() == [pytest.approx(1.5)]  # 15 千元 = 1.5 万元
    missed = f[f["finding_kind"] == "tier1_missed"]
    assert len(missed) == 1 and missed["at_stake"].isna().all()


def test_rule_breach_priced_in_the_rule_unit_when_the_checked_metric_is_a_count():
    # orders × order value vs sales: the breach is a money gap though the rule checks orders
    cat = _tiny_catalog(
        [
            *_KUSD,
            dict(id="orders", name_en="Orders", unit="orders", tier=3),
            dict(id="aov", name_en="Order value", unit="USD/order", tier=3),
        ]
    )
    rule = Rule(
        id="R01", name_en="x", lhs="orders * aov / 1000", check="approx", rhs="turnover",
        tolerance=0.03, severity="high",
    )  # fmt: skip
    cat = Catalog(metrics=cat.metrics, mappings=[], rules=[rule], policy=cat.policy)
    val = _validation().iloc[:2].assign(metric_id="orders")  # gaps 10 and 5 (kUSD)
    inputs = _inputs(validation_findings=val, kpi_findings=None, anomalies=None)
    inputs.tables["forecast_deviation"] = None
    f = summary.rank_findings(inputs, _entities(), cat, quarter="2026Q3", language="en").table
    assert f["at_stake"].tolist() == [pytest.approx(15.0)]


# ----------------------------------------------------------------------------- issue 15
#: A company whose costs are lower-is-better and whose growth is scored in points.
_TRUST = [
    dict(id="sales", name_en="Sales", unit="kUSD", role="sales", tier=1),
    dict(id="ebit", name_en="EBIT", unit="kUSD", role="profit", tier=1),
    dict(id="costs", name_en="Costs", unit="kUSD", direction="lower", tier=1),
    dict(id="growth", name_en="Growth", unit="%", tier=1),
    dict(id="saving", name_en="Saving rate", unit="%"),
]


def _status_review(lang: str = "en", **summary_options):
    review = _review(_tiny_catalog(_TRUST), lang, SummaryOptions(**summary_options))
    review.params.status = StatusOptions()
    return review


def _projection_rows() -> pd.DataFrame:
    cols = ["entity_id", "period", "metric_id", "projected", "lo_80", "hi_80", "budget"]
    cols += ["ytd_actual", "deviation_pct", "p_meet_budget", "at_stake", "kind", "severity"]
    cols += ["message"]
    rows = [
        ("G00", "2026Q3", "sales", 987.0, 980.0, 995.0, 1000.0, 700.0, -0.013, 0.0, 13.0,
         "group", "medium", "sales -1.3%, 0%"),
        ("G00", "2026Q3", "costs", 1016.0, 1010.0, 1020.0, 1000.0, 700.0, 0.016, 0.0, 16.0,
         "group", "medium", "costs +1.6% over budget, 0%"),
        ("G00", "2026Q3", "ebit", 1020.0, 990.0, 1050.0, 1000.0, 700.0, 0.02, 0.004, 0.0,
         "group", "info", "ebit"),
        ("S01", "2026Q3", "ebit", 990.0, 950.0, 1030.0, 1000.0, 700.0, -0.01, 0.5, 10.0,
         "subsidiary", "medium", "S01 ebit"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def test_outlook_status_never_contradicts_the_probability_beside_it():
    res = summary.summarize(_status_review(), _inputs(forecast_deviation=_projection_rows()))
    proj = res.headline.projection.set_index("metric_id")
    # p = 0% and -1.3%: off track, never on track; +1.6% over budget on a cost at 0%: off
    # track (a cost above budget is unfavourable); +2% but 0.4%: the probability decides
    assert proj.loc["sales", "status"] == "off_track"
    assert proj.loc["costs", "status"] == "off_track"
    assert proj.loc["ebit", "status"] == "off_track"
    page = summary.summarize(
        _status_review("zh"), _inputs(forecast_deviation=_projection_rows())
    ).headline._repr_html_()
    assert "难以达成" in page and "达标" not in page and "有望达成" not in page
    # rounded as the forecast's messages round: percent to one decimal
    assert "0.4%" in page and "+2.0%" in page and "-1.3%" in page and "0.0%" in page


def test_actual_status_follows_the_scoring_basis():
    attribution = pd.DataFrame(
        [
            ("ebit", "quarter", 99.5, 100.0),  # 99.5%: narrowly missed (>= 97%)
            ("ebit", "ytd", -590.9, -505.6),  # a planned loss missed: no ratio shown
            ("growth", "quarter", -0.214, 0.004),  # -21.8 points: missed
            ("growth", "ytd", 0.031, 0.04),  # -0.9 points: narrowly missed
            ("costs", "quarter", 95.0, 100.0),  # below a cost budget: met
        ],
        columns=["metric_id", "scope", "driver_actual", "driver_base"],
    ).assign(entity_id="G00", link="total", base="target")
    res = summary.summarize(_status_review(), _inputs(attribution=attribution))
    t1 = res.headline.tier1
    assert t1["status"].tolist() == ["near_miss", "missed", "missed", "near_miss", "met"]
    assert t1["basis"].tolist() == ["ratio", "ratio", "points", "points", "ratio"]
    assert t1["completion"].isna().tolist() == [False, True, True, True, False]
    page = res.headline._repr_html_()
    assert "-21.8 pts" in page and "-5878" not in page and "116.9%" not in page
    assert "gap USD -85.3 k" in page  # the planned loss's gap in its unit, not 116.9%


def test_chain_statuses_are_met_or_missed_for_actuals_and_outlooks_for_projections():
    card = pd.DataFrame(
        [
            ("S01", "ytd", "sales", "business", 0.5, 1.02, 51.0),
            ("S01", "ytd", "ebit", "financial", 0.5, 0.975, 45.0),
        ],
        columns=["entity_id", "scope", "metric_id", "category", "weight", "completion",
                 "weighted_score"],
    )  # fmt: skip
    res = summary.summarize(
        _status_review(), _inputs(scorecard=card, forecast_deviation=_projection_rows())
    )
    row = res.chain.table.set_index("entity_id").loc["S01"]
    assert row["status_business"] == "met" and row["status_financial"] == "near_miss"
    assert row["status_score"] == "missed"  # 96 points: below 97% of 100
    assert row["status_projection"] == "at_risk" and row["p_meet_budget"] == 0.5
    assert row["status"] == "missed"
    data = next(iter(res.chain.chart().to_dict()["datasets"].values()))
    proj = [d for d in data if d["step"].startswith("4.")]
    assert proj[0]["text"] == "-1.0% (50.0%)" and proj[0]["code"] == "at_risk"
    spec = str(res.chain.chart().to_dict())
    assert STATUS_WORD_COLORS["at_risk"] in spec and "'green'" not in spec
    note = res.chain.note()._repr_html_()
    assert "97%" in note and "70%" in note and "30%" in note


def _anomaly(entity: str, metric: str, stake: float, severity: str = "high", **kw):
    row = dict(entity_id=entity, period="2026-08", metric_id=metric, kind="spike",
               severity=severity, at_stake=stake, explained_by="", value=0.0, expected=0.0,
               message=f"{entity} {metric}")  # fmt: skip
    return row | kw


def _only(**tables) -> summary.SummaryInputs:
    empty = {n: None for n in ("validation_findings", "kpi_findings", "forecast_deviation")}
    return _inputs(**(empty | {"anomalies": None} | tables))


def test_ranking_ties_follow_entity_and_catalog_order_not_ids():
    cat = _tiny_catalog(_TRUST)
    anomalies = pd.DataFrame(
        [_anomaly("S01D02", "sales", 50.0), _anomaly("S01D01", "ebit", 50.0),
         _anomaly("S01D01", "sales", 50.0)]
    )  # fmt: skip
    inputs = _only(anomalies=anomalies)
    ents = _entities()
    order = summary.rank_findings(inputs, ents, cat, quarter="2026Q3", language="en").table
    assert order["message"].tolist() == ["S01D01 sales", "S01D01 ebit", "S01D02 sales"]
    # the entities table's order decides, whatever the ids (or their hashes) say
    flipped = ents.iloc[[0, 1, 3, 2]].reset_index(drop=True)
    order = summary.rank_findings(inputs, flipped, cat, quarter="2026Q3", language="en").table
    assert order["message"].tolist() == ["S01D02 sales", "S01D01 sales", "S01D01 ebit"]


def test_one_item_per_problem_carries_every_task_evidence():
    cat = _tiny_catalog(_TRUST)
    validation = pd.DataFrame(
        [("S01D02", "2026-08", "sales", "R01", "rule", "high", 1000.0, 1100.0, -0.09, "R01 gap")],
        columns=["entity_id", "period", "metric_id", "rule_id", "check", "severity", "value",
                 "expected", "deviation", "message"],
    )  # fmt: skip
    anomalies = pd.DataFrame(
        [_anomaly("S01D02", "sales", 110.0, "critical", kind="linkage", value=1100.0,
                  expected=1000.0, message="linkage gap")]
    )  # fmt: skip
    res = summary.rank_findings(
        _only(validation_findings=validation, anomalies=anomalies), _entities(), cat,
        quarter="2026Q3", language="en",
    )  # fmt: skip
    f = res.table
    assert len(f) == 1
    item = f.iloc[0]
    assert item["severity"] == "critical" and item["message"] == "linkage gap"
    assert item["at_stake"] == pytest.approx(110.0)  # the larger amount, not 100 + 110
    assert item["evidence"] == "anomaly:anomaly, mapping:rule"
    page = res._repr_html_()
    assert "R01 gap" in page and 'href="mapping.html' in page and 'href="anomaly.html' in page


def test_a_weak_mapping_is_not_merged_with_a_miss_of_its_target():
    validation = pd.DataFrame(
        [("G00", "2026Q3", "ebit", "M9", "driver", "medium", None, None, None, "weak M9"),
         ("G00", "2026Q3", "sales", "M8", "driver", "medium", None, None, None, "weak M8")],
        columns=["entity_id", "period", "metric_id", "rule_id", "check", "severity", "value",
                 "expected", "deviation", "message"],
    )  # fmt: skip
    f = summary.rank_findings(
        _only(
            validation_findings=validation,
            forecast_deviation=_projection_rows().assign(severity="medium"),  # G00 ebit too
        ),
        _entities(), _tiny_catalog(_TRUST), quarter="2026Q3", language="en",
    )  # fmt: skip
    top, f = f.top, f.table
    assert ((f["entity_id"] == "G00") & (f["subject"] == "ebit")).sum() == 1
    # two weak mappings reported at the group are two items of the top list, not one
    assert {"weak M8", "weak M9"} <= set(top["message"])
    weak = f[f["message"] == "weak M9"]
    assert len(weak) == 1 and weak["subject"].iloc[0] == "M9"
    assert weak["evidence"].iloc[0] == "mapping:driver"


def test_no_critical_item_is_dropped_by_the_caps():
    anomalies = pd.DataFrame(
        [_anomaly(e, m, 10.0, "critical") for e, m in
         (("S01D01", "sales"), ("S01D01", "ebit"), ("S01D02", "sales"), ("S01", "ebit"))]
        + [_anomaly("S01D02", "ebit", 500.0, "high")]
    )  # fmt: skip
    res = summary.rank_findings(
        _only(anomalies=anomalies), _entities(), _tiny_catalog(_TRUST), quarter="2026Q3",
        language="en", options=SummaryOptions(per_kind=1, top_n=2),
    )  # fmt: skip
    assert (res.top["severity"] == "critical").sum() == 4
    assert "high" not in set(res.top["severity"])  # the cap still applies below critical


def test_missed_target_is_priced_by_its_ytd_gap_not_quarter_plus_ytd():
    kpi_rows = pd.DataFrame(
        [
            ("S01D01", "2026Q3", "ebit", "tier1_missed", "high", "quarter", -30.0, "q miss"),
            ("S01D01", "2026Q3", "ebit", "tier1_missed", "high", "ytd", -80.0, "ytd miss"),
            ("S01D02", "2026Q3", "ebit", "tier1_missed", "high", "quarter", -20.0, "q only"),
        ],
        columns=["entity_id", "period", "metric_id", "rule_id", "severity", "scope", "gap",
                 "message"],
    )  # fmt: skip
    f = summary.rank_findings(
        _only(kpi_findings=kpi_rows), _entities(), _tiny_catalog(_TRUST), quarter="2026Q3",
        language="en",
    ).table.set_index("entity_id")  # fmt: skip
    assert f.loc["S01D01", "at_stake"] == pytest.approx(80.0)  # not 110
    assert f.loc["S01D02", "at_stake"] == pytest.approx(20.0)  # YTD met: the quarter's gap


def test_favourable_deviations_are_never_money_at_risk():
    anomalies = pd.DataFrame(
        [
            _anomaly("S01D01", "costs", 40.0, value=80.0, expected=100.0),  # cost below: good
            _anomaly("S01D02", "saving", 4735.5, value=0.038, expected=0.015),  # saving up
            _anomaly("S01", "costs", 40.0, value=120.0, expected=100.0),  # cost above: risk
            _anomaly("G00", "sales", 60.0, kind="linkage", value=110.0, expected=100.0),
        ]
    )
    deviation = _projection_rows().assign(severity="medium")  # ebit +2%: favourable
    f = summary.rank_findings(
        _only(anomalies=anomalies, forecast_deviation=deviation), _entities(),
        _tiny_catalog(_TRUST), quarter="2026Q3", language="en",
    ).table  # fmt: skip
    stake = f.set_index(["entity_id", "subject"])["at_stake"]
    assert np.isnan(stake[("S01D01", "costs")]) and np.isnan(stake[("S01D02", "saving")])
    assert stake[("S01", "costs")] == pytest.approx(40.0)
    assert stake[("G00", "sales")] == pytest.approx(60.0)  # a mismatch is risk either way
    assert np.isnan(stake[("G00", "ebit")])
    # unpriced items rank after priced ones of the same severity
    assert f["message"].iloc[-1] in {"S01D01 costs", "S01D02 saving", "ebit"}


def test_chain_weighs_each_metric_on_its_scoring_basis():
    # a rate scored in points has an attainment but no completion ratio: it counts by its
    # attainment, and never as a zero
    card = pd.DataFrame(
        [
            ("S01", "ytd", "sales", "business", 0.5, 0.98, 0.98, 49.0),
            ("S01", "ytd", "growth", "business", 0.5, np.nan, 1.04, 52.0),
        ],
        columns=["entity_id", "scope", "metric_id", "category", "weight", "completion",
                 "attainment", "weighted_score"],
    )  # fmt: skip
    res = summary.summarize(_status_review(), _inputs(scorecard=card))
    row = res.chain.table.set_index("entity_id").loc["S01"]
    assert row["business_completion"] == pytest.approx(1.01)
    assert row["status_business"] == "met"


# ----------------------------------------------------------------------------- issue 19
def _managed() -> pd.DataFrame:
    """The tiny entities with managers as a company enters them (free text)."""
    return _entities().assign(manager=["Lin Jie", "Huang Fang", "", None])


def _decision_review(lang: str = "en"):
    review = _status_review(lang)
    review.entities = _managed()
    return review


def _group_attribution() -> pd.DataFrame:
    return pd.DataFrame(
        [("ebit", "quarter", 1100.0, 1000.0), ("ebit", "ytd", 2910.0, 3000.0)],
        columns=["metric_id", "scope", "driver_actual", "driver_base"],
    ).assign(entity_id="G00", link="total", base="target")


def _decision_inputs(**tables) -> summary.SummaryInputs:
    dev = _projection_rows()
    # the group's profit projected 80 kUSD (8%) below budget, 10% chance of meeting it
    dev.loc[dev["metric_id"] == "ebit", ["projected", "deviation_pct", "p_meet_budget"]] = [
        920.0, -0.08, 0.1,
    ]  # fmt: skip
    dev.loc[dev["metric_id"] == "ebit", ["at_stake", "severity"]] = [80.0, "medium"]
    base = dict(attribution=_group_attribution(), forecast_deviation=dev)
    return _inputs(**(base | tables))


@pytest.mark.parametrize(
    ("lang", "tier1", "outlook"),
    [
        (
            "en",
            "EBIT, Group, this quarter: USD 1.1 m against a target of USD 1.0 m (110.0% of "
            "target), met; year to date USD 2.9 m against USD 3.0 m (97.0% of target), "
            "narrowly missed.",
            "EBIT, Group, full year 2026: projected USD 920.0 k, USD 80.0 k below the budget of "
            "USD 1.0 m (-8.0%); probability of meeting budget 10.0%, off track.",
        ),
        (
            "zh",
            "集团本季度 EBIT 110.0 万美元，目标 100.0 万美元，完成 110.0%，达成；年初至今 "
            "291.0 万美元，目标 300.0 万美元，完成 97.0%，略低于目标。",
            "集团2026年全年 EBIT 预计 92.0 万美元，比预算 100.0 万美元 少 8.0 万美元（-8.0%），"
            "达成预算的概率 10.0%，难以达成。",
        ),
    ],
)
def test_decision_page_says_the_quarter_and_the_outlook_from_the_numbers(lang, tier1, outlook):
    res = summary.summarize(_decision_review(lang), _decision_inputs())
    d = res.decisions
    assert d.tier1_sentence == tier1
    assert d.outlook_sentence == outlook
    # the decision page leads the summary: the two sentences come before the decisions
    page = res._repr_html_()
    head = perflink.labels.t("summary.h.decision_list", lang)
    assert page.index(tier1) < page.index(outlook) < page.index(head)
    assert "四项分析的结果均已读取" not in page and "were read" not in page


def test_decision_sentences_follow_the_figures_of_the_headline_tables():
    res = summary.summarize(_decision_review("en"), _decision_inputs())
    t1 = res.headline.tier1
    assert t1.loc[t1["scope"] == "quarter", "status"].item() == "met"
    proj = res.headline.projection.set_index("metric_id").loc["ebit"]
    assert proj["status"] == "off_track" and "off track" in res.decisions.outlook_sentence
    # a profit above budget reads "above", and a missing forecast says so in a sentence
    dev = _decision_inputs().get("forecast_deviation")
    dev.loc[dev["metric_id"] == "ebit", ["projected", "deviation_pct", "p_meet_budget"]] = [
        1100.0, 0.1, 0.95,
    ]  # fmt: skip
    up = summary.summarize(_decision_review("en"), _decision_inputs(forecast_deviation=dev))
    assert "USD 100.0 k above the budget" in up.decisions.outlook_sentence
    assert "on track" in up.decisions.outlook_sentence
    none = summary.summarize(
        _decision_review("en"), _decision_inputs(forecast_deviation=None, attribution=None)
    )
    assert none.decisions.outlook_sentence.startswith("The forecast is missing")
    assert none.decisions.tier1_sentence.startswith("KPI decomposition and scores are missing")


def test_decisions_are_ranked_by_the_ranked_lists_rule_with_owner_amount_and_evidence():
    res = summary.summarize(_decision_review("en"), _decision_inputs())
    d = res.decisions.table
    assert 3 <= min(len(d), res.decisions.shown) <= 5
    # one budget decision for the group and its subsidiaries, led by the group's own gap
    budget = d[d["action_id"] == "budget"]
    assert len(budget) == 1 and budget["entity_id"].item() == "G00"
    assert "EBIT of Group projected USD 80.0 k below budget" in budget["decision"].item()
    assert budget["at_stake"].item() == pytest.approx(80.0)
    # the ranking rule: severity first, then money at stake (unpriced last) ...
    sev = d["severity"].map(SEVERITY_RANK).tolist()
    assert sev == sorted(sev)
    for s in set(d["severity"]):
        money = d.loc[d["severity"] == s, "at_stake"].tolist()
        priced = [m for m in money if pd.notna(m)]
        assert priced == sorted(priced, reverse=True)
        assert money[: len(priced)] == priced  # unpriced after priced
    assert d["rank"].tolist() == list(range(1, len(d) + 1))
    # ... the critical bonus pool first, with the money of its finding
    first = d.iloc[0]
    assert first["action_id"] == "bonus" and first["at_stake"] == pytest.approx(30.0)
    # owner: the entity's manager as entered, with the entity's name
    assert first["owner"] == "Huang Fang (East Co.)"
    assert budget["owner"].item() == "Lin Jie (Group)"
    # evidence: an anchor on the task page, as the ranked list links
    assert first["evidence_link"].startswith("kpi.html#")
    assert budget["evidence_link"].item().startswith("forecast.html#")
    page = res.decisions._repr_html_()
    assert page.count("<tr>") == 1 + min(len(d), res.decisions.shown)
    assert 'href="kpi.html#' in page and "Owner (as entered)" in page


def test_decisions_without_managers_name_the_responsible_unit():
    review = _status_review("zh")
    res = summary.summarize(review, _decision_inputs())
    d = res.decisions.table.set_index("action_id")
    assert d.loc["budget", "owner"] == "集团"
    assert d.loc["bonus", "owner"] == "华东子公司"


def test_every_amount_on_the_decision_page_carries_its_unit():
    for lang, unit in (("en", "USD"), ("zh", "美元")):
        res = summary.summarize(_decision_review(lang), _decision_inputs())
        page = res.decisions._repr_html_()
        cells = re.findall(r'<td class="pl-num"[^>]*>(.*?)</td>', page)
        assert cells, page
        for text in cells:
            assert unit in text or text in ("not priced", "无法以金额衡量"), text
        # the full-year table: every amount with its unit
        view = summary._results._projection_view(res.headline.projection, lang)
        for col in ("projected", "lo_80", "hi_80", "budget"):
            assert view[col].str.contains(unit).all(), (lang, col, view[col].tolist())
        # one way of writing money per row: never a bare 万元 beside USD / CNY words
        assert "万元" not in page


def test_summary_texts_in_chinese_carry_no_code():
    from browser_utils import find_identifiers

    review = _decision_review("zh")
    res = summary.summarize(review, _decision_inputs(scorecard=_scorecard("sales", "ebit", 0.9)))
    acts = res.actions.to_frame()
    assert {"caliber", "scheme", "bonus", "budget"} <= set(acts["action_id"])
    parts = [
        res._repr_html_(), res.chain.note()._repr_html_(), res.chain._repr_html_(),
        res.headline._repr_html_(), res.actions._repr_html_(), res.quality._repr_html_(),
        res.loop._repr_html_(),
    ]  # fmt: skip

    text = re.sub(r"<[^>]+>", " ", " ".join(parts))
    # the tasks' own messages of the hand-made tables are test data, not the summary's text
    assert find_identifiers(text) == []
    for code in ("R03", "SCH-X", "scheme_financial_min", "tier1_missed", "role:", "reports/"):
        assert code not in text, code
    assert "kpi 任务" not in text and "forecast 任务" not in text


def test_summary_names_missing_tasks_in_words():
    res = summary.summarize(_decision_review("zh"), _decision_inputs())
    res = dataclasses.replace(res, missing=("kpi", "forecast"))
    page = res._repr_html_()
    assert "三级指标分解与考核" in page and "偏差预测与过程预警" in page
    assert "kpi" not in page.replace("kpi.html", "")


def test_chain_chart_shortens_long_names_apart_with_the_full_name_in_the_tooltip():
    ents = pd.DataFrame(
        [
            ("G00", "集团", "Group", None, "group"),
            ("S01", "华南智能制造装备集团股份有限公司第一事业部", "South 1", "G00", "subsidiary"),
            ("S02", "华南智能制造装备集团股份有限公司第二事业部", "South 2", "G00", "subsidiary"),
        ],
        columns=["entity_id", "name_zh", "name_en", "parent_id", "kind"],
    ).astype({"parent_id": object})
    review = _status_review("zh")
    review.entities = ents
    res = summary.summarize(review, _decision_inputs())
    spec = res.chain.chart().to_dict()
    data = next(iter(spec["datasets"].values()))
    labels_ = {d["label"] for d in data}
    assert len(labels_) == 2  # the two names stay apart
    assert all(len(x) < 24 for x in labels_)
    assert {d["entity"] for d in data} == set(ents["name_zh"][1:])
    layer = spec["layer"][0]
    assert layer["encoding"]["y"]["field"] == "label"
    assert layer["encoding"]["y"]["axis"]["labelLimit"] == 0
    assert any(t["field"] == "entity" for t in layer["encoding"]["tooltip"])


def test_findings_split_into_the_reading_layer_and_the_appendix():
    res = summary.summarize(_decision_review("en"), _decision_inputs())
    top = res.findings.top
    assert len(top) > 2
    head, rest = res.findings.head(2), res.findings.after(2)
    assert len(head.top) == 2 and len(rest.top) == len(top) - 2
    assert '<ol class="pl-findings" start="3">' in rest._repr_html_()
    assert "start=" not in head._repr_html_()
    # the reading layer keeps each item's leading sentence; the other tasks' stay in the list
    full = dataclasses.replace(res.findings, top=top.assign(other_messages="second task says"))
    assert "second task says" not in full.head(len(top))._repr_html_()
    assert "second task says" in full._repr_html_()
    assert "second task says" in full.after(1)._repr_html_()
    with pytest.raises(InputError, match="whole number"):
        res.findings.head(-1)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_findings_intro_counts_what_the_list_and_the_appendix_show(lang):
    res = summary.summarize(_decision_review(lang), _decision_inputs())
    f = res.findings
    total = int((f.table["loop_status"] != "resolved").sum())
    n_top = len(f.top)
    assert n_top > 2

    def said(key, **kw):
        return html.escape(perflink.labels.t(key, lang, **kw))

    assert said("summary.text.findings_more", total=total, shown=2, more=n_top - 2) in (
        f.intro(2)._repr_html_()
    )
    # head() shows the whole top list: the appendix says nothing was left out
    whole = f.intro(n_top)._repr_html_()
    key = "summary.text.findings_all" if total == n_top else "summary.text.findings_first"
    assert said(key, total=total, shown=n_top, more=0) in whole
    assert said("summary.findings.all_above") in f.after(n_top)._repr_html_()
    assert said("summary.findings.none") not in f.after(n_top)._repr_html_()
    # no finding at all: no sentence (the list says there is none)
    empty = dataclasses.replace(f, table=f.table.iloc[:0], top=f.top.iloc[:0])
    assert empty.intro()._repr_html_() == ""
    assert said("summary.findings.none") in empty.head()._repr_html_()
    with pytest.raises(InputError, match="whole number"):
        f.intro(-1)


def test_an_empty_appendix_prints_its_note_without_a_pointer():
    from perflink._report_format import APPENDIX, appendix_html

    assert appendix_html("<p>none</p>", lang="en", rows=0) == "<p>none</p>"
    assert APPENDIX in appendix_html("<table></table>", lang="en", rows=3)


def test_glossary_terms_cover_the_words_the_page_keeps():
    res = summary.summarize(_decision_review("zh"), _decision_inputs())
    terms = res.glossary_terms()
    assert {"money_at_stake", "probability_of_budget"} <= set(terms)
    assert "caliber" in terms  # the caliber decision says 口径
    for term in terms:
        perflink.labels.t(f"glossary.{term}", "zh")  # every term has its line


def test_notebook_leads_with_the_decision_page_and_marks_long_tables_appendix():
    import json

    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    body = "\n".join(code)
    first = next(i for i, c in enumerate(code) if "perflink.summary.run" in c)
    assert "perflink.report.show(result)" in code[first]  # the decision page first
    assert body.index("summary.h.chain") < body.index("summary.h.findings")
    assert body.index("summary.h.findings") < body.index("summary.h.headline")
    assert body.index("summary.h.findings") < body.index("summary.intro")  # method last
    for long in ("result.actions", "result.quality", "result.chain", "result.findings.after()"):
        assert f"perflink.report.show({long}, appendix=True)" in body, long
    assert "perflink.report.glossary(" in body
    assert "summary.status.complete" not in body


def test_review_loop_names_the_previous_quarter_not_a_path_and_keeps_tables_out_of_print():
    from perflink.summary._results import LoopResult

    changes = pd.DataFrame(
        [("S01", "kpi", "high", "2026Q2", 2, "persisting", "open")],
        columns=["entity", "source_task", "severity", "first_seen", "quarters_open",
                 "loop_status", "message"],
    )  # fmt: skip
    empty = pd.DataFrame()
    loop = LoopResult("/r/reports/2026Q2/tables", empty, changes, empty, empty, "zh")
    page = loop._repr_html_()
    assert "2026年第2季度" in page and "reports" not in page and "/r/" not in page
    assert 'class="pl-appendix"' in page.replace("pl-appendix-note", "")


def test_a_source_systems_decision_is_owned_by_its_data_owner():
    quality = pd.DataFrame(
        [("OMS", "Store Ops", 100, 80, 10, 10, 0.9, 0.89, 0.8, "missed")],
        columns=["source_system", "owner", "expected_values", "present", "missing", "failing",
                 "completeness", "pass_rate", "dq_index", "status"],
    )  # fmt: skip
    res = summary.summarize(_decision_review("en"), _decision_inputs(data_quality=quality))
    d = res.decisions.table.set_index("action_id")
    assert d.loc["data_quality", "owner"] == "Store Ops"
    assert "OMS" in d.loc["data_quality", "decision"]
    assert d.loc["data_quality", "evidence_link"].startswith("mapping.html")


@pytest.fixture(scope="module")
def retail_inputs(tmp_path_factory):
    """The retail example (kUSD, its own metrics and roles), every task run in process."""
    params = generate(tmp_path_factory.mktemp("retail"), example="retail")
    review = perflink.open_review(params, language="en", tables_dir=None)
    return params, review, summary.collect(review)


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_decision_page_of_another_company(retail_inputs, lang):
    params, _, inputs = retail_inputs
    review = perflink.open_review(params, language=lang, tables_dir=None)
    res = summary.summarize(review, inputs)
    d = res.decisions
    profit = review.catalog.metrics[review.catalog.role("profit")].name(lang)
    usd = "USD" if lang == "en" else "美元"
    for sentence in (d.tier1_sentence, d.outlook_sentence):
        assert profit in sentence and usd in sentence
        assert "万元" not in sentence and "CNY" not in sentence
    shown = d.table.head(d.shown)
    assert 3 <= len(shown) <= 5
    assert shown["owner"].str.len().gt(0).all()  # managers of the entities table, else units
    assert shown["evidence_link"].str.contains(r"\.html").all()
    sev = shown["severity"].map(SEVERITY_RANK).tolist()
    assert sev == sorted(sev)
    # a rule the catalog cannot feed says so in a sentence instead of leaving a gap
    assert any("did not run" in s or "未运行" in s for s in res.actions.skipped)


def test_english_counts_and_chances_read_as_english():
    rows = _validation().iloc[:2]  # one problem in July and August: "1 more period"
    f = summary.rank_findings(
        _only(validation_findings=rows), _entities(), CATALOG, quarter="2026Q3", language="en"
    ).table
    msg = f["message"].iloc[0]
    assert "1 more period:" in msg and "period(s)" not in msg
    res = summary.summarize(_decision_review("en"), _decision_inputs())
    text = " ".join(res.actions.to_frame()["message"])
    assert " a 8" not in text and "(s)" not in text and "probability of missing it is" in text


def test_chain_score_is_the_kpi_pages_score_rounded_the_same_way():
    # the KPI page's score of a unit is the sum of its year-to-date weighted scores, shown
    # through the report's one number formatter; the chain shows that figure, not a
    # recomputation from completions (which gave 95.30 beside the KPI page's 95.27)
    from perflink._report_format import fmt_number

    card = pd.DataFrame(
        [
            ("S01", "ytd", "sales", "business", 0.5, 0.9530, 0.9530, 47.636),
            ("S01", "ytd", "ebit", "financial", 0.5, 0.9530, 0.9530, 47.634),
            ("S01", "quarter", "ebit", "financial", 0.5, 1.2, 1.2, 60.0),
        ],
        columns=["entity_id", "scope", "metric_id", "category", "weight", "completion",
                 "attainment", "weighted_score"],
    )  # fmt: skip
    res = summary.summarize(_status_review("zh"), _inputs(scorecard=card))
    score = res.chain.table.set_index("entity_id").loc["S01", "score"]
    assert score == pytest.approx(95.27)
    data = next(iter(res.chain.chart().to_dict()["datasets"].values()))
    shown = {d["text"] for d in data if d["step"].startswith("3.")}
    assert shown == {fmt_number(95.27, None, "zh")} == {"95.27"}
    assert "95.27" in res.chain._repr_html_() and "95.30" not in res.chain._repr_html_()


def test_review_loop_tables_name_metrics_entities_and_tasks_in_words():
    from perflink.summary._results import LoopResult

    changes = pd.DataFrame(
        [("East Co.", "kpi", "high", "2026Q2", 2, "persisting", "open")],
        columns=["entity", "source_task", "severity", "first_seen", "quarters_open",
                 "loop_status", "message"],
    )  # fmt: skip
    errors = pd.DataFrame(
        [("S01", "ebit", "2026Q3", 100.0, 90.0, -10.0, -0.1, 3, 2)],
        columns=["entity_id", "metric_id", "period", "forecast", "actual", "fc_error",
                 "fc_error_pct", "fc_months", "fc_months_in_80"],
    )  # fmt: skip
    acc = pd.DataFrame(
        [("ebit", "subsidiary", 1, 0.1, -0.1, 0.67)],
        columns=["metric_id", "kind", "n", "fc_mape", "fc_bias", "coverage_80"],
    )
    loop = LoopResult(
        "/abs/reports/2026Q2/tables", pd.DataFrame(), changes, errors, acc, "en",
        metric_names={"ebit": "EBIT"}, entity_names={"S01": "East Co."}, units={"ebit": "kUSD"},
    )  # fmt: skip
    page = loop._repr_html_()
    assert "EBIT" in page and "East Co." in page and "USD 90.0 k" in page
    assert "Subsidiaries" in page and "Three-tier KPI decomposition and scoring" in page
    for code in ("ebit", "S01", ">kpi<", "subsidiary", "/abs/"):
        assert code not in page, code


def test_glossary_explains_headline_metrics_named_by_an_acronym():
    cat = _tiny_catalog(
        [*_TRUST, dict(id="gm", name_en="Gross margin return (GMROI)", unit="ratio", tier=1)]
    )
    att = pd.concat(
        [_group_attribution(), _group_attribution().assign(metric_id="gm")], ignore_index=True
    )
    review = _status_review("en")
    review.catalog = cat
    res = summary.summarize(review, _decision_inputs(attribution=att))
    assert [m.id for m in res.glossary_metrics(cat)] == ["ebit", "gm"]  # not "Sales"
    assert "eva" not in res.glossary_terms() and "roe" not in res.glossary_terms()


def test_chain_chart_of_a_large_group_shows_the_twelve_worst_subsidiaries():
    rows = [("G00", "集团", "Group", None, "group")]
    rows += [(f"S{i:02d}", f"子公司{i}", f"Sub {i}", "G00", "subsidiary") for i in range(30)]
    ents = pd.DataFrame(rows, columns=["entity_id", "name_zh", "name_en", "parent_id", "kind"])
    card = pd.DataFrame(
        [(f"S{i:02d}", "ytd", "sales", "business", 1.0, 0.9 + i / 100, 90.0 + i) for i in range(30)],
        columns=["entity_id", "scope", "metric_id", "category", "weight", "completion",
                 "weighted_score"],
    )  # fmt: skip
    review = _status_review("en")
    review.entities = ents.astype({"parent_id": object})
    res = summary.summarize(review, _inputs(scorecard=card))
    data = next(iter(res.chain.chart().to_dict()["datasets"].values()))
    shown = {d["entity"] for d in data}
    assert len(shown) == 12 and "Sub 0" in shown and "Sub 29" not in shown
    assert len(res.chain.view()) == 30  # the table (appendix) lists them all


def test_latin_names_are_spaced_in_chinese_sentences():
    # a company whose names are English (the retail example) read in Chinese
    review = _decision_review("zh")
    review.entities = review.entities.assign(name_zh=review.entities["name_en"])
    res = summary.summarize(review, _decision_inputs())
    assert res.decisions.tier1_sentence.startswith("Group 本季度 EBIT ")
    assert res.decisions.outlook_sentence.startswith("Group 2026年全年 EBIT 预计")
    bonus = res.decisions.table.set_index("action_id").loc["bonus", "decision"]
    assert bonus.startswith("East Co. 奖金池")


def test_in_quarter_reads_each_period_once_and_keeps_structural_findings():
    from perflink.summary._findings import in_quarter

    periods = pd.Series(
        ["2026-09", "2026-06", "2026Q3", "", None, np.nan, "not a month", "2026-09", "2026-06"],
        dtype=object,
    )
    got = in_quarter(periods, pd.Period("2026Q3", "Q"))
    # in or after the quarter, or without a (readable) period: open; before it: history
    assert got.tolist() == [True, False, True, True, True, True, True, True, False]
    assert got.dtype == bool
    assert in_quarter(periods.astype("str"), pd.Period("2026Q3", "Q")).tolist()[:3] == [
        True, False, True,
    ]  # fmt: skip
