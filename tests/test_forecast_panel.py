"""Tests of the panel layer of perflink.forecast (forecast_panel, backtest_panel)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from perflink.catalog import Catalog, Metric, MetricMapping, load_catalog
from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.forecast import (
    BacktestResult,
    ForecastResult,
    backtest_panel,
    forecast_panel,
)
from perflink.forecast import _models as _fm
from perflink.forecast._season import pooled_indices
from perflink.options import ForecastOptions

CATALOG = load_catalog(Path(__file__).parents[1] / "perflink" / "data" / "catalog")
FAST = ForecastOptions(n_paths=200, backtest_origins=2)


# ----------------------------------------------------------------------------- tiny frames
def _tiny(miss: float = 1.0, months: int = 45, seed: int = 0):
    """Two sales units (S1U1, S1U2) in subsidiary S1 under group G; U2 misses from 2026-02."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range(end="2026-09", periods=months, freq="M")
    season = np.array([1.25, 1.15, 0.9, 0.9, 0.95, 1.1, 0.92, 0.92, 0.95, 1.0, 1.2, 1.26])
    rows, targets = [], []
    for unit, level in (("S1U1", 500.0), ("S1U2", 800.0)):
        for p in periods:
            base = level * season[p.month - 1]
            factor = miss if unit == "S1U2" and p >= pd.Period("2026-02", "M") else 1.0
            rev = base * factor * np.exp(rng.normal(0, 0.02))
            for metric, value in (("revenue", rev), ("cogs", 0.7 * rev), ("opex", 50.0)):
                rows.append(
                    (unit, p, metric, value + (rng.normal(0, 1) if metric == "opex" else 0))
                )
            rows.append((unit, p, "new_contract_amount", base * factor))
        for p in pd.period_range("2025-01", "2026-12", freq="M"):
            base = level * season[p.month - 1]
            for metric, value in (("revenue", base), ("cogs", 0.7 * base), ("opex", 50.0)):
                targets.append((unit, p.year, p, metric, value, "budget"))
            targets.append((unit, p.year, p, "new_contract_amount", base, "budget"))
        targets.append((unit, 2026, pd.NaT, "revenue", level * season.sum() * 1.02, "assessment"))
    facts = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    facts["period"] = facts["period"].astype("period[M]")
    tg = pd.DataFrame(
        targets, columns=["entity_id", "year", "period", "metric_id", "target", "kind"]
    )
    tg["period"] = pd.PeriodIndex(tg["period"], freq="M")
    entities = pd.DataFrame(
        {
            "entity_id": ["G", "S1", "S1U1", "S1U2"],
            "name_zh": ["集团", "子公司", "一部", "二部"],
            "name_en": ["Group", "Sub", "Unit 1", "Unit 2"],
            "parent_id": [np.nan, "G", "S1", "S1"],
            "kind": ["group", "subsidiary", "department", "department"],
            "center_type": [np.nan, np.nan, "profit", "profit"],
            "business_line": ["", "retail", "retail", "retail"],
        }
    )
    return facts, tg, entities


@pytest.fixture(scope="module")
def tiny_result() -> ForecastResult:
    facts, targets, entities = _tiny(miss=0.75)
    return forecast_panel(
        facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST, language="en", n_jobs=1
    )


def test_forecast_panel_tables(tiny_result):
    fc = tiny_result.to_frame()
    assert list(fc.columns) == [
        "entity_id", "metric_id", "period", "mean", "lo_80", "hi_80", "lo_95", "hi_95", "method"
    ]  # fmt: skip
    assert set(fc["period"].astype(str)) == {"2026-10", "2026-11", "2026-12"}
    assert set(fc["entity_id"]) == {"G", "S1", "S1U1", "S1U2"}
    assert (fc["lo_95"] <= fc["lo_80"]).all() and (fc["lo_80"] <= fc["hi_80"]).all()
    # bottom-up: the subsidiary's revenue mean is the sum of its units'
    rev = fc[fc["metric_id"] == "revenue"].set_index(["entity_id", "period"])["mean"]
    units = rev.loc["S1U1"] + rev.loc["S1U2"]
    np.testing.assert_allclose(rev.loc["S1"].to_numpy(), units.to_numpy())


def test_deviation_flags_the_miss(tiny_result):
    dev = tiny_result.deviation.to_frame()
    for col in ("entity_id", "period", "metric_id", "severity", "message", "p_meet_budget"):
        assert col in dev
    assert set(dev["period"]) == {"2026Q3"}
    row = dev[(dev["entity_id"] == "S1U2") & (dev["metric_id"] == "revenue")].iloc[0]
    assert row["severity"] == "high"
    assert row["deviation_pct"] < -0.15 and row["p_meet_budget"] < 0.05
    assert "Leading indicator" in row["message"] and "-25%" in row["message"]
    ok = dev[(dev["entity_id"] == "S1U1") & (dev["metric_id"] == "revenue")].iloc[0]
    assert ok["severity"] == "info" and abs(ok["deviation_pct"]) < 0.03
    assert tiny_result.deviation.top() == ["S1U2"]
    # assessment target is given for revenue: 2% above budget
    np.testing.assert_allclose(ok["assessment"], 500 * 12.5 * 1.02)
    assert ok["p_meet_assessment"] <= ok["p_meet_budget"]


def test_profit_is_consistent_with_flows(tiny_result):
    dev = tiny_result.deviation.to_frame().set_index(["entity_id", "metric_id"])
    for ent in ("S1U1", "S1U2", "S1", "G"):
        rev, cogs, opex = (dev.loc[(ent, m), "projected"] for m in ("revenue", "cogs", "opex"))
        # every month is profitable here, so net profit = 0.75 * (revenue - cogs - opex) per path
        np.testing.assert_allclose(
            dev.loc[(ent, "net_profit"), "projected"], 0.75 * (rev - cogs - opex), rtol=1e-9
        )


def test_full_year_interval_from_paths_not_added_bounds(tiny_result):
    dev = tiny_result.deviation.to_frame().set_index(["entity_id", "metric_id"])
    fc = tiny_result.to_frame()
    part = fc[(fc["entity_id"] == "S1U1") & (fc["metric_id"] == "revenue")]
    width_added = (part["hi_80"] - part["lo_80"]).sum()
    row = dev.loc[("S1U1", "revenue")]
    assert 0 < row["hi_80"] - row["lo_80"] < width_added


def test_results_present(tiny_result):
    assert "<table" in tiny_result._repr_html_()
    spec = tiny_result.chart().to_dict()
    assert "facet" in spec
    assert tiny_result.deviation.chart().to_dict()["mark"]["type"] == "bar"


def test_same_seed_same_numbers():
    facts, targets, entities = _tiny(miss=0.75)
    a = forecast_panel(facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1)
    b = forecast_panel(facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1)
    pd.testing.assert_frame_equal(a.deviation.to_frame(), b.deviation.to_frame())


def test_short_and_intermittent_series_fall_back():
    facts, targets, entities = _tiny(months=15)
    zero = (facts["entity_id"] == "S1U1") & (facts["metric_id"] == "opex")
    facts.loc[zero & (facts.index % 2 == 0), "value"] = 0.0
    res = forecast_panel(facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST)
    fc = res.to_frame()
    methods = fc.set_index(["entity_id", "metric_id"])["method"]
    assert methods.loc[("S1U1", "opex")].iloc[0] == "intermittent_mean"
    assert np.isfinite(fc["mean"]).all()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (dict(quarter="2026-07"), ParamsError),
        (dict(options=ForecastOptions(miss_pct=2.0)), ParamsError),
        (dict(options=ForecastOptions(metrics=("cost_ratio",))), ParamsError),
        # the profit metric needs every flow of its formula
        (
            dict(options=ForecastOptions(metrics=("revenue",), profit_metric="net_profit")),
            ParamsError,
        ),
        (dict(facts=pd.DataFrame({"entity_id": []})), InputError),
    ],
)
def test_forecast_panel_bad_input(change, error):
    facts, targets, entities = _tiny()
    kw = dict(quarter="2026Q3", options=FAST)
    if "facts" in change:
        facts = change.pop("facts")
    kw.update(change)
    with pytest.raises(error) as exc:
        forecast_panel(facts, targets, entities, CATALOG, **kw)
    assert isinstance(exc.value, PerflinkError)


def test_backtest_panel_works_and_rejects_bad_input():
    facts, targets, entities = _tiny()
    bt = backtest_panel(
        facts, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1, language="en",
        targets=targets,
    )  # fmt: skip
    assert isinstance(bt, BacktestResult)
    full = bt.to_frame()
    # every forecast metric, the profit metric too, at every level
    assert set(zip(full["metric_id"], full["level"], strict=True)) == {
        (m, lv)
        for m in ("revenue", "cogs", "opex", "net_profit")
        for lv in ("unit", "subsidiary", "group")
    }
    assert (full["n_rows"] > 0).all() and full["fy_coverage_95"].between(0, 1).all()
    assert (full["fy_coverage_80"] <= full["fy_coverage_95"]).all()
    assert full.loc[full["level"] != "unit", "mase"].isna().all()
    cal = bt.calibration
    assert cal["n_rows"].sum() > 0 and cal["share_met"].dropna().between(0, 1).all()
    assert "forecast_backtest_calibration" in bt.tables()
    t = full[full["level"] == "unit"].set_index("metric_id")
    assert t.loc["revenue", "n_series"] == 2 and t.loc["revenue", "n_origins"] == 2
    assert t.loc["revenue", "mase"] < t.loc["revenue", "mase_snaive"]
    assert 0 <= t.loc["revenue", "coverage_80"] <= t.loc["revenue", "coverage_95"] <= 1
    assert "<table" in bt._repr_html_() and bt.chart().to_dict()
    page, chart = bt._repr_html_(), json_spec(bt.chart())
    assert ">Revenue<" in page and ">revenue<" not in page  # names on the page, not ids
    assert "Revenue" in chart and '"revenue"' not in chart
    with pytest.raises(ParamsError):
        backtest_panel(
            facts, entities, CATALOG, quarter="2026Q3", options=ForecastOptions(n_paths=5)
        )


