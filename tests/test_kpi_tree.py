"""Tree-level KPI decomposition: contributions add up, targets resolve, planted miss is traced."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import perflink
import perflink.kpi as kpi
from perflink import panel
from perflink.catalog import load_catalog
from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.options import KpiEnvironmentChange, KpiOptions
from perflink.sample import generate

CATALOG = load_catalog(Path(perflink.__file__).parent / "data" / "catalog")
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("kpi_samples")
    out = {}
    for seed in SEEDS:
        params = generate(root / f"s{seed}", seed=seed)
        review = perflink.open_review(params, language="en")
        dec = kpi.decompose_review(review)
        truth = yaml.safe_load((root / f"s{seed}" / "truth.yaml").read_text(encoding="utf-8"))
        out[seed] = (review, dec, truth["problems"])
    return out


def _tiny() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One sales unit under one subsidiary, 2025-01..2026-09, with monthly budgets."""
    ents = pd.DataFrame(
        {
            "entity_id": ["G", "S", "U"],
            "name_zh": ["集团", "子公司", "销售部"],
            "name_en": ["Group", "Sub", "Sales"],
            "parent_id": [np.nan, "G", "S"],
            "kind": ["group", "subsidiary", "department"],
            "center_type": [np.nan, np.nan, "profit"],
            "business_line": [np.nan, "retail", "retail"],
            "manager": ["a", "b", "c"],
        }
    )
    periods = pd.period_range("2025-01", "2026-09", freq="M")
    rows, budgets = [], []
    for i, p in enumerate(periods):
        qty = 1000.0 + 10 * i
        price = 200.0
        vals = {
            "shipped_qty": qty,
            "avg_unit_price": price,
            "revenue": qty * price / 10000 * 1.01,
            "cogs": qty * price / 10000 * 0.7,
            "opex": 3.0,
            "new_contract_amount": 20.0 + i,
            "new_customers": 5.0,
            "headcount": 10.0,
            "equity": 100.0,
            "invested_capital": 150.0,
        }
        rows += [("U", p, m, v) for m, v in vals.items()]
        for m in ("revenue", "cogs", "opex", "shipped_qty", "new_contract_amount"):
            budgets.append(("U", p.year, p, m, vals[m] * 1.1, "budget"))
    facts = pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"])
    targets = pd.DataFrame(
        budgets, columns=["entity_id", "year", "period", "metric_id", "target", "kind"]
    )
    return facts, targets, ents


def _decompose(**kw):
    facts, targets, ents = _tiny()
    opts = KpiOptions(environment_changes=(), tenure=())
    el = pd.DataFrame(
        {
            "mapping_id": ["M01", "M04", "M10"],
            "elasticity": [0.9, 0.5, 1.0],
        }
    )
    return kpi.decompose(
        facts, targets, ents, CATALOG, quarter="2026Q3", options=opts, elasticities=el, **kw
    )


def test_decompose_tiny_tree_sums_to_each_parent():
    dec = _decompose()
    a = dec.attribution
    assert set(a["link"]) >= {"total", "formula", "identity", "mapping"}
    total = a[a["method"] == "total"].set_index(["entity_id", "scope", "base", "metric_id"])
    edges = a[a["method"] != "total"]
    # root: the tier-1 metric's first-level children sum to its change
    first = edges[edges["depth"] == 1].groupby(["entity_id", "scope", "base", "metric_id"])
    got = first["contribution"].sum()
    np.testing.assert_allclose(got, total["contribution"].reindex(got.index), rtol=1e-9, atol=1e-9)
    # every deeper link: children sum to the parent's contribution
    keys = ["entity_id", "scope", "base", "metric_id"]
    parents = edges[["contribution", "driver_id", "depth", *keys]].rename(
        columns={"driver_id": "parent_id", "contribution": "parent_contribution"}
    )
    kids = (
        edges[edges["depth"] >= 2]
        .groupby([*keys, "parent_id", "link", "depth"])["contribution"]
        .sum()
        .reset_index()
    )
    parents = parents.assign(depth=parents["depth"] + 1).drop_duplicates([*keys, "parent_id"])
    m = kids.merge(parents, on=[*keys, "parent_id", "depth"], how="inner")
    assert len(m) > 10
    np.testing.assert_allclose(m["contribution"], m["parent_contribution"], rtol=1e-9, atol=1e-7)


def test_target_of_net_profit_comes_from_input_budgets():
    dec = _decompose()
    t1 = dec.tier1.set_index(["entity_id", "scope", "base", "metric_id"])
    rev, cogs, opex = (
        sum((1000.0 + 10 * i) * 200 / 10000 * f for i in range(18, 21)) * 1.1
        for f in (1.01, 0.7, 0)
    )
    opex = 3.0 * 3 * 1.1
    monthly = [((1000.0 + 10 * i) * 200 / 10000 * (1.01 - 0.7)) * 1.1 - 3.3 for i in range(18, 21)]
    expected = sum(x - max(x, 0) * 0.25 for x in monthly)
    got = t1.loc[("U", "quarter", "target", "net_profit"), "target"]
    assert got == pytest.approx(expected, rel=1e-9)
    assert rev > cogs > opex  # sanity of the hand calculation above


