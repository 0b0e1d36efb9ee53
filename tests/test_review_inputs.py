"""Inputs read once per review (perflink._review_inputs, open_review's quarter and snapshot)."""

from __future__ import annotations

import ast
import json
import logging
import weakref
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import TINY_INPUTS, make_review_dir

from perflink import _review_inputs as ri
from perflink.catalog import load_catalog
from perflink.errors import InputError, ParamsError
from perflink.io import KINDS
from perflink.params import load_params
from perflink.review import open_review, scope_inputs

FACTS_HEAD = "entity_id,period,metric_id,value,source_system,source_ref\n"


def _review(tmp_path: Path, facts_rows: list[str] | None = None, **changes) -> Path:
    params = make_review_dir(tmp_path / "review", **changes)
    if facts_rows is not None:
        (tmp_path / "review" / "facts.csv").write_text(FACTS_HEAD + "".join(facts_rows), "utf-8")
    return params


def _load(params_path: Path, **overrides):
    params = load_params(params_path, overrides=overrides or None)
    return ri.load(params, load_catalog(params.catalog_dir))


def _rows(months: list[str]) -> list[str]:
    return [f"S01,{m},revenue,{i + 1},ERP,R{i}\n" for i, m in enumerate(months)]


def test_load_works_and_keeps_the_tables_when_nothing_is_left_out(tmp_path: Path) -> None:
    inputs, notes = _load(_review(tmp_path))
    assert len(inputs.facts) == 3 and notes == []
    assert str(inputs.facts["period"].max()) == "2026-09"
    assert inputs.facts.attrs["source"].endswith("facts.csv")


def test_facts_after_the_quarter_are_left_out_and_noted(tmp_path: Path, caplog) -> None:
    months = ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    params = _review(tmp_path, _rows(months))
    with caplog.at_level(logging.WARNING, logger="perflink.io"):
        inputs, notes = _load(params)
    assert sorted(map(str, inputs.facts["period"])) == months[:3]
    assert list(inputs.facts.index) == [0, 1, 2]
    [note] = notes
    assert note["kind"] == "left_out" and note["rows"] == 3
    assert note["months"] == ["2026-10", "2026-11", "2026-12"]
    assert "facts.csv: 3 row(s) after the review quarter 2026Q3" in note["message"]
    assert note["message"] in caplog.text  # also in the run's log
    # the input file is untouched
    assert (tmp_path / "review" / "facts.csv").read_text().count("\n") == 7


def test_period_far_from_the_quarter_is_refused_with_file_and_row(tmp_path: Path) -> None:
    params = _review(tmp_path, _rows(["2026-07", "2026-08", "2206-08", "2026-09"]))
    with pytest.raises(InputError) as info:
        _load(params)
    message = str(info.value)
    assert "facts.csv row 4, column 'period'" in message
    assert "2206-08" in message and "inputs_window_years" in message


def test_window_is_configurable(tmp_path: Path) -> None:
    params = _review(tmp_path, _rows(["2023-01", "2026-07", "2026-08", "2026-09"]))
    inputs, _ = _load(params)  # 3.5 years back: inside the default 10
    assert len(inputs.facts) == 4
    with pytest.raises(InputError, match=r"row 2, column 'period': period 2023-01 is outside"):
        _load(params, inputs_window_years=2)
    with pytest.raises(ParamsError, match="inputs_window_years"):
        load_params(params, overrides={"inputs_window_years": 0})


def test_quarter_not_covered_names_quarter_and_months(tmp_path: Path) -> None:
    with pytest.raises(ParamsError) as info:
        _load(_review(tmp_path), quarter="2031Q1")
    message = str(info.value)
    assert "2031Q1" in message and "months 2026-07 to 2026-09" in message
    assert "quarter: '2026Q3'" in message  # what to write instead


def test_empty_facts_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"facts\.csv: the facts table has no data rows"):
        _load(_review(tmp_path, []))


def test_extra_column_warning_is_a_note(tmp_path: Path) -> None:
    params = _review(tmp_path)
    path = tmp_path / "review" / "targets.csv"
    path.write_text(TINY_INPUTS["targets"].replace("kind\n", "kind,comment\n").replace(
        "budget\n", "budget,hello\n"), "utf-8")  # fmt: skip
    _, notes = _load(params)
    [note] = notes
    assert note["kind"] == "extra_columns" and note["columns"] == ["comment"]
    assert note["file"] == "targets.csv" and "comment" in note["message"]


