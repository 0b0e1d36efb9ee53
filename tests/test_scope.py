"""Scoped reviews (``scope: S02`` / ``perflink review --scope S02``): inputs, loop, full run.

The fast tests check the input filtering and the like-with-like review loop on tables built
here; the slow test runs the whole sample review scoped to one subsidiary and scans every
output byte for any other entity's id, name or manager.
"""

from __future__ import annotations

import html
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from perflink.errors import InputError, ParamsError
from perflink.io import Inputs, empty_table
from perflink.options import KpiOptions
from perflink.review import _scope_params, open_review, scope_inputs, subtree
from perflink.summary._loop import previous_tables

ENTITIES = """\
entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager
G00,集团,Group,,group,,,甲一
S01,一公司,First Co.,G00,subsidiary,,retail,乙二
S02,二公司,Second Co.,G00,subsidiary,,manufacturing,丙三
S01D01,一公司门店,First Store,S01,department,profit,retail,丁四
S02D01,二公司销售部,Second Sales,S02,department,profit,manufacturing,戊五
S02D02,二公司工厂,Second Plant,S02,department,cost,manufacturing,己六
"""


def _table(kind: str, rows: list[dict]) -> pd.DataFrame:
    base = empty_table(kind)
    df = pd.DataFrame(rows, columns=base.columns).astype(base.dtypes.to_dict())
    df.attrs["source"] = f"{kind}.csv"
    return df


@pytest.fixture
def inputs() -> Inputs:
    ent = pd.read_csv(io.StringIO(ENTITIES), dtype="str")
    ent.attrs["source"] = "entities.csv"
    m = pd.Period("2026-07", "M")
    facts = _table(
        "facts",
        [
            dict(entity_id=e, period=m, metric_id="revenue", value=v, source_system="ERP")
            for e, v in (("S01D01", 1.0), ("S02D01", 2.0), ("S02D02", 3.0))
        ],
    )
    targets = _table(
        "targets",
        [
            dict(entity_id=e, year=2026, period=m, metric_id="revenue", target=1.0, kind="budget")
            for e in ("G00", "S01", "S02", "S02D01")
        ],
    )
    scheme = dict(
        center_type="profit", metric_id="revenue", weight=1.0, category="financial",
        rule="linear", floor=0.0, cap=1.2, rule_params="{}",
    )  # fmt: skip
    schemes = _table(
        "schemes",
        [
            dict(scheme_id="SCH-PROFIT", entity_id=None, **scheme),
            dict(scheme_id="SCH-S01D01", entity_id="S01D01", **scheme),
            dict(scheme_id="SCH-S02D01", entity_id="S02D01", **scheme),
        ],
    )
    adjustments = _table(
        "adjustments",
        [
            dict(entity_id=e, period=m, metric_id="revenue", amount=1.0, reason="r")
            for e in ("S01D01", "S02D02")
        ],
    )
    bonus = _table(
        "bonus",
        [
            dict(entity_id="G00", year=2026, base_bonus=0.0, pool_budget=100.0),
            dict(entity_id="S02", year=2026, base_bonus=0.0, pool_budget=40.0),
            dict(entity_id="S02D01", year=2026, base_bonus=5.0),
            dict(entity_id="S01D01", year=2026, base_bonus=5.0),
        ],
    )
    return Inputs(ent, facts, targets, schemes, adjustments, bonus)


def test_subtree_lists_entity_and_descendants(inputs: Inputs) -> None:
    assert subtree(inputs.entities, "S02") == ["S02", "S02D01", "S02D02"]
    assert len(subtree(inputs.entities, "G00")) == 6


def test_scope_inputs_keeps_only_the_subtree_rerooted(inputs: Inputs) -> None:
    out = scope_inputs(inputs, "S02")
    ent = out.entities
    assert ent["entity_id"].tolist() == ["S02", "S02D01", "S02D02"]
    assert ent["parent_id"].isna().tolist() == [True, False, False]  # S02 is the top now
    assert ent.loc[0, "kind"] == "subsidiary"
    assert set(out.facts["entity_id"]) == {"S02D01", "S02D02"}
    assert out.facts["value"].sum() == 5.0
    assert set(out.targets["entity_id"]) == {"S02", "S02D01"}
    assert out.schemes["scheme_id"].tolist() == ["SCH-PROFIT", "SCH-S02D01"]
    assert out.adjustments["entity_id"].tolist() == ["S02D02"]
    assert out.bonus["entity_id"].tolist() == ["S02", "S02D01"]
    for kind in ("entities", "facts", "targets", "schemes", "adjustments", "bonus"):
        before, after = getattr(inputs, kind), getattr(out, kind)
        assert after.dtypes.to_dict() == before.dtypes.to_dict(), kind
        assert after.attrs["source"] == before.attrs["source"], kind
        assert after.index.equals(pd.RangeIndex(len(after))), kind
    # nothing of S01's subtree or the group survives in any table
    text = "".join(getattr(out, k).to_csv() for k in ("entities", "facts", "targets", "bonus"))
    for other in ("G00", "S01", "集团", "一公司", "First"):
        assert other not in text
    assert inputs.entities.loc[2, "parent_id"] == "G00"  # the input is not modified