def test_identity_gap_is_explicit_remainder():
    dec = _decompose()
    a = dec.attribution
    rem = a[(a["parent_id"] == "revenue") & (a["method"] == "remainder")]
    assert len(rem) and rem["contribution"].abs().max() > 0


def test_environment_change_shows_both_targets():
    facts, targets, ents = _tiny()
    ch = KpiEnvironmentChange(
        business_line="retail", metric_id="revenue", from_period="2026-07", factor=0.9
    )
    panels = kpi.build_panels(
        facts, targets, ents, CATALOG, options=KpiOptions(environment_changes=(ch,))
    )
    new = panels.target["quarter"].loc[("U", pd.Period("2026-08", "M")), "revenue"]
    old = panels.target_original["quarter"].loc[("U", pd.Period("2026-08", "M")), "revenue"]
    assert new == pytest.approx(old * 0.9)
    before = panels.target["quarter"].loc[("U", pd.Period("2026-06", "M")), "revenue"]
    assert (
        before == panels.target_original["quarter"].loc[("U", pd.Period("2026-06", "M")), "revenue"]
    )


def test_decompose_keeps_the_adjusted_and_original_panels_as_the_windows_it_reads():
    facts, targets, ents = _tiny()
    ch = KpiEnvironmentChange(
        business_line="retail", metric_id="revenue", from_period="2026-07", factor=0.9
    )
    opts = KpiOptions(environment_changes=(ch,), tenure=())
    adj = pd.DataFrame(
        {
            "entity_id": ["U"],
            "period": [pd.Period("2026-08", "M")],
            "metric_id": ["revenue"],
            "amount": [7.0],
            "reason": ["flood"],
            "approved_by": ["board"],
        }
    )
    full = kpi.build_panels(facts, targets, ents, CATALOG, adjustments=adj, options=opts)
    dec = kpi.decompose(
        facts, targets, ents, CATALOG, quarter="2026Q3", adjustments=adj, options=opts
    )
    panels = dec.panels
    spans = {"quarter": ("2026-07", "2026-09"), "ytd": ("2026-01", "2026-09")}
    assert isinstance(panels.adjusted, kpi.Windowed)
    for scope, (start, end) in spans.items():
        want = panel.window(full.adjusted, CATALOG, start, end)
        got = panels.window(panels.adjusted, CATALOG, start, end)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert isinstance(panels.target_original[scope], kpi.Windowed)
        want = panel.window(full.target_original[scope], CATALOG, start, end)
        got = panels.window(panels.target_original[scope], CATALOG, start, end)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert (
        got.at["U", "revenue"]
        != panels.window(panels.target["ytd"], CATALOG, start, end).at["U", "revenue"]
    )  # the change is there, and the original is not the changed target
    # the kept panels stay monthly; a window the decomposition did not keep says what to do
    pd.testing.assert_frame_equal(panels.actual, full.actual)
    with pytest.raises(ParamsError, match="build_panels"):
        panels.window(panels.adjusted, CATALOG, "2026-04", "2026-06")
    with pytest.raises(ParamsError, match=r"target_original\[quarter\]"):
        panels.window(panels.target_original["quarter"], CATALOG, "2026-01", "2026-09")


def test_decompose_bad_inputs_raise():
    facts, targets, ents = _tiny()
    with pytest.raises(ParamsError):
        kpi.decompose(facts, targets, ents, CATALOG, quarter="not a quarter")
    with pytest.raises(InputError):
        kpi.decompose(facts.iloc[:0], targets, ents, CATALOG, quarter="2026Q3")
    bad = KpiOptions(
        environment_changes=(
            KpiEnvironmentChange(
                business_line="mars", metric_id="revenue", from_period="2026-07", factor=0.9
            ),
        )
    )
    with pytest.raises(PerflinkError, match="mars"):
        kpi.decompose(facts, targets, ents, CATALOG, quarter="2026Q3", options=bad)
    with pytest.raises(ParamsError, match="M99"):
        kpi.estimate_elasticities(facts, CATALOG, overrides={"M99": 1.0})


def test_estimate_elasticities_works():
    facts, _, _ = _tiny()
    el = kpi.estimate_elasticities(facts, CATALOG, overrides={"M01": 0.8})
    assert el.set_index("mapping_id").loc["M01", "elasticity"] == 0.8
    assert set(el.columns) >= {"mapping_id", "elasticity", "source"}