def test_pooled_seasonality_detects_three_years():
    """The ACF test misses a clear yearly pattern in 36 months; the pooled ANOVA finds it."""
    rng = np.random.default_rng(1)
    season = np.array([0.85, 0.7, 1.0, 1.0, 1.02, 1.05, 0.98, 0.97, 1.03, 1.05, 1.1, 1.25])
    trend = 1.1 ** (np.arange(36) / 12)
    y = 100 * (np.tile(season, 3) * trend)[None, :] * np.exp(rng.normal(0, 0.12, (8, 36)))
    assert sum(_fm.seasonality_test(row, 12) for row in y) <= 4
    idx, p = pooled_indices(y, np.array(["a"] * 8), 1)
    assert (p < 0.01).all()
    np.testing.assert_allclose(idx[0], season / season.mean(), atol=0.08)
    noise = 100 * np.exp(rng.normal(0, 0.05, (8, 36)))
    idx0, _ = pooled_indices(noise, np.array(["a"] * 8), 1)
    np.testing.assert_array_equal(idx0, 1.0)


def _pooled_reference(values, groups, first_month, alpha=0.01):
    """The ANOVA group by group, as pooled_indices computed it before it was vectorised."""
    from scipy.stats import f as f_dist

    from perflink.forecast._season import ratios_to_trend

    ratio = ratios_to_trend(values)
    month = (first_month - 1 + np.arange(values.shape[1])) % 12
    codes, uniq = pd.factorize(pd.Series(groups), sort=False)
    rows, cols = np.nonzero(np.isfinite(ratio))
    frame = pd.DataFrame({"g": codes[rows], "m": month[cols], "r": ratio[rows, cols]})
    idx_g, p_g = np.ones((len(uniq), 12)), np.full(len(uniq), np.nan)
    if len(frame):
        cell = frame.groupby(["g", "m"])["r"].agg(["mean", "count", "var"])
        for g, (grand, n_tot) in frame.groupby("g")["r"].agg(["mean", "count"]).iterrows():
            c = cell.loc[g]
            k = len(c)
            if k < 12 or n_tot - k < 1:
                continue
            ssb = float((c["count"] * (c["mean"] - grand) ** 2).sum())
            ssw = float((c["var"].fillna(0.0) * (c["count"] - 1)).sum())
            if ssw <= 0:
                p = 0.0 if ssb > 0 else 1.0
            else:
                p = float(f_dist.sf((ssb / (k - 1)) / (ssw / (n_tot - k)), k - 1, n_tot - k))
            p_g[g] = p
            if p < alpha:
                s = c["mean"].reindex(range(12)).to_numpy(dtype=float)
                idx_g[g] = s / s.mean()
    return idx_g[codes], p_g[codes]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 30),
    t=st.integers(10, 40),
    n_groups=st.integers(1, 30),
    seasonal=st.booleans(),
    gaps=st.floats(0.0, 0.3),
    seed=st.integers(0, 2**32 - 1),
)
def test_pooled_indices_equal_group_by_group_anova(n, t, n_groups, seasonal, gaps, seed):
    # All groups are tested at once on (group x month) arrays; same bits as one at a time.
    rng = np.random.default_rng(seed)
    shape = 1 + 0.3 * seasonal * np.sin(2 * np.pi * np.arange(t) / 12)
    y = rng.lognormal(3.0, 0.2, (n, t)) * shape
    y[rng.random((n, t)) < gaps] = np.nan
    if seed % 5 == 0:
        y[0] = 7.0  # a flat series: no variance within months
    groups = np.array([f"g{i % n_groups}" for i in range(n)], dtype=object)
    first = 1 + seed % 12
    got, want = pooled_indices(y, groups, first), _pooled_reference(y, groups, first)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.view(np.int64), b.view(np.int64))


# ------------------------------------------------------------- another company's catalog
def _metric(mid: str, unit: str = "kUSD", **kw) -> Metric:
    base = dict(
        id=mid,
        name_en=mid.replace("_", " ").capitalize(),
        definition="d",
        caliber="c",
        unit=unit,
        owner="o",
        source_system="derived" if "formula" in kw else "ERP",
        direction="higher",
        tier=1,
        category="financial",
    )
    return Metric(**(base | kw))


def _own_catalog(*, roles: bool = True, lag: int = 1) -> Catalog:
    """A kUSD company: result = gross - overheads, gross = turnover - bought_in (nested);
    bookings (orders) lead turnover by ``lag`` months."""
    metrics = [
        _metric("turnover", role="sales" if roles else None),
        _metric("bought_in", direction="lower"),
        _metric("overheads", direction="lower"),
        _metric("gross", formula="turnover - bought_in"),
        _metric("result", formula="gross - overheads", role="profit" if roles else None),
        _metric("bookings", unit="orders"),
    ]
    mapping = MetricMapping(
        id="M1", driver="bookings", target="turnover", sign=1, lag=lag, mechanism="m"
    )
    return Catalog(
        metrics={m.id: m for m in metrics}, mappings=[mapping], rules=[], policy=CATALOG.policy
    )


_OWN_IDS = {
    "revenue": "turnover",
    "cogs": "bought_in",
    "opex": "overheads",
    "new_contract_amount": "bookings",
}


def _own_tiny(miss: float = 0.75):
    facts, targets, entities = _tiny(miss=miss)
    facts["metric_id"] = facts["metric_id"].map(_OWN_IDS)
    targets["metric_id"] = targets["metric_id"].map(_OWN_IDS)
    return facts, targets, entities


def _own(lang: str = "en", *, miss: float = 0.75, **catalog_kw) -> ForecastResult:
    facts, targets, entities = _own_tiny(miss)
    return forecast_panel(
        facts,
        targets,
        entities,
        _own_catalog(**catalog_kw),
        quarter="2026Q3",
        options=FAST,
        language=lang,
        n_jobs=1,
    )


@pytest.fixture(scope="module")
def own_en() -> ForecastResult:
    return _own("en")


def test_options_come_from_the_catalog(own_en):
    assert own_en.options.metrics == ("turnover", "bought_in", "overheads")
    assert own_en.options.profit_metric == "result"
    assert own_en.role_metric("sales") == "turnover" and own_en.role_metric("profit") == "result"
    assert set(own_en.to_frame()["metric_id"]) == {"turnover", "bought_in", "overheads", "result"}


def test_nested_profit_is_its_formula_of_the_flows(own_en):
    dev = own_en.deviation.to_frame().set_index(["entity_id", "metric_id"])
    dev = dev[["projected", "ytd_actual", "budget"]]
    for ent in ("S1U1", "S1U2", "S1", "G"):
        flows = {m: dev.loc[(ent, m)] for m in ("turnover", "bought_in", "overheads")}
        gross = flows["turnover"] - flows["bought_in"]
        for col in ("projected", "ytd_actual", "budget"):
            np.testing.assert_allclose(
                dev.loc[(ent, "result"), col], gross[col] - flows["overheads"][col], rtol=1e-9
            )


def test_derive_evaluates_intermediate_formulas_per_path():
    from perflink.forecast._panel import derive

    rng = np.random.default_rng(0)
    paths = {m: rng.normal(100, 10, (3, 50, 4)) for m in ("turnover", "bought_in", "overheads")}
    got = derive(_own_catalog(), "result", paths)
    want = paths["turnover"] - paths["bought_in"] - paths["overheads"]
    assert got.shape == (3, 50, 4)
    np.testing.assert_allclose(got, want)


def test_leading_indicator_of_another_metric_in_the_driver_unit(own_en):
    dev = own_en.deviation.to_frame()
    row = dev[(dev["entity_id"] == "S1U2") & (dev["metric_id"] == "turnover")].iloc[0]
    assert row["severity"] == "high"
    lead = row["message"].split("Leading indicator:")[1]
    # bookings are orders: the quote is in orders, not in the metric's money unit
    assert "Bookings" in lead and "orders" in lead and "USD" not in lead and "-25%" in lead
    assert "Turnover follows it by 1–2 months" in lead
    assert np.isfinite(row["lead_recent"])
    others = dev[dev["metric_id"] != "turnover"]
    assert others["lead_recent"].isna().all()
    assert own_en.leads == {"turnover": ("bookings", 1)}
    text = str(own_en.warning())
    assert "Warnings on Turnover also quote its leading indicator, Bookings" in text


def test_drilldown_shows_each_flagged_unit_on_its_flagged_metric(own_en):
    spec = own_en.drilldown().to_dict()
    (rows,) = spec["datasets"].values()
    assert {r["entity"] for r in rows} == {"Unit 2 · Turnover"}
    assert spec["facet"]["sort"] == ["Unit 2 · Turnover"]
    calm = _own("en", miss=1.0)
    assert calm.deviation.flagged().empty
    assert "No entity is flagged." in json_spec(calm.drilldown())
    assert "No entity is flagged." in json_spec(calm.deviation.chart())


