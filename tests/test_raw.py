"""perflink.raw: metrics from raw extracts in DuckDB, raw.yaml checks, sample --raw lines."""

from __future__ import annotations

import hashlib
import shutil
from importlib import resources
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from numpy.testing import assert_allclose

from perflink._raw_catalog import check_expression
from perflink.catalog import load_catalog
from perflink.errors import CatalogError, InputError, PerflinkError
from perflink.raw import aggregate_raw
from perflink.sample import generate

RAW_IDS = ["new_contract_amount", "shipped_qty", "revenue", "cash_collected"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("raw") / "s", seed=5, months=15, raw=True).parent


def _facts(folder: Path) -> pd.DataFrame:
    facts = pd.read_csv(folder / "facts.csv", dtype={"entity_id": str, "source_ref": str})
    facts["period"] = pd.PeriodIndex(facts["period"], freq="M")
    return facts[facts["metric_id"].isin(RAW_IDS)]


def _compare(got: pd.DataFrame, want: pd.DataFrame) -> None:
    keys = ["entity_id", "period", "metric_id"]
    both = want.merge(got, on=keys, how="outer", suffixes=("_facts", "_raw"), indicator=True)
    assert (both["_merge"] == "both").all(), both[both["_merge"] != "both"].head()
    assert_allclose(both["value_raw"], both["value_facts"], rtol=0, atol=0.01)
    assert (both["source_system_raw"] == both["source_system_facts"]).all()


def test_aggregate_raw_equals_facts(sample: Path) -> None:
    catalog = load_catalog(sample / "catalog")
    got = aggregate_raw(catalog, sample)
    assert list(got.columns) == [
        "entity_id",
        "period",
        "metric_id",
        "value",
        "source_system",
        "source_ref",
    ]
    assert got["period"].dtype == "period[M]" and got["value"].dtype == "float64"
    assert sorted(got["metric_id"].unique()) == sorted(RAW_IDS)
    assert got["source_ref"].str.fullmatch(r"[a-z_]+:\d+ lines").all()
    _compare(got, _facts(sample))


def test_aggregate_raw_months_and_metrics(sample: Path) -> None:
    catalog = load_catalog(sample / "catalog")
    got = aggregate_raw(catalog, sample, months="2026Q3", metrics=["revenue", "cash_collected"])
    assert set(got["period"].astype(str)) == {"2026-07", "2026-08", "2026-09"}
    want = _facts(sample)
    want = want[
        want["metric_id"].isin(["revenue", "cash_collected"])
        & (want["period"] >= pd.Period("2026-07", "M"))
    ]
    _compare(got, want)
    # non-contiguous month list
    two = aggregate_raw(catalog, sample, months=["2026-01", "2026-09"], metrics=["shipped_qty"])
    assert set(two["period"].astype(str)) == {"2026-01", "2026-09"}


def test_raw_lines_carry_the_vat_caliber_problem(sample: Path) -> None:
    truth = yaml.safe_load((sample / "truth.yaml").read_text(encoding="utf-8"))
    vat_sub = next(p["entity_id"] for p in truth["problems"] if p["kind"] == "caliber_vat")
    ents = pd.read_csv(sample / "entities.csv", dtype=str)
    units = set(ents.loc[ents["parent_id"] == vat_sub, "entity_id"])
    lines = duckdb.sql(
        f"SELECT entity_id, vat_rate, status FROM read_parquet("
        f"'{sample}/raw/contract_lines/*.parquet')"
    ).df()
    mine = lines["entity_id"].isin(units)
    assert mine.any() and (lines.loc[mine, "vat_rate"] == 0).all()
    assert (lines.loc[~mine, "vat_rate"] == 0.13).all()
    assert {"cancelled", "draft"} <= set(lines["status"])  # lines the 'where' must drop


def test_generate_raw_is_deterministic(tmp_path: Path, sample: Path) -> None:
    again = generate(tmp_path / "s", seed=5, months=15, raw=True).parent

    def digest(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "raw").rglob("*.parquet"))
        }

    assert digest(again) == digest(sample) and len(digest(sample)) == 5


# --- raw.yaml checks ------------------------------------------------------------------------


def _catalog_dir(tmp_path: Path, edit=None) -> Path:
    folder = tmp_path / "catalog"
    src = resources.files("perflink") / "data" / "catalog"
    folder.mkdir()
    for item in src.iterdir():
        if item.name.endswith(".yaml"):
            (folder / item.name).write_bytes(item.read_bytes())
    if edit is not None:
        doc = yaml.safe_load((folder / "raw.yaml").read_text(encoding="utf-8"))
        edit(doc)
        (folder / "raw.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), "utf-8")
    return folder


def _set(field: str, text: str, index: int = 0):
    def edit(doc: dict) -> None:
        doc["metrics"][index][field] = text

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            _set("value", "amount_net / 10000"),
            r"new_contract_amount: value .*unknown column 'amount_net'",
        ),
        (_set("where", "status = 'signed'; drop table contract_lines"), r"';'"),
        (_set("where", "1=1) FROM x UNION SELECT (1"), r"single expression"),
        (_set("value", "(SELECT max(amount) FROM collection_lines)"), r"subqueries"),
        (_set("value", "sum(amount_incl_tax)"), r"function 'sum' is not allowed"),
        (_set("value", "getenv('HOME')"), r"function 'getenv' is not allowed"),
        (_set("where", "status = 'signed' -- and more"), r"comments"),
        (_set("where", "status = 'signed"), r"does not parse"),
        (_set("value", "sum(qty) over ()", 1), r"shipped_qty: value"),
        (_set("date", "shipped_on", 1), r"date column 'shipped_on'"),
        (_set("source", "sales_lines", 2), r"revenue: unknown source 'sales_lines'"),
        (_set("metric_id", "net_profit", 2), r"net_profit: is a derived"),
        (_set("metric_id", "revenu", 2), r"revenu: not in metrics.yaml"),
        (_set("join", {"source": "customers", "key": "client"}, 3), r"join column 'client'"),
        (lambda d: d["sources"]["gl_lines"].update(path="../../etc/*.parquet"), r"relative"),
        (lambda d: d["metrics"][0].pop("date"), r"metric new_contract_amount.date: Field"),
    ],
)
def test_bad_raw_yaml_raises_catalog_error(tmp_path: Path, edit, match: str) -> None:
    folder = _catalog_dir(tmp_path, edit)
    with pytest.raises(CatalogError, match=match) as info:
        load_catalog(folder)
    assert "raw.yaml" in str(info.value)


