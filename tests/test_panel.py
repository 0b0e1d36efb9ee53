"""Monthly panels: the one-pass roll-up and the window's row-wise formulas give the figures of
the per-metric reference computations, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import perflink
from perflink import panel
from perflink.catalog import load_catalog
from perflink.errors import PerflinkError

CATALOG = load_catalog(Path(perflink.__file__).parent / "data" / "catalog")


def _group(n_units: int, *, deep: bool = False) -> pd.DataFrame:
    """A group ``G`` with two subsidiaries and ``n_units`` units alternating between them;
    ``deep``: every third unit under a department ``SA1`` of ``SA`` (chains of two and three
    ancestors side by side)."""
    units = [f"U{i}" for i in range(n_units)]
    parents = ["SA" if i % 2 else "SB" for i in range(n_units)]
    if deep:
        parents = ["SA1" if i % 3 == 0 else p for i, p in enumerate(parents)]
    return pd.DataFrame(
        {
            "entity_id": ["G", "SA", "SB", "SA1", *units],
            "parent_id": [np.nan, "G", "G", "SA", *parents],
        }
    )


def _facts(values: np.ndarray, n_units: int, months: int) -> pd.DataFrame:
    """Long facts of every reported metric: ``values`` is read in (unit, month, metric) order."""
    metrics = CATALOG.reported
    periods = pd.period_range("2025-01", periods=months, freq="M")
    idx = pd.MultiIndex.from_product(
        [[f"U{i}" for i in range(n_units)], periods, metrics],
        names=["entity_id", "period", "metric_id"],
    )
    facts = pd.DataFrame({"value": values[: len(idx)]}, index=idx).reset_index()
    return facts[facts["value"].notna()]


def _reference_rollup(wide: pd.DataFrame, entities: pd.DataFrame) -> pd.DataFrame:
    """The roll-up as it was computed before: one grouped reduction per metric."""
    chains = panel.ancestors(entities)
    units = wide.index.get_level_values("entity_id").unique()
    link = pd.DataFrame([(u, p) for u in units for p in chains[u]], columns=["entity_id", "_p"])
    cols = [m for m in wide.columns if not CATALOG.metrics[m].derived]
    big = wide[cols].reset_index().merge(link, on="entity_id", how="inner")
    keys = [big["_p"], big["period"]]
    out = {}
    for metric in cols:
        rule, col = CATALOG.metrics[metric].aggregation, big[metric]
        if rule in ("sum", "last"):
            out[metric] = col.groupby(keys).sum(min_count=1)
        elif rule == "mean":
            out[metric] = col.groupby(keys).mean()
        else:
            w = big[rule.split(":", 1)[1]].where(col.notna())
            out[metric] = (col * w).groupby(keys).sum(min_count=1) / w.groupby(keys).sum(
                min_count=1
            )
    frame = pd.DataFrame(out)
    frame.index.names = wide.index.names
    return pd.concat([wide, frame]).sort_index()


def _bits(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=float).view(np.int64)


@settings(max_examples=25, deadline=None)
@given(
    n_units=st.integers(1, 7),
    months=st.integers(1, 14),
    seed=st.integers(0, 2**32 - 1),
    missing=st.floats(0.0, 0.6),
    deep=st.booleans(),
)
def test_rollup_matches_per_metric_reference(n_units, months, seed, missing, deep):
    rng = np.random.default_rng(seed)
    size = n_units * months * len(CATALOG.reported)
    values = rng.lognormal(3.0, 2.0, size) * rng.choice([-1.0, 1.0], size)
    values[rng.random(size) < missing] = np.nan
    facts = _facts(values, n_units, months)
    if facts.empty:
        return
    wide = panel.to_wide(facts, metrics=CATALOG.reported)
    got = panel.rollup(wide, _group(n_units, deep=deep), CATALOG)
    want = _reference_rollup(wide, _group(n_units, deep=deep))
    assert got.index.equals(want.index)
    assert list(got.columns) == list(want.columns)
    np.testing.assert_array_equal(_bits(got), _bits(want))  # same bits, NaN included


def test_rollup_adds_parents_by_rule():
    facts = pd.DataFrame(
        {
            "entity_id": ["U0", "U1", "U0", "U1", "U0", "U1"],
            "period": pd.PeriodIndex(["2025-01"] * 6, freq="M"),
            "metric_id": ["revenue"] * 2 + ["on_time_delivery_rate"] * 2 + ["shipped_qty"] * 2,
            "value": [10.0, 5.0, 0.9, np.nan, 3.0, 1.0],
        }
    )
    wide = panel.to_wide(facts, metrics=CATALOG.reported)
    out = panel.rollup(wide, _group(2), CATALOG)
    g = out.loc[("G", pd.Period("2025-01", "M"))]
    assert g["revenue"] == 15.0
    assert g["on_time_delivery_rate"] == pytest.approx(0.9)  # mean over units that report it
    assert np.isnan(g["cogs"])  # nobody reported it: missing, not zero
    assert out.loc[("SA", pd.Period("2025-01", "M")), "revenue"] == 5.0


def test_rollup_refuses_unknown_entities():
    facts = pd.DataFrame(
        {
            "entity_id": ["X9"],
            "period": pd.PeriodIndex(["2025-01"], freq="M"),
            "metric_id": ["revenue"],
            "value": [1.0],
        }
    )
    wide = panel.to_wide(facts, metrics=CATALOG.reported)
    with pytest.raises(PerflinkError, match="X9"):
        panel.rollup(wide, _group(1), CATALOG)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_units=st.integers(1, 5))
def test_window_formulas_match_the_panel_evaluation(seed, n_units):
    # Same-period formulas of a window are evaluated on the columns' arrays; the reference
    # evaluates them on a one-month MultiIndexed panel, as evaluate_frame always did.
    rng = np.random.default_rng(seed)
    size = n_units * 15 * len(CATALOG.reported)
    values = rng.lognormal(2.0, 1.5, size) * rng.choice([-1.0, 1.0, 1.0], size)
    values[rng.random(size) < 0.1] = np.nan
    values[rng.random(size) < 0.05] = 0.0  # divisions by zero give NaN either way
    wide = panel.build(_facts(values, n_units, 15), _group(n_units), CATALOG)
    out = panel.window(wide, CATALOG, "2026-01", "2026-03")
    for metric in CATALOG.derived_order:
        f = CATALOG.formulas[metric]
        if f.uses_time or CATALOG.metrics[metric].aggregation != "formula":
            continue
        want = f.evaluate_frame(panel._stack({0: out}, out.index)).to_numpy()
        np.testing.assert_array_equal(out[metric].to_numpy().view(np.int64), want.view(np.int64))


def test_window_refuses_reversed_months():
    facts = _facts(np.ones(len(CATALOG.reported) * 3), 1, 3)
    wide = panel.build(facts, _group(1), CATALOG)
    with pytest.raises(PerflinkError, match="before start"):
        panel.window(wide, CATALOG, "2025-03", "2025-01")


def _reference_wide(facts: pd.DataFrame, metrics) -> pd.DataFrame:
    """The wide panel as pivot_table built it before (first non-missing value per key)."""
    wide = facts.pivot_table(
        index=["entity_id", "period"], columns="metric_id", values="value", aggfunc="first"
    )
    wide.columns.name = None
    periods = pd.period_range(facts["period"].min(), facts["period"].max(), freq="M")
    grid = pd.MultiIndex.from_product(
        [sorted(facts["entity_id"].unique()), periods], names=["entity_id", "period"]
    )
    wide = wide.reindex(grid)
    if metrics is not None:
        wide = wide.reindex(columns=list(metrics))
    return wide.astype(float)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["U2", "U10", "Ü1", "a"]),
            st.integers(0, 14),
            st.sampled_from(["revenue", "cogs", "zz_other", "headcount"]),
            st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))),
        ),
        min_size=1,
        max_size=60,
    ),
    metrics=st.sampled_from([None, ("revenue", "cogs", "opex"), ("headcount",)]),
)
def test_to_wide_matches_pivot_table(rows, metrics):
    # duplicates keep their first non-missing value; missing months and metrics are NaN
    facts = pd.DataFrame(rows, columns=["entity_id", "month", "metric_id", "value"])
    facts["period"] = pd.Period("2025-01", "M") + facts.pop("month")
    got = panel.to_wide(facts, metrics=metrics)
    want = _reference_wide(facts, metrics)
    assert got.index.equals(want.index)
    assert list(got.columns) == list(want.columns)
    np.testing.assert_array_equal(_bits(got), _bits(want))


def test_to_wide_refuses_empty_facts():
    empty = pd.DataFrame(columns=["entity_id", "period", "metric_id", "value"])
    with pytest.raises(PerflinkError, match="empty"):
        panel.to_wide(empty)


def _two_units() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A profitable unit and a cost centre (costs, no sales) under one subsidiary of ``G``."""
    ents = pd.DataFrame({"entity_id": ["G", "S", "P", "C"], "parent_id": [np.nan, "G", "S", "S"]})
    rows = []
    for p in pd.period_range("2026-01", "2026-03", freq="M"):
        for m, v in {"revenue": 100.0, "cogs": 60.0, "opex": 10.0, "equity": 500.0}.items():
            rows.append(("P", p, m, v))
        for m, v in {"opex": 20.0, "equity": 100.0}.items():  # no revenue, no cogs
            rows.append(("C", p, m, v))
    return pd.DataFrame(rows, columns=["entity_id", "period", "metric_id", "value"]), ents


