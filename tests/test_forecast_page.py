"""Tests of what the forecast page shows (issue 19): reading layer, charts, words."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perflink import labels
from perflink.catalog import load_catalog
from perflink.errors import ParamsError
from perflink.forecast import BacktestResult, forecast_panel
from perflink.forecast._results import DEVIATION_TABLE_COLUMNS, FORECAST_COLUMNS
from perflink.options import ForecastOptions

CATALOG = load_catalog(Path(__file__).parents[1] / "perflink" / "data" / "catalog")
FAST = ForecastOptions(n_paths=200, backtest_origins=2)


def _tiny(n_units: int = 4, miss: float = 0.75, seed: int = 0):
    """``n_units`` sales units under subsidiary S1 and group G, budgets for every month of
    2025 and 2026; the odd units miss budget from 2026-02 by ``miss``."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range(end="2026-09", periods=45, freq="M")
    season = np.array([1.25, 1.15, 0.9, 0.9, 0.95, 1.1, 0.92, 0.92, 0.95, 1.0, 1.2, 1.26])
    units = [f"S1U{i}" for i in range(1, n_units + 1)]
    rows, targets = [], []
    for k, unit in enumerate(units):
        level = 400.0 + 100 * k
        for p in periods:
            base = level * season[p.month - 1]
            factor = miss if k % 2 and p >= pd.Period("2026-02", "M") else 1.0
            rev = base * factor * np.exp(rng.normal(0, 0.02))
            for metric, value in (("revenue", rev), ("cogs", 0.7 * rev), ("opex", 50.0)):
                rows.append((unit, p, metric, value + rng.normal(0, 0.5)))
        for p in pd.period_range("2025-01", "2026-12", freq="M"):
            base = level * season[p.month - 1]
            for metric, value in (("revenue", base), ("cogs", 0.7 * base), ("opex", 50.0)):
                targets.append((unit, p.year, p, metric, value, "budget"))
    facts = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    facts["period"] = facts["period"].astype("period[M]")
    tg = pd.DataFrame(
        targets, columns=["entity_id", "year", "period", "metric_id", "target", "kind"]
    )
    tg["period"] = pd.PeriodIndex(tg["period"], freq="M")
    n = len(units)
    entities = pd.DataFrame(
        {
            "entity_id": ["G", "S1", *units],
            "name_zh": [
                "集团",
                "子公司",
                *[f"华南制造有限公司东区营销中心第一分部销售{i}部" for i in range(n)],
            ],
            "name_en": [
                "Group",
                "Sub",
                *[f"South China Manufacturing Eastern Region Sales Dept {i}" for i in range(n)],
            ],
            "parent_id": [np.nan, "G", *["S1"] * n],
            "kind": ["group", "subsidiary", *["department"] * n],
            "center_type": [np.nan, np.nan, *["profit"] * n],
            "business_line": ["", "retail", *["retail"] * n],
        }
    )
    return facts, tg, entities


@pytest.fixture(scope="module", params=["zh", "en"])
def result(request):
    facts, targets, entities = _tiny()
    return forecast_panel(
        facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST,
        language=request.param, n_jobs=1,
    )  # fmt: skip


def _spec(chart) -> dict:
    return chart.to_dict()


def _data(spec: dict) -> list[dict]:
    """Rows of the chart's inline data (altair puts them in ``datasets``)."""
    return [row for rows in spec.get("datasets", {}).values() for row in rows]


def test_budget_line_covers_the_whole_fiscal_year(result):
    """Oct-Dec budgets exist: the history (and so the chart) carries them, with no actual."""
    h = result.history
    rest = h[(h["entity_id"] == "S1U1") & (h["metric_id"] == "revenue")]
    rest = rest[rest["period"] > pd.Period("2026-09", "M")]
    assert [str(p) for p in rest["period"]] == ["2026-10", "2026-11", "2026-12"]
    assert rest["budget"].notna().all() and rest["actual"].isna().all()
    budget = labels.t("forecast.legend.budget", result.language)
    months = {
        r["month"][:7]
        for r in _data(_spec(result.chart(role="sales")))
        if r.get("series") == budget and r.get("value") is not None
    }
    assert {"2026-10", "2026-11", "2026-12"} <= months


def test_fan_chart_has_a_legend_of_its_five_series(result):
    spec = _spec(result.chart(role="sales"))
    words = [
        labels.t(f"forecast.legend.{k}", result.language)
        for k in ("actual", "forecast", "budget", "band80", "band95")
    ]
    text = json.dumps(spec, ensure_ascii=False)
    domains = [
        layer["encoding"]["color"]["scale"]["domain"]
        for layer in spec["spec"]["layer"]
        if "color" in layer.get("encoding", {})
    ]
    assert domains and all(d == words for d in domains)
    assert all(layer["encoding"]["color"]["legend"] for layer in spec["spec"]["layer"])
    assert all(w in text for w in words)