def test_snapshot_round_trip(tmp_path: Path) -> None:
    params_path = _review(tmp_path, _rows(["2026-08", "2026-09", "2026-10"]))
    params = load_params(params_path)
    inputs, notes = ri.load(params, load_catalog(params.catalog_dir))
    ri.write_snapshot(inputs, notes, tmp_path / "snap", quarter=params.quarter)
    back, back_notes = ri.read_snapshot(tmp_path / "snap", params)
    for kind in KINDS:
        want = getattr(inputs, kind)
        if kind == "facts":  # the lineage stays in the snapshot until a finding asks for it
            want = want.drop(columns=list(ri.LINEAGE_COLUMNS))
        pd.testing.assert_frame_equal(getattr(back, kind), want)
        assert getattr(back, kind).attrs == want.attrs
    lineage = ri.read_lineage(tmp_path / "snap", ["S01"])
    pd.testing.assert_frame_equal(lineage, inputs.facts, check_index_type=False)
    assert ri.read_lineage(tmp_path / "snap", ["S99"]).empty
    assert back_notes == notes and back.paths == params.input_paths
    meta = json.loads((tmp_path / "snap" / ri.SNAPSHOT_FILE).read_text())
    assert "url" not in json.dumps(meta) and meta["quarter"] == "2026Q3"


def test_snapshot_of_another_quarter_or_no_snapshot_is_refused(tmp_path: Path) -> None:
    params_path = _review(tmp_path, _rows(["2026-05", "2026-08"]))
    params = load_params(params_path)
    inputs, notes = ri.load(params, load_catalog(params.catalog_dir))
    ri.write_snapshot(inputs, notes, tmp_path / "snap", quarter=params.quarter)
    other = load_params(params_path, overrides={"quarter": "2026Q2"})
    with pytest.raises(ParamsError, match=r"review of 2026Q3, not 2026Q2"):
        ri.read_snapshot(tmp_path / "snap", other)
    with pytest.raises(ParamsError, match="is not a snapshot"):
        ri.read_snapshot(tmp_path / "nothing", params)
    # a scoped review checks its scope against the snapshot's entities: the same refusals
    with pytest.raises(ParamsError, match=r"review of 2026Q3, not 2026Q2"):
        ri.read_snapshot_entities(tmp_path / "snap", other)
    with pytest.raises(ParamsError, match="is not a snapshot"):
        open_review(params_path, snapshot_dir=tmp_path / "nothing", scope="S01")


def test_open_review_reads_the_snapshot_not_the_files(tmp_path: Path, monkeypatch) -> None:
    params_path = _review(tmp_path)
    params = load_params(params_path)
    inputs, notes = ri.load(params, load_catalog(params.catalog_dir))
    ri.write_snapshot(inputs, notes, tmp_path / "snap", quarter=params.quarter)

    def no_raw_read(*args, **kwargs):
        raise AssertionError("an input file was read again")

    monkeypatch.setattr("perflink.io.read_table", no_raw_read)
    review = open_review(params_path, snapshot_dir=tmp_path / "snap", scope="S01")
    assert len(review.facts) == 3 and review.snapshot_dir == tmp_path / "snap"
    # the subtree's rows only: the whole group's inputs are never loaded beside them
    assert "_loaded" not in review.__dict__ and review.scope_ids == ("S01",)
    whole = scope_inputs(ri.read_snapshot(tmp_path / "snap", params)[0], "S01")
    for kind in KINDS:
        pd.testing.assert_frame_equal(getattr(review, kind), getattr(whole, kind))
        assert getattr(review, kind).attrs == getattr(whole, kind).attrs
    assert "source_ref" not in review.facts
    assert list(review.fact_lineage(["S01"])["source_ref"]) == ["R1", "R2", "R3"]
    assert list(review.entities["entity_id"]) == ["S01"]  # scoped after the load
    with pytest.raises(AssertionError, match="read again"):
        open_review(params_path).facts  # noqa: B018  # without a snapshot: the files


def test_release_inputs_lets_the_tables_go_and_reads_the_snapshot_again(tmp_path: Path) -> None:
    params_path = _review(tmp_path, _rows(["2026-07", "2026-08", "2026-09"]))
    params = load_params(params_path)
    inputs, notes = ri.load(params, load_catalog(params.catalog_dir))
    ri.write_snapshot(inputs, notes, tmp_path / "snap", quarter=params.quarter)
    review = open_review(params_path, snapshot_dir=tmp_path / "snap", scope="S01")
    first = weakref.ref(review.facts)
    before = {kind: getattr(review, kind).copy() for kind in KINDS}
    assert review.release_inputs() is True
    assert first() is None  # nothing else held the table: its memory went back
    for kind in KINDS:  # the same tables, scoped again, when asked for again
        pd.testing.assert_frame_equal(getattr(review, kind), before[kind])
    assert review.input_notes == notes and review.root_id == "S01"

    files = open_review(params_path)  # no snapshot: reading again would check the files again
    held = files.facts
    assert files.release_inputs() is False and files.facts is held