def test_completion_inverts_lower_is_better():
    s = pd.Series
    c = kpi.completion(s([90.0, 110.0, -5.0]), s([100.0, 100.0, -10.0]), s([True, False, True]))
    np.testing.assert_allclose(c, [0.9, 100 / 110, np.nan])  # a planned loss: no ratio
    a = kpi.attainment(s([90.0, 110.0, -5.0]), s([100.0, 100.0, -10.0]), s([True, False, True]))
    np.testing.assert_allclose(a, [0.9, 100 / 110, 1.5])  # scored in points of |target|


@pytest.mark.parametrize("seed", SEEDS)
def test_budget_miss_traced_to_planted_driver(samples, seed):
    _, dec, problems = samples[seed]
    miss = next(p for p in problems if p["kind"] == "budget_miss")
    f = dec.findings
    hit = f[(f["entity_id"] == miss["entity_id"]) & (f["metric_id"] == "net_profit")]
    assert len(hit), f"budget_miss unit {miss['entity_id']} not flagged (seed {seed})"
    causes = set(hit["cause_id"]) | set(hit["sub_cause_id"].dropna())
    assert causes & {"new_contract_amount", "new_customers"}
    assert (hit["driver_id"] == "revenue").all()


@pytest.mark.parametrize("seed", SEEDS)
def test_sample_tree_sums_exactly(samples, seed):
    _, dec, _ = samples[seed]
    a = dec.attribution
    keys = ["entity_id", "scope", "base", "metric_id"]
    total = a[a["method"] == "total"].set_index(keys)["contribution"]
    first = a[a["depth"] == 1].groupby(keys)["contribution"].sum()
    common = first.index.intersection(total.index)
    assert len(common) > 100
    np.testing.assert_allclose(first[common], total[common], rtol=1e-8, atol=1e-6)


def test_decompose_result_presents(samples):
    _, dec, _ = samples[0]
    assert "<table" in dec._repr_html_()
    assert dec.chart("G00").to_dict()["mark"]["type"] == "bar"
    dec.tree_chart("G00").to_dict()
    wf = dec.waterfall_frame("G00", scope="ytd")
    assert wf["end"].iloc[-2] == pytest.approx(wf["value"].iloc[-1], rel=1e-9)


def test_waterfall_with_no_driver_steps_goes_from_target_to_actual(samples):
    # A catalog whose tier-1 metric has no tree below it: the attribution holds the total only.
    _, dec, _ = samples[0]
    a = dec.attribution
    metric = dec.lead_metric()
    only_total = a[(a["method"] == "total") | (a["metric_id"] != metric)]
    bare = dataclasses.replace(dec, attribution=only_total)
    wf = bare.waterfall_frame("G00")
    assert list(wf["kind"]) == ["total", "total"]
    assert wf["start"].tolist() == [0.0, 0.0]
    total = a[(a["method"] == "total") & (a["metric_id"] == metric) & (a["entity_id"] == "G00")]
    total = total[(total["scope"] == "quarter") & (total["base"] == "target")]
    assert wf["end"].tolist() == [total["driver_base"].iloc[0], total["driver_actual"].iloc[0]]


def _edge_frame(part, index):
    """One edge's rows as the tree built them before: one small frame per edge."""
    (root, parent, driver, lag, tier, depth, link, method), value, actual, base = part
    return pd.DataFrame(
        {
            "entity_id": index.to_numpy(),
            "metric_id": root,
            "parent_id": parent,
            "driver_id": driver,
            "lag": lag,
            "tier": tier,
            "depth": depth,
            "link": link,
            "method": method,
            "contribution": value,
            "driver_actual": np.nan if actual is None else actual,
            "driver_base": np.nan if base is None else base,
        }
    )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 6),
    edges=st.lists(
        st.tuples(
            st.sampled_from(["revenue", "cogs", "_remainder"]),
            st.integers(0, 12),
            st.integers(1, 3),
            st.sampled_from(["formula", "identity", "mapping"]),
            st.booleans(),
        ),
        max_size=6,
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_tree_frame_equals_concatenated_edge_frames(n, edges, seed):
    from perflink.kpi._tree import _frame

    rng = np.random.default_rng(seed)
    index = pd.Index([f"E{i}" for i in range(n)], name="entity_id")

    def arr():
        x = rng.normal(0, 10, n)
        x[rng.random(n) < 0.2] = np.nan
        return x

    parts = [(("net_profit", None, "net_profit", 0, 1, 0, "total", "total"), arr(), arr(), arr())]
    for driver, lag, depth, link, has_values in edges:
        labels = ("net_profit", "net_profit", driver, lag, 2, depth, link, "shapley")
        parts.append((labels, arr(), arr() if has_values else None, arr() if has_values else None))
    got = _frame(parts, index)
    want = pd.concat([_edge_frame(p, index) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.dtypes.equals(want.dtypes)