def test_no_leading_indicator_is_said():
    res = _own("en", lag=0)  # a same-month driver is no leading indicator
    assert res.leads == {}
    assert res.deviation.to_frame()["lead_recent"].isna().all()
    assert "No leading indicator is mapped to Turnover, Bought in, Overheads" in str(res.warning())
    assert "Leading indicator" not in " ".join(res.deviation.to_frame()["message"])


@pytest.mark.parametrize(("lang", "currency"), [("en", "USD"), ("zh", "美元")])
def test_amounts_in_the_catalog_currency(lang, currency):
    res = _own(lang)
    messages = " ".join(res.deviation.to_frame()["message"])
    page = res.deviation._repr_html_()
    for text in (messages, page):
        assert currency in text
        assert "万元" not in text and "CNY" not in text
    fan = json_spec(res.chart(role="sales"))
    at_stake = json_spec(res.deviation.chart())
    for spec in (fan, at_stake):
        assert "CNY" not in spec and "元" not in spec.replace("美元", "")
    if lang == "en":
        assert "'USD '" in fan and "'USD '" in at_stake  # axis labels: USD 250k
    else:
        assert "（美元）" in fan and "（美元）" in at_stake  # axis titles name the currency


def json_spec(chart) -> str:
    import json

    return json.dumps(chart.to_dict(), ensure_ascii=False)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_catalog_without_roles_has_nothing_to_project(lang):
    facts, targets, entities = _own_tiny()
    catalog = _own_catalog(roles=False)
    res = forecast_panel(
        facts, targets, entities, catalog, quarter="2026Q3", options=FAST, language=lang
    )
    assert res.nothing and res.to_frame().empty and res.deviation.to_frame().empty
    assert list(res.to_frame().columns)[:3] == ["entity_id", "metric_id", "period"]
    intro = str(res.intro())
    assert "role: profit" in intro and "forecast.metrics" in intro
    assert ("Nothing to project" if lang == "en" else "没有可预测的指标") in intro
    short = "Nothing to project" if lang == "en" else "没有可预测的指标"
    for chart in (res.chart(role="sales"), res.chart(role="profit"), res.drilldown()):
        assert short in json_spec(chart)
    assert short in res.deviation._repr_html_() and short in str(res.warning())
    bt = backtest_panel(facts, entities, catalog, quarter="2026Q3", options=FAST, language=lang)
    assert bt.to_frame().empty and short in bt._repr_html_() and short in json_spec(bt.chart())
    # the empty tables keep their columns, so the findings contract and the summary read them
    from perflink.common import check_findings

    check_findings(res.deviation.to_frame(), "forecast_deviation")


def test_missing_role_or_flows_give_a_sentence_or_a_clear_error():
    facts, targets, entities = _own_tiny()
    catalog = _own_catalog()
    # forecasting the costs only: no sales chart, a sentence saying why
    opts = FAST.model_copy(update={"metrics": ("bought_in", "overheads"), "profit_metric": ""})
    res = forecast_panel(
        facts, targets, entities, catalog, quarter="2026Q3", options=opts, language="en"
    )
    assert "Turnover is not among the metrics forecast" in json_spec(res.chart(role="sales"))
    assert "Result is not among the metrics forecast" in json_spec(res.chart(role="profit"))
    assert "facet" in res.chart(metric="overheads").to_dict()
    with pytest.raises(ParamsError, match="lacks \\['turnover'\\]"):
        forecast_panel(
            facts,
            targets,
            entities,
            catalog,
            quarter="2026Q3",
            options=opts.model_copy(update={"profit_metric": "result"}),
        )
    with pytest.raises(ParamsError) as exc:
        forecast_panel(
            facts,
            targets,
            entities,
            _own_catalog(roles=False),
            quarter="2026Q3",
            options=FAST.model_copy(update={"profit_metric": "result"}),
        )
    assert "forecast.metrics: empty" in str(exc.value) and "revenue" not in str(exc.value)
    with pytest.raises(ParamsError, match="role 'cost'"):
        res.chart(role="cost")
    # a profit read at another month cannot be simulated path by path
    lagged = _own_catalog()
    growth = _metric("growth", formula="result - lag(turnover, 12)")
    lagged = lagged.model_copy(update={"metrics": {**lagged.metrics, "growth": growth}})
    with pytest.raises(ParamsError, match="reads earlier months"):
        forecast_panel(
            facts,
            targets,
            entities,
            lagged,
            quarter="2026Q3",
            options=FAST.model_copy(update={"profit_metric": "growth"}),
        )


def test_retail_example_forecasts_its_nested_profit(tmp_path):
    import perflink
    from perflink import sample
    from perflink.forecast import _joint

    params = sample.generate(tmp_path / "retail", example="retail")
    review = perflink.open_review(params, language="en")
    res = forecast_panel(
        review.facts,
        review.targets,
        review.entities,
        review.catalog,
        quarter=review.quarter,
        options=ForecastOptions(n_paths=200),
        n_jobs=1,
        language="en",
    )
    flows = ["net_sales", "cost_of_sales", "store_opex", "marketing_spend"]
    flows += ["fulfilment_cost", "admin_expense"]
    assert list(res.options.metrics) == flows and res.options.profit_metric == "operating_income"
    dev = res.deviation.to_frame().set_index(["entity_id", "metric_id"])["projected"]
    entities = dev.xs("operating_income", level="metric_id").index
    assert len(entities) >= 5
    for ent in entities:
        f = {m: dev.get((ent, m), 0.0) for m in flows}
        gross_margin = f["net_sales"] - f["cost_of_sales"]
        contribution = gross_margin - f["store_opex"] - f["marketing_spend"]
        np.testing.assert_allclose(
            dev.loc[(ent, "operating_income")],
            contribution - f["fulfilment_cost"] - f["admin_expense"],
            rtol=1e-9,
        )
    # the monthly profit table is the formula of the flows' paths: its mean too
    fc = res.to_frame().set_index(["entity_id", "metric_id", "period"])["mean"]
    group = review.root_id
    oi = fc.xs((group, "operating_income"), level=("entity_id", "metric_id"))
    assert len(oi) == 3 and oi.notna().all()
    assert "No leading indicator is mapped to Net sales" in str(res.warning())
    assert "USD" in res.deviation._repr_html_() and "CNY" not in res.deviation._repr_html_()
    # flows that fewer units report than a unit factor's plain quantile needs: named, with
    # as many units as report them in the quarter
    facts = review.facts[review.facts["period"].astype(str) <= "2026-09"]
    units = set(review.entities.loc[review.entities["kind"] == "department", "entity_id"])
    reporting = facts[facts["entity_id"].isin(units)].groupby("metric_id")["entity_id"].nunique()
    few = {m: int(reporting[m]) for m in flows if reporting[m] < _joint.FEW_ROWS}
    assert few and res.few_units == few  # the profit: every unit with a flow has it
    assert f"Fewer than {_joint.FEW_ROWS} units report each of these metrics" in res.method().text


# ----------------------------------------------------------------------------- sample runs
@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from perflink import sample

    root = tmp_path_factory.mktemp("forecast_samples")
    out = {}
    for name, seed, clean in (
        ("s0", 0, False),
        ("s1", 1, False),
        ("s2", 2, False),
        ("clean", 0, True),
    ):
        out[name] = sample.generate(root / name, seed=seed, clean=clean)
    return out


def _run(params: Path):
    import perflink

    review = perflink.open_review(params, language="en")
    res = forecast_panel(
        review.facts,
        review.targets,
        review.entities,
        review.catalog,
        quarter=review.quarter,
        options=ForecastOptions(n_paths=500),
        n_jobs=1,
    )
    truth = yaml.safe_load((params.parent / "truth.yaml").read_text(encoding="utf-8"))
    dev = res.deviation.to_frame()
    rev = dev[(dev["metric_id"] == "revenue") & (dev["kind"] == "department")]
    return rev, truth["problems"]


@pytest.mark.parametrize("name", ["s0", "s1", "s2"])
def test_sample_budget_miss_is_flagged(samples, name):
    rev, problems = _run(samples[name])
    miss = next(p["entity_id"] for p in problems if p["kind"] == "budget_miss")
    row = rev[rev["entity_id"] == miss].iloc[0]
    # flagged; high only when the shortfall is material to the group (common.MATERIALITY)
    assert row["severity"] in ("high", "medium"), row["message"]
    assert row["deviation_pct"] < -0.10 and row["p_meet_budget"] < 0.05
    others = rev[rev["entity_id"] != miss]
    assert not (others["severity"] == "high").any()
    assert (others["severity"].isin(["high", "medium"])).sum() <= 2


def test_clean_sample_units_not_flagged_high(samples):
    rev, problems = _run(samples["clean"])
    assert problems == []
    assert not (rev["severity"] == "high").any()
    assert (rev["severity"] == "medium").sum() <= 2
    assert (rev["deviation_pct"] > -0.08).all()  # no unit projected far below budget