def test_scope_inputs_unknown_entity_names_close_matches(inputs: Inputs) -> None:
    with pytest.raises(ParamsError, match=r"'S2' is not an entity_id in entities\.csv.*'S02'"):
        scope_inputs(inputs, "S2")


def test_scope_inputs_department_is_refused(inputs: Inputs) -> None:
    with pytest.raises(ParamsError, match=r"'S02D01' is a department.*'S02'"):
        scope_inputs(inputs, "S02D01")


def _write_review(folder: Path, *, scope: str | None = None, kpi: dict | None = None) -> Path:
    from conftest import make_review_dir

    extra = {"scope": scope} if scope else {}
    if kpi:
        extra["kpi"] = kpi
    path = make_review_dir(folder, **extra)
    (folder / "entities.csv").write_text(ENTITIES, encoding="utf-8")
    return path


def test_open_review_scope_drops_options_of_other_entities(tmp_path: Path) -> None:
    tenure = [
        dict(entity_id=e, metric_id="net_profit", start_year=2024, end_year=2026)
        for e in ("S01", "S02")
    ]
    params = _write_review(tmp_path / "r", kpi={"tenure": tenure})
    review = open_review(params, scope="S02")
    assert review.scope == "S02" and "scope='S02'" in repr(review)
    assert [t.entity_id for t in review.params.kpi.tenure] == ["S02"]
    # default environment change is for retail; S02's subtree is manufacturing only
    assert review.params.kpi.environment_changes == ()
    written = review.params.redacted()
    assert [t["entity_id"] for t in written["kpi"]["tenure"]] == ["S02"]
    assert written["scope"] == "S02"
    assert open_review(params).params.scope is None  # no scope: the whole group


def test_open_review_unknown_scope_raises(tmp_path: Path) -> None:
    params = _write_review(tmp_path / "r")
    with pytest.raises(ParamsError, match=r"scope: 'S09' is not an entity_id"):
        open_review(params, scope="S09")


def test_scope_from_params_file(tmp_path: Path) -> None:
    params = _write_review(tmp_path / "r", scope="S01")
    review = open_review(params, scope="")  # the notebooks' default: the params decide
    assert review.scope == "S01" and review.params.report_name == "2026Q3-S01"


def test_scope_params_keeps_group_options_for_group_scope(tmp_path: Path) -> None:
    tenure = [
        dict(entity_id=e, metric_id="net_profit", start_year=2024, end_year=2026)
        for e in ("S01", "S02")
    ]
    review = open_review(_write_review(tmp_path / "r", kpi={"tenure": tenure}))
    ent = pd.read_csv(tmp_path / "r" / "entities.csv", dtype="str")
    scoped = _scope_params(review.params, ent, subtree(ent, "G00"))
    assert scoped.kpi.tenure == review.params.kpi.tenure and len(scoped.kpi.tenure) == 2
    assert scoped.kpi.environment_changes == KpiOptions().environment_changes  # retail is in
    assert scoped.redacted() == review.params.redacted()
    assert scoped.source == review.params.source


def _report(reports: Path, name: str, scope: str | None) -> Path:
    tables = reports / name / "tables"
    tables.mkdir(parents=True)
    (reports / name / "manifest.json").write_text(json.dumps({"scope": scope}), "utf-8")
    return tables


