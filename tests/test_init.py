"""Tests for ``perflink init`` (perflink._init_scaffold): a new company's folder that checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from perflink._init_scaffold import SCAFFOLD_FILES, scaffold
from perflink.catalog import load_catalog
from perflink.check import check_review
from perflink.cli import main
from perflink.errors import OutputError

#: A small company in the scaffold's catalog: a group, two subsidiaries, four centres.
ENTITIES = [
    ("GRP", "", "Example Group", "", "group", "", ""),
    ("EAST", "东区", "East", "GRP", "subsidiary", "", ""),
    ("WEST", "", "West", "GRP", "subsidiary", "", ""),
    ("E1", "东一店", "", "EAST", "department", "profit", "stores"),
    ("E2", "", "East warehouse", "EAST", "department", "cost", "logistics"),
    ("W1", "", "West store", "WEST", "department", "profit", "stores"),
    ("W2", "", "West office", "WEST", "department", "functional", "admin"),
]


def _fill(folder: Path) -> None:
    """Replace the example rows by a year of consistent data (what a user does next)."""
    rows = ["entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager"]
    rows += [",".join([*e, f"Manager {e[0]}"]) for e in ENTITIES]
    (folder / "entities.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    facts = ["entity_id,period,metric_id,value,source_system,source_ref"]
    targets = ["entity_id,year,period,metric_id,target,kind"]
    for i, unit in enumerate(("E1", "E2", "W1", "W2")):
        for m in range(1, 10):
            period = f"2026-{m:02d}"
            orders = 100 + 10 * i + m
            sales = orders * 1.5
            values = {
                "sales": sales,
                "cost_of_sales": 0.6 * sales,
                "operating_expense": 0.2 * sales,
                "order_count": orders,
            }
            for metric, value in values.items():
                facts.append(f"{unit},{period},{metric},{value:.2f},ERP,{unit}-{period}")
        for metric in ("sales", "cost_of_sales", "operating_expense", "order_count"):
            targets.append(f"{unit},2026,,{metric},{2000 + 100 * i},budget")
    (folder / "facts.csv").write_text("\n".join(facts) + "\n", encoding="utf-8")
    (folder / "targets.csv").write_text("\n".join(targets) + "\n", encoding="utf-8")
    (folder / "schemes.csv").write_text(
        "scheme_id,center_type,entity_id,metric_id,weight,category,rule,floor,cap,rule_params\n"
        "SCH-P,profit,,operating_profit,0.6,financial,linear,0.6,1.2,{}\n"
        "SCH-P,profit,,order_count,0.4,business,linear,0.6,1.2,{}\n"
        "SCH-C,cost,,cost_of_sales,0.4,financial,linear,0.6,1.2,{}\n"
        "SCH-C,cost,,order_count,0.6,business,linear,0.6,1.2,{}\n"
        "SCH-F,functional,,operating_expense,1.0,management,linear,0.6,1.2,{}\n",
        encoding="utf-8",
    )
    (folder / "adjustments.csv").write_text(
        "entity_id,period,metric_id,amount,reason,approved_by\n", encoding="utf-8"
    )
    (folder / "bonus.csv").write_text(
        "entity_id,year,base_bonus,pool_budget\nE1,2026,30,\nW1,2026,25,\n", encoding="utf-8"
    )


def test_scaffold_writes_every_file_and_its_catalog_loads(tmp_path: Path) -> None:
    out = scaffold(tmp_path / "acme")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == sorted(
        SCAFFOLD_FILES
    )
    catalog = load_catalog(out / "catalog")
    params = yaml.safe_load((out / "params.yaml").read_text(encoding="utf-8"))
    # no forecast or summary block: their defaults come from the catalog's roles
    assert "forecast" not in params and "summary" not in params
    from perflink.options import ForecastOptions

    forecast = ForecastOptions().for_catalog(catalog)
    assert forecast.profit_metric == catalog.role("profit") in catalog.formulas
    assert set(forecast.metrics) <= set(catalog.reported)
    for name in ("entities", "facts", "targets", "schemes", "adjustments", "bonus"):
        lines = (out / f"{name}.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 2, name  # header and one example row
    assert "perflink check --params params.yaml" in (out / "README.md").read_text("utf-8")
    assert check_review(out / "params.yaml").ok  # as written, the examples check too


def test_scaffold_filled_with_consistent_data_passes_check(tmp_path: Path) -> None:
    out = scaffold(tmp_path / "acme")
    _fill(out)
    result = check_review(out / "params.yaml")
    assert result.ok, result.message()
    assert not result.warnings
    names = result.inputs.entities.set_index("entity_id")
    assert names.loc["WEST", "name_zh"] == "West"  # one name is enough
    assert names.loc["E1", "name_en"] == "东一店"


def test_scaffold_filled_with_a_mistake_fails_check(tmp_path: Path) -> None:
    out = scaffold(tmp_path / "acme")
    _fill(out)
    text = (out / "facts.csv").read_text(encoding="utf-8")
    (out / "facts.csv").write_text(text.replace(",order_count,", ",orders,", 1), "utf-8")
    result = check_review(out / "params.yaml")
    assert "'orders' is not a metric in the catalog" in result.message()


def test_scaffold_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(OutputError, match="not empty"):
        scaffold(tmp_path / "busy")
    assert (tmp_path / "busy" / "mine.txt").read_text(encoding="utf-8") == "keep"
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="is a file"):
        scaffold(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    assert (scaffold(tmp_path / "empty") / "params.yaml").is_file()


def test_cli_init_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "co")]) == 0
    assert "README.md" in capsys.readouterr().out
    assert main(["init", str(tmp_path / "co")]) == 2
    assert "never overwrites" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.kernel
def test_scaffold_filled_reviews_end_to_end(tmp_path: Path) -> None:
    # The product's promise to a new user: init, fill, check, review -- every task page published.
    from perflink.runner import run_review

    out = scaffold(tmp_path / "acme")
    _fill(out)
    result = run_review(out / "params.yaml", out_dir=tmp_path / "reports")
    assert result.status == "ok"
    pages = {p.name for p in result.report_dir.glob("*.html")}
    assert {"index.html", "mapping.html", "kpi.html", "forecast.html", "anomaly.html"} <= pages
    assert "summary.html" in pages
