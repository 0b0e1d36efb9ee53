"""Catalog loading and validation: the bundled catalog loads; every kind of mistake is named."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pytest
import yaml

from perflink.catalog import load_catalog
from perflink.errors import CatalogError

BUNDLED = Path(str(resources.files("perflink") / "data" / "catalog"))


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(BUNDLED, target)
    return target


def _edit(folder: Path, name: str, fn) -> None:
    path = folder / f"{name}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


def test_bundled_catalog_loads_with_three_tiers():
    cat = load_catalog(BUNDLED)
    assert {"net_profit", "eva", "roe"} <= set(cat.tier(1))
    assert {"revenue", "cost_ratio", "asset_turnover"} <= set(cat.tier(2))
    assert {"new_customers", "yield_rate", "avg_unit_price", "on_time_delivery_rate"} <= set(
        cat.tier(3)
    )
    # derived metrics come after what they read
    order = cat.derived_order
    assert order.index("net_profit") < order.index("roe")
    assert order.index("net_profit") < order.index("net_profit_growth")
    assert cat.metric("roe").formula == "net_profit / equity"
    assert {mp.driver for mp in cat.mappings_to("revenue")} >= {
        "new_contract_amount",
        "shipped_qty",
    }
    assert cat.rule("R01").tolerance == pytest.approx(0.05)


def test_unknown_metric_lookup_suggests_close_match():
    cat = load_catalog(BUNDLED)
    with pytest.raises(CatalogError, match="did you mean revenue"):
        cat.metric("revenu")


def test_mapping_to_unknown_metric_is_named(catalog_dir: Path):
    _edit(catalog_dir, "mappings", lambda d: d["mappings"][0].update(target="revenu"))
    with pytest.raises(
        CatalogError, match=r"mappings\.yaml: mapping M01, target: unknown metric 'revenu'"
    ):
        load_catalog(catalog_dir)


def test_formula_cycle_is_reported_with_its_path(catalog_dir: Path):
    def make_cycle(doc):
        for m in doc["metrics"]:
            if m["id"] == "equity":
                m["formula"] = "net_profit / roe"
                m["aggregation"] = "formula"

    _edit(catalog_dir, "metrics", make_cycle)
    with pytest.raises(CatalogError, match=r"cycle.*(roe|equity|net_profit)"):
        load_catalog(catalog_dir)


def test_formula_with_unknown_metric_names_metric_and_position(catalog_dir: Path):
    def bad(doc):
        doc["metrics"][0]["formula"] = "revenue - cogz"

    _edit(catalog_dir, "metrics", bad)
    with pytest.raises(CatalogError, match=r"metric net_profit.*cogz"):
        load_catalog(catalog_dir)


def test_injection_in_a_formula_is_refused(catalog_dir: Path):
    def bad(doc):
        doc["metrics"][0]["formula"] = "__import__('os').system('echo hacked')"

    _edit(catalog_dir, "metrics", bad)
    with pytest.raises(CatalogError, match="net_profit"):
        load_catalog(catalog_dir)


def test_missing_field_and_bad_tier_are_named(catalog_dir: Path):
    def bad(doc):
        del doc["metrics"][5]["caliber"]
        doc["metrics"][6]["tier"] = 4

    _edit(catalog_dir, "metrics", bad)
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_dir)
    text = str(err.value)
    assert "field 'caliber'" in text and "field 'tier'" in text and "metrics.yaml" in text


def test_duplicate_ids_and_missing_file(catalog_dir: Path):
    _edit(catalog_dir, "rules", lambda d: d["rules"].append(dict(d["rules"][0])))
    with pytest.raises(CatalogError, match="rule id 'R01' is defined twice"):
        load_catalog(catalog_dir)
    (catalog_dir / "rules.yaml").unlink()
    with pytest.raises(CatalogError, match="rules.yaml is missing"):
        load_catalog(catalog_dir)


def test_bad_aggregation_weight_and_policy(catalog_dir: Path):
    def bad(doc):
        for m in doc["metrics"]:
            if m["id"] == "yield_rate":
                m["aggregation"] = "wmean:production_qtty"

    _edit(catalog_dir, "metrics", bad)
    with pytest.raises(CatalogError, match="yield_rate: aggregation weight unknown metric"):
        load_catalog(catalog_dir)


def test_policy_bonus_steps_must_increase(catalog_dir: Path):
    _edit(catalog_dir, "policy", lambda d: d["policy"]["bonus_coefficient"].reverse())
    with pytest.raises(CatalogError, match="policy.yaml"):
        load_catalog(catalog_dir)


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "nope")


def _scheme(rows):
    import pandas as pd

    return pd.DataFrame(
        rows, columns=["scheme_id", "center_type", "entity_id", "metric_id", "weight", "category"]
    )


def test_check_schemes_flags_weights_not_summing_to_100():
    from perflink.catalog import check_schemes

    policy = load_catalog(BUNDLED).policy
    bad = _scheme(
        [
            ("A", "profit", "", "net_profit", 0.6, "financial"),
            ("A", "profit", "", "new_customers", 0.35, "business"),
        ]
    )
    found = check_schemes(bad, policy, lang="en")
    assert list(found["rule_id"]) == ["weights_sum"]
    assert found["value"].iloc[0] == pytest.approx(0.95)
    assert "sum to 95%" in found["message"].iloc[0]


def test_check_schemes_flags_centre_type_constraints():
    from perflink.catalog import check_schemes

    policy = load_catalog(BUNDLED).policy
    rows = [
        ("P", "profit", "U1", "net_profit", 0.40, "financial"),
        ("P", "profit", "U1", "new_customers", 0.45, "business"),
        ("P", "profit", "U1", "mgmt_task_completion", 0.15, "management"),
        ("C", "cost", "", "production_cost", 0.45, "financial"),
        ("C", "cost", "", "yield_rate", 0.45, "business"),
        ("C", "cost", "", "mgmt_task_completion", 0.10, "management"),
        ("F", "functional", "", "opex", 0.70, "financial"),
        ("F", "functional", "", "mgmt_task_completion", 0.30, "management"),
        ("OK", "profit", "", "net_profit", 0.55, "financial"),
        ("OK", "profit", "", "new_customers", 0.35, "business"),
        ("OK", "profit", "", "mgmt_task_completion", 0.10, "management"),
    ]
    found = check_schemes(_scheme(rows), policy)
    got = set(zip(found["scheme_id"], found["rule_id"], strict=True))
    assert got == {
        ("P", "financial_min"),
        ("P", "business_max"),
        ("C", "business_min"),
        ("C", "financial_max"),
        ("F", "management_min"),
    }
    assert found.loc[found["scheme_id"] == "P", "entity_id"].eq("U1").all()
    assert "财务类权重 40%" in " ".join(found["message"])


# --- roles, units and names (any company's catalog) ---


def _metric(folder: Path, metric_id: str) -> dict:
    doc = yaml.safe_load((folder / "metrics.yaml").read_text(encoding="utf-8"))
    return next(m for m in doc["metrics"] if m["id"] == metric_id)


def _set(folder: Path, metric_id: str, **fields) -> None:
    def change(doc):
        for m in doc["metrics"]:
            if m["id"] == metric_id:
                m.update(fields)
                for key in [k for k, v in fields.items() if v is None]:
                    del m[key]

    _edit(folder, "metrics", change)


def test_roles_money_unit_and_flows_of_a_nested_profit_tree(catalog_dir: Path):
    catalog = load_catalog(catalog_dir)
    profit = catalog.role("profit")
    assert profit is not None and catalog.metrics[profit].derived
    flows = catalog.flows_of(profit)
    assert flows and all(not catalog.metrics[f].derived for f in flows)
    assert catalog.money_unit == catalog.metrics[profit].unit
    assert catalog.in_money_unit(profit) == 1.0
    assert catalog.in_money_unit(catalog.tier(3)[0]) in (None, 1.0)
    # a metric read at an earlier month is not a same-month flow tree
    growth = next(m for m, f in catalog.formulas.items() if f.uses_time)
    assert catalog.flows_of(growth) is None
    with pytest.raises(CatalogError, match="unknown metric role 'bogus'"):
        catalog.role("bogus")


def test_retail_example_profit_tree_is_expanded_through_derived_metrics():
    folder = resources.files("perflink") / "data" / "examples" / "retail" / "catalog"
    catalog = load_catalog(Path(str(folder)))
    profit = catalog.role("profit")
    flows = catalog.flows_of(profit)
    # operating income <- contribution <- gross margin: the flows are three levels down
    assert len(flows) > len(catalog.formulas[profit].inputs)
    assert not any(catalog.metrics[f].derived for f in flows)
    assert catalog.money_unit == "kUSD" and catalog.role("cash_collection") is None


def test_two_metrics_with_one_role_and_two_currencies_are_refused(catalog_dir: Path):
    catalog = load_catalog(catalog_dir)
    profit, sales = catalog.role("profit"), catalog.role("sales")
    _set(catalog_dir, sales, role="profit")
    with pytest.raises(CatalogError, match=f"{profit}, {sales} all have role 'profit'"):
        load_catalog(catalog_dir)
    _set(catalog_dir, sales, role="sales", unit="kUSD")
    with pytest.raises(CatalogError, match="more than one currency"):
        load_catalog(catalog_dir)


def test_one_name_is_enough_and_pages_fall_back_to_it(catalog_dir: Path):
    catalog = load_catalog(catalog_dir)
    mid = catalog.tier(2)[0]
    english = _metric(catalog_dir, mid)["name_en"]
    _set(catalog_dir, mid, name_zh=None)
    assert load_catalog(catalog_dir).metrics[mid].name("zh") == english
    _set(catalog_dir, mid, name_en=None)
    with pytest.raises(CatalogError, match=f"entry {mid}.*name_zh, name_en or both"):
        load_catalog(catalog_dir)


def test_a_copy_recomputes_what_is_derived_from_its_fields(catalog_dir: Path):
    catalog = load_catalog(catalog_dir)
    assert catalog.money_unit is not None and catalog.formulas  # cached on the original
    profit = catalog.role("profit")
    metrics = {
        m: (spec.model_copy(update={"unit": "kUSD"}) if spec.unit_info.currency else spec)
        for m, spec in catalog.metrics.items()
    }
    copy = catalog.model_copy(update={"metrics": metrics})
    assert copy.money_unit == "kUSD" and catalog.money_unit != "kUSD"
    assert set(copy.formulas) == set(catalog.formulas) and profit in copy.formulas