def test_build_sums_additive_derived_metrics_over_units():
    facts, ents = _two_units()
    # a profit taxed only when positive: per unit and on the totals differ (a linear tax,
    # as the bundled catalog's, would not tell the two rules apart)
    sum_metric = CATALOG.role("profit")
    taxed = "(revenue - cogs - opex) - max(revenue - cogs - opex, 0) * 0.25"
    spec = CATALOG.metrics[sum_metric].model_copy(update={"formula": taxed})
    catalog = CATALOG.model_copy(update={"metrics": {**CATALOG.metrics, sum_metric: spec}})
    assert catalog.metrics[sum_metric].aggregation == "sum"
    wide = panel.build(facts, ents, catalog)
    month = wide.xs(pd.Period("2026-01", "M"), level="period")
    unit = catalog.formulas[sum_metric]
    # per unit from its formula; the cost centre's missing sales and cost count as zero
    p = float(unit.evaluate({"revenue": 100.0, "cogs": 60.0, "opex": 10.0}))
    c = float(unit.evaluate({"revenue": 0.0, "cogs": 0.0, "opex": 20.0}))
    assert month.at["P", sum_metric] == pytest.approx(p)
    assert month.at["C", sum_metric] == pytest.approx(c)
    for parent in ("S", "G"):  # the sum of the units, not the formula on the totals
        assert month.at[parent, sum_metric] == pytest.approx(p + c)
    consolidated = float(unit.evaluate({"revenue": 100.0, "cogs": 60.0, "opex": 30.0}))
    assert consolidated != pytest.approx(p + c)  # the fixture tells the two rules apart


