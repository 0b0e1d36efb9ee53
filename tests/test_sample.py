"""The sample generator: deterministic, causally coherent, planted problems present or absent."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from perflink import panel
from perflink.catalog import check_schemes, load_catalog
from perflink.errors import PerflinkError
from perflink.sample import generate


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("planted") / "s", seed=7).parent


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("clean") / "s", seed=7, clean=True).parent


def _load(folder: Path):
    facts = pd.read_csv(folder / "facts.csv", dtype={"entity_id": str})
    facts["period"] = pd.PeriodIndex(facts["period"], freq="M")
    entities = pd.read_csv(folder / "entities.csv", dtype=str, keep_default_na=False)
    catalog = load_catalog(folder / "catalog")
    return facts, entities, catalog, panel.build(facts, entities, catalog)


def _truth(folder: Path) -> dict[str, dict]:
    doc = yaml.safe_load((folder / "truth.yaml").read_text(encoding="utf-8"))
    return {p["kind"]: p for p in doc["problems"]}


def test_same_seed_gives_identical_bytes(tmp_path: Path, planted: Path):
    again = generate(tmp_path / "again", seed=7).parent
    assert _digest(again) == _digest(planted)
    other = generate(tmp_path / "other", seed=8).parent
    assert _digest(other)["facts.csv"] != _digest(planted)["facts.csv"]


def test_group_shape(planted: Path):
    entities = pd.read_csv(planted / "entities.csv", dtype=str, keep_default_na=False)
    units = entities[entities["kind"] == "department"]
    assert (entities["kind"] == "subsidiary").sum() >= 6
    assert len(units) >= 40
    assert set(units["center_type"]) == {"profit", "cost", "functional"}
    facts = pd.read_csv(planted / "facts.csv", usecols=["period"])
    assert facts["period"].min() == "2023-01" and facts["period"].max() == "2026-09"
    assert entities["name_zh"].str.contains("有限公司").any()


def test_causal_structure_contracts_lead_revenue(clean: Path):
    _, entities, _, wide = _load(clean)
    sales = entities.loc[entities["center_type"] == "profit", "entity_id"]
    corr = {lag: [] for lag in (0, 1, 2, 3)}
    for eid in sales:
        s = wide.loc[eid]
        for lag in corr:
            corr[lag].append(s["revenue"].corr(s["new_contract_amount"].shift(lag)))
    mean = {lag: np.nanmean(v) for lag, v in corr.items()}
    assert max(mean, key=mean.get) in (1, 2), mean
    # shipments × price make revenue within 5% every month on the clean sample
    ratio = (wide["shipped_qty"] * wide["avg_unit_price"] / 1e4 / wide["revenue"]).dropna()
    units = ratio.index.get_level_values("entity_id").isin(sales)
    assert (ratio[units] - 1).abs().max() < 0.05


def test_planted_problems_are_in_the_data(planted: Path):
    truth = _truth(planted)
    assert {
        "caliber_vat",
        "recognition_gap",
        "early_recognition",
        "weak_driver",
        "expense_spike",
        "yield_drop",
        "budget_miss",
        "known_event",
        "missing_data",
        "scheme_violation",
        "bonus_overrun",
    } <= set(truth)
    facts, entities, catalog, wide = _load(planted)

    vat = truth["caliber_vat"]["entity_id"]
    s = wide.loc[vat]
    ratio = s["new_contract_amount"].rolling(12).sum() / s["revenue"].rolling(12).sum()
    assert ratio.dropna().median() == pytest.approx(1.13, abs=0.03)

    gap = truth["recognition_gap"]
    g = wide.loc[gap["entity_id"]]
    for p in gap["periods"]:
        row = g.loc[pd.Period(p, "M")]
        assert row["revenue"] / (row["shipped_qty"] * row["avg_unit_price"] / 1e4) > 1.05

    spike = truth["expense_spike"]
    opex = wide.loc[spike["entity_id"], "opex"]
    p = pd.Period(spike["periods"][0], "M")
    assert opex[p] > 1.5 * opex.drop(p).tail(12).median()

    yd = truth["yield_drop"]
    y = wide.loc[yd["entity_id"], "yield_rate"]
    assert y[pd.Period(yd["periods"][0], "M")] < y.iloc[:-3].min() - 0.03

    missing = truth["missing_data"]
    have = facts[(facts["entity_id"] == missing["entity_id"]) & (facts["metric_id"] == "headcount")]
    assert missing["periods"][0] not in set(have["period"].astype(str))

    adjustments = pd.read_csv(planted / "adjustments.csv", dtype=str)
    assert list(adjustments["entity_id"]) == [truth["known_event"]["entity_id"]]

    schemes = pd.read_csv(planted / "schemes.csv", dtype={"entity_id": str}, keep_default_na=False)
    violations = check_schemes(schemes, catalog.policy)
    assert set(violations["entity_id"]) == {truth["scheme_violation"]["entity_id"]}

    bonus = pd.read_csv(planted / "bonus.csv", dtype={"entity_id": str})
    sub = truth["bonus_overrun"]["entity_id"]
    members = entities.loc[entities["parent_id"] == sub, "entity_id"]
    base = bonus.loc[bonus["entity_id"].isin(members), "base_bonus"].sum()
    assert bonus.loc[bonus["entity_id"] == sub, "pool_budget"].iloc[0] < base


def test_budget_miss_unit_misses_and_others_are_on_budget(planted: Path):
    truth = _truth(planted)["budget_miss"]
    targets = pd.read_csv(planted / "targets.csv", dtype={"entity_id": str, "period": str})
    facts = pd.read_csv(planted / "facts.csv", dtype={"entity_id": str})
    ytd = facts[(facts["metric_id"] == "revenue") & facts["period"].str.startswith("2026")]
    budget = targets[
        (targets["metric_id"] == "revenue")
        & (targets["kind"] == "budget")
        & targets["period"].str.startswith("2026-0", na=False)
    ]
    budget = budget[budget["period"] <= "2026-09"]
    ratio = ytd.groupby("entity_id")["value"].sum() / budget.groupby("entity_id")["target"].sum()
    assert ratio[truth["entity_id"]] < 0.9
    others = ratio.drop(truth["entity_id"])
    assert (others.between(0.88, 1.12)).mean() > 0.9


def test_clean_sample_has_no_planted_problems(clean: Path):
    assert _truth(clean) == {}
    facts, entities, catalog, wide = _load(clean)
    schemes = pd.read_csv(clean / "schemes.csv", dtype={"entity_id": str}, keep_default_na=False)
    assert check_schemes(schemes, catalog.policy).empty
    assert pd.read_csv(clean / "adjustments.csv").empty
    sales = entities.loc[entities["center_type"] == "profit", "entity_id"]
    ratio = wide["new_contract_amount"].groupby(level=0).apply(
        lambda s: s.rolling(12).sum().iloc[-1]
    ) / wide["revenue"].groupby(level=0).apply(lambda s: s.rolling(12).sum().iloc[-1])
    assert (ratio[sales] - 1).abs().max() < 0.05
    n_units = len(entities[entities["kind"] == "department"])
    assert facts.groupby("period")["entity_id"].nunique().eq(n_units).all()


def test_scales_and_rejects_bad_sizes(tmp_path: Path):
    params = generate(tmp_path / "big", entities=300, months=24, seed=1)
    entities = pd.read_csv(params.parent / "entities.csv", dtype=str)
    assert (entities["kind"] == "department").sum() == 300
    smallest = generate(tmp_path / "smallest", entities=28, seed=3)
    truth = yaml.safe_load((smallest.parent / "truth.yaml").read_text(encoding="utf-8"))
    assert len(truth["problems"]) == 11
    with pytest.raises(PerflinkError, match="--entities 3"):
        generate(tmp_path / "tiny", entities=3)
    with pytest.raises(PerflinkError, match="--months 5"):
        generate(tmp_path / "short", months=5)


def test_extended_sample_keeps_history_and_adds_next_quarter(tmp_path: Path, planted: Path):
    longer = generate(tmp_path / "q4", seed=7, months=48, end="2026-12").parent
    short = pd.read_csv(planted / "facts.csv")
    long = pd.read_csv(longer / "facts.csv")
    keys = ["entity_id", "period", "metric_id"]
    both = short.merge(long, on=keys, how="left", suffixes=("", "_long"))
    assert both["value_long"].notna().all()
    assert (both["value"] == both["value_long"]).all()
    assert long["period"].max() == "2026-12"
    params = yaml.safe_load((longer / "params.yaml").read_text(encoding="utf-8"))
    assert str(params["quarter"]) == "2026Q4"
    kinds = [p["kind"] for p in yaml.safe_load((longer / "truth.yaml").read_text())["problems"]]
    assert kinds.count("expense_spike") == 2


def test_budgets_cover_the_whole_review_year(planted: Path):
    targets = pd.read_csv(planted / "targets.csv", dtype={"period": str})
    revenue = targets[(targets["metric_id"] == "revenue") & (targets["year"] == 2026)]
    assert set(revenue["period"].dropna()) == {f"2026-{m:02d}" for m in range(1, 13)}
    assert (revenue["kind"] == "assessment").sum() == revenue["entity_id"].nunique()


def test_the_sample_scenario_is_its_params_and_fits_its_size(tmp_path):
    """The sample's tenure targets and demand shock are company data in its params (no
    option default names them), written for the subsidiaries it generated; params/2026Q3.yaml
    carries the same block for the default sample."""
    import yaml

    from perflink import sample

    small = yaml.safe_load(sample.generate(tmp_path / "s", entities=28).read_text("utf-8"))
    entities = pd.read_csv(tmp_path / "s" / "entities.csv")
    subsidiaries = set(entities.loc[entities["kind"] == "subsidiary", "entity_id"])
    assert {t["entity_id"] for t in small["kpi"]["tenure"]} == subsidiaries
    default = yaml.safe_load(sample.generate(tmp_path / "d").read_text("utf-8"))
    project = Path(__file__).resolve().parents[1] / "params" / "2026Q3.yaml"
    assert default["kpi"] == yaml.safe_load(project.read_text("utf-8"))["kpi"]
