"""Charts at scale: with hundreds of subsidiaries and thousands of units, charts draw the group,
the top subsidiaries and a distribution of units, never one mark series per unit."""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd
import pytest

from perflink import charts
from perflink.anomaly._results import AnomalyCounts
from perflink.errors import PerflinkError
from perflink.forecast._results import DeviationResult, ForecastResult
from perflink.scoring._result import ScorecardResult
from perflink.summary._results import ChainResult


def _spec(chart: alt.TopLevelMixin) -> dict:
    return chart.to_dict()


def _values(spec: dict) -> list[list[dict]]:
    """Every inline dataset of a spec (altair moves them to ``datasets``)."""
    return list(spec.get("datasets", {}).values())


def test_ranked_title_says_what_is_left_out():
    assert charts.ranked_title("T", shown=5, total=5, by="x", lang="en") == "T"
    title = charts.ranked_title("T", shown=8, total=286, by="at stake", lang="en").to_dict()
    assert title == {"text": "T", "subtitle": "Showing the top 8 of 286, by at stake"}
    zh = charts.ranked_title("标题", shown=8, total=286, by="风险金额", lang="zh").to_dict()
    assert zh["subtitle"] == "仅显示前 8 项（共 286 项），按风险金额排序"


def test_density_counts_every_point_in_a_bounded_grid():
    rng = np.random.default_rng(1)
    pts = pd.DataFrame({"a": rng.normal(1, 0.1, 5000), "b": rng.normal(1, 0.05, 5000)})
    pts.loc[0, "a"] = 40.0  # an outlier is counted in the edge cell, not a far-away one
    pts.loc[1, "b"] = np.nan  # left out
    spec = _spec(charts.density(pts, "a", "b", bins=10, x_title="A", y_title="B", lang="en"))
    (cells,) = _values(spec)
    assert len(cells) <= 100
    assert sum(c["n"] for c in cells) == 4999
    assert max(c["x1"] for c in cells) < 2  # the 99th percentile, not 40
    assert spec["encoding"]["color"]["title"] == "Units"


def test_density_bad_input():
    with pytest.raises(PerflinkError, match="'b'"):
        charts.density(pd.DataFrame({"a": [1.0]}), "a", "b", x_title="A", y_title="B")
    empty = charts.density(pd.DataFrame({"a": [], "b": []}), "a", "b", x_title="A", y_title="B")
    assert _values(_spec(empty)) in ([[]], [])


def _scorecard(n_subs: int, units_per_sub: int) -> ScorecardResult:
    rng = np.random.default_rng(2)
    subs = [f"S{i:03d}" for i in range(n_subs)]
    units = [f"{s}D{j:02d}" for s in subs for j in range(units_per_sub)]
    ids = ["G", *subs, *units]
    parents = {"G": None, **dict.fromkeys(subs, "G"), **{u: u[:4] for u in units}}
    totals = pd.DataFrame(
        {
            "entity_id": ids,
            "scope": "ytd",
            "scheme_id": "P",
            "business_completion": rng.normal(1, 0.05, len(ids)),
            "financial_completion": rng.normal(1, 0.05, len(ids)),
            "management_completion": 1.0,
            "score": rng.uniform(60, 110, len(ids)),
            "score_before": 100.0,
        }
    )
    totals.loc[1, "financial_completion"] = -6.0  # an outlier subsidiary
    pools = ["G", *subs]
    bonus = pd.DataFrame(
        {
            "entity_id": pools,
            "kind": "pool",
            "payout": [1000.0 * n_subs, *rng.uniform(50, 150, n_subs)],
            "pool_budget": [1100.0 * n_subs, *([100.0] * n_subs)],
        }
    )
    bonus["overrun"] = bonus["payout"] - bonus["pool_budget"]
    empty = pd.DataFrame()
    return ScorecardResult(
        quarter="2026Q3",
        language="en",
        scorecard=empty,
        totals=totals,
        audit=empty,
        bonus=bonus,
        tenure=empty,
        scheme_checks=empty,
        findings=empty,
        names={e: f"name {e}" for e in ids},
        parents=parents,
    )


def test_score_chain_small_group_keeps_one_dot_per_entity():
    spec = _spec(_scorecard(3, 4).chart())
    assert spec["mark"]["type"] == "circle"
    assert len(_values(spec)[0]) == 1 + 3 + 12


def test_score_chain_large_group_is_a_distribution_with_few_dots():
    result = _scorecard(40, 10)  # 400 units
    spec = _spec(result.chart())
    cloud, dots = spec["layer"]
    assert cloud["mark"]["type"] == "rect" and dots["mark"]["type"] == "circle"
    datasets = {k: v for k, v in spec["datasets"].items()}
    dot_rows = datasets[dots["data"]["name"]]
    assert len(dot_rows) == 1 + 15  # the group and the 15 lowest-scoring subsidiaries
    subs = [r for r in dot_rows if r["entity_id"] != "G"]
    chain = result.chain().set_index("entity_id")
    lowest = chain.loc[[f"S{i:03d}" for i in range(40)], "score"].nsmallest(15)
    assert {r["entity_id"] for r in subs} == set(lowest.index)
    # the outlier subsidiary (if shown) is drawn at the edge, its tooltip keeps the value
    for r in dot_rows:
        assert r["y"] > 0.5
    assert "top 15 of 40" in json.dumps(spec["title"])