def test_one_progress_bar_per_task_reaches_exactly_its_total(samples, task_bars, stderr_bars):
    """The bar's total, counted before the work, is the work done: it ends at 100%."""
    import perflink

    review = perflink.open_review(samples["s0"], language="en")
    args = (review.facts, review.targets, review.entities, review.catalog)
    n_units = int(review.entities["kind"].eq("department").sum())
    runs = (
        ("forecast", ForecastOptions(n_paths=200)),  # calibration origins on every unit
        ("forecast backtest", ForecastOptions(n_paths=200)),  # cuts, origins, a shared cache
        ("forecast", ForecastOptions(n_paths=200, backtest_max_units=12)),  # a unit sample
        ("forecast backtest", ForecastOptions(n_paths=200, backtest_max_units=12)),
    )
    for desc, opts in runs:
        task_bars.clear()
        kw = dict(quarter=review.quarter, options=opts, n_jobs=1)
        if desc == "forecast":
            forecast_panel(*args, **kw)
        else:
            backtest_panel(*args[:1], *args[2:], targets=review.targets, **kw)
        assert [(b.desc, b.unit) for b in task_bars] == [(desc, "step")]  # no map's own bar
        bar = task_bars[0]
        assert bar.total > 3 * n_units  # every metric's series at least once
        assert bar.n == bar.total, (desc, opts.backtest_max_units)
    # a fourth-quarter review has no year left to calibrate on: units forecast and simulated
    facts, targets, entities = _tiny()
    task_bars.clear()
    forecast_panel(facts, targets, entities, CATALOG, quarter="2025Q4", options=FAST, n_jobs=1)
    assert [(b.n, b.total) for b in task_bars] == [(2 * 3 + 2, 2 * 3 + 2)]
    assert stderr_bars() == ""


def test_backtest_samples_units_of_large_groups(samples):
    """Above backtest_max_units a fixed stratified sample is backtested, and the table says so."""
    import perflink

    review = perflink.open_review(samples["s0"], language="en")
    args = (review.facts, review.entities, review.catalog)
    opts = ForecastOptions(n_paths=100, backtest_origins=1)
    runs = [
        backtest_panel(
            *args,
            quarter=review.quarter,
            options=opts.model_copy(update={"backtest_max_units": m}),
            n_jobs=1,
        ).to_frame()
        for m in (0, 12, 12)
    ]
    full, part, again = (r.iloc[0] for r in runs)
    n_units = int(review.entities["kind"].eq("department").sum())
    assert full["units_used"] == full["units_total"] == n_units
    assert part["units_total"] == n_units
    assert 6 <= part["units_used"] <= 18 and part["n_series"] <= part["units_used"]
    pd.testing.assert_frame_equal(runs[1], runs[2])  # the same units every run
    assert part["mase"] != full["mase"]


def test_a_run_forecasts_from_the_rows_of_its_metrics_only(samples, tmp_path):
    """In a run the forecast and its backtest read the facts and targets of the flows, the
    profit and the drivers that may lead a flow from the snapshot, never the whole inputs;
    their tables are those of the whole inputs."""
    import perflink
    from perflink import _review_inputs as ri
    from perflink.forecast import _panel as _fp
    from perflink.params import load_params

    params = load_params(samples["s0"])
    inputs, notes = ri.load(params, load_catalog(params.catalog_dir))
    ri.write_snapshot(inputs, notes, tmp_path / "snap", quarter=params.quarter)
    run = perflink.open_review(samples["s0"], snapshot_dir=tmp_path / "snap")
    files = perflink.open_review(samples["s0"])
    opts = ForecastOptions(n_paths=200, backtest_origins=1)
    got, want = (perflink.forecast.run(r, options=opts) for r in (run, files))
    back = perflink.forecast.backtest(run, options=opts)
    assert "_loaded" not in run.__dict__
    pd.testing.assert_frame_equal(got.to_frame(), want.to_frame())
    pd.testing.assert_frame_equal(got.deviation.to_frame(), want.deviation.to_frame())
    assert got.deviation.to_frame()["lead_recent"].notna().any()  # the drivers were read
    full = perflink.forecast.backtest(files, options=opts)
    pd.testing.assert_frame_equal(back.to_frame(), full.to_frame())
    read = _fp.metrics_read(run.catalog, opts.for_catalog(run.catalog))
    assert set(run.inputs_of(read).facts["metric_id"]) < set(files.facts["metric_id"])


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 40), st.integers(1, 5)),
    axis=st.integers(0, 2),
    gaps=st.sampled_from([0.0, 0.02, 0.5, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_nanquantile_equals_numpy(shape, axis, gaps, seed):
    # slices without NaN go through np.quantile in one call; the values must not move a bit
    import warnings

    from perflink.forecast import _panel as _fp
    from perflink.forecast._panel import nanquantile

    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(0, 100, shape), int(seed % 3))  # ties too
    x[rng.random(shape) < gaps] = np.nan
    q = [0.025, 0.1, 0.5, 0.9, 0.975]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices, as numpy warns
        got, want = nanquantile(x, q, axis=axis), np.nanquantile(x, q, axis=axis)
        # and over blocks of the first axis, as a large panel runs it
        block, _fp._QUANTILE_BLOCK = _fp._QUANTILE_BLOCK, 2
        try:
            blocks = nanquantile(x, q, axis=axis)
        finally:
            _fp._QUANTILE_BLOCK = block
    assert got.shape == want.shape == blocks.shape
    np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))
    np.testing.assert_array_equal(blocks.view(np.int64), want.view(np.int64))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 40), st.integers(1, 5)),
    gaps=st.sampled_from([0.0, 0.02, 0.5, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_path_means_over_blocks_of_entities_equal_numpy(shape, gaps, seed):
    # the profit's monthly mean, a block of entities at a time: the values must not move a bit
    import warnings

    from perflink.forecast import _panel as _fp

    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1e6, shape)
    x[rng.random(shape) < gaps] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices, as numpy warns
        block, _fp._QUANTILE_BLOCK = _fp._QUANTILE_BLOCK, 2
        try:
            got = _fp._nanmean_blocks(x)
        finally:
            _fp._QUANTILE_BLOCK = block
        want = np.nanmean(x, axis=1)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))


# ------------------------------------------------------------- issue 15: joint uncertainty
def _independent(months: int = 45, seed: int = 3):
    """Two units whose revenue, cogs and opex errors are independent of each other; unit
    S1U2 makes a loss (cogs above revenue), so the tax term max(profit, 0) bites unit by
    unit but not on the subsidiary's consolidated flows."""
    rng = np.random.default_rng(seed)
    periods = pd.period_range(end="2026-09", periods=months, freq="M")
    rows, targets = [], []
    for unit, level, cost in (("S1U1", 500.0, 0.6), ("S1U2", 300.0, 1.1)):
        walk = {m: np.cumsum(rng.normal(0, 0.03, months)) for m in ("revenue", "cogs", "opex")}
        for i, p in enumerate(periods):
            rev = level * np.exp(walk["revenue"][i])
            values = {
                "revenue": rev,
                "cogs": cost * level * np.exp(walk["cogs"][i]),
                "opex": 0.2 * level * np.exp(walk["opex"][i]),
            }
            rows += [(unit, p, m, v) for m, v in values.items()]
        for p in pd.period_range("2026-01", "2026-12", freq="M"):
            for m, v in (("revenue", level), ("cogs", cost * level), ("opex", 0.2 * level)):
                targets.append((unit, p.year, p, m, v, "budget"))
    facts = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    facts["period"] = facts["period"].astype("period[M]")
    tg = pd.DataFrame(
        targets, columns=["entity_id", "year", "period", "metric_id", "target", "kind"]
    )
    tg["period"] = pd.PeriodIndex(tg["period"], freq="M")
    _, _, entities = _tiny()
    return facts, tg, entities


def _fy_width(paths, steps):
    fy = paths[:, :, :steps].sum(axis=2)
    q = np.quantile(fy, [0.1, 0.9], axis=1)
    return q[1] - q[0]


def test_profit_interval_wider_than_shared_noise_when_errors_are_independent():
    """With one set of random numbers for every metric, profit = revenue - cogs - opex
    cancels most of the spread; independent errors must give a wider profit interval."""
    from perflink.forecast import _joint
    from perflink.forecast import _panel as _fp

    facts, _, entities = _independent()
    opts = ForecastOptions(n_paths=2000).for_catalog(CATALOG)
    wide = _fp.unit_panel(facts, pd.Period("2026-09", "M"), list(opts.metrics))
    fc = _fp.forecast_arrays(wide, entities, CATALOG, opts, 12, _fp.executor_of(None, 1))
    joint = _fp.draw_paths(fc, CATALOG, opts, 12)
    shared = dict(fc)  # the old scheme: every metric of a unit draws the same numbers
    shared["innov"] = {m: fc["innov"]["revenue"] for m in fc["innov"]}
    shared["innov_ok"] = {m: fc["innov_ok"]["revenue"] for m in fc["innov_ok"]}
    same = _joint.simulate(shared, CATALOG, opts, 12, derive=_fp.derive)
    unit = 0  # S1U1: profitable, so its profit is 0.75 * (revenue - cogs - opex) per path
    w_joint, w_same = _fy_width(joint["net_profit"], 12), _fy_width(same["net_profit"], 12)
    assert w_joint[unit] > 1.5 * w_same[unit]
    # the flows themselves keep their spread: only how they move together changed
    np.testing.assert_allclose(
        _fy_width(joint["revenue"], 12)[unit], _fy_width(same["revenue"], 12)[unit], rtol=0.1
    )
    # same seed, same paths; the draws do not depend on the ids
    again = _fp.draw_paths(fc, CATALOG, opts, 12)
    np.testing.assert_array_equal(again["net_profit"], joint["net_profit"])