def test_build_recomputes_formula_metrics_from_the_totals():
    facts, ents = _two_units()
    ratio = next(
        m
        for m in panel.recomputed(CATALOG)
        if not CATALOG.formulas[m].uses_time and CATALOG.formulas[m].names <= {"cogs", "revenue"}
    )
    wide = panel.build(facts, ents, CATALOG)
    month = wide.xs(pd.Period("2026-02", "M"), level="period")
    assert month.at["G", ratio] == pytest.approx(
        float(CATALOG.formulas[ratio].evaluate({"cogs": 60.0, "revenue": 100.0}))
    )
    assert np.isnan(month.at["C", ratio])  # a ratio of nothing is not zero
    q = panel.window(wide, CATALOG, "2026-01", "2026-03")
    sum_metric = next(m for m in CATALOG.derived_order if CATALOG.metrics[m].aggregation == "sum")
    assert q.at["G", sum_metric] == pytest.approx(q.at["P", sum_metric] + q.at["C", sum_metric])


def test_derive_only_recomputes_the_named_metrics():
    facts, ents = _two_units()
    wide = panel.build(facts, ents, CATALOG)
    sum_metric = next(m for m in CATALOG.derived_order if CATALOG.metrics[m].aggregation == "sum")
    stale = wide.assign(**{sum_metric: 1.0})
    kept = panel.derive(stale, CATALOG, only=panel.recomputed(CATALOG))
    assert (kept[sum_metric] == 1.0).all()
    assert not (panel.derive(stale, CATALOG)[sum_metric] == 1.0).all()


def test_assemble_refuses_unknown_entities():
    facts, ents = _two_units()
    with pytest.raises(PerflinkError, match="missing from the entities table"):
        panel.assemble(panel.to_wide(facts), ents[ents["entity_id"] != "C"], CATALOG)


def test_subsidiary_of_any_depth():
    sub = panel.subsidiary_of(_TREE)
    assert sub == {
        "S1": "S1",
        "S2": "S2",
        "S3": "S3",
        "U11": "S1",
        "U12": "S1",
        "U121": "S1",
        "U21": "S2",
    }
    # a loop in bad parents ends, and its entities belong to no subsidiary
    assert panel.subsidiary_of({"A": "B", "B": "A", "C": "A"}) == {}
    assert panel.subsidiary_of({}) == {}


_TREE = {"G": None, "S1": "G", "S2": "G", "S3": "G", "U11": "S1", "U12": "S1", "U121": "U12",
         "U21": "S2"}  # fmt: skip