def test_panels_draw_their_own_month_axis(result):
    """A last row with fewer panels leaves no orphan axis under an empty cell."""
    spec = _spec(result.chart(role="profit"))
    assert spec["resolve"]["axis"]["x"] == "independent"


def test_highlights_keep_the_top_rows_without_the_message(result):
    dev = result.deviation
    flagged = dev.flagged()
    assert len(flagged) >= 2
    top = dev.highlights(1)
    view = top.view()
    assert len(view) == 1
    assert not {"message", "status", "severity", "entity", "metric"} & set(view.columns)
    row = dev.view().iloc[0]
    assert view["entity_metric"].iloc[0] == f"{row['entity']} · {row['metric']}"
    assert "message" in dev.view().columns and len(dev.view()) == len(flagged)
    page = top._repr_html_()
    note = labels.t("forecast.text.top_rows", result.language, n=1, total=len(flagged))
    assert note in page.replace("&#x27;", "'")
    assert note not in dev._repr_html_().replace("&#x27;", "'")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ParamsError, match="whole number"):
            dev.highlights(bad)


def test_at_stake_chart_shortens_long_names_with_the_full_name_in_the_tooltip(result):
    spec = _spec(result.deviation.chart())
    rows = _data(spec)
    assert rows
    assert all(len(r["short"]) <= len(r["label"]) for r in rows)
    assert any(r["short"] != r["label"] for r in rows)  # the tiny names are long
    assert spec["encoding"]["y"]["field"] == "short"
    assert "label" in [t["field"] for t in spec["encoding"]["tooltip"]]


def test_mase_chart_names_metrics_on_its_axis_without_facet_headers():
    table = pd.DataFrame(
        {
            "metric_id": ["revenue", "revenue", "cogs"],
            "level": ["unit", "group", "unit"],
            "mase": [0.7, np.nan, 0.9],
            "mase_snaive": [1.2, np.nan, 1.1],
        }
    )
    names = {"revenue": "Revenue", "cogs": "Cost of goods sold"}
    spec = BacktestResult(table, "en", metric_names=names).chart().to_dict()
    text = json.dumps({k: v for k, v in spec.items() if k != "config"})  # the theme's own
    assert "facet" not in text and '"row"' not in text
    bars = spec["layer"][0]
    assert bars["encoding"]["y"]["field"] == "short" and "yOffset" in bars["encoding"]
    shown = {r["metric"] for r in _data(spec) if "metric" in r}
    assert shown == {"Revenue", "Cost of goods sold"}
    assert "MASE" not in spec["layer"][0]["encoding"]["x"]["title"]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_saved_column_has_a_header_in_words(lang):
    for col in [*DEVIATION_TABLE_COLUMNS, *FORECAST_COLUMNS, "p_from", "p_to"]:
        assert labels.column_label(col, lang) != col, col


def test_lead_and_backtest_words_have_no_jargon_on_the_reading_layer():
    for lang in ("zh", "en"):
        text = labels.t("forecast.text.backtest", lang) + labels.t("forecast.chart.backtest", lang)
        for word in ("MASE", "sMAPE", "WAPE", "季节性朴素", "seasonal naive"):
            assert word not in text


def test_money_at_stake_header_names_no_scale_its_values_do_not_have(result):
    """Values read "CNY 12.6 m" / "1,260 万元": a header "(CNY 10k)" would contradict them."""
    page = result.deviation.highlights()._repr_html_()
    assert "CNY 10k" not in page and "（万元）" not in page
    assert labels.t("forecast.col.at_stake", result.language) in page


def test_zh_sentences_space_english_metric_names():
    """A catalog with English metric names on a zh page: "为 Net sales、… 映射", not "为Net"."""
    from perflink.labels import spaced

    text = spaced("指标词典没有为Net sales、Cost of sales映射先行指标，2026年 1–2 个月", "zh")
    assert text == "指标词典没有为 Net sales、Cost of sales 映射先行指标，2026年 1–2 个月"
    assert spaced("Net sales营业", "en") == "Net sales营业"


def test_zh_warning_spaces_english_names(result):
    if result.language != "zh":
        pytest.skip("zh spacing")
    renamed = dict(result.metric_names, revenue="Net sales", cogs="Cost of sales")
    res = result.__class__(**{**vars(result), "metric_names": renamed, "leads": {}})
    text = str(res.warning()) + str(res.intro())
    assert "Net sales" in text
    assert re.search(r"[\u4e00-\u9fff][A-Za-z]|[A-Za-z][\u4e00-\u9fff]", text) is None