def test_paths_simulated_a_block_of_units_at_a_time_are_the_whole_panels(monkeypatch):
    """simulate works through blocks of units to keep its temporaries small: blocks of one
    unit give every path, score and parent sum the whole panel gives, bit for bit,
    including a unit without innovations (normal draws) and rescaled spreads; so do the
    paths a calibration pass keeps apart (``cache``) and those drawn into their rows."""
    from perflink.forecast import _joint
    from perflink.forecast import _panel as _fp

    facts, _, entities = _independent()
    opts = ForecastOptions(n_paths=300).for_catalog(CATALOG)
    wide = _fp.unit_panel(facts, pd.Period("2026-09", "M"), list(opts.metrics))
    fc = _fp.forecast_arrays(wide, entities, CATALOG, opts, 6, _fp.executor_of(None, 1))
    # normal draws for one unit of cogs and both of opex (one stream, however cut)
    no = {"cogs": np.array([True, False]), "opex": np.array([False, False])}
    fc["innov_ok"] = {**fc["innov_ok"], **no}
    factors = {("revenue", "unit"): (1.3, 1.6), ("net_profit", "unit"): (1.2, 1.5)}
    n_e = len(fc["entity_ids"])
    realised = {m: np.linspace(1000.0, 2000.0, n_e) for m in (*opts.metrics, "net_profit")}

    def run(cache=None):
        learner = _joint.Learner({m: np.zeros(n_e) for m in realised}, realised, 3)
        paths = _joint.simulate(
            fc, CATALOG, opts, 6, derive=_fp.derive, factors=factors, learner=learner,
            cache=cache,
        )  # fmt: skip
        return paths, learner.scores

    whole, whole_scores = run()
    monkeypatch.setattr(_joint, "_CHUNK_UNITS", 1)
    cache: dict = {}
    for blocks, block_scores in (run(), run(cache), run(cache)):
        assert whole.keys() == blocks.keys() and whole_scores.keys() == block_scores.keys()
        for m in whole:
            np.testing.assert_array_equal(blocks[m], whole[m])
        for key in whole_scores:
            np.testing.assert_array_equal(block_scores[key][0], whole_scores[key][0])
            np.testing.assert_array_equal(block_scores[key][1], whole_scores[key][1])
    assert set(cache) == set(opts.metrics)  # the unit flows, kept as drawn


def _taxed_catalog() -> Catalog:
    """The sample catalog with net profit taxed on positive profit only: a formula that is
    not additive, so a parent's sum of unit profits differs from the formula on its flows."""
    metrics = dict(CATALOG.metrics)
    metrics["net_profit"] = metrics["net_profit"].model_copy(
        update={"formula": "(revenue - cogs - opex) - max(revenue - cogs - opex, 0) * 0.25"}
    )
    return CATALOG.model_copy(update={"metrics": metrics})


TAXED = _taxed_catalog()


@pytest.fixture(scope="module")
def loss_result() -> ForecastResult:
    facts, targets, entities = _independent()
    return forecast_panel(
        facts, targets, entities, TAXED, quarter="2026Q3", options=FAST, language="en", n_jobs=1
    )


def test_parent_profit_is_the_sum_of_its_units(loss_result):
    """net_profit is aggregation: sum: a parent's figure is its units' sum (a tax on positive
    profit is charged unit by unit), not the formula on the consolidated flows."""
    dev = loss_result.deviation.to_frame().set_index(["entity_id", "metric_id"])
    for col in ("ytd_actual", "projected", "budget"):
        units = dev.loc[("S1U1", "net_profit"), col] + dev.loc[("S1U2", "net_profit"), col]
        np.testing.assert_allclose(dev.loc[("S1", "net_profit"), col], units, rtol=1e-9)
        np.testing.assert_allclose(dev.loc[("G", "net_profit"), col], units, rtol=1e-9)
    rev, cogs, opex = (dev.loc[("S1", m), "ytd_actual"] for m in ("revenue", "cogs", "opex"))
    pre_tax = rev - cogs - opex
    consolidated = pre_tax - max(pre_tax, 0) * 0.25
    assert abs(dev.loc[("S1", "net_profit"), "ytd_actual"] - consolidated) > 1.0
    hist = loss_result.history
    np_hist = hist[hist["metric_id"] == "net_profit"].pivot(
        index="period", columns="entity_id", values="actual"
    )
    np.testing.assert_allclose(np_hist["S1"], np_hist["S1U1"] + np_hist["S1U2"], rtol=1e-9)


def test_outlook_status_never_contradicts_the_probability(loss_result, tiny_result):
    from perflink.options import StatusOptions

    st_ = StatusOptions()
    for result in (loss_result, tiny_result):
        dev = result.deviation.to_frame()
        p = dev["p_meet_budget"]
        assert (p[dev["status"] == "on_track"] >= st_.on_track).all()
        assert (p[dev["status"] == "off_track"] < st_.off_track).all()
        at_risk = p[dev["status"] == "at_risk"]
        assert at_risk.between(st_.off_track, st_.on_track).all()
        # a flag is off track; the message quotes p as the table rounds it
        assert (dev.loc[dev["severity"].isin(["high", "medium"]), "status"] == "off_track").all()
        for row in dev[dev["p_meet_budget"].notna()].itertuples():
            assert f"{row.p_meet_budget:.1%}" in row.message
    # the thresholds come from the status: block
    facts, targets, entities = _tiny(miss=0.75)
    strict = forecast_panel(
        facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1,
        status=StatusOptions(on_track=0.999, off_track=0.998),
    )  # fmt: skip
    dev = strict.deviation.to_frame()
    assert (dev.loc[dev["p_meet_budget"] < 0.998, "status"] == "off_track").all()
    with pytest.raises(ParamsError, match="status"):
        forecast_panel(
            facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1,
            status={"on_track": 0.5},
        )  # fmt: skip


def test_favourable_deviation_has_no_money_at_stake(loss_result, tiny_result):
    for result in (loss_result, tiny_result):
        dev = result.deviation.to_frame()
        higher = dev["metric_id"].isin(["revenue", "net_profit"])
        adverse = np.where(higher, -dev["deviation"], dev["deviation"])
        favourable = adverse <= 0
        assert (dev.loc[favourable, "at_stake"] == 0).all()
        np.testing.assert_allclose(
            dev.loc[~favourable, "at_stake"], adverse[~favourable], rtol=1e-9
        )
    page = tiny_result.deviation._repr_html_()
    # each amount says its currency in the page's words; the header names no other scale
    assert ">At stake<" in page and "CNY 10k" not in page


def test_backtest_sample_does_not_depend_on_id_characters():
    from perflink.forecast._panel import sample_units

    units = [f"U{i:03d}" for i in range(40)]
    renamed = [f"Z{i:03d}x" for i in range(40)]
    picked = []
    for ids in (units, renamed):
        wide = pd.DataFrame(
            {"revenue": 1.0},
            index=pd.MultiIndex.from_product(
                [ids, pd.period_range("2026-01", periods=2, freq="M")],
                names=["entity_id", "period"],
            ),
        )
        ent = pd.DataFrame(
            {"entity_id": ids, "business_line": ["a", "b"] * 20, "center_type": "profit"}
        )
        kept = sample_units(wide, ent, 10).index.get_level_values("entity_id").unique()
        picked.append([ids.index(u) for u in kept])
    assert picked[0] == picked[1] and len(picked[0]) == 10
    # each stratum (even / odd positions here) keeps its share, spread evenly over it
    assert sorted(picked[0]) == [4, 5, 12, 13, 20, 21, 28, 29, 36, 37]


def test_backtest_panel_rejects_bad_targets():
    facts, targets, entities = _tiny()
    with pytest.raises(InputError, match="targets"):
        backtest_panel(
            facts, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1,
            targets=targets.drop(columns=["kind"]),
        )  # fmt: skip


@pytest.mark.parametrize("name", ["s0", "s1", "s2"])
def test_a_flagged_miss_is_high_only_when_material_to_the_group(samples, name):
    """high needs the shortfall to reach MATERIALITY of the group's full-year profit budget;
    a flagged miss below it is medium (clean groups: a unit's noise is no group problem)."""
    import perflink
    from perflink.common import MATERIALITY

    review = perflink.open_review(samples[name], language="en")
    dev = forecast_panel(
        review.facts, review.targets, review.entities, review.catalog,
        quarter=review.quarter, options=ForecastOptions(n_paths=500), n_jobs=1,
    ).deviation.to_frame()  # fmt: skip
    profit = review.catalog.role("profit")
    root = review.entities.loc[review.entities["parent_id"].isna(), "entity_id"].iloc[0]
    base = abs(dev.loc[(dev["entity_id"] == root) & (dev["metric_id"] == profit), "budget"].iloc[0])
    flagged = dev[dev["severity"].isin(["high", "medium"]) & (dev["status"] == "off_track")]
    assert not flagged.empty
    material = flagged["at_stake"] >= MATERIALITY * base
    assert (flagged.loc[material, "severity"].isin(["high", "medium"])).all()
    assert (flagged.loc[~material, "severity"] == "medium").all()
    assert (dev.loc[dev["severity"] == "high", "at_stake"] >= MATERIALITY * base).all()


# ------------------------------------------------- calibration: level, windows, short history
def test_ratios_to_trend_cover_every_month_of_a_short_growing_history():
    """14 months of a growing seasonal series: the centred average covers 2 months; the ends
    carried along the growth give every calendar month, close to the true indices, so a
    forecast made early in a short history has seasonal indices like the review's own."""
    from perflink.forecast._season import ratios_to_trend

    season = np.array([0.85, 0.7, 1.0, 1.0, 1.02, 1.05, 0.98, 0.97, 1.03, 1.05, 1.1, 1.25])
    season = season / season.mean()
    t = np.arange(14)
    y = (100 * season[t % 12] * 1.08 ** (t / 12))[None, :]
    r = ratios_to_trend(y)
    assert np.isfinite(r).all()
    np.testing.assert_allclose(r[0], season[t % 12], rtol=0.03)
    idx, p = pooled_indices(np.repeat(y, 6, axis=0), np.array(["a"] * 6), 1)
    assert (p < 0.01).all()
    np.testing.assert_allclose(idx[0], season, rtol=0.03)
    # too short for a year of averages: nothing to estimate
    assert np.isnan(ratios_to_trend(y[:, :12])).all()