def test_review_loop_compares_like_with_like(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    group = _report(reports, "2026Q2", None)
    s02 = _report(reports, "2026Q2-S02", "S02")
    run_tables = reports / ".tmp-run" / "tables"
    run_tables.mkdir(parents=True)
    q = pd.Period("2026Q3", "Q")
    assert previous_tables(run_tables, q, None) == group
    assert previous_tables(run_tables, q, None, "S02") == s02
    assert previous_tables(run_tables, q, None, "S01") is None  # no S01 report last quarter
    assert previous_tables(None, q, reports / "2026Q2-S02", "S02") == s02


def test_review_loop_refuses_a_previous_report_of_another_scope(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _report(reports, "2026Q2", None)
    wrong = _report(reports, "2026Q2-S02", "S01")  # renamed folder: the manifest decides
    with pytest.raises(InputError, match=r"scope '\(whole group\)', this review's scope is 'S02'"):
        previous_tables(None, pd.Period("2026Q3", "Q"), reports / "2026Q2", "S02")
    run_tables = reports / ".tmp-run" / "tables"
    run_tables.mkdir(parents=True)
    assert previous_tables(run_tables, pd.Period("2026Q3", "Q"), None, "S02") is None
    assert wrong.is_dir()


# --------------------------------------------------------------------------- end to end


def _needles(value: str) -> set[bytes]:
    forms = {value, html.escape(value), json.dumps(value)[1:-1]}
    return {f.encode("utf-8") for f in forms}


def _output_blobs(folder: Path):
    """(name, bytes) of every output: files as they are, Parquet as its table text, xlsx parts."""
    import pyarrow.parquet as pq

    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if path.suffix == ".parquet":  # compressed: scan the values, column names, metadata
            frame = pd.read_parquet(path)
            meta = str(pq.read_metadata(path).metadata)
            yield name, (frame.to_csv() + meta).encode("utf-8")
        elif path.suffix == ".xlsx":  # zipped XML
            with zipfile.ZipFile(path) as zf:
                for part in zf.namelist():
                    yield f"{name}!{part}", zf.read(part)
        else:
            yield name, path.read_bytes()


@pytest.fixture(scope="module")
def scoped_run(tmp_path_factory):
    from perflink.runner import run_review
    from perflink.sample import generate

    root = tmp_path_factory.mktemp("scope")
    params = generate(root / "sample", seed=0)
    result = run_review(params, out_dir=root / "reports", scope="S02", jobs=2)
    return result, root


@pytest.mark.slow
@pytest.mark.kernel
def test_scoped_report_shows_no_other_entity(scoped_run) -> None:
    result, root = scoped_run
    folder = root / "reports" / "2026Q3-S02"
    assert result.report_dir == folder and result.status == "ok"
    assert not (root / "reports" / "2026Q3").exists()  # the group report is not touched
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["scope"] == "S02" and all(t["status"] == "ok" for t in manifest["tasks"])
    assert {p.suffix for p in folder.rglob("*") if p.is_file()} >= {
        ".html", ".csv", ".parquet", ".xlsx", ".ipynb", ".json"
    }  # fmt: skip

    ent = pd.read_csv(root / "sample" / "entities.csv", dtype="str")
    keep = set(subtree(ent, "S02"))
    inside, others = ent[ent["entity_id"].isin(keep)], ent[~ent["entity_id"].isin(keep)]
    in_text = " ".join(inside[["name_zh", "name_en", "manager"]].to_numpy().ravel())
    forbidden: dict[bytes, str] = {}
    for row in others.itertuples():
        for value in (row.entity_id, row.name_zh, row.name_en):
            forbidden |= dict.fromkeys(_needles(value), value)
        if row.manager not in in_text:  # a namesake inside the subtree may show
            forbidden |= dict.fromkeys(_needles(row.manager), row.manager)
    assert len(others) > 30 and "G00" in set(others["entity_id"])

    hits, seen = [], b""
    for name, data in _output_blobs(folder):
        seen += data
        hits += [f"{name}: {value}" for needle, value in forbidden.items() if needle in data]
    assert hits == [], f"other entities in the scoped report: {hits[:20]}"
    for row in inside.itertuples():  # the scope's own units are all reported
        assert row.entity_id.encode() in seen, row.entity_id
        assert row.name_zh.encode("utf-8") in seen, row.name_zh


def test_group_totals_only_when_allowed_and_without_other_entities(tmp_path):
    import yaml

    import perflink.summary
    from perflink.review import open_review
    from perflink.sample import generate

    params = generate(tmp_path / "s", seed=0)
    raw = yaml.safe_load(params.read_text(encoding="utf-8"))
    assert perflink.summary.group_totals(open_review(params, scope="S02")).to_frame().empty
    raw["scope_group_totals"] = True
    params.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    review = open_review(params, scope="S02")
    totals = perflink.summary.group_totals(review).to_frame()
    assert set(totals["scope"]) == {"quarter", "ytd"}
    assert set(totals["metric_id"]) == set(review.catalog.tier(1))
    assert totals["value"].notna().all()
    page = perflink.summary.group_totals(review)._repr_html_()
    entities = review.unscoped_inputs.entities
    others = entities[~entities["entity_id"].isin(review.entities["entity_id"])]
    for text in [*others["entity_id"], *others["name_zh"], *others["name_en"]]:
        assert text not in page
    assert "S02" not in page  # figures only: not even the scope's own id is needed
    # unscoped reviews never show the block
    assert perflink.summary.group_totals(open_review(params)).to_frame().empty