def test_bonus_chart_large_group_ranks_pools_by_overrun():
    result = _scorecard(40, 2)
    spec = _spec(result.bonus_chart())
    group, ranked = spec["vconcat"]
    names = ranked["encoding"]["y"]["sort"]
    top = result.bonus.iloc[1:].nlargest(15, "overrun")["entity_id"]
    assert names == [f"name {e}" for e in top]
    assert "top 15 of 40" in json.dumps(spec["title"])
    small = _spec(_scorecard(5, 2).bonus_chart())
    assert "vconcat" not in small and small["title"] == "Bonus payout vs pool budget"


def _forecast(n_subs: int) -> ForecastResult:
    subs = [f"S{i:02d}" for i in range(n_subs)]
    ids = ["G", *subs]
    table = pd.DataFrame(
        {
            "entity_id": ids,
            "metric_id": "revenue",
            "kind": ["group", *(["subsidiary"] * n_subs)],
            "at_stake": [0.0, *np.arange(n_subs, dtype=float)],
        }
    )
    months = pd.period_range("2026-01", periods=9, freq="M")
    history = pd.DataFrame(
        [(e, "revenue", p, 1.0, 1.0) for e in ids for p in months],
        columns=["entity_id", "metric_id", "period", "actual", "budget"],
    )
    future = pd.period_range("2026-10", periods=3, freq="M")
    forecast = pd.DataFrame(
        [(e, "revenue", p, 1.0, 0.9, 1.1, 0.8, 1.2) for e in ids for p in future],
        columns=["entity_id", "metric_id", "period", "mean", "lo_80", "hi_80", "lo_95", "hi_95"],
    )
    names = {e: f"n{e}" for e in ids}
    deviation = DeviationResult(table=table, names=names, metric_names={}, language="en")
    return ForecastResult(
        forecast=forecast,
        history=history,
        deviation=deviation,
        quarter="2026Q3",
        year=2026,
        names=names,
        metric_names={"revenue": "Revenue"},
        language="en",
    )


def test_fan_chart_large_group_shows_group_and_subsidiaries_most_at_stake():
    spec = _spec(_forecast(30).chart(metric="revenue"))
    panels = spec["facet"]["sort"]
    assert panels == ["nG", *(f"nS{i:02d}" for i in range(29, 21, -1))]
    assert "top 8 of 30" in json.dumps(spec["title"])
    (rows,) = _values(spec)
    assert {r["entity"] for r in rows} == set(panels)


def test_fan_chart_small_group_keeps_every_subsidiary():
    spec = _spec(_forecast(5).chart(metric="revenue"))
    assert "sort" not in spec["facet"]
    assert {r["entity"] for r in _values(spec)[0]} == {"nG", *(f"nS{i:02d}" for i in range(5))}


def test_anomaly_counts_large_group_top_subsidiaries():
    table = pd.DataFrame(
        {
            "parent_id": [f"S{i:02d}" for i in range(30) for _ in range(2)],
            "subsidiary": [f"sub {i}" for i in range(30) for _ in range(2)],
            "source_system": ["ERP", "CRM"] * 30,
            "n": [i for i in range(30) for _ in range(2)],
            "n_high": 0,
            "n_explained": 0,
        }
    )
    spec = _spec(AnomalyCounts(table=table, language="en").chart())
    (rows,) = _values(spec)
    assert {r["parent_id"] for r in rows} == {f"S{i:02d}" for i in range(10, 30)}
    assert "top 20 of 30" in json.dumps(spec["title"])


def test_summary_chain_large_group_worst_status_first():
    n = 30
    status = (["met", "near_miss", "missed"] * n)[:n]
    table = pd.DataFrame(
        {
            "entity_id": [f"S{i:02d}" for i in range(n)],
            "entity": [f"sub {i}" for i in range(n)],
            "business_completion": 1.0,
            "financial_completion": 1.0,
            "score": 100.0,
            "fy_deviation_pct": 0.0,
            "status_business": status,
            "status_financial": status,
            "status_score": status,
            "status_projection": status,
            "status": status,
        }
    )
    spec = _spec(ChainResult(table=table, language="en").chart())
    (rows,) = _values(spec)
    shown = {r["entity"] for r in rows}
    assert len(shown) == 12  # as many as the KPI page's chain (e1e2cc8: the summary prints to 3)
    reds = {f"sub {i}" for i in range(n) if status[i] == "missed"}
    assert len(reds) == 10 and reds <= shown
    assert "Showing the top 12 of 30, by Status" in json.dumps(spec, ensure_ascii=False)
