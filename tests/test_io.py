"""Tests for perflink.io: formats, encodings, contract violations, read-only loading."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perflink.errors import InputError, ParamsError, PerflinkError
from perflink.io import KINDS, Inputs, empty_table, load_inputs, read_table

ENTITIES = """\
entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager
G,华东集团,East Group,,group,,shared,张伟
S1,华东制造有限公司,East Manufacturing,G,subsidiary,,manufacturing,李娜
D1,一车间,Workshop 1,S1,department,cost,manufacturing,王强
D2,销售部,Sales,S1,department,profit,manufacturing,赵敏
"""
FACTS = """\
entity_id,period,metric_id,value,source_system,source_ref
D1,2026-09,revenue,"1,234.5",ERP,凭证-001
D2,2026/08,revenue,800,ERP,
D2,202607,units,１２０,MES,
D1,2026-06-30,revenue,-5.25e2,ERP,
"""
TARGETS = """\
entity_id,year,period,metric_id,target,kind
D1,2026,,revenue,5000,budget
D1,2026,2026-09,revenue,450,assessment
D2,2026,2026-09,revenue,450,assessment
"""
SCHEMES = """\
scheme_id,center_type,entity_id,metric_id,weight,category,rule,floor,cap,rule_params
P1,profit,,revenue,0.6,financial,linear,0,1.2,
P1,profit,,units,0.4,business,step,,,"{""steps"": [0.9, 1.0]}"
P1,profit,D2,revenue,1.0,financial,threshold,0.5,1,
"""
ADJUSTMENTS = """\
entity_id,period,metric_id,amount,reason,approved_by
D1,2026-09,revenue,-12.5,退货冲回,财务部
"""
BONUS = """\
entity_id,year,base_bonus,pool_budget
D1,2026,12.5,
S1,2026,0,300
"""
METRICS = {"revenue", "units"}
RANGE = (pd.Period("2026-01", "M"), pd.Period("2026-12", "M"))
TEXTS = {
    "entities": ENTITIES,
    "facts": FACTS,
    "targets": TARGETS,
    "schemes": SCHEMES,
    "adjustments": ADJUSTMENTS,
    "bonus": BONUS,
}


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def errtext(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


def read_bad(tmp_path: Path, kind: str, text: str, name: str | None = None, **kw) -> str:
    path = write(tmp_path, name or f"{kind}.csv", text)
    with pytest.raises(InputError) as excinfo:
        read_table(path, kind, **kw)
    return errtext(excinfo)


# --------------------------------------------------------------------------- happy paths


def test_read_table_facts_types_and_values(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="perflink.io")
    df = read_table(write(tmp_path, "facts.csv", FACTS), "facts")
    assert list(df.columns) == [
        "entity_id",
        "period",
        "metric_id",
        "value",
        "source_system",
        "source_ref",
    ]
    assert df["period"].dtype == pd.PeriodDtype("M")
    assert df["value"].dtype == np.float64
    assert df["entity_id"].dtype == "str"
    assert df["period"].tolist() == [
        pd.Period(p, "M") for p in ("2026-09", "2026-08", "2026-07", "2026-06")
    ]
    np.testing.assert_allclose(df["value"], [1234.5, 800.0, 120.0, -525.0])
    assert df.loc[0, "source_ref"] == "凭证-001"
    assert pd.isna(df.loc[1, "source_ref"])
    assert df.attrs["encoding"] == "utf-8"
    assert "decoded as utf-8" in caplog.text


def test_read_table_every_kind_loads(tmp_path):
    for kind, text in TEXTS.items():
        df = read_table(write(tmp_path, f"{kind}.csv", text), kind)
        assert list(df.columns) == list(empty_table(kind).columns), kind
        assert df.dtypes.equals(empty_table(kind).dtypes), kind
    targets = read_table(write(tmp_path, "t.csv", TARGETS), "targets")
    assert targets["year"].dtype == np.int64
    assert pd.isna(targets.loc[0, "period"])
    bonus = read_table(write(tmp_path, "b.csv", BONUS), "bonus")
    assert np.isnan(bonus.loc[0, "pool_budget"])


def test_utf8_bom_csv(tmp_path):
    df = read_table(write(tmp_path, "entities.csv", ENTITIES, "utf-8-sig"), "entities")
    assert df.columns[0] == "entity_id"
    assert df.attrs["encoding"] == "utf-8-sig"


def test_gbk_csv_with_chinese_names(tmp_path):
    df = read_table(write(tmp_path, "entities.csv", ENTITIES, "gbk"), "entities")
    assert df.attrs["encoding"] == "gb18030"
    assert df.loc[1, "name_zh"] == "华东制造有限公司"


def test_tab_separated_txt(tmp_path):
    df = read_table(write(tmp_path, "bonus.txt", BONUS.replace(",", "\t")), "bonus")
    assert df["base_bonus"].tolist() == [12.5, 0.0]


def test_utf16_excel_unicode_text_via_charset_normalizer(tmp_path):
    # Excel "Unicode Text (*.txt)": UTF-16 with BOM, tab separated; neither UTF-8 nor GB18030.
    df = read_table(write(tmp_path, "bonus.txt", BONUS.replace(",", "\t"), "utf-16"), "bonus")
    assert df.attrs["encoding"] == "utf_16"
    assert df["entity_id"].tolist() == ["D1", "S1"]


def test_chinese_month_and_fullwidth_period(tmp_path):
    text = "entity_id,period,metric_id,value,source_system\nD1,2026年9月,revenue,1,ERP\nD1,２０２６－０８,revenue,1,ERP\n"
    df = read_table(write(tmp_path, "facts.csv", text), "facts")
    assert df["period"].tolist() == [pd.Period("2026-09", "M"), pd.Period("2026-08", "M")]


def test_undecodable_file_names_file_and_offset(tmp_path):
    path = tmp_path / "facts.csv"
    path.write_bytes(b"entity_id,period\nD1,\x80\xff\xfe\x81\x00\xff\x80\n")
    with pytest.raises(InputError) as excinfo:
        read_table(path, "facts")
    msg = errtext(excinfo)
    assert "facts.csv" in msg and "offset 20" in msg and "line 2" in msg


def test_xlsx_round_trip_named_sheet(tmp_path):
    path = tmp_path / "inputs.xlsx"
    facts = pd.read_csv(write(tmp_path, "f.csv", FACTS), dtype=str, keep_default_na=False)
    facts["value"] = [1234.5, 800, 120, -525]
    facts["period"] = [pd.Timestamp("2026-09-01"), "2026-08", "202607", "2026-06"]
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame({"x": [1]}).to_excel(xw, sheet_name="notes", index=False)
        facts.to_excel(xw, sheet_name="facts", index=False)
    df = read_table(path, "facts")
    assert df["period"].iloc[0] == pd.Period("2026-09", "M")
    np.testing.assert_allclose(df["value"], [1234.5, 800.0, 120.0, -525.0])
    bad = facts.astype({"value": object})
    bad.loc[2, "value"] = "abc"
    bad.to_excel(path, sheet_name="Sheet1", index=False)
    with pytest.raises(InputError) as excinfo:
        read_table(path, "facts")
    assert "inputs.xlsx [sheet Sheet1] row 4, column 'value': 'abc'" in errtext(excinfo)


def test_parquet_file_and_directory(tmp_path):
    typed = read_table(write(tmp_path, "f.csv", FACTS), "facts")
    frame = typed.assign(period=typed["period"].astype(str))
    frame.to_parquet(tmp_path / "facts.parquet")
    df = read_table(tmp_path / "facts.parquet", "facts")
    pd.testing.assert_frame_equal(df, typed, check_like=False)
    part = tmp_path / "facts_ds"
    part.mkdir()
    frame.iloc[:2].to_parquet(part / "part-0.parquet")
    bad = frame.iloc[2:].copy()
    bad.loc[3, "metric_id"] = "revnue"
    bad.to_parquet(part / "part-1.parquet")
    assert len(read_table(part, "facts")) == 4
    with pytest.raises(InputError) as excinfo:
        read_table(part, "facts", known_metrics=METRICS)
    assert "facts_ds/part-1.parquet record 2, column 'metric_id': 'revnue'" in errtext(excinfo)


def test_input_files_are_not_modified(tmp_path):
    paths = {k: write(tmp_path, f"{k}.csv", t, "gbk") for k, t in TEXTS.items()}
    before = {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in paths.items()}
    mtimes = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    load_inputs(paths, known_metrics=METRICS, period_range=RANGE)
    assert {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in paths.items()} == before
    assert {k: p.stat().st_mtime_ns for k, p in paths.items()} == mtimes


def test_load_inputs_works_and_fills_missing_optional(tmp_path):
    paths = {k: write(tmp_path, f"{k}.csv", TEXTS[k]) for k in ("entities", "facts", "targets")}
    inputs = load_inputs(paths, known_metrics=METRICS, period_range=RANGE)
    assert isinstance(inputs, Inputs)
    assert len(inputs.facts) == 4 and inputs.bonus.empty and inputs.schemes.empty
    assert inputs.adjustments["period"].dtype == pd.PeriodDtype("M")
    assert inputs.paths["facts"] == paths["facts"]
    assert inputs.to_frame()["kind"].tolist() == list(KINDS)
    assert "<table" in inputs._repr_html_()


def test_load_inputs_bad_input_raises(tmp_path):
    paths = {k: write(tmp_path, f"{k}.csv", t) for k, t in TEXTS.items()}
    with pytest.raises(InputError, match="required"):
        load_inputs({"entities": paths["entities"]})
    with pytest.raises(InputError, match="did you mean 'facts'"):
        load_inputs({**paths, "fatcs": paths["facts"]})
    paths["facts"] = write(tmp_path, "facts.csv", FACTS.replace("D2,2026/08", "D7,2026/08"))
    paths["bonus"] = write(tmp_path, "bonus.csv", BONUS.replace("12.5", "-1"))
    with pytest.raises(InputError) as excinfo:
        load_inputs(paths, known_metrics=METRICS)
    msg = errtext(excinfo)
    assert "facts.csv row 3, column 'entity_id': 'D7' is not in the entities table" in msg
    assert "bonus.csv row 2, column 'base_bonus': -1 is out of range" in msg


def test_bad_kind_and_missing_file(tmp_path):
    with pytest.raises(PerflinkError, match="did you mean 'facts'"):
        read_table(tmp_path / "x.csv", "fact")
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "nope.csv", "facts")
    with pytest.raises(InputError, match=r"unsupported file type '\.xls'"):
        (tmp_path / "old.xls").write_bytes(b"x")
        read_table(tmp_path / "old.xls", "facts")


def test_bad_period_range_is_params_error(tmp_path):
    path = write(tmp_path, "facts.csv", FACTS)
    with pytest.raises(ParamsError, match="after its end"):
        read_table(
            path, "facts", period_range=(pd.Period("2026-09", "M"), pd.Period("2026-01", "M"))
        )


# --------------------------------------------------------------------------- violations


def test_missing_columns_named_with_hints(tmp_path):
    msg = read_bad(
        tmp_path, "facts", "Entity_ID,期间,metric_id,value,source_system\nD1,2026-09,r,1,ERP\n"
    )
    assert "missing required column(s) ['entity_id', 'period']" in msg
    assert "Columns found: ['Entity_ID', '期间'" in msg
    assert "'Entity_ID' should be written exactly 'entity_id'" in msg
    assert "English column names" in msg


def test_broken_bom_header_hint(tmp_path):
    path = tmp_path / "facts.csv"
    # a UTF-8 BOM that was decoded as GBK and saved again: the header starts with '锘'
    path.write_bytes(("锘" + FACTS).encode("gbk"))
    with pytest.raises(InputError, match="byte-order mark"):
        read_table(path, "facts")


def test_extra_columns_kept_with_warning(tmp_path, caplog):
    text = BONUS.replace("pool_budget\n", "pool_budget,备注\n").replace("12.5,\n", "12.5,,新任\n")
    df = read_table(write(tmp_path, "bonus.csv", text.replace("300\n", "300,\n")), "bonus")
    assert df.columns[-1] == "备注" and df.loc[0, "备注"] == "新任"
    assert df.attrs["extra_columns"] == ["备注"]
    assert "not in the contract" in caplog.text


def test_non_numeric_values_and_hints(tmp_path):
    text = (
        FACTS
        + "D1,2026-05,revenue,abc,ERP,\nD1,2026-04,revenue,12 万,ERP,\nD1,2026-03,revenue,95%,ERP,\n"
        + "D1,2026-02,revenue,12 kUSD,ERP,\n"
    )
    msg = read_bad(tmp_path, "facts", text)
    assert (
        "facts.csv row 6, column 'value': 'abc' is not a number. Fix the value or remove the row."
        in msg
    )
    assert "row 7, column 'value': '12 万' is not a number. Write a plain number" in msg
    assert "row 8, column 'value': '95%' is not a number. Rates are fractions" in msg
    assert "row 9, column 'value': '12 kUSD' is not a number. Write a plain number" in msg
    assert msg.splitlines()[0].startswith("facts.csv: 4 problem(s)")


def test_bad_and_out_of_range_periods(tmp_path):
    text = FACTS + (
        "D1,2026-13,revenue,1,ERP,\nD1,Sep 2026,revenue,1,ERP,\nD1,2025-12,revenue,1,ERP,\n"
        "D1,2026.1,revenue,1,ERP,\nD1,2026Q3,revenue,1,ERP,\n"
    )
    msg = read_bad(tmp_path, "facts", text, period_range=RANGE)
    assert "row 6, column 'period': '2026-13' is not a month" in msg
    assert "row 9, column 'period': '2026.1' is not a month" in msg
    assert "row 10, column 'period': '2026Q3' is not a month" in msg
    assert "row 7, column 'period': 'Sep 2026' is not a month" in msg
    assert (
        "row 8, column 'period': period 2025-12 is outside the review range 2026-01 to 2026-12"
        in msg
    )


def test_duplicate_facts_name_both_rows(tmp_path):
    msg = read_bad(tmp_path, "facts", FACTS + "D1,202609,revenue,1,ERP,\n")
    assert (
        "facts.csv rows 2, 6: duplicate facts row (entity_id=D1, period=2026-09, metric_id=revenue)"
        in msg
    )


def test_duplicate_targets_and_entities(tmp_path):
    msg = read_bad(tmp_path, "targets", TARGETS + "D1,2026,,revenue,1,budget\n")
    assert "targets.csv rows 2, 5: duplicate targets row" in msg and "period=(none)" in msg
    msg = read_bad(tmp_path, "entities", ENTITIES + "D1,重复,,S1,department,cost,,\n")
    assert "entities.csv rows 4, 6: duplicate entities row (entity_id=D1)" in msg


def test_unknown_entity_and_metric_with_suggestion(tmp_path):
    text = FACTS + "D3,2026-05,revnue,1,ERP,\n"
    msg = read_bad(tmp_path, "facts", text, known_entities={"D1", "D2"}, known_metrics=METRICS)
    assert "facts.csv row 6, column 'entity_id': 'D3' is not in the entities table" in msg
    assert (
        "row 6, column 'metric_id': 'revnue' is not a metric in the catalog (did you mean 'revenue'?)"
        in msg
    )


def test_entity_tree_violations(tmp_path):
    text = ENTITIES + (
        "S2,华南零售有限公司,,G,subsidiary,profit,retail,\n"
        "D3,门店,,X9,department,,retail,\n"
        "D4,车间,,S1,departement,cost,,\n"
        "C1,甲,,C2,department,cost,,\n"
        "C2,乙,,C1,department,cost,,\n"
        "G2,第二集团,,,group,,,\n"
    )
    msg = read_bad(tmp_path, "entities", text)
    assert "row 6, column 'center_type': 'profit' is set on a group/subsidiary row" in msg
    assert "row 7, column 'parent_id': 'X9' is not an entity_id in this table" in msg
    assert "row 7, column 'center_type': is empty; departments need one of" in msg
    assert "row 8, column 'kind': 'departement' is not allowed (did you mean 'department'?)" in msg
    assert "the parent chain loops (C1 -> C2 -> C1)" in msg or "(C2 -> C1 -> C2)" in msg
    assert "exactly one row with kind 'group'" in msg and "found 2" in msg


def test_scheme_violations(tmp_path):
    text = SCHEMES + (
        "P2,cost,,revenue,1.5,financial,linear,,,\n"
        "P3,cost,,revenue,0.5,financial,linear,2,1,\n"
        "P4,cost,,revenue,0.5,financial,linear,,,not json\n"
        "P5,sales,,revenue,0.5,financial,linear,,,\n"
    )
    msg = read_bad(tmp_path, "schemes", text)
    assert "row 5, column 'weight': 1.5 is out of range; weight must be a fraction in [0, 1]" in msg
    assert "row 6, column 'floor': floor 2 is above cap 1" in msg
    assert "row 7, column 'rule_params': 'not json' is not a JSON object" in msg
    assert "row 8, column 'center_type': 'sales' is not allowed" in msg


def test_bonus_and_adjustment_violations(tmp_path):
    msg = read_bad(tmp_path, "bonus", BONUS + "D2,2026,5,-3\nD2,26,5,\n")
    assert (
        "row 4, column 'pool_budget': -3 is out of range; bonus amounts cannot be negative" in msg
    )
    assert "row 5, column 'year': '26' is not a year" in msg
    msg = read_bad(tmp_path, "adjustments", ADJUSTMENTS + "D1,2026-09,revenue,5,补录,\n")
    assert "adjustments.csv row 3, column 'approved_by': is empty" in msg


def test_target_period_outside_its_year(tmp_path):
    msg = read_bad(tmp_path, "targets", TARGETS + "D2,2026,2025-12,revenue,1,assessment\n")
    assert "targets.csv row 5, column 'period': period 2025-12 is not in year 2026" in msg


def test_problems_are_capped_and_counted(tmp_path):
    rows = "".join(f"D1,2026-{m:02d},revenue,x{m},ERP,\n" for m in range(1, 13)) * 3
    text = "entity_id,period,metric_id,value,source_system,source_ref\n" + rows
    msg = read_bad(tmp_path, "facts", text)
    lines = msg.splitlines()
    assert lines[0].startswith("facts.csv: 48 problem(s) in the facts table (showing the first 20)")
    assert len(lines) == 21
    assert (
        lines[1]
        == "  facts.csv row 2, column 'value': 'x1' is not a number. Fix the value or remove the row."
    )
    assert lines[2].startswith("  facts.csv rows 2, 14, 26: duplicate facts row")


def test_data_contract_examples_load(tmp_path):
    """Every CSV example in docs/data-contract.md loads (the doc and the code agree)."""
    doc = (Path(__file__).parents[1] / "docs" / "data-contract.md").read_text(encoding="utf-8")
    sections = doc.split("\n## ")[1:]
    blocks = [
        (m.group(1), m.group(2))
        for sec in sections
        if (m := re.match(r"(\w+).*?```csv\n(.*?)```", sec, flags=re.S))
    ]
    assert [kind for kind, _ in blocks] == list(KINDS)
    for kind, text in blocks:
        df = read_table(write(tmp_path, f"{kind}.csv", text, "gbk"), kind)
        assert len(df) == text.count("\n") - 1, kind


# --------------------------------------------------------------------------- one name is enough


def test_entities_need_one_name_the_other_falls_back(tmp_path):
    text = (
        "entity_id,name_zh,name_en,parent_id,kind,center_type,business_line,manager\n"
        "G,,Group,,group,,,A\n"
        "S1,一公司,,G,subsidiary,,,B\n"
    )
    df = read_table(write(tmp_path, "entities.csv", text), "entities")
    assert df["name_zh"].tolist() == ["Group", "一公司"]
    assert df["name_en"].tolist() == ["Group", "一公司"]
    # an English-only file needs no name_zh column at all
    only_en = (
        "entity_id,name_en,parent_id,kind,center_type\nG,Group,,group,\nS1,First,G,subsidiary,\n"
    )
    df = read_table(write(tmp_path, "en.csv", only_en), "entities")
    assert df["name_zh"].tolist() == ["Group", "First"]


def test_entity_without_any_name_is_named_by_row(tmp_path):
    text = (
        "entity_id,name_zh,name_en,parent_id,kind,center_type\n"
        "G,集团,Group,,group,\n"
        "S1,,,G,subsidiary,\n"
    )
    msg = read_bad(tmp_path, "entities", text)
    assert "row 3, columns 'name_zh' and 'name_en': both are empty" in msg
    no_names = "entity_id,parent_id,kind,center_type\nG,,group,\n"
    msg = read_bad(tmp_path, "entities", no_names, name="nonames.csv")
    assert "no entity has a name; add a column 'name_en'" in msg


def test_read_tables_collects_every_table_and_says_what_it_skipped(tmp_path):
    from perflink.io import read_tables

    bad_entities = ENTITIES.replace("D2,销售部,Sales", "D2,,")
    bad_facts = FACTS.replace("2026/08", "2026-13")
    paths = {
        "entities": write(tmp_path, "entities.csv", bad_entities),
        "facts": write(tmp_path, "facts.csv", bad_facts),
        "targets": write(tmp_path, "targets.csv", TARGETS.replace("D1,", "DX,", 1)),
    }
    tables, errors, skipped = read_tables(paths)
    assert set(errors) == {"entities", "facts", "targets"}
    assert "row 5" in errors["entities"] and "'2026-13' is not a month" in errors["facts"]
    # a flawed entities table still gives its ids to the other tables' checks
    assert "'DX' is not in the entities table" in errors["targets"]
    assert skipped == []
    with pytest.raises(InputError) as info:
        load_inputs(paths)
    assert "entities.csv" in str(info.value) and "facts.csv" in str(info.value)
    # an entities table that cannot be read at all: the cross-check is skipped, and said so
    paths["entities"] = write(tmp_path, "entities.csv", "entity_id,kind\nG,group\n")
    tables, errors, skipped = read_tables(paths)
    assert "missing required column(s)" in errors["entities"] and "targets" in tables
    assert any("entity ids in facts, targets were not checked" in s for s in skipped)


def test_read_tables_shows_one_bar_over_the_tables(tmp_path, monkeypatch, stderr_bars):
    from perflink import execution
    from perflink.io import read_tables

    paths = {
        "entities": write(tmp_path, "entities.csv", ENTITIES),
        "facts": write(tmp_path, "facts.csv", FACTS),
    }
    monkeypatch.setenv(execution.PROGRESS_ENV, "1")
    monkeypatch.setattr(execution, "PROGRESS_DELAY", 3600.0)  # quick: nothing drawn
    read_tables(paths)
    assert stderr_bars() == ""
    monkeypatch.setattr(execution, "PROGRESS_DELAY", 0.0)
    _, errors, _ = read_tables(paths)
    assert errors == {}
    err = stderr_bars()
    assert "reading inputs" in err and f"/{len(KINDS)}" in err and "table" in err