def test_inputs_of_some_metrics_reads_their_rows_only(tmp_path: Path) -> None:
    params_path = _review(tmp_path, _rows(["2026-07", "2026-08", "2026-09"]))
    params = load_params(params_path)
    inputs, notes = ri.load(params, load_catalog(params.catalog_dir))
    ri.write_snapshot(inputs, notes, tmp_path / "snap", quarter=params.quarter)
    run = open_review(params_path, snapshot_dir=tmp_path / "snap")
    some, none = run.inputs_of(["revenue"]), run.inputs_of([])
    assert "_loaded" not in run.__dict__  # read from the snapshot: the whole inputs stay unread
    for kind in ("facts", "targets"):  # every row is revenue here
        pd.testing.assert_frame_equal(getattr(some, kind), getattr(run, kind))
        assert getattr(none, kind).empty
        assert list(getattr(none, kind).columns) == list(getattr(run, kind).columns)
        assert getattr(none, kind).attrs == getattr(run, kind).attrs
    pd.testing.assert_frame_equal(none.entities, run.entities)
    loaded = run.inputs_of([])  # the review has loaded its inputs now: those, filtered
    assert loaded.facts.empty and list(loaded.facts.columns) == list(run.facts.columns)
    files = open_review(params_path)  # no snapshot: the tables read from the files
    pd.testing.assert_frame_equal(files.inputs_of(["revenue"]).facts, files.facts)
    assert files.inputs_of(["cost"]).facts.empty
    scoped = open_review(params_path, snapshot_dir=tmp_path / "snap", scope="S01")
    want = scoped.inputs_of(["revenue"])  # its subtree's rows of revenue, from the snapshot
    pd.testing.assert_frame_equal(want.facts, scoped.facts)
    assert scoped.release_inputs() and "_loaded" not in scoped.__dict__
    again = scoped.inputs_of(["revenue"])  # from the snapshot, scoped as the review is
    assert "_loaded" not in scoped.__dict__
    for kind in ("facts", "targets", "entities", "schemes"):
        pd.testing.assert_frame_equal(getattr(again, kind), getattr(want, kind))


def test_open_review_quarter_overrides_the_params(tmp_path: Path) -> None:
    params_path = _review(tmp_path, _rows(["2026-04", "2026-05", "2026-06", "2026-07"]))
    review = open_review(params_path, quarter="2026Q2")
    assert str(review.quarter) == "2026Q2" and review.params.quarter == "2026Q2"
    assert [str(p) for p in review.facts["period"]] == ["2026-04", "2026-05", "2026-06"]
    assert review.input_notes[0]["months"] == ["2026-07"]
    assert str(open_review(params_path, quarter="").quarter) == "2026Q3"  # params decide
    with pytest.raises(ParamsError, match=r"2025Q1 is not covered.*2026-04 to 2026-07"):
        open_review(params_path, quarter="2025Q1").facts  # noqa: B018
    with pytest.raises(ParamsError, match="quarter"):
        open_review(params_path, quarter="2026Q9")


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[1-5]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_pass_quarter_and_snapshot_to_open_review(path: Path) -> None:
    cells = nbformat.read(path, as_version=4).cells
    declared = {
        node.target.id: node.value.value
        for node in ast.parse(cells[1].source).body
        if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Constant)
    }
    assert declared["quarter"] == "" and declared["snapshot_dir"] == ""  # params decide
    calls = [
        node
        for cell in cells
        if cell.cell_type == "code"
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "open_review"
    ]
    assert len(calls) == 1
    assert {k.arg for k in calls[0].keywords} >= {"quarter", "snapshot_dir", "scope", "language"}


def test_empty_facts_in_a_task_names_the_input_not_a_function() -> None:
    from perflink.io import empty_table
    from perflink.mapping._common import check_facts

    facts = empty_table("facts")
    facts.attrs["source"] = "/data/q3/facts.csv"
    with pytest.raises(InputError) as info:
        check_facts(facts, "check_completeness")
    message = str(info.value)
    assert message.startswith("/data/q3/facts.csv: the facts table has no data rows")
    assert "inputs.facts" in message and "check_completeness" not in message


def test_messages_name_the_file_not_a_secret_folder(tmp_path: Path, secret_token: str) -> None:
    params = make_review_dir(tmp_path / "review", secret_dir=secret_token, quarter="2031Q1")
    with pytest.raises(ParamsError) as info:
        _load(params)
    assert "facts.csv holds months 2026-07 to 2026-09" in str(info.value)
    assert secret_token not in str(info.value)


def test_a_notebook_default_path_works_from_the_project_root(tmp_path: Path, monkeypatch) -> None:
    """papermill run from the project root: the notebooks' ``../data/...`` default is read
    from ``notebooks/``; a path that is nowhere says from which folder it was read."""
    make_review_dir(tmp_path / "data")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path)
    review = open_review("../data/params.yaml")
    assert review.params.source == (tmp_path / "data" / "params.yaml").resolve()
    with pytest.raises(ParamsError, match=r"read from the current folder .*-p params_path"):
        open_review("../elsewhere/params.yaml")