def test_calibration_windows_end_at_the_cutoff_and_span_the_rest_of_the_year():
    from perflink.forecast._panel import calibration_windows

    periods = pd.period_range("2023-01", "2026-09", freq="M")
    cut = pd.Period("2025-03", "M")  # 9 months left in the year
    got = calibration_windows(periods, cut, neighbours=2)
    # windows of 9 months ending 2025-03, -02, -01; a year earlier the origins would have
    # 5-3 months of history (< 13): left out
    assert got == [pd.Period(p, "M") for p in ("2024-06", "2024-05", "2024-04")]
    later = calibration_windows(periods, pd.Period("2026-06", "M"), neighbours=0)
    assert later == [pd.Period("2025-12", "M"), pd.Period("2024-12", "M")]  # 6 months left
    assert calibration_windows(periods, pd.Period("2025-12", "M")) == []  # year complete
    assert calibration_windows(periods[:15], cut) == []  # too little history


def _shift_runs(error: float, units: int = 12, steps: int = 6):
    """Past runs whose units all realised ``error`` x their forecast rest of the year more."""
    from perflink.forecast import _joint

    mean = np.full((units + 1, steps), 10.0)
    mean[-1] = units * 10.0  # the parent: the sum of its units
    fc = {"n_units": units, "mean": {"revenue": mean}, "agg": np.ones((1, units)),
          "nonneg": {"revenue": np.ones(units + 1, bool)}}  # fmt: skip
    realised = np.r_[np.full(units, 60.0 * (1 + error)), np.nan]
    learner = _joint.Learner({"revenue": np.zeros(units + 1)}, {"revenue": realised}, steps)
    return fc, [(fc, learner, pd.Period("2025-03", "M"))]


def test_level_correction_is_the_units_shared_shortfall_and_moves_parents_with_them():
    from perflink.forecast import _joint

    fc, runs = _shift_runs(0.04)
    shifts = _joint.learn_shifts(runs, ["revenue"])
    assert shifts == {("revenue", "shift"): pytest.approx(0.04)}
    moved = _joint.shift_means(fc, shifts)
    np.testing.assert_allclose(moved["mean"]["revenue"][:-1], 10.4)
    np.testing.assert_allclose(moved["mean"]["revenue"][-1], 12 * 10.4)  # still the sum
    assert fc["mean"]["revenue"][0, 0] == 10.0  # the input is not changed
    # a wild year is kept within SHIFT_RANGE; too few rows give no correction
    _, wild = _shift_runs(0.5)
    assert _joint.learn_shifts(wild, ["revenue"])[("revenue", "shift")] == _joint.SHIFT_RANGE
    _, few = _shift_runs(0.04, units=_joint.MIN_SHIFT_ROWS - 1)
    assert _joint.learn_shifts(few, ["revenue"]) == {}
    assert _joint.shift_means(fc, {}) is fc
    # the sums' shortfall, not the median unit's: one large unit 10% short, eleven exact
    fc, runs = _shift_runs(0.0)
    fc["mean"]["revenue"][0] *= 10  # forecast rest 600 instead of 60
    runs[0][1].realised["revenue"][0] = 660.0
    got = _joint.learn_shifts(runs, ["revenue"])[("revenue", "shift")]
    assert got == pytest.approx(60.0 / (600 + 11 * 60))


def _blend_runs(units: int = 12, steps: int = 3, t: int = 15):
    """Past runs of sales and a cost that is 60% of sales month by month, a year before and
    after; the cost's own forecast is 20% off and the sales forecast exact."""
    from perflink.forecast import _joint

    rng = np.random.default_rng(3)
    sales_hist = rng.uniform(50.0, 150.0, size=(units, t))
    sales_next = rng.uniform(50.0, 150.0, size=(units, steps))
    actual = {"revenue": sales_hist, "cogs": 0.6 * sales_hist}
    # the same months a year before the forecast months carry next year's shape
    actual["revenue"][:, t - 12 : t - 12 + steps] = sales_next
    actual["cogs"][:, t - 12 : t - 12 + steps] = 0.6 * sales_next

    def with_parent(x):
        return np.vstack([x, x.sum(axis=0)])

    fc = {
        "n_units": units,
        "agg": np.ones((1, units)),
        "actual": {m: with_parent(v) for m, v in actual.items()},
        "mean": {"revenue": with_parent(sales_next), "cogs": with_parent(0.6 * sales_next * 1.2)},
        "nonneg": {m: np.ones(units + 1, bool) for m in actual},
    }
    realised = {"revenue": sales_next.sum(axis=1), "cogs": 0.6 * sales_next.sum(axis=1)}
    realised = {m: np.r_[v, v.sum()] for m, v in realised.items()}
    zero = {m: np.zeros(units + 1) for m in realised}
    learner = _joint.Learner(zero, realised, steps)
    return fc, [(fc, learner, pd.Period("2025-03", "M"))]


def test_a_cost_that_follows_sales_is_blended_with_sales_at_last_years_ratio():
    from perflink.forecast import _joint

    fc, runs = _blend_runs()
    ratio = _joint.ratio_means(fc, "revenue")
    # the month a year before each forecast month: sales x 0.6 exactly
    np.testing.assert_allclose(ratio["cogs"], 0.6 * fc["mean"]["revenue"][:-1])
    blends = _joint.learn_blends(runs, ["revenue", "cogs"], "revenue")
    assert blends == {("cogs", "blend"): 0.0}  # the ratio was right, the own forecast 20% off
    moved = _joint.blend_means(fc, blends, "revenue")
    np.testing.assert_allclose(moved["mean"]["cogs"][:-1], 0.6 * fc["mean"]["revenue"][:-1])
    np.testing.assert_allclose(moved["mean"]["cogs"][-1], moved["mean"]["cogs"][:-1].sum(axis=0))
    assert moved["mean"]["revenue"] is fc["mean"]["revenue"]  # sales keeps its own
    assert fc["mean"]["cogs"][0, 0] == pytest.approx(0.72 * fc["mean"]["revenue"][0, 0])

    # a cost whose own forecast is right and last year's ratio is not keeps its own (w = 1)
    own_right = {**fc, "mean": {**fc["mean"], "cogs": fc["mean"]["cogs"] / 1.2 * 1.0}}
    runs[0][1].realised["cogs"] = np.r_[own_right["mean"]["cogs"][:-1].sum(axis=1), np.nan]
    skewed = {**own_right, "actual": {**fc["actual"], "cogs": fc["actual"]["cogs"] * 1.3}}
    got = _joint.learn_blends([(skewed, runs[0][1], runs[0][2])], ["revenue", "cogs"], "revenue")
    assert got == {("cogs", "blend"): 1.0}
    assert _joint.blend_means(skewed, got, "revenue") is skewed
    # no sales metric among the flows, or too few rows: no blend
    assert _joint.learn_blends(runs, ["cogs"], None) == {}
    assert _joint.learn_blends(runs, ["cogs"], "revenue") == {}
    few_fc, few = _blend_runs(units=_joint.MIN_SHIFT_ROWS - 1)
    assert _joint.learn_blends(few, ["revenue", "cogs"], "revenue") == {}
    # a month with no year before (a 13th month ahead) or no sales keeps the own forecast
    short = {**fc, "actual": {m: v[:, -11:] for m, v in fc["actual"].items()}}
    assert np.isnan(_joint.ratio_means(short, "revenue")["cogs"][:, 0]).all()


def test_unit_factors_of_a_metric_few_units_report_take_the_conformal_rank():
    """21 unit rows from 7 units over 3 windows are 7 checks seen three times: the unit factor
    takes the conformal rank; the same rows from 21 units, or a parent's, the plain quantile."""
    from perflink.forecast import _joint

    s = np.linspace(0.0, 2.0, 21)
    few, many = _joint.Learner({}, {}, 3), _joint.Learner({}, {}, 3)
    zero = {"revenue": np.zeros(7)}
    for window in range(3):
        run = _joint.Learner(zero, {"revenue": s[window::3]}, 1)
        paths = np.zeros((7, 4, 1)) + s[:4][None, :, None]
        for block in (slice(0, 4), slice(4, 7)):  # a run records its units block by block
            run.record("revenue", "unit", np.arange(7)[block], paths[block])
        assert run.entities == {("revenue", "unit"): 7}
        few.merge(run)
    assert few.entities == {("revenue", "unit"): 7}  # the most rows of one run, not the sum
    scores = few.scores[("revenue", "unit")]
    assert len(scores[0]) == 21
    many.scores = {("revenue", "unit"): scores, ("revenue", "parent"): scores}
    many.entities = {("revenue", "unit"): 21, ("revenue", "parent"): 7}
    few.scores[("revenue", "parent")] = scores
    few.entities[("revenue", "parent")] = 7
    assert _joint.few_units(few) == {"revenue": 7} and _joint.few_units(many) == {}
    got_few, got_many = _joint.factors_from(few), _joint.factors_from(many)
    conformal = tuple(
        _joint.conformal_quantile(scores[k], q)
        for k, q in ((0, _joint.COVER), (1, _joint.COVER_95))
    )
    plain = (
        float(np.quantile(scores[0], _joint.COVER)),
        float(np.quantile(scores[1], _joint.COVER_95)),
    )
    assert got_few[("revenue", "unit")] == pytest.approx(conformal)
    assert got_many[("revenue", "unit")] == pytest.approx(plain)
    assert conformal[0] > plain[0]
    # a parent's rows keep the plain quantile (its factor sits on the units' already)
    assert got_few[("revenue", "parent")] == got_many[("revenue", "parent")] == pytest.approx(plain)