def test_check_expression_accepts_plain_expressions() -> None:
    cols = ["a", "b", "s", "d"]
    for text in [
        "a / (1 + b) / 10000",
        "CASE WHEN s LIKE 'x%' THEN CAST(a AS DOUBLE) ELSE coalesce(b, 0) END",
        "a BETWEEN 1 AND 2 AND s IN ('p', 'q') AND d >= DATE '2026-01-01' AND b IS NOT NULL",
        "round(abs(a - b), 2)",
    ]:
        assert check_expression(text, cols) is None, text
    assert "unknown column 'x.a'" in check_expression("x.a + 1", cols)


def test_catalog_without_raw_yaml(tmp_path: Path) -> None:
    folder = _catalog_dir(tmp_path)
    (folder / "raw.yaml").unlink()
    catalog = load_catalog(folder)
    assert catalog.raw is None
    with pytest.raises(CatalogError, match="no raw.yaml"):
        aggregate_raw(catalog, tmp_path)


# --- bad extracts ---------------------------------------------------------------------------


def test_missing_files_raise_input_error(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog_dir(tmp_path))
    with pytest.raises(InputError, match=r"raw source contract_lines: no files match"):
        aggregate_raw(catalog, tmp_path)
    with pytest.raises(CatalogError, match="defines no metric 'opex'"):
        aggregate_raw(catalog, tmp_path, metrics=["opex"])
    with pytest.raises(PerflinkError, match="months"):
        aggregate_raw(catalog, tmp_path, months="not a month")


def _write(folder: Path, source: str, table: dict) -> None:
    (folder / "raw" / source).mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(table), folder / "raw" / source / "part-00000.parquet")


def _collections(folder: Path, customers: dict, lines: dict) -> None:
    _write(folder, "customers", customers | {"segment": ["key"] * len(customers["entity_id"])})
    _write(folder, "collection_lines", lines)


def test_tiny_join_by_customer(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog_dir(tmp_path))
    day = pd.to_datetime(["2026-07-03", "2026-07-30", "2026-08-01"]).date
    _collections(
        tmp_path,
        {"customer_id": ["C1", "C2"], "entity_id": ["U1", "U2"]},
        {
            "line_id": [1, 2, 3],
            "customer_id": ["C1", "C1", "C2"],
            "received_date": day,
            "amount": [10_000.0, 5_000.0, 2_500.0],
        },
    )
    got = aggregate_raw(catalog, tmp_path, metrics=["cash_collected"])
    assert got[["entity_id", "value", "source_system", "source_ref"]].values.tolist() == [
        ["U1", 1.5, "TMS", "collection_lines:2 lines"],
        ["U2", 0.25, "TMS", "collection_lines:1 lines"],
    ]
    assert got["period"].astype(str).tolist() == ["2026-07", "2026-08"]


@pytest.mark.parametrize(
    ("customers", "match"),
    [
        ({"customer_id": ["C1", "C1"], "entity_id": ["U1", "U2"]}, r"customer_id C1 belong"),
        ({"customer_id": ["C9"], "entity_id": ["U1"]}, r"1 line\(s\) of source collection"),
    ],
)
def test_bad_join_raises_input_error(tmp_path: Path, customers: dict, match: str) -> None:
    catalog = load_catalog(_catalog_dir(tmp_path))
    _collections(
        tmp_path,
        customers,
        {
            "line_id": [1],
            "customer_id": ["C1"],
            "received_date": pd.to_datetime(["2026-07-03"]).date,
            "amount": [1.0],
        },
    )
    with pytest.raises(InputError, match=match):
        aggregate_raw(catalog, tmp_path, metrics=["cash_collected"])


def test_bad_columns_raise_input_error(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog_dir(tmp_path))
    base = {
        "line_id": [1],
        "entity_id": ["U1"],
        "posting_date": pd.to_datetime(["2026-07-03"]).date,
    }
    _write(tmp_path, "gl_lines", base | {"account": ["6001"], "credit": [1.0]})
    with pytest.raises(InputError, match=r"gl_lines .*\['debit'\] declared in raw.yaml"):
        aggregate_raw(catalog, tmp_path, metrics=["revenue"])
    shutil.rmtree(tmp_path / "raw")
    _write(tmp_path, "gl_lines", base | {"account": ["6001"], "credit": ["x"], "debit": ["y"]})
    with pytest.raises(InputError, match=r"raw metric revenue .*query failed"):
        aggregate_raw(catalog, tmp_path, metrics=["revenue"])
