"""Spreadsheet-formula injection (OWASP "CSV injection"): what perflink writes never runs.

Every text cell of a workbook is a string cell (never a formula), and every CSV text cell that
starts like a formula gets a leading apostrophe; numbers stay numbers. Fast tests cover the
helpers and each writer on tiny frames; the slow one puts the payloads into every free-text
input column of the sample and checks every cell of every workbook and table of the report.
"""

from __future__ import annotations

import csv
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook

from perflink._report_tables import csv_safe, csv_safe_frame, write_table
from perflink.report import ReportError

PAYLOADS = (
    '=HYPERLINK("http://x.invalid","y")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(1)",
    "\t=1",
    "\r=1",
)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _csv_cells(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _unsafe_csv_cells(path: Path) -> list[tuple[int, int, str]]:
    """Cells a spreadsheet would read as a formula: a trigger first and not a plain number."""
    return [
        (r, c, cell)
        for r, row in enumerate(_csv_cells(path))
        for c, cell in enumerate(row)
        if cell.startswith(TRIGGERS) and not _NUMBER.fullmatch(cell)
    ]


def _formula_cells(path: Path) -> list[str]:
    """Formula cells of a workbook, by openpyxl and in the sheet XML (``<f>`` elements)."""
    found = []
    wb = load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            found += [f"{ws.title}!{c.coordinate}" for c in row if c.data_type == "f"]
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.startswith("xl/worksheets/") and re.search(rb"<f[ >/]", zf.read(name)):
                found.append(name)
    return found


# --------------------------------------------------------------------------- csv_safe


def _escaped(text: str) -> str:
    """What csv_safe makes of a payload: apostrophe first, a CR as a (quoted) line feed."""
    return ("'" + text).replace("\r", "\n")


@pytest.mark.parametrize("text", PAYLOADS)
def test_csv_safe_prefixes_formula_text(text):
    assert csv_safe(text) == _escaped(text)


def test_csv_safe_turns_carriage_returns_into_line_feeds():
    # a lone CR is not quoted by the CSV writer: a spreadsheet would start a new row at it
    assert csv_safe("abc\r=1+1") == "abc\n=1+1"
    assert csv_safe("a\r\nb") == "a\nb"


@pytest.mark.parametrize(
    "value",
    ["华东制造有限公司", "ERP-华东", "a=b", " =1", "'=1", "-12.5", "+3", "-1e3", ".5", "", None,
     -2.0, 3, np.float64(-1.5), np.nan],
)  # fmt: skip
def test_csv_safe_leaves_text_and_numbers(value):
    out = csv_safe(value)
    assert out is value or (isinstance(value, float) and np.isnan(value) and np.isnan(out))


def test_csv_safe_frame_escapes_only_text_cells():
    df = pd.DataFrame(
        {
            "name": pd.Series(["=1+1", "ok", None], dtype="str"),
            "mixed": pd.Series([-2.5, "-2+3", "@x"], dtype=object),
            "amount": [-1.0, 2.0, -3.0],
            "cat": pd.Categorical(["+a", "b", "+a"]),
        }
    )
    out = csv_safe_frame(df)
    assert list(out["name"].iloc[:2]) == ["'=1+1", "ok"] and pd.isna(out["name"].iloc[2])
    assert list(out["mixed"]) == [-2.5, "'-2+3", "'@x"]
    assert out["amount"].dtype == np.float64 and list(out["amount"]) == [-1.0, 2.0, -3.0]
    assert list(out["cat"].astype(object)) == ["'+a", "b", "'+a"]
    assert df["name"].iloc[0] == "=1+1"  # the caller's frame is not touched


def test_csv_safe_frame_escapes_column_names_and_keeps_clean_frames():
    clean = pd.DataFrame({"a": ["x"], "b": [1]})
    assert csv_safe_frame(clean) is clean
    assert list(csv_safe_frame(pd.DataFrame({"=x": [1]})).columns) == ["'=x"]


# --------------------------------------------------------------------------- write_table


def test_write_table_neutralises_csv_and_keeps_parquet_raw(tmp_path):
    df = pd.DataFrame(
        {
            "entity_id": ["D1"] * len(PAYLOADS),
            "message": list(PAYLOADS),
            "value": np.arange(len(PAYLOADS)) - 3.5,
        }
    )
    write_table(df, "t", tmp_path, findings=False)
    rows = _csv_cells(tmp_path / "t.csv")
    assert [r[1] for r in rows[1:]] == [_escaped(p) for p in PAYLOADS]
    assert [float(r[2]) for r in rows[1:]] == list(df["value"])  # negative numbers stay numbers
    assert _unsafe_csv_cells(tmp_path / "t.csv") == []
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert list(back["message"]) == list(PAYLOADS)  # Parquet is data: the raw text


def test_write_table_bad_input_still_rejected(tmp_path):
    with pytest.raises(ReportError, match="not a plain file stem"):
        write_table(pd.DataFrame({"a": ["=1"]}), "../x", tmp_path, findings=False)


# --------------------------------------------------------------------------- workbooks


def _summary_result(tmp_path: Path) -> SimpleNamespace:
    frame = pd.DataFrame(
        {
            "entity_id": ["D1", "D2"],
            "period": [pd.Period("2026-09", "M")] * 2,
            "metric_id": ["revenue", "units"],
            "severity": ["high", "low"],
            "message": [PAYLOADS[0], PAYLOADS[2]],
            "gap": [-12.5, 3.0],
        }
    )
    tables = {"scorecard": frame.rename(columns={"message": "scheme_id"}), "anomalies": frame}
    inputs = SimpleNamespace(get=tables.get, tables_dir=tmp_path / "tables")
    return SimpleNamespace(
        findings=SimpleNamespace(to_frame=lambda: frame),
        actions=SimpleNamespace(to_frame=lambda: frame[["entity_id", "message"]]),
        inputs=inputs,
    )


def test_review_workbook_has_no_formula_cell(tmp_path):
    from perflink.summary._workbook import write_workbook

    path = write_workbook(_summary_result(tmp_path))
    assert path == tmp_path / "review.xlsx"
    assert _formula_cells(path) == []
    wb = load_workbook(path)
    texts = {c.value for ws in wb.worksheets for row in ws.iter_rows(min_row=2) for c in row
             if c.data_type == "s"}  # fmt: skip
    assert {PAYLOADS[0], PAYLOADS[2]} <= texts  # the text as read, not escaped
    gaps = [c.value for ws in wb.worksheets for row in ws.iter_rows(min_row=2) for c in row
            if c.data_type == "n" and c.value == -12.5]  # fmt: skip
    assert gaps  # numbers stay numbers


def test_review_workbook_bad_path(tmp_path):
    from perflink.summary._workbook import write_workbook

    with pytest.raises(ReportError, match="must end in .xlsx"):
        write_workbook(_summary_result(tmp_path), path=tmp_path / "review.csv")


def test_scorecard_workbook_has_no_formula_cell(tmp_path):
    from perflink.scoring import write_scorecard_xlsx

    card = pd.DataFrame(
        {
            "entity_id": ["S1D1", "S1D2"],
            "scheme_id": [PAYLOADS[1], PAYLOADS[4]],
            "period": [pd.Period("2026-09", "M")] * 2,
            "score": [-3.0, 97.5],
        }
    )
    result = SimpleNamespace(
        scorecard=card,
        names={"S1D1": PAYLOADS[0], "S1D2": "+1+1"},
        parents={"S1D1": "S1", "S1D2": "S1", "S1": "G", "G": None},
        language="en",
    )
    path = write_scorecard_xlsx(result, tmp_path / "scorecard.xlsx")
    assert _formula_cells(path) == []
    rows = list(load_workbook(path)["S1"].iter_rows(min_row=2, values_only=True))
    assert [r[1] for r in rows] == [PAYLOADS[0], "+1+1"]  # names, as text
    assert [r[2] for r in rows] == [PAYLOADS[1], PAYLOADS[4]]
    assert [r[-1] for r in rows] == [-3.0, 97.5]


# --------------------------------------------------------------------------- end to end


def _inject(folder: Path) -> None:
    """Put the payloads into every free-text column of the generated sample's inputs."""

    def cycle(n: int, start: int = 0) -> list[str]:
        return [PAYLOADS[(start + i) % len(PAYLOADS)] for i in range(n)]

    def edit(name: str, fn) -> None:
        path = folder / f"{name}.csv"
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        fn(df)
        # quoted: a lone CR is not quoted otherwise and would end the record
        df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n", quoting=csv.QUOTE_ALL)

    def entities(df):
        n = len(df)
        df["name_zh"] = [p + " " + z for p, z in zip(cycle(n), df["name_zh"], strict=True)]
        df["name_en"] = cycle(n, 1)
        df["manager"] = cycle(n, 2)

    def facts(df):
        df["source_ref"] = cycle(len(df), 3)

    def adjustments(df):
        df["reason"] = cycle(len(df), 4)
        df["approved_by"] = cycle(len(df), 5)

    def schemes(df):
        ids = sorted(set(df["scheme_id"]))
        renamed = {s: f"{PAYLOADS[i % len(PAYLOADS)]} {s}" for i, s in enumerate(ids)}
        df["scheme_id"] = df["scheme_id"].map(renamed)

    for name, fn in [("entities", entities), ("facts", facts), ("adjustments", adjustments),
                     ("schemes", schemes)]:  # fmt: skip
        edit(name, fn)
    rules_path = folder / "catalog" / "rules.yaml"
    rules = yaml.safe_load(rules_path.read_text(encoding="utf-8"))
    for i, rule in enumerate(rules["rules"]):
        rule["name_zh"] = PAYLOADS[i % len(PAYLOADS)]
        rule["name_en"] = PAYLOADS[(i + 1) % len(PAYLOADS)]
    rules_path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")


@pytest.mark.slow
def test_review_with_formula_payloads_writes_no_live_formula(tmp_path):
    from perflink.runner import run_review
    from perflink.sample import generate

    params = generate(tmp_path / "sample", seed=0)
    _inject(params.parent)
    run_review(params, out_dir=tmp_path / "reports", jobs=2)
    report = tmp_path / "reports" / "2026Q3"
    books = sorted(report.rglob("*.xlsx"))
    tables = sorted((report / "tables").glob("*.csv"))
    assert books and tables
    assert {p: _formula_cells(p) for p in books} == {p: [] for p in books}
    assert {p.name: _unsafe_csv_cells(p) for p in tables} == {p.name: [] for p in tables}
    # the payloads did reach the outputs: neutralised in CSV, as plain text in the workbook
    csv_text = "\n".join(p.read_text(encoding="utf-8-sig") for p in tables)
    assert "'=HYPERLINK(" in csv_text and "'@SUM(1)" in csv_text and "'+1+1" in csv_text
    wb = load_workbook(report / "review.xlsx")
    texts = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row
             if c.data_type == "s" and isinstance(c.value, str)]  # fmt: skip
    assert any(t.startswith("=HYPERLINK(") for t in texts)
    assert any(t.startswith(("=", "+", "-", "@")) for t in texts)


def test_scorecard_workbook_sheet_titles_from_any_entity_id(tmp_path):
    from perflink.scoring import write_scorecard_xlsx

    long = "A" * 30 + "'B"  # cut to 31 characters, it would end with an apostrophe
    card = pd.DataFrame({"entity_id": ["S/1:x", "'S2'", long], "score": [1.0, 2.0, 3.0]})
    result = SimpleNamespace(
        scorecard=card,
        names={"S/1:x": "=A1", "'S2'": "b", long: "c"},
        parents={"S/1:x": "G", "'S2'": "G", long: "G", "G": None},
        language="en",
    )
    path = write_scorecard_xlsx(result, tmp_path / "scorecard.xlsx")
    # '/', ':' and a leading or trailing apostrophe would fail the save
    assert load_workbook(path).sheetnames == ["S2", "A" * 30, "S_1_x"]