def test_unit_factors_may_narrow_the_spread_parent_factors_may_not():
    from perflink.forecast import _joint

    small = np.full(200, 0.3)  # realised years well inside the simulated intervals
    learner = _joint.Learner({}, {}, 3)
    learner.scores = {
        ("net_profit", "unit"): (small, small),
        ("net_profit", "parent"): (small, small),
    }
    got = _joint.factors_from(learner)
    assert got[("net_profit", "unit")] == (_joint.UNIT_FACTOR_MIN, _joint.UNIT_FACTOR_MIN)
    assert got[("net_profit", "parent")] == (_joint.FACTOR_RANGE[0], _joint.FACTOR_RANGE[0])
    assert _joint.UNIT_FACTOR_MIN < 1.0 == _joint.FACTOR_RANGE[0]


def test_page_names_the_blend_weights(tiny_result):
    from dataclasses import replace

    moved = replace(tiny_result, blends={"cogs": 0.3, "opex": 0.7})
    text = moved.method().text
    name = tiny_result._name
    assert f"{name('cogs')} 30%" in text and f"{name('opex')} 70%" in text
    assert "same month last year" in text and name("revenue") in text
    assert "blended" not in replace(tiny_result, blends={}).method().text


def test_factors_of_few_windows_take_the_conformal_rule_and_the_group_its_parents_at_least():
    from perflink.forecast import _joint

    # the score at rank (n + 1) q, interpolated; past n: the largest
    assert _joint.conformal_quantile(np.arange(1.0, 20.0), 0.8) == 16.0  # rank 20 x 0.8
    assert _joint.conformal_quantile(np.arange(1.0, 7.0), 0.8) == pytest.approx(5.6)
    assert _joint.conformal_quantile([3.0, 1.0, 2.0], 0.8) == 3.0
    assert _joint.conformal_quantile([3.0, 1.0, 2.0, 0.5, 0.7, 0.9], 0.95) == 3.0
    few = np.array([0.5, 0.9, 1.4, 1.1, 0.7])  # a group: one sum per window
    many = np.linspace(0.0, 2.0, 201)  # units
    learner = _joint.Learner({}, {}, 3)
    learner.scores = {("revenue", "group"): (few, few), ("revenue", "unit"): (many, many)}
    got = _joint.factors_from(learner)
    # rank 4.8 of 5, above the plain quantile (1.1); the 95% edge the largest
    assert got[("revenue", "group")] == pytest.approx((1.34, 1.4))
    assert got[("revenue", "unit")] == pytest.approx((1.6, 1.9))  # the plain quantile
    # the group takes the other parents' factor where that is wider, edge by edge
    factors = {("revenue", "group"): (1.0, 1.6), ("revenue", "parent"): (1.3, 1.2)}
    assert _joint.level_factor(factors, "revenue", "group") == (1.3, 1.6)
    assert _joint.level_factor(factors, "revenue", "parent") == (1.3, 1.2)
    del factors[("revenue", "group")]
    assert _joint.level_factor(factors, "revenue", "group") == (1.3, 1.2)
    assert _joint.level_factor({}, "revenue", "group") is None


def test_page_says_the_level_correction_or_why_there_is_none(tiny_result):
    """Two units, six calibration windows: 12 checked forecasts per flow, enough for a
    correction; the page names each flow with its signed share, or says why there is none."""
    from dataclasses import replace

    from perflink.forecast._joint import MIN_SHIFT_ROWS

    assert set(tiny_result.corrections) == {"revenue", "cogs", "opex"}
    moved = replace(tiny_result, corrections={"revenue": 0.012, "cogs": -0.004})
    text = moved.method().text
    assert "corrected for the level" in text and "+1.2%" in text and "-0.4%" in text
    assert f"{tiny_result._name('revenue')} +1.2%" in text  # names, not ids
    none = replace(tiny_result, corrections={}).method().text
    # two units report every flow: the page names them as resting on few units
    assert tiny_result.few_units == {"revenue": 2, "cogs": 2, "opex": 2, "net_profit": 2}
    assert "Fewer than 12 units report each of these metrics: " in text
    assert "Fewer than 12 units" not in replace(tiny_result, few_units={}).method().text
    assert f"Fewer than {MIN_SHIFT_ROWS} unit forecasts" in none
    assert "corrected" not in replace(tiny_result, corrections=None).method().text


def test_spread_factors_move_the_80_and_95_percent_edges_each_by_its_own():
    """Realised years with heavier tails than the paths need a larger factor at 95% than
    at 80%: each edge of the full-year sum moves by its own factor, the order of the paths
    is kept, and the months beyond the sum move with their path."""
    from perflink.forecast._joint import _scale

    rng = np.random.default_rng(3)
    paths = 100.0 + rng.standard_normal((2, 20_000, 4))
    out = _scale(paths, (1.5, 2.5), 3)
    before = np.abs(paths[:, :, :3].sum(axis=2) - paths[:, :, :3].mean(axis=1).sum(axis=1)[:, None])
    after = np.abs(out[:, :, :3].sum(axis=2) - out[:, :, :3].mean(axis=1).sum(axis=1)[:, None])
    for q, f in ((0.8, 1.5), (0.95, 2.5)):
        np.testing.assert_allclose(
            np.quantile(after, q, axis=1), f * np.quantile(before, q, axis=1), rtol=0.02
        )
    order = np.argsort(paths[0, :, :3].sum(axis=1))
    assert (np.diff(out[0, order, :3].sum(axis=1)) >= -1e-9).all()
    np.testing.assert_allclose(out.mean(axis=1), paths.mean(axis=1), atol=0.05)
    assert _scale(paths, (1.0, 1.0), 3) is paths and _scale(paths, None, 3) is paths


def test_spread_factors_scale_an_entity_alike_beside_entities_without_the_metric():
    """Rows of entities without the metric (wholly NaN) stay NaN and leave every other row as
    it is scaled alone, bit for bit; a row with some NaN paths takes the NaN-skipping way."""
    from perflink.forecast._joint import _scale

    rng = np.random.default_rng(5)
    paths = 50.0 + rng.standard_normal((4, 500, 3))
    mixed = paths.copy()
    mixed[[0, 2]] = np.nan
    out = _scale(mixed, (1.4, 2.2), 3)
    assert np.isnan(out[[0, 2]]).all()
    np.testing.assert_array_equal(out[[1, 3]], _scale(paths[[1, 3]], (1.4, 2.2), 3))
    assert np.isnan(_scale(np.full((2, 5, 3), np.nan), (1.4, 2.2), 3)).all()
    # some paths of a row missing: the rest are scaled around their own mean
    partial = paths[[1]].copy()
    partial[0, :10] = np.nan
    got = _scale(partial, (1.4, 2.2), 3)
    assert np.isnan(got[0, :10]).all() and np.isfinite(got[0, 10:]).all()
    np.testing.assert_allclose(np.nanmean(got, axis=1), np.nanmean(partial, axis=1))


def test_calibration_passes_reuse_the_unit_paths_with_the_same_factors(monkeypatch):
    # calibrate keeps each window's unit paths between its passes when they fit
    # CALIBRATION_CACHE_BYTES; drawn again or kept, the factors are the same bit for bit.
    from perflink.forecast import _joint
    from perflink.forecast import _panel as fp

    facts, _targets, entities = _tiny(miss=0.75)
    options = FAST.for_catalog(CATALOG)
    st = fp.setup("2026Q3", options)
    wide = fp.unit_panel(facts, st.cutoff, list(options.metrics))
    periods = wide.index.get_level_values("period").unique()
    origins = fp.windows_for(periods, st.cutoff, 2, options)
    ex = fp.executor_of(None, 1)
    drawn: list[int] = []
    real = _joint._unit_paths

    def counting(*args, **kwargs):
        drawn.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_joint, "_unit_paths", counting)

    def factors():
        runs = fp.past_runs(wide, entities, CATALOG, options, origins, ex, steps=st.fy_steps)
        drawn.clear()
        return fp.calibrate(runs, CATALOG, options)

    kept = factors()
    n_kept = len(drawn)
    monkeypatch.setattr(fp, "CALIBRATION_CACHE_BYTES", 0)
    again = factors()
    passes = fp.simulation_passes(options)
    assert n_kept == len(origins) * len(options.metrics)  # once per window and flow
    assert len(drawn) == passes * n_kept  # once per pass
    assert kept == again and len(kept) > len(options.metrics)


def test_the_groups_factors_also_learn_from_full_years_of_earlier_years():
    # runs from the same month a year before (and its neighbours) add to the group's only:
    # the other factors, the blends and the level corrections are those of the windows
    from perflink.forecast import _panel as fp

    facts, _targets, entities = _tiny(miss=0.75)
    options = FAST.for_catalog(CATALOG)
    st = fp.setup("2026Q3", options)
    wide = fp.unit_panel(facts, st.cutoff, list(options.metrics))
    periods = wide.index.get_level_values("period").unique()
    ex = fp.executor_of(None, 1)
    windows = fp.windows_for(periods, st.cutoff, 2, options)
    runs = fp.past_runs(wide, entities, CATALOG, options, windows, ex, steps=st.fy_steps)
    years = fp.origins_for(periods, st.cutoff, 2, options)
    assert [str(o) for o in years] == ["2025-09", "2025-08", "2025-07"]
    year_runs = fp.past_runs(wide, entities, CATALOG, options, years, ex)
    alone = fp.calibrate(runs, CATALOG, options)
    both = fp.calibrate(runs, CATALOG, options, group_runs=year_runs)
    group = {k for k in both if k[1] == "group"}
    assert group and {k: v for k, v in both.items() if k not in group} == {
        k: v for k, v in alone.items() if k not in group
    }
    assert any(both[k] != alone[k] for k in group)
    # a year run that missed by far widens the group, and only the group
    far = [(fc, _joint_far(lr), o) for fc, lr, o in year_runs]
    wide_group = fp.calibrate(runs, CATALOG, options, group_runs=far)
    for key in group:
        assert all(np.greater_equal(wide_group[key], both[key]))
    assert any(np.greater(wide_group[k], both[k]).any() for k in group)


def _joint_far(learner):
    """``learner`` whose realised years are 30% above what they were."""
    from perflink.forecast import _joint

    real = {m: v * 1.3 for m, v in learner.realised.items()}
    out = _joint.Learner(learner.ytd, real, learner.steps)
    out.naive = learner.naive
    return out


def test_a_parents_projection_stays_the_sum_of_its_units_under_a_wide_factor(tiny_result):
    # a parent's paths are spread by its factor and not clipped again (clipping moved its
    # mean off its units' sum); its lower edges are floored at zero where shown
    from perflink.forecast import _panel as fp

    dev = tiny_result.deviation.to_frame().set_index(["entity_id", "metric_id"])
    for metric in ("revenue", "cogs", "opex"):
        units = dev.loc[("S1U1", metric), "projected"] + dev.loc[("S1U2", metric), "projected"]
        for parent in ("S1", "G"):
            np.testing.assert_allclose(dev.loc[(parent, metric), "projected"], units, rtol=1e-9)
    q = np.array([[-5.0, -5.0], [3.0, 3.0]])
    fc = {"nonneg": {"revenue": np.array([True, False])}}
    np.testing.assert_array_equal(fp.floor_zero(q, fc, "revenue"), [[0.0, -5.0], [3.0, 3.0]])
    assert fp.floor_zero(q, fc, "net_profit") is q


def test_the_conformal_rank_of_a_few_windows_holds_what_the_interval_claims():
    """Six exchangeable windows: the score at rank 7 x 80% = 5.6 holds about 82% of new
    windows; the rank rounded up (the largest of 6) would hold 6/7 = 86%, outside the
    75-85% an 80% interval should hold. At 95% there is no rank below the largest."""
    from perflink.forecast import _joint

    rng = np.random.default_rng(7)
    draws = np.abs(rng.standard_t(5, size=(40_000, 7)))  # 6 windows and the next one
    edge = np.array([_joint.conformal_quantile(row, 0.8) for row in draws[:, :6]])
    held = float(np.mean(draws[:, 6] <= edge))
    largest = float(np.mean(draws[:, 6] <= draws[:, :6].max(axis=1)))
    assert 0.8 <= held <= 0.835 and largest == pytest.approx(6 / 7, abs=0.01)
    assert _joint.conformal_quantile(draws[0, :6], 0.95) == draws[0, :6].max()


def test_a_95_percent_edge_on_too_few_scores_widens_at_least_as_much_as_the_80_percent_edge():
    """Six group scores have no conformal 95% rank (the largest of 6 covers 6/7 = 86% of new
    windows): the 95% factor is then at least the 80% one; with 19 or more scores, or the
    plain quantile of a level with rows enough, each edge keeps its own."""
    from perflink.forecast import _joint

    assert not _joint.conformal_reaches(18, _joint.COVER_95)
    assert _joint.conformal_reaches(19, _joint.COVER_95)
    assert _joint.conformal_reaches(4, _joint.COVER) and not _joint.conformal_reaches(3, 0.8)
    s80 = np.array([1.2, 1.5, 1.8, 2.1, 2.4, 2.75])
    s95 = s80 / 1.85  # the paths' 95% edge lies 1.85 times as far out as their 80% edge
    learner = _joint.Learner({}, {}, 3)
    learner.scores = {("revenue", "group"): (s80, s95)}
    f80, f95 = _joint.factors_from(learner)[("revenue", "group")]
    assert f80 == pytest.approx(2.61)  # rank 0.8 x 7 = 5.6 of 6
    assert f95 == pytest.approx(f80) and f80 > s95.max()
    # enough scores for a 95% rank: the 95% edge takes its own, narrower, factor
    many = np.linspace(1.0, 2.75, 19)
    learner.scores = {("revenue", "group"): (many, many / 1.85)}
    f80, f95 = _joint.factors_from(learner)[("revenue", "group")]
    assert f95 == pytest.approx(_joint.conformal_quantile(many / 1.85, _joint.COVER_95))
    assert f95 < f80
    # a parent with rows enough for the plain quantile: unchanged
    rows = np.linspace(1.0, 2.75, 30)
    learner.scores = {("revenue", "parent"): (rows, rows / 1.85)}
    f80, f95 = _joint.factors_from(learner)[("revenue", "parent")]
    assert f95 == pytest.approx(np.quantile(rows / 1.85, _joint.COVER_95)) and f95 < f80


def test_calibration_runs_forecast_with_the_models_of_the_forecast_they_calibrate(monkeypatch):
    """The review's calibration windows and group runs impose the review's model and
    seasonal adjustment per unit (``choices_of`` its forecast), and use them; in the
    backtest, each check origin chooses its own and its calibration runs take that
    origin's. Left to choose, a window of under two years of history could not pick the
    driver model the review used, and measured another model's error."""
    from perflink.forecast import _panel as _fp

    made, calls = [], []
    arrays, runs = _fp.forecast_arrays, _fp.past_runs

    def spy_arrays(*args, **kw):
        fc = arrays(*args, **kw)
        made.append((args[0].index.get_level_values("period").max(), kw.get("choices"), fc))
        return fc

    def spy_runs(*args, **kw):
        calls.append((list(args[4]), kw.get("steps"), kw.get("choices")))
        return runs(*args, **kw)

    monkeypatch.setattr(_fp, "forecast_arrays", spy_arrays)
    monkeypatch.setattr(_fp, "past_runs", spy_runs)
    facts, targets, entities = _tiny(miss=0.75)
    forecast_panel(facts, targets, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1)
    review = _fp.choices_of(made[0][2])
    metrics = set(FAST.for_catalog(CATALOG).metrics)
    assert made[0][1] is None and set(review.model) == set(review.seasonal) == metrics
    assert any(any(units.values()) for units in review.seasonal.values())
    assert len(calls) == 2 and all(choices == review for *_, choices in calls)
    assert all(choices == review for _end, choices, _fc in made[1:])
    assert all(_fp.choices_of(fc).seasonal == review.seasonal for *_, fc in made[1:])

    # the backtest: each check origin chooses; a window of an origin takes that origin's
    checks = {}

    def spy_check(*args, **kw):
        out = runs(*args, **kw)
        calls.append((kw.get("steps"), kw.get("choices")))
        if kw.get("steps") is None and kw.get("choices") is None:
            checks.update({origin: _fp.choices_of(fc) for fc, _learner, origin in out})
        return out

    calls.clear()
    monkeypatch.setattr(_fp, "past_runs", spy_check)
    backtest_panel(facts, entities, CATALOG, quarter="2026Q3", options=FAST, n_jobs=1)
    assert len(checks) == 3
    windows = [(steps, choices) for steps, choices in calls if steps is not None]
    assert windows and all(choices is not None for _steps, choices in windows)
    by_steps = {_fp.M - origin.month: chosen for origin, chosen in checks.items()}
    assert all(choices == by_steps[steps] for steps, choices in windows)
    group = [choices for steps, choices in calls if steps is None and choices is not None]
    assert group and all(choices in checks.values() for choices in group)


def test_a_seasonal_adjustment_imposed_on_a_window_is_the_one_used():
    """A window given the review's decision: True takes its group's indices estimated from
    the window's months even where its own test would not pass; False takes none even
    where it would."""
    from perflink.forecast import _panel as _fp
    from perflink.forecast._season import pooled_indices

    rng = np.random.default_rng(3)
    months = np.arange(20) % 12
    weak = 100 * (1 + 0.01 * (months == 11)) * np.exp(rng.normal(0, 0.03, (4, 20)))
    strong = 100 * (1 + 0.3 * (months == 11)) * np.exp(rng.normal(0, 0.01, (4, 20)))
    groups = np.array(["a"] * 4)
    assert (_fp._seasons(weak, groups, 1) == 1.0).all()  # its own test does not pass
    forced = _fp._seasons(weak, groups, 1, np.ones(4, dtype=bool))
    np.testing.assert_array_equal(forced, pooled_indices(weak, groups, 1, alpha=np.inf)[0])
    assert not (forced == 1.0).all()
    assert (_fp._seasons(strong, groups, 1)[:, 11] > 1.2).all()
    assert (_fp._seasons(strong, groups, 1, np.zeros(4, dtype=bool)) == 1.0).all()
